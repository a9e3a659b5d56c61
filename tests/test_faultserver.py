"""Prove the fault-injecting file server does exactly what the downloader tests rely on.

Checked with ``http.client`` (which reports what arrived on the wire, short or not) and, where a
real client's view matters, with httpx.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import http.client
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from support.faultserver import (ChangeEtag, FaultServer, Flip, Gzip, IgnoreRange, RangeStatus, Redirect, Reset,
                         Short, ShortNoLength, Stall, Status, WrongContentRange)

SIZE = 200_000


@pytest.fixture
def data(srv: FaultServer) -> bytes:
    """A served file ``a.bin`` of SIZE random bytes; returns its content."""
    f = srv.add_file("a.bin", size=SIZE)
    return f.path.read_bytes()


@dataclass
class Got:
    status: int
    headers: dict[str, str]  # lower-cased
    body: bytes
    error: BaseException | None  # what ended the read early, if anything


def get(srv: FaultServer, name: str = "a.bin", headers: dict[str, str] | None = None, *, method: str = "GET",
        timeout: float = 5.0, conn: http.client.HTTPConnection | None = None) -> Got:
    """One request; reads the body until it ends, whatever way it ends."""
    conn = conn or http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    conn.request(method, "/" + quote(name, safe=""), headers=headers or {})
    resp = conn.getresponse()
    body, error = bytearray(), None
    try:
        while chunk := resp.read(65536):
            body += chunk
    except (OSError, http.client.HTTPException) as e:
        error = e
        if isinstance(e, http.client.IncompleteRead):
            body += e.partial
    return Got(resp.status, {k.lower(): v for k, v in resp.getheaders()}, bytes(body), error)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- plain HTTP semantics --------------------------------------------------------------------


def test_plain_get_has_validators_and_length(srv: FaultServer, data: bytes) -> None:
    got = get(srv)
    assert got.status == 200 and got.body == data and got.error is None
    f = srv.file("a.bin")
    assert f.sha256 == sha(data) and f.size == SIZE and f.url == f"{srv.base_url}/a.bin"
    assert got.headers["etag"] == f'"{f.sha256}"'
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["content-length"] == str(SIZE)
    assert email.utils.parsedate_to_datetime(got.headers["last-modified"])


@pytest.mark.parametrize(("header", "status", "first", "last"), [
    ("bytes=1000-", 206, 1000, SIZE - 1),
    ("bytes=10-19", 206, 10, 19),
    ("bytes=10-999999", 206, 10, SIZE - 1),
    ("bytes=-100", 206, SIZE - 100, SIZE - 1),
    ("bytes=0-", 206, 0, SIZE - 1),
    ("bytes=1-2,5-6", 200, 0, SIZE - 1),  # several ranges: ignored
    ("items=1-2", 200, 0, SIZE - 1),  # unknown unit: ignored
])
def test_ranges(srv: FaultServer, data: bytes, header: str, status: int, first: int, last: int) -> None:
    got = get(srv, headers={"Range": header})
    assert got.status == status and got.body == data[first:last + 1]
    assert got.headers["content-length"] == str(last - first + 1)
    if status == 206:
        assert got.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    else:
        assert "content-range" not in got.headers
    assert srv.requests[-1].start == first and srv.requests[-1].range == header


def test_unsatisfiable_range(srv: FaultServer, data: bytes) -> None:
    got = get(srv, headers={"Range": f"bytes={SIZE}-"})
    assert got.status == 416 and got.body == b""
    assert got.headers["content-range"] == f"bytes */{SIZE}"


def test_if_range(srv: FaultServer, data: bytes) -> None:
    head = get(srv, method="HEAD")
    etag, modified = head.headers["etag"], head.headers["last-modified"]
    assert get(srv, headers={"Range": "bytes=5-", "If-Range": etag}).status == 206
    assert get(srv, headers={"Range": "bytes=5-", "If-Range": modified}).status == 206
    for stale in ('"other"', f"W/{etag}", "Thu, 01 Jan 1998 00:00:00 GMT", "garbage"):
        got = get(srv, headers={"Range": "bytes=5-", "If-Range": stale})
        assert (got.status, got.body) == (200, data), stale


def test_head_and_keep_alive(srv: FaultServer, data: bytes) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    head = get(srv, method="HEAD", conn=conn)
    assert head.status == 200 and head.body == b"" and head.headers["content-length"] == str(SIZE)
    assert get(srv, headers={"Range": "bytes=0-9"}, conn=conn).body == data[:10]
    assert get(srv, conn=conn).body == data
    conn.close()
    log = srv.requests
    assert [r.method for r in log] == ["HEAD", "GET", "GET"]
    assert [r.bytes_sent for r in log] == [0, 10, SIZE]


def test_not_found_and_log(srv: FaultServer, data: bytes) -> None:
    assert get(srv, "nope").status == 404
    get(srv, headers={"X-Test": "1"})
    rec = srv.requests[-1]
    assert (rec.name, rec.method, rec.status, rec.headers["x-test"]) == ("a.bin", "GET", 200, "1")
    assert rec.response_headers["ETag"] == f'"{srv.file("a.bin").sha256}"'
    assert srv.bytes_sent("a.bin") == SIZE
    srv.clear_log()
    assert srv.requests == []


def test_serves_an_existing_file_and_replacements(srv: FaultServer, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(b"x" * 300_000)
    f = srv.add_file("big.bin", path=src)
    assert f.path == src and f.sha256 == sha(src.read_bytes())
    assert get(srv, "big.bin").body == src.read_bytes()
    old_etag = get(srv, "big.bin", method="HEAD").headers["etag"]
    g = srv.replace_file("big.bin", b"new content")
    got = get(srv, "big.bin", headers={"Range": "bytes=3-", "If-Range": old_etag})
    assert (got.status, got.body) == (200, b"new content") and g.sha256 == sha(b"new content")
    assert src.read_bytes() == b"x" * 300_000  # the original is never written to
    srv.add_file("d.bin", b"abc", etag='"v1"')
    assert get(srv, "d.bin", method="HEAD").headers["etag"] == '"v1"'
    srv.set_etag("d.bin", '"v2"')
    assert get(srv, "d.bin", headers={"Range": "bytes=1-", "If-Range": '"v1"'}).status == 200
    assert get(srv, "d.bin", headers={"Range": "bytes=1-", "If-Range": '"v2"'}).body == b"bc"


# -- faults ------------------------------------------------------------------------------------


def test_reset_sends_some_bytes_then_rst(srv: FaultServer, data: bytes) -> None:
    srv.fault("a.bin", Reset(after=50_000))
    got = get(srv)
    assert got.status == 200 and got.headers["content-length"] == str(SIZE)
    assert isinstance(got.error, ConnectionResetError)
    assert got.body == data[:len(got.body)] and len(got.body) <= 50_000
    assert srv.requests[-1].bytes_sent == 50_000
    assert get(srv).body == data  # one-shot: the next request is fine


def test_reset_is_an_error_to_httpx(srv: FaultServer, data: bytes) -> None:
    srv.fault("a.bin", Reset(after=1000))
    with httpx.Client(trust_env=False) as client, pytest.raises(httpx.ReadError):
        client.get(srv.url("a.bin"))


def test_short_closes_cleanly_before_the_announced_length(srv: FaultServer, data: bytes) -> None:
    srv.fault("a.bin", Short(after=1234))
    got = get(srv)
    assert got.headers["content-length"] == str(SIZE)
    assert got.body == data[:1234]
    assert not isinstance(got.error, ConnectionResetError)
    with httpx.Client(trust_env=False) as client:
        srv.fault("a.bin", Short(after=1234))
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(srv.url("a.bin"))


def test_short_without_length_looks_complete(srv: FaultServer, data: bytes) -> None:
    srv.fault("a.bin", ShortNoLength(after=999))
    got = get(srv)
    assert got.status == 200 and "content-length" not in got.headers
    assert got.headers["connection"] == "close"
    assert got.body == data[:999] and got.error is None
    srv.fault("a.bin", ShortNoLength(after=999))
    with httpx.Client(trust_env=False) as client:  # a client sees nothing wrong but the size
        assert client.get(srv.url("a.bin")).content == data[:999]


def test_status_faults_then_ok(srv: FaultServer, data: bytes) -> None:
    srv.fault("a.bin", Status(503), Status(429, {"Retry-After": "1"}, b"slow down"))
    assert get(srv).status == 503
    got = get(srv)
    assert (got.status, got.headers["retry-after"], got.body) == (429, "1", b"slow down")
    assert get(srv).status == 200
    assert [type(r.fault).__name__ for r in srv.requests] == ["Status", "Status", "NoneType"]
    assert srv.pending_faults("a.bin") == 0


def test_flip_one_byte(srv: FaultServer, data: bytes) -> None:
    srv.fault("a.bin", Flip(offset=100_000), persistent=True)
    body = get(srv).body
    assert len(body) == SIZE and [i for i in range(SIZE) if body[i] != data[i]] == [100_000]
    assert get(srv, headers={"Range": "bytes=99999-100001"}).body == bytes(
        [data[99_999], data[100_000] ^ 0xFF, data[100_001]])
    assert get(srv, headers={"Range": "bytes=0-9"}).body == data[:10]  # not covered: intact
    srv.clear_faults("a.bin")
    assert get(srv).body == data


def test_queue_comes_before_the_persistent_fault(srv: FaultServer, data: bytes) -> None:
    srv.fault("a.bin", Status(500), persistent=True)
    srv.fault("a.bin", Status(503))
    assert [get(srv).status for _ in range(3)] == [503, 500, 500]
    with pytest.raises(ValueError):
        srv.fault("a.bin", Status(500), Status(503), persistent=True)


def test_ignore_range(srv: FaultServer, data: bytes) -> None:
    srv.fault("a.bin", IgnoreRange())
    got = get(srv, headers={"Range": "bytes=100-"})
    assert got.status == 200 and got.body == data and "content-range" not in got.headers


def test_change_etag_between_attempts(srv: FaultServer, data: bytes) -> None:
    etag = get(srv, method="HEAD").headers["etag"]
    srv.fault("a.bin", Reset(after=1000), ChangeEtag('"new"'), ChangeEtag('"newer"', data=b"changed"))
    get(srv)
    got = get(srv, headers={"Range": "bytes=1000-", "If-Range": etag})
    assert (got.status, got.headers["etag"], got.body) == (200, '"new"', data)
    got = get(srv, headers={"Range": "bytes=1000-", "If-Range": '"new"'})
    assert (got.status, got.headers["etag"], got.body) == (200, '"newer"', b"changed")
    assert srv.file("a.bin").sha256 == sha(b"changed")


def test_stall_goes_silent(srv: FaultServer, data: bytes) -> None:
    srv.fault("a.bin", Stall(after=5000, seconds=2))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=0.5) as s:
        s.sendall(b"GET /a.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        with pytest.raises(socket.timeout):
            while True:
                chunk = s.recv(65536)
                assert chunk
                received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        assert b"200" in head.split(b"\r\n")[0] and body == data[:5000]


def test_wrong_content_range(srv: FaultServer, data: bytes) -> None:
    srv.fault("a.bin", WrongContentRange(start=10))
    got = get(srv, headers={"Range": "bytes=5000-"})
    assert got.status == 206 and got.headers["content-range"] == f"bytes 10-{SIZE - 1}/{SIZE}"
    assert got.body == data[10:]


def test_gzip(srv: FaultServer, data: bytes) -> None:
    srv.fault("a.bin", Gzip(), Gzip())
    got = get(srv)
    assert got.headers["content-encoding"] == "gzip" and gzip.decompress(got.body) == data
    assert got.headers["content-length"] == str(len(got.body))
    got = get(srv, headers={"Range": "bytes=100-"})
    assert got.status == 206 and gzip.decompress(got.body) == data[100:]


@pytest.mark.parametrize("code", [400, 416])
def test_range_status(srv: FaultServer, data: bytes, code: int) -> None:
    srv.fault("a.bin", RangeStatus(code), persistent=True)
    got = get(srv, headers={"Range": "bytes=5-"})
    assert got.status == code
    if code == 416:
        assert got.headers["content-range"] == f"bytes */{SIZE}"
    assert get(srv).body == data


def test_redirect_to_another_host(tmp_path: Path, srv: FaultServer, data: bytes) -> None:
    with FaultServer(tmp_path / "other") as other:
        other.add_file("a.bin", b"elsewhere")
        target = other.url("a.bin", host="localhost")
        srv.fault("a.bin", Redirect(target))
        got = get(srv)
        assert got.status == 302 and got.headers["location"] == target
        srv.fault("a.bin", Redirect(target))
        with httpx.Client(trust_env=False, follow_redirects=True) as client:
            assert client.get(srv.url("a.bin")).content == b"elsewhere"
        assert [r.headers["host"] for r in other.requests] == [f"localhost:{other.port}"]


# -- server-wide settings -----------------------------------------------------------------------


def test_throttle_paces_each_connection(srv: FaultServer, data: bytes) -> None:
    srv.throttle(400_000)
    t0 = time.monotonic()
    assert get(srv).body == data
    elapsed = time.monotonic() - t0
    assert 0.4 <= elapsed < 2.0  # 200 KB at 400 KB/s is 0.5 s (the first chunk goes at once)
    srv.throttle(None)
    t0 = time.monotonic()
    get(srv)
    assert time.monotonic() - t0 < 0.4


def test_require_auth(srv: FaultServer, data: bytes) -> None:
    srv.require_auth("user", "s3cret")
    assert get(srv).status == 401
    with httpx.Client(trust_env=False) as client:
        assert client.get(srv.url("a.bin", userinfo="user:s3cret")).content == data
        assert client.get(srv.url("a.bin", userinfo="user:wrong")).status_code == 401
    assert [("authorization" in r.headers, r.status) for r in srv.requests] == [
        (False, 401), (True, 200), (True, 401)]


def test_stop_makes_the_server_vanish(srv: FaultServer, data: bytes) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    assert get(srv, conn=conn).status == 200
    srv.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
    with pytest.raises((OSError, http.client.HTTPException)):  # the kept-alive connection is gone too
        get(srv, conn=conn)


def test_stop_interrupts_a_stall(tmp_path: Path) -> None:
    server = FaultServer(tmp_path / "s").start()
    server.add_file("x", size=100)
    server.fault("x", Stall(after=10, seconds=30))
    results: list[Got] = []
    reader = threading.Thread(target=lambda: results.append(get(server, "x", timeout=60)))
    reader.start()
    while server.bytes_sent("x") < 10:
        time.sleep(0.01)
    t0 = time.monotonic()
    server.stop()
    reader.join(10)
    assert not reader.is_alive() and time.monotonic() - t0 < 5
    assert results[0].body == server.file("x").path.read_bytes()[:10]
