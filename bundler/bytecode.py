"""Bytecode compiled on the builder, so the target only writes .pyc files instead of compiling.

Byte-compiling a scientific stack takes most of an install's time (numpy, scipy, pandas and
scikit-learn hold some 4,500 modules), and the target, often a small login node, would compile the
same files every install. Bytecode depends only on the source and the interpreter's bytecode
version (``importlib.util.MAGIC_NUMBER``, fixed within a CPython minor release), so when the
builder has a CPython of the target's version, pack compiles each wheel once with it
(``bytecode_worker.py``, one process per wheel, all cores) and ships the result beside the wheel:
``bytecode/<magic>/<wheel>.zip``, listed and hashed in the manifest like every file.

On the target, after the install, ``install.py`` writes each module's .pyc from that body and the
installed source's own mtime and size, exactly the timestamp .pyc that ``compileall`` (and pip)
would write, then runs ``compileall`` for whatever was not covered (it skips up-to-date files). A
target whose interpreter has another magic number ignores the shipped bytecode and compiles.
``co_filename`` is the path relative to site-packages; the import system replaces it with the real
path when it loads the .pyc, as it does for any relocated .pyc.

Results are cached by (wheel sha256, interpreter version, worker version) through ``cache.py``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bundler.cache import BlobStore
from bundler.errors import BundlerError

WORKER = Path(__file__).with_name("bytecode_worker.py")
WORKER_VERSION = "1"
_PROBE = ("import sys, importlib.util; print(sys.implementation.name, '%d.%d' % sys.version_info[:2], "
          "importlib.util.MAGIC_NUMBER.hex(), sys.version_info.releaselevel, sys.version.split()[0])")


@dataclass(frozen=True, slots=True)
class Interpreter:
    """A CPython on the builder that compiles for targets of its minor version."""

    path: Path
    version: str  # "3.12"
    magic: str  # importlib.util.MAGIC_NUMBER in hex, e.g. "cb0d0d0a"
    full_version: str  # "3.12.1": part of the cache key, since a micro release may compile differently


def probe(path: Path) -> Interpreter | None:
    """``path`` as an Interpreter when it is a final-release CPython that answers, else None."""
    try:
        out = subprocess.run([str(path), "-I", "-c", _PROBE], capture_output=True, text=True, timeout=30,
                             env={"PATH": os.environ.get("PATH", "")}).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    if len(out) != 5 or out[0] != "cpython" or out[3] != "final" or not re.fullmatch(r"[0-9a-f]{8}", out[2]):
        return None
    return Interpreter(path=path, version=out[1], magic=out[2], full_version=out[4])


def _candidates(version: str) -> Iterator[Path]:
    found = shutil.which(f"python{version}")
    if found:
        yield Path(found)
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    uv = Path(os.environ.get("UV_PYTHON_INSTALL_DIR") or Path.home() / ".local" / "share" / "uv" / "python")
    for root, pattern, exe in ((pyenv, f"{version}.*", "bin/python"), (uv, f"cpython-{version}.*", f"bin/python{version}")):
        try:
            dirs = sorted(root.glob(pattern), reverse=True)
        except OSError:
            continue
        for d in dirs:
            if (d / exe).is_file():
                yield d / exe


def find_interpreter(version: str, given: Sequence[Path] = ()) -> Interpreter | None:
    """A CPython of ``version`` ("3.12"): one of ``given`` (``--bytecode-python``) when one has that
    version, else ``python3.12`` on PATH, a pyenv or a uv-managed one; None when there is none."""
    for path in (*given, *_candidates(version)):
        found = probe(path)
        if found is not None and found.version == version:
            return found
    return None


def _key(wheel_sha256: str, interp: Interpreter) -> str:
    return hashlib.sha256(f"wheelhouse-bytecode|{WORKER_VERSION}|{interp.magic}|{interp.full_version}|{wheel_sha256}"
                          .encode()).hexdigest()


def _compile_one(wheel: Path, interp: Interpreter) -> bytes:
    with tempfile.TemporaryDirectory(prefix="wheelhouse-bytecode-") as tmp:
        out = Path(tmp) / "out.zip"
        r = subprocess.run([str(interp.path), "-I", "-W", "ignore", str(WORKER), str(wheel), str(out)],
                           capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "")})
        if r.returncode != 0 or r.stdout.strip() != interp.magic:
            raise BundlerError(f"compiling the bytecode of {wheel.name} with {interp.path} failed: "
                               f"{(r.stderr or r.stdout).strip()[-400:]}", hint="pack with --no-bytecode to skip it")
        return out.read_bytes()


def compile_wheels(wheels: Sequence[tuple[Path, str]], interp: Interpreter, store: BlobStore,
                   say: Callable[[str], None] | None = None) -> dict[str, Path]:
    """The bytecode archive of each (wheel path, wheel sha256), keyed by the wheel's sha256: from the
    cache, or compiled in parallel (one process per wheel, as many as there are CPUs) and cached;
    ``say`` hears a line before a compilation starts."""
    result: dict[str, Path] = {}
    todo = []
    for path, sha in wheels:
        cached = store.derived(_key(sha, interp))
        if cached is not None:
            result[sha] = cached
        else:
            todo.append((path, sha))
    if todo:
        if say is not None:
            say(f"compiling the bytecode of {len(todo)} wheel(s) with {interp.path} (Python {interp.full_version}; "
                "cached for the next pack)")
        with ThreadPoolExecutor(max_workers=max(1, min(len(todo), os.cpu_count() or 1))) as pool:
            for (path, sha), data in zip(todo, pool.map(lambda job: _compile_one(job[0], interp), todo)):
                result[sha] = store.put_derived(_key(sha, interp), data)
    return result


def bundle_path(magic: str, wheel_filename: str) -> str:
    """Where the bytecode of a wheel lives in a bundle."""
    return f"bytecode/{magic}/{wheel_filename}.zip"


def bytecode_lines(targets: Sequence[Any], disabled: bool) -> list[str]:
    """What pack says about the bytecode of its ``targets`` (``BundledTarget``): which targets got it
    and, for a CPython target that did not, how to give it some."""
    if disabled:
        return []
    lines = []
    for t in targets:
        if t.bytecode_magic:
            lines.append(f"  {t.name}: bytecode compiled here for {len(t.bytecode)} wheels; the target only writes .pyc files")
        elif t.profile.markers.get("implementation_name") == "cpython":
            lines.append(f"note: no CPython {t.profile.markers.get('python_version')} on this machine: {t.name} compiles its "
                         "bytecode at install time (--bytecode-python PY names one; --no-bytecode silences this)")
    return lines
