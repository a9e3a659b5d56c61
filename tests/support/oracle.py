"""Independent oracles for resolution results: uv (any target) and pip-compile (the host target)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

PYPI = "https://pypi.org/simple"


def pypi_reachable() -> bool:
    """Whether PyPI answers now (network tests skip cleanly where it does not)."""
    import httpx

    try:
        return httpx.get(PYPI + "/pip/", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;\\]+)")


def clean_env() -> dict[str, str]:
    """The environment with pip/uv configuration neutralized."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["UV_NO_CONFIG"] = "1"
    return env


def pins_of(text: str) -> dict[str, str]:
    """``{normalized name: version}`` from a requirements-style listing."""
    from packaging.utils import canonicalize_name

    out = {}
    for line in text.splitlines():
        m = _PIN.match(line.strip())
        if m:
            out[canonicalize_name(m.group(1))] = m.group(2)
    return out


def uv_binary() -> str | None:
    """The uv executable installed next to this interpreter (a test dependency), or on PATH."""
    here = Path(sys.executable).parent / "uv"
    if here.exists():
        return str(here)
    return shutil.which("uv")


def uv_compile(requirements: list[str], platform: str, version: str, exclude_newer: str, workdir: Path,
               cache_dir: Path | None = None) -> tuple[int, dict[str, str], str]:
    """Run ``uv pip compile`` for a target; return (exit code, pins, stderr)."""
    uv = uv_binary()
    assert uv, "uv is a test dependency (pip install -e .[test])"
    req = workdir / "requirements.in"
    req.write_text("\n".join(requirements) + "\n")
    cmd = [uv, "pip", "compile", str(req), "--only-binary", ":all:", "--python-platform", platform,
           "--python-version", version, "--exclude-newer", exclude_newer, "--index-url", PYPI,
           "--no-header", "--no-annotate", "--quiet"]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=600)
    return r.returncode, pins_of(r.stdout), r.stderr


def pip_compile(requirements: list[str], workdir: Path, *, exclude_newer: str | None = None) -> tuple[int, dict[str, str], str]:
    """Run pip-compile (host interpreter) with PyPI only; return (exit code, pins, stderr)."""
    req = workdir / "requirements.in"
    req.write_text("\n".join(requirements) + "\n")
    out = workdir / "requirements.txt"
    cmd = [sys.executable, "-m", "piptools", "compile", str(req), "-o", str(out), "--index-url", PYPI,
           "--no-header", "--no-annotate", "--quiet", "--pip-args", "--only-binary :all:"]
    env = clean_env()
    if exclude_newer:
        env["PIP_UPLOADED_PRIOR_TO"] = exclude_newer  # honoured by pip >= 25.3; ignored before
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=workdir)
    return r.returncode, pins_of(out.read_text() if out.exists() else ""), r.stderr
