"""Your own wheels: a local find-links folder (or a file: URL) through lock, fetch and pack.

The lock records local files as PEP 751 ``path`` entries relative to the lock's folder, never as
an absolute path of the build machine.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from bundler.cli import main
from bundler.locktool import read_lock
from hermetic import hermetic
from indexserver import IndexServer
from wheelgen import make_wheel

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
