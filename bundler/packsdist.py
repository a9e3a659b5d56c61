"""The sdists of a lock, built on the builder for the bundle.

Each locked sdist is built in isolation with the build requirements the lock records for the
builder (``[[tool.wheelhouse.builds]]``, files already fetched into the cache) and
``SOURCE_DATE_EPOCH``, in parallel and cached by (sdist sha256, environment). A pure result
(``py3-none-any``, ``py2.py3-none-any``) replaces the sdist: the lock pack works from names the built
wheel instead, and the bundle's manifest records sdist sha256 -> wheel sha256 with the environment.
A platform-specific result is not what the target can run; carrying such an sdist with its target-side
build requirements for install.sh to build there is not implemented yet, and pack says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from packaging.utils import parse_wheel_filename

from bundler.build import EnvFile, build_many, env_digest
from bundler.cache import BlobStore
from bundler.errors import BundlerError
from bundler.locktool import Lock, LockedPackage, LockedWheel

PURE = {"py3-none-any", "py2.py3-none-any"}


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


def with_built_wheels(lock: Lock, store: BlobStore) -> tuple[Lock, dict[str, Any]]:
    """``lock`` with every sdist replaced by the pure wheel built from it, and the record of those builds
    for the manifest (sdist sha256 -> {sdist, wheel, wheel-sha256, environment}). A lock without
    sdists comes back unchanged (and an empty record)."""
    sdists = [pkg for pkg in lock.packages if pkg.sdist is not None and any(f == pkg.sdist.filename for f in pkg.targets.values())]
    if not sdists:
        return lock, {}
    jobs = []
    for pkg in sdists:
        assert pkg.sdist is not None
        build = lock.builds.get(pkg.sdist.sha256)
        if build is None:
            raise BundlerError(f"the lock does not record how to build {pkg.sdist.filename}", hint="lock again")
        files = [EnvFile(filename=w.filename, sha256=w.sha256, path=_blob(store, w, f"to build {pkg.sdist.filename}"))
                 for w in build.builder]
        jobs.append((_blob(store, pkg.sdist, "an sdist"), pkg.sdist.sha256, files))
    built = build_many(jobs, store.root)
    record: dict[str, Any] = {}
    replaced: dict[str, LockedPackage] = {}
    for pkg, (_, sha, files), wheel in zip(sdists, jobs, built):
        assert pkg.sdist is not None
        if not is_pure(wheel.name):
            raise BundlerError(f"{pkg.sdist.filename} builds {wheel.name}, a wheel for the builder's platform only; "
                               "building it on the target from the bundle is not supported yet",
                               hint=f"build a wheel of {pkg.name} on a machine like the target and add it with --find-links")
        data = wheel.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        store.put_bytes(digest, data)
        new = LockedWheel(filename=wheel.name, url=store.path(digest).as_uri(), sha256=digest, size=len(data), upload_time=None)
        targets = {t: (wheel.name if f == pkg.sdist.filename else f) for t, f in pkg.targets.items()}
        replaced[pkg.name] = dataclasses.replace(pkg, wheels=(*pkg.wheels, new), sdist=None, targets=targets)
        record[sha] = {"sdist": pkg.sdist.filename, "wheel": wheel.name, "wheel-sha256": digest,
                       "environment": env_digest(files), "build-requires": sorted(f"{f.filename} {f.sha256}" for f in files)}
    packages = tuple(replaced.get(p.name, p) for p in lock.packages)
    return dataclasses.replace(lock, packages=packages), record
