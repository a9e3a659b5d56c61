"""wheelhouse against independent resolvers on the real PyPI (marked ``network``).

For each requirement set and foreign target, ``wheelhouse lock`` must give exactly the
name==version set of ``uv pip compile --only-binary :all: --python-platform ... --python-version
... --exclude-newer ...``; for the host target (a profile captured from this interpreter) it must
give pip-compile's set. Where uv finds no solution, wheelhouse must fail with a clear message.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support.oracle import PYPI, clean_env, pins_of, pip_compile, pypi_reachable, uv_compile

EXCLUDE_NEWER = "2025-06-01T00:00:00Z"
SETS = {
    "science": ["numpy", "scipy", "pandas", "matplotlib", "scikit-learn", "jupyterlab"],
    "torch": ["torch", "transformers"],
    "web": ["fastapi", "uvicorn[standard]", "sqlalchemy", "psycopg[binary]"],
}
TARGETS = [
    ("x86_64-manylinux_2_28", "3.11"),
    ("aarch64-manylinux_2_28", "3.12"),
    ("x86_64-pc-windows-msvc", "3.10"),
    ("aarch64-apple-darwin", "3.13"),
    ("x86_64-manylinux_2_17", "3.9"),
]


pytestmark = [pytest.mark.network, pytest.mark.skipif(not pypi_reachable(), reason="PyPI is unreachable")]


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("caches")
    return base / "uv", base / "wheelhouse"


def wheelhouse_lock(args: list[str], out: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "bundler", "lock", *args, "--index-url", PYPI, "-o", str(out / "pylock.toml"),
           "--cache-dir", str(cache), "--quiet"]
    return subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=900)


@pytest.mark.parametrize("platform,version", TARGETS, ids=[f"{p}-{v}" for p, v in TARGETS])
@pytest.mark.parametrize("set_name", list(SETS))
def test_same_pins_as_uv(set_name: str, platform: str, version: str, tmp_path: Path, caches: tuple[Path, Path]) -> None:
    reqs = SETS[set_name]
    uv_dir, wh_dir = tmp_path / "uv", tmp_path / "wh"
    uv_dir.mkdir()
    wh_dir.mkdir()
    uv_rc, uv_pins, uv_err = uv_compile(reqs, platform, version, EXCLUDE_NEWER, uv_dir, cache_dir=caches[0])
    r = wheelhouse_lock([*reqs, "--python-platform", platform, "--python-version", version, "--exclude-newer", EXCLUDE_NEWER],
                        wh_dir, caches[1])
    assert "Traceback" not in r.stderr
    if uv_rc != 0:
        assert r.returncode == 1, f"uv found no solution ({uv_err.strip()[-300:]}) but wheelhouse did"
        assert "error:" in r.stderr and not (wh_dir / "pylock.toml").exists()
        return
    assert r.returncode == 0, r.stderr
    ours = pins_of((wh_dir / "requirements.txt").read_text())
    diff = {k: (uv_pins.get(k), ours.get(k)) for k in set(uv_pins) | set(ours) if uv_pins.get(k) != ours.get(k)}
    assert not diff, f"(uv, wheelhouse) differ: {diff}"


@pytest.mark.parametrize("reqs", [["requests"], SETS["web"]], ids=["requests", "web"])
def test_host_target_matches_pip_compile(reqs: list[str], tmp_path: Path, caches: tuple[Path, Path]) -> None:
    profile = tmp_path / "host.json"
    cap = subprocess.run([sys.executable, "-m", "bundler", "profile", "capture", "-o", str(profile)], capture_output=True,
                         text=True, env=clean_env())
    assert cap.returncode == 0, cap.stderr
    pc_dir, wh_dir = tmp_path / "pc", tmp_path / "wh"
    pc_dir.mkdir()
    wh_dir.mkdir()
    rc, pc_pins, err = pip_compile(reqs, pc_dir)
    assert rc == 0, err
    r = wheelhouse_lock([*reqs, "--profile", str(profile)], wh_dir, caches[1])
    assert r.returncode == 0, r.stderr
    assert pins_of((wh_dir / "requirements.txt").read_text()) == pc_pins
