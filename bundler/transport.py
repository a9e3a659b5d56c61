"""What every HTTP client of wheelhouse shares, without importing one: trust, credentials, retries, messages.

Two clients send wheelhouse's requests: httpx (``bundler.http``: downloads, redirects, proxies,
HTTP/2) and the lean GET of ``bundler.http1`` (the planner's pages and metadata). Importing httpx
and making its client costs about 0.1 s of CPU, most of a cold lock's first round trip, so what
both need lives here and imports neither:

- ``Trust``: the SSL context (``--cert``, else SSL_CERT_FILE, else SSL_CERT_DIR, else certifi's
  bundle, as httpx chooses) and the credentials, made once and shared by both clients;
- ``Credentials``: Basic auth from the URL's userinfo, else from credentials remembered for exactly
  that URL (``urls.remember_credentials``), else from ``~/.netrc`` (or ``$NETRC``); never logged or stored;
- ``with_retries``: polite retries with backoff, jitter and Retry-After;
- ``describe_failure``: a one-line, credential-free message for a transport failure.
"""

from __future__ import annotations

import base64
import netrc
import os
import random
import ssl
import threading
from pathlib import Path
from typing import Callable, Mapping, Protocol, TypeVar

from bundler import __version__
from bundler.errors import BadInput
from bundler.urls import credential_pieces, credentials_for, redact_url

_T = TypeVar("_T")

USER_AGENT = f"wheelhouse/{__version__}"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_BODY = 64 << 20  # index pages, metadata files and range reads; whole files go through fetch


def basic_auth(user: str, password: str) -> str:
    """The Authorization header of HTTP Basic auth (UTF-8, as httpx encodes it)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class Credentials:
    """Where a request's Basic auth comes from (see the module docstring); read-only once made."""

    def __init__(self, path: str | None = None) -> None:
        self._netrc: netrc.netrc | None = None
        file = path or os.environ.get("NETRC") or str(Path.home() / ".netrc")
        if os.path.isfile(file):
            try:
                self._netrc = netrc.netrc(file)
            except (netrc.NetrcParseError, OSError):
                self._netrc = None

    def authorization(self, url: str, userinfo: tuple[str, str] | None, host: str) -> str | None:
        """The Authorization header for a request to ``url`` (``userinfo`` percent-decoded from it,
        ``host`` its lower-case host name), or None."""
        if userinfo is not None and (userinfo[0] or userinfo[1]):
            return basic_auth(*userinfo)
        given = credentials_for(url)  # a direct reference's userinfo, taken off its URL where it entered
        if given is not None:
            return basic_auth(*given)
        if self._netrc is not None:
            entry = self._netrc.authenticators(host)
            if entry and entry[0] is not None:
                return basic_auth(entry[0], entry[2] or "")
        return None


class Trust:
    """The SSL context and credentials both clients use, each made once, on first use (thread-safe)."""

    def __init__(self, cert: str | None = None) -> None:
        self.cert = cert
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        self._credentials: Credentials | None = None

    def preload(self) -> Trust:
        """Start loading the CA bundle on a thread of its own, and return self. Loading takes 20-30 ms
        and lets go of the interpreter lock, so started before the planner's modules are imported it is
        ready for the first request instead of delaying it; a failure is raised again where the
        context is used. Not a daemon thread: a run that ends at once (a bad argument) waits for it,
        because OpenSSL's exit handlers freeing what a load still uses crash the process (SIGSEGV)."""
        def load() -> None:
            try:
                self.context
            except BadInput:
                pass

        threading.Thread(target=load, name="wheelhouse-trust").start()
        return self

    @property
    def context(self) -> ssl.SSLContext:
        """The CA bundle: ``cert``, else SSL_CERT_FILE, else SSL_CERT_DIR, else certifi's (``BadInput``
        when it cannot be read)."""
        with self._lock:
            if self._context is None:
                self._context = _context(self.cert)
            return self._context

    @property
    def credentials(self) -> Credentials:
        with self._lock:
            if self._credentials is None:
                self._credentials = Credentials()
            return self._credentials


def _context(cert: str | None) -> ssl.SSLContext:
    bundle = cert or os.environ.get("SSL_CERT_FILE")
    folder = os.environ.get("SSL_CERT_DIR")
    try:
        if bundle:
            return ssl.create_default_context(cafile=bundle)
        if folder:
            return ssl.create_default_context(capath=folder)
        import certifi  # httpx's own default

        return ssl.create_default_context(cafile=certifi.where())
    except OSError as e:  # ssl.SSLError is one too: a missing or unreadable CA bundle
        what = "--cert" if cert else "SSL_CERT_FILE" if bundle else "SSL_CERT_DIR" if folder else "certifi"
        raise BadInput(f"cannot load the CA bundle {bundle or folder or ''} ({what}): {e.strerror or e}") from None


class HasHeaders(Protocol):
    """A response, as far as ``retry_after`` reads it."""

    @property
    def headers(self) -> Mapping[str, str]: ...


class Again(Exception):
    """An attempt's answer that another attempt may change (a 5xx, a 429), after ``delay`` seconds
    (None: the backoff's)."""

    def __init__(self, delay: float | None) -> None:
        super().__init__()
        self.delay = delay


def with_retries(attempt: Callable[[bool], _T], retries: int, sleep: Callable[[float], None],
                 transient: tuple[type[BaseException], ...]) -> _T:
    """``attempt(may_retry)`` until it returns: ``Again`` and ``transient`` errors are retried with
    backoff (``Again``'s own delay first, Retry-After: 0 meaning now), ``retries`` times; then the
    error is raised, and ``may_retry`` is False for the last attempt so it returns what it got."""
    n = 0
    while True:
        try:
            return attempt(n < retries)
        except Again as again:
            delay = again.delay if again.delay is not None else backoff_delay(n)
        except transient:
            if n >= retries:
                raise
            delay = backoff_delay(n)
        n += 1
        sleep(delay)


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with jitter: about 0.25 s, 0.5 s, 1 s, ... capped at 8 s."""
    return min(8.0, 0.25 * 2**attempt) * (0.5 + random.random())


def retry_after(response: HasHeaders) -> float | None:
    """Seconds asked for by a Retry-After header in delta-seconds form (capped at 60), else None."""
    value = response.headers.get("Retry-After")
    if value and value.strip().isdigit():
        return min(60.0, float(value.strip()))
    return None


def describe_failure(kind: str, reason: str, url: str, *, also: tuple[str, ...] = ()) -> str:
    """A one-line, credential-free description of a transport failure of ``kind`` ("connect",
    "timeout", or an error's name) for ``url``. ``reason`` may quote ``url`` or ``also`` (the URL a
    redirect led to) in any spelling: every spelling of their userinfo is scrubbed."""
    pieces = credential_pieces(url)
    for other in also:
        pieces += credential_pieces(other)
    reason = reason.replace(url, redact_url(url)) or kind
    for piece in sorted(set(pieces), key=len, reverse=True):
        reason = reason.replace(piece, "***")
    where = redact_url(url)
    if kind == "connect":
        return f"cannot connect to {where} ({reason})"
    if kind == "timeout":
        return f"timed out talking to {where}"
    return f"{kind} while fetching {where}: {reason}"

