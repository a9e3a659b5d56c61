"""The ``wheelhouse`` command: argument parsing, output and exit codes (the only module that prints)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from bundler import __version__
from bundler.errors import BadInput, BundlerError, UsageError

# Shipped inside the package (bundler/recipes/), so that `wheelhouse build` with no arguments works
# after a plain `pip install`; recipes/default.toml in the repository is the same file.
DEFAULT_RECIPE = Path(__file__).resolve().parent / "recipes" / "default.toml"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # exit 2 with our format, no usage dump noise
        self.print_usage(sys.stderr)
        print(f"wheelhouse: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _add_target_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("target (the machine that will install the result)")
    g.add_argument("--profile", action="append", default=[], metavar="NAME|FILE",
                   help="a profile captured on the target, a preset (see 'wheelhouse profile list'), or 'host' for the "
                        "Python running wheelhouse; repeatable")
    g.add_argument("--python-platform", metavar="PLAT",
                   help="uv-style platform, e.g. x86_64-manylinux_2_28, aarch64-apple-darwin, x86_64-pc-windows-msvc")
    g.add_argument("--python-version", metavar="X.Y[.Z]", help="target Python version (3.11 means 3.11.0)")


def _add_index_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("indexes (a project comes from the first index that has it; never mixed)")
    g.add_argument("-i", "--index-url", metavar="URL", help="the default index (default: pip's, else PyPI; 'pypi' names PyPI)")
    g.add_argument("--extra-index-url", action="append", default=[], metavar="URL", help="searched before the default index; repeatable")
    g.add_argument("-f", "--find-links", action="append", default=[], metavar="PATH|URL", help="a folder or flat HTML page of files; searched first")
    g.add_argument("--index", action="append", default=[], metavar="NAME=URL", help="a named index, for --pin; repeatable")
    g.add_argument("--pin", action="append", default=[], metavar="PATTERN=NAME",
                   help="projects matching PATTERN (glob) come only from index NAME, which serves nothing else")
    g.add_argument("--torch-backend", metavar="auto|cpu|cuXYZ",
                   help="take torch, torchvision, torchaudio, triton and nvidia-* only from the PyTorch index of this "
                        "backend; auto picks the newest CUDA the target profile's NVIDIA driver supports, else cpu")
    g.add_argument("--torch-index", metavar="URL",
                   help="a mirror of https://download.pytorch.org/whl to use for --torch-backend (or WHEELHOUSE_PYTORCH_INDEX)")
    g.add_argument("--cache-dir", metavar="DIR", help="cache for pages and metadata (default: ~/.cache/wheelhouse)")
    g.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    g.add_argument("--refresh", action="store_true",
                   help="revalidate every cached index page (default: reuse pages younger than 10 minutes)")
    g.add_argument("--cert", metavar="FILE", help="CA bundle for TLS (default: SSL_CERT_FILE or the system's)")
    g.add_argument("--jobs", type=int, default=16, metavar="N", help="concurrent index requests (default 16)")


def _add_transfer_args(g: Any) -> None:
    g.add_argument("--limit-rate", metavar="RATE", help="cap the total rate over all transfers, e.g. 500K, 2M, 1G (bytes/s)")
    g.add_argument("--retries", type=int, default=5, metavar="N", help="retries per file after a failure (default 5)")
    g.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="give up on a connection that sends nothing for S seconds, then retry (default 30)")
    g.add_argument("--http2", action="store_true",
                   help="use HTTP/2 where offered: one multiplexed connection per host (default: one HTTP/1.1 connection "
                        "per transfer, faster where each connection is shaped)")


def _add_fetch_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("downloads")
    g.add_argument("--cache-dir", metavar="DIR", help="content-addressed cache shared by all locks (default: ~/.cache/wheelhouse)")
    g.add_argument("--jobs", type=int, default=8, metavar="N", help="concurrent transfers (default 8)")
    g.add_argument("--cert", metavar="FILE", help="CA bundle for TLS (default: SSL_CERT_FILE or the system's)")
    _add_transfer_args(g)


def _add_input_args(p: argparse.ArgumentParser) -> None:
    """What to resolve: shared by lock and build."""
    p.add_argument("inputs", nargs="*", metavar="RECIPE|REQ",
                   help="a recipe (*.toml) and/or requirement strings (default: recipes/default.toml)")
    p.add_argument("-r", "--requirement", action="append", default=[], metavar="FILE",
                   help="requirements file (pip syntax, --hash pins honoured)")
    p.add_argument("-c", "--constraint", action="append", default=[], metavar="FILE", help="constraints file")
    p.add_argument("--pre", action="store_true", help="allow pre-releases")
    p.add_argument("--exclude-newer", metavar="TIMESTAMP", help="ignore files uploaded after this time (RFC 3339 or YYYY-MM-DD)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    p.add_argument("-v", "--verbose", action="store_true", help="list every locked package")


def _add_pack_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="BUNDLE", help="the archive to write, e.g. bundle.tar.zst")
    p.add_argument("--format", choices=("tar.zst", "tar.gz", "tar"),
                   help="archive format (default: from the -o suffix, else tar.zst; tar.gz/tar for targets without zstd)")
    p.add_argument("--level", type=int, metavar="N", help="compression level (default: zstd 1, gzip 6; wheels are compressed already)")


def main_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``wheelhouse`` command."""
    parser = _Parser(prog="wheelhouse", description="Resolve, lock, fetch and pack Python environments for air-gapped target machines.",
                     epilog="Exit status: 0 success, 1 failure explained on stderr, 2 usage error.")
    parser.add_argument("--version", action="version", version=f"wheelhouse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    prof = sub.add_parser("profile", help="capture, show and list target profiles")
    psub = prof.add_subparsers(dest="profile_command", metavar="ACTION", parser_class=_Parser)
    cap = psub.add_parser("capture", help="record this machine's Python as a profile (run it on the target)")
    cap.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    cap.add_argument("--name", help="profile name")
    show = psub.add_parser("show", help="print a profile: facts, markers, tags")
    show.add_argument("profile", nargs="?", metavar="PROFILE", help="preset name or profile file")
    show.add_argument("--python-platform", metavar="PLAT")
    show.add_argument("--python-version", metavar="X.Y[.Z]")
    show.add_argument("--tags", action="store_true", help="print only the tags, one per line, best first")
    show.add_argument("--json", action="store_true", help="print the profile as JSON")
    psub.add_parser("list", help="list the named presets")

    lock = sub.add_parser("lock", help="resolve for the target(s) and write pylock.toml + requirements.txt",
                          description="Resolve the complete dependency closure for each target and write a PEP 751 lock "
                                      "and a hashed requirements.txt beside it.")
    _add_input_args(lock)
    lock.add_argument("-o", "--output", default="pylock.toml", metavar="FILE", help="lock file to write (default: pylock.toml)")
    _add_target_args(lock)
    _add_index_args(lock)

    fetch = sub.add_parser("fetch", help="download every file a lock names into the cache, verified",
                           description="Download every file a lock names (all targets) into the content-addressed cache: "
                                       "concurrent, resumable (Range + If-Range), retried with backoff, rate-limited, and "
                                       "checked against the lock's sha256 and size before anything is kept.")
    fetch.add_argument("lock", metavar="LOCK", help="a pylock.toml written by 'wheelhouse lock'")
    fetch.add_argument("--dest", metavar="DIR", help="also place the verified files in DIR under their file names (as pip download -d)")
    _add_fetch_args(fetch)
    fetch.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary; only errors")

    pk = sub.add_parser("pack", help="pack a lock and its fetched wheels into one reproducible bundle with an installer",
                        description="Check that every wheel of the lock is in the cache and hashes right and that every target's "
                                    "dependencies are met inside the bundle, then write one reproducible archive with "
                                    "install.sh/install.py, bundle.json, the lock, requirements.txt, SHA256SUMS, wheels/ and a "
                                    "static simple/ index.")
    pk.add_argument("lock", metavar="LOCK", help="a pylock.toml written by 'wheelhouse lock' (fetched with 'wheelhouse fetch')")
    _add_pack_args(pk)
    pk.add_argument("--cache-dir", metavar="DIR", help="the cache 'wheelhouse fetch' filled (default: ~/.cache/wheelhouse)")
    pk.add_argument("-q", "--quiet", action="store_true", help="print only errors")

    bd = sub.add_parser("build", help="lock + fetch + pack in one run",
                        description="Resolve for the target(s), fetch every file verified, and pack the bundle. "
                                    "With no recipe or requirement, builds recipes/default.toml.")
    _add_input_args(bd)
    bd.add_argument("--lock-output", metavar="FILE", help="also keep the lock at FILE (requirements.txt beside it)")
    _add_pack_args(bd)
    _add_target_args(bd)
    _add_index_args(bd)
    _add_transfer_args(bd.add_argument_group("downloads"))

    ins = sub.add_parser("inspect", help="list a bundle's targets and packages")
    ins.add_argument("bundle", metavar="BUNDLE", help="a bundle archive or unpacked bundle directory")
    ins.add_argument("--json", action="store_true", help="print bundle.json")
    ver = sub.add_parser("verify", help="check every hash, the member set and completeness of a bundle (exit 1 on any problem)")
    ver.add_argument("bundle", metavar="BUNDLE", help="a bundle archive or unpacked bundle directory")

    exp = sub.add_parser("explain", help="why a project has (or lacks) a usable file for a target")
    exp.add_argument("package", metavar="PACKAGE")
    exp.add_argument("--pre", action="store_true", help="count pre-releases as usable")
    exp.add_argument("--exclude-newer", metavar="TIMESTAMP")
    _add_target_args(exp)
    _add_index_args(exp)
    return parser


# ---------------------------------------------------------------------------------------------


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def cmd_profile(args: argparse.Namespace) -> int:
    from bundler.profile import PRESETS, Profile, profile_for_platform, resolve_profile

    if args.profile_command == "list":
        width = max(len(n) for n in PRESETS)
        for name, (plat, ver, desc) in PRESETS.items():
            print(f"{name:<{width}}  {plat:<24} {ver:<8} {desc}")
        return 0
    if args.profile_command == "capture":
        from bundler._target import capture_profile

        argv = (["-o", args.output] if args.output else []) + (["--name", args.name] if args.name else [])
        return int(capture_profile.main(argv))
    if args.profile_command == "show":
        if args.profile:
            prof: Profile = resolve_profile(args.profile)
        elif args.python_platform and args.python_version:
            prof = profile_for_platform(args.python_platform, args.python_version)
        else:
            raise UsageError("profile show needs PROFILE, or --python-platform and --python-version")
        if args.tags:
            sys.stdout.write("".join(t + "\n" for t in prof.tags))
        elif args.json:
            print(json.dumps(prof.to_dict(), indent=2))
        else:
            print(f"profile   {prof.name}")
            print(f"machine   {prof.describe()}")
            for k, v in prof.facts.to_dict().items():
                print(f"  {k:<16} {v}")
            print("markers")
            for k, v in sorted(prof.markers.items()):
                print(f"  {k:<31} {v!r}")
            print(f"tags      {len(prof.tags)} (best first; --tags lists them all)")
            for t in prof.tags[:8]:
                print(f"  {t}")
        return 0
    raise UsageError("profile needs an action: capture, show or list")


def _open_repository(args: argparse.Namespace, indexes: Sequence[Any]) -> Any:
    from bundler.http import make_client
    from bundler.cache import default_cache_dir
    from bundler.httpcache import PlannerCache
    from bundler.repository import Repository

    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    cache = PlannerCache(None if args.no_cache else Path(args.cache_dir) if args.cache_dir else default_cache_dir())
    if cache.root is not None:
        try:
            cache.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            why = "not a directory" if isinstance(e, FileExistsError) else e.strerror or e
            raise BadInput(f"cannot use cache directory {cache.root}: {why}",
                           hint="give another --cache-dir, or --no-cache") from None
    client = make_client(cert=args.cert, max_connections=max(args.jobs, 4))
    return Repository(indexes, client, cache, jobs=args.jobs, page_ttl=0.0 if args.refresh else 600.0), client


class _Progress:
    """A spinner-style count of pinned packages on a terminal; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=None, unit=" pins", desc="resolving", file=sys.stderr, leave=False, dynamic_ncols=True)

    def __call__(self, candidate: Any) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{candidate.name} {candidate.version}", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _check_output(output: Path, example: str) -> None:
    if output.is_dir():
        raise UsageError(f"-o {output} is a directory; give a file name such as {output / example}")
    if not output.parent.exists():
        raise BundlerError(f"cannot write {output}: directory {output.parent} does not exist")
    if not output.parent.is_dir():
        raise BundlerError(f"cannot write {output}: {output.parent} is not a directory")


def _lock(args: argparse.Namespace, output: Path, *, temporary: bool = False) -> tuple[Any, Path, Path]:
    """Plan the job described by ``args`` and write the lock to ``output``; return (plan, lock, requirements)."""
    from bundler.config import build_job
    from bundler.lock import write_lock
    from bundler.plan import plan

    job = build_job(positional=args.inputs, req_files=args.requirement, constraint_files=args.constraint, profile_specs=args.profile,
                    platform=args.python_platform, version=args.python_version, index_url=args.index_url,
                    extra_index_urls=args.extra_index_url, find_links=args.find_links, named=args.index, pins=args.pin,
                    pre=args.pre, exclude_newer=args.exclude_newer,
                    default_recipe=DEFAULT_RECIPE if DEFAULT_RECIPE.is_file() else None,
                    torch_backend=args.torch_backend, torch_index=args.torch_index)
    if not args.quiet:
        if job.torch is not None:
            _err(f"torch backend {job.torch.backend}: {job.torch.reason}")
        for warning in job.warnings:
            _err(f"warning: {warning}")
    started = time.monotonic()
    repo, client = _open_repository(args, job.indexes)
    progress = _Progress(not args.quiet)
    try:
        direct = {r.url: repo.direct_link(r.url) for r in job.inputs.requirements if r.url}
        result = plan(repo, job.profiles, job.inputs, job.indexes, direct_links=direct, progress=progress, bootstrap=True)
    finally:
        progress.close()
        repo.close()
        client.close()
    from bundler.gpu.checks import check_variants, driver_warnings

    for t in result.targets:
        check_variants(t.pins)  # one torch build per environment: never +cpu next to +cu121
        for warning in driver_warnings(t.pins, t.profile):
            if not args.quiet:
                _err(f"warning: {warning}")
    recipe = job.recipe
    lock_path, req_path = write_lock(result, output, exclude_newer=job.inputs.policy.exclude_newer,
                                     title=recipe.name if recipe and recipe.name else None,
                                     smoke=recipe.smoke if recipe else ())
    if not args.quiet:
        for t in result.targets:
            _err(f"{t.profile.name}: {len(t.pins)} packages ({t.profile.describe()})")
            if t.bootstrap is None:
                _err(f"  note: no index offers a pip wheel for {t.profile.name}; 'wheelhouse pack' needs one for the installer")
            if args.verbose:
                for pin in t.pins:
                    _err(f"  {pin.name}=={pin.version}  {pin.link.filename}")
        took = time.monotonic() - started
        what = "locked" if temporary else f"wrote {lock_path} and {req_path}"
        _err(f"{what} in {took:.1f}s ({repo.requests} requests)")
    return result, lock_path, req_path


def cmd_lock(args: argparse.Namespace) -> int:
    output = Path(args.output)
    _check_output(output, "pylock.toml")
    _lock(args, output)
    return 0


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class _FetchProgress:
    """A byte bar with the files in flight on a terminal, a line every few seconds otherwise, or nothing."""

    def __init__(self, quiet: bool, interval: float = 5.0) -> None:
        import threading

        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.bar: Any = None
        self.lock = threading.Lock()
        self.inflight: dict[str, None] = {}
        self.done = self.total = self.files = 0
        self.interval = interval
        self.last = self.t0 = time.monotonic()

    def start(self, files: int, total_bytes: int) -> None:
        self.files, self.total = files, total_bytes
        self.t0 = self.last = time.monotonic()
        if self.quiet or not files:
            return
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total_bytes or None, unit="B", unit_scale=True, desc=f"fetching {files} files",
                            file=sys.stderr, leave=False, dynamic_ncols=True)
        else:
            _err(f"fetching {files} files" + (f", {_human(total_bytes)}" if total_bytes else ""))

    def file_start(self, spec: Any, offset: int) -> None:
        with self.lock:
            self.inflight[spec.filename] = None
            self._postfix()

    def file_end(self, spec: Any) -> None:
        with self.lock:
            self.inflight.pop(spec.filename, None)
            self._postfix()

    def _postfix(self) -> None:
        if self.bar is not None:
            names = list(self.inflight)
            self.bar.set_postfix_str(", ".join(n.split("-")[0] for n in names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else ""),
                                     refresh=False)

    def advance(self, nbytes: int) -> None:
        with self.lock:
            self.done += nbytes
            if self.bar is not None:
                self.bar.update(nbytes)
            elif not self.quiet and time.monotonic() - self.last >= self.interval:
                self.last = time.monotonic()
                rate = self.done / max(self.last - self.t0, 1e-9)
                of = f" of {_human(self.total)}" if self.total else ""
                _err(f"  {_human(self.done)}{of} at {_human(rate)}/s, {len(self.inflight)} files in flight")

    def retry(self, spec: Any, reason: str, delay: float) -> None:
        if self.quiet:
            return
        line = f"retrying {spec.filename} in {delay:.1f}s: {reason}"
        with self.lock:
            if self.bar is not None:
                self.bar.write(line, file=sys.stderr)
            else:
                _err(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _run_fetch(specs: Sequence[Any], args: argparse.Namespace, dest: Path | None) -> Any:
    """Fetch ``specs`` with the download flags in ``args``; print the summary unless quiet."""
    from bundler.cache import BlobStore
    from bundler.fetch import FetchOptions, fetch_files, parse_rate, place
    from bundler.cache import default_cache_dir

    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.retries < 0:
        raise UsageError("--retries must be 0 or more")
    if not args.timeout > 0:
        raise UsageError("--timeout must be positive")
    options = FetchOptions(jobs=args.jobs, per_host=args.jobs, retries=args.retries, timeout=args.timeout, cert=args.cert,
                           http2=args.http2,
                           limit_rate=parse_rate(args.limit_rate) if args.limit_rate else None)
    root = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"cannot use cache directory {root}: {e.strerror or e}", hint="give another --cache-dir") from None
    progress = _FetchProgress(args.quiet)
    try:
        report = fetch_files(specs, BlobStore(root), options, reporter=progress)
    finally:
        progress.close()
    if dest is not None:
        try:
            place(specs, report, dest)
        except OSError as e:
            raise BadInput(f"cannot place files in {dest}: {e.strerror or e}") from None
    if not args.quiet:
        rate = report.bytes / report.elapsed if report.elapsed > 0 else 0.0
        resumed = f", {_human(report.resumed_bytes)} resumed" if report.resumed_bytes else ""
        _err(f"fetched {report.files} files ({report.downloaded} downloaded, {report.cached} cached): "
             f"{_human(report.bytes)}{resumed}, {report.retries} retries, {report.elapsed:.1f}s, {_human(rate)}/s"
             + (f"; placed in {dest}" if dest is not None else ""))
    return report


def cmd_fetch(args: argparse.Namespace) -> int:
    from bundler.fetch import lock_files
    from bundler.lock import read_lock

    lock = read_lock(args.lock)
    _run_fetch(lock_files(lock), args, Path(args.dest) if args.dest else None)
    return 0


def _store(args: argparse.Namespace) -> Any:
    from bundler.cache import BlobStore
    from bundler.cache import default_cache_dir

    return BlobStore(Path(args.cache_dir) if args.cache_dir else default_cache_dir())


def _pack(args: argparse.Namespace, lock_path: Path, output: Path) -> Any:
    from bundler.pack import pack

    result = pack(lock_path, _store(args), output, fmt=args.format, level=args.level)
    if not args.quiet:
        m = result.manifest
        wheels = sum(1 for p in m.files if p.startswith("wheels/"))
        _err(f"wrote {output}: {_human(result.size)}, {wheels} wheels for {', '.join(t.name for t in m.targets)}")
        _err(f"sha256 {result.sha256}")
        _err(f"on the target: tar -xf {output.name} && sh {m.name}/install.sh")
    return result


def cmd_pack(args: argparse.Namespace) -> int:
    output = Path(args.output)
    _check_output(output, "bundle.tar.zst")
    _pack(args, Path(args.lock), output)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    import tempfile

    from bundler.fetch import FileSpec

    output = Path(args.output)
    _check_output(output, "bundle.tar.zst")
    if args.lock_output:
        _check_output(Path(args.lock_output), "pylock.toml")
    with tempfile.TemporaryDirectory(prefix="wheelhouse-build-") as tmp:
        lock_path = Path(args.lock_output) if args.lock_output else Path(tmp) / "pylock.toml"
        if args.no_cache:
            raise UsageError("build needs the cache for the fetched files; drop --no-cache (or give --cache-dir)")
        result, lock_path, _ = _lock(args, lock_path, temporary=not args.lock_output)
        # The plan's own URLs still carry any credentials the indexes were given; the lock's are redacted.
        pins = [p for t in result.targets for p in (*t.pins, *([t.bootstrap] if t.bootstrap else []))]
        specs = [FileSpec(url=p.link.url, sha256=p.link.sha256, size=p.link.size, filename=p.link.filename) for p in pins]
        _run_fetch(specs, args, None)
        _pack(args, lock_path, output)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from bundler.bundle import read_bundle

    path = Path(args.bundle)
    if not path.exists():
        raise BadInput(f"no such bundle: {path}")
    reading = read_bundle(path, want_metadata=False, manifest_only=True)
    m = reading.manifest
    if m is None:
        raise BundlerError(f"{path} has no readable bundle.json" + (f": {reading.problems[0]}" if reading.problems else ""))
    if args.json:
        sys.stdout.write(m.to_json().decode())
        return 0
    total = sum(size for size, _ in m.files.values())
    print(f"bundle   {m.name}  ({m.tool}, created {m.created}, {len(m.files)} files, {_human(total)})")
    for t in m.targets:
        print(f"target   {t.name}: {t.profile.describe()}" + (f", installer pip {t.pip.split('/')[-1].split('-')[1]}" if t.pip else ""))
    rows = {}
    for t in m.targets:
        for p in t.packages:
            rows.setdefault((p.name, p.version), {})[t.name] = m.files.get(p.wheel, (0, ""))[0]
    if rows:
        width = max(len(n) for n, _ in rows)
        vwidth = max(len(v) for _, v in rows)
        print(f"\n{'package':<{width}}  {'version':<{vwidth}}  {'size':>9}  targets")
        for (n, v), per in sorted(rows.items()):
            size = max(per.values())
            where = "all" if len(per) == len(m.targets) else ", ".join(sorted(per))
            print(f"{n:<{width}}  {v:<{vwidth}}  {_human(size):>9}  {where}")
    if m.smoke:
        print(f"\nsmoke    {'; '.join(m.smoke)}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from bundler.bundle import verify

    path = Path(args.bundle)
    if not path.exists():
        raise BadInput(f"no such bundle: {path}")
    reading = verify(path)
    m = reading.manifest
    assert m is not None
    print(f"{path}: OK — {len(m.files)} files match bundle.json, complete for {', '.join(t.name for t in m.targets)}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from packaging.utils import canonicalize_name

    from bundler.config import build_indexes, build_profiles
    from bundler.diagnose import explain_project
    from bundler.inputs import RequirementSet, parse_timestamp
    from bundler.select import Policy

    profiles = build_profiles(args.profile, args.python_platform, args.python_version, None)
    indexes = build_indexes(index_url=args.index_url, extra_index_urls=args.extra_index_url, find_links=args.find_links,
                            named=args.index, pins=args.pin, recipe=None, reqset=RequirementSet())
    undated: frozenset[str] = frozenset()
    if args.torch_backend:
        from bundler.config import pytorch_base, with_torch_index
        from bundler.gpu.backend import choose_backend

        choice = choose_backend(args.torch_backend, profiles, pre=args.pre, base=pytorch_base(args.torch_index))
        indexes, _ = with_torch_index(indexes, choice, pins=args.pin, recipe=None, from_flag=True)
        undated = frozenset({choice.index_name})
        _err(f"torch backend {choice.backend}: {choice.reason}")
    policy = Policy(allow_pre=args.pre, exclude_newer=parse_timestamp(args.exclude_newer) if args.exclude_newer else None,
                    undated_ok=undated)
    name = canonicalize_name(args.package)
    repo, client = _open_repository(args, indexes)
    try:
        found = repo.all_links(name)
        chosen = repo.project_links(name)
    finally:
        repo.close()
        client.close()
    allowed = repo.sources_for(name)
    for prof in profiles:
        print(explain_project(name, [(i, links) for i, links in found if i in allowed], chosen[0] if chosen else None, prof, policy))
    for index, links in found:
        if links and index not in allowed:
            print(f"\nindex {index.name} has {len(links)} files of {name}, but it is explicit and serves only "
                  f"{', '.join(index.packages or ())}: add --pin '{name}={index.name}' to take {name} from it")
    return 0 if chosen else 1


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "profile": cmd_profile, "lock": cmd_lock, "fetch": cmd_fetch, "pack": cmd_pack, "build": cmd_build,
    "inspect": cmd_inspect, "verify": cmd_verify, "explain": cmd_explain}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``wheelhouse`` with ``argv``; return the exit status."""
    parser = main_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except BundlerError as e:
        _err(f"wheelhouse: error: {e.message}")
        if e.hint:
            _err(f"hint: {e.hint}")
        return e.exit_code
    except KeyboardInterrupt:
        _err("wheelhouse: interrupted")
        return 130
