"""Pack with sdists: built on the builder into a pure wheel that replaces the sdist, byte-reproducibly,
and installed offline (``unshare -n``) with another CPython, nothing built on the target."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bundlefixture import offline_prefix, pip_wheel_from_installed, pyenv_python
from hermetic import hermetic
from indexserver import IndexServer
from sdistgen import make_sdist
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


def test_pure_sdist_is_built_into_the_bundle_reproducibly(index_server: IndexServer, tmp_path: Path) -> None:
    _index(index_server, tmp_path)
    one, two = tmp_path / "one" / "b.tar.gz", tmp_path / "two" / "b.tar.gz"
    one.parent.mkdir()
    two.parent.mkdir()
    assert _build(index_server, tmp_path, tmp_path / "cache1", one) == 0
    assert _build(index_server, tmp_path, tmp_path / "cache2", two) == 0  # fresh cache: built again
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


def test_platform_specific_build_is_named(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _index(index_server, tmp_path, platform=True)
    assert _build(index_server, tmp_path, tmp_path / "cache", tmp_path / "b.tar.gz") == 1
    assert "srclib-2.0.tar.gz" in capsys.readouterr().err
