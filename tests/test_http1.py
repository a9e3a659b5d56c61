"""bundler.http1: the lean GET answers as httpx would (``bundler.http``), or hands the request to httpx.

Everything runs against real servers on 127.0.0.1: each path of ``Script`` answers in its own way
(chunked, gzip, a redirect, a cut body, a kept connection closed, silence).
"""

from __future__ import annotations

import base64
import os
import gzip
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundler.http import describe_http_error, make_client, request_with_retries
from bundler.http1 import LeanFailure, LeanGet, lean_get
from bundler.transport import Trust
from bundler.urls import remember_credentials


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
def client() -> Iterator[LeanGet]:
    c = lean_get(Trust(), timeout=1.0)
    assert c is not None
    yield c
    c.close()


def _no_sleep(seconds: float) -> None:
    pass


def test_the_lean_answer_equals_httpxs(srv: _Server, client: LeanGet) -> None:
    with make_client() as plain:
        for path in ("/plain", "/chunked", "/gzip", "/range", "/missing"):
            headers = {"Accept-Encoding": "gzip"} if path == "/gzip" else {"Range": "bytes=-10"} if path == "/range" else {}
            lean = client.fetch(_base(srv) + path, headers)
            assert lean is not None
            ref = request_with_retries(plain, "GET", _base(srv) + path, headers=headers)
            assert (lean.status_code, lean.content) == (ref.status_code, ref.content)
            for name in ("ETag", "etag", "Content-Range", "X-Twice"):
                assert lean.headers.get(name) == ref.headers.get(name)
            assert lean.headers.get("Content-Encoding") is None and str(lean.url) == str(ref.url)


def test_connections_are_kept_and_reused(srv: _Server, client: LeanGet) -> None:
    for _ in range(5):
        assert client.fetch(_base(srv) + "/plain", {}).content == b"plain body"  # type: ignore[union-attr]
    assert len(srv.connections) == 1


def test_a_kept_connection_the_server_closed_is_replaced_unseen(srv: _Server, client: LeanGet) -> None:
    assert client.fetch(_base(srv) + "/close-after", {}).content == b"once"  # type: ignore[union-attr]
    assert client.fetch(_base(srv) + "/plain", {}, retries=0).content == b"plain body"  # type: ignore[union-attr]


def test_a_redirect_or_an_encoding_it_does_not_read_is_left_to_httpx(srv: _Server, client: LeanGet) -> None:
    assert client.fetch(_base(srv) + "/redirect", {}) is None
    assert client.fetch(_base(srv) + "/brotli", {}) is None


@pytest.mark.parametrize("url", ["https://h/a/../b", "https://h:99999/x", "https://h/a b", "https://bücher.de/x",
                                 "ftp://h/x", "https://u:a/b@h/x", "https://[fe80::1%25eth0]/x"])
def test_a_url_httpx_would_normalise_or_refuse_is_left_to_it(client: LeanGet, url: str) -> None:
    assert client.get(url, {}, 100) is None  # no connection is even tried


def test_retried_statuses_are_retried(srv: _Server, client: LeanGet) -> None:
    srv.busy = 2
    r = client.fetch(_base(srv) + "/busy", {}, sleep=_no_sleep)
    assert r is not None and r.status_code == 200 and r.content == b"served"
    srv.busy = 5
    r = client.fetch(_base(srv) + "/busy", {}, sleep=_no_sleep, retries=1)
    assert r is not None and r.status_code == 503  # the last answer, for the caller to explain


def test_a_cut_body_is_retried_then_explained_as_httpx_would(srv: _Server, client: LeanGet) -> None:
    url = _base(srv) + "/cut"
    with pytest.raises(LeanFailure) as e:
        client.fetch(url, {}, sleep=_no_sleep, retries=2)
    assert sum(1 for p, _ in srv.requests if p == "/cut") == 3
    assert e.value.describe(url).startswith(f"RemoteProtocolError while fetching {url}")
    with make_client() as plain, pytest.raises(httpx.RemoteProtocolError) as ref:
        request_with_retries(plain, "GET", url, retries=0)
    assert describe_http_error(ref.value, url).startswith(f"RemoteProtocolError while fetching {url}")


def test_silence_is_a_timeout(srv: _Server, client: LeanGet) -> None:
    url = _base(srv) + "/slow"
    with pytest.raises(LeanFailure) as e:
        client.fetch(url, {}, retries=0)
    assert e.value.describe(url) == f"timed out talking to {url}"


def test_nothing_listening_is_a_connect_failure(client: LeanGet) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://user:tok3n@127.0.0.1:{port}/x"
    with pytest.raises(LeanFailure) as e:
        client.fetch(url, {}, retries=0)
    text = e.value.describe(url)
    assert text.startswith(f"cannot connect to http://127.0.0.1:{port}/x (") and "tok3n" not in text


def test_bodies_are_capped_known_length_or_inflated(srv: _Server, client: LeanGet) -> None:
    with pytest.raises(LeanFailure) as e:
        client.fetch(_base(srv) + "/big", {}, limit=4999)
    assert e.value.too_large and not e.value.transient
    assert len(client.fetch(_base(srv) + "/big", {}, limit=5000).content) == 5000  # type: ignore[union-attr]
    srv.payload = b"\0" * (4 << 20)
    with pytest.raises(LeanFailure) as e:
        client.fetch(_base(srv) + "/gzip", {"Accept-Encoding": "gzip"}, limit=1 << 20)
    assert e.value.too_large


def test_userinfo_is_sent_as_basic_auth_and_not_in_the_request_line(srv: _Server, client: LeanGet) -> None:
    url = _base(srv).replace("http://", "http://alice:s%40cret@") + "/auth"
    r = client.fetch(url, {})
    assert r is not None and r.content.decode() == "Basic " + base64.b64encode(b"alice:s@cret").decode()
    path, headers = srv.requests[-1]
    assert "alice" not in path and "cret" not in path and headers["Host"] == f"127.0.0.1:{srv.server_address[1]}"


def test_remembered_credentials_go_to_that_url_only(srv: _Server, client: LeanGet) -> None:
    clean = remember_credentials(_base(srv).replace("http://", "http://bob:pw@") + "/auth?only")
    want = "Basic " + base64.b64encode(b"bob:pw").decode()
    assert client.fetch(clean, {}).content.decode() == want  # type: ignore[union-attr]
    assert client.fetch(clean + "#sha256=00", {}).content.decode() == want  # type: ignore[union-attr]
    assert client.fetch(_base(srv) + "/auth", {}).content == b"none"  # type: ignore[union-attr]


def test_a_netrc_entry_gives_the_hosts_credentials(srv: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login carol password n3trc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    lean = LeanGet(Trust())
    try:
        r = lean.fetch(_base(srv) + "/auth", {})
        assert r is not None and r.content.decode() == "Basic " + base64.b64encode(b"carol:n3trc").decode()
        r = lean.fetch(_base(srv) + "/auth", {"Authorization": "Bearer given"})
        assert r is not None and r.content == b"Bearer given"  # a header the caller gave is kept
    finally:
        lean.close()


def test_a_configured_proxy_leaves_every_request_to_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert lean_get(Trust()) is None


@settings(max_examples=40, deadline=None)
@given(payload=st.binary(max_size=200_000), limit=st.integers(0, 250_000))
def test_gzip_bodies_inflate_to_what_was_sent_or_are_refused_past_the_limit(payload: bytes, limit: int) -> None:
    s = _Server()
    s.payload = payload
    threading.Thread(target=s.serve_forever, daemon=True).start()
    lean = LeanGet(Trust())
    try:
        url = _base(s) + "/gzip"
        if len(payload) <= limit:
            assert lean.fetch(url, {"Accept-Encoding": "gzip"}, limit=limit).content == payload  # type: ignore[union-attr]
        else:
            with pytest.raises(LeanFailure) as e:
                lean.fetch(url, {"Accept-Encoding": "gzip"}, limit=limit)
            assert e.value.too_large
    finally:
        lean.close()
        s.shutdown()
        s.server_close()


def test_a_cold_lock_sends_every_request_lean_and_never_imports_httpx(index_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The planner's pages, range reads and metadata files all go through the lean GET; httpx (about
    0.1 s to import and set up) is not even imported. A redirect would be the exception: see above."""
    import subprocess
    import sys

    index_server.add_index("main", metadata_files=False)  # metadata by range reads
    index_server.add_wheel("main", "app", "1.0", requires_dist=["lib>=1"])
    index_server.add_wheel("main", "lib", "1.2")
    index_server.add_wheel("main", "pip", "25.0")
    probe = ("import runpy, sys, atexit\n"
             "atexit.register(lambda: print('httpx imported' if 'httpx' in sys.modules else 'httpx not imported', file=sys.stderr))\n"
             "sys.argv = ['wheelhouse', *sys.argv[1:]]\n"
             "runpy.run_module('bundler', run_name='__main__')\n")
    r = subprocess.run([sys.executable, "-c", probe, "lock", "app", "--index-url", index_server.index_url("main"),
                        "--python-platform", "aarch64-manylinux_2_28", "--python-version", "3.12",
                        "--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / "pylock.toml")],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    assert r.returncode == 0, r.stderr
    assert "httpx not imported" in r.stderr
    lock = (tmp_path / "pylock.toml").read_text()
    assert 'name = "app"' in lock and 'name = "lib"' in lock


def test_a_header_value_with_a_line_break_is_left_to_httpx(srv: _Server, client: LeanGet) -> None:
    """A validator from a planted cache entry must not inject a header, nor crash the lean GET."""
    assert client.get(_base(srv) + "/plain", {"If-None-Match": '"x"\r\nX-Injected: 1'}, 100) is None
    assert all("X-Injected" not in headers for _, headers in srv.requests)


def test_the_repositorys_sender_hands_a_redirect_to_httpx_and_explains_failures(srv: _Server) -> None:
    import threading as _threading

    from bundler.errors import IndexUnavailable, ResponseTooLarge
    from bundler.sender import Sender

    trust = Trust()
    sender = Sender(lambda: make_client(trust=trust), lambda: lean_get(trust), closed=_threading.Event(), offline=False)
    try:
        r = sender.get(_base(srv) + "/plain", {})
        assert type(r).__name__ == "LeanResponse" and r.content == b"plain body" and sender.count == 1
        r = sender.get(_base(srv) + "/redirect", {})  # the lean GET declines; httpx follows the redirect
        assert type(r).__name__ == "Response" and r.content == b"plain body" and str(r.url).endswith("/plain")
        assert sender.count == 3
        with pytest.raises(ResponseTooLarge, match="^index x: BodyTooLarge while fetching"):
            sender.get(_base(srv) + "/big", {}, "index x: ", limit=100)
        with pytest.raises(IndexUnavailable, match="^index x: RemoteProtocolError while fetching") as e:
            sender.get(_base(srv) + "/cut", {}, "index x: ", hint="check it")
        assert e.value.hint == "check it"
    finally:
        sender.close()


def test_close_ends_a_request_in_flight_and_sends_no_other(srv: _Server) -> None:
    """The planner's workers are daemon threads: closing ends their reads now, not inside OpenSSL at exit."""
    lean = LeanGet(Trust(), timeout=10.0)
    outcome: list[object] = []

    def ask() -> None:
        try:
            outcome.append(lean.fetch(_base(srv) + "/slow", {}))  # the server answers after 2 s
        except LeanFailure as e:
            outcome.append(e)

    t = threading.Thread(target=ask)
    started = time.monotonic()
    t.start()
    time.sleep(0.3)
    lean.close()
    t.join(10)
    assert time.monotonic() - started < 1.8  # well before the server's answer
    assert len(outcome) == 1 and isinstance(outcome[0], LeanFailure) and not outcome[0].transient
    assert [p for p, _ in srv.requests] == ["/slow"]  # the retry found the client closed
