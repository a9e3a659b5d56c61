"""The project as users install it: the wheel's contents, the default recipe inside it, the public API."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from support.indexserver import IndexServer

import bundler

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this project, built the way `pip install .` builds it (PEP 517, isolated)."""
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (wheel,) = out.glob("wheelhouse-*.whl")
    return wheel


def test_default_recipe_is_one_file_in_two_places() -> None:
    assert (ROOT / "bundler" / "recipes" / "default.toml").read_bytes() == (ROOT / "recipes" / "default.toml").read_bytes()


def test_wheel_ships_the_default_recipe_and_target_scripts(project_wheel: Path) -> None:
    names = set(zipfile.ZipFile(project_wheel).namelist())
    for needed in ("bundler/recipes/default.toml", "bundler/_target/install.sh", "bundler/_target/install.py",
                   "bundler/_target/capture_profile.py", "bundler/py.typed"):
        assert needed in names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(project_wheel).read(metadata).decode()
    assert "Requires-Python: >=3.11" in text


@pytest.mark.slow
def test_plain_install_locks_the_default_recipe_with_no_arguments(project_wheel: Path, tmp_path: Path,
                                                                   index_server: IndexServer) -> None:
    """`wheelhouse lock` with no requirements, from a non-editable install, run outside the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    zipfile.ZipFile(project_wheel).extractall(site)  # what an installer does with a pure wheel
    # The dependencies come from the test environment's site-packages, but not its editable finder.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    index_server.add_index("simple")
    for name in ("requests", "numpy", "rich"):
        index_server.add_wheel("simple", name, "1.0")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    r = subprocess.run([str(py), "-m", "bundler", "lock", "-o", "pylock.toml", "--no-cache",
                        "--index-url", index_server.index_url("simple")], cwd=work, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    located = subprocess.run([str(py), "-c", "import bundler; print(bundler.__file__)"], capture_output=True, text=True,
                             cwd=work, env=env).stdout
    assert located.startswith(str(site))
    lock = (work / "pylock.toml").read_text()
    for name in ("requests", "numpy", "rich"):
        assert f'name = "{name}"' in lock


def test_public_surface() -> None:
    assert bundler.__all__ == sorted(bundler.__all__)
    for name in bundler.__all__:
        assert getattr(bundler, name) is not None
