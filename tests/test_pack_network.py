"""A real PyPI set, bundled and installed offline (issue 4, acceptance 5; marked ``network``).

``wheelhouse build`` locks ``requests`` and ``numpy`` from PyPI for x86_64-manylinux_2_28 / CPython
3.12 with a fixed ``--exclude-newer``; the archive is unpacked with ``tar`` and installed with pyenv's
CPython 3.12 inside a network namespace with no network (``unshare -n``), and the imported versions
must be the locked ones. ``wheelhouse build`` with no recipe (recipes/default.toml, for the host) is
checked here too, since it talks to PyPI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from support.bundlefixture import offline_prefix
from support.pythons import pyenv_python
from support.oracle import PYPI, pypi_reachable

EXCLUDE_NEWER = "2025-06-01T00:00:00Z"
WHEELHOUSE = [sys.executable, "-m", "bundler"]


pytestmark = [pytest.mark.network, pytest.mark.slow,
              pytest.mark.skipif(not pypi_reachable(), reason="PyPI is unreachable")]

PY312 = pyenv_python("3.12")
OFFLINE = offline_prefix()


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env.pop("SOURCE_DATE_EPOCH", None)
    return env


def run(cmd: list[str | Path], **kw: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=clean_env(), **kw)  # type: ignore[call-overload]
    assert "Traceback" not in r.stderr, r.stderr
    return r


def locked_versions(lock: Path) -> dict[str, str]:
    return {p["name"]: p["version"] for p in tomllib.loads(lock.read_text())["packages"]}


@pytest.mark.skipif(PY312 is None, reason="no pyenv CPython 3.12")
@pytest.mark.skipif(OFFLINE is None, reason="no network namespace: 'unshare -n true' fails here")
@pytest.mark.skipif(shutil.which("tar") is None or shutil.which("zstd") is None, reason="needs tar and zstd to unpack")
def test_requests_and_numpy_for_pyenv_312_install_offline(tmp_path: Path) -> None:
    out = tmp_path / "sci.tar.zst"
    lock = tmp_path / "pylock.toml"
    r = run([*WHEELHOUSE, "build", "-i", PYPI, "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.12",
             "--exclude-newer", EXCLUDE_NEWER, "requests", "numpy", "--cache-dir", tmp_path / "cache",
             "--lock-output", lock, "-o", out], timeout=900)
    assert r.returncode == 0, r.stderr
    pins = locked_versions(lock)
    assert {"requests", "numpy", "urllib3", "idna", "certifi", "charset-normalizer"} <= set(pins)

    assert run([*WHEELHOUSE, "verify", out], timeout=300).returncode == 0
    (tmp_path / "x").mkdir()
    subprocess.run(["tar", "-xf", str(out), "-C", str(tmp_path / "x")], check=True)
    (bundle,) = (tmp_path / "x").iterdir()  # sci-<lock sha256 prefix>
    venv = tmp_path / "venv"
    r = run([*OFFLINE, "sh", bundle / "install.sh", "--python", PY312, "--venv", venv], timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr

    code = ("import json, sys, requests, numpy, urllib3, importlib.metadata as md; "
            "print(json.dumps({'py': list(sys.version_info[:2]), 'requests': requests.__version__, "
            "'numpy': numpy.__version__, 'all': {d.metadata['Name'].lower(): d.version for d in md.distributions()}, "
            "'sum': int(numpy.arange(10).sum())}))")
    r = run([*OFFLINE, venv / "bin" / "python", "-I", "-c", code], timeout=120)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["py"] == [3, 12] and got["sum"] == 45
    assert got["requests"] == pins["requests"] and got["numpy"] == pins["numpy"]
    installed = {re.sub(r"[-_.]+", "-", k): v for k, v in got["all"].items() if k != "pip"}
    assert installed == pins  # exactly the locked set, nothing more


def test_build_with_no_recipe_uses_the_default_recipe(tmp_path: Path) -> None:
    cwd = tmp_path / "empty"
    cwd.mkdir()
    r = run([*WHEELHOUSE, "build", "--cache-dir", tmp_path / "cache", "-o", "default.tar.zst"], cwd=cwd, timeout=900)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in cwd.iterdir()) == ["default.tar.zst", "default.tar.zst.sha256"]
    m = json.loads(run([*WHEELHOUSE, "inspect", "--json", cwd / "default.tar.zst"]).stdout)
    assert m["name"] == "default"
    names = {p["name"] for t in m["targets"] for p in t["packages"]}
    assert {"requests", "numpy", "rich"} <= names
    assert run([*WHEELHOUSE, "verify", cwd / "default.tar.zst"], timeout=300).returncode == 0
