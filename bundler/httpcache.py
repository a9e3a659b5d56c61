"""On-disk caches for the planner: index pages with HTTP revalidation, core metadata by file hash.

The cache directory and the content-addressed store of whole files belong to ``bundler.cache``; the
sha256 records of files a find-links page gives no hash for, to ``bundler.findlinks``.

Layout under the cache directory::

    pages/<sha256 of redacted URL>.json   {"url", "etag", "last-modified", "content-type", "stored", "max-age", "body-sha256"}
    pages/<sha256 of redacted URL>.body   the page bytes
    choices/<key>                         a target's ranking of a page (``bundler.choicememo``)
    metadata/<key>                        core metadata, permanent; key = sha256(file sha256 | file URL)

Each kind is one flat folder. A cold lock writes a few hundred entries, and on common file systems
making a folder costs more than the write itself (ext4 searches its block groups for a new folder's
place); one folder of many thousand entries is still a cheap look-up on all of them. Every write goes
to a temporary file first and is published with ``os.replace``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bundler.fsutil import atomic_write, read_regular
from bundler.errors import IndexUnavailable
from bundler.index import IndexConfig, Link, project_of_filename, redact_url


MAX_PAGE = 64 << 20  # the largest simple page on PyPI is a few MB
MAX_RECORD = 16 << 20  # validator records and core metadata
LINKS_FORMAT = "wheelhouse-links-2"  # changes whenever a parser or Link changes what a page yields


def _read(path: Path, limit: int) -> bytes:
    """``read_regular`` refusing a link: ``_store`` never leaves one, so a link was planted, and
    what it points at (outside the cache, perhaps) is no cache entry."""
    if not hasattr(os, "O_NOFOLLOW") and path.is_symlink():  # else the open refuses it
        raise OSError(errno.ELOOP, "a link, not a cache entry", str(path))
    return read_regular(path, limit, follow=False)


_folders: set[Path] = set()  # cache folders this process made or found: not made again for each entry
_folders_lock = threading.Lock()


def _store(path: Path, data: bytes) -> None:
    """Write a cache entry; the cache is an optimisation, so a full disk or a damaged cache folder
    (a file where a folder should be) costs a later miss, never the run."""
    folder = path.parent
    try:
        with _folders_lock:
            known = folder in _folders
        try:
            atomic_write(path, data, make_parent=not known)
        except FileNotFoundError:  # the folder was removed meanwhile: made again, once
            if not known:
                raise
            atomic_write(path, data)
        if not known:
            with _folders_lock:
                _folders.add(folder)
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


def _absolute_http(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL with a host (what a redirect of a page can lead to)."""
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and url.isprintable() and " " not in url
    except ValueError:
        return False


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
        base = self.root / "pages" / key
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
                or not abs(stored) < 1e18 or not isinstance(max_age, int) or isinstance(max_age, bool)
                or (texts[3] is not None and not _absolute_http(texts[3]))):  # where a redirect led: a web URL
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

    def _metadata_path(self, sha256: str) -> Path:
        assert self.root is not None
        return self.root / "metadata" / sha256

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
            return _read(self.root / "choices" / key, MAX_RECORD)
        except OSError:
            return None

    def put_choices(self, key: str, data: bytes) -> None:
        if self.root is not None:
            _store(self.root / "choices" / key, data)

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
