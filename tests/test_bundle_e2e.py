"""Build → tar → install.sh, end to end, with no network on the install side (issue 4, acceptance 1-3).

``wheelhouse build`` runs against the loopback index (generated wheels with dependencies, one
platform-tagged wheel per CPython, and a bootstrap pip wheel zipped from the installed pip). The
archive is unpacked with the system ``tar`` and installed with ``sh install.sh`` inside a network
namespace with no interfaces (``unshare -n``): once for pyenv's CPython 3.12 (not the builder's
Python), once for the builder's own Python described by a captured profile. The installer must
refuse a bundle made for another Python or platform, and a bundle with one flipped byte, before it
creates anything.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.bundlefixture import pip_wheel_from_installed, uv_wheel_from_installed
from support.pythons import pyenv_python
from support.indexserver import IndexServer
from support.siteworld import OFFLINE, needs_offline, run, untar
from support.wheelgen import make_wheel

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() != "x86_64"
                       or platform.libc_ver()[0] != "glibc", reason="builds x86_64 glibc Linux bundles for this machine"),
    pytest.mark.skipif(shutil.which("tar") is None, reason="no tar"),
]

HOST = f"{sys.version_info.major}.{sys.version_info.minor}"
WHEELHOUSE = [sys.executable, "-m", "bundler"]


PY312 = pyenv_python("3.12")
needs_py312 = pytest.mark.skipif(PY312 is None, reason="no pyenv CPython 3.12")


def pip_list(python: Path) -> dict[str, str]:
    r = run([python, "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"], offline=OFFLINE is not None)
    assert r.returncode == 0, r.stderr
    return {p["name"].lower(): p["version"] for p in json.loads(r.stdout)}


# ---------------------------------------------------------------------------------------------
# the index and the bundles


SMOKE = "import greetlib; assert greetlib.greet('target') == 'hello, target', greetlib.greet('target')"
LOCKED = {"greetlib": "1.2", "wordlist": "0.5", "calcpkg": "2.0", "fastmath": "1.0"}


@dataclass
class Built:
    root: Path
    server: IndexServer
    cache: Path
    py312: Path | None  # bundle for CPython 3.12 (recipe "e2e312")
    host: Path  # bundle for the builder's Python (captured profile)


def _build(args: list[str | Path], cache: Path, out: Path) -> None:
    r = run([*WHEELHOUSE, "build", *args, "--cache-dir", cache, "-o", out, "-q"])
    assert r.returncode == 0, r.stderr
    assert out.is_file()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("e2e")
    with IndexServer(root / "index") as server:
        server.add_index("main")
        make = {
            "greetlib": "from wordlist import WORDS\nimport fastmath\n__version__ = '1.2'\n\n"
                        "def greet(name):\n    return WORDS[0] + ', ' + name\n",
            "wordlist": "WORDS = ['hello', 'world']\n__version__ = '0.5'\n",
            "calcpkg": "def add(a, b):\n    return a + b\n__version__ = '2.0'\n",
        }
        wheels = root / "src"
        server.add_file("main", make_wheel(wheels, "greetlib", "1.2", files={"greetlib/__init__.py": make["greetlib"]},
                                           requires_dist=["wordlist>=0.5", "fastmath", "tinyenum; python_version < '3.8'"]))
        server.add_file("main", make_wheel(wheels, "wordlist", "0.5", files={"wordlist/__init__.py": make["wordlist"]}))
        server.add_file("main", make_wheel(wheels, "calcpkg", "2.0", files={"calcpkg/__init__.py": make["calcpkg"]}))
        for py in ("cp311", "cp312", "cp313"):  # one binary-tagged wheel per CPython: the planner must pick per target
            server.add_file("main", make_wheel(wheels, "fastmath", "1.0", tag=f"{py}-{py}-manylinux_2_17_x86_64",
                                               files={"fastmath/__init__.py": f"BUILT_FOR = '{py}'\n"}))
        server.add_file("main", pip_wheel_from_installed(root / "pip"))
        server.add_file("main", uv_wheel_from_installed(root / "uv"))  # the host target installs with it
        cache = root / "cache"
        url = server.index_url("main")

        py312 = None
        if PY312 is not None:
            recipe = root / "e2e312.toml"
            recipe.write_text(f'name = "e2e312"\nrequirements = ["greetlib", "calcpkg"]\nsmoke = [{json.dumps(SMOKE)}]\n\n'
                              '[[targets]]\npython-platform = "x86_64-manylinux_2_28"\npython-version = "3.12"\n')
            py312 = root / "out" / "e2e312.tar.zst"
            py312.parent.mkdir()
            _build([recipe, "--index-url", url], cache, py312)

        profile = root / "host.json"
        r = run([*WHEELHOUSE, "profile", "capture", "-o", profile])
        assert r.returncode == 0, r.stderr
        host = root / "host-out" / "host-bundle.tar.gz"
        host.parent.mkdir()
        _build(["greetlib", "calcpkg", "--profile", profile, "--index-url", url], cache, host)
        yield Built(root, server, cache, py312, host)


def _check_installed(venv: Path, minor: str) -> None:
    python = venv / "bin" / "python"
    code = ("import sys, greetlib, wordlist, calcpkg, fastmath; "
            "print(sys.version_info[:2], greetlib.greet('x'), calcpkg.add(2, 3), fastmath.BUILT_FOR)")
    r = run([python, "-I", "-c", code], offline=True)
    assert r.returncode == 0, r.stderr
    py = "cp" + minor.replace(".", "")
    assert r.stdout.strip() == f"({minor.replace('.', ', ')}) hello, x 5 {py}"
    installed = pip_list(python)
    assert {k: v for k, v in installed.items() if k != "pip"} == LOCKED  # exactly the locked set
    assert "pip" in installed


# ---------------------------------------------------------------------------------------------
# acceptance 1: install offline, for another CPython and for the builder's own


@needs_offline
@needs_py312
def test_bundle_for_pyenv_312_installs_offline_and_imports(built: Built, tmp_path: Path) -> None:
    assert built.py312 is not None and HOST != "3.12"
    bundle = untar(built.py312, tmp_path / "unpacked")
    assert re.fullmatch(r"e2e312-[0-9a-f]{8}", bundle.name)  # the recipe's name and the lock's identity
    venv = tmp_path / "venv 312"  # a space in the path, as users have
    r = run(["sh", bundle / "install.sh", "--python", PY312, "--venv", venv], offline=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "smoke" in r.stdout and "pip check passed" in r.stdout
    _check_installed(venv, "3.12")
    cfg = (venv / "pyvenv.cfg").read_text()
    assert "3.12" in cfg


@needs_offline
def test_bundle_for_the_builders_python_installs_offline_and_reruns(built: Built, tmp_path: Path) -> None:
    bundle = untar(built.host, tmp_path / "unpacked")
    assert re.fullmatch(r"host-bundle-[0-9a-f]{8}", bundle.name)  # the output's stem and the lock's identity
    r = run(["sh", "install.sh", "--python", sys.executable], offline=True, cwd=bundle)  # default venv: next to the bundle
    assert r.returncode == 0, r.stdout + r.stderr
    venv = bundle.parent / f"{bundle.name}.venv"
    _check_installed(venv, HOST)
    # Re-running is harmless: the venv found at the default place is refused, not reused, until named.
    refused = run(["sh", bundle / "install.sh", "--python", sys.executable], offline=True, cwd=tmp_path)
    assert refused.returncode == 1 and f"{venv} already exists" in refused.stderr, refused.stdout + refused.stderr
    again = run(["sh", bundle / "install.sh", "--python", sys.executable, "--venv", venv], offline=True, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    _check_installed(venv, HOST)
    # The unpacked bundle still verifies: the venv is not inside it.
    v = run([*WHEELHOUSE, "verify", bundle])
    assert v.returncode == 0, v.stderr


@needs_offline
def test_bundle_unpacked_under_an_awkward_path_installs_offline(built: Built, tmp_path: Path) -> None:
    # ';' once made pip read the rest of the path as an environment marker; '#' and '%' break URLs.
    bundle = untar(built.host, tmp_path / "bundles; #1 100% ünïcode")
    r = run(["sh", bundle / "install.sh", "--python", sys.executable], offline=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    _check_installed(bundle.parent / f"{bundle.name}.venv", HOST)
    assert run([*WHEELHOUSE, "verify", bundle]).returncode == 0


def test_a_venv_planted_in_the_unpacked_bundle_fails_verify_and_never_runs(built: Built, tmp_path: Path) -> None:
    bundle = untar(built.host, tmp_path / "unpacked")
    marker = tmp_path / "PWNED"
    (bundle / "venv" / "bin").mkdir(parents=True)
    (bundle / "venv" / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion = {platform.python_version()}\n")
    (bundle / "venv" / "bin" / "python").write_text(f"#!/bin/sh\necho pwned > '{marker}'\n")
    (bundle / "venv" / "bin" / "python").chmod(0o755)
    v = run([*WHEELHOUSE, "verify", bundle])
    assert v.returncode == 1 and "venv/: a virtual environment inside the bundle directory" in v.stderr, v.stderr
    r = run(["sh", bundle / "install.sh", "--python", sys.executable], offline=OFFLINE is not None, cwd=tmp_path)
    assert r.returncode == 1 and "bundle verification failed: venv/" in r.stderr, r.stderr
    assert not marker.exists() and not (bundle.parent / f"{bundle.name}.venv").exists()


def test_bundles_verify_and_inspect(built: Built) -> None:
    for archive in filter(None, (built.py312, built.host)):
        assert run([*WHEELHOUSE, "verify", archive]).returncode == 0
        m = json.loads(run([*WHEELHOUSE, "inspect", "--json", archive]).stdout)
        (target,) = m["targets"]
        assert {p["name"]: p["version"] for p in target["packages"]} == LOCKED
        assert target["pip"].startswith("wheels/pip-")
        assert target["uv"].startswith("wheels/uv-")  # the lock carried the index's uv wheel beside pip


# ---------------------------------------------------------------------------------------------
# acceptance 2: refuse another Python or platform, with nothing created


def _refused(bundle: Path, python: str | Path, tmp_path: Path, *needles: str) -> str:
    venv = tmp_path / "venv"
    r = run(["sh", bundle / "install.sh", "--python", python, "--venv", venv], offline=OFFLINE is not None, cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    for needle in needles:
        assert needle in r.stderr, (needle, r.stderr)
    assert not venv.exists() and not (bundle / "venv").exists() and not (bundle.parent / f"{bundle.name}.venv").exists()
    assert "installing" not in r.stdout
    return r.stderr


@needs_py312
def test_installer_refuses_another_python_version(built: Built, tmp_path: Path) -> None:
    assert built.py312 is not None
    bundle = untar(built.py312, tmp_path / "unpacked312")
    _refused(bundle, sys.executable, tmp_path, "bundle is for CPython 3.12", f"this machine runs CPython {platform.python_version()}")
    host = untar(built.host, tmp_path / "unpacked-host")
    _refused(host, PY312, tmp_path, f"bundle is for CPython {HOST}", "this machine runs CPython 3.12")


@pytest.mark.parametrize("plat,needle", [("aarch64-manylinux_2_28", "aarch64"), ("x86_64-pc-windows-msvc", "Windows"),
                                         ("aarch64-apple-darwin", "macOS")])
def test_installer_refuses_another_platform(built: Built, tmp_path: Path, plat: str, needle: str) -> None:
    out = tmp_path / f"{plat}.tar"
    _build(["calcpkg", "--python-platform", plat, "--python-version", HOST, "--index-url", built.server.index_url("main")],
           built.cache, out)
    bundle = untar(out, tmp_path / "unpacked")
    err = _refused(bundle, sys.executable, tmp_path, needle, "x86_64")
    assert "Linux" in err


# ---------------------------------------------------------------------------------------------
# acceptance 3: one flipped byte is caught by verify and by the installer


def test_tampered_wheel_is_rejected_by_verify_and_install_sh(built: Built, tmp_path: Path) -> None:
    bundle = untar(built.host, tmp_path / "unpacked")
    (wheel,) = (bundle / "wheels").glob("wordlist-*.whl")
    good = wheel.read_bytes()
    at = len(good) // 2
    bad = good[:at] + bytes([good[at] ^ 0x01]) + good[at + 1 :]
    wheel.write_bytes(bad)
    rel = f"wheels/{wheel.name}"
    good_sha, bad_sha = hashlib.sha256(good).hexdigest(), hashlib.sha256(bad).hexdigest()

    v = run([*WHEELHOUSE, "verify", bundle])
    assert v.returncode == 1
    assert rel in v.stderr and good_sha in v.stderr and bad_sha in v.stderr

    sums = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=bundle, capture_output=True, text=True) \
        if shutil.which("sha256sum") else None
    if sums is not None:
        assert sums.returncode != 0 and wheel.name in sums.stdout

    err = _refused(bundle, sys.executable, tmp_path, rel)
    assert good_sha in err
