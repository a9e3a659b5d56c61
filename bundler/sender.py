"""How the planner's repository sends a request: through which client, counted, guarded and explained.

Two clients, each made on first use and closed with the repository: the lean GET of ``bundler.http1``
for pages, metadata files and range reads, and httpx (``bundler.http``) for what the lean GET hands
on (a redirect, an unusual encoding or URL), for whole-file downloads, and for every request when a
proxy is configured. Nothing is sent offline or once the repository is closed, and a transport
failure becomes an ``IndexUnavailable`` (``ResponseTooLarge`` for a body over its cap) whose message
names no credential, whichever client met it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable, Mapping, TypeVar

from bundler.errors import IndexUnavailable, ResponseTooLarge
from bundler.httpcache import offline_miss
from bundler.urls import redact_url

if TYPE_CHECKING:  # imported when a request needs them: a warm lock sends none
    import httpx

    from bundler.http1 import LeanGet, LeanResponse

_T = TypeVar("_T")


class Closed(Exception):
    """Raised in worker threads after the repository closed; nobody waits for their results."""


class Sender:
    """The repository's requests (see the module docstring). ``client`` is an httpx client, or a
    factory of one; ``lean`` a factory of the lean GET (None: httpx alone). ``closed`` is the
    repository's: set, no request starts and no client is made."""

    def __init__(self, client: httpx.Client | Callable[[], httpx.Client], lean: Callable[[], LeanGet | None] | None, *,
                 closed: threading.Event, offline: bool) -> None:
        self._client: httpx.Client | None = None if callable(client) else client
        self._make_client = client if callable(client) else None  # a client made here is closed here
        self._make_lean = lean
        self._lean: LeanGet | None = None
        self._lock = threading.Lock()
        self._closed = closed
        self.offline = offline
        self.count = 0  # requests sent

    def http(self) -> httpx.Client:
        """The httpx client, made on first use."""
        with self._lock:
            if self._client is None:
                if self._closed.is_set() or self._make_client is None:  # a client made now would never be closed
                    raise Closed()
                self._client = self._make_client()
            return self._client

    def _lean_get(self) -> LeanGet | None:
        with self._lock:
            if self._lean is None and self._make_lean is not None and not self._closed.is_set():
                self._lean = self._make_lean()
                self._make_lean = None  # made once, even when it made none (a proxy is configured)
            return self._lean

    def get(self, url: str, headers: Mapping[str, str], what: str = "", hint: str | None = None,
            limit: int | None = None) -> httpx.Response | LeanResponse:
        """GET ``url`` (a body up to ``limit`` bytes, default ``transport.MAX_BODY``) through the lean
        GET, or through httpx when there is none or it hands the request on; a transport failure is
        ``IndexUnavailable(what + why, hint)``, a longer body ``ResponseTooLarge``."""
        from bundler.transport import MAX_BODY

        lean = self._lean_get()
        if lean is not None:
            answer = self.guarded(url, what, hint, lambda: lean.fetch(url, headers, limit=limit or MAX_BODY))
            if answer is not None:
                return answer
        from bundler.http import request_with_retries

        return self.guarded(url, what, hint, lambda: request_with_retries(self.http(), "GET", url, headers=dict(headers),
                                                                        limit=limit or MAX_BODY))

    def guarded(self, url: str, what: str, hint: str | None, call: Callable[[], _T]) -> _T:
        """``call()``, a request to ``url``: none offline or once closed, each counted, failures explained."""
        from bundler.http1 import LeanFailure

        if self._closed.is_set():
            raise Closed()
        if self.offline:  # the last guard: callers name what is missing better where they can
            raise offline_miss(f"{what}{redact_url(url)}")
        self.count += 1
        try:
            return call()
        except LeanFailure as e:
            raise (ResponseTooLarge if e.too_large else IndexUnavailable)(what + e.describe(url), hint=hint) from None
        except Exception as e:
            import httpx  # an httpx error comes from an httpx already imported: this costs nothing then

            from bundler.http import BodyTooLarge, describe_http_error

            if isinstance(e, httpx.InvalidURL):  # not an HTTPError: a link such as https://host:99999/x.whl
                raise IndexUnavailable(describe_http_error(e, url)) from None
            if isinstance(e, httpx.HTTPError):
                error = ResponseTooLarge if isinstance(e, BodyTooLarge) else IndexUnavailable
                raise error(what + describe_http_error(e, url), hint=hint) from None
            raise

    def close(self) -> None:
        """Close the clients made here (and refuse to make more: the repository is closed)."""
        with self._lock:
            if self._make_client is not None and self._client is not None:
                self._client.close()
            if self._lean is not None:
                self._lean.close()
