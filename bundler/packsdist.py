"""The sdists of a lock, built on the builder for the bundle, or carried for the target to build.

Each locked sdist is built in isolation with the build requirements the lock records for the
builder (``[[tool.wheelhouse.builds]]``, files already fetched into the cache) and
``SOURCE_DATE_EPOCH``, in parallel and cached by (sdist sha256, environment). A pure result
(``py3-none-any``, ``py2.py3-none-any``) replaces the sdist: the lock pack works from names the built
wheel instead, and the bundle's manifest records sdist sha256 -> wheel sha256 with the environment.

A platform-specific result is discarded (the builder is not the target): the bundle carries the
sdist itself and, for each target that installs it, the closure of its build requirements resolved
for that target (the lock's per-target pins, fetched like every other file); install.sh builds it
there, offline. So does a sdist the builder cannot build at all (no compiler here, say), with a note:
the target may have what the builder lacks. A target the lock recorded no build environment for
(its build requirements did not resolve there) fails the pack, naming the sdist and the target.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from packaging.utils import parse_wheel_filename

from bundler.build import BuildFailed, EnvFile, build_wheel, env_digest
from bundler.cache import BlobStore
from bundler.errors import BundlerError
from bundler.fsutil import read_regular
from bundler.locktool import Lock, LockedPackage, LockedWheel
from bundler.sdist import BadSdist, read_facts
from bundler.wheelmeta import BadMetadata, metadata_from_zip, parse_metadata

PURE = {"py3-none-any", "py2.py3-none-any"}
_MAX_METADATA = 16 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetBuild:
    """A locked sdist the bundle carries for one target to build at install time."""

    name: str
    version: str
    sdist: LockedWheel
    requires: tuple[str, ...]  # the build requirements (PEP 518 ``requires`` and the backend's dynamic ones)
    env: tuple[LockedWheel, ...]  # their closure, resolved for the target
    requires_dist: tuple[str, ...]
    requires_python: str | None
    reason: str  # why it is not built here


@dataclass(frozen=True, slots=True, kw_only=True)
class SdistOutcome:
    """What pack does with the lock's sdists: the lock it packs, the manifest's record of pure builds,
    what each target builds itself, and notes for the user."""

    lock: Lock
    built: dict[str, Any]  # sdist sha256 -> {sdist, wheel, wheel-sha256, environment, build-requires}
    on_target: Mapping[str, tuple[TargetBuild, ...]]  # target name -> sdists it builds, by name
    notes: tuple[str, ...] = ()


def is_pure(filename: str) -> bool:
    """Whether a wheel filename is tagged for any platform and any Python 3 (``py3-none-any`` and kin)."""
    tags = {str(t) for t in parse_wheel_filename(filename)[3]}
    return bool(tags) and all(t.endswith("-none-any") and t.startswith("py") for t in tags) and "py3-none-any" in tags


def _blob(store: BlobStore, w: LockedWheel, what: str) -> Path:
    found = store.verified(w.sha256, w.size)
    if found is None:
        raise BundlerError(f"{w.filename} ({what}) is not in the cache {store.root}",
                           hint="run 'wheelhouse fetch LOCK' first (with the same --cache-dir)")
    return found


def _try_build(job: tuple[Path, str, list[EnvFile], Path]) -> Path | BuildFailed:
    try:
        return build_wheel(job[0], job[1], job[2], job[3])
    except BuildFailed as e:  # the target may have what the builder lacks: the caller decides
        return e


def _sdist_metadata(store: BlobStore, pkg: LockedPackage, sdist_path: Path, wheel: Path | None) -> tuple[tuple[str, ...], str | None]:
    """(Requires-Dist, Requires-Python) of a sdist carried to the target: from the wheel the builder
    built (the same hook the lock asked), else PEP 643 static PKG-INFO, else the metadata the lock
    cached when it ran the ``prepare_metadata_for_build_wheel`` hook."""
    assert pkg.sdist is not None
    try:
        if wheel is not None:
            with open(wheel, "rb") as f:
                data = metadata_from_zip(f, pkg.name)
        else:
            data = read_facts(sdist_path).static_metadata
            cached = store.root / "sdist-metadata" / f"{pkg.sdist.sha256}.metadata"
            if data is None and cached.is_file():
                data = read_regular(cached, _MAX_METADATA)
        if data is None:
            raise BundlerError(f"the dependencies of {pkg.sdist.filename} are not known here: it has no static metadata, "
                               f"and the cache {store.root} holds none from the lock",
                               hint="pack with the --cache-dir the lock was made with, or run 'wheelhouse build'")
        meta = parse_metadata(data)
    except (BadMetadata, BadSdist, OSError) as e:
        raise BundlerError(f"cannot read the metadata of {pkg.sdist.filename}: {e}") from None
    return tuple(str(r) for r in meta.requires_dist), meta.requires_python


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def with_built_wheels(lock: Lock, store: BlobStore) -> SdistOutcome:
    """Build every sdist of ``lock`` on this machine: pure results replace the sdist in the lock
    returned; the others, and those that do not build here, are carried for the targets that install
    them (see the module docstring). A lock without sdists comes back unchanged."""
    sdists = [pkg for pkg in lock.packages if pkg.sdist is not None and any(f == pkg.sdist.filename for f in pkg.targets.values())]
    if not sdists:
        return SdistOutcome(lock=lock, built={}, on_target={})
    jobs = []
    for pkg in sdists:
        assert pkg.sdist is not None
        build = lock.builds.get(pkg.sdist.sha256)
        if build is None:
            raise BundlerError(f"the lock does not record how to build {pkg.sdist.filename}", hint="lock again")
        files = [EnvFile(filename=w.filename, sha256=w.sha256, path=_blob(store, w, f"to build {pkg.sdist.filename}"))
                 for w in build.builder]
        jobs.append((_blob(store, pkg.sdist, "an sdist"), pkg.sdist.sha256, files, store.root))
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        results = list(pool.map(_try_build, jobs))
    built: dict[str, Any] = {}
    replaced: dict[str, LockedPackage] = {}
    on_target: dict[str, list[TargetBuild]] = {}
    notes: list[str] = []
    for pkg, (sdist_path, sha, files, _), result in zip(sdists, jobs, results):
        assert pkg.sdist is not None
        if isinstance(result, Path) and is_pure(result.name):
            data = result.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            store.put_bytes(digest, data)
            new = LockedWheel(filename=result.name, url=store.path(digest).as_uri(), sha256=digest, size=len(data), upload_time=None)
            targets = {t: (result.name if f == pkg.sdist.filename else f) for t, f in pkg.targets.items()}
            replaced[pkg.name] = dataclasses.replace(pkg, wheels=(*pkg.wheels, new), sdist=None, targets=targets)
            built[sha] = {"sdist": pkg.sdist.filename, "wheel": result.name, "wheel-sha256": digest,
                          "environment": env_digest(files), "build-requires": sorted(f"{f.filename} {f.sha256}" for f in files)}
            continue
        if isinstance(result, Path):
            reason = f"the builder built {result.name}, a wheel for its own platform only"
        else:
            reason = "the builder could not build it"
        requires_dist, requires_python = _sdist_metadata(store, pkg, sdist_path, result if isinstance(result, Path) else None)
        record = lock.builds[sha]
        for target in sorted(t for t, f in pkg.targets.items() if f == pkg.sdist.filename):
            env = record.targets.get(target)
            if env is None:
                cause = "" if isinstance(result, Path) else f" (and it does not build on this machine: {result.message})"
                raise BundlerError(f"{pkg.sdist.filename} must be built on target {target} ({reason}), but the lock has no "
                                   f"build environment for {target}: its build requirements ({', '.join(record.requires)}) "
                                   f"did not resolve for that target{cause}",
                                   hint=f"offer wheels of {pkg.name}'s build requirements for {target} (or a wheel of {pkg.name} "
                                   "itself, with --find-links) and lock again")
            on_target.setdefault(target, []).append(TargetBuild(
                name=pkg.name, version=pkg.version, sdist=pkg.sdist, requires=record.requires, env=env,
                requires_dist=requires_dist, requires_python=requires_python, reason=reason))
        users = ", ".join(sorted(t for t, f in pkg.targets.items() if f == pkg.sdist.filename))
        why = (f"it builds {result.name} here, for this platform only" if isinstance(result, Path)
               else f"it does not build on this machine ({_last_line(result.message)})")
        notes.append(f"{pkg.sdist.filename}: {why}; the bundle carries the sdist and its build requirements for {users}, "
                     "where install.sh builds it (a C compiler and the Python headers are needed there)")
    packages = tuple(replaced.get(p.name, p) for p in lock.packages)
    return SdistOutcome(lock=dataclasses.replace(lock, packages=packages), built=built,
                        on_target={t: tuple(sorted(b, key=lambda x: x.name)) for t, b in on_target.items()}, notes=tuple(notes))
