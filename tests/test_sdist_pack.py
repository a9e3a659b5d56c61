"""Pack with sdists: built on the builder into a pure wheel that replaces the sdist, byte-reproducibly,
and installed offline (``unshare -n``) with another CPython, nothing built on the target; a
platform-specific result is discarded and the sdist carried, with its build requirements resolved
for the target, for install.sh to build there (tests/test_target_build.py does it with a C extension)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.bundlefixture import offline_prefix, pip_wheel_from_installed
from support.pythons import pyenv_python
from support.hermetic import hermetic
from support.indexserver import IndexServer
from support.sdistgen import make_sdist
from test_bundle_e2e import run, untar

from bundler.cli import main

pytestmark = pytest.mark.slow
WHEELHOUSE = [sys.executable, "-m", "bundler"]
PY312 = pyenv_python("3.12")
OFFLINE = offline_prefix()


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path)
    monkeypatch.setenv("WHEELHOUSE_TEST_BACKEND_LOG", str(tmp_path / "backend.log"))


def _index(server: IndexServer, root: Path, *, platform: bool = False) -> None:
    server.add_index("main")
    server.add_file("main", pip_wheel_from_installed(root / "pip"))
    server.add_wheel("main", "app", "1.0", requires_dist=["srclib"])
    server.add_file("main", make_sdist(root / "src", "srclib", "2.0", static=False, platform=platform))


def _build(server: IndexServer, root: Path, cache: Path, out: Path) -> int:
    return main(["build", "app", "--index-url", server.index_url("main"), "--python-platform", "x86_64-manylinux_2_28",
                 "--python-version", "3.12", "--cache-dir", str(cache), "-o", str(out), "-q"])


def test_pure_sdist_is_built_into_the_bundle_reproducibly(index_server: IndexServer, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _index(index_server, tmp_path)
    one, two = tmp_path / "one" / "b.tar.gz", tmp_path / "two" / "b.tar.gz"
    one.parent.mkdir()
    two.parent.mkdir()
    assert _build(index_server, tmp_path, tmp_path / "cache1", one) == 0
    monkeypatch.chdir(tmp_path)
    assert _build(index_server, tmp_path, Path("cache2"), two) == 0  # fresh cache, given as a relative path: built again
    assert hashlib.sha256(one.read_bytes()).digest() == hashlib.sha256(two.read_bytes()).digest()
    log = (tmp_path / "backend.log").read_text().split()
    assert log.count("build_wheel") == 2
    assert _build(index_server, tmp_path, tmp_path / "cache1", tmp_path / "one" / "c.tar.gz") == 0
    assert (tmp_path / "backend.log").read_text().split().count("build_wheel") == 2  # cached: no build started
    bundle = untar(one, tmp_path / "x")
    names = sorted(p.name for p in (bundle / "wheels").iterdir())
    assert "srclib-2.0-py3-none-any.whl" in names and not any(n.endswith(".tar.gz") for n in names)
    manifest = json.loads((bundle / "bundle.json").read_text())
    (entry,) = manifest["builds"].values()
    assert entry["sdist"] == "srclib-2.0.tar.gz" and entry["wheel"] == "srclib-2.0-py3-none-any.whl"
    if PY312 is not None and OFFLINE is not None and shutil.which("tar"):
        venv = tmp_path / "venv"
        r = run(["sh", bundle / "install.sh", "--python", PY312, "--venv", venv], offline=True, cwd=tmp_path)
        assert r.returncode == 0, r.stderr + r.stdout
        check = subprocess.run([venv / "bin" / "python", "-c", "import srclib; print(srclib.VERSION)"], capture_output=True, text=True)
        assert check.stdout.strip() == "2.0", check.stderr


def test_platform_specific_build_is_carried_for_the_target_with_its_own_build_requirements(
        index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The build requirement has one wheel per CPython: the builder's env and the target's differ, and
    # both are fetched by 'wheelhouse build'; the bundle carries the target's only.
    index_server.add_index("main")
    index_server.add_file("main", pip_wheel_from_installed(tmp_path / "pip"))
    index_server.add_wheel("main", "app", "1.0", requires_dist=["srclib"])
    here = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for tag in {here, "cp312"}:
        index_server.add_wheel("main", "buildhelper", "1.0", tag=f"{tag}-{tag}-manylinux_2_17_x86_64")
    index_server.add_file("main", make_sdist(tmp_path / "src", "srclib", "2.0", static=False, platform=True,
                                             build_requires=["buildhelper"]))
    out = tmp_path / "b.tar.gz"
    assert _build(index_server, tmp_path, tmp_path / "cache", out) == 0
    assert "note: srclib-2.0.tar.gz: it builds srclib-2.0-py3-none-linux_x86_64.whl here, for this platform only" in capsys.readouterr().err
    bundle = untar(out, tmp_path / "x")
    names = sorted(p.name for p in (bundle / "wheels").iterdir())
    assert "srclib-2.0.tar.gz" in names and "buildhelper-1.0-cp312-cp312-manylinux_2_17_x86_64.whl" in names
    assert not any(n.startswith("srclib-") and n.endswith(".whl") for n in names)
    assert not any(here in n for n in names if here != "cp312")  # the builder's build environment stays home
    (target,) = json.loads((bundle / "bundle.json").read_text())["targets"]
    (sdist,) = target["sdists"]
    assert [p["wheel"] for p in sdist["build-packages"]] == ["wheels/buildhelper-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"]
    if PY312 is not None and OFFLINE is not None:
        venv = tmp_path / "venv"
        r = run(["sh", bundle / "install.sh", "--python", PY312, "--venv", venv], offline=True, cwd=tmp_path)
        assert r.returncode == 0, r.stderr + r.stdout
        assert "srclib 2.0 from srclib-2.0.tar.gz" in r.stdout
        check = subprocess.run([venv / "bin" / "python", "-c", "import srclib; print(srclib.VERSION)"], capture_output=True, text=True)
        assert check.stdout.strip() == "2.0", check.stderr
