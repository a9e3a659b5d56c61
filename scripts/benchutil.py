"""Small helpers the benchmark scripts share (stdlib only). The scripts run from the repository root as
``python -m scripts.NAME``, so they import ``scripts.benchutil``, ``tests.support`` and ``bundler`` as they are."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def tool(name: str, hint: str = "") -> str:
    """The path of command ``name``: beside this interpreter (its venv) first, then on PATH; exits if absent."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        sys.exit(f"{name} not found{': ' + hint if hint else ''}")
    return found


def human(n: float) -> str:
    """Bytes in decimal units: ``512 B``, ``1.5 MB``, ``3.91 GB``."""
    if abs(n) < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB"):
        n /= 1000
        if abs(n) < 1000:
            return f"{n:.1f} {unit}"
    return f"{n / 1000:.2f} GB"
