"""A lean HTTP/1.1 GET for the planner's many small requests: index pages, metadata files, range reads.

A cold lock sends hundreds of them from sixteen threads. Through httpx each costs about 1 ms of CPU
here (its pool polls every idle connection, under one lock, on each request and each close), through
``http.client`` about 0.35 ms; importing httpx and making its client costs another 0.1 s, on the
first round trip. And in a process whose threads compete for the interpreter lock, every system
call and every lock wait is a hand-off of that lock. ``LeanGet`` does only what those requests need,
imports no HTTP library but the standard one, and leaves the rest to httpx (``fetch`` returns None
and the caller sends the request through ``bundler.http``):

- a redirect, and a content encoding other than gzip (httpx applies its rules: a redirect to
  another host drops the Authorization header);
- a URL it would have to normalise first (spaces, non-ASCII, dot segments, odd userinfo): httpx
  normalises it, or explains why it cannot;
- proxies: ``lean_get`` makes no ``LeanGet`` when a proxy is configured (HTTP/2, an option of
  ``fetch`` only, never reaches the planner).

It trusts what the httpx client trusts and sends the same User-Agent and Authorization
(``transport.Trust``), caps bodies as ``http._read_capped`` does (also once inflated), retries what
``http.request_with_retries`` retries, and fails with ``LeanFailure``, whose message is the one
``http.describe_http_error`` gives for the same failure.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
import zlib
from email.message import Message
from typing import Callable, Mapping
from urllib.parse import urlsplit

from bundler.transport import MAX_BODY, RETRY_STATUS, USER_AGENT, Again, Trust, describe_failure, retry_after, with_retries
from bundler.urls import split_userinfo

REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DROPPED = frozenset({"content-encoding", "content-length", "transfer-encoding"})  # as ``_read_capped``'s response
_USERINFO = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=:]*")  # what httpx takes as it is
_Key = tuple[str, str, int]


class LeanFailure(Exception):
    """A request that failed: ``kind`` is "connect", "timeout", or the name httpx gives such a failure;
    ``too_large`` for a body past the limit. A failure another attempt may not meet is a ``_Transient``."""

    def __init__(self, kind: str, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.too_large = too_large

    @property
    def transient(self) -> bool:
        """Whether ``fetch`` tries again after this failure (a reset, a timeout, a cut body)."""
        return isinstance(self, _Transient)

    def describe(self, url: str) -> str:
        """The credential-free message for ``url`` (``transport.describe_failure``)."""
        return describe_failure(self.kind, self.reason, url)


class LeanResponse:
    """What the planner reads of a response: ``status_code``, ``headers`` (case-insensitive ``get``),
    ``content`` (decoded) and ``url`` (as asked: a redirect goes to httpx)."""

    def __init__(self, status_code: int, headers: Message, content: bytes, url: str) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.url = url


class LeanGet:
    """GET over kept-alive ``http.client`` connections, at most ``max_idle`` kept per host (thread-safe)."""

    def __init__(self, trust: Trust, *, timeout: float = 30.0, max_idle: int = 16) -> None:
        self.trust = trust
        self.timeout = timeout
        self.connect_timeout = min(timeout, 15.0)
        self.max_idle = max_idle
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._busy: set[http.client.HTTPConnection] = set()  # connections with a request on them
        self._lock = threading.Lock()
        self._closed = False

    def fetch(self, url: str, headers: Mapping[str, str], *, limit: int = MAX_BODY, retries: int = 3,
              sleep: Callable[[float], None] = time.sleep) -> LeanResponse | None:
        """``GET url`` with its body (at most ``limit`` bytes, inflated), retrying what
        ``http.request_with_retries`` retries; None when httpx must send it (see the module docstring)."""
        def once(may_retry: bool) -> LeanResponse | None:
            answer = self.get(url, headers, limit)
            if answer is not None and answer.status_code in RETRY_STATUS and may_retry:
                raise Again(retry_after(answer))
            return answer

        return with_retries(once, retries, sleep, (_Transient,))

    def get(self, url: str, headers: Mapping[str, str], limit: int) -> LeanResponse | None:
        """One attempt of ``fetch`` (a failure another attempt may not meet is a ``_Transient``)."""
        target = _target(url)
        if target is None:
            return None
        key, path, host_header, userinfo = target
        send = {"Host": host_header, "Accept-Encoding": "identity", "User-Agent": USER_AGENT, **headers}
        if not any(k.lower() == "authorization" for k in send):
            auth = self.trust.credentials.authorization(url, userinfo, key[1])
            if auth is not None:
                send["Authorization"] = auth
        for attempt in (0, 1):
            conn, reused = self._checkout(key)
            try:
                conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
                for name, value in send.items():
                    conn.putheader(name, value)
                conn.endheaders()
                resp = conn.getresponse()
            except ValueError:  # a header value http.client refuses (a planted validator with a line break)
                self._drop(conn)
                return None  # httpx refuses it too, and says so as a transport error
            except (OSError, http.client.HTTPException) as e:
                self._drop(conn)
                if reused and attempt == 0 and not isinstance(e, TimeoutError):
                    continue  # a kept connection the server had closed meanwhile: once more, on a new one
                raise _failure(e, connecting=False) from None
            break
        return self._answer(key, conn, resp, url, limit)

    def _answer(self, key: _Key, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, url: str,
                limit: int) -> LeanResponse | None:
        encoding = (resp.getheader("Content-Encoding") or "identity").strip().lower()
        if resp.status in REDIRECTS or encoding not in ("identity", "gzip", "x-gzip"):
            self._drop(conn)
            return None
        try:
            body = _read(resp, limit, gzip=encoding != "identity")
        except (OSError, http.client.HTTPException, zlib.error) as e:
            self._drop(conn)
            if isinstance(e, zlib.error):
                raise LeanFailure("DecodingError", f"the {encoding} body does not inflate: {e}") from None
            raise _failure(e, connecting=False) from None
        except BaseException:
            self._drop(conn)
            raise
        if resp.will_close:
            self._drop(conn)
        else:
            self._checkin(key, conn)
        kept = Message()
        for name, value in resp.getheaders():
            if name.lower() not in _DROPPED:
                kept[name] = value
        return LeanResponse(resp.status, kept, body, url)

    def _checkout(self, key: _Key) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._closed:  # no new request once closed (a retry of one in flight, say)
                raise LeanFailure("closed", "the client was closed")
            idle = self._idle.get(key)
            if idle:
                conn = idle.pop()
                self._busy.add(conn)
                return conn, True
        scheme, host, port = key
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=self.connect_timeout, context=self.trust.context)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.connect_timeout)
        with self._lock:
            self._busy.add(conn)
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(self.timeout)
        except (OSError, http.client.HTTPException) as e:
            self._drop(conn)
            raise _failure(e, connecting=True) from None
        return conn, False

    def _checkin(self, key: _Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._busy.discard(conn)
            idle = self._idle.setdefault(key, [])
            if not self._closed and len(idle) < self.max_idle:
                idle.append(conn)
                return
        conn.close()

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._busy.discard(conn)
        conn.close()

    def close(self) -> None:
        """Close the kept connections, and end the requests in flight: their sockets are shut down, so
        a thread reading one stops now rather than inside OpenSSL while the interpreter exits (the
        planner's workers are daemon threads, and nobody waits for their speculation any more)."""
        with self._lock:
            self._closed = True
            idle = [c for conns in self._idle.values() for c in conns]
            busy = [c.sock for c in self._busy if c.sock is not None]
            self._idle.clear()
        for c in idle:
            c.close()
        for sock in busy:
            try:  # the plain socket's shutdown: ``SSLSocket.shutdown`` would also unset what a reader uses
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass


def lean_get(trust: Trust, *, timeout: float = 30.0, max_idle: int = 16) -> LeanGet | None:
    """A ``LeanGet``, or None when a proxy is configured (httpx then sends every request)."""
    import urllib.request

    return None if urllib.request.getproxies() else LeanGet(trust, timeout=timeout, max_idle=max_idle)


def _target(url: str) -> tuple[_Key, str, str, tuple[str, str] | None] | None:
    """(connection key, request target, Host header, userinfo) of ``url``, or None when httpx
    should send it: anything but plain ASCII http(s) with a host, a valid port and a path that
    needs no normalising."""
    if not url.isascii() or not url.isprintable() or " " in url:
        return None
    clean, userinfo = split_userinfo(url)
    if userinfo is not None:  # the userinfo as written (``split_userinfo`` took it and its "@" out)
        start = url.find("://") + 3
        if start < 3 or not _USERINFO.fullmatch(url[start:start + len(url) - len(clean) - 1]):
            return None
    try:
        parts = urlsplit(clean)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host or "@" in parts.netloc or "%" in host:
        return None
    path = parts.path or "/"
    if not path.startswith("/") or "/./" in path + "/" or "/../" in path + "/":
        return None
    default = 443 if parts.scheme == "https" else 80
    port = port if port is not None else default
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default else f"{shown}:{port}"
    return (parts.scheme, host, port), path + (f"?{parts.query}" if parts.query else ""), host_header, userinfo


class _Transient(LeanFailure):
    """A failure another attempt may not meet (a reset, a timeout, a cut body)."""


def _failure(e: BaseException, *, connecting: bool) -> LeanFailure:
    """The ``LeanFailure`` of ``e``, named as httpx names such a failure (so messages are the same)."""
    reason = str(e) or type(e).__name__
    if isinstance(e, TimeoutError):
        return _Transient("timeout", reason)
    if connecting:
        return _Transient("connect", reason)
    if isinstance(e, http.client.HTTPException):  # RemoteDisconnected, IncompleteRead, a bad status or header line
        return _Transient("RemoteProtocolError", reason)
    return _Transient("ReadError", reason)


def _read(resp: http.client.HTTPResponse, limit: int, *, gzip: bool) -> bytes:
    """The body of ``resp``, inflated when ``gzip``; a ``LeanFailure`` past ``limit`` bytes (inflated)."""
    over = LeanFailure("BodyTooLarge", f"the response body is larger than {limit >> 20} MiB (decompressed)",
                       too_large=True)
    if not gzip and resp.length is not None:  # the common case: one read of a known length
        if resp.length > limit:
            raise over
        return resp.read()
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
    chunks, size = [], 0
    while True:
        raw = resp.read(1 << 16)
        if not raw:
            break
        chunk = inflate.decompress(raw, limit + 1 - size) if inflate is not None else raw
        size += len(chunk)
        if size > limit:
            raise over
        chunks.append(chunk)
    if inflate is not None:
        rest = inflate.flush()
        size += len(rest)
        if size > limit:
            raise over
        chunks.append(rest)
    return b"".join(chunks)
