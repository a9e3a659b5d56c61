"""PEP 691 JSON project pages, parsed with the checks of ``index._entry_link`` done a column at a time.

A big project's page lists tens of thousands of files, and a cold lock reads several such pages:
checking each file's URL, digest and texts one call at a time was most of a cold lock's CPU. Here
the values of all files are taken as columns and checked in C where the grammar allows it (one
``isprintable`` over the joined URLs, one regex over the joined digests); only the file name's
grammar and the upload time stay per file. When any column holds anything unusual (a relative or
non-http(s) URL, a ``#`` fragment, a missing file name, a value of an unexpected type, a control
character, a malformed digest), the page is parsed file by file with ``index._entry_link``, which
gives the same links or raises the same precise error; tests check that both paths agree.
"""

from __future__ import annotations

import json
import re
from itertools import repeat
from typing import Any

from bundler.errors import IndexUnavailable
from bundler.index import IndexConfig, Link, _entry_link, _is_distribution, _join, _metadata_attr, _parse_time, redact_url

_DIGESTS = re.compile(r"(?:[0-9a-f]{64}\n)*")


def parse_json_page(body: bytes, page_url: str, index: IndexConfig) -> list[Link]:
    """Parse a PEP 691 JSON project page."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise IndexUnavailable(f"index {index.name} sent a broken JSON page for {redact_url(page_url)}: {e}") from None
    except RecursionError:
        raise IndexUnavailable(f"index {index.name} sent a JSON page nested too deeply at {redact_url(page_url)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise IndexUnavailable(f"index {index.name} sent a JSON page without a 'files' list at {redact_url(page_url)}")
    files = data["files"]
    fast = columns_links(files, page_url, index)
    return fast if fast is not None else entries_links(files, page_url, index)


def entries_links(files: list[Any], page_url: str, index: IndexConfig) -> list[Link]:
    """The links of a page's ``files``, file by file (the reference for ``columns_links``)."""
    links = []
    for f in files:
        if not isinstance(f, dict) or not isinstance(f.get("url"), str):
            continue
        hashes = f.get("hashes") if isinstance(f.get("hashes"), dict) else {}
        link = _entry_link(index, page_url, _join(page_url, f["url"]), filename=f.get("filename"),
                           sha256=hashes.get("sha256"), requires_python=f.get("requires-python"), yanked=f.get("yanked"),
                           upload_time=f.get("upload-time"), size=f.get("size"),
                           metadata=f.get("core-metadata", f.get("dist-info-metadata")))
        if link is not None:
            links.append(link)
    return links


def _lines(items: list[str]) -> str | None:
    text = "\n".join(items) + "\n" if items else ""
    return text if text.count("\n") == len(items) else None  # a value holding a newline itself


def columns_links(files: list[Any], page_url: str, index: IndexConfig) -> list[Link] | None:
    """The links of a page's ``files`` when every value is of the usual kind, checked a column at a
    time; None when any is not (the caller then goes file by file)."""
    if not files:
        return []
    if set(map(type, files)) != {dict}:
        return None
    urls = [f.get("url") for f in files]
    names = [f.get("filename") for f in files]
    hashes = [f.get("hashes") for f in files]
    if set(map(type, urls)) != {str} or set(map(type, names)) != {str} or set(map(type, hashes)) != {dict}:
        return None
    shas = [h.get("sha256") for h in hashes]
    joined = "".join(urls)
    if (set(map(type, shas)) != {str} or not all(names) or "#" in joined or " " in joined or not joined.isprintable()
            or not all(map(str.startswith, urls, repeat(("https://", "http://"))))):
        return None
    shas = [s.lower() for s in shas]
    digests = _lines(shas)
    if digests is None or not _DIGESTS.fullmatch(digests):
        return None
    requires = [f.get("requires-python") or None for f in files]
    yanked = [f.get("yanked") for f in files]
    yanked = [None if y is None or y is False or y == "\0" else ("" if y is True else y) for y in yanked]
    texts = [t for t in (*requires, *yanked) if t is not None]
    if not set(map(type, texts)) <= {str} or not "".join(texts).isprintable():
        return None
    metas = [_metadata_attr(f.get("core-metadata", f.get("dist-info-metadata"))) for f in files]
    meta_shas = [s for _, s in metas if s is not None]
    meta_digests = _lines(meta_shas)
    if meta_digests is None or not _DIGESTS.fullmatch(meta_digests):
        return None
    sizes = [f.get("size") for f in files]
    name, base = index.name, index.url
    return [Link(filename=n, url=u, index=name, index_url=base, sha256=s, requires_python=r, yanked=y,
                 upload_time=_parse_time(f.get("upload-time")),
                 size=z if type(z) is int and z >= 0 else None, metadata=m[0], metadata_sha256=m[1])
            for f, n, u, s, r, y, z, m in zip(files, names, urls, shas, requires, yanked, sizes, metas)
            if _is_distribution(n)]
