"""bundler.http1: the lean GET answers as httpx would, or hands the request to httpx.

Everything runs against real servers on 127.0.0.1: each path of ``Script`` answers in its own way
(chunked, gzip, a redirect, a cut body, a kept connection closed, silence).
"""

from __future__ import annotations

import base64
import gzip
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundler.http import BodyTooLarge, describe_http_error, make_client, request_with_retries


class Script(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, *, length: bool = True) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        srv = self.server
        with srv.lock:
            srv.requests.append((self.path, dict(self.headers)))
            srv.connections.add(self.client_address)
        path = self.path.split("?")[0]
        if path == "/plain":
            self._send(200, b"plain body", {"ETag": '"e1"', "X-Twice": "a"})
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"one ", b"two ", b"three"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/gzip":
            self._send(200, gzip.compress(srv.payload), {"Content-Encoding": "gzip"})
        elif path == "/brotli":
            self._send(200, b"not really brotli", {"Content-Encoding": "br"})
        elif path == "/redirect":
            self._send(302, b"", {"Location": "/plain"})
        elif path == "/busy":
            with srv.lock:
                srv.busy -= 1
                busy = srv.busy >= 0
            self._send(503, b"busy") if busy else self._send(200, b"served")
        elif path == "/cut":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"short")
            self.close_connection = True
        elif path == "/close-after":  # answers, then closes the kept connection without saying so
            self._send(200, b"once")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif path == "/slow":
            time.sleep(2)
            self._send(200, b"late")
        elif path == "/big":
            self._send(200, b"x" * 5000)
        elif path == "/auth":
            self._send(200, (self.headers.get("Authorization") or "none").encode())
        elif path == "/range":
            self._send(206, srv.payload[-10:], {"Content-Range": f"bytes {len(srv.payload) - 10}-{len(srv.payload) - 1}/{len(srv.payload)}"})
        else:
            self._send(404, b"no")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Script)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.connections: set[tuple[str, int]] = set()
        self.payload = b"payload " * 100
        self.busy = 0

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hangs up early is routine here


@pytest.fixture
def srv() -> Iterator[_Server]:
    s = _Server()
    threading.Thread(target=s.serve_forever, daemon=True).start()
    yield s
    s.shutdown()
    s.server_close()


def _base(s: _Server) -> str:
    return f"http://127.0.0.1:{s.server_address[1]}"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with make_client(lean=True, timeout=1.0) as c:
        assert c.lean is not None
        yield c


def test_the_lean_answer_equals_httpxs(srv: _Server, client: httpx.Client) -> None:
    with make_client() as plain:
        for path in ("/plain", "/chunked", "/gzip", "/range", "/missing"):
            headers = {"Accept-Encoding": "gzip"} if path == "/gzip" else {"Range": "bytes=-10"} if path == "/range" else {}
            lean = client.lean.get(_base(srv) + path, headers, 1 << 20)  # type: ignore[union-attr]
            assert lean is not None
            ref = request_with_retries(plain, "GET", _base(srv) + path, headers=headers)
            assert (lean.status_code, lean.content) == (ref.status_code, ref.content)
            assert lean.headers.get("ETag") == ref.headers.get("ETag")
            assert "content-encoding" not in lean.headers and str(lean.url) == str(ref.url)


def test_connections_are_kept_and_reused(srv: _Server, client: httpx.Client) -> None:
    for _ in range(5):
        assert request_with_retries(client, "GET", _base(srv) + "/plain").content == b"plain body"
    assert len(srv.connections) == 1


def test_a_kept_connection_the_server_closed_is_replaced_unseen(srv: _Server, client: httpx.Client) -> None:
    assert request_with_retries(client, "GET", _base(srv) + "/close-after").content == b"once"
    assert request_with_retries(client, "GET", _base(srv) + "/plain", retries=0).content == b"plain body"


def test_a_redirect_goes_through_httpx_and_is_followed(srv: _Server, client: httpx.Client) -> None:
    r = request_with_retries(client, "GET", _base(srv) + "/redirect")
    assert r.status_code == 200 and r.content == b"plain body" and str(r.url).endswith("/plain")
    assert client.lean.get(_base(srv) + "/redirect", {}, 100) is None  # type: ignore[union-attr]


def test_an_encoding_it_does_not_read_goes_through_httpx(srv: _Server, client: httpx.Client) -> None:
    assert client.lean.get(_base(srv) + "/brotli", {}, 100) is None  # type: ignore[union-attr]


def test_retried_statuses_are_retried(srv: _Server, client: httpx.Client) -> None:
    srv.busy = 2
    r = request_with_retries(client, "GET", _base(srv) + "/busy", sleep=lambda s: None)
    assert r.status_code == 200 and r.content == b"served"


def test_a_cut_body_is_an_httpx_protocol_error_retried_then_explained(srv: _Server, client: httpx.Client) -> None:
    url = _base(srv) + "/cut"
    with pytest.raises(httpx.RemoteProtocolError) as e:
        request_with_retries(client, "GET", url, sleep=lambda s: None, retries=2)
    assert sum(1 for p, _ in srv.requests if p == "/cut") == 3
    assert "127.0.0.1" in describe_http_error(e.value, url)


def test_silence_is_a_read_timeout(srv: _Server, client: httpx.Client) -> None:
    url = _base(srv) + "/slow"
    with pytest.raises(httpx.ReadTimeout) as e:
        request_with_retries(client, "GET", url, retries=0)
    assert describe_http_error(e.value, url).startswith("timed out talking to")


def test_nothing_listening_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    with make_client(lean=True) as c, pytest.raises(httpx.ConnectError) as e:
        request_with_retries(c, "GET", url, retries=0)
    assert describe_http_error(e.value, url).startswith("cannot connect to")


def test_bodies_are_capped_known_length_or_inflated(srv: _Server, client: httpx.Client) -> None:
    with pytest.raises(BodyTooLarge):
        request_with_retries(client, "GET", _base(srv) + "/big", limit=4999)
    assert len(request_with_retries(client, "GET", _base(srv) + "/big", limit=5000).content) == 5000
    srv.payload = b"\0" * (4 << 20)
    with pytest.raises(BodyTooLarge):
        request_with_retries(client, "GET", _base(srv) + "/gzip", headers={"Accept-Encoding": "gzip"}, limit=1 << 20)


def test_userinfo_is_sent_as_basic_auth_and_not_in_the_request_line(srv: _Server, client: httpx.Client) -> None:
    url = _base(srv).replace("http://", "http://alice:s%40cret@") + "/auth"
    r = request_with_retries(client, "GET", url)
    assert r.text == "Basic " + base64.b64encode(b"alice:s@cret").decode()
    path, headers = srv.requests[-1]
    assert "alice" not in path and "cret" not in path and headers["Host"] == f"127.0.0.1:{srv.server_address[1]}"


def test_a_configured_proxy_leaves_every_request_to_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with make_client(lean=True) as c:
        assert c.lean is None


@settings(max_examples=40, deadline=None)
@given(payload=st.binary(max_size=200_000), limit=st.integers(0, 250_000))
def test_gzip_bodies_inflate_to_what_was_sent_or_are_refused_past_the_limit(payload: bytes, limit: int) -> None:
    s = _Server()
    s.payload = payload
    threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        with make_client(lean=True) as c:
            url = _base(s) + "/gzip"
            if len(payload) <= limit:
                assert request_with_retries(c, "GET", url, headers={"Accept-Encoding": "gzip"}, limit=limit).content == payload
            else:
                with pytest.raises(BodyTooLarge):
                    request_with_retries(c, "GET", url, headers={"Accept-Encoding": "gzip"}, limit=limit)
    finally:
        s.shutdown()
        s.server_close()
