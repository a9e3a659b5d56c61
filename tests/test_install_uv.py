"""install.sh with the bundle's uv, its pip fallback, bytecode and exactly the locked set, run for real.

The uv wheel is built from the uv binary this suite installs (``.[test]``), laid out as uv
publishes it (tests/support/bundlefixture.py ``uv_wheel_from_installed``). Installs run offline (``unshare
-n``) with pip and uv settings in the environment that must be ignored.
"""

from __future__ import annotations

import csv
import platform
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support.bundlefixture import offline_prefix, pip_wheel_from_installed, uv_wheel_from_installed, write_bundle
from support.wheelgen import make_wheel

from bundler._target import install as inst
from bundler.profile import profile_for_platform

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc" or platform.machine() != "x86_64",
    reason="the uv wheel built here is tagged for glibc x86_64 Linux",
)

OFFLINE = offline_prefix()
needs_offline = pytest.mark.skipif(OFFLINE is None, reason="no network namespace: 'unshare -n true' fails here")
PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
HOSTILE_ENV = {
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_NO_DEPS": "1", "UV_INDEX_URL": "http://127.0.0.1:9/simple",
    "UV_NO_DEPS": "1", "UV_LINK_MODE": "symlink", "HTTPS_PROXY": "http://127.0.0.1:9",
}
SMOKE = "import alpha, beta, delta; print('smoke', alpha.__version__)"
# Written by the installer about itself (uv_cache.json is uv's note of where the wheel came from).
INSTALLER_FILES = {"INSTALLER", "REQUESTED", "RECORD", "uv_cache.json"}


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path, Path]:
    src = tmp_path_factory.mktemp("src")
    packages = [
        make_wheel(src, "alpha", "1.0", requires_dist=["beta>=2", "delta"],
                   files={"alpha/__init__.py": "__version__ = '1.0'\n", "alpha/sub/mod.py": "X = 1\n",
                          "alpha/data.txt": "data\n"}),
        make_wheel(src, "beta", "2.1", tag="py2.py3-none-any"),
        make_wheel(src, "delta", "1.0", files={
            "delta/__init__.py": "def main():\n    print('delta ran')\n",
            "delta-1.0.dist-info/entry_points.txt": "[console_scripts]\ndelta-cli = delta:main\n"}),
    ]
    return packages, pip_wheel_from_installed(tmp_path_factory.mktemp("pip")), uv_wheel_from_installed(tmp_path_factory.mktemp("uv"))


def _bundle(tmp: Path, wheels: tuple[list[Path], Path, Path], *, with_uv: bool = True, smoke: tuple[str, ...] = (SMOKE,)) -> Path:
    packages, pip, uv = wheels
    bundle = tmp / "bundle"
    write_bundle(bundle, wheels=packages, pip_wheel=pip, uv_wheel=uv if with_uv else None, smoke=smoke,
                 targets=[("host", profile_for_platform("x86_64-manylinux_2_28", PY).to_dict())])
    return bundle


def _install(bundle: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(HOSTILE_ENV)
    argv = ["sh", str(bundle / "install.sh"), "--python", sys.executable, *map(str, args)]
    r = subprocess.run([*(OFFLINE or []), *argv], capture_output=True, text=True, env=env, timeout=300, cwd=bundle.parent)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def _site(venv: Path) -> Path:
    return venv / "lib" / f"python{PY}" / "site-packages"


def installed_files(venv: Path) -> dict[str, set[tuple[str, str, str]]]:
    """Per dist-info folder, the RECORD rows (path, hash, size), installer-written files left out;
    console scripts by path only (each installer writes its own launcher, naming its venv)."""
    out = {}
    for record in sorted(_site(venv).glob("*.dist-info/RECORD")):
        rows = set()
        with open(record, newline="") as f:
            for row in csv.reader(f):
                path, digest, size = (row + ["", ""])[:3]
                if path.rsplit("/", 1)[-1] in INSTALLER_FILES and ".dist-info/" in path:
                    continue
                rows.add((path, "", "") if path.startswith("../../../bin/") else (path, digest, size))
        out[record.parent.name] = rows
    return out


@needs_offline
def test_pip_and_uv_leave_the_same_installed_set(tmp_path: Path, wheels: tuple[list[Path], Path, Path]) -> None:
    bundle = _bundle(tmp_path, wheels)
    by_pip = _install(bundle, "--installer", "pip", "--venv", tmp_path / "pip-venv")
    assert by_pip.returncode == 0, by_pip.stdout + by_pip.stderr
    assert "with the bundled pip" in by_pip.stdout
    by_uv = _install(bundle, "--venv", tmp_path / "uv-venv")  # uv is the default when the bundle has it
    assert by_uv.returncode == 0, by_uv.stdout + by_uv.stderr
    assert "with the bundled uv" in by_uv.stdout and "uv pip check passed, 1 smoke test(s) passed" in by_uv.stdout
    pip_files, uv_files = installed_files(tmp_path / "pip-venv"), installed_files(tmp_path / "uv-venv")
    assert sorted(pip_files) == sorted(uv_files) == sorted(["alpha-1.0.dist-info", "beta-2.1.dist-info", "delta-1.0.dist-info",
                                                            f"pip-{wheels[1].name.split('-')[1]}.dist-info"])
    assert pip_files == uv_files
    assert ("../../../bin/delta-cli", "", "") in uv_files["delta-1.0.dist-info"]
    for venv in ("pip-venv", "uv-venv"):  # compiled after installing, on every core, by both
        assert list((_site(tmp_path / venv) / "alpha" / "sub" / "__pycache__").glob("mod.*.pyc"))
        r = subprocess.run([tmp_path / venv / "bin" / "delta-cli"], capture_output=True, text=True)
        assert r.stdout == "delta ran\n"
    assert not list(tmp_path.glob("wheelhouse-install-*"))


@needs_offline
def test_no_compile_and_no_uv_wheel_fall_back(tmp_path: Path, wheels: tuple[list[Path], Path, Path]) -> None:
    bundle = _bundle(tmp_path, wheels, with_uv=False, smoke=())
    refused = _install(bundle, "--installer", "uv", "--venv", tmp_path / "v")
    assert refused.returncode == 1
    assert "--installer uv: the bundle has no uv wheel for this target" in refused.stderr
    assert not (tmp_path / "v").exists()
    r = _install(bundle, "--no-compile", "--venv", tmp_path / "v")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "with the bundled pip" in r.stdout and "byte-compiling" not in r.stdout
    assert "smoke test(s)" not in r.stdout  # no "0 smoke test(s) passed"
    assert not list(_site(tmp_path / "v").rglob("alpha/**/*.pyc"))


@needs_offline
@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_a_reused_venv_is_warned_about_extras_and_exact_removes_them(tmp_path: Path, wheels: tuple[list[Path], Path, Path],
                                                                     installer: str) -> None:
    bundle = _bundle(tmp_path, wheels)
    venv = tmp_path / "venv"
    assert _install(bundle, "--installer", installer, "--venv", venv).returncode == 0
    stray = make_wheel(tmp_path / "stray", "stray", "0.9")
    pip = [str(venv / "bin" / "python"), str(bundle / "wheels" / wheels[1].name / "pip"), "install", "-q", "--no-index", "--no-deps"]
    subprocess.run([*pip, str(stray)], check=True, capture_output=True)

    warned = _install(bundle, "--installer", installer, "--venv", venv, "--no-compile")
    assert warned.returncode == 0, warned.stdout + warned.stderr
    assert "warning: the venv" in warned.stderr and "the lock does not name: stray 0.9" in warned.stderr
    assert "--exact removes them" in warned.stderr
    assert list(_site(venv).glob("stray-0.9.dist-info"))

    exact = _install(bundle, "--installer", installer, "--venv", venv, "--exact", "--no-compile")
    assert exact.returncode == 0, exact.stdout + exact.stderr
    assert "warning" not in exact.stderr and "removing 1 package(s) the lock does not name (--exact): stray 0.9" in exact.stdout
    names = sorted(p.name.split("-")[0] for p in _site(venv).glob("*.dist-info"))
    assert names == ["alpha", "beta", "delta", "pip"]  # exactly the lock, and the pip install.sh keeps in its venvs


def test_extract_uv_checks_the_hash_and_takes_the_binary(tmp_path: Path, wheels: tuple[list[Path], Path, Path]) -> None:
    uv = wheels[2]
    sha = inst.sha256_of(str(uv))[0]
    binary = inst.extract_uv(str(uv), sha, str(tmp_path))
    assert Path(binary).name == "uv" and Path(binary).stat().st_mode & 0o111
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("uv ")
    with pytest.raises(inst.InstallError, match="has sha256"):
        inst.extract_uv(str(uv), "0" * 64, str(tmp_path))
    empty = tmp_path / "uv-0.1-py3-none-any.whl"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("uv-0.1.dist-info/METADATA", "Name: uv\n")
    with pytest.raises(inst.InstallError, match="no single uv binary"):
        inst.extract_uv(str(empty), inst.sha256_of(str(empty))[0], str(tmp_path))
