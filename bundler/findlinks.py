"""Files on a remote find-links page that publishes no hashes: each is hashed on its first download.

A plain directory listing (``python -m http.server``, an nginx autoindex) gives no ``#sha256=``
fragments, and every locked file is installed with ``--require-hashes``. As ``pip-compile
--generate-hashes`` does, the planner downloads such a file whole when it first needs it (its
metadata, or its pin), hashes the bytes as they stream to disk, and from then on treats the link as
carrying that sha256; the bytes go to the content-addressed store, so fetch finds them there.
Remote simple-API *indexes* without hashes stay refused (``bundler.select``).

What was learned is remembered per URL, with the validators the server sent for the file::

    hashed/<aa>/<sha256 of redacted URL>.json   {"url", "sha256", "size", "etag", "last-modified", "stored"}

A re-lock reuses a record as the planner reuses a cached page: without asking while it is younger
than the page TTL (0 under ``--refresh``), whatever its age ``--offline``, and otherwise only after
the server answers a conditional GET (``If-None-Match``/``If-Modified-Since``) with 304. Any other
answer is the whole file again, hashed again. A file replaced at the same URL within the TTL is not
seen by that re-lock; the lock and the cached bytes still agree, and a fetch from any other cache
checks the server's bytes against the locked hash and fails on a mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from bundler.cache import BlobStore
from bundler.errors import HashMismatch, IndexUnavailable
from bundler.fsutil import atomic_write, open_new, open_regular, read_regular
from bundler.httpcache import offline_miss
from bundler.index import Link, project_of_filename
from bundler.urls import redact_url
from bundler.wheelmeta import BadMetadata, metadata_from_zip

if TYPE_CHECKING:
    import httpx

# The largest file read to be hashed: the largest member a bundle may hold (``archive.MAX_MEMBER_SIZE``).
MAX_FILE = 8 << 30
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FileRecord:
    """The sha256 of the file at ``url`` (redacted) as last downloaded, and how to revalidate it."""

    url: str
    sha256: str
    size: int
    etag: str | None = None
    last_modified: str | None = None
    stored: float = 0.0

    def conditional_headers(self) -> dict[str, str]:
        """The headers of a GET that the server may answer with 304 when the file is unchanged."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


def _record_path(root: Path, url: str) -> Path:
    key = hashlib.sha256(redact_url(url).encode()).hexdigest()
    return root / "hashed" / key[:2] / f"{key}.json"


def read_record(root: Path | None, url: str) -> FileRecord | None:
    """The record for ``url``, or None when there is none. The cache is outside input: a torn, edited
    or foreign record (another URL, a malformed digest) is a miss, never a wrong hash."""
    if root is None:
        return None
    try:
        data = json.loads(read_regular(_record_path(root, url), 1 << 16))
        record = FileRecord(**{k.replace("-", "_"): data[k] for k in ("url", "sha256", "size", "etag", "last-modified", "stored")})
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        return None
    ok = (record.url == redact_url(url) and isinstance(record.sha256, str) and _SHA256.fullmatch(record.sha256) is not None
          and type(record.size) is int and record.size >= 0 and type(record.stored) in (int, float)
          and all(v is None or isinstance(v, str) for v in (record.etag, record.last_modified)))
    return record if ok else None


def write_record(root: Path | None, record: FileRecord) -> None:
    """Remember ``record`` (atomically); a cache that cannot be written costs a later download, never the run."""
    if root is None:
        return
    data = {k.replace("_", "-"): v for k, v in asdict(record).items()}
    path = _record_path(root, record.url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(data).encode())
    except OSError:
        pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Download:
    """A file read whole: its bytes at ``path`` (None for a 304 or an error status) and their digest."""

    status: int
    path: Path | None = None
    sha256: str = ""
    size: int = 0
    etag: str | None = None
    last_modified: str | None = None


def download(client: httpx.Client, url: str, headers: Mapping[str, str], folder: Path, *, what: str, limit: int = MAX_FILE,
             retries: int = 3, sleep: Callable[[float], None] = time.sleep) -> Download:
    """GET ``url`` whole into a new file in ``folder``, hashing it as it streams.

    The body is taken as sent (``Accept-Encoding: identity`` is asked for and any other encoding
    refused, since the hash must be the file's), and refused past ``limit`` bytes (``IndexUnavailable``
    naming ``what``). Connection errors, timeouts (also mid-body), 5xx and 429 are retried with
    backoff, as ``http.request_with_retries`` does; the last transport error is raised (an
    ``httpx.HTTPError``) and the last status returned. The caller owns (and removes) the file.
    """
    from bundler.http import with_retries

    return with_retries(lambda may_retry: _attempt(client, url, {**headers, "Accept-Encoding": "identity"}, folder, what,
                                                   limit, may_retry), retries, sleep)


def _attempt(client: httpx.Client, url: str, headers: dict[str, str], folder: Path, what: str, limit: int,
             may_retry: bool) -> Download:
    from bundler.http import RETRY_STATUS, Again, retry_after

    with client.stream("GET", url, headers=headers) as r:
        if r.status_code in RETRY_STATUS and may_retry:
            raise Again(retry_after(r))
        etag, modified = r.headers.get("ETag"), r.headers.get("Last-Modified")
        if r.status_code != 200:
            return Download(status=r.status_code, etag=etag, last_modified=modified)
        encoding = r.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("identity", ""):
            raise IndexUnavailable(f"{what}: {redact_url(url)} was sent {encoding}-encoded although identity was asked for",
                                   hint="the hash must be of the file's own bytes: check for a proxy that compresses downloads")
        length = r.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            raise _too_large(what, url, limit)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"unhashed-{os.getpid()}-{os.urandom(8).hex()}.part"
        h, size = hashlib.sha256(), 0
        try:
            with open_new(path) as out:
                for chunk in r.iter_raw():
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(what, url, limit)
                    h.update(chunk)
                    out.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Download(status=200, path=path, sha256=h.hexdigest(), size=size, etag=etag, last_modified=modified)


def _too_large(what: str, url: str, limit: int) -> IndexUnavailable:
    return IndexUnavailable(f"{what}: {redact_url(url)} is larger than {limit} bytes, the most wheelhouse reads to hash "
                            "a file its page gives no sha256 for",
                            hint="publish the file's sha256 (a #sha256= fragment on its link), or serve it from a "
                                 "local --find-links folder")


Get = Callable[[str, Mapping[str, str], Path, str], Download]  # (url, headers, folder, what): ``download`` bound to a client


class UnhashedFiles:
    """The sha256 of each file a remote find-links page links without one, learned once per run
    (thread-safe: the first caller downloads, the others wait for it), and what was learned on the
    way: the wheel's core metadata, and for the lock's note how many files were hashed."""

    def __init__(self, root: Path | None, get: Get, *, ttl: float, offline: bool) -> None:
        self.root = root  # the cache directory; None: nothing is remembered beyond this run
        self._get = get
        self.ttl = ttl
        self.offline = offline
        self._lock = threading.Lock()
        self._links: dict[str, Future[Link]] = {}
        self._metadata: dict[str, bytes] = {}
        self._counts: dict[str, list[int]] = {}  # find-links URL -> [downloaded now, by an earlier run]

    def hashed(self, link: Link) -> Link:
        """``link`` with the sha256 and size of the file at its URL."""
        with self._lock:
            fut = self._links.get(link.url)
            owner = fut is None
            if fut is None:
                fut = self._links[link.url] = Future()
        if owner:  # hashed on this thread: waiting on a pool task could deadlock a full pool
            try:
                fut.set_result(self._hash(link))
            except BaseException as e:
                fut.set_exception(e)
        return fut.result()

    def metadata(self, link: Link) -> bytes | None:
        """The core metadata read from the wheel at ``link`` when this run downloaded it, else None."""
        with self._lock:
            return self._metadata.get(link.url)

    def notes(self) -> list[str]:
        """One ``note`` per find-links page whose files were hashed here."""
        with self._lock:
            return [note(url, *counts) for url, counts in self._counts.items()]

    def _hash(self, link: Link) -> Link:
        direct = link.index == "direct"  # a ``name @ URL`` requirement without a #sha256=
        what = f"direct reference {redact_url(link.url)}" if direct else f"find-links {link.index} ({redact_url(link.index_url)})"
        record = read_record(self.root, link.url)
        if record is not None and (self.offline or time.time() - record.stored < self.ttl):
            return self._use(link, record, downloaded=False)
        if self.offline:
            raise offline_miss(f"the sha256 of {link.filename} from {what}")
        folder = self.root / "partial" if self.root is not None else Path(tempfile.gettempdir())
        got = self._get(link.url, record.conditional_headers() if record else {}, folder, what)
        if got.status == 304 and record is not None:  # unchanged since it was hashed
            record = replace(record, stored=time.time(), etag=got.etag or record.etag,
                             last_modified=got.last_modified or record.last_modified)
            write_record(self.root, record)
            return self._use(link, record, downloaded=False)
        if got.path is None:
            why = {401: " (authentication required)", 403: " (access denied)", 404: " (not found)", 410: " (gone)"}
            raise IndexUnavailable((f"{what} answered" if direct else f"{what} links {link.filename}, but "
                                    f"{redact_url(link.url)} answered") + f" HTTP {got.status}{why.get(got.status, '')}",
                                   hint="credentials come from the URL or ~/.netrc" if got.status in (401, 403) else
                                   None if direct else "the page lists a file the server does not serve: fix the page")
        try:
            meta = None
            if link.is_wheel:
                try:
                    with open_regular(got.path) as f:
                        meta = metadata_from_zip(f, project_of_filename(link.filename))
                except BadMetadata as e:
                    raise IndexUnavailable(f"cannot read the metadata of {link.filename} from {what}: {e}") from None
            if self.root is not None:  # fetch (and a build) will find the bytes here
                store = BlobStore(self.root)
                with store.locked(got.sha256):
                    if store.verified(got.sha256, got.size) is None:
                        store.publish(got.path, got.sha256)
        finally:
            got.path.unlink(missing_ok=True)
        record = FileRecord(url=redact_url(link.url), sha256=got.sha256, size=got.size, etag=got.etag,
                            last_modified=got.last_modified, stored=time.time())
        write_record(self.root, record)
        if meta is not None:
            with self._lock:
                self._metadata[link.url] = meta
        return self._use(link, record, downloaded=True)

    def _use(self, link: Link, record: FileRecord, *, downloaded: bool) -> Link:
        if link.index != "direct":
            with self._lock:
                self._counts.setdefault(link.index_url, [0, 0])[0 if downloaded else 1] += 1
        return replace(link, sha256=record.sha256, size=record.size)


def note(index_url: str, downloaded: int, reused: int) -> str:
    """The lock's note on a find-links page that publishes no hashes."""
    total = downloaded + reused
    text = (f"find-links {redact_url(index_url)} publishes no sha256 hashes: {total} file{'s' if total != 1 else ''} "
            f"hashed on download")
    if reused:
        text += f" ({reused} by an earlier run)"
    return text + ", as pip-compile --generate-hashes does; fetch checks the server's bytes against these hashes"


def whole_wheel_metadata(link: Link, get: Callable[[Path], Download], root: Path | None) -> bytes:
    """The METADATA of ``link``'s wheel read whole: streamed to a file by ``get(folder)`` (the cache's
    ``partial/`` folder, else a temporary one), checked against the index's sha256, kept in the blob
    store for the fetch stage, and read from the disk, never from memory."""
    folder = root / "partial" if root is not None else Path(tempfile.mkdtemp(prefix="wheelhouse-wheel-"))
    got = get(folder)
    try:
        if got.path is None:
            raise IndexUnavailable(f"index {link.index} answered HTTP {got.status} for {redact_url(link.url)}")
        if link.sha256 and got.sha256 != link.sha256:
            raise HashMismatch(f"{link.filename} ({redact_url(link.url)})", link.sha256, got.sha256)
        with open_regular(got.path) as f:
            meta = metadata_from_zip(f, project_of_filename(link.filename))
        if root is not None and link.sha256:
            store = BlobStore(root)
            with store.locked(got.sha256):
                if store.verified(got.sha256, got.size) is None:
                    store.publish(got.path, got.sha256)
        return meta
    finally:
        if got.path is not None:
            got.path.unlink(missing_ok=True)
        if root is None:
            shutil.rmtree(folder, ignore_errors=True)
