"""The fetch stage against a real loopback server that fails on purpose (``tests/support/faultserver.py``).

Most tests call ``fetch_files`` with ``FileSpec``s pointing at a ``FaultServer``; each fault must end
in verified files (or a clear error), and the server's request log proves *how*: a resumable fault
is followed by ``Range: bytes=N-`` (N > 0) with ``If-Range``, never by a second download from 0.
The end-to-end tests drive ``wheelhouse fetch`` in-process through ``main([...])`` and as
``python -m bundler fetch`` subprocesses (two at once on one cache, and one killed with SIGKILL).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w

from bundler.cache import BlobStore
from bundler.cli import main
from bundler.errors import BadInput, BundlerError, DownloadFailed, HashMismatch
from bundler.fetch import FetchOptions, FetchReport, FileSpec, fetch_files, parse_rate, place
from support.faultserver import (ChangeEtag, Fault, FaultServer, Flip, Gzip, IgnoreRange, RangeStatus, Redirect,
                         RequestRecord, Reset, ServedFile, Short, ShortNoLength, Stall, Status, WrongContentRange)
from support.indexserver import IndexServer
from support.hermetic import hermetic

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000
# Faults strike past the first read buffers (a downloader may read 256 KiB at a time), so bytes reach the disk.
AFTER = 600_000
FAST = FetchOptions(jobs=4, retries=3, timeout=1.0)
USER, PASSWORD = "wh-user", "wh-s3cret-pw"


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, "SSL_CERT_FILE")


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "cache")


@pytest.fixture
def big(srv: FaultServer) -> ServedFile:
    """A 1 MB file ``big-1.0-py3-none-any.whl``."""
    return srv.add_file("big-1.0-py3-none-any.whl", size=MB)


def spec(f: ServedFile, *, url: str | None = None, size: int | None | bool = True) -> FileSpec:
    """The FileSpec of a served file (``size=None``: as a lock without sizes would give it)."""
    return FileSpec(url=url or f.url, sha256=f.sha256, size=f.size if size is True else None, filename=f.name)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_verified(store: BlobStore, report: FetchReport, *files: ServedFile) -> None:
    for f in files:
        path = report.paths[f.sha256]
        assert path == store.path(f.sha256)
        assert path.read_bytes() == f.path.read_bytes()


def no_blobs(store: BlobStore) -> bool:
    return not [p for p in (store.root / "blobs").rglob("*") if p.is_file()]


def gets(srv: FaultServer, name: str) -> list[RequestRecord]:
    return srv.requests_for(name, "GET")


def range_start(rec: RequestRecord) -> int | None:
    """N of ``Range: bytes=N-``, None when the request had no Range."""
    if rec.range is None:
        return None
    m = re.fullmatch(r"bytes=(\d+)-", rec.range)
    assert m, f"unexpected Range header {rec.range!r}"
    return int(m.group(1))


def assert_resumed(rec: RequestRecord, first: RequestRecord, f: ServedFile) -> int:
    """``rec`` continued what ``first`` sent: Range from N > 0 with a validator, answered 206."""
    n = range_start(rec)
    assert n is not None and 0 < n <= first.bytes_sent, (rec.range, first.bytes_sent)
    assert rec.headers.get("if-range") in (f'"{f.sha256}"', first.response_headers["Last-Modified"])
    assert rec.status == 206 and rec.start == n and rec.bytes_sent == f.size - n
    return n


# -- the happy path and the cache ---------------------------------------------------------------


def test_fetch_verifies_and_publishes(srv: FaultServer, store: BlobStore) -> None:
    files = [srv.add_file(f"p{i}-1.0-py3-none-any.whl", size=50_000 + i) for i in range(3)]
    report = fetch_files([spec(f) for f in files], store, FAST)
    assert (report.files, report.downloaded, report.cached, report.retries) == (3, 3, 0, 0)
    assert report.bytes == sum(f.size for f in files) and report.resumed_bytes == 0
    assert_verified(store, report, *files)
    assert not [p for p in (store.root / "partial").glob("*") if p.suffix in (".part", ".json")]
    assert all(len(gets(srv, f.name)) == 1 for f in files)


def test_second_fetch_sends_no_request(srv: FaultServer, store: BlobStore, big: ServedFile) -> None:
    fetch_files([spec(big)], store, FAST)
    srv.clear_log()
    report = fetch_files([spec(big)], store, FAST)
    assert srv.requests == []
    assert (report.cached, report.downloaded, report.bytes) == (1, 0, 0)
    assert_verified(store, report, big)


def test_same_file_twice_is_fetched_once(srv: FaultServer, store: BlobStore, big: ServedFile) -> None:
    report = fetch_files([spec(big), spec(big)], store, FAST)
    assert report.files == 1 and len(gets(srv, big.name)) == 1


def test_damaged_blob_is_detected_and_refetched(srv: FaultServer, store: BlobStore, big: ServedFile) -> None:
    fetch_files([spec(big)], store, FAST)
    blob = store.path(big.sha256)
    with open(blob, "r+b") as fh:  # same size, one byte changed
        fh.seek(1234)
        byte = fh.read(1)
        fh.seek(1234)
        fh.write(bytes([byte[0] ^ 1]))
    srv.clear_log()
    report = fetch_files([spec(big)], store, FAST)
    assert report.downloaded == 1 and len(gets(srv, big.name)) == 1
    assert_verified(store, report, big)


def test_blobstore_verified_deletes_a_damaged_blob(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "c")
    digest = sha(b"hello")
    path = store.path(digest)
    assert path == tmp_path / "c" / "blobs" / "sha256" / digest[:2] / digest
    assert store.verified(digest, 5) is None
    path.parent.mkdir(parents=True)
    path.write_bytes(b"hello")
    assert store.verified(digest, 5) == path and store.verified(digest, None) == path
    path.write_bytes(b"jello")
    assert store.verified(digest, 5) is None and not path.exists()


# -- resumable faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [
    Reset(after=AFTER),
    Short(after=AFTER),
    ShortNoLength(after=AFTER),
    Stall(after=AFTER, seconds=3),
], ids=lambda f: type(f).__name__)
def test_interrupted_body_is_resumed_with_range(srv: FaultServer, store: BlobStore, big: ServedFile,
                                                fault: Fault) -> None:
    srv.fault(big.name, fault)
    report = fetch_files([spec(big)], store, FAST)
    assert_verified(store, report, big)
    first, second, *more = gets(srv, big.name)
    assert more == []
    n = assert_resumed(second, first, big)
    assert report.resumed_bytes == n and report.retries == 1
    assert report.bytes == big.size  # nothing was downloaded twice


def test_short_body_without_length_is_never_accepted_as_complete(srv: FaultServer, store: BlobStore,
                                                                 big: ServedFile) -> None:
    """With no size in the lock and no Content-Length, only the hash can tell: fetch it again."""
    srv.fault(big.name, ShortNoLength(after=AFTER))
    report = fetch_files([spec(big, size=None)], store, FAST)
    assert_verified(store, report, big)
    assert len(gets(srv, big.name)) >= 2


def test_bytes_received_before_a_reset_are_kept(srv: FaultServer, store: BlobStore) -> None:
    """A reset after 100 KB of a 200 KB file: the retry asks only for the rest."""
    f = srv.add_file("small-1.0-py3-none-any.whl", size=200_000)
    srv.fault(f.name, Reset(after=100_000))
    report = fetch_files([spec(f)], store, FAST)
    assert_verified(store, report, f)
    first, second = gets(srv, f.name)
    assert_resumed(second, first, f)


def test_failed_run_leaves_a_partial_that_the_next_run_resumes(srv: FaultServer, store: BlobStore,
                                                               big: ServedFile) -> None:
    srv.fault(big.name, Reset(after=AFTER), Reset(after=0))
    with pytest.raises(DownloadFailed):
        fetch_files([spec(big)], store, FetchOptions(retries=1, timeout=1.0))
    assert no_blobs(store)
    part, state = store.partial_paths(big.sha256)
    assert 0 < part.stat().st_size <= AFTER and state.exists()
    report = fetch_files([spec(big)], store, FAST)
    assert_verified(store, report, big)
    assert_resumed(gets(srv, big.name)[-1], gets(srv, big.name)[0], big)


def test_503_then_ok(srv: FaultServer, store: BlobStore, big: ServedFile) -> None:
    srv.fault(big.name, Status(503))
    retries: list[str] = []

    class Rec:
        def start(self, files: int, total_bytes: int) -> None: pass
        def file_start(self, spec: FileSpec, offset: int) -> None: pass
        def advance(self, nbytes: int) -> None: pass
        def file_end(self, spec: FileSpec) -> None: pass
        def retry(self, spec: FileSpec, reason: str, delay: float) -> None: retries.append(reason)

    report = fetch_files([spec(big)], store, FAST, reporter=Rec())
    assert_verified(store, report, big)
    assert [r.status for r in gets(srv, big.name)] == [503, 200]
    assert report.retries == 1 and len(retries) == 1 and "503" in retries[0]


def test_429_retry_after_is_honoured(srv: FaultServer, store: BlobStore, big: ServedFile) -> None:
    srv.fault(big.name, Status(429, {"Retry-After": "1"}))
    report = fetch_files([spec(big)], store, FAST)
    assert_verified(store, report, big)
    first, second = gets(srv, big.name)
    assert first.status == 429 and second.status == 200
    assert second.time - first.time >= 0.95


def test_one_flipped_byte_is_refetched_from_scratch(srv: FaultServer, store: BlobStore, big: ServedFile) -> None:
    srv.fault(big.name, Flip(offset=777_777))
    report = fetch_files([spec(big)], store, FAST)
    assert_verified(store, report, big)
    _, second = gets(srv, big.name)
    assert second.range is None and second.status == 200 and second.bytes_sent == big.size


def test_persistent_flip_is_a_hash_mismatch(srv: FaultServer, store: BlobStore, big: ServedFile) -> None:
    srv.fault(big.name, Flip(offset=10), persistent=True)
    data = bytearray(big.path.read_bytes())
    data[10] ^= 0xFF
    with pytest.raises(HashMismatch) as info:
        fetch_files([spec(big)], store, FAST)
    err = info.value
    assert (err.expected, err.actual) == (big.sha256, sha(bytes(data)))
    assert big.sha256 in err.message and sha(bytes(data)) in err.message
    assert big.name in err.message and big.url in err.message
    assert err.exit_code == 1 and isinstance(err, BundlerError)
    assert no_blobs(store)
    assert len(gets(srv, big.name)) == 2  # refetched from scratch once, then given up


def test_range_ignored_restarts_cleanly(srv: FaultServer, store: BlobStore, big: ServedFile) -> None:
    srv.fault(big.name, Reset(after=AFTER), IgnoreRange())
    report = fetch_files([spec(big)], store, FAST)
    assert_verified(store, report, big)
    _, second = gets(srv, big.name)
    assert range_start(second) and second.status == 200 and second.bytes_sent == big.size


def test_etag_changed_between_attempts_gets_the_whole_file(srv: FaultServer, store: BlobStore,
                                                           big: ServedFile) -> None:
    srv.fault(big.name, Reset(after=AFTER), ChangeEtag('"v2"'))
    report = fetch_files([spec(big)], store, FAST)
    assert_verified(store, report, big)
    _, second = gets(srv, big.name)
    assert range_start(second) and second.headers["if-range"] == f'"{big.sha256}"'
    assert second.status == 200 and second.bytes_sent == big.size


def test_etag_and_content_changed_is_an_error(srv: FaultServer, store: BlobStore, big: ServedFile) -> None:
    srv.fault(big.name, Reset(after=AFTER), ChangeEtag('"v2"', data=os.urandom(MB)))
    with pytest.raises(HashMismatch) as info:
        fetch_files([spec(big)], store, FAST)
    assert info.value.expected == big.sha256 and info.value.actual == srv.file(big.name).sha256
    assert no_blobs(store)
    assert all(r.status != 206 for r in gets(srv, big.name)[1:])  # never appended to old bytes


def test_wrong_content_range_start_restarts(srv: FaultServer, store: BlobStore, big: ServedFile) -> None:
    srv.fault(big.name, Reset(after=AFTER), WrongContentRange(start=10))
    report = fetch_files([spec(big)], store, FAST)
    assert_verified(store, report, big)
    log = gets(srv, big.name)
    assert log[1].status == 206 and log[1].response_headers["Content-Range"].startswith("bytes 10-")
    assert len(log) == 3 and log[2].range is None and log[2].status == 200
    assert report.bytes <= log[0].bytes_sent + big.size  # the misplaced body was not taken


def test_gzip_encoding_is_refused_then_retried(srv: FaultServer, store: BlobStore, big: ServedFile) -> None:
    srv.fault(big.name, Gzip())
    report = fetch_files([spec(big)], store, FAST)
    assert_verified(store, report, big)
    log = gets(srv, big.name)
    assert log[0].response_headers["Content-Encoding"] == "gzip"
    assert len(log) == 2 and "Content-Encoding" not in log[1].response_headers


def test_persistent_gzip_fails_clearly(srv: FaultServer, store: BlobStore, big: ServedFile) -> None:
    srv.fault(big.name, Gzip(), persistent=True)
    with pytest.raises(DownloadFailed) as info:
        fetch_files([spec(big)], store, FetchOptions(retries=1, timeout=1.0))
    assert big.name in info.value.message and "gzip" in info.value.message
    assert no_blobs(store)


@pytest.mark.parametrize("code", [400, 416])
def test_range_refused_falls_back_to_a_plain_get(srv: FaultServer, store: BlobStore, big: ServedFile,
                                                 code: int) -> None:
    srv.fault(big.name, Reset(after=AFTER), RangeStatus(code))
    report = fetch_files([spec(big)], store, FAST)
    assert_verified(store, report, big)
    log = gets(srv, big.name)
    assert log[1].status == code and range_start(log[1])
    assert len(log) == 3 and log[2].range is None and log[2].status == 200


def test_vanished_server_fails_clearly(srv: FaultServer, store: BlobStore, big: ServedFile) -> None:
    srv.throttle(2 * MB)
    srv.fault(big.name, Stall(after=AFTER, seconds=30))  # the server vanishes mid-body
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fetch_files([spec(big)], store, FetchOptions(retries=2, timeout=5.0))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while srv.bytes_sent(big.name) < AFTER and time.monotonic() < deadline:
        time.sleep(0.02)
    srv.stop()
    worker.join(30)
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], DownloadFailed), errors
    assert big.name in errors[0].message and big.url in errors[0].message
    assert no_blobs(store)


# -- credentials and redirects -------------------------------------------------------------------


def test_credentials_are_sent_but_never_written(srv: FaultServer, store: BlobStore, big: ServedFile) -> None:
    srv.require_auth(USER, PASSWORD)
    url = srv.url(big.name, userinfo=f"{USER}:{PASSWORD}")
    srv.fault(big.name, Reset(after=AFTER))  # leaves a partial state record behind for a while
    report = fetch_files([spec(big, url=url)], store, FAST)
    assert_verified(store, report, big)
    assert all(r.headers.get("authorization", "").startswith("Basic ") and r.status != 401
               for r in gets(srv, big.name))
    other = srv.add_file("other-1.0-py3-none-any.whl", size=1000)
    srv.fault(other.name, Status(503), persistent=True)
    with pytest.raises(DownloadFailed) as info:
        fetch_files([spec(other, url=srv.url(other.name, userinfo=f"{USER}:{PASSWORD}"))], store,
                    FetchOptions(retries=1, timeout=1.0))
    assert PASSWORD not in str(info.value) and USER not in str(info.value)
    assert other.url in info.value.message
    assert_no_secret(store.root)


def assert_no_secret(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            content = p.read_bytes()
            assert PASSWORD.encode() not in content and USER.encode() not in content, p
            assert PASSWORD not in str(p)


def test_redirect_to_another_host_drops_authorization(tmp_path: Path, srv: FaultServer, store: BlobStore,
                                                      big: ServedFile) -> None:
    with FaultServer(tmp_path / "mirror") as mirror:
        mirror.add_file(big.name, path=big.path)
        srv.fault(big.name, Redirect(mirror.url(big.name, host="localhost")), persistent=True)
        url = srv.url(big.name, userinfo=f"{USER}:{PASSWORD}")
        report = fetch_files([spec(big, url=url)], store, FAST)
        assert_verified(store, report, big)
        assert "authorization" in gets(srv, big.name)[0].headers
        assert [("authorization" in r.headers) for r in mirror.requests] == [False]


# -- rate limit, rates and placing ---------------------------------------------------------------


def test_limit_rate_caps_throughput(srv: FaultServer, store: BlobStore) -> None:
    f = srv.add_file("slow-1.0-py3-none-any.whl", size=600_000)
    t0 = time.monotonic()
    fetch_files([spec(f)], store, FetchOptions(limit_rate=200_000, timeout=5.0))
    assert time.monotonic() - t0 >= 2.5  # 3 s at the cap; the precise check is a benchmark's job


@pytest.mark.parametrize(("text", "rate"), [
    ("2M", 2_000_000.0), ("500K", 500_000.0), ("1.5G", 1_500_000_000.0), ("1000", 1000.0), ("200k", 200_000.0),
])
def test_parse_rate(text: str, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "2X", "-1", "0", "M", "1.2.3K"])
def test_parse_rate_rejects_junk(text: str) -> None:
    with pytest.raises(BadInput):
        parse_rate(text)


def test_place_puts_files_under_their_names(srv: FaultServer, store: BlobStore, tmp_path: Path) -> None:
    files = [srv.add_file(f"p{i}-1.0-py3-none-any.whl", size=1000 + i) for i in range(2)]
    specs = [spec(f) for f in files]
    report = fetch_files(specs, store, FAST)
    dest = tmp_path / "dest"
    placed = place(specs, report, dest)
    assert placed == [dest / f.name for f in files]
    assert sorted(p.name for p in dest.iterdir()) == sorted(f.name for f in files)
    assert all((dest / f.name).read_bytes() == f.path.read_bytes() for f in files)


# -- the command line ----------------------------------------------------------------------------


def make_lock(tmp_path: Path, index: IndexServer, srv: FaultServer, sizes: dict[str, int | None],
              *, userinfo: str | None = None) -> tuple[Path, dict[str, ServedFile]]:
    """Lock projects ``sizes`` (name -> size of its wheel; None: the real generated wheel) with
    ``wheelhouse lock`` against an IndexServer, then point every wheel URL at ``srv``."""
    index.add_index("main")
    served: dict[str, ServedFile] = {}
    for name, size in sizes.items():
        wheel = index.add_wheel("main", name, "1.0")
        served[wheel.filename] = (srv.add_file(wheel.filename, path=wheel.path) if size is None
                                  else srv.add_file(wheel.filename, size=size))
    path = tmp_path / "pylock.toml"
    argv = ["lock", "--index-url", index.index_url("main"), "--python-platform", "x86_64-manylinux_2_28",
            "--python-version", "3.11", "--no-cache", "-q", "-o", str(path), *sizes]
    assert main(argv) == 0
    doc = tomllib.loads(path.read_text())
    for pkg in doc["packages"]:
        for wheel in pkg.get("wheels", []):
            f = served[wheel["name"]]
            wheel.update(url=srv.url(f.name, userinfo=userinfo), size=f.size, hashes={"sha256": f.sha256})
    path.write_text(tomli_w.dumps(doc))
    return path, served


def blob_files(cache: Path) -> list[Path]:
    return [p for p in (cache / "blobs").rglob("*") if p.is_file()]


def test_cli_fetch_with_dest(tmp_path: Path, index_server: IndexServer, srv: FaultServer,
                             capsys: pytest.CaptureFixture[str]) -> None:
    lock, served = make_lock(tmp_path, index_server, srv, {"alpha": None, "beta": 300_000})
    srv.fault(next(iter(served)), Reset(after=100))
    cache, dest = tmp_path / "cache", tmp_path / "dest"
    capsys.readouterr()
    assert main(["fetch", str(lock), "--cache-dir", str(cache), "--dest", str(dest), "--timeout", "2"]) == 0
    assert sorted(p.name for p in dest.iterdir()) == sorted(served)
    for name, f in served.items():
        assert (dest / name).read_bytes() == f.path.read_bytes()
        assert BlobStore(cache).verified(f.sha256, f.size) is not None
    srv.clear_log()
    assert main(["fetch", str(lock), "--cache-dir", str(cache), "--quiet"]) == 0
    assert srv.requests == []
    assert "Traceback" not in capsys.readouterr().err


def test_cli_hash_mismatch(tmp_path: Path, index_server: IndexServer, srv: FaultServer,
                           capsys: pytest.CaptureFixture[str]) -> None:
    lock, served = make_lock(tmp_path, index_server, srv, {"alpha": None})
    (name, f), = served.items()
    srv.fault(name, Flip(offset=3), persistent=True)
    data = bytearray(f.path.read_bytes())
    data[3] ^= 0xFF
    cache, dest = tmp_path / "cache", tmp_path / "dest"
    capsys.readouterr()
    assert main(["fetch", str(lock), "--cache-dir", str(cache), "--dest", str(dest), "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert f.sha256 in err and sha(bytes(data)) in err and name in err
    assert "Traceback" not in err
    assert blob_files(cache) == []
    assert not dest.exists() or list(dest.iterdir()) == []


def test_cli_vanished_server(tmp_path: Path, index_server: IndexServer, srv: FaultServer,
                             capsys: pytest.CaptureFixture[str]) -> None:
    lock, _ = make_lock(tmp_path, index_server, srv, {"alpha": None})
    srv.stop()
    cache, dest = tmp_path / "cache", tmp_path / "dest"
    capsys.readouterr()
    code = main(["fetch", str(lock), "--cache-dir", str(cache), "--dest", str(dest), "--retries", "1",
                 "--timeout", "1"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert re.search(r"error: .*alpha", err) and srv.base_url in err
    assert blob_files(cache) == []
    assert not dest.exists() or list(dest.iterdir()) == []


def test_cli_credentials_never_printed_or_stored(tmp_path: Path, index_server: IndexServer, srv: FaultServer,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    lock, served = make_lock(tmp_path, index_server, srv, {"alpha": None, "beta": 200_000},
                             userinfo=f"{USER}:{PASSWORD}")
    srv.require_auth(USER, PASSWORD)
    alpha, beta = served
    srv.fault(beta, Status(503), persistent=True)
    cache = tmp_path / "cache"
    capsys.readouterr()
    code = main(["fetch", str(lock), "--cache-dir", str(cache), "--retries", "1", "--timeout", "1", "--jobs", "1"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    assert PASSWORD not in out + err and USER not in out + err
    assert srv.requests and all("authorization" in r.headers for r in srv.requests)
    assert [r.status for r in srv.requests_for(alpha)] == [200]
    assert_no_secret(cache)


def test_cli_bad_rate_is_an_error(tmp_path: Path, index_server: IndexServer, srv: FaultServer,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    lock, _ = make_lock(tmp_path, index_server, srv, {"alpha": None})
    capsys.readouterr()
    assert main(["fetch", str(lock), "--cache-dir", str(tmp_path / "c"), "--limit-rate", "fast"]) in (1, 2)
    err = capsys.readouterr().err
    assert "limit-rate" in err and "Traceback" not in err
    assert srv.requests == []


# -- several processes ---------------------------------------------------------------------------


def subprocess_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("PIP_")}
    env.update(NO_PROXY="127.0.0.1,localhost", NETRC=str(tmp_path / "no-netrc"), PYTHONPATH=str(REPO))
    return env


def wheelhouse(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bundler", *args], cwd=REPO, env=subprocess_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_share_one_cache(tmp_path: Path, index_server: IndexServer, srv: FaultServer) -> None:
    lock, served = make_lock(tmp_path, index_server, srv, {"alpha": 1 * MB, "beta": 1 * MB, "gamma": None})
    srv.throttle(2 * MB)  # slow enough that the two runs overlap
    cache = tmp_path / "cache"
    procs = [wheelhouse(tmp_path, "fetch", str(lock), "--cache-dir", str(cache), "--dest", str(tmp_path / f"d{i}"))
             for i in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
        assert "Traceback" not in err
    store = BlobStore(cache)
    for name, f in served.items():
        assert store.verified(f.sha256, f.size) is not None
        for i in range(2):
            assert (tmp_path / f"d{i}" / name).read_bytes() == f.path.read_bytes()
    assert len(blob_files(cache)) == len(served)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_fetch_resumes_where_it_stopped(tmp_path: Path, index_server: IndexServer, srv: FaultServer) -> None:
    lock, served = make_lock(tmp_path, index_server, srv, {"huge": 4 * MB})
    (name, f), = served.items()
    cache = tmp_path / "cache"
    part, _ = BlobStore(cache).partial_paths(f.sha256)
    srv.throttle(1 * MB)
    proc = wheelhouse(tmp_path, "fetch", str(lock), "--cache-dir", str(cache))
    try:
        deadline = time.monotonic() + 30
        while not (part.exists() and part.stat().st_size >= 300_000) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        assert part.exists() and part.stat().st_size >= 300_000
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    kept = part.stat().st_size
    assert 0 < kept < f.size and blob_files(cache) == []
    srv.throttle(None)
    srv.clear_log()
    again = wheelhouse(tmp_path, "fetch", str(lock), "--cache-dir", str(cache))
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    (rec,) = gets(srv, name)
    n = range_start(rec)
    assert n is not None and 0 < n <= kept and rec.status == 206 and "if-range" in rec.headers
    assert rec.bytes_sent == f.size - n
    assert BlobStore(cache).verified(f.sha256, f.size) is not None
