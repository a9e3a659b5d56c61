"""The one finder for pyenv's CPython interpreters, which the end-to-end tests install bundles with."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path


def pyenv_root() -> Path:
    """``$PYENV_ROOT``, else what ``pyenv root`` prints, else ``~/.pyenv``."""
    root = os.environ.get("PYENV_ROOT")
    if not root and shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip() or None
    return Path(root or Path.home() / ".pyenv")


def pyenv_python(minor: str) -> Path | None:
    """The newest pyenv CPython ``minor`` (e.g. "3.12") installed here (plain ``X.Y.N`` builds only), or None."""
    found = []
    for d in (pyenv_root() / "versions").glob(minor + ".*"):
        m = re.fullmatch(re.escape(minor) + r"\.(\d+)", d.name)
        if m and (d / "bin" / "python").exists():
            found.append((int(m.group(1)), d / "bin" / "python"))
    return max(found)[1] if found else None
