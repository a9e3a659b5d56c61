#!/usr/bin/env python3
"""Benchmark packing and installing: wheelhouse against the plain tools on the same wheels, in one run.

1. A lock and its wheels: by default ``wheelhouse build`` of a real PyPI set (numpy, scipy, pandas,
   matplotlib, scikit-learn for x86_64-manylinux_2_28 / CPython 3.12, fixed --exclude-newer), or
   ``--lock FILE --cache-dir DIR`` of an existing, fetched lock. Not timed.
2. Pack, best of 3 each: ``wheelhouse pack LOCK -o X.tar.zst`` (reads the cache, re-hashes every
   wheel, checks completeness, writes the reproducible archive) against ``tar -cf - DIR | zstd -T0
   -LEVEL`` over the same bundle directory, already staged (staging is not timed). Goal: within 1.3x.
   The level is pack's default (zstd 1) unless --level says otherwise. wheelhouse's modules are
   byte-compiled first, as ``pip install`` does, so that no run pays for compiling them. Context rows
   split the time: pack() in-process (no interpreter start-up), and ``python -c "import zstandard"``,
   the least any Python packer pays before its first byte.
3. Install, best of 2, a fresh venv each time, with and without bytecode: ``sh install.sh --python PY
   --venv V [--no-compile]`` (machine check, sha256 of every file, venv, the bundled uv or pip,
   the .pyc files from the bytecode pack compiled with this machine's CPython of the target's
   version, compileall of the rest on every core, pip check; all timed) against a fresh venv upgraded to the *current* pip
   from PyPI (not timed) running ``pip install --no-index --find-links wheels --require-hashes -r
   requirements.txt [--no-compile]`` (timed). Both must leave the same installed set (the
   distributions and versions besides pip, compared after the runs). Goal: <= 0.5x with bytecode.

Everything runs with PIP_CONFIG_FILE=/dev/null and an explicit ``-i https://pypi.org/simple``.

    python -m scripts.bench_pack [--python PY] [--level N] [--work DIR] [--lock FILE --cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from scripts.benchutil import human
from tests.support.pythons import pyenv_python
PYPI = "https://pypi.org/simple"
EXCLUDE_NEWER = "2025-06-01T00:00:00Z"
PLATFORM, VERSION = "x86_64-manylinux_2_28", "3.12"
PACKAGES = ["numpy", "scipy", "pandas", "matplotlib", "scikit-learn"]
WHEELHOUSE = [sys.executable, "-m", "bundler"]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_")) and k != "SOURCE_DATE_EPOCH"}
    e["PIP_CONFIG_FILE"] = os.devnull
    e["PYTHONPATH"] = str(ROOT)  # `python -m bundler` from this checkout
    return e


def check(cmd: list[str] | str, *, cwd: Path | None = None, shell: bool = False) -> None:
    r = subprocess.run(cmd, cwd=cwd, env=env(), shell=shell, capture_output=True, text=True)
    if r.returncode != 0:
        shown = cmd if isinstance(cmd, str) else " ".join(map(str, cmd))
        sys.exit(f"command failed ({r.returncode}): {shown}\n{(r.stdout + r.stderr)[-3000:]}")


def best_of(n: int, prepare: Callable[[], None], action: Callable[[], None]) -> float:
    times = []
    for _ in range(n):
        prepare()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def verdict(ratio: float, goal: float) -> str:
    return "OK" if ratio <= goal else "MISSED"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lock", type=Path, help="an existing lock (fetched into --cache-dir); default: build the PyPI set")
    ap.add_argument("--cache-dir", type=Path, help="the cache of --lock (default with no --lock: WORK/cache)")
    ap.add_argument("--python", type=Path, help="the target interpreter for the install timing (default: pyenv's 3.12)")
    ap.add_argument("--level", type=int, help="zstd level for both packers (default: pack's default, 1)")
    ap.add_argument("--work", type=Path, help="working directory (default: a temporary one, removed at the end)")
    ap.add_argument("--pack-runs", type=int, default=3)
    ap.add_argument("--install-runs", type=int, default=2)
    ap.add_argument("--skip-install", action="store_true")
    args = ap.parse_args(argv)
    if args.lock and not args.cache_dir:
        ap.error("--lock needs --cache-dir (the cache 'wheelhouse fetch' filled)")

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-pack-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _run(args, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> int:
    from bundler.pack import DEFAULT_LEVELS

    if args.level is None:
        args.level = DEFAULT_LEVELS["tar.zst"]
    check([sys.executable, "-m", "compileall", "-q", str(ROOT / "bundler")])  # as an installed copy has
    cache = args.cache_dir or work / "cache"
    lock = args.lock
    if lock is None:
        lock = work / "pylock.toml"
        print(f"building the lock: {' '.join(PACKAGES)} for {PLATFORM} / {VERSION}, exclude-newer {EXCLUDE_NEWER} ...",
              flush=True)
        start = time.perf_counter()
        check([*WHEELHOUSE, "build", "-i", PYPI, "--python-platform", PLATFORM, "--python-version", VERSION,
               "--exclude-newer", EXCLUDE_NEWER, *PACKAGES, "--cache-dir", str(cache), "--lock-output", str(lock),
               "-o", str(work / "build.tar.zst"), "-q"])
        print(f"  lock + fetch + pack took {time.perf_counter() - start:.1f} s (not part of the comparison)")

    # -- pack -----------------------------------------------------------------------------------
    packed = work / "pack" / "bundle.tar.zst"
    packed.parent.mkdir(exist_ok=True)

    def clear_packed() -> None:
        packed.unlink(missing_ok=True)

    t_pack = best_of(args.pack_runs, clear_packed, lambda: check(
        [*WHEELHOUSE, "pack", str(lock), "--cache-dir", str(cache), "-o", str(packed), "--level", str(args.level), "-q"]))
    stage = work / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    with _open_zst(packed) as tar:
        tar.extractall(stage, filter="data")
    (bundle,) = stage.iterdir()
    files = [p for p in bundle.rglob("*") if p.is_file()]
    wheels = [p for p in files if p.parent.name == "wheels"]
    payload = sum(p.stat().st_size for p in files)

    t_tar = t_sum = None
    baseline = work / "base.tar.zst"
    if shutil.which("zstd") and shutil.which("tar"):
        cmd = f"tar -cf - -C '{stage}' '{bundle.name}' | zstd -q -f -T0 -{args.level} -o '{baseline}'"
        t_tar = best_of(args.pack_runs, lambda: baseline.unlink(missing_ok=True), lambda: check(cmd, shell=True))
        if shutil.which("sha256sum"):  # context: the same pipeline with the integrity check wheelhouse does
            cmd2 = f"(cd '{bundle}' && sha256sum -c --quiet SHA256SUMS) && {cmd}"
            t_sum = best_of(args.pack_runs, lambda: baseline.unlink(missing_ok=True), lambda: check(cmd2, shell=True))
    else:
        print("zstd or tar is not installed: the tar | zstd baseline is skipped (apt-get install zstd)")
    t_inproc = best_of(args.pack_runs, clear_packed, lambda: _pack_in_process(lock, cache, packed, args.level))
    t_floor = best_of(args.pack_runs, lambda: None, lambda: check([sys.executable, "-c", "import zstandard"]))

    # -- install ----------------------------------------------------------------------------------
    python = args.python or pyenv_python(VERSION)
    installs: dict[str, tuple[float, float]] = {}  # "bytecode"/"no bytecode" -> (install.sh, pip)
    if args.skip_install:
        pass
    elif python is None:
        print(f"no Python for the install timing: give --python (the lock's target; default pyenv's {VERSION})")
    else:
        installs = _installs(args, work, bundle, Path(python))

    # -- table ----------------------------------------------------------------------------------
    print()
    print(f"bundle: {len(wheels)} wheels, {human(payload)} unpacked; {os.cpu_count()} CPUs; zstd level {args.level}")
    print(f"{'step':<44} {'best':>8}  {'output':>10}")
    print(f"{'wheelhouse pack':<44} {t_pack:>7.2f}s  {human(packed.stat().st_size):>10}")
    if t_tar is not None:
        print(f"{'tar -cf - DIR | zstd -T0 -' + str(args.level) + ' (staged dir)':<44} {t_tar:>7.2f}s  "
              f"{human(baseline.stat().st_size):>10}")
        ratio = t_pack / t_tar
        print(f"{'  ratio pack / tar|zstd (goal <= 1.3x)':<44} {ratio:>7.2f}x  {verdict(ratio, 1.3):>10}")
    print(f"{'  context: pack() in-process (no startup)':<44} {t_inproc:>7.2f}s")
    if t_tar is not None:
        print(f"{'  ratio in-process / tar|zstd':<44} {t_inproc / t_tar:>7.2f}x")
    floor = "  context: python -c 'import zstandard'"
    print(f"{floor:<44} {t_floor:>7.2f}s")
    if t_sum is not None:
        print(f"{'  context: sha256sum -c && tar|zstd':<44} {t_sum:>7.2f}s")
    for what, (t_inst, t_pip) in installs.items():
        flag = " --no-compile" if what == "no bytecode" else ""
        print(f"{'sh install.sh --venv V' + flag:<44} {t_inst:>7.2f}s")
        print(f"{'current pip install -r requirements.txt' + flag:<44} {t_pip:>7.2f}s")
        ratio = t_inst / t_pip
        goal = "  ratio install.sh / pip" + (" (goal <= 0.5x)" if what == "bytecode" else "")
        print(f"{goal:<44} {ratio:>7.2f}x  {verdict(ratio, 0.5) if what == 'bytecode' else '':>10}")
    if installs:
        print(f"(install runs with {python}; the same installed set each time)")
    return 0


def _dists(venv: Path) -> dict[str, str]:
    """The distributions in a venv besides pip (install.sh keeps the bundle's pip, the baseline the current one)."""
    code = "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))"
    out = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", code], capture_output=True, text=True, check=True).stdout
    return {k: v for k, v in json.loads(out).items() if k != "pip"}


def _installs(args: argparse.Namespace, work: Path, bundle: Path, python: Path) -> dict[str, tuple[float, float]]:
    """install.sh against a fresh venv with the current pip, with and without bytecode."""
    venv = work / "venv"
    pipdir = work / "current-pip"  # the current pip from PyPI, downloaded once
    check([str(python), "-m", "pip", "download", "-q", "--only-binary", ":all:", "--no-deps", "-d", str(pipdir),
           "--index-url", PYPI, "pip"])

    def fresh() -> None:
        shutil.rmtree(venv, ignore_errors=True)

    def fresh_with_current_pip() -> None:
        fresh()
        check([str(python), "-m", "venv", str(venv)])
        check([str(venv / "bin" / "pip"), "install", "-q", "--upgrade", "--no-index", "--find-links", str(pipdir), "pip"])

    out: dict[str, tuple[float, float]] = {}
    sets = []
    for what, flags in (("bytecode", []), ("no bytecode", ["--no-compile"])):
        t_inst = best_of(args.install_runs, fresh, lambda: check(
            ["sh", str(bundle / "install.sh"), "--python", str(python), "--venv", str(venv), *flags]))
        sets.append(_dists(venv))
        t_pip = best_of(args.install_runs, fresh_with_current_pip, lambda: check(
            [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "--no-index", "--find-links", "wheels",
             "--require-hashes", "-r", "requirements.txt", *flags], cwd=bundle))
        sets.append(_dists(venv))
        out[what] = (t_inst, t_pip)
    fresh()
    if any(s != sets[0] for s in sets):
        sys.exit(f"the installs left different sets: {sets}")
    return out


def _pack_in_process(lock: Path, cache: Path, output: Path, level: int) -> None:
    from bundler.cache import BlobStore
    from bundler.pack import pack

    pack(lock, BlobStore(cache), output, level=level)


class _open_zst:
    """``tarfile`` over a zstd stream, as a context manager (tarfile reads no zstd before 3.14)."""

    def __init__(self, path: Path) -> None:
        import zstandard

        self._f = open(path, "rb")
        self._reader = zstandard.ZstdDecompressor().stream_reader(self._f, read_across_frames=True)
        self._tar = tarfile.open(fileobj=self._reader, mode="r|")

    def __enter__(self) -> tarfile.TarFile:
        return self._tar

    def __exit__(self, *exc: object) -> None:
        self._tar.close()
        self._reader.close()
        self._f.close()


if __name__ == "__main__":
    sys.exit(main())
