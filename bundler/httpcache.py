"""On-disk caches for the planner: index pages with HTTP revalidation, core metadata by file hash.

The cache directory and the content-addressed store of whole files belong to ``bundler.cache``; the
sha256 records of files a find-links page gives no hash for, to ``bundler.findlinks``.

Layout under the cache directory::

    pages/<sha256 of redacted URL>.json   {"url", "etag", "last-modified", "content-type", "stored", "max-age"}
    pages/<sha256 of redacted URL>.body   the page bytes
    pages/<sha256 of redacted URL>.links  the page's parsed links (``put_links``): sha256 of the rest,
                                          a newline, then {"key", "columns": [[value per link], ...]}
    metadata/<aa>/<key>                   core metadata, permanent; key = sha256(file sha256 | file URL)

Every write goes to a temporary file first and is published with ``os.replace``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit, urlunsplit

from bundler.fsutil import atomic_write, read_regular
from bundler.errors import IndexUnavailable
from bundler.index import IndexConfig, Link, project_of_filename, redact_url


MAX_PAGE = 64 << 20  # the largest simple page on PyPI is a few MB
MAX_RECORD = 16 << 20  # validator records and core metadata
LINKS_FORMAT = "wheelhouse-links-1"  # changes whenever a parser or Link changes what a page yields


def _read(path: Path, limit: int) -> bytes:
    """``read_regular`` refusing a link: ``_store`` never leaves one, so a link was planted, and
    what it points at (outside the cache, perhaps) is no cache entry."""
    if path.is_symlink():
        raise OSError(errno.ELOOP, "a link, not a cache entry", str(path))
    return read_regular(path, limit)


def _store(path: Path, data: bytes) -> None:
    """Write a cache entry; the cache is an optimisation, so a full disk or a damaged cache folder
    (a file where a folder should be) costs a later miss, never the run."""
    try:
        atomic_write(path, data)
    except OSError:
        pass


@dataclass(frozen=True, slots=True)
class CachedPage:
    url: str
    body: bytes
    content_type: str
    etag: str | None
    last_modified: str | None
    stored: float
    max_age: int
    final_url: str | None = None  # where the page was after redirects (redacted); None: the URL itself
    # the body's digest when read back (checked) or when the fetch hashed it, so it is never hashed twice
    body_sha256: str | None = field(default=None, compare=False)

    @property
    def fresh(self) -> bool:
        return time.time() - self.stored < self.max_age

    def base(self, url: str) -> str:
        """The URL this page's relative links resolve against (it was asked for as ``url``): where
        it was after redirects. The cache stores that URL without credentials; on the same host they
        are put back from ``url``."""
        final = self.final_url
        if not final:
            return url
        asked, got = urlsplit(url), urlsplit(final)
        if "@" in asked.netloc and asked.netloc.rsplit("@", 1)[1] == got.netloc:
            return urlunsplit((got.scheme, asked.netloc, got.path, got.query, got.fragment))
        return final


def max_age_of(cache_control: str | None) -> int:
    """Seconds a response may be reused without revalidation, from Cache-Control (0 if none)."""
    if not cache_control or "no-store" in cache_control or "no-cache" in cache_control:
        return 0
    m = re.search(r"max-age=(\d+)", cache_control)
    return int(m.group(1)) if m else 0


class PlannerCache:
    """Page and metadata caches rooted at ``root`` (or an in-memory no-op when ``root`` is None)."""

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root).absolute() if root is not None else None  # as BlobStore's

    def _page_paths(self, url: str) -> tuple[Path, Path]:
        assert self.root is not None
        key = hashlib.sha256(redact_url(url).encode()).hexdigest()
        base = self.root / "pages" / key[:2] / key
        return base.with_suffix(".json"), base.with_suffix(".body")

    def get_page(self, url: str) -> CachedPage | None:
        if self.root is None:
            return None
        meta_path, body_path = self._page_paths(url)
        try:
            meta = json.loads(_read(meta_path, MAX_RECORD))
            body = _read(body_path, MAX_PAGE)
        except (OSError, ValueError, RecursionError):
            return None
        # A torn, damaged or edited entry is a miss, never wrong data and never a traceback.
        if not isinstance(meta, dict) or hashlib.sha256(body).hexdigest() != meta.get("body-sha256"):
            return None
        texts = [meta.get(k) for k in ("content-type", "etag", "last-modified", "final-url")]
        stored, max_age = meta.get("stored", 0), meta.get("max-age", 0)
        # a stored time is finite and float() can take it (1e400 as an integer would overflow)
        if (not all(t is None or isinstance(t, str) for t in texts) or not isinstance(stored, (int, float))
                or not abs(stored) < 1e18 or not isinstance(max_age, int) or isinstance(max_age, bool)):
            return None
        return CachedPage(url=url, body=body, content_type=texts[0] or "", etag=texts[1], last_modified=texts[2],
                          stored=float(stored), max_age=max_age, final_url=texts[3], body_sha256=meta["body-sha256"])

    def put_page(self, page: CachedPage, *, body_unchanged: bool = False) -> None:
        """Store a page; after a 304, ``body_unchanged`` rewrites only the small validator record."""
        if self.root is None:
            return
        meta_path, body_path = self._page_paths(page.url)
        if not body_unchanged:
            _store(body_path, page.body)
        meta = {
            "url": redact_url(page.url),
            "content-type": page.content_type,
            "etag": page.etag,
            "last-modified": page.last_modified,
            "stored": page.stored,
            "max-age": page.max_age,
            "body-sha256": page.body_sha256 or hashlib.sha256(page.body).hexdigest(),
        }
        if page.final_url and redact_url(page.final_url) != redact_url(page.url):
            meta["final-url"] = redact_url(page.final_url)
        _store(meta_path, json.dumps(meta).encode())

    # -- parsed pages: a warm lock reads the links of a big page without parsing and validating it

    def get_links(self, url: str, key: str, index: IndexConfig, remote: bool) -> list[Link] | None:
        """The links stored by ``put_links(url, key, ...)`` for exactly this ``key``, or None.

        The record is outside input: a torn, damaged or edited record, or one for another key,
        is a miss (never wrong links, never a traceback); its links are checked again by
        ``plausible_links``."""
        if self.root is None:
            return None
        try:
            data = _read(self._page_paths(url)[0].with_suffix(".links"), MAX_PAGE)
            digest, _, payload = data.partition(b"\n")
            if hashlib.sha256(payload).hexdigest().encode() != digest:
                return None
            record = json.loads(payload)
            if not isinstance(record, dict) or record.get("key") != key:
                return None
            return _links_of(record.get("columns"), index, remote)
        except (OSError, ValueError, TypeError, RecursionError):
            return None

    def put_links(self, url: str, key: str, links: Sequence[Link]) -> None:
        """Remember the parsed ``links`` of the page at ``url`` under ``key`` (see ``links_key``)."""
        if self.root is None:
            return
        columns = [[k.filename for k in links], [k.url for k in links], [k.sha256 for k in links],
                   [k.requires_python for k in links], [k.yanked for k in links],
                   [k.upload_time.isoformat() if k.upload_time else None for k in links], [k.size for k in links],
                   [k.metadata for k in links], [k.metadata_sha256 for k in links]]
        payload = json.dumps({"key": key, "columns": columns}, separators=(",", ":")).encode()
        _store(self._page_paths(url)[0].with_suffix(".links"), hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)

    def _metadata_path(self, sha256: str) -> Path:
        assert self.root is not None
        return self.root / "metadata" / sha256[:2] / sha256

    def get_metadata(self, key: str | None) -> bytes | None:
        if self.root is None or not key:
            return None
        try:
            return _read(self._metadata_path(key), MAX_RECORD)
        except OSError:
            return None

    def put_metadata(self, key: str | None, data: bytes) -> None:
        if self.root is None or not key:
            return
        _store(self._metadata_path(key), data)

    def get_choices(self, key: str) -> bytes | None:
        """A record of ``bundler.choicememo`` (the usable versions of a page on a target), or None."""
        if self.root is None:
            return None
        try:
            return _read(self.root / "choices" / key[:2] / key, MAX_RECORD)
        except OSError:
            return None

    def put_choices(self, key: str, data: bytes) -> None:
        if self.root is not None:
            _store(self.root / "choices" / key[:2] / key, data)

    def kept_wheel_metadata(self, link: Link) -> bytes | None:
        """The core metadata of ``link`` read from its whole wheel in the blob store (kept there by a
        fetch, or by a metadata read that had to download it), re-hashed first; None when the store
        lacks it. ``BadMetadata`` when the wheel holds none."""
        from bundler.cache import BlobStore
        from bundler.localfiles import open_regular
        from bundler.wheelmeta import metadata_from_zip

        if self.root is None or not link.sha256:
            return None
        blob = BlobStore(self.root).verified(link.sha256, link.size)
        if blob is None:
            return None
        with open_regular(blob) as f:
            return metadata_from_zip(f, project_of_filename(link.filename))


def offline_miss(what: str) -> IndexUnavailable:
    """The error for something ``--offline`` needs that the cache lacks (``what`` names it)."""
    return IndexUnavailable(f"offline: {what} is not in the cache; run once online", hint="run the same command without "
                            "--offline once, with network, to fill the cache (--cache-dir must be the same)")


def links_key(body: bytes, content_type: str, page_url: str, index: IndexConfig, *, body_sha256: str | None = None) -> str | None:
    """What the links of a page depend on, hashed: the parser format, the body, its Content-Type,
    the URL relative links resolve against, and the index. None when a URL carries credentials
    (relative links would inherit them, and the cache never stores credentials)."""
    if redact_url(page_url) != page_url or redact_url(index.url) != index.url:
        return None
    fields = [LINKS_FORMAT, body_sha256 or hashlib.sha256(body).hexdigest(), content_type, page_url, index.name, index.url]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


_STR, _BOOL, _TEXT, _SIZE = {str}, {bool}, {str, type(None)}, {int, type(None)}


def _types(values: list[Any]) -> set[type]:
    return set(map(type, values))


def _links_of(columns: Any, index: IndexConfig, remote: bool) -> list[Link] | None:
    """Links from stored columns (a list of values per ``Link`` field, as ``put_links`` writes them),
    or None when they are not plausible (``plausible_links``, checked on the columns before any Link
    is made); TypeError or ValueError when they are anything else."""
    if type(columns) is not list or len(columns) != 9 or any(type(c) is not list for c in columns):
        raise TypeError("not link columns")
    names, urls, shas, requires, yanked, uploaded, sizes, metadata, meta_shas = columns
    if len({len(c) for c in columns}) != 1:
        raise ValueError("columns of different lengths")
    # the exact type of every value, counted in C (``set(map(type, ...))``): bool is not int here
    if not (_types(names) <= _STR and _types(urls) <= _STR and _types(metadata) <= _BOOL
            and all(_types(c) <= _TEXT for c in (shas, requires, yanked, uploaded, meta_shas)) and _types(sizes) <= _SIZE
            and min(filter(None, sizes), default=0) >= 0):
        raise TypeError("not link columns")
    times = [None if v is None else datetime.fromisoformat(v) for v in uploaded]
    if any(t is not None and t.tzinfo is None for t in times):
        raise ValueError("upload time without a time zone")
    digests = [h for h in (*shas, *meta_shas) if h is not None]
    if not _plausible(names, urls, digests, [t for t in (*requires, *yanked) if t is not None], remote):
        return None
    name, base = index.name, index.url
    return [Link(filename=f, url=u, index=name, index_url=base, sha256=s, requires_python=r, yanked=y, upload_time=t, size=z,
                 metadata=m, metadata_sha256=ms)
            for f, u, s, r, y, t, z, m, ms in zip(names, urls, shas, requires, yanked, times, sizes, metadata, meta_shas)]


def plausible_links(links: Sequence[Link], remote: bool) -> bool:
    """The cheap half of ``index._entry_link``'s checks, for links read back from the cache of parsed
    pages: the names' character set, the URLs' schemes and characters,
    the digests' shape, printable texts. The full filename grammar was checked when the page was
    parsed. One regex over all values joined, since a page may list tens of thousands of files."""
    digests = [h for k in links for h in (k.sha256, k.metadata_sha256) if h is not None]
    texts = [t for k in links for t in (k.requires_python, k.yanked) if t is not None]
    return _plausible([k.filename for k in links], [k.url for k in links], digests, texts, remote)


def _plausible(names: list[str], urls: list[str], digests: list[str], texts: list[str], remote: bool) -> bool:
    schemes = ("http://", "https://") if remote else ("http://", "https://", "file:")
    joined = "".join(urls)
    # isprintable() is false for every whitespace but " " and every control character, and is
    # faster than the regex, which decides only when it fails
    clean_urls = (joined.isprintable() and " " not in joined) or _BAD_URL_CHAR.search(joined) is None
    return (max(map(len, names), default=0) <= 255 and _DIST_NAMES.fullmatch(_lines(names)) is not None
            and clean_urls and all(map(str.startswith, urls, repeat(schemes)))
            and _DIGESTS.fullmatch(_lines(digests)) is not None and _CONTROL.search("".join(texts)) is None)


def _lines(items: list[str]) -> str:
    """One item per line; an item holding a newline itself (which would pass as two) gives a
    string no pattern here matches."""
    text = "\n".join(items) + "\n" if items else ""
    return text if text.count("\n") == len(items) else "\0"


# Newline-separated lists for ``plausible_links``: no name or digest may hold a newline.
# The same classes as ``bundler.index`` checks (tests compare plausible_links with a per-link check).
_BAD_URL_CHAR = re.compile(r"[\s\x00-\x1f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DIST_NAMES = re.compile(r"(?:[A-Za-z0-9._+!-]+\.(?:whl|tar\.gz|zip|tar\.bz2|tgz)\n)*")
_DIGESTS = re.compile(r"(?:[0-9a-f]{64}\n)*")
