"""A lean HTTP/1.1 GET for the planner's many small requests: index pages, metadata files, range reads.

A cold lock sends hundreds of them from sixteen threads. Through httpx each costs about 1 ms of CPU
here (its pool polls every idle connection, under one lock, on each request and each close), through
``http.client`` about 0.35 ms; and in a process whose threads compete for the interpreter lock, every
system call and every lock wait is a hand-off of that lock. ``LeanGet`` does only what those requests
need, and leaves the rest to httpx (``get`` returns None and the caller sends the request there):

- a redirect, and a content encoding other than gzip: httpx applies its rules (a redirect to
  another host drops the Authorization header);
- proxies and HTTP/2: ``http.make_client`` attaches no ``LeanGet`` when a proxy is configured or
  HTTP/2 is asked, so every request goes through httpx.

It trusts what the httpx client trusts (the same SSL context), sends the same User-Agent and
Authorization (``http.NetrcAuth.authorization``), caps bodies as ``http._read_capped`` does (also
once inflated), and fails with the httpx exception of the same failure, so retries and messages
are the same whichever client sent a request.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import zlib
from typing import Callable, Mapping

import httpx

REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DROPPED = frozenset({"content-encoding", "content-length", "transfer-encoding"})  # as ``_read_capped``'s response
_Key = tuple[str, str, int]


class LeanGet:
    """GET over kept-alive ``http.client`` connections, at most ``max_idle`` kept per host (thread-safe)."""

    def __init__(self, context: ssl.SSLContext, *, timeout: float, connect_timeout: float, max_idle: int,
                 headers: Mapping[str, str], authorization: Callable[[httpx.URL], str | None],
                 too_large: Callable[[str], Exception]) -> None:
        self.context = context
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self.headers = dict(headers)
        self.authorization = authorization
        self.too_large = too_large  # the error for a body past the limit (``http.BodyTooLarge``)
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def get(self, url: str, headers: Mapping[str, str], limit: int) -> httpx.Response | None:
        """The response to ``GET url`` with its body (at most ``limit`` bytes, inflated), or None when
        httpx must send it (see the module docstring). Raises the httpx exception of a failure."""
        u = httpx.URL(url)  # parsed as httpx parses it (httpx.InvalidURL as from httpx)
        if u.scheme not in ("http", "https") or not u.raw_host:
            return None
        request = httpx.Request("GET", u)
        key = (u.scheme, u.raw_host.decode("ascii"), u.port or (443 if u.scheme == "https" else 80))
        send = {"Host": u.netloc.decode("ascii"), "Accept-Encoding": "identity", **self.headers, **headers}
        auth = self.authorization(u)
        if auth is not None and not any(k.lower() == "authorization" for k in send):
            send["Authorization"] = auth
        target = u.raw_path.decode("ascii")
        for attempt in (0, 1):
            conn, reused = self._checkout(key, request)
            try:
                conn.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
                for name, value in send.items():
                    conn.putheader(name, value)
                conn.endheaders()
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                if reused and attempt == 0 and not isinstance(e, TimeoutError):
                    continue  # a kept connection the server had closed meanwhile: once more, on a new one
                raise _transport_error(e, request, connecting=False) from None
            break
        return self._answer(key, conn, resp, request, limit)

    def _answer(self, key: _Key, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse,
                request: httpx.Request, limit: int) -> httpx.Response | None:
        encoding = (resp.getheader("Content-Encoding") or "identity").strip().lower()
        if resp.status in REDIRECTS or encoding not in ("identity", "gzip", "x-gzip"):
            conn.close()
            return None
        try:
            body = _read(resp, limit, gzip=encoding != "identity", too_large=self.too_large)
        except (OSError, http.client.HTTPException, zlib.error) as e:
            conn.close()
            if isinstance(e, zlib.error):
                raise httpx.DecodingError(f"the {encoding} body does not inflate: {e}", request=request) from None
            raise _transport_error(e, request, connecting=False) from None
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            self._checkin(key, conn)
        headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _DROPPED]
        return httpx.Response(resp.status, headers=headers, content=body, request=request)

    def _checkout(self, key: _Key, request: httpx.Request) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        scheme, host, port = key
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=self.connect_timeout, context=self.context)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.connect_timeout)
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(self.timeout)
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise _transport_error(e, request, connecting=True) from None
        return conn, False

    def _checkin(self, key: _Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if not self._closed and len(idle) < self.max_idle:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the kept connections; a connection in use is closed when its request ends."""
        with self._lock:
            self._closed = True
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for c in conns:
            c.close()


def _read(resp: http.client.HTTPResponse, limit: int, *, gzip: bool, too_large: Callable[[str], Exception]) -> bytes:
    """The body of ``resp``, inflated when ``gzip``; ``too_large`` past ``limit`` bytes (inflated)."""
    over = f"the response body is larger than {limit >> 20} MiB (decompressed)"
    if not gzip and resp.length is not None:  # the common case: one read of a known length
        if resp.length > limit:
            raise too_large(over)
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
            raise too_large(over)
        chunks.append(chunk)
    if inflate is not None:
        rest = inflate.flush()
        size += len(rest)
        if size > limit:
            raise too_large(over)
        chunks.append(rest)
    return b"".join(chunks)


def _transport_error(e: BaseException, request: httpx.Request, *, connecting: bool) -> httpx.TransportError:
    """The httpx exception httpx raises for the failure ``e`` (so retries and messages are the same)."""
    reason = str(e) or type(e).__name__
    error: type[httpx.TransportError]
    if isinstance(e, (TimeoutError, socket.timeout)):
        error = httpx.ConnectTimeout if connecting else httpx.ReadTimeout
    elif connecting:
        error = httpx.ConnectError
    elif isinstance(e, http.client.HTTPException):  # RemoteDisconnected, IncompleteRead, a bad status or header line
        error = httpx.RemoteProtocolError
    else:
        error = httpx.ReadError
    return error(reason, request=request)
