#!/usr/bin/env python3
"""Benchmark fetching: wheelhouse fetch vs pip download vs parallel curl, rate-cap accuracy, peak memory.

Everything runs on loopback, in one run (issue 3, acceptance item 4):

1. Throughput. ``--files`` wheels of ``--size-mb`` each, served by ``tests/support/faultserver.py`` with every
   connection throttled to ``--rate``, are fetched by ``wheelhouse fetch`` (fresh cache each time), by
   ``pip download --no-deps`` through a PEP 503 index (pip downloads one file after another) and by one
   ``curl`` per file, all started together. Goals: wheelhouse >= 0.9x parallel curl, above pip.
2. ``--limit-rate`` accuracy at two caps over the unthrottled server, several files at once, 10+ s per
   cap. The rate is bytes / the fetch's own elapsed time (the API's report, in a fresh child process);
   the rate over the whole child's wall time (interpreter start included) is printed beside it.
   Goal: within 10% of the cap.
3. Peak memory (max RSS, from ``wait4``) of ``wheelhouse fetch`` on one 100 MB and one 1 GB file.
   Goal: flat in file size, under 150 MB.

The wheels are real (a stored random payload, METADATA, WHEEL, RECORD) and locked with
``wheelhouse lock`` against the index, so fetch reads an ordinary pylock.toml. The index advertises
PEP 658 metadata files, so neither the locker nor pip reads the big wheels for their metadata. The
lock's bootstrap pip is not on this index; fetch does not need it.

    python -m scripts.bench_fetch                 # full run: about 2 minutes, ~2 GB of temp files (peak ~4 GB)
    python -m scripts.bench_fetch --quick         # small files, short windows: about 25 s
    python -m scripts.bench_fetch --files 4 --size-mb 200 --rate 20M --caps 2M,8M --seconds 12 --big-mb 1000
"""

from __future__ import annotations

import argparse
import contextlib
import base64
import hashlib
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from bundler.fetch import parse_rate  # the same --limit-rate grammar wheelhouse reads
from scripts.benchutil import human, tool
from tests.support.faultserver import FaultServer  # stdlib only, made to be imported by benchmarks

PLATFORM, VERSION = "x86_64-manylinux_2_28", "3.11"
MB = 1_000_000
CHUNK = 1 << 20


# -- wheels --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wheel:
    project: str
    filename: str
    path: Path
    metadata: bytes


def _record_hash(digest: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_big_wheel(dest: Path, project: str, payload: int) -> Wheel:
    """A valid wheel with a ``payload``-byte random file stored uncompressed, written in 1 MiB chunks."""
    filename = f"{project}-1.0-py3-none-any.whl"
    dist = f"{project}-1.0.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {project}\nVersion: 1.0\nSummary: bench payload\n".encode()
    small = {
        f"{project}/__init__.py": b'__version__ = "1.0"\n',
        f"{dist}/METADATA": metadata,
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench_fetch\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    path = dest / filename
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        name = f"{project}/__init__.py"
        zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), small[name])
        record.append((name, hashlib.sha256(small[name]).digest(), len(small[name])))
        info = zipfile.ZipInfo(f"{project}/payload.bin", (1980, 1, 1, 0, 0, 0))
        info.file_size = payload
        h = hashlib.sha256()
        with zf.open(info, "w", force_zip64=payload > 1_900_000_000) as out:
            for pos in range(0, payload, CHUNK):
                block = os.urandom(min(CHUNK, payload - pos))
                h.update(block)
                out.write(block)
        record.append((info.filename, h.digest(), payload))
        for name in (f"{dist}/METADATA", f"{dist}/WHEEL"):
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), small[name])
            record.append((name, hashlib.sha256(small[name]).digest(), len(small[name])))
        lines = [f"{n},{_record_hash(d)},{s}" for n, d, s in record] + [f"{dist}/RECORD,,"]
        zf.writestr(zipfile.ZipInfo(f"{dist}/RECORD", (1980, 1, 1, 0, 0, 0)), "\n".join(lines) + "\n")
    return Wheel(project, filename, path, metadata)


# -- servers -------------------------------------------------------------------------------------


class Index:
    """A PEP 503 simple index (text/html, as pip requires) whose links point at the file server."""

    def __init__(self, files: FaultServer) -> None:
        self.files = files
        self.pages: dict[str, bytes] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = owner.pages.get(self.path.split("?")[0].rstrip("/").split("/simple")[-1].strip("/"))
                self.send_response(200 if body is not None else 404)
                body = body if body is not None else b"not found\n"
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/simple/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, wheel: Wheel) -> int:
        """Serve the wheel and its PEP 658 metadata; return the wheel's size."""
        served = self.files.add_file(wheel.filename, path=wheel.path)
        self.files.add_file(wheel.filename + ".metadata", data=wheel.metadata)
        meta = hashlib.sha256(wheel.metadata).hexdigest()
        link = (f'<a href="{html.escape(served.url)}#sha256={served.sha256}" data-dist-info-metadata="sha256={meta}" '
                f'data-core-metadata="sha256={meta}">{html.escape(wheel.filename)}</a>')
        self.pages[wheel.project] = f"<!DOCTYPE html><html><body>{link}</body></html>\n".encode()
        projects = "".join(f'<a href="{p}/">{p}</a>' for p in sorted(k for k in self.pages if k))
        self.pages[""] = f"<!DOCTYPE html><html><body>{projects}</body></html>\n".encode()
        return served.size

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- tools ---------------------------------------------------------------------------------------


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "WHEELHOUSE_"))}
    e.update(PIP_CONFIG_FILE=os.devnull, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        e.pop(k, None)
    return e


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, check=False, env=env(), capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return r


def lock(index: Index, projects: list[str], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    run([tool("wheelhouse"), "lock", "--index-url", index.url, "--python-platform", PLATFORM,
         "--python-version", VERSION, "--no-cache", "-o", str(out), *projects], cwd=out.parent)
    return out


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def check_dir(folder: Path, expected: dict[str, int]) -> None:
    got = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    if any(got.get(k) != v for k, v in expected.items()):
        sys.exit(f"{folder}: expected {expected}, found {got}")


def blob_bytes(cache: Path) -> int:
    return sum(p.stat().st_size for p in (cache / "blobs").rglob("*") if p.is_file())


@contextlib.contextmanager
def scratch(path: Path, *, create: bool = True) -> Iterator[Path]:
    """``path`` emptied (and made, if ``create``) for one run, and removed afterwards."""
    shutil.rmtree(path, ignore_errors=True)
    if create:
        path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- phases --------------------------------------------------------------------------------------


def bench_throughput(work: Path, srv: FaultServer, index: Index, wheels: list[Wheel], sizes: dict[str, int],
                     rate: float, repeat: int) -> dict[str, float]:
    srv.throttle(rate)
    lockfile = lock(index, [w.project for w in wheels], work / "tp" / "pylock.toml")
    total = sum(sizes.values())
    jobs = max(8, len(wheels))

    def wheelhouse() -> float:
        with scratch(work / "tp" / "wh-cache", create=False) as cache:
            secs = timed(lambda: run([tool("wheelhouse"), "fetch", str(lockfile), "--cache-dir", str(cache),
                                      "--jobs", str(jobs), "--quiet"]))
            if blob_bytes(cache) != total:
                sys.exit("wheelhouse fetch did not store every byte")
            return secs

    def pip() -> float:
        with scratch(work / "tp" / "pip", create=False) as dest:
            secs = timed(lambda: run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
                                      "--disable-pip-version-check", "--progress-bar", "off", "-d", str(dest),
                                      "--index-url", index.url, *[w.project for w in wheels]]))
            check_dir(dest, sizes)
            return secs

    def curl() -> float:
        with scratch(work / "tp" / "curl") as dest:
            start = time.perf_counter()
            procs = [subprocess.Popen([tool("curl"), "-s", "-S", "-f", "-o", str(dest / w.filename), srv.url(w.filename)],
                                      env=env()) for w in wheels]
            codes = [p.wait() for p in procs]
            secs = time.perf_counter() - start
            if any(codes):
                sys.exit(f"curl failed: exit codes {codes}")
            check_dir(dest, sizes)
            return secs

    print(f"\n== throughput: {len(wheels)} files x {human(total / len(wheels))}, every connection throttled to "
          f"{human(rate)}/s (ideal with all files at once: {total / len(wheels) / rate:.1f}s) ==")
    def measure(fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        """Wall time, and when the first file request reached the server (start-up and index lookups)."""
        srv.clear_log()
        launched = time.monotonic()
        secs = fn()
        first = min((r.time for r in srv.requests if r.name.endswith(".whl")), default=launched) - launched
        return secs, first

    best: dict[str, float] = {}
    for name, fn in (("curl (parallel)", curl), ("wheelhouse fetch", wheelhouse), ("pip download", pip)):
        runs = [measure(fn) for _ in range(repeat)]
        best[name], first = min(runs)
        extra = f"  (runs: {', '.join(f'{t:.2f}' for t, _ in runs)})" if repeat > 1 else ""
        print(f"  {name:18} {best[name]:7.2f}s  {human(total / best[name]):>10}/s   first file request after "
              f"{first * 1000:4.0f} ms{extra}", flush=True)
    wh, cu, pp = best["wheelhouse fetch"], best["curl (parallel)"], best["pip download"]
    print(f"  wheelhouse / parallel curl throughput: {cu / wh:.2f}x  (goal >= 0.9) {'ok' if cu / wh >= 0.9 else 'MISSED'}")
    print(f"  wheelhouse / pip throughput:           {pp / wh:.2f}x  (goal > 1)   {'ok' if pp / wh > 1 else 'MISSED'}")
    return best


CHILD = r"""
import json, sys, time
from pathlib import Path
from bundler.cache import BlobStore
from bundler.fetch import FetchOptions, fetch_files, lock_files
from bundler.lock import read_lock
specs = lock_files(read_lock(sys.argv[1]))
report = fetch_files(specs, BlobStore(Path(sys.argv[2])), FetchOptions(limit_rate=float(sys.argv[3])))
print(json.dumps({"bytes": report.bytes, "elapsed": report.elapsed}))
"""


def bench_limit_rate(work: Path, srv: FaultServer, index: Index, caps: list[tuple[str, float, list[Wheel]]]) -> None:
    srv.throttle(None)
    print("\n== --limit-rate accuracy (unthrottled server, files fetched concurrently) ==")
    for text, cap, wheels in caps:
        folder = work / f"cap-{text}"
        lockfile = lock(index, [w.project for w in wheels], folder / "pylock.toml")
        cache = folder / "cache"
        start = time.perf_counter()
        r = run([sys.executable, "-c", CHILD, str(lockfile), str(cache), str(cap)], cwd=ROOT)
        wall = time.perf_counter() - start
        shutil.rmtree(cache, ignore_errors=True)
        got = json.loads(r.stdout.strip().splitlines()[-1])
        achieved = got["bytes"] / got["elapsed"]
        err = achieved / cap - 1
        print(f"  --limit-rate {text:>4}: {len(wheels)} files, {human(got['bytes'])} in {got['elapsed']:.2f}s -> "
              f"{human(achieved)}/s, {err:+.1%} vs cap ({'ok' if abs(err) <= 0.10 else 'MISSED'}); "
              f"over the child's wall time {wall:.2f}s: {human(got['bytes'] / wall)}/s ({got['bytes'] / wall / cap - 1:+.1%})",
              flush=True)


def max_rss(cmd: list[str]) -> tuple[int, float]:
    """Run ``cmd``; return its peak RSS in bytes (Linux reports KiB) and its wall time."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert p.stderr is not None
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{err[-2000:].decode(errors='replace')}")
    return usage.ru_maxrss * 1024, time.perf_counter() - start


def bench_memory(work: Path, srv: FaultServer, index: Index, wheels: list[tuple[Wheel, int]]) -> None:
    srv.throttle(None)
    print("\n== peak memory of 'wheelhouse fetch' (unthrottled server, one file) ==")
    peaks = []
    for wheel, size in wheels:
        folder = work / f"mem-{wheel.project}"
        lockfile = lock(index, [wheel.project], folder / "pylock.toml")
        cache = folder / "cache"
        rss, secs = max_rss([tool("wheelhouse"), "fetch", str(lockfile), "--cache-dir", str(cache), "--quiet"])
        if blob_bytes(cache) != size:
            sys.exit("wheelhouse fetch did not store every byte")
        shutil.rmtree(cache, ignore_errors=True)
        peaks.append(rss)
        print(f"  {human(size):>9} file: max RSS {rss / MB:6.1f} MB  ({secs:.1f}s, {human(size / secs)}/s)", flush=True)
    flat = max(peaks) - min(peaks) < 0.1 * min(peaks) + 10 * MB
    under = max(peaks) < 150 * MB
    print(f"  flat in file size: {'ok' if flat else 'MISSED'} (spread {(max(peaks) - min(peaks)) / MB:.1f} MB); "
          f"under 150 MB: {'ok' if under else 'MISSED'}")


# -- main ----------------------------------------------------------------------------------------


def main_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a small version: 4 x 25 MB, 3 s caps, 200 MB/20 MB memory files")
    p.add_argument("--files", type=int, default=4, help="files in the throughput set (default 4)")
    p.add_argument("--size-mb", type=float, help="size of each throughput file in MB (default 200; quick 25)")
    p.add_argument("--rate", default="20M", help="per-connection server throttle for the throughput set (default 20M)")
    p.add_argument("--caps", default="2M,8M", help="the two --limit-rate caps to check (default 2M,8M)")
    p.add_argument("--seconds", type=float, help="how long each cap is measured over (default 12; quick 3)")
    p.add_argument("--cap-files", type=int, default=3, help="files fetched at once under each cap (default 3)")
    p.add_argument("--big-mb", type=float, help="size of the big memory-test file in MB (default 1000; quick 200); "
                                                "the small one is a tenth of it")
    p.add_argument("--repeat", type=int, default=1, help="runs per tool in the throughput test; the best counts")
    p.add_argument("--skip", default="", help="comma-separated phases to skip: throughput, limit, memory")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (its path is printed)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = main_parser().parse_args(argv)
    size_mb = args.size_mb or (25 if args.quick else 200)
    seconds = args.seconds or (3 if args.quick else 12)
    big_mb = args.big_mb or (200 if args.quick else 1000)
    rate = parse_rate(args.rate)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    caps = [(c.strip(), parse_rate(c)) for c in args.caps.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench_fetch-"))
    print(f"wheelhouse fetch benchmark; temporary files in {work}", flush=True)
    srv = FaultServer(work / "served").start()
    index = Index(srv)
    try:
        wheels_dir = work / "wheels"
        wheels_dir.mkdir()
        generated = 0.0
        t0 = time.perf_counter()

        def make(project: str, nbytes: float) -> tuple[Wheel, int]:
            w = make_big_wheel(wheels_dir, project, int(nbytes))
            return w, index.add(w)

        tp = [make(f"tp{i}", size_mb * MB) for i in range(1, args.files + 1)] if "throughput" not in skip else []
        cap_sets = []
        if "limit" not in skip:
            for text, cap in caps:
                each = cap * seconds / args.cap_files
                made = [make(f"cap{text.lower()}f{i}", each) for i in range(1, args.cap_files + 1)]
                cap_sets.append((text, cap, [w for w, _ in made]))
        mem = [make("memsmall", big_mb * MB / 10), make("membig", big_mb * MB)] if "memory" not in skip else []
        generated = time.perf_counter() - t0
        print(f"generated and served {sum(s.stat().st_size for s in wheels_dir.iterdir()) / MB:.0f} MB of wheels "
              f"in {generated:.1f}s; index {index.url}, files {srv.base_url}", flush=True)

        if tp:
            bench_throughput(work, srv, index, [w for w, _ in tp], {w.filename: s for w, s in tp}, rate, args.repeat)
        if cap_sets:
            bench_limit_rate(work, srv, index, cap_sets)
        if mem:
            bench_memory(work, srv, index, mem)
    finally:
        index.close()
        srv.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
