"""PEP 691 JSON project pages, read a column at a time into ``pagefiles.PageFiles``.

A big project's page lists tens of thousands of files, and a cold lock reads several such pages:
checking each file's URL, digest and texts one call at a time was most of a cold lock's CPU. Here
the values of all files are taken as columns (``dict.get`` mapped in C) and checked by
``pagefiles.usual`` (the types counted in C, one ``isprintable`` over the joined URLs, one
``translate`` over the joined digests); the file name's grammar and the upload time are decided when
a file is used. When any column holds anything unusual (a relative or non-http(s) URL, a ``#``
fragment, a missing file name, a value of an unexpected type, a control character, a malformed
digest), the page is parsed file by file with ``index._entry_link``, which gives the same links or
raises the same precise error; tests check that both paths agree.
"""

from __future__ import annotations

import gc
import json
import threading
from contextlib import contextmanager
from itertools import repeat
from typing import Any, Iterator

from bundler.errors import IndexUnavailable
from bundler.index import IndexConfig, Link, _entry_link, _join, _metadata_attr, redact_url
from bundler.pagefiles import PageFiles


def parse_json_page(body: bytes, page_url: str, index: IndexConfig) -> PageFiles:
    """Parse a PEP 691 JSON project page."""
    with _collector_paused():
        return _parse_json_page(body, page_url, index)


def _parse_json_page(body: bytes, page_url: str, index: IndexConfig) -> PageFiles:
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
    return fast if fast is not None else PageFiles.of_links(index, entries_links(files, page_url, index))


_pauses = 0
_pauses_lock = threading.Lock()
_resume = False


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a page is read (pauses from several threads nest).

    ``json.loads`` of a big page makes a dict per file, objects that make no cycle and live until
    the columns are taken: the collector would walk them again at each collection while they live
    (a cold lock of the science set ran 351 collections, 213 with the pause). They are freed by
    reference counting when the page is read, whatever the collector does."""
    global _pauses, _resume
    with _pauses_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pauses_lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()


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


def columns_links(files: list[Any], page_url: str, index: IndexConfig) -> PageFiles | None:
    """The files of a page's ``files`` when every value is of the usual kind, checked a column at a
    time (``PageFiles.checked``); None when any is not (the caller then goes file by file)."""
    if not files:
        return PageFiles.of_links(index, [])
    if set(map(type, files)) != {dict}:
        return None

    def column(key: str) -> list[Any]:  # dict.get mapped in C: no Python call per file
        return list(map(dict.get, files, repeat(key)))

    hashes = column("hashes")
    if set(map(type, hashes)) != {dict}:
        return None
    shas = list(map(dict.get, hashes, repeat("sha256")))
    if set(map(type, shas)) != {str}:
        return None
    # the PEP 658 value, under the name PEP 714 gave it or the one it had before
    core, dist = column("core-metadata"), column("dist-info-metadata")
    metas = core if set(map(type, dist)) <= {type(None)} else [f.get("core-metadata", f.get("dist-info-metadata")) for f in files]
    if set(map(type, metas)) <= {type(None)}:  # PEP 658 not offered (the common case): no call per file
        has_meta, meta_shas = [False] * len(files), [None] * len(files)
    else:
        pairs = [_metadata_attr(m) for m in metas]
        has_meta, meta_shas = [m for m, _ in pairs], [s for _, s in pairs]
    requires, yanked, uploaded, sizes = column("requires-python"), column("yanked"), column("upload-time"), column("size")
    if "" in requires:
        requires = [r or None for r in requires]
    if not set(map(type, yanked)) <= {type(None)}:
        yanked = [None if y is None or y is False or y == "\0" else ("" if y is True else y) for y in yanked]
    if "" in uploaded:
        uploaded = [u or None for u in uploaded]
    if not set(map(type, sizes)) <= {int} or min(sizes, default=0) < 0:
        sizes = [z if type(z) is int and z >= 0 else None for z in sizes]
    columns = [column("filename"), column("url"), "\n".join(shas).lower().split("\n"), requires, yanked, uploaded, sizes,
               has_meta, meta_shas]
    return PageFiles.checked(index, columns, remote=True)
