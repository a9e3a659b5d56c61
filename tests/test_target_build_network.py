"""Issue 11's acceptance from real PyPI (marked ``network``): ``netifaces==0.11.0`` for Linux x86_64
CPython 3.12 has no wheel there, only its sdist, a C extension. The builder (this Python) builds a
wheel for its own platform, which pack discards: the bundle carries ``netifaces-0.11.0.tar.gz`` and
the setuptools wheel its build needs on the target; install.sh builds and installs it offline
(``unshare -n``) with pyenv's CPython 3.12, and ``netifaces.interfaces()`` works.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from support.oracle import PYPI, pypi_reachable
from test_pack_network import OFFLINE, PY312, WHEELHOUSE, run

EXCLUDE_NEWER = "2025-06-01T00:00:00Z"

pytestmark = [pytest.mark.network, pytest.mark.slow,
              pytest.mark.skipif(not pypi_reachable(), reason="PyPI is unreachable")]


@pytest.mark.skipif(PY312 is None, reason="no pyenv CPython 3.12")
@pytest.mark.skipif(OFFLINE is None, reason="no network namespace: 'unshare -n true' fails here")
@pytest.mark.skipif(shutil.which("tar") is None, reason="needs tar to unpack")
def test_netifaces_sdist_is_built_offline_on_a_312_target(tmp_path: Path) -> None:
    out = tmp_path / "netifaces.tar.gz"
    r = run([*WHEELHOUSE, "build", "-i", PYPI, "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.12",
             "--exclude-newer", EXCLUDE_NEWER, "netifaces==0.11.0", "--cache-dir", tmp_path / "cache", "-o", out], timeout=1800)
    assert r.returncode == 0, r.stderr
    assert "note: netifaces-0.11.0.tar.gz:" in r.stderr
    (tmp_path / "x").mkdir()
    subprocess.run(["tar", "-xf", out, "-C", tmp_path / "x"], check=True)
    (bundle,) = (tmp_path / "x").iterdir()
    names = sorted(p.name for p in (bundle / "wheels").iterdir())
    assert "netifaces-0.11.0.tar.gz" in names
    assert any(n.startswith("setuptools-") and n.endswith("-py3-none-any.whl") for n in names), names
    assert not any(n.startswith("netifaces-") and n.endswith(".whl") for n in names)
    (target,) = json.loads((bundle / "bundle.json").read_text())["targets"]
    (sdist,) = target["sdists"]
    assert sdist["sdist"] == "wheels/netifaces-0.11.0.tar.gz"
    assert [p["name"] for p in sdist["build-packages"]] == ["setuptools"]

    assert OFFLINE is not None and PY312 is not None
    venv = tmp_path / "venv"
    r = run([*OFFLINE, "sh", bundle / "install.sh", "--python", PY312, "--venv", venv], timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "netifaces 0.11.0 from netifaces-0.11.0.tar.gz" in r.stdout
    check = run([*OFFLINE, venv / "bin" / "python", "-c", "import netifaces; print(netifaces.interfaces())"])
    assert check.returncode == 0 and "lo" in check.stdout, check.stdout + check.stderr
