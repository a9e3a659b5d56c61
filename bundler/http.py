"""The httpx edge: one client factory with auth, proxies, CA bundle and polite retries.

Credentials come from URL userinfo (httpx sends them as Basic auth) or ``~/.netrc``; they are
never logged or stored. Redirects to another host drop the Authorization header (httpx does this).
"""

from __future__ import annotations

import importlib.util
import netrc
import os
import random
import ssl
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Generator, TypeVar

import httpx

from bundler import __version__
from bundler.errors import BadInput
from bundler.urls import credential_pieces, credentials_for, redact_url

if TYPE_CHECKING:
    from bundler.http1 import LeanGet

_T = TypeVar("_T")

USER_AGENT = f"wheelhouse/{__version__}"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class NetrcAuth(httpx.Auth):
    """Basic auth from the URL's userinfo, else from credentials remembered for exactly that URL
    (``bundler.urls.remember_credentials``), else from ``~/.netrc`` (or ``$NETRC``) for hosts that have an
    entry, else nothing."""

    def __init__(self, path: str | None = None) -> None:
        self._netrc: netrc.netrc | None = None
        file = path or os.environ.get("NETRC") or str(Path.home() / ".netrc")
        if os.path.isfile(file):
            try:
                self._netrc = netrc.netrc(file)
            except (netrc.NetrcParseError, OSError):
                self._netrc = None

    def authorization(self, url: httpx.URL) -> str | None:
        """The Authorization header for a request to ``url`` (see the class docstring), or None."""
        # A client-wide auth makes httpx ignore URL userinfo, so it is honoured here, before netrc.
        if url.username or url.password:
            return httpx.BasicAuth(url.username, url.password)._auth_header
        given = credentials_for(str(url))  # a direct reference's userinfo, taken off its URL where it entered
        if given is not None:
            return httpx.BasicAuth(*given)._auth_header
        if self._netrc is not None:
            entry = self._netrc.authenticators(url.host)
            if entry and entry[0] is not None:
                return httpx.BasicAuth(entry[0], entry[2] or "")._auth_header
        return None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "Authorization" not in request.headers and (header := self.authorization(request.url)) is not None:
            request.headers["Authorization"] = header
        yield request


class Client(httpx.Client):
    """httpx's client and, as ``lean``, the lean GET (``bundler.http1``) that ``request_with_retries``
    sends plain GETs through; None when a proxy is configured or HTTP/2 asked."""

    lean: LeanGet | None = None

    def close(self) -> None:
        if self.lean is not None:
            self.lean.close()
        super().close()


def make_client(*, cert: str | None = None, timeout: float = 30.0, max_connections: int = 32, http2: bool = False,
                lean: bool = False) -> Client:
    """A client honouring HTTPS_PROXY/NO_PROXY, SSL_CERT_FILE (or ``cert``; else SSL_CERT_DIR, else
    certifi's bundle, as httpx would) and netrc; with ``lean``, plain GETs go through ``http1.LeanGet``
    unless a proxy is configured or ``http2`` asked.

    HTTP/2 is opt-in: for the planner's many small requests, a pool of HTTP/1.1 connections
    measured as fast here (3.1-3.3 s vs 3.6-3.9 s cold for the science set), and a proxy that
    resets HTTP/2 streams cannot fail every in-flight request at once.
    """
    if http2 and importlib.util.find_spec("h2") is None:  # httpx needs it for http2=True
        raise BadInput("--http2 needs the h2 package", hint="pip install 'wheelhouse[http2]'")
    bundle = cert or os.environ.get("SSL_CERT_FILE")
    try:
        if bundle:
            context = ssl.create_default_context(cafile=bundle)
        elif os.environ.get("SSL_CERT_DIR"):
            context = ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
        else:
            import certifi

            context = ssl.create_default_context(cafile=certifi.where())
    except OSError as e:  # ssl.SSLError is one too: a missing or unreadable CA bundle
        what = "--cert" if cert else "SSL_CERT_FILE" if bundle else "SSL_CERT_DIR" if os.environ.get("SSL_CERT_DIR") else "certifi"
        raise BadInput(f"cannot load the CA bundle {bundle or ''} ({what}): {e.strerror or e}") from None
    auth = NetrcAuth()
    client = Client(
        http2=http2,
        verify=context,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        follow_redirects=True,
        trust_env=True,
        auth=auth,
        headers={"User-Agent": USER_AGENT},
    )
    if lean and not http2 and not urllib.request.getproxies():
        from bundler.http1 import LeanGet

        client.lean = LeanGet(context, timeout=timeout, connect_timeout=min(timeout, 15.0), max_idle=max_connections,
                              headers={"User-Agent": USER_AGENT}, authorization=auth.authorization, too_large=BodyTooLarge)
    return client


MAX_BODY = 64 << 20  # index pages, metadata files and range reads; whole files go through fetch


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
    lean = getattr(client, "lean", None) if method == "GET" else None

    def once(may_retry: bool) -> httpx.Response:
        answer = lean.get(url, headers or {}, limit) if lean is not None else None
        if answer is not None:
            if answer.status_code in RETRY_STATUS and may_retry:
                raise Again(retry_after(answer))
            return answer
        with client.stream(method, url, headers=headers) as response:
            if response.status_code not in RETRY_STATUS or not may_retry:
                return _read_capped(response, limit)
            raise Again(retry_after(response))

    return with_retries(once, retries, sleep)


class Again(Exception):
    """An attempt's answer that another attempt may change (a 5xx, a 429), after ``delay`` seconds
    (None: the backoff's)."""

    def __init__(self, delay: float | None) -> None:
        super().__init__()
        self.delay = delay


def with_retries(attempt: Callable[[bool], _T], retries: int, sleep: Callable[[float], None]) -> _T:
    """``attempt(may_retry)`` until it returns: ``Again`` and transport errors are retried with backoff
    (``Again``'s own delay first, Retry-After: 0 meaning now), ``retries`` times; then the error is raised,
    and ``may_retry`` is False for the last attempt so it returns what it got."""
    n = 0
    while True:
        try:
            return attempt(n < retries)
        except Again as again:
            delay = again.delay if again.delay is not None else backoff_delay(n)
        except httpx.TransportError:
            if n >= retries:
                raise
            delay = backoff_delay(n)
        n += 1
        sleep(delay)


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


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with jitter: about 0.25 s, 0.5 s, 1 s, ... capped at 8 s."""
    return min(8.0, 0.25 * 2**attempt) * (0.5 + random.random())


def retry_after(response: httpx.Response) -> float | None:
    """Seconds asked for by a Retry-After header in delta-seconds form (capped at 60), else None."""
    value = response.headers.get("Retry-After")
    if value and value.strip().isdigit():
        return min(60.0, float(value.strip()))
    return None


def describe_http_error(exc: Exception, url: str) -> str:
    """A one-line, credential-free description of a transport failure.

    httpx's messages may quote the URL (or the one a redirect led to) in any spelling, so every
    spelling of the userinfo of both is scrubbed from the reason, not only the URL as given.
    """
    kind = type(exc).__name__
    pieces = credential_pieces(url)
    if isinstance(exc, httpx.InvalidURL) and pieces:  # a token with a raw '/', '?' or '#' split the URL
        return (f"the URL {redact_url(url)} is malformed: percent-encode '/', '?', '#', '@' and ':' in its "
                "credentials (as %2F, %3F, %23, %40, %3A)")
    reason = str(exc).replace(url, redact_url(url)) or kind
    if isinstance(exc, httpx.RequestError):
        try:
            pieces += credential_pieces(str(exc.request.url))
        except RuntimeError:  # an error raised before any request existed
            pass
    for piece in sorted(set(pieces), key=len, reverse=True):
        reason = reason.replace(piece, "***")
    where = redact_url(url)
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {where} ({reason})"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out talking to {where}"
    return f"{kind} while fetching {where}: {reason}"


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
