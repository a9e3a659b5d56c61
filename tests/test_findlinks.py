"""Your own wheels: a local find-links folder (or a file: URL) through lock, fetch and pack, and a
remote find-links page that publishes no hashes (``python -m http.server``; ``bundler.findlinks``).

The lock records local files as PEP 751 ``path`` entries relative to the lock's folder, never as
an absolute path of the build machine. Files of a remote page without hashes are hashed on their
first download at lock time, and fetch verifies the server's bytes against those hashes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import threading
import tomllib
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bundler.cli import main
from bundler.errors import IndexUnavailable
from bundler.findlinks import FileRecord, download, read_record, write_record
from bundler.httpcache import PlannerCache
from bundler.index import IndexConfig
from bundler.lock import requirements_path
from bundler.locktool import read_lock
from bundler.repository import Repository
from support.bundlefixture import offline_prefix, pip_wheel_from_installed
from support.hermetic import hermetic
from support.indexserver import IndexServer, Request, Response
from support.sdistgen import make_sdist
from support.wheelgen import make_wheel

TARGET = ["--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11"]


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, "SSL_CERT_FILE")


@pytest.fixture
def site(tmp_path: Path, index_server: IndexServer) -> tuple[Path, IndexServer]:
    dist = tmp_path / "dist"
    make_wheel(dist, "labtool", "1.0", requires_dist=["helper"])
    index_server.add_index("main")
    index_server.add_wheel("main", "helper", "2.0")
    index_server.add_wheel("main", "pip", "24.0")
    return dist, index_server


@pytest.mark.parametrize("spelling", ["folder", "file-url"])
def test_local_wheels_lock_as_relative_paths_fetch_and_pack(tmp_path: Path, site: tuple[Path, IndexServer],
                                                            spelling: str) -> None:
    dist, server = site
    work = tmp_path / "work"
    work.mkdir()
    where = str(dist) if spelling == "folder" else dist.resolve().as_uri()
    lock = work / "pylock.toml"
    cache = tmp_path / "cache"
    assert main(["lock", "labtool", "-f", where, "--index-url", server.index_url("main"), *TARGET, "-o", str(lock),
                 "--cache-dir", str(cache), "-q"]) == 0
    doc = tomllib.loads(lock.read_text())
    (pkg,) = [p for p in doc["packages"] if p["name"] == "labtool"]
    assert pkg["wheels"][0]["path"] == "../dist/labtool-1.0-py3-none-any.whl"
    assert "url" not in pkg["wheels"][0] and "index" not in pkg
    assert str(tmp_path) not in lock.read_text()  # no absolute path of this machine
    assert main(["fetch", str(lock), "--cache-dir", str(cache), "-q"]) == 0
    bundle = work / "b.tar.zst"
    assert main(["pack", str(lock), "-o", str(bundle), "--cache-dir", str(cache), "-q"]) == 0
    assert bundle.stat().st_size > 0


def test_a_moved_lock_still_finds_its_wheels_relative_to_itself(tmp_path: Path, site: tuple[Path, IndexServer]) -> None:
    dist, server = site
    lock = tmp_path / "pylock.toml"
    assert main(["lock", "labtool", "-f", str(dist), "--index-url", server.index_url("main"), *TARGET, "-o", str(lock),
                 "--no-cache", "-q"]) == 0
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    os.rename(dist, moved / "dist")
    os.rename(lock, moved / "pylock.toml")
    locked = read_lock(moved / "pylock.toml")
    (pkg,) = [p for p in locked.packages if p.name == "labtool"]
    assert pkg.wheels[0].url == (moved / "dist" / "labtool-1.0-py3-none-any.whl").resolve().as_uri()


def test_a_changed_local_wheel_is_a_hash_mismatch(tmp_path: Path, site: tuple[Path, IndexServer],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    dist, server = site
    lock = tmp_path / "pylock.toml"
    cache = tmp_path / "cache"
    assert main(["lock", "labtool", "-f", str(dist), "--index-url", server.index_url("main"), *TARGET, "-o", str(lock),
                 "--no-cache", "-q"]) == 0
    wheel = dist / "labtool-1.0-py3-none-any.whl"
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    capsys.readouterr()
    assert main(["fetch", str(lock), "--cache-dir", str(cache), "-q"]) == 1
    assert "hash mismatch" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.timeout(30)
def test_a_fifo_named_by_a_lock_is_refused(tmp_path: Path, site: tuple[Path, IndexServer],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    dist, server = site
    lock = tmp_path / "pylock.toml"
    assert main(["lock", "labtool", "-f", str(dist), "--index-url", server.index_url("main"), *TARGET, "-o", str(lock),
                 "--no-cache", "-q"]) == 0
    wheel = dist / "labtool-1.0-py3-none-any.whl"
    wheel.unlink()
    os.mkfifo(wheel)
    capsys.readouterr()
    assert main(["fetch", str(lock), "--cache-dir", str(tmp_path / "cache"), "-q"]) == 1
    assert "not a regular file" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# a remote find-links page that publishes no hashes: a plain http.server directory listing


class _Handler(SimpleHTTPRequestHandler):
    def log_request(self, code: object = "-", size: object = "-") -> None:
        self.server.log.append((self.command, self.path, int(code) if isinstance(code, int) else 0))  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class Listing:
    """``root`` served by http.server's SimpleHTTPRequestHandler on loopback, every request logged."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
        self.httpd.log = []  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def log(self) -> list[tuple[str, str, int]]:
        return self.httpd.log  # type: ignore[attr-defined,no-any-return]

    def file_requests(self) -> list[tuple[str, str, int]]:
        return [r for r in self.log if r[1].endswith((".whl", ".tar.gz"))]


@pytest.fixture
def listing(tmp_path: Path) -> Iterator[Listing]:
    served = Listing(tmp_path / "www")
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def plain(tmp_path: Path, listing: Listing, index_server: IndexServer) -> tuple[Listing, IndexServer, dict[str, Path]]:
    """labtool (needing helper from the same listing and wordlist from a loopback simple index) on a
    listing without hashes; wordlist and a real pip wheel on the simple index."""
    files = {
        "labtool": make_wheel(listing.root, "labtool", "1.0", requires_dist=["helper>=2", "wordlist"],
                              files={"labtool/__init__.py": "from helper import X\nfrom wordlist import WORDS\n"}),
        "helper": make_wheel(listing.root, "helper", "2.0", files={"helper/__init__.py": "X = 2\n"}),
    }
    index_server.add_index("main")
    index_server.add_file("main", make_wheel(tmp_path / "src", "wordlist", "0.5", files={"wordlist/__init__.py": "WORDS = ['hi']\n"}))
    index_server.add_file("main", pip_wheel_from_installed(tmp_path / "pip"))
    return listing, index_server, files


def _lock_plain(tmp_path: Path, listing: Listing, server: IndexServer, *extra: str, target: list[str] = TARGET,
                out: str = "pylock.toml", cache: str = "cache") -> int:
    return main(["lock", "labtool", "-f", listing.url, "--index-url", server.index_url("main"), *target,
                 "-o", str(tmp_path / out), "--cache-dir", str(tmp_path / cache), *extra])


def _locked_wheels(lock: Path) -> dict[str, dict[str, object]]:
    return {p["name"]: p["wheels"][0] for p in tomllib.loads(lock.read_text())["packages"]}


def test_a_listing_without_hashes_is_hashed_on_download_and_installs_offline(
        tmp_path: Path, plain: tuple[Listing, IndexServer, dict[str, Path]], capsys: pytest.CaptureFixture[str]) -> None:
    listing, server, files = plain
    profile = tmp_path / "host.json"
    assert main(["profile", "capture", "-o", str(profile)]) == 0
    capsys.readouterr()
    assert _lock_plain(tmp_path, listing, server, target=["--profile", str(profile)]) == 0
    err = capsys.readouterr().err
    assert f"note: find-links {listing.url} publishes no sha256 hashes: 2 files hashed on download," in err
    assert err.count("publishes no sha256") == 1
    lock = tmp_path / "pylock.toml"
    wheels = _locked_wheels(lock)
    reqs = requirements_path(lock).read_text()
    for name, path in files.items():
        assert wheels[name]["url"] == listing.url + path.name
        assert wheels[name]["hashes"] == {"sha256": sha256(path)}
        assert wheels[name]["size"] == path.stat().st_size
        assert f"--hash=sha256:{sha256(path)}" in reqs
    # each file was read whole once: its metadata came from those bytes, not from more requests
    assert sorted(p for m, p, _ in listing.file_requests()) == sorted("/" + p.name for p in files.values())
    listing.log.clear()

    cache = tmp_path / "cache"
    assert main(["fetch", str(lock), "--cache-dir", str(cache), "-q"]) == 0
    assert listing.file_requests() == []  # the bytes hashed at lock time are already in the store
    bundle = tmp_path / "labtool.tar.gz"
    assert main(["pack", str(lock), "-o", str(bundle), "--cache-dir", str(cache), "-q"]) == 0
    with tarfile.open(bundle) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    (top,) = (tmp_path / "unpacked").iterdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))} | {"PIP_CONFIG_FILE": os.devnull}
    venv = tmp_path / "venv"
    run = [*(offline_prefix() or []), "sh", str(top / "install.sh"), "--python", sys.executable, "--venv", str(venv)]
    r = subprocess.run(run, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    check = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", "import labtool, helper, wordlist; print(helper.X)"],
                           capture_output=True, text=True, timeout=60)
    assert check.stdout.strip() == "2", check.stderr


def test_a_warm_relock_downloads_nothing_and_a_refresh_only_revalidates(
        tmp_path: Path, plain: tuple[Listing, IndexServer, dict[str, Path]], capsys: pytest.CaptureFixture[str]) -> None:
    listing, server, files = plain
    assert _lock_plain(tmp_path, listing, server, "-q") == 0
    first = _locked_wheels(tmp_path / "pylock.toml")
    listing.log.clear()
    capsys.readouterr()
    assert _lock_plain(tmp_path, listing, server, out="pylock.again.toml") == 0
    assert listing.file_requests() == []  # hashes and metadata both come from the cache
    assert "2 files hashed on download (2 by an earlier run)" in capsys.readouterr().err
    assert _locked_wheels(tmp_path / "pylock.again.toml") == first
    # --refresh asks again, with the file's validators: 304, nothing downloaded
    assert _lock_plain(tmp_path, listing, server, "-q", "--refresh", out="pylock.refresh.toml") == 0
    assert sorted(s for _, _, s in listing.file_requests()) == [304, 304]
    assert _locked_wheels(tmp_path / "pylock.refresh.toml") == first


def test_a_file_replaced_at_the_same_url_is_hashed_again_or_refused_by_fetch(
        tmp_path: Path, plain: tuple[Listing, IndexServer, dict[str, Path]], capsys: pytest.CaptureFixture[str]) -> None:
    listing, server, files = plain
    assert _lock_plain(tmp_path, listing, server, "-q") == 0
    lock = tmp_path / "pylock.toml"
    old, size = sha256(files["helper"]), files["helper"].stat().st_size
    data = bytearray(files["helper"].read_bytes())
    data[len(data) // 2] ^= 1  # same size, other bytes
    files["helper"].write_bytes(bytes(data))
    later = files["helper"].stat().st_mtime + 10
    os.utime(files["helper"], (later, later))  # a rebuild within the same second would keep If-Modified-Since's answer
    new = sha256(files["helper"])
    assert new != old and files["helper"].stat().st_size == size
    # fetch into another cache gets the server's new bytes: they do not match the lock
    capsys.readouterr()
    assert main(["fetch", str(lock), "--cache-dir", str(tmp_path / "other-cache"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "hash mismatch" in err and old in err and new in err
    # the cache the lock was made with holds the bytes it hashed: what the lock names
    assert main(["fetch", str(lock), "--cache-dir", str(tmp_path / "cache"), "-q"]) == 0
    # a re-lock that asks the server again sees the new file
    listing.log.clear()
    assert _lock_plain(tmp_path, listing, server, "-q", "--refresh", out="pylock.new.toml") == 0
    assert _locked_wheels(tmp_path / "pylock.new.toml")["helper"]["hashes"] == {"sha256": new}
    assert ("GET", "/" + files["helper"].name, 200) in listing.file_requests()
    # a file that changed size is refused by fetch as well (the body is not the length the lock names)
    make_wheel(listing.root, "helper", "2.0", files={"helper/__init__.py": "X = 3  # rebuilt, longer\n"})
    assert main(["fetch", str(lock), "--cache-dir", str(tmp_path / "third-cache"), "--retries", "0", "-q"]) == 1
    assert "bytes the lock names" in capsys.readouterr().err


def _page(listing: Listing, *hrefs: str) -> None:
    """An index.html that http.server serves in place of its listing: links as given, no hashes."""
    (listing.root / "index.html").write_text("<html><body>\n" + "".join(f'<a href="{h}">{h}</a>\n' for h in hrefs)
                                             + "</body></html>\n")


def test_a_listed_file_the_server_does_not_have_fails_the_lock(
        tmp_path: Path, plain: tuple[Listing, IndexServer, dict[str, Path]], capsys: pytest.CaptureFixture[str]) -> None:
    listing, server, files = plain
    _page(listing, files["labtool"].name, "helper-2.0-py3-none-any.whl")
    files["helper"].unlink()
    capsys.readouterr()
    assert _lock_plain(tmp_path, listing, server, "-q") == 1
    err = capsys.readouterr().err
    assert f"{listing.url}helper-2.0-py3-none-any.whl answered HTTP 404 (not found)" in err and "Traceback" not in err
    assert not (tmp_path / "pylock.toml").exists()


def test_a_remote_listing_may_not_link_local_files(tmp_path: Path, plain: tuple[Listing, IndexServer, dict[str, Path]],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    listing, server, files = plain
    _page(listing, files["labtool"].name, (tmp_path / "helper-2.0-py3-none-any.whl").as_uri())
    capsys.readouterr()
    assert _lock_plain(tmp_path, listing, server, "-q") == 1
    assert "a remote index may link only http(s) files" in capsys.readouterr().err
    assert listing.file_requests() == []


def test_a_file_over_the_cap_is_refused_and_leaves_nothing(tmp_path: Path, listing: Listing) -> None:
    wheel = make_wheel(listing.root, "labtool", "1.0", files={"labtool/data.bin": os.urandom(4096)})
    cache = PlannerCache(tmp_path / "cache")
    repo = Repository([IndexConfig(name="find-links", url=listing.url, kind="find-links")], _client, cache,
                      max_file=wheel.stat().st_size - 1)
    try:
        found = repo.project_links("labtool")
        assert found is not None
        (link,) = found[1]
        assert link.sha256 is None and link.flat
        with pytest.raises(IndexUnavailable, match=f"is larger than {wheel.stat().st_size - 1} bytes"):
            repo.metadata(link)
        with pytest.raises(IndexUnavailable, match="is larger than"):
            repo.hashed(link)
    finally:
        repo.close()
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and "pages" not in p.parts] == []
    assert read_record(tmp_path / "cache", link.url) is None


def _client():  # type: ignore[no-untyped-def]
    from bundler.http import make_client

    return make_client()


def test_a_simple_index_without_hashes_stays_refused(tmp_path: Path, listing: Listing,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A PEP 503 tree served statically with no #sha256= fragments: an index must give hashes."""
    wheel = make_wheel(listing.root / "files", "labtool", "1.0")
    page = listing.root / "simple" / "labtool" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text(f'<html><body><a href="../../files/{wheel.name}">{wheel.name}</a></body></html>\n')
    capsys.readouterr()
    assert main(["lock", "labtool", "--index-url", listing.url + "simple/", *TARGET, "-o", str(tmp_path / "pylock.toml"),
                 "--cache-dir", str(tmp_path / "cache"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "publishes no sha256" in err and "--find-links folder or page" in err, err
    assert listing.file_requests() == [] and not (tmp_path / "pylock.toml").exists()
    # the same files as a find-links page are hashed on download
    assert main(["lock", "labtool", "-f", listing.url + "files/", "--index-url", listing.url + "simple/", *TARGET,
                 "-o", str(tmp_path / "pylock.toml"), "--cache-dir", str(tmp_path / "cache"), "-q"]) == 0
    assert _locked_wheels(tmp_path / "pylock.toml")["labtool"]["hashes"] == {"sha256": sha256(wheel)}


@pytest.mark.parametrize("right", [True, False], ids=["matching", "other-hash"])
def test_hash_pins_are_checked_against_files_hashed_on_download(
        tmp_path: Path, plain: tuple[Listing, IndexServer, dict[str, Path]], capsys: pytest.CaptureFixture[str],
        right: bool) -> None:
    listing, server, files = plain
    make_wheel(listing.root, "helper", "3.0")  # not pinned: never read
    pins = {name: sha256(path) if right else "0" * 64 for name, path in files.items()}
    reqs = tmp_path / "requirements.in"
    reqs.write_text("".join(f"{name}=={'1.0' if name == 'labtool' else '2.0'} --hash=sha256:{sha}\n" for name, sha in pins.items()))
    capsys.readouterr()
    rc = main(["lock", "-r", str(reqs), "-f", listing.url, "--index-url", server.index_url("main"), *TARGET,
               "-o", str(tmp_path / "pylock.toml"), "--cache-dir", str(tmp_path / "cache"), "-q"])
    assert "/helper-3.0-py3-none-any.whl" not in [p for _, p, _ in listing.file_requests()]
    if right:
        assert rc == 0, capsys.readouterr().err
        assert {n: w["hashes"]["sha256"] for n, w in _locked_wheels(tmp_path / "pylock.toml").items() if n in pins} == pins
    else:
        assert rc == 1 and "--hash" in capsys.readouterr().err
        assert not (tmp_path / "pylock.toml").exists()


def test_an_offline_relock_uses_the_recorded_hashes(tmp_path: Path, plain: tuple[Listing, IndexServer, dict[str, Path]],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    listing, server, files = plain
    assert _lock_plain(tmp_path, listing, server, "-q") == 0
    listing.log.clear()
    server.stop()
    assert _lock_plain(tmp_path, listing, server, "-q", "--offline", out="pylock.offline.toml") == 0
    assert listing.log == []
    assert _locked_wheels(tmp_path / "pylock.offline.toml") == _locked_wheels(tmp_path / "pylock.toml")
    # a cache that never saw the files names what it lacks
    capsys.readouterr()
    assert _lock_plain(tmp_path, listing, server, "-q", "--offline", out="pylock.empty.toml", cache="empty") == 1
    assert "offline:" in capsys.readouterr().err


def test_an_sdist_on_a_listing_without_hashes_is_hashed_before_it_is_read(
        tmp_path: Path, plain: tuple[Listing, IndexServer, dict[str, Path]], capsys: pytest.CaptureFixture[str]) -> None:
    listing, server, files = plain
    sdist = make_sdist(listing.root, "srconly", "0.3", requires_dist=["helper"])
    capsys.readouterr()
    assert main(["lock", "srconly", "-f", listing.url, "--index-url", server.index_url("main"), *TARGET,
                 "-o", str(tmp_path / "pylock.toml"), "--cache-dir", str(tmp_path / "cache")]) == 0, capsys.readouterr().err
    doc = tomllib.loads((tmp_path / "pylock.toml").read_text())
    (pkg,) = [p for p in doc["packages"] if p["name"] == "srconly"]
    assert pkg["sdist"]["hashes"] == {"sha256": sha256(sdist)} and pkg["sdist"]["url"] == listing.url + sdist.name
    assert "2 files hashed on download" in capsys.readouterr().err  # the sdist and helper's wheel
    assert [p for _, p, _ in listing.file_requests()].count("/" + sdist.name) == 1  # read once, for hash and metadata


def test_download_retries_a_busy_server_and_refuses_an_encoded_body(tmp_path: Path, index_server: IndexServer) -> None:
    index_server.add_index("main")
    info = index_server.add_wheel("main", "pkg", "1.0")
    answers = [Response(503, {"Content-Type": "text/plain"}, b"busy"), None,
               Response(200, {"Content-Encoding": "gzip"}, gzip.compress(info.path.read_bytes()))]

    def hook(req: Request) -> Response | None:
        return answers.pop(0) if req.path.endswith(".whl") and answers else None

    index_server.set_fault(hook)
    client = _client()
    try:
        got = download(client, info.url, {}, tmp_path / "partial", what="find-links x", sleep=lambda _: None)
        assert (got.status, got.sha256, got.size) == (200, info.sha256, info.size)
        assert got.path is not None and got.path.read_bytes() == info.path.read_bytes()
        with pytest.raises(IndexUnavailable, match="gzip-encoded"):
            download(client, info.url, {}, tmp_path / "partial", what="find-links x")
    finally:
        client.close()
    assert [p.name for p in (tmp_path / "partial").iterdir()] == [got.path.name]  # the refused body left nothing


@pytest.mark.parametrize("damage", ["other-url", "bad-digest", "negative-size", "torn"])
def test_a_damaged_hash_record_is_a_miss(tmp_path: Path, damage: str) -> None:
    url = "http://127.0.0.1:9/pkg-1.0-py3-none-any.whl"
    write_record(tmp_path, FileRecord(url=url, sha256="a" * 64, size=3, last_modified="x", stored=1.0))
    assert read_record(tmp_path, url) == FileRecord(url=url, sha256="a" * 64, size=3, last_modified="x", stored=1.0)
    (path,) = (tmp_path / "hashed").rglob("*.json")
    data = json.loads(path.read_text())
    if damage == "torn":
        path.write_text(path.read_text()[:20])
    else:
        data.update({"other-url": {"url": url + "x"}, "bad-digest": {"sha256": "A" * 64},
                     "negative-size": {"size": -1}}[damage])
        path.write_text(json.dumps(data))
    assert read_record(tmp_path, url) is None
