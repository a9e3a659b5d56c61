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


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A loopback server with ``handler`` for the module's tests; yields its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    yield from _serve(_Bomb)


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


# ---------------------------------------------------------------------------------------------
# credentials (issue 10, class 7): never in a message, sent only where they were given

import socket  # noqa: E402
from urllib.parse import quote, unquote  # noqa: E402

from bundler.http import describe_http_error  # noqa: E402
from bundler.urls import remember_credentials  # noqa: E402

AWKWARD = ["a/b", "a#b", "a?b", "p@ss", "x%2Fy", "tok%2Fen"]


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("token", AWKWARD)
def test_describe_http_error_never_shows_the_token(token: str) -> None:
    url = f"http://user:{token}@127.0.0.1:{_refused_port()}/pkg-1.0-py3-none-any.whl"
    with make_client() as client:
        try:
            request_with_retries(client, "GET", url, retries=0)
        except (httpx.HTTPError, httpx.InvalidURL) as e:  # InvalidURL is no HTTPError
            text = describe_http_error(e, url)
        else:
            pytest.fail("nothing listens there")
    for spelling in {token, unquote(token), quote(unquote(token), safe="")}:
        assert spelling not in text
    assert "127.0.0.1" in text


@pytest.mark.parametrize("token", AWKWARD)
def test_describe_http_error_scrubs_a_message_quoting_the_url(token: str) -> None:
    """httpx messages may quote the URL in another spelling (decoded, re-encoded) or only a part of it."""
    url = f"https://user:{token}@corp.example/x.whl"
    for quoted in (url, url.replace(token, unquote(token)), url.replace(token, quote(unquote(token), safe="")),
                   f"Invalid port: {unquote(token).split('/')[0]!r}"):
        text = describe_http_error(httpx.RemoteProtocolError(f"bad answer from {quoted}"), url)
        assert unquote(token) not in text and token not in text


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        body = (self.headers.get("Authorization") or "none").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    yield from _serve(_Echo)


@pytest.mark.parametrize("token", AWKWARD)
def test_remembered_credentials_go_to_that_url_only(echo: str, token: str) -> None:
    import base64
    clean = remember_credentials(f"{echo.replace('http://', f'http://user:{token}@')}/only/pkg-1.0-py3-none-any.whl")
    assert clean == f"{echo}/only/pkg-1.0-py3-none-any.whl"
    want = "Basic " + base64.b64encode(f"user:{unquote(token)}".encode()).decode()
    with make_client() as client:
        assert request_with_retries(client, "GET", clean).text == want
        assert request_with_retries(client, "GET", clean + "#sha256=00").text == want
        assert request_with_retries(client, "GET", f"{echo}/only/other.whl").text == "none"
        assert request_with_retries(client, "GET", f"{echo}/only/").text == "none"
