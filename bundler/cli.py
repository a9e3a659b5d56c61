"""The ``wheelhouse`` command: the commands, their output and exit codes (the only module, with render and progress, that prints)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from bundler.errors import BundlerError, Terminated, UsageError, on_sigterm
from bundler.options import main_parser
from bundler.progress import FetchProgress, PackProgress, ResolveProgress, err as _err, human as _human

# In the package, so a bare `wheelhouse build` works after a plain `pip install` (= recipes/default.toml).
DEFAULT_RECIPE = Path(__file__).resolve().parent / "recipes" / "default.toml"


# The commands: flags in, one call into bundler.app, results printed. --------------------------


def cmd_profile(args: argparse.Namespace) -> int:
    from bundler.render import print_presets, print_profile

    if args.profile_command == "list":
        print_presets()
        return 0
    if args.profile_command == "capture":
        from bundler._target import capture_profile  # the one place wheelhouse reads the machine it runs on

        argv = (["-o", args.output] if args.output else []) + (["--name", args.name] if args.name else [])
        return int(capture_profile.main(argv))
    if args.profile_command == "show":
        from bundler.app import host_profile
        from bundler.profile import profile_for_platform, resolve_profile

        if args.profile:
            prof = resolve_profile(args.profile, host=host_profile)
        elif args.python_platform and args.python_version:
            prof = profile_for_platform(args.python_platform, args.python_version)
        else:
            raise UsageError("profile show needs PROFILE, or --python-platform and --python-version")
        print_profile(prof, tags_only=args.tags, as_json=args.json)
        return 0
    raise UsageError("profile needs an action: capture, show or list")


def _job(args: argparse.Namespace, *, need_requirements: bool = True) -> Any:
    from bundler.app import host_profile
    from bundler.job import build_job

    job = build_job(positional=getattr(args, "inputs", []), req_files=getattr(args, "requirement", []),
                    constraint_files=getattr(args, "constraint", []), profile_specs=args.profile, platform=args.python_platform,
                    version=args.python_version, index_url=args.index_url, extra_index_urls=args.extra_index_url,
                    find_links=args.find_links, named=args.index, pins=args.pin, pre=args.pre, exclude_newer=args.exclude_newer,
                    default_recipe=DEFAULT_RECIPE if DEFAULT_RECIPE.is_file() else None, torch_backend=args.torch_backend,
                    torch_index=args.torch_index, need_requirements=need_requirements, host=host_profile,
                    only_binary=getattr(args, "only_binary", []), no_binary=getattr(args, "no_binary", []))
    if not getattr(args, "quiet", False):
        if job.torch is not None:
            _err(f"torch backend {job.torch.backend}: {job.torch.reason}")
        for warning in job.warnings:
            _err(f"warning: {warning}")
    return job


def _network(args: argparse.Namespace, trust: Any = None) -> Any:
    from bundler.app import Network
    from bundler.cache import default_cache_dir

    cache = None if args.no_cache else Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    return Network(cache_dir=cache, refresh=args.refresh, cert=args.cert, jobs=args.jobs, offline=args.offline, trust=trust)


def _lock(args: argparse.Namespace, output: Path, *, temporary: bool = False, outputs: Sequence[Path] = ()) -> Any:
    """Plan the job ``args`` describe and write its lock to ``output``, printing the summary."""
    from bundler.transport import Trust

    trust = None if args.offline else Trust(args.cert).preload()  # ready by the first request
    from bundler import app

    job = _job(args)
    app.refuse_overwriting(outputs, job.files)
    progress = ResolveProgress(not args.quiet)
    try:
        result = app.lock(job, output, _network(args, trust), progress=progress, upgrade=args.upgrade,
                          upgrade_packages=args.upgrade_package)
    finally:
        progress.close()
    if not args.quiet:
        for line in [*(f"warning: {w}" for w in result.warnings), *(f"note: {n}" for n in result.notes)]:
            _err(line)
        for t in result.plan.targets:
            _err(f"{t.profile.name}: {len(t.pins)} packages ({t.profile.describe()})")
            if t.bootstrap is None:
                _err(f"  note: no index offers a pip wheel for {t.profile.name}; 'wheelhouse pack' needs one for the installer")
            for pin in t.pins if args.verbose else ():
                _err(f"  {pin.name}=={pin.version}  {pin.link.filename}")
        what = "locked" if temporary else f"wrote {result.lock_path} and {result.requirements_path}"
        _err(f"{what} in {result.elapsed:.1f}s ({result.requests} requests)")
    return result


def cmd_lock(args: argparse.Namespace) -> int:
    from bundler.app import check_output

    output = Path(args.output)
    check_output(output, "pylock.toml")
    _lock(args, output)
    return 0


def _store(args: argparse.Namespace) -> Any:
    from bundler.cache import BlobStore, default_cache_dir

    return BlobStore(Path(args.cache_dir) if args.cache_dir else default_cache_dir())


def _run_fetch(specs: Sequence[Any], args: argparse.Namespace, dest: Path | None) -> Any:
    """Fetch ``specs`` with the download flags in ``args``; print the summary unless quiet."""
    from bundler import app
    from bundler.fetch import FetchOptions, parse_rate

    if args.jobs < 1 or args.retries < 0 or not args.timeout > 0:
        raise UsageError("--jobs must be at least 1, --retries 0 or more and --timeout positive")
    options = FetchOptions(jobs=args.jobs, per_host=args.jobs, retries=args.retries, timeout=args.timeout, cert=args.cert,
                           http2=args.http2, limit_rate=parse_rate(args.limit_rate) if args.limit_rate else None,
                           offline=args.offline)
    progress = FetchProgress(args.quiet)
    try:
        report = app.fetch(specs, _store(args), options, dest=dest, reporter=progress)
    finally:
        progress.close()
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

    _run_fetch(lock_files(read_lock(args.lock)), args, Path(args.dest) if args.dest else None)
    return 0


def _pack(args: argparse.Namespace, lock_path: Path, output: Path) -> Any:
    from bundler import app
    from bundler.bytecode import bytecode_lines

    since = Path(args.since) if getattr(args, "since", None) else None
    key = Path(args.sign_key) if args.sign_key else None
    with PackProgress(args.quiet) as progress:  # a bar on a terminal, a line every few seconds when piped
        result = app.pack(lock_path, _store(args), output, fmt=args.format, level=args.level, since=since, sign_key=key,
                          progress=progress, bytecode=None if args.no_bytecode else [Path(p) for p in args.bytecode_python])
    print(f"{result.sha256}  {output.name}")  # even with -q: what the site checks after carrying the bundle over
    for note in result.notes:  # sdists carried for the target to build: even with -q, it needs a compiler there
        _err(f"note: {note}")
    if not args.quiet:
        m = result.manifest
        wheels = sorted(p for p in m.files if p.startswith("wheels/"))
        _err("\n".join(f"  {w}" for w in wheels)) if args.verbose and wheels else None
        _err(f"wrote {output} and {output.name}.sha256: {_human(result.size)}, {len(wheels)} wheels for "
             f"{', '.join(t.name for t in m.targets)}")
        _err("\n".join(bc)) if (bc := bytecode_lines(m.targets, args.no_bytecode)) else None
        _err(f"on the target: tar -xf {output.name} && sh {m.top}/install.sh" + (f" --with {m.base.name}" if m.base else ""))
    return result


def cmd_pack(args: argparse.Namespace) -> int:
    from bundler.app import check_output

    output = Path(args.output)
    check_output(output, "bundle.tar.zst")
    _pack(args, Path(args.lock), output)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    import tempfile

    from bundler.app import check_output, plan_files

    output = Path(args.output)
    check_output(output, "bundle.tar.zst")
    if args.lock_output:
        check_output(Path(args.lock_output), "pylock.toml")
    if args.no_cache:
        raise UsageError("build needs the cache for the fetched files; drop --no-cache (or give --cache-dir)")
    with tempfile.TemporaryDirectory(prefix="wheelhouse-build-") as tmp:
        lock_path = Path(args.lock_output) if args.lock_output else Path(tmp) / "pylock.toml"
        result = _lock(args, lock_path, temporary=not args.lock_output, outputs=[output])
        _run_fetch(plan_files(result.plan), args, None)
        _pack(args, result.lock_path, output)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from bundler.bundle import read_bundle
    from bundler.render import print_bundle

    path = Path(args.bundle)
    reading = read_bundle(path, want_metadata=False, manifest_only=True)
    if reading.manifest is None:
        raise BundlerError(f"{path} has no readable bundle.json" + (f": {reading.problems[0]}" if reading.problems else ""))
    print_bundle(reading.manifest, as_json=args.json)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from bundler.bundle import verify
    from bundler.manifest import printable

    path = Path(args.bundle)  # verify names a missing bundle
    reading = verify(path, with_bundle=Path(args.with_bundle) if args.with_bundle else None, trust=Path(args.trust) if args.trust else None)
    m = reading.manifest
    assert m is not None
    print(printable(f"{path}: OK - {len(m.files)} files match bundle.json, complete for {', '.join(t.name for t in m.targets)}"))
    print(printable(reading.authenticity()))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from bundler import app

    result = app.explain(_job(args, need_requirements=False), args.package, _network(args))
    for report in result.reports:
        print(report)
    return 0 if result.found else 1


def cmd_diff(args: argparse.Namespace) -> int:
    from bundler import diff

    result = diff.compare(diff.load(Path(args.old)), diff.load(Path(args.new)))
    sys.stdout.write(diff.to_json(result) if args.json else diff.render(result))
    return 0 if result["identical"] else 1


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "profile": cmd_profile, "lock": cmd_lock, "fetch": cmd_fetch, "pack": cmd_pack, "build": cmd_build,
    "inspect": cmd_inspect, "verify": cmd_verify, "diff": cmd_diff, "explain": cmd_explain}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``wheelhouse`` with ``argv``; return the exit status."""
    for stream in (sys.stdout, sys.stderr):  # an ASCII or Latin-1 terminal gets escapes, not a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = main_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # requirements may follow options: `lock numpy --python-version 3.11 scipy`
            if args.command not in ("lock", "build") or any(e.startswith("-") for e in extra):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            args.inputs = [*args.inputs, *extra]
    except SystemExit as e:
        return int(e.code or 0)
    if not args.command:
        parser.print_help()
        return 2
    previous = on_sigterm()
    try:
        return COMMANDS[args.command](args)
    except BundlerError as e:
        _err(f"wheelhouse: error: {e.message}")
        if e.hint:
            _err(f"hint: {e.hint}")
        return e.exit_code
    except Terminated:
        _err("wheelhouse: terminated")
        return 143
    except KeyboardInterrupt:
        _err("wheelhouse: interrupted")
        return 130
    except BrokenPipeError:  # `wheelhouse inspect B | head`: the reader left; say nothing more
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stdout's flush at exit would fail again
        except OSError:
            pass
        return 1
    except Exception as e:  # a bug in wheelhouse: still one line, with the traceback on request
        if os.environ.get("WHEELHOUSE_DEBUG"):
            raise
        _err(f"wheelhouse: error: unexpected {type(e).__name__}: {e} (a bug; WHEELHOUSE_DEBUG=1 shows the traceback)")
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
