"""A fault-injecting HTTP/1.1 file server on loopback, for downloader tests and benchmarks.

``FaultServer`` binds ``127.0.0.1:<ephemeral>`` and serves named files at ``/{name}`` from a
background ``ThreadingHTTPServer``, with what a resuming downloader relies on: strong ``ETag``,
``Last-Modified``, ``Accept-Ranges``, ``Range`` (``bytes=N-``, ``bytes=N-M``, suffix) answered with
206/416, ``If-Range`` (ETag or date), HEAD and keep-alive. Bodies are streamed from disk in
chunks, so a fault can strike mid-body and a 1 GB file never sits in memory::

    with FaultServer(tmp_path / "srv") as srv:
        f = srv.add_file("a.whl", size=100_000)
        srv.fault("a.whl", Reset(after=30_000), Status(503))   # one-shot, one per request
        srv.fault("a.whl", Flip(offset=5), persistent=True)     # every later request
        ...
        assert srv.requests_for("a.whl")[1].headers["range"] == "bytes=30000-"

One-shot faults are consumed in order, one per request for that file; when none is left the
persistent fault (if any) applies. ``throttle()`` caps every connection's rate, ``require_auth()``
demands Basic credentials, and ``stop()`` makes the server vanish (later connects are refused and
open connections are dropped). Every request is logged in ``FaultServer.requests``. Only the
standard library is used, so benchmark scripts can import this module too.
"""

from __future__ import annotations

import base64
import email.utils
import gzip
import hashlib
import os
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, unquote, urlsplit

from .loopback import LoopbackHandler, LoopbackServer

__all__ = [
    "ChangeEtag", "Fault", "FaultServer", "Flip", "Gzip", "IgnoreRange", "RangeStatus", "Redirect",
    "RequestRecord", "Reset", "ServedFile", "Short", "ShortNoLength", "Stall", "Status",
    "WrongContentRange",
]

CHUNK = 64 * 1024


# -- faults ------------------------------------------------------------------------------------
# ``after`` always counts body bytes of the faulty response itself (not file offsets).


@dataclass(frozen=True)
class Reset:
    """Send the headers and ``after`` body bytes, then abort the connection with a TCP RST.

    The RST waits ``grace`` seconds: Linux throws away received bytes the client has not read yet
    when a reset arrives, and a test wants a client that did get the bytes before the reset.
    """

    after: int = 0
    grace: float = 0.2


@dataclass(frozen=True)
class Short:
    """Announce the full Content-Length, send ``after`` body bytes, then close cleanly (FIN)."""

    after: int = 0


@dataclass(frozen=True)
class ShortNoLength:
    """No Content-Length and ``Connection: close``; send ``after`` body bytes and close.

    To the client this is a complete-looking body that is simply too short.
    """

    after: int = 0


@dataclass(frozen=True)
class Status:
    """Answer ``code`` with these headers and body instead of the file (503, 429 + Retry-After...)."""

    code: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Flip:
    """Serve the body with the byte at file offset ``offset`` inverted (when the response covers it)."""

    offset: int


@dataclass(frozen=True)
class IgnoreRange:
    """Answer 200 with the full body even when a Range was asked for."""


@dataclass(frozen=True)
class ChangeEtag:
    """From this request on the file has a new ETag (and Last-Modified), and new content if ``data``."""

    etag: str
    data: bytes | None = None


@dataclass(frozen=True)
class Stall:
    """Send ``after`` body bytes, then go silent for ``seconds``, then close."""

    after: int = 0
    seconds: float = 5.0


@dataclass(frozen=True)
class WrongContentRange:
    """Answer 206 with ``Content-Range: bytes START-END/SIZE`` and the body from ``start``,
    whatever range was asked for."""

    start: int


@dataclass(frozen=True)
class Gzip:
    """Answer with ``Content-Encoding: gzip`` and the (range of the) body gzipped."""


@dataclass(frozen=True)
class RangeStatus:
    """Answer a request carrying Range with ``code`` (e.g. 400 or 416); plain requests are served."""

    code: int


@dataclass(frozen=True)
class Redirect:
    """Answer ``302 Found`` with ``Location: to_url``."""

    to_url: str
    code: int = 302


Fault = (Reset | Short | ShortNoLength | Status | Flip | IgnoreRange | ChangeEtag | Stall
         | WrongContentRange | Gzip | RangeStatus | Redirect)


# -- data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedFile:
    """What a test needs to know about a served file (as of when it was added or replaced)."""

    name: str
    url: str
    sha256: str
    size: int
    path: Path  # where the bytes live on disk


@dataclass
class RequestRecord:
    """One handled request. Header keys are lower-cased; ``bytes_sent`` grows while streaming."""

    method: str
    path: str
    name: str  # the file name asked for (URL path, unquoted, without the leading slash)
    headers: dict[str, str]
    time: float  # time.monotonic() when the request head was read
    status: int = 0
    range: str | None = None  # the Range request header
    start: int | None = None  # file offset of the first body byte served (None: no file body)
    bytes_sent: int = 0  # body bytes handed to the socket (a write that failed is not counted)
    response_headers: dict[str, str] = field(default_factory=dict)
    fault: Fault | None = None  # the fault applied to this request


@dataclass
class _File:
    name: str
    path: Path
    size: int
    sha256: str
    etag: str
    last_modified: float
    queue: deque[Fault] = field(default_factory=deque)
    persistent: Fault | None = None


def _hash_file(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """One ``bytes=`` range as inclusive (first, last); None to ignore it; ``"416"`` if unsatisfiable."""
    unit, _, spec = header.partition("=")
    first_s, sep, last_s = spec.strip().partition("-")
    if (unit.strip().lower() != "bytes" or "," in spec or not sep or not (first_s or last_s)
            or not all(s.isdigit() for s in (first_s, last_s) if s)):
        return None
    if not first_s:  # suffix range: the last N bytes
        return (max(size - int(last_s), 0), size - 1) if int(last_s) and size else "416"
    first, last = int(first_s), int(last_s) if last_s else None
    if last is not None and last < first:
        return None
    return "416" if first >= size else (first, size - 1 if last is None else min(last, size - 1))


def _if_range_matches(value: str, etag: str, last_modified: float) -> bool:
    """RFC 9110 13.1.5: a strong ETag compared strongly, or exactly the Last-Modified date."""
    value = value.strip()
    if value.startswith(('"', "W/")):
        return not value.startswith("W/") and not etag.startswith("W/") and value == etag
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return int(parsed.timestamp()) == int(last_modified)


class FaultServer:
    """A threaded loopback file server whose answers can be made to fail in precise ways.

    The socket is bound in ``__init__``, so ``base_url`` and file URLs are known before
    ``start()``. A stopped server cannot be restarted.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._files: dict[str, _File] = {}
        self._log: list[RequestRecord] = []
        self._rate: float | None = None
        self._auth: str | None = None
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._serial = 0
        self._httpd = LoopbackServer(self, _Handler, (OSError,))
        host, port = self._httpd.server_address[:2]
        self.port: int = port
        self.base_url = f"http://{host}:{port}"
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FaultServer:
        """Start serving in a daemon thread; returns ``self``."""
        if self._thread is None and not self._stopping.is_set():
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"FaultServer{self.base_url}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Vanish: close the listening socket (later connects are refused) and drop open connections."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- content ---------------------------------------------------------------------------
    def add_file(self, name: str, data: bytes | None = None, *, size: int | None = None,
                 path: Path | str | None = None, etag: str | None = None) -> ServedFile:
        """Serve ``data``, or ``size`` random bytes, or the existing file at ``path`` (streamed from
        disk, never read into memory) as ``/{name}``. ``etag`` defaults to the quoted sha256."""
        if sum(x is not None for x in (data, size, path)) != 1:
            raise ValueError("give exactly one of data, size or path")
        if path is not None:
            disk = Path(path)
        else:
            disk = self._write(name, data) if data is not None else self._write_random(name, size or 0)
        digest, length = _hash_file(disk)
        entry = _File(name, disk, length, digest, etag or f'"{digest}"', float(int(time.time())))
        with self._lock:
            if name in self._files:
                raise ValueError(f"file {name!r} already exists; use replace_file()")
            self._files[name] = entry
        return self._served(entry)

    def replace_file(self, name: str, data: bytes, *, etag: str | None = None) -> ServedFile:
        """Change a file's content; its ETag and Last-Modified change with it."""
        disk = self._write(name, data)
        digest, length = _hash_file(disk)
        with self._lock:
            f = self._file(name)
            f.path, f.size, f.sha256 = disk, length, digest
            f.etag = etag or f'"{digest}"'
            f.last_modified = max(f.last_modified + 1, float(int(time.time())))
            return self._served(f)

    def set_etag(self, name: str, etag: str) -> None:
        """Give a file a new ETag (and a later Last-Modified) without changing its bytes."""
        with self._lock:
            f = self._file(name)
            f.etag = etag
            f.last_modified = max(f.last_modified + 1, float(int(time.time())))

    def file(self, name: str) -> ServedFile:
        """The file as currently served."""
        with self._lock:
            return self._served(self._file(name))

    def _write(self, name: str, data: bytes) -> Path:
        disk = self._new_path(name)
        disk.write_bytes(data)
        return disk

    def _write_random(self, name: str, size: int) -> Path:
        disk = self._new_path(name)
        with open(disk, "wb") as out:
            for pos in range(0, size, 1 << 20):
                out.write(os.urandom(min(1 << 20, size - pos)))
        return disk

    def _new_path(self, name: str) -> Path:
        with self._lock:  # a replaced file gets a new path, so responses in flight keep the old bytes
            self._serial += 1
            serial = self._serial
        disk = self.root / "files" / f"{serial}-{quote(name, safe='')}"
        disk.parent.mkdir(parents=True, exist_ok=True)
        return disk

    def _file(self, name: str) -> _File:
        if name not in self._files:
            raise KeyError(f"no file {name!r}; call add_file() first")
        return self._files[name]

    def _served(self, f: _File) -> ServedFile:
        return ServedFile(f.name, self.url(f.name), f.sha256, f.size, f.path)

    # -- URLs ------------------------------------------------------------------------------
    def url(self, name: str, *, host: str | None = None, userinfo: str | None = None) -> str:
        """Absolute URL of ``name``; ``host`` replaces 127.0.0.1 (``localhost`` is another host to a
        client), ``userinfo`` (``user:password``) is put in front of it."""
        netloc = f"{host or '127.0.0.1'}:{self.port}"
        if userinfo:
            netloc = f"{userinfo}@{netloc}"
        return f"http://{netloc}/{quote(name, safe='')}"

    # -- faults and settings ---------------------------------------------------------------
    def fault(self, name: str, *faults: Fault, persistent: bool = False) -> None:
        """Queue one-shot ``faults`` (one per request, in order) for ``name``; with
        ``persistent=True`` give exactly one fault applied whenever the queue is empty."""
        with self._lock:
            f = self._file(name)
            if persistent:
                if len(faults) != 1:
                    raise ValueError("a persistent fault is exactly one fault")
                f.persistent = faults[0]
            else:
                f.queue.extend(faults)

    def clear_faults(self, name: str | None = None) -> None:
        """Forget queued and persistent faults of ``name`` (of every file when None)."""
        with self._lock:
            for f in [self._file(name)] if name is not None else list(self._files.values()):
                f.queue.clear()
                f.persistent = None

    def pending_faults(self, name: str) -> int:
        """How many one-shot faults of ``name`` have not struck yet."""
        with self._lock:
            return len(self._file(name).queue)

    def throttle(self, bytes_per_second: float | None) -> None:
        """Cap every connection's body rate (None: no cap). Applies to responses started later."""
        with self._lock:
            self._rate = bytes_per_second

    def require_auth(self, user: str | None, password: str = "") -> None:
        """Demand these Basic credentials on every request (401 otherwise); None: no auth."""
        with self._lock:
            self._auth = (None if user is None
                          else "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())

    # -- request log -----------------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def requests_for(self, name: str, method: str | None = None) -> list[RequestRecord]:
        """Logged requests for one file (optionally of one method), oldest first."""
        return [r for r in self.requests if r.name == name and (method is None or r.method == method)]

    def clear_log(self) -> None:
        """Forget all logged requests."""
        with self._lock:
            self._log.clear()

    def bytes_sent(self, name: str | None = None) -> int:
        """Body bytes written so far (for one file, or in total)."""
        return sum(r.bytes_sent for r in self.requests if name is None or r.name == name)

    # -- the answer ------------------------------------------------------------------------
    def _take_fault(self, f: _File) -> Fault | None:
        with self._lock:
            return f.queue.popleft() if f.queue else f.persistent


class _Close(Exception):
    """End the connection after this response (how is in ``how``: ``fin`` or ``rst``)."""

    def __init__(self, how: str) -> None:
        self.how = how


class _Handler(LoopbackHandler):
    server_version = "wheelhouse-test-faults/1.0"

    def setup(self) -> None:
        super().setup()
        with self.server.owner._lock:
            self.server.owner._conns.add(self.connection)

    def finish(self) -> None:
        with self.server.owner._lock:
            self.server.owner._conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _handle(self) -> None:
        owner = self.server.owner
        headers = {k.lower(): v for k, v in self.headers.items()}
        name = unquote(urlsplit(self.path).path.lstrip("/"))
        rec = RequestRecord(self.command, self.path, name, headers, time.monotonic(), range=headers.get("range"))
        with owner._lock:
            owner._log.append(rec)
        try:
            self._answer(owner, rec)
        except _Close as close:
            self.close_connection = True
            if close.how == "rst":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
        except OSError:  # the client hung up
            self.close_connection = True
        except Exception as exc:  # a bug in this server: answer 500 rather than hang up silently
            self.close_connection = True
            if rec.status == 0:
                self._simple(rec, 500, {"Content-Type": "text/plain"}, f"{exc!r}\n".encode())

    def _answer(self, owner: FaultServer, rec: RequestRecord) -> None:
        with owner._lock:
            auth, rate, f = owner._auth, owner._rate, owner._files.get(rec.name)
        if auth is not None and rec.headers.get("authorization") != auth:
            return self._simple(rec, 401, {"WWW-Authenticate": 'Basic realm="faultserver"'}, b"401\n")
        if f is None:
            return self._simple(rec, 404, {}, b"404 Not Found\n")
        fault = rec.fault = owner._take_fault(f)
        if isinstance(fault, ChangeEtag):
            if fault.data is not None:
                owner.replace_file(f.name, fault.data, etag=fault.etag)
            else:
                owner.set_etag(f.name, fault.etag)
        if isinstance(fault, Status):
            return self._simple(rec, fault.code, dict(fault.headers), fault.body)
        if isinstance(fault, Redirect):
            return self._simple(rec, fault.code, {"Location": fault.to_url}, b"")
        with owner._lock:  # a consistent view: ChangeEtag or replace_file may swap these
            path, size, etag, modified = f.path, f.size, f.etag, f.last_modified
        out = {"ETag": etag, "Last-Modified": email.utils.formatdate(modified, usegmt=True),
               "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        want = rec.range
        if want is not None and isinstance(fault, RangeStatus):
            extra = {"Content-Range": f"bytes */{size}"} if fault.code == 416 else {}
            return self._simple(rec, fault.code, extra, b"")
        status, first, last = 200, 0, size - 1
        if_range = rec.headers.get("if-range")
        if isinstance(fault, WrongContentRange):
            status, first = 206, fault.start
        elif want is not None and not isinstance(fault, IgnoreRange) and (
                if_range is None or _if_range_matches(if_range, etag, modified)):
            span = _parse_range(want, size)
            if span == "416":
                return self._simple(rec, 416, {**out, "Content-Range": f"bytes */{size}"}, b"")
            if isinstance(span, tuple):
                status, (first, last) = 206, span
        if status == 206:
            out["Content-Range"] = f"bytes {first}-{last}/{size}"
        length = max(last - first + 1, 0)
        body: Iterator[bytes] = _read(path, first, length, fault.offset if isinstance(fault, Flip) else None)
        if isinstance(fault, Gzip):
            packed = gzip.compress(b"".join(body))
            out["Content-Encoding"] = "gzip"
            body, length = iter([packed]), len(packed)
        out["Content-Length"] = str(length)
        limit, close = None, None
        if isinstance(fault, ShortNoLength):
            del out["Content-Length"]
            out["Connection"] = "close"
            limit, close = fault.after, "fin"
        elif isinstance(fault, (Short, Reset, Stall)):
            limit, close = fault.after, ("rst" if isinstance(fault, Reset) else "fin")
        rec.status, rec.start, rec.response_headers = status, first, out
        self._head(status, out)
        if self.command == "HEAD":
            return None
        self._stream(rec, body, limit, rate)
        if isinstance(fault, Stall):
            owner._stopping.wait(fault.seconds)
        if isinstance(fault, Reset) and fault.grace > 0:
            owner._stopping.wait(fault.grace)
        if close is not None:
            raise _Close(close)
        return None

    def _simple(self, rec: RequestRecord, status: int, headers: dict[str, str], body: bytes) -> None:
        headers.setdefault("Content-Length", str(len(body)))
        rec.status, rec.response_headers = status, headers
        self._head(status, headers)
        if self.command != "HEAD" and body:
            rec.bytes_sent = len(body)
            self.wfile.write(body)

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _stream(self, rec: RequestRecord, body: Iterator[bytes], limit: int | None, rate: float | None) -> None:
        """Write the body (at most ``limit`` bytes), paced to ``rate`` bytes/s if given."""
        chunk = CHUNK if rate is None else int(min(CHUNK, max(4096, rate / 50)))
        started = time.monotonic()
        for block in body:
            for pos in range(0, len(block), chunk):
                piece = block[pos:pos + chunk]
                if limit is not None:
                    piece = piece[:max(limit - rec.bytes_sent, 0)]
                    if not piece:
                        return
                if rate is not None:  # pace by the clock, so sleep overshoot doesn't accumulate
                    delay = started + rec.bytes_sent / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                # Counted before the write: a client that has read everything must see the full count.
                rec.bytes_sent += len(piece)
                try:
                    self.wfile.write(piece)
                except OSError:
                    rec.bytes_sent -= len(piece)
                    raise


def _read(path: Path, start: int, length: int, flip: int | None) -> Iterator[bytes]:
    """``length`` bytes of ``path`` from ``start`` in chunks, the byte at file offset ``flip`` inverted."""
    with open(path, "rb") as fh:
        fh.seek(start)
        pos, end = start, start + length
        while pos < end:
            block = fh.read(min(CHUNK, end - pos))
            if not block:
                return
            if flip is not None and pos <= flip < pos + len(block):
                i = flip - pos
                block = block[:i] + bytes([block[i] ^ 0xFF]) + block[i + 1:]
            yield block
            pos += len(block)
