"""bundler.http: bodies read under a cap, whatever the server claims or compresses."""

from __future__ import annotations

import gzip
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from bundler.http import BodyTooLarge, make_client, request_with_retries

INFLATED = 256 << 20  # a 256 MiB body of zeros gzips to about 250 KB
BOMB = gzip.compress(b"\0" * INFLATED, compresslevel=9)


class _Bomb(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = BOMB if self.path == "/bomb" else b"hello"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        if self.path == "/bomb":
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Bomb)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_gzip_bomb_is_refused_with_flat_memory(server: str) -> None:
    assert len(BOMB) < 1 << 20
    with make_client() as client:
        tracemalloc.start()
        try:
            with pytest.raises(BodyTooLarge):
                request_with_retries(client, "GET", f"{server}/bomb")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 200 << 20  # the cap is 64 MiB; the 256 MiB body is never held


def test_small_body_is_read_and_decoded(server: str) -> None:
    with make_client() as client:
        r = request_with_retries(client, "GET", f"{server}/ok")
    assert r.status_code == 200 and r.content == b"hello" and str(r.url).endswith("/ok")


def test_body_too_large_is_an_http_error_callers_explain() -> None:
    assert issubclass(BodyTooLarge, httpx.HTTPError)
