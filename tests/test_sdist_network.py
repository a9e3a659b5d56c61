"""Issue 11's acceptance for pure sdists, from real PyPI (marked ``network``): ``hydra-core>=1.3`` (whose
omegaconf needs antlr4-python3-runtime 4.9.3, an sdist only) and ``docopt`` (an sdist only) for Linux
x86_64 CPython 3.12. The bundle holds wheels built from both sdists and no sdist, two builds from
fresh caches are byte-identical, it installs offline with pyenv's CPython 3.12 with nothing built
there, and the same requirements for Windows (x86_64, CPython 3.11) pack with the same pure wheels.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from support.oracle import PYPI, pypi_reachable
from test_pack_network import OFFLINE, PY312, WHEELHOUSE, run

EXCLUDE_NEWER = "2025-06-01T00:00:00Z"
REQS = ["hydra-core>=1.3", "docopt"]
BUILT = {"antlr4_python3_runtime-4.9.3-py3-none-any.whl", "docopt-0.6.2-py2.py3-none-any.whl"}

pytestmark = [pytest.mark.network, pytest.mark.slow,
              pytest.mark.skipif(not pypi_reachable(), reason="PyPI is unreachable")]


def _build(tmp_path: Path, name: str, platform: str, version: str) -> Path:
    out = tmp_path / name / "hydra.tar.zst"
    out.parent.mkdir()
    r = run([*WHEELHOUSE, "build", "-i", PYPI, "--python-platform", platform, "--python-version", version,
             "--exclude-newer", EXCLUDE_NEWER, *REQS, "--cache-dir", tmp_path / f"cache-{name}", "-o", out], timeout=1800)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "BuildBackendWarning" not in r.stderr  # a backend's nagging stays out
    return out


def _files(archive: Path) -> set[str]:
    with tarfile.open(archive) if archive.suffix != ".zst" else _zst(archive) as tar:
        return {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}


def _zst(archive: Path) -> tarfile.TarFile:
    import io

    import zstandard

    return tarfile.open(fileobj=io.BytesIO(zstandard.ZstdDecompressor().decompressobj().decompress(archive.read_bytes())))


@pytest.mark.skipif(PY312 is None or OFFLINE is None or shutil.which("tar") is None,
                    reason="needs pyenv's CPython 3.12, 'unshare -n' and tar")
def test_hydra_and_docopt_bundle_built_wheels_reproducibly_and_install_offline(tmp_path: Path) -> None:
    one = _build(tmp_path, "one", "x86_64-manylinux_2_28", "3.12")
    two = _build(tmp_path, "two", "x86_64-manylinux_2_28", "3.12")
    assert one.read_bytes() == two.read_bytes()  # fresh caches, the same bytes
    wheels = {f.split("/", 1)[1] for f in _files(one) if f.startswith("wheels/")}
    assert BUILT <= wheels and not any(w.endswith((".tar.gz", ".zip")) for w in wheels), wheels
    assert any(w.startswith("hydra_core-1.3.") for w in wheels)

    (tmp_path / "x").mkdir()
    subprocess.run(["tar", "-xf", str(one), "-C", str(tmp_path / "x")], check=True)
    (bundle,) = (tmp_path / "x").iterdir()
    venv = tmp_path / "venv"
    r = run([*OFFLINE, "sh", bundle / "install.sh", "--python", PY312, "--venv", venv], timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "built from source" not in r.stdout  # nothing compiles on the target
    out = subprocess.run([str(venv / "bin" / "python"), "-c", "import hydra, docopt; print(hydra.__version__, docopt.__version__)"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0].startswith("1.3.") and out[1] == "0.6.2"


def test_the_windows_bundle_carries_the_same_pure_wheels(tmp_path: Path) -> None:
    win = _build(tmp_path, "win", "x86_64-pc-windows-msvc", "3.11")
    wheels = {f.split("/", 1)[1] for f in _files(win) if f.startswith("wheels/")}
    assert BUILT <= wheels and not any(w.endswith((".tar.gz", ".zip")) for w in wheels), wheels
