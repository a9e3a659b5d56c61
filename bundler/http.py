"""The httpx edge: one client factory with auth, proxies, CA bundle and polite retries.

Credentials come from URL userinfo (httpx sends them as Basic auth), remembered credentials or
``~/.netrc`` (``transport.Credentials``); they are never logged or stored. Redirects to another
host drop the Authorization header (httpx does this). What this client shares with the lean GET of
``bundler.http1`` (trust, credentials, retries, messages) is in ``bundler.transport``, which
imports no HTTP client; its names are also importable from here.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from typing import Callable, Generator, TypeVar

import httpx

from bundler.errors import BadInput
from bundler.transport import (MAX_BODY, RETRY_STATUS, USER_AGENT, Again, Credentials, Trust, backoff_delay,
                               describe_failure, retry_after)
from bundler.transport import with_retries as _with_retries
from bundler.urls import credential_pieces, redact_url

__all__ = ["MAX_BODY", "RETRY_STATUS", "USER_AGENT", "Again", "BodyTooLarge", "NetrcAuth", "RateLimiter", "backoff_delay",
           "describe_http_error", "make_client", "request_with_retries", "retry_after", "with_retries"]

_T = TypeVar("_T")


class NetrcAuth(httpx.Auth):
    """httpx's side of ``transport.Credentials``: the Authorization header it gives, unless the
    request already has one."""

    def __init__(self, credentials: Credentials | None = None) -> None:
        self.credentials = credentials or Credentials()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # A client-wide auth makes httpx ignore URL userinfo, so it is honoured here, before netrc.
        if "Authorization" not in request.headers:
            url = request.url
            userinfo = (url.username, url.password) if url.username or url.password else None
            header = self.credentials.authorization(str(url), userinfo, url.host)
            if header is not None:
                request.headers["Authorization"] = header
        yield request


def make_client(*, cert: str | None = None, timeout: float = 30.0, max_connections: int = 32, http2: bool = False,
                trust: Trust | None = None) -> httpx.Client:
    """A client honouring HTTPS_PROXY/NO_PROXY, the CA bundle and credentials of ``trust`` (else of
    ``Trust(cert)``: ``cert``, SSL_CERT_FILE, SSL_CERT_DIR or certifi's) and netrc.

    HTTP/2 is opt-in: for the planner's many small requests, a pool of HTTP/1.1 connections
    measured as fast here (3.1-3.3 s vs 3.6-3.9 s cold for the science set), and a proxy that
    resets HTTP/2 streams cannot fail every in-flight request at once.
    """
    if http2 and importlib.util.find_spec("h2") is None:  # httpx needs it for http2=True
        raise BadInput("--http2 needs the h2 package", hint="pip install 'wheelhouse[http2]'")
    trust = trust or Trust(cert)
    return httpx.Client(
        http2=http2,
        verify=trust.context,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        follow_redirects=True,
        trust_env=True,
        auth=NetrcAuth(trust.credentials),
        headers={"User-Agent": USER_AGENT},
    )


class BodyTooLarge(httpx.HTTPError):
    """A response body that is (or inflates to) more than the caller's limit."""


def request_with_retries(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    retries: int = 3,
    sleep: Callable[[float], None] = time.sleep,
    limit: int = MAX_BODY,
) -> httpx.Response:
    """Send a request whose body is read fully, retrying transient failures with backoff + jitter.

    Retries connection errors, timeouts, 5xx and 429 (honouring Retry-After). The last failure is
    re-raised (an ``httpx.HTTPError``) or its response returned, for the caller to explain. The body
    is read as it is decoded and refused (``BodyTooLarge``) once it passes ``limit`` bytes, so a
    small gzip bomb cannot inflate to gigabytes in memory.
    """
    def once(may_retry: bool) -> httpx.Response:
        with client.stream(method, url, headers=headers) as response:
            if response.status_code not in RETRY_STATUS or not may_retry:
                return _read_capped(response, limit)
            raise Again(retry_after(response))

    return with_retries(once, retries, sleep)


def with_retries(attempt: Callable[[bool], _T], retries: int, sleep: Callable[[float], None]) -> _T:
    """``transport.with_retries`` retrying httpx's transport errors."""
    return _with_retries(attempt, retries, sleep, (httpx.TransportError,))


def _read_capped(response: httpx.Response, limit: int) -> httpx.Response:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the response body is larger than {limit >> 20} MiB (decompressed)")
        chunks.append(chunk)
    # The decoded body in a response of its own: no Content-Encoding left to decode again.
    skip = ("content-encoding", "content-length", "transfer-encoding")
    return httpx.Response(response.status_code, headers=[(k, v) for k, v in response.headers.multi_items() if k.lower() not in skip],
                          content=b"".join(chunks), request=response.request)


def describe_http_error(exc: Exception, url: str) -> str:
    """A one-line, credential-free description of an httpx failure (``transport.describe_failure``).

    httpx's messages may quote the URL (or the one a redirect led to) in any spelling, so every
    spelling of the userinfo of both is scrubbed from the reason, not only the URL as given.
    """
    if isinstance(exc, httpx.InvalidURL) and credential_pieces(url):  # a token with a raw '/', '?' or '#' split the URL
        return (f"the URL {redact_url(url)} is malformed: percent-encode '/', '?', '#', '@' and ':' in its "
                "credentials (as %2F, %3F, %23, %40, %3A)")
    also: tuple[str, ...] = ()
    if isinstance(exc, httpx.RequestError):
        try:
            also = (str(exc.request.url),)
        except RuntimeError:  # an error raised before any request existed
            pass
    kind = ("connect" if isinstance(exc, httpx.ConnectError) else "timeout" if isinstance(exc, httpx.TimeoutException)
            else type(exc).__name__)
    return describe_failure(kind, str(exc), url, also=also)


class RateLimiter:
    """One token bucket shared by every transfer: ``rate`` bytes per second, ``burst`` bytes of slack.

    ``take(n)`` blocks until ``n`` bytes may pass. Time is accounted as a virtual clock (the moment
    the bucket would be empty), so many threads asking at once are served in turn and the long-run
    rate is exact, whatever the chunk sizes.
    """

    def __init__(self, rate: float, *, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst_seconds = (burst if burst is not None else min(64 * 1024, rate / 10)) / self.rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._free_at = clock()

    def take(self, n: int) -> None:
        """Wait until ``n`` more bytes fit under the rate."""
        with self._lock:
            now = self._clock()
            self._free_at = max(self._free_at, now) + n / self.rate
            wait = self._free_at - now - self.burst_seconds
        if wait > 0:
            self._sleep(wait)
