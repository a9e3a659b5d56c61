#!/usr/bin/env python3
"""Benchmark planning: wheelhouse lock vs uv pip compile (and optionally pip-compile) on the same inputs.

Each tool locks each requirement set cold (empty cache) and warm (second run, same cache); the tools
take turns within each repetition and the best of each is kept. uv and wheelhouse resolve for
x86_64-manylinux_2_28 / CPython 3.11 from PyPI alone (the torch set too: torch's PyPI wheels for Linux
x86_64) with a fixed --exclude-newer and the same --only-binary :all:; pip-compile can only resolve
for the interpreter it runs in, so it locks for this host (CPython 3.11, --only-binary :all:).
pip's and uv's configuration files are ignored, so both ask PyPI itself.

Goals (Structure issue), checked at the end (exit 1 when one is missed):
  - warm wheelhouse re-lock <= 1.0x uv's cold time, on every set;
  - cold wheelhouse lock <= 1.5x uv's cold time (geometric mean), and no set over 2.0x.

    python -m scripts.bench_plan [--sets web,science,torch] [--repeat 1] [--pip-compile]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.benchutil import tool

PYPI = "https://pypi.org/simple"
EXCLUDE_NEWER = "2025-06-01T00:00:00Z"
PLATFORM, VERSION = "x86_64-manylinux_2_28", "3.11"
SETS = {
    "web": ["fastapi", "uvicorn[standard]", "sqlalchemy", "psycopg[binary]"],
    "science": ["numpy", "scipy", "pandas", "matplotlib", "scikit-learn", "jupyterlab"],
    "torch": ["torch", "transformers"],
}


def env() -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE (set in some shells and CI) would make every run compile wheelhouse from
    # source; an installed wheelhouse has its bytecode, written by the installer, and that is what is measured.
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_")) and k != "PYTHONDONTWRITEBYTECODE"}
    e["PIP_CONFIG_FILE"] = os.devnull
    e["UV_NO_CONFIG"] = "1"
    return e


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    took = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return took


def commands(reqs: list[str], work: Path, cache: Path) -> dict[str, list[str]]:
    req_in = work / "requirements.in"
    req_in.write_text("\n".join(reqs) + "\n")
    return {
        "wheelhouse": [sys.executable, "-m", "bundler", "lock", *reqs, "--only-binary", ":all:", "--python-platform", PLATFORM,
                       "--python-version", VERSION, "--exclude-newer", EXCLUDE_NEWER, "--index-url", PYPI, "-o", str(work / "pylock.toml"),
                       "--cache-dir", str(cache / "wheelhouse"), "--quiet"],
        "uv": [tool("uv", "pip install -e .[test]"), "pip", "compile", str(req_in), "--only-binary", ":all:", "--python-platform", PLATFORM,
               "--python-version", VERSION, "--exclude-newer", EXCLUDE_NEWER, "--index-url", PYPI, "--quiet",
               "--cache-dir", str(cache / "uv"), "-o", str(work / "uv.txt")],
        "pip-compile": [sys.executable, "-m", "piptools", "compile", str(req_in), "--index-url", PYPI, "--quiet",
                        "--cache-dir", str(cache / "pip-tools"), "--pip-args", f"--only-binary :all: --cache-dir {cache / 'pip'}",
                        "-o", str(work / "pc.txt")],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ", ".join(SETS))
    ap.add_argument("--repeat", type=int, default=1, help="repeat each measurement and keep the best")
    ap.add_argument("--pip-compile", action="store_true", help="also time pip-compile (slow; not part of the goals)")
    args = ap.parse_args()
    print(f"target {PLATFORM} / {VERSION}, --exclude-newer {EXCLUDE_NEWER}; pip-compile locks for this host")
    print(f"{'set':<9} {'tool':<12} {'cold s':>8} {'warm s':>8}")
    rows = {}
    for set_name in args.sets.split(","):
        reqs = SETS[set_name]
        tools = ["wheelhouse", "uv", *(["pip-compile"] if args.pip_compile else [])]
        best = {name: [float("inf"), float("inf")] for name in tools}
        # The tools take turns within each repetition, so a change in the machine's speed during the
        # run (a shared VM's can be large) weighs on both sides of a ratio alike.
        for _ in range(args.repeat):
            for name in tools:
                with tempfile.TemporaryDirectory() as tmp:
                    work, cache = Path(tmp) / "w", Path(tmp) / "c"
                    work.mkdir()
                    cmd = commands(reqs, work, cache)[name]
                    best[name][0] = min(best[name][0], timed(cmd, work))
                    best[name][1] = min(best[name][1], timed(cmd, work))
        for name in tools:
            print(f"{set_name:<9} {name:<12} {best[name][0]:8.2f} {best[name][1]:8.2f}", flush=True)
        rows[set_name] = {name: (cold, warm) for name, (cold, warm) in best.items()}
    return report(rows)


def report(rows: dict[str, dict[str, tuple[float, float]]]) -> int:
    """Print wheelhouse's times as ratios to uv's cold time and check the goals; 1 if one is missed."""
    print("\nratios to uv's cold time (lower is better for wheelhouse):")
    cold_ratios, missed = [], []
    for set_name, r in rows.items():
        (wh_cold, wh_warm), uv_cold = r["wheelhouse"], r["uv"][0]
        cold, warm = wh_cold / uv_cold, wh_warm / uv_cold
        cold_ratios.append(cold)
        line = f"  {set_name:<9} cold {cold:.2f}x (<= 2.0)   warm {warm:.2f}x (<= 1.0)"
        if "pip-compile" in r:
            line += f"   pip-compile/wheelhouse cold {r['pip-compile'][0] / wh_cold:.1f}x"
        print(line)
        if cold > 2.0:
            missed.append(f"cold {set_name} {cold:.2f}x > 2.0x")
        if warm > 1.0:
            missed.append(f"warm {set_name} {warm:.2f}x > 1.0x")
    geomean = math.exp(sum(math.log(x) for x in cold_ratios) / len(cold_ratios))
    print(f"  cold geometric mean {geomean:.2f}x (<= 1.5)")
    if geomean > 1.5:
        missed.append(f"cold geometric mean {geomean:.2f}x > 1.5x")
    print("goals met" if not missed else "goals missed: " + "; ".join(missed))
    return 1 if missed else 0

if __name__ == "__main__":
    sys.exit(main())
