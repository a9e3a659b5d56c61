"""Source distributions: safe reads of an sdist, planner candidates, PEP 643 / PEP 517 metadata, the lock.

Real sdists (``sdistgen``: an in-tree stdlib backend) on the loopback index; the builds run for real
in isolated venvs. Nothing talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from bundler.errors import BadInput
from bundler.lock import read_lock
from bundler.sdist import BadSdist, build_system, is_static, read_facts, unpack
from support.hermetic import hermetic
from support.indexserver import IndexServer
from support.plancases import lock, requirements_txt, stderr_of
from support.sdistgen import make_sdist, pkg_info


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path)
    monkeypatch.setenv("WHEELHOUSE_TEST_BACKEND_LOG", str(tmp_path / "backend.log"))


def hook_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "backend.log"
    return log.read_text().split() if log.exists() else []


# -- reading sdists ---------------------------------------------------------------------------

def test_static_metadata_per_pep_643() -> None:
    assert is_static(pkg_info("a", "1", ["b"]).encode())
    assert not is_static(pkg_info("a", "1", ["b"], metadata_version="2.1").encode())
    assert not is_static(pkg_info("a", "1", ["b"], dynamic=["Requires-Dist"]).encode())
    assert is_static(pkg_info("a", "1", ["b"], dynamic=["Description"]).encode())


def test_read_facts_and_build_system(tmp_path: Path) -> None:
    path = make_sdist(tmp_path, "demo-pkg", "1.0", requires_dist=["b>=1"])
    facts = read_facts(path)
    assert facts.static_metadata is not None and b"Requires-Dist: b>=1" in facts.static_metadata
    system = build_system(facts, path.name)
    assert system.backend == "tinybackend" and system.backend_path == (".",) and system.requires == ()
    assert read_facts(make_sdist(tmp_path / "d", "x", "1", static=False)).static_metadata is None


def _tar(path: Path, members: dict[str, bytes], *, link: str | None = None) -> Path:
    with tarfile.open(path, "w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo("x-1/evil")
            info.type = tarfile.SYMTYPE
            info.linkname = link
            t.addfile(info)
    return path


def test_unpack_refuses_paths_outside(tmp_path: Path) -> None:
    bad = _tar(tmp_path / "x-1.tar.gz", {"x-1/PKG-INFO": b"", "../escape": b"boom"})
    (tmp_path / "out").mkdir()
    with pytest.raises(BadSdist):
        unpack(bad, tmp_path / "out")
    assert not (tmp_path / "escape").exists()
    (tmp_path / "y").mkdir()
    linked = _tar(tmp_path / "y" / "x-1.tar.gz", {"x-1/a": b""}, link="/etc/passwd")
    (tmp_path / "out2").mkdir()
    with pytest.raises(BadSdist):
        unpack(linked, tmp_path / "out2")
    assert isinstance(BadSdist("x"), BadInput)


def test_unpack_gives_the_single_root(tmp_path: Path) -> None:
    path = make_sdist(tmp_path, "demo", "2.0")
    (tmp_path / "out").mkdir()
    root = unpack(path, tmp_path / "out")
    assert root.name == "demo-2.0" and (root / "pyproject.toml").is_file()


# -- planner ----------------------------------------------------------------------------------

def _server(index_server: IndexServer, tmp_path: Path) -> IndexServer:
    index_server.add_index("main")
    index_server.add_wheel("main", "app", "1.0", requires_dist=["lib"])
    index_server.add_wheel("main", "lib", "1.0")
    index_server.add_wheel("main", "dep", "1.0")
    return index_server


def test_sdist_serves_the_newest_version_and_is_locked(index_server: IndexServer, tmp_path: Path) -> None:
    srv = _server(index_server, tmp_path)
    info = srv.add_file("main", make_sdist(tmp_path / "src", "lib", "2.0", requires_dist=["dep"]))
    assert lock(tmp_path, srv, "app") == 0
    lk = read_lock(tmp_path / "pylock.toml")
    pkgs = {p.name: p for p in lk.packages}
    assert pkgs["lib"].version == "2.0" and pkgs["lib"].wheels == ()
    assert pkgs["lib"].sdist is not None and pkgs["lib"].sdist.sha256 == info.sha256
    assert "dep" in pkgs  # from PKG-INFO (static): no hook ran
    assert hook_calls(tmp_path) == []
    assert requirements_txt(tmp_path / "requirements.txt")["lib"][2] == [info.sha256]
    build = lk.builds[info.sha256]
    assert build.filename == "lib-2.0.tar.gz" and build.requires == () and build.builder == ()


def test_dynamic_metadata_comes_from_the_hook_once(index_server: IndexServer, tmp_path: Path) -> None:
    srv = _server(index_server, tmp_path)
    srv.add_file("main", make_sdist(tmp_path / "src", "lib", "2.0", requires_dist=["dep"], static=False))
    assert lock(tmp_path, srv, "app") == 0
    assert "dep" in {p.name for p in read_lock(tmp_path / "pylock.toml").packages}
    assert hook_calls(tmp_path) == ["prepare_metadata_for_build_wheel"]
    (tmp_path / "pylock.toml").unlink()
    assert lock(tmp_path, srv, "app") == 0  # cached by the sdist's sha256: no second build
    assert hook_calls(tmp_path) == ["prepare_metadata_for_build_wheel"]


def test_a_wheel_is_preferred_for_the_same_version(index_server: IndexServer, tmp_path: Path) -> None:
    srv = _server(index_server, tmp_path)
    srv.add_file("main", make_sdist(tmp_path / "src", "lib", "1.0"))
    assert lock(tmp_path, srv, "app") == 0
    pkg = next(p for p in read_lock(tmp_path / "pylock.toml").packages if p.name == "lib")
    assert pkg.sdist is None and pkg.wheels[0].filename == "lib-1.0-py3-none-any.whl"


def test_only_binary_and_no_binary(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    srv = _server(index_server, tmp_path)
    srv.add_file("main", make_sdist(tmp_path / "src", "lib", "2.0"))
    srv.add_file("main", make_sdist(tmp_path / "src", "dep", "1.0"))
    assert lock(tmp_path, srv, "app", "--only-binary", ":all:") == 0
    assert {p.name: p.version for p in read_lock(tmp_path / "pylock.toml").packages}["lib"] == "1.0"
    assert lock(tmp_path, srv, "app", "--no-binary", "dep", "dep", out="pylock.b.toml") == 0
    pkgs = {p.name: p for p in read_lock(tmp_path / "pylock.b.toml").packages}
    assert pkgs["dep"].sdist is not None and pkgs["dep"].wheels == ()
    assert pkgs["lib"].version == "2.0"


def test_only_binary_names_the_source_only_project(index_server: IndexServer, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    index_server.add_index("main")
    index_server.add_wheel("main", "app", "1.0", requires_dist=["srconly"])
    index_server.add_file("main", make_sdist(tmp_path / "src", "srconly", "0.6.2"))
    assert lock(tmp_path, index_server, "app", "--only-binary", ":all:") == 1
    err = stderr_of(capsys)
    assert "srconly" in err and "source" in err


# -- planner fixes ------------------------------------------------------------------------------

def test_power_platform_name_of_uv() -> None:
    from bundler.profile import parse_platform

    p = parse_platform("powerpc64le-unknown-linux-gnu")
    assert (p.os, p.arch, p.libc) == ("linux", "ppc64le", "glibc")

