"""Resumable, rate-limited, retrying, verified downloads into the content-addressed store.

One transfer per file, ``jobs`` at a time, at most ``per_host`` of them to one host, each on its own
HTTP/1.1 connection (``http2=True`` multiplexes them over one connection instead). For each file:

* a verified blob already in the store is used (re-hashed first) and nothing is requested;
* otherwise bytes go to ``partial/<sha256>.part`` beside a state record (redacted URL, size, sha256,
  ETag/Last-Modified). A later attempt — in this run or the next, after a reset, a short body, a
  stall or ``kill -9`` — re-hashes the bytes on disk and asks for the rest with ``Range`` and
  ``If-Range``. A 206 whose ``Content-Range`` does not start where the file ends, a 200, a 416 and a
  400 are all answered by starting over cleanly, never by appending;
* the body is hashed while it streams; when it is complete, size and sha256 decide. A mismatch
  throws the bytes away and fetches once more from scratch; a second mismatch is an error. Only a
  verified file is published (``os.replace``) into the store.

``Accept-Encoding: identity`` is asked for and any other Content-Encoding refused: a decoded body
would not hash right and its offsets would not match the file's. Connection errors, timeouts
(including stalls: no byte for ``timeout`` seconds), 5xx and 429 (with Retry-After) are retried
with exponential backoff and jitter.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import httpx

from bundler.cache import BlobStore, PartialState
from bundler.errors import BadInput, BundlerError, DownloadFailed, HashMismatch
from bundler.localfiles import local_path, open_regular
from bundler.fsutil import default_file_mode, open_existing, open_new, remove_odd, sha256_file, temp_prefix
from bundler.http import RateLimiter, backoff_delay, describe_http_error, make_client, retry_after
from bundler.index import redact_url
from bundler.lock import Lock

_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?(?:/s)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True, slots=True, kw_only=True)
class FileSpec:
    """One file to fetch: where from, and what its bytes must be."""

    url: str
    sha256: str
    size: int | None
    filename: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchOptions:
    """Knobs of the fetch stage (``limit_rate`` in bytes per second over all transfers)."""

    jobs: int = 8
    per_host: int = 8
    limit_rate: float | None = None
    retries: int = 5
    timeout: float = 30.0
    cert: str | None = None
    # HTTP/1.1 by default: HTTP/2 multiplexes every transfer to a host over one connection, and
    # under per-connection shaping that measured 0.30x of parallel curl (4 connections: 0.96x).
    http2: bool = False
    offline: bool = False  # only verified blobs (and local files): no client, no request


@dataclass(slots=True)
class FetchReport:
    """What a fetch did; ``paths`` maps each sha256 to its verified blob."""

    files: int = 0
    cached: int = 0
    downloaded: int = 0
    bytes: int = 0
    resumed_bytes: int = 0
    retries: int = 0
    elapsed: float = 0.0
    paths: dict[str, Path] = field(default_factory=dict)


class Reporter(Protocol):
    """Progress callbacks; called from worker threads (implementations must be thread-safe)."""

    def start(self, files: int, total_bytes: int) -> None: ...
    def file_start(self, spec: FileSpec, offset: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def file_end(self, spec: FileSpec) -> None: ...
    def retry(self, spec: FileSpec, reason: str, delay: float) -> None: ...


class NullReporter:
    """Reports nothing."""

    def start(self, files: int, total_bytes: int) -> None: pass
    def file_start(self, spec: FileSpec, offset: int) -> None: pass
    def advance(self, nbytes: int) -> None: pass
    def file_end(self, spec: FileSpec) -> None: pass
    def retry(self, spec: FileSpec, reason: str, delay: float) -> None: pass


def parse_rate(text: str) -> float:
    """Bytes per second from ``2M``, ``500K``, ``1.5G``, ``800000`` (decimal units, as curl's)."""
    m = _RATE.fullmatch(text)
    if not m or float(m.group(1)) <= 0:
        raise BadInput(f"--limit-rate {text!r} is not a rate", hint="give bytes per second, e.g. 500K, 2M or 1.5G")
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


class _Retry(Exception):
    """This attempt failed in a way another attempt may fix."""

    def __init__(self, reason: str, *, delay: float | None = None, restart: bool = False, no_range: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay  # None: exponential backoff; 0: at once
        self.restart = restart  # throw the partial bytes away
        self.no_range = no_range  # the server mishandles Range: ask for whole files from now on


class _Cancelled(Exception):
    pass


@dataclass(slots=True)
class _Shared:
    """State shared by the transfers of one run."""

    store: BlobStore
    client: httpx.Client
    options: FetchOptions
    reporter: Reporter
    limiter: RateLimiter | None
    report: FetchReport
    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    hosts: dict[str, threading.Semaphore] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep

    def host_slot(self, url: str) -> threading.Semaphore:
        host = httpx.URL(url).host
        with self.lock:
            return self.hosts.setdefault(host, threading.Semaphore(self.options.per_host))

    def count(self, **deltas: int) -> None:
        with self.lock:
            for k, v in deltas.items():
                setattr(self.report, k, getattr(self.report, k) + v)


class _Transfer:
    """Brings one file into the store, resuming what an earlier attempt left."""

    def __init__(self, spec: FileSpec, shared: _Shared) -> None:
        self.spec = spec
        self.s = shared
        self.where = redact_url(spec.url)
        self.part, _ = shared.store.partial_paths(spec.sha256)
        self.use_range = True
        self.expected = spec.size  # learned from Content-Length / Content-Range when the lock has no size

    def run(self) -> Path:
        with self.s.store.locked(self.spec.sha256):  # another process may be on the same file
            found = self.s.store.verified(self.spec.sha256, self.spec.size)
            if found is not None:
                self.s.count(cached=1)
                return found
            local = local_path(self.spec.url)
            if local is not None:
                return self._copy_local(local)
            return self._download()

    def _copy_local(self, source: Path) -> Path:
        """A file on this machine (a find-links folder, a ``path`` entry): copied into the store
        while it is hashed, and kept only if the bytes are the ones the lock names."""
        spec = self.spec
        h, size = hashlib.sha256(), 0
        try:
            self.part.parent.mkdir(parents=True, exist_ok=True)
            with open_regular(source) as src, open_new(self.part) as out:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except OSError as e:
            self.part.unlink(missing_ok=True)
            raise DownloadFailed(f"cannot read {spec.filename} at {source}: {e.strerror or e}",
                                 hint="the lock names a local file: check the path, or lock again") from None
        if h.hexdigest() != spec.sha256 or (spec.size is not None and size != spec.size):
            self.part.unlink(missing_ok=True)
            raise HashMismatch(f"{spec.filename} at {source}", spec.sha256, h.hexdigest(),
                               hint="the local file changed since it was locked: lock again")
        self.s.count(downloaded=1, bytes=size)
        return self.s.store.publish(self.part, spec.sha256)

    def _download(self) -> Path:
        spec, store = self.spec, self.s.store
        state = store.read_state(spec.sha256)
        if state is None or state.size != spec.size:
            store.discard_partial(spec.sha256)
            state = PartialState(url=self.where, sha256=spec.sha256, size=spec.size)
        attempt = mismatches = 0
        while True:
            if self.s.cancel.is_set():
                raise _Cancelled
            try:
                digest, size = self._attempt(state)
                if digest == spec.sha256 and (spec.size is None or size == spec.size):
                    path = store.publish(self.part, spec.sha256)
                    store.discard_partial(spec.sha256)
                    self.s.count(downloaded=1)
                    return path
                store.discard_partial(spec.sha256)
                state = PartialState(url=self.where, sha256=spec.sha256, size=spec.size)
                mismatches += 1
                if mismatches >= 2:
                    raise HashMismatch(f"{spec.filename} from {self.where}", spec.sha256, digest,
                                       hint="the index serves different bytes than the lock names: check for a proxy or "
                                            "mirror rewriting files, or re-lock if the project replaced the file")
                failure = _Retry(f"sha256 {digest} does not match the lock; fetching again from scratch", delay=0)
            except _Retry as r:
                failure = r
            except httpx.TransportError as e:
                failure = _Retry(describe_http_error(e, spec.url))
            except httpx.TooManyRedirects:
                raise DownloadFailed(f"could not download {spec.filename}: {self.where} redirects in a loop or too often",
                                     hint="check the URL, or a proxy or mirror that redirects back to itself") from None
            except httpx.HTTPError as e:  # not worth retrying: a bad URL, an unsupported scheme, a broken encoding
                raise DownloadFailed(f"could not download {spec.filename}: {describe_http_error(e, spec.url)}") from None
            if failure.restart:
                store.discard_partial(spec.sha256)
                state = PartialState(url=self.where, sha256=spec.sha256, size=spec.size)
            self.use_range = self.use_range and not failure.no_range
            attempt += 1
            if attempt > self.s.options.retries:
                kept = self.part.stat().st_size if self.part.exists() else 0
                raise DownloadFailed(
                    f"could not download {spec.filename} from {self.where}: {failure.reason} "
                    f"(gave up after {attempt} attempts)",
                    hint=("run the same command again to resume" + (f" ({kept} bytes are kept)" if kept else "")
                          + "; --retries and --timeout allow more patience"))
            delay = failure.delay if failure.delay is not None else backoff_delay(attempt - 1)
            self.s.count(retries=1)
            self.s.reporter.retry(spec, failure.reason, delay)
            if delay:
                self.s.sleep(delay)

    def _attempt(self, state: PartialState) -> tuple[str, int]:
        """One request; returns (sha256, size) of the whole file on disk once the body is complete."""
        spec = self.spec
        remove_odd(self.part)  # a link or folder planted in the cache is not our partial file
        offset = self.part.stat().st_size if self.part.exists() else 0
        if offset and (not self.use_range or (spec.size is not None and offset > spec.size)):
            offset = 0
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if state.validator:
                headers["If-Range"] = state.validator
        with self.s.host_slot(spec.url), self.s.client.stream("GET", spec.url, headers=headers) as r:
            status = r.status_code
            if status == 429 or status >= 500:
                raise _Retry(f"HTTP {status} from the server", delay=retry_after(r))
            if offset and status == 416:
                if spec.size is not None and offset == spec.size:  # everything is on disk already
                    return sha256_file(self.part)
                raise _Retry("the server refused the byte range (HTTP 416); starting over", delay=0, restart=True)
            if offset and status == 400:
                raise _Retry("the server refused the byte range (HTTP 400); fetching the whole file", delay=0,
                             restart=True, no_range=True)
            if status not in (200, 206):
                why = {401: "authentication required", 403: "access denied", 404: "not found", 410: "gone"}.get(status, "")
                raise DownloadFailed(f"could not download {spec.filename}: HTTP {status}{' ' + why if why else ''} "
                                     f"from {self.where}",
                                     hint="credentials come from ~/.netrc" if status in (401, 403) else
                                     "the index no longer has this file: re-lock" if status in (404, 410) else None)
            encoding = r.headers.get("Content-Encoding", "identity").strip().lower()
            if encoding not in ("identity", ""):
                raise _Retry(f"the server sent a {encoding}-encoded body although identity was asked for")
            if status == 206:
                m = _CONTENT_RANGE.match(r.headers.get("Content-Range", ""))
                if not offset or m is None or int(m.group(1)) != offset:
                    raise _Retry(f"a partial answer starting at {m.group(1) if m else '?'} instead of byte {offset}; "
                                 "starting over", delay=0, restart=True)
                if self.expected is None and m.group(3) != "*":
                    self.expected = int(m.group(3))
            else:
                offset = 0  # a 200 is the whole file: start over cleanly
                length = r.headers.get("Content-Length", "")
                if spec.size is None and length.isdigit():
                    self.expected = int(length)
            state.etag = r.headers.get("ETag") or (state.etag if status == 206 else None)
            state.last_modified = r.headers.get("Last-Modified") or (state.last_modified if status == 206 else None)
            self.s.store.write_state(state)
            return self._stream(r, offset)

    def _stream(self, r: httpx.Response, offset: int) -> tuple[str, int]:
        spec = self.spec
        h = hashlib.sha256()
        if offset:  # the bytes on disk are re-hashed, not fetched again
            with open(self.part, "rb") as f:
                remaining = offset
                while remaining:
                    chunk = f.read(min(1 << 20, remaining))
                    if not chunk:
                        raise _Retry("the partial file shrank; starting over", delay=0, restart=True)
                    h.update(chunk)
                    remaining -= len(chunk)
            self.s.count(resumed_bytes=offset)
        self.s.reporter.file_start(spec, offset)
        size = offset
        self.part.parent.mkdir(parents=True, exist_ok=True)
        try:
            # A new file, not a truncated one: ext4 flushes a file truncated to zero on close (auto_da_alloc).
            # Neither is ever opened through a link planted in the cache.
            out = open_existing(self.part) if offset else open_new(self.part)
        except OSError:
            raise _Retry("the partial file is not a plain file; starting over", delay=0, restart=True) from None
        with out as f:
            if offset:
                f.seek(offset)
                f.truncate()
            for chunk in r.iter_raw():  # no chunk_size: httpx would hold back bytes until a chunk fills
                if self.s.cancel.is_set():
                    raise _Cancelled
                if self.s.limiter:
                    self.s.limiter.take(len(chunk))
                f.write(chunk)
                h.update(chunk)
                size += len(chunk)
                self.s.count(bytes=len(chunk))
                self.s.reporter.advance(len(chunk))
                if spec.size is not None and size > spec.size:
                    raise _Retry(f"the body is longer than the {spec.size} bytes the lock names; starting over",
                                 restart=True)
        self.s.reporter.file_end(spec)
        if self.expected is not None and size < self.expected:
            raise _Retry(f"the body ended after {size} of {self.expected} bytes")
        return h.hexdigest(), size


def fetch_files(specs: Sequence[FileSpec], store: BlobStore, options: FetchOptions = FetchOptions(), *,
                reporter: Reporter | None = None, client: httpx.Client | None = None,
                sleep: Callable[[float], None] = time.sleep) -> FetchReport:
    """Bring every file into ``store`` verified; return what was done.

    Files with the same sha256 are fetched once. On the first failure the other transfers stop
    (keeping their partial bytes for the next run) and the error is raised.
    """
    if options.jobs < 1 or options.per_host < 1 or options.retries < 0 or options.timeout <= 0:
        raise BadInput("--jobs must be at least 1, --retries at least 0 and --timeout positive")
    started = time.monotonic()
    unique: dict[str, FileSpec] = {}
    for spec in specs:
        unique.setdefault(spec.sha256, spec)
    report = FetchReport(files=len(unique))
    reporter = reporter or NullReporter()
    own = client is None
    try:
        with ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="fetch") as pool:
            # Cached blobs first (re-hashed in parallel), so the progress total counts only real downloads.
            found = dict(zip(unique, pool.map(lambda s: store.verified(s.sha256, s.size), unique.values())))
            todo = [s for sha, s in unique.items() if found[sha] is None]
            remote = [s for s in todo if local_path(s.url) is None]
            if options.offline and remote:  # in lock order: the first file the cache lacks
                raise DownloadFailed(f"offline: {remote[0].filename} (sha256 {remote[0].sha256}) is not in the cache; "
                                     f"run once online", hint=f"{len(remote)} files are missing; fetch without --offline once")
            if client is None:
                client = make_client(cert=options.cert, timeout=options.timeout, max_connections=options.jobs, http2=options.http2)
            shared = _Shared(store=store, client=client, options=options, reporter=reporter, report=report, sleep=sleep,
                             limiter=RateLimiter(options.limit_rate) if options.limit_rate else None)
            report.cached += len(unique) - len(todo)
            report.paths.update({sha: p for sha, p in found.items() if p is not None})
            reporter.start(len(todo), sum(s.size or 0 for s in todo))
            futures = {pool.submit(_Transfer(s, shared).run): s for s in todo}
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failed = [f for f in done if f.exception() is not None]
                if failed:
                    shared.cancel.set()
                    wait(futures)
            except BaseException:  # Ctrl-C: stop the workers, keep their partial bytes
                shared.cancel.set()
                raise
            errors = [f.exception() for f in futures if f.exception() is not None]
            real = [e for e in errors if not isinstance(e, _Cancelled)]
            if real:
                first = real[0]
                if isinstance(first, OSError):  # disk full, permissions: not a bug, not a traceback
                    raise BundlerError(f"cannot write to the cache {store.root}: {first.strerror or first}") from first
                raise first
            for future, spec in futures.items():
                report.paths[spec.sha256] = future.result()
    finally:
        if own and client is not None:
            client.close()
    report.elapsed = time.monotonic() - started
    return report


def check_filename(filename: str) -> str:
    """Refuse a file name that is not a plain name (a lock could otherwise write outside --dest)."""
    if not filename or filename in (".", "..") or "/" in filename or "\\" in filename or "\0" in filename:
        raise BadInput(f"refusing the file name {filename!r} from the lock: not a plain file name")
    return filename


def place(specs: Sequence[FileSpec], report: FetchReport, dest: Path) -> list[Path]:
    """Copy the verified files into ``dest`` under their real file names, as ``pip download -d`` does.

    Each copy is written under a temporary name and renamed, so ``dest`` never holds a partial file.
    """
    dest.mkdir(parents=True, exist_ok=True)
    placed: list[Path] = []
    for spec in specs:
        target = dest / check_filename(spec.filename)
        source = report.paths[spec.sha256]
        if target.is_file() and target.stat().st_size == source.stat().st_size and sha256_file(target)[0] == spec.sha256:
            placed.append(target)
            continue
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=temp_prefix(target), suffix=".tmp")
        try:
            with open(fd, "wb") as out, open(source, "rb") as src:
                os.fchmod(out.fileno(), default_file_mode())  # as pip download would leave them, not mkstemp's 0600
                shutil.copyfileobj(src, out, 1 << 20)
            Path(tmp).replace(target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        placed.append(target)
    return placed


def lock_files(lock: Lock) -> list[FileSpec]:
    """Every file a lock names, for all its targets, their bootstrap pip and uv, in lock order: wheels,
    sdists, and the wheels that build those sdists (on the builder and on the targets)."""
    wheels = [w for pkg in lock.packages for w in pkg.files] + [w for _, w in lock.bootstrap.values()]
    wheels += [w for _, w in lock.uv.values()]  # the fast installer's wheels
    wheels += [w for b in lock.builds.values() for w in (*b.builder, *(x for ws in b.targets.values() for x in ws))]
    return [FileSpec(url=w.url, sha256=w.sha256, size=w.size, filename=w.filename) for w in wheels]
