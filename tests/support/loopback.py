"""The threaded HTTP server under the loopback test servers (stdlib only: benchmarks import it too)."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer(ThreadingHTTPServer):
    """A server on 127.0.0.1 and a free port; ``owner`` is what its handlers serve. Errors of the
    ``quiet`` kinds (a client that hangs up early is routine here, not a server bug) print nothing:
    their tracebacks on stderr would read as the product's own."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: Any, handler: type[BaseHTTPRequestHandler], quiet: tuple[type[BaseException], ...]) -> None:
        self.owner = owner
        self.quiet = quiet
        super().__init__(("127.0.0.1", 0), handler)

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], self.quiet):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class LoopbackHandler(BaseHTTPRequestHandler):
    """The handler both loopback servers share: HTTP/1.1 keep-alive, quiet, GET and HEAD answered by
    ``_handle`` (a HEAD without the body, as the subclass decides)."""

    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections don't pin threads forever
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls
    server: LoopbackServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Stay quiet."""

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        raise NotImplementedError
