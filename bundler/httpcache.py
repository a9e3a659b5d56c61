"""On-disk caches for the planner: index pages with HTTP revalidation, core metadata by file hash.

The cache directory and the content-addressed store of whole files belong to ``bundler.cache``.

Layout under the cache directory::

    pages/<sha256 of redacted URL>.json   {"url", "etag", "last-modified", "content-type", "stored", "max-age"}
    pages/<sha256 of redacted URL>.body   the page bytes
    metadata/<aa>/<key>                   core metadata, permanent; key = sha256(file sha256 | file URL)

Every write goes to a temporary file first and is published with ``os.replace``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from bundler.fsutil import atomic_write, read_regular
from bundler.index import redact_url


MAX_PAGE = 64 << 20  # the largest simple page on PyPI is a few MB
MAX_RECORD = 16 << 20  # validator records and core metadata


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

    @property
    def fresh(self) -> bool:
        return time.time() - self.stored < self.max_age


def max_age_of(cache_control: str | None) -> int:
    """Seconds a response may be reused without revalidation, from Cache-Control (0 if none)."""
    if not cache_control or "no-store" in cache_control or "no-cache" in cache_control:
        return 0
    m = re.search(r"max-age=(\d+)", cache_control)
    return int(m.group(1)) if m else 0


class PlannerCache:
    """Page and metadata caches rooted at ``root`` (or an in-memory no-op when ``root`` is None)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

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
            meta = json.loads(read_regular(meta_path, MAX_RECORD))
            body = read_regular(body_path, MAX_PAGE)
        except (OSError, ValueError, RecursionError):
            return None
        # A torn, damaged or edited entry is a miss, never wrong data and never a traceback.
        if not isinstance(meta, dict) or hashlib.sha256(body).hexdigest() != meta.get("body-sha256"):
            return None
        texts = [meta.get(k) for k in ("content-type", "etag", "last-modified", "final-url")]
        stored, max_age = meta.get("stored", 0), meta.get("max-age", 0)
        if (not all(t is None or isinstance(t, str) for t in texts) or not isinstance(stored, (int, float))
                or not isinstance(max_age, int) or isinstance(max_age, bool)):
            return None
        return CachedPage(url=url, body=body, content_type=texts[0] or "", etag=texts[1], last_modified=texts[2],
                          stored=float(stored), max_age=max_age, final_url=texts[3])

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
            "body-sha256": hashlib.sha256(page.body).hexdigest(),
        }
        if page.final_url and redact_url(page.final_url) != redact_url(page.url):
            meta["final-url"] = redact_url(page.final_url)
        _store(meta_path, json.dumps(meta).encode())

    def _metadata_path(self, sha256: str) -> Path:
        assert self.root is not None
        return self.root / "metadata" / sha256[:2] / sha256

    def get_metadata(self, key: str | None) -> bytes | None:
        if self.root is None or not key:
            return None
        try:
            return read_regular(self._metadata_path(key), MAX_RECORD)
        except OSError:
            return None

    def put_metadata(self, key: str | None, data: bytes) -> None:
        if self.root is None or not key:
            return
        _store(self._metadata_path(key), data)
