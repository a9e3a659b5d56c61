"""Platform-specific sdists built ON THE TARGET (issue 11, items 4 and 5).

A real C-extension sdist (setuptools, ``ext_modules``, a five-line C file) and a real setuptools
wheel are served on the loopback index; the lock is for CPython 3.12 while the builder runs 3.11.
pack builds the sdist here, gets a cp311 wheel, discards it and carries the sdist with its build
requirements resolved for 3.12; install.sh builds it with pyenv's 3.12 inside ``unshare -n`` and
the module imports. ``--check-only`` names what will compile and whether a compiler and the Python
headers are there; with no compiler the install stops before it makes anything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.bundlefixture import offline_prefix, pip_wheel_from_installed
from support.pythons import pyenv_python
from support.indexserver import IndexServer
from support.sdistgen import make_c_extension_sdist, make_sdist, real_wheel
from support.wheelgen import make_wheel
from support.siteworld import clean_env
from test_bundle_e2e import WHEELHOUSE, run, untar

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="builds Linux bundles for this machine"),
    pytest.mark.skipif(shutil.which("tar") is None, reason="no tar"),
]

PY312 = pyenv_python("3.12")
OFFLINE = offline_prefix()
SETUPTOOLS = real_wheel("setuptools")
TARGET = ["--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.12"]
needs_target = pytest.mark.skipif(PY312 is None or OFFLINE is None or SETUPTOOLS is None,
                                  reason="needs pyenv's CPython 3.12, 'unshare -n' and a setuptools wheel on this machine")


@dataclass
class World:
    root: Path
    server: IndexServer


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("targetbuild")
    with IndexServer(root / "index") as server:
        server.add_index("main")
        server.add_file("main", pip_wheel_from_installed(root / "pip"))
        for project in ("setuptools", "wheel"):  # wheel: what setuptools before 70.1 asks for, when that is the newest here
            found = real_wheel(project)
            if found is not None:
                server.add_file("main", found)
        server.add_file("main", make_c_extension_sdist(root / "src", "cext", "1.0"))
        server.add_wheel("main", "usescext", "1.0", requires_dist=["cext"])
        yield World(root=root, server=server)


def _build(world: World, out: Path, cache: Path, *, env: dict[str, str] | None = None, lock: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    return run([*WHEELHOUSE, "build", "usescext", "--index-url", world.server.index_url("main"), *TARGET, "--cache-dir", cache,
                "-o", out, *(["--lock-output", lock] if lock else [])], env=env)


@pytest.fixture(scope="module")
def bundle(world: World) -> Path:
    if SETUPTOOLS is None:
        pytest.skip("no setuptools wheel on this machine")
    out = world.root / "out" / "cext.tar.gz"
    out.parent.mkdir()
    r = _build(world, out, world.root / "cache", lock=world.root / "out" / "pylock.toml")
    assert r.returncode == 0, r.stderr
    assert "note: cext-1.0.tar.gz: it builds cext-1.0-cp311-cp311-linux_x86_64.whl here, for this platform only" in r.stderr
    return untar(out, world.root / "unpacked")


def _offline_install(bundle: Path, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert OFFLINE is not None and PY312 is not None
    return run([*OFFLINE, "sh", bundle / "install.sh", "--python", PY312, *args], env=env, cwd=bundle.parent)


def test_the_bundle_carries_the_sdist_and_its_target_build_requirements(bundle: Path) -> None:
    names = sorted(p.name for p in (bundle / "wheels").iterdir())
    assert "cext-1.0.tar.gz" in names and not any(n.startswith("cext-") and n.endswith(".whl") for n in names)
    manifest = json.loads((bundle / "bundle.json").read_text())
    (target,) = manifest["targets"]
    (sdist,) = target["sdists"]
    assert sdist["name"] == "cext" and sdist["sdist"] == "wheels/cext-1.0.tar.gz"
    assert "for its own platform only" in sdist["reason"]
    assert sdist["build-requires"][0].startswith("setuptools")
    assert [p["name"] for p in sdist["build-packages"]][0] == "setuptools"
    assert all(p["wheel"] in manifest["files"] for p in sdist["build-packages"])
    assert "cext" not in [p["name"] for p in target["packages"]] and "usescext" in [p["name"] for p in target["packages"]]
    sha = manifest["files"]["wheels/cext-1.0.tar.gz"]["sha256"]
    assert f"--hash=sha256:{sha}" in (bundle / "requirements.txt").read_text()
    assert "wheels/cext-1.0.tar.gz" in (bundle / "pylock.toml").read_text()  # the bundled lock names its own copy
    assert "builds" not in manifest  # nothing pure was built here
    r = run([*WHEELHOUSE, "verify", bundle])
    assert r.returncode == 0, r.stderr
    r = run([*WHEELHOUSE, "inspect", bundle])
    assert re.search(r"cext\s+1\.0 \(sdist, built there\)", r.stdout), r.stdout


@needs_target
def test_a_delta_builds_with_the_base_bundles_verified_files_only(world: World, bundle: Path, tmp_path: Path) -> None:
    out = world.root / "out"
    r = run([*WHEELHOUSE, "pack", out / "pylock.toml", "--since", out / "cext.tar.gz", "--cache-dir", world.root / "cache",
             "-o", tmp_path / "delta.tar.gz"])
    assert r.returncode == 0, r.stderr
    delta = untar(tmp_path / "delta.tar.gz", tmp_path / "d")
    assert not (delta / "wheels").exists()  # everything comes from the base bundle
    old = tmp_path / "old" / bundle.name
    shutil.copytree(bundle, old)
    # A stray, newer "setuptools" in the old bundle's folder: unlisted, so no build may ever take it.
    make_wheel(old / "wheels", "setuptools", "999.0")
    venv = tmp_path / "venv"
    dry = _offline_install(delta, "--with", old, "--venv", venv, "--dry-run")
    assert "--find-links '$BUILD_TMP/base-wheels'" in dry.stdout and "--build-constraint '$BUILD_TMP/build-constraints.txt'" in dry.stdout
    r = _offline_install(delta, "--with", old, "--venv", venv)
    assert r.returncode == 0, r.stdout + r.stderr
    check = subprocess.run([venv / "bin" / "python", "-c", "import cext; print(cext.answer())"], capture_output=True, text=True)
    assert check.stdout.strip() == "42", check.stderr


@needs_target
def test_install_sh_builds_the_c_extension_offline_on_the_target(bundle: Path, tmp_path: Path) -> None:
    env = clean_env()
    tmp = Path(tempfile.mkdtemp(prefix="whtb-"))  # short: a socket path under TMPDIR must fit 107 bytes
    env.update(HOME=str(tmp_path / "home"), TMPDIR=str(tmp))
    env.pop("XDG_CACHE_HOME", None)
    venv = tmp_path / "venv"
    try:
        r = _offline_install(bundle, "--venv", venv, env=env)
        left = list(tmp.iterdir())
    finally:
        shutil.rmtree(tmp)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "this machine builds 1 package(s) from source" in r.stdout and "with the bundled pip" in r.stdout
    check = subprocess.run([venv / "bin" / "python", "-c", "import cext, usescext; print(cext.answer(), cext.__file__)"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    answer, path = check.stdout.split()
    assert answer == "42" and path.endswith(".cpython-312-x86_64-linux-gnu.so")
    assert "2 packages, pip check passed" in r.stdout
    assert not (tmp_path / "home" / ".cache").exists()  # no pip cache, no build folder outside the temporary ones
    assert not left
    assert not list(bundle.rglob("build")) and not list(bundle.rglob("*.egg-info"))


@needs_target
def test_check_only_names_what_compiles_and_the_build_tools(bundle: Path, tmp_path: Path) -> None:
    r = _offline_install(bundle, "--check-only")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "cext 1.0 from cext-1.0.tar.gz" in r.stdout and "build requirements: setuptools" in r.stdout
    assert "C compiler: /" in r.stdout
    assert f"Python headers: {Path(str(PY312)).resolve().parents[1]}/include/python3.12/Python.h" in r.stdout
    assert "check passed" in r.stdout


@needs_target
def test_without_a_compiler_the_install_stops_before_it_makes_anything(bundle: Path, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = clean_env()
    env.pop("CC", None)
    env["PATH"] = str(empty)  # no cc, gcc or clang
    assert OFFLINE is not None
    sh, unshare = shutil.which("sh"), shutil.which(OFFLINE[0])
    assert sh and unshare
    venv = tmp_path / "venv"
    for args in (["--check-only"], ["--venv", venv]):
        r = run([unshare, *OFFLINE[1:], sh, bundle / "install.sh", "--python", PY312, *args], env=env, cwd=tmp_path)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "install.sh: error: cannot build cext 1.0 here: a C compiler (no cc, gcc or clang on PATH, and CC is not set)" in r.stderr
        assert "hint: install a C compiler" in r.stderr and "C compiler: missing" in r.stdout
        assert not venv.exists()
    env["CC"] = "no-such-cc -O2"
    r = run([unshare, *OFFLINE[1:], sh, bundle / "install.sh", "--python", PY312, "--check-only"], env=env, cwd=tmp_path)
    assert r.returncode == 1 and "CC=no-such-cc -O2, which is not an executable on PATH" in r.stderr


@needs_target
def test_installer_uv_is_refused_for_a_target_that_builds(bundle: Path, tmp_path: Path) -> None:
    r = _offline_install(bundle, "--installer", "uv", "--venv", tmp_path / "venv")
    assert r.returncode == 1
    assert "--installer uv: this bundle builds cext from source here, which install.sh does with the bundled pip only" in r.stderr


@pytest.mark.skipif(SETUPTOOLS is None, reason="no setuptools wheel on this machine")
def test_a_sdist_that_does_not_build_on_the_builder_is_carried_with_a_note(world: World, tmp_path: Path) -> None:
    env = clean_env()
    env["CC"] = "/bin/false"  # setuptools compiles with $CC: the builder has no working compiler
    out = tmp_path / "b.tar.gz"
    r = _build(world, out, tmp_path / "cache", env=env)
    assert r.returncode == 0, r.stderr
    assert "note: cext-1.0.tar.gz: it does not build on this machine" in r.stderr
    manifest = json.loads(subprocess.run(["tar", "-xOzf", out, "--wildcards", "*/bundle.json"], capture_output=True,
                                         check=True).stdout)
    (sdist,) = manifest["targets"][0]["sdists"]
    assert sdist["reason"] == "the builder could not build it"


def test_pack_fails_when_the_target_has_no_build_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from support.hermetic import hermetic

    hermetic(monkeypatch, tmp_path)
    with IndexServer(tmp_path / "index") as server:
        server.add_index("main")
        server.add_file("main", pip_wheel_from_installed(tmp_path / "pip"))
        # The build requirement has a wheel for the builder's CPython only: nothing resolves it for 3.12.
        tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
        server.add_wheel("main", "onlyhere", "1.0", tag=f"{tag}-{tag}-manylinux_2_17_x86_64")
        server.add_file("main", make_sdist(tmp_path / "src", "platlib", "1.0", platform=True, build_requires=["onlyhere"]))
        r = run([*WHEELHOUSE, "build", "platlib", "--index-url", server.index_url("main"), *TARGET, "--cache-dir",
                 tmp_path / "cache", "-o", tmp_path / "b.tar.gz"])
    assert r.returncode == 1, r.stderr
    assert ("platlib-1.0.tar.gz must be built on target x86_64-manylinux_2_28-cp312 (the builder built "
            "platlib-1.0-py3-none-linux_x86_64.whl, a wheel for its own platform only), but the lock has no build "
            "environment for x86_64-manylinux_2_28-cp312") in r.stderr
    assert not (tmp_path / "b.tar.gz").exists()


# ---------------------------------------------------------------------------------------------
# the target-side pieces, as functions


def _target(pip: str = "pip-26.0-py3-none-any.whl", **sdist: object) -> dict[str, object]:
    build = [{"name": "setuptools", "version": "80.0", "wheel": "wheels/setuptools-80.0-py3-none-any.whl"},
             {"name": "Cython", "version": "3.0", "wheel": "wheels/cython-3.0-py3-none-any.whl"}]
    one = {"name": "cext", "version": "1.0", "sdist": "wheels/cext-1.0.tar.gz", "build-packages": build, **sdist}
    two = {"name": "other", "version": "2.0", "sdist": "wheels/other-2.0.tar.gz",
           "build-packages": [{"name": "setuptools", "version": "70.0", "wheel": "wheels/setuptools-70.0-py3-none-any.whl"}]}
    return {"name": "t", "pip": f"wheels/{pip}", "packages": [{"name": "app", "version": "1.0", "wheel": "wheels/app-1.0-py3-none-any.whl"}],
            "requirements": "requirements.txt", "sdists": [one, two]}


def test_pip_builds_exactly_the_target_sdists_with_their_locked_build_requirements(tmp_path: Path) -> None:
    from bundler._target import install as inst

    target = _target()
    # setuptools is locked at two versions (one per sdist): left to each build; Cython is pinned.
    assert inst.build_constraints(target) == "cython==3.0\n"
    assert inst.build_constraints(_target(pip="pip-25.2-py3-none-any.whl")) is None  # no --build-constraint before 25.3
    plan = inst.plan_commands(str(tmp_path), target, str(tmp_path / "venv"), [], False, build_constraint="/b/c.txt")
    install = plan.install
    i = install.index("--only-binary")
    assert install[i:i + 6] == ["--only-binary", ":all:", "--no-binary", "cext,other", "--build-constraint", "/b/c.txt"]
    assert "--require-hashes" in install and "--no-index" in install
    plain = inst.plan_commands(str(tmp_path), {**target, "sdists": []}, str(tmp_path / "venv"), [], False)
    assert "--no-binary" not in plain.install
    with pytest.raises(inst.InstallError, match="--installer uv: this bundle builds cext, other from source here"):
        inst.choose_installer("uv", {**target, "uv": "wheels/uv-0.5-py3-none-any.whl"}, None, None)
    assert inst.choose_installer(None, {**target, "uv": "wheels/uv-0.5-py3-none-any.whl"}, None, None) == "pip"


def test_the_compiler_is_found_as_a_build_would_find_it(tmp_path: Path) -> None:
    from bundler._target import install as inst

    (tmp_path / "bin").mkdir()
    assert inst.find_compiler({"PATH": str(tmp_path / "bin")}) == (None, "no cc, gcc or clang on PATH, and CC is not set")
    gcc = tmp_path / "bin" / "gcc"
    gcc.write_text("#!/bin/sh\n")
    gcc.chmod(0o755)
    assert inst.find_compiler({"PATH": str(tmp_path / "bin")}) == (str(gcc), "gcc")
    assert inst.find_compiler({"PATH": str(tmp_path / "bin"), "CC": "gcc -O2"}) == (str(gcc), "CC=gcc -O2")
    assert inst.find_compiler({"PATH": str(tmp_path / "bin"), "CC": "clang"})[0] is None
    header, include = inst.python_headers()
    assert include and (header is None or header == os.path.join(include, "Python.h"))


def test_lock_fetch_pack_carries_the_target_build_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from support.hermetic import hermetic

    from bundler.fetch import lock_files
    from bundler.lock import read_lock

    hermetic(monkeypatch, tmp_path)
    with IndexServer(tmp_path / "index") as server:
        server.add_index("main")
        server.add_file("main", pip_wheel_from_installed(tmp_path / "pip"))
        here = f"cp{sys.version_info.major}{sys.version_info.minor}"
        for tag in {here, "cp312"}:  # one build requirement wheel per CPython: the builder's and the target's differ
            server.add_wheel("main", "buildhelper", "1.0", tag=f"{tag}-{tag}-manylinux_2_17_x86_64")
        server.add_file("main", make_sdist(tmp_path / "src", "platlib", "1.0", platform=True, build_requires=["buildhelper"]))
        lock = tmp_path / "pylock.toml"
        r = run([*WHEELHOUSE, "lock", "platlib", "--index-url", server.index_url("main"), *TARGET, "--cache-dir", tmp_path / "c1",
                 "-o", lock])
        assert r.returncode == 0, r.stderr
        wanted = {f.filename for f in lock_files(read_lock(lock))}
        assert "buildhelper-1.0-cp312-cp312-manylinux_2_17_x86_64.whl" in wanted
        cache = tmp_path / "c2"  # a fresh cache: only 'wheelhouse fetch' fills it
        r = run([*WHEELHOUSE, "fetch", lock, "--cache-dir", cache])
        assert r.returncode == 0, r.stderr
    r = run([*WHEELHOUSE, "pack", lock, "--cache-dir", cache, "-o", tmp_path / "b.tar.gz"])  # the index is gone
    assert r.returncode == 0, r.stderr
    bundle = untar(tmp_path / "b.tar.gz", tmp_path / "x")
    assert (bundle / "wheels" / "buildhelper-1.0-cp312-cp312-manylinux_2_17_x86_64.whl").is_file()
    assert (bundle / "wheels" / "platlib-1.0.tar.gz").is_file()
