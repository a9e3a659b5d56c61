"""A PEP 751 lock read back for fetch and pack: ``packaging.pylock`` for the standard part, and a
small validator for wheelhouse's own ``[tool.wheelhouse]`` tables whose errors name the path
(``tool.wheelhouse.targets[1].profile``).

A lock is outside input (it may have been edited, or written by another tool), so every value that
later reaches a generated file or a command line is checked here: digests, filenames, target
names, requirement strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from packaging.pylock import Package, PackageSdist, PackageWheel, Pylock, PylockValidationError
from packaging.requirements import InvalidRequirement, Requirement

from bundler.errors import BadInput
from bundler.localfiles import local_path
from bundler.profile import Profile
from bundler.validate import dist_filename, http_url, parse_toml, read_regular, sha256_hex, target_name, version

MAX_LOCK = 64 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedWheel:
    """One file a lock names: where it comes from and the digest it must have."""

    filename: str
    url: str  # http(s), or a file: URL for a PEP 751 ``path`` entry (resolved against the lock's folder)
    sha256: str
    size: int | None
    upload_time: datetime | None
    path: str | None = None  # the ``path`` as the lock wrote it (relative to the lock's folder)


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedPackage:
    name: str
    version: str
    index: str | None
    marker: str | None
    wheels: tuple[LockedWheel, ...]
    targets: Mapping[str, str]  # target name -> wheel (or sdist) filename
    sdist: LockedWheel | None = None  # the PEP 751 sdist entry, for targets no wheel serves

    @property
    def files(self) -> tuple[LockedWheel, ...]:
        """The wheels, then the sdist if there is one."""
        return (*self.wheels, *((self.sdist,) if self.sdist is not None else ()))


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedBuild:
    """How a locked sdist is built: its build requirements, as files for the builder and for each target."""

    sdist: str  # sha256
    filename: str
    requires: tuple[str, ...]
    builder: tuple[LockedWheel, ...]
    targets: Mapping[str, tuple[LockedWheel, ...]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Lock:
    """A lock as wheelhouse reads it back."""

    profiles: tuple[Profile, ...]
    packages: tuple[LockedPackage, ...]
    requirements: tuple[str, ...]
    bootstrap: Mapping[str, tuple[str, LockedWheel]] = field(default_factory=dict)  # target -> (pip version, wheel)
    uv: Mapping[str, tuple[str, LockedWheel]] = field(default_factory=dict)  # target -> (uv version, wheel), when any
    smoke: tuple[str, ...] = ()
    name: str | None = None
    exclude_newer: datetime | None = None
    builds: Mapping[str, LockedBuild] = field(default_factory=dict)  # sdist sha256 -> how to build it

    def for_target(self, target: str) -> list[tuple[LockedPackage, LockedWheel]]:
        """The (package, wheel) pairs installed on ``target``."""
        out = []
        for pkg in self.packages:
            fname = pkg.targets.get(target)
            if fname:
                out.append((pkg, next(w for w in pkg.files if w.filename == fname)))
        return out


def read_lock(path: str | Path) -> Lock:
    """Read a wheelhouse-written pylock.toml back (validated with ``packaging.pylock``)."""
    return read_lock_source(path)[0]


def read_lock_source(path: str | Path) -> tuple[Lock, bytes]:
    """The lock and its bytes, from one read (pack ships the very bytes it checked)."""
    p = Path(path)
    try:
        raw = read_regular(p, MAX_LOCK)
    except OSError as e:
        raise BadInput(f"cannot read lock {p}: {e.strerror or e}") from None
    data = parse_toml(raw, p, "lock")
    try:
        pylock = Pylock.from_dict(data)
    except PylockValidationError as e:
        raise BadInput(f"lock {p} is not a valid PEP 751 lock: {e}") from None
    return from_pylock(pylock, origin=str(p), base=p.parent.resolve()), raw


def from_pylock(pylock: Pylock, *, origin: str, base: Path) -> Lock:
    """wheelhouse's view of a PEP 751 lock; ``BadInput`` naming ``origin`` and the path when the
    lock lacks what wheelhouse needs or holds a value that is not well-formed. Relative ``path``
    entries are resolved against ``base``, the lock's folder."""
    tool = (pylock.tool or {}).get("wheelhouse")
    if not isinstance(tool, Mapping) or "targets" not in tool:
        raise BadInput(f"lock {origin} was not written by wheelhouse (no [tool.wheelhouse] targets)")
    t = _Table(tool, f"lock {origin}: tool.wheelhouse")
    targets = [_Table(x, f"{t.where}.targets[{i}]") for i, x in enumerate(t.list("targets", Mapping, required=True))]
    profiles = []
    for tt in targets:
        name = target_name(tt.get("name", str, required=True), f"{tt.where}.name")
        prof = Profile.from_dict(dict(tt.get("profile", Mapping, required=True)), origin=f"{tt.where}.profile")
        if prof.name != name:
            raise BadInput(f"{tt.where}: profile name {prof.name!r} differs from the target name {name!r}")
        profiles.append(prof)
    names = [prof.name for prof in profiles]
    if len(set(names)) != len(names):
        raise BadInput(f"{t.where}.targets: a target name appears twice")
    packages = tuple(_package(pkg, f"lock {origin}: packages[{i}]", set(names), base) for i, pkg in enumerate(pylock.packages))
    bootstrap = {prof.name: _tool_wheel(tt, "bootstrap", "pip", base) for tt, prof in zip(targets, profiles) if "bootstrap" in tt.data}
    uv = {prof.name: _tool_wheel(tt, "uv", "uv", base) for tt, prof in zip(targets, profiles) if "uv" in tt.data}
    requirements = tuple(_requirement(r, f"{t.where}.requirements[{i}]") for i, r in enumerate(t.list("requirements", str)))
    return Lock(profiles=tuple(profiles), packages=packages, requirements=requirements, bootstrap=bootstrap, uv=uv,
                smoke=tuple(t.list("smoke", str)), name=t.get("name", str),
                exclude_newer=t.get("exclude-newer", datetime), builds=_builds(t, set(names), base))


def _file_table(data: Any, where: str, base: Path) -> LockedWheel:
    """A wheel written as a TOML table (``lock._wheel_dict``), read back like a PEP 751 wheel entry."""
    wheel = _Table(data, where)
    hashes = wheel.get("hashes", Mapping, required=True)
    name = wheel.get("name", str, required=True)
    try:
        pw = PackageWheel(name=name, url=wheel.get("url", str), path=wheel.get("path", str), size=wheel.get("size", int),
                          upload_time=wheel.get("upload-time", datetime), hashes=dict(hashes))
    except TypeError as e:
        raise BadInput(f"{where}: {e}") from None
    return _wheel(pw, where, name.split("-", 1)[0], base)


def _builds(t: _Table, targets: set[str], base: Path) -> dict[str, LockedBuild]:
    """``[[tool.wheelhouse.builds]]`` read back, keyed by the sdist's sha256."""
    out = {}
    for i, raw in enumerate(t.list("builds", Mapping)):
        b = _Table(raw, f"{t.where}.builds[{i}]")
        sha = sha256_hex(b.get("sdist", str, required=True), f"{b.where}.sdist")
        per_target = {}
        for name, files in (b.get("targets", Mapping) or {}).items():
            if name not in targets or not isinstance(files, list):
                raise BadInput(f"{b.where}.targets.{name}: no such target, or not a list of wheels")
            per_target[name] = tuple(_file_table(f, f"{b.where}.targets.{name}[{j}]", base) for j, f in enumerate(files))
        out[sha] = LockedBuild(sdist=sha, filename=dist_filename(b.get("filename", str, required=True), f"{b.where}.filename"),
                               requires=tuple(_requirement(r, f"{b.where}.requires[{j}]") for j, r in enumerate(b.list("requires", str))),
                               builder=tuple(_file_table(f, f"{b.where}.builder[{j}]", base)
                                             for j, f in enumerate(b.list("builder", Mapping))),
                               targets=per_target)
    return out


def _tool_wheel(tt: _Table, key: str, project: str, base: Path) -> tuple[str, LockedWheel]:
    """A target's installer wheel (``bootstrap`` pip, ``uv``): its version and the hashed wheel."""
    b = _Table(tt.get(key, Mapping), f"{tt.where}.{key}")
    wheel = _Table(b.get("wheel", Mapping, required=True), f"{b.where}.wheel")
    hashes = wheel.get("hashes", Mapping, required=True)
    try:
        pw = PackageWheel(name=wheel.get("name", str), url=wheel.get("url", str), path=wheel.get("path", str),
                          size=wheel.get("size", int), upload_time=wheel.get("upload-time", datetime), hashes=dict(hashes))
    except TypeError as e:
        raise BadInput(f"{wheel.where}: {e}") from None
    return version(b.get("version", str, required=True), f"{b.where}.version"), _wheel(pw, wheel.where, project, base)


def _package(pkg: Package, where: str, targets: set[str], base: Path) -> LockedPackage:
    if pkg.version is None:
        raise BadInput(f"{where}: {pkg.name} has no version; wheelhouse installs only pinned releases")
    wheels = tuple(_wheel(w, f"{where}.wheels[{i}]", pkg.name, base) for i, w in enumerate(pkg.wheels or ()))
    sdist = _wheel(pkg.sdist, f"{where}.sdist", pkg.name, base) if pkg.sdist is not None else None
    tool = _Table((pkg.tool or {}).get("wheelhouse", {}), f"{where}.tool.wheelhouse")
    chosen = dict(tool.get("targets", Mapping) or {})
    listed = {w.filename for w in wheels} | ({sdist.filename} if sdist else set())
    for target, fname in chosen.items():
        if not isinstance(fname, str):
            raise BadInput(f"{where}.tool.wheelhouse.targets.{target} has the wrong type ({type(fname).__name__})")
        if target not in targets or fname not in listed:
            raise BadInput(f"{where}: package {pkg.name} says target {target!r} installs {fname!r}, but "
                           + ("the lock has no such target" if target not in targets else "lists no such wheel"),
                           hint="the lock was edited by hand or damaged: lock again")
    return LockedPackage(name=str(pkg.name), version=str(pkg.version), index=pkg.index,
                         marker=str(pkg.marker) if pkg.marker is not None else None, wheels=wheels, targets=chosen,
                         sdist=sdist)


def _wheel(w: PackageWheel | PackageSdist, where: str, project: str, base: Path) -> LockedWheel:
    try:
        filename = w.filename  # PEP 751: derived from the URL or path when ``name`` is absent
    except PylockValidationError as e:
        raise BadInput(f"{where}: {e}") from None
    filename = dist_filename(filename, f"{where}.name", project=project)
    if "sha256" not in w.hashes:
        raise BadInput(f"{where}: {filename} has no sha256 hash (only {', '.join(sorted(w.hashes)) or 'none'})",
                       hint="wheelhouse verifies every file by sha256: lock with a tool that records it")
    sha = sha256_hex(w.hashes["sha256"], f"{where}.hashes.sha256")
    if w.url is not None and not w.url.startswith("file:"):
        url = http_url(w.url, f"{where}.url")
    elif w.url is not None or w.path is not None:
        # A local file the lock's author named: read only as a regular file, and only ever kept
        # once its bytes hash right.
        text = w.path if w.path is not None else (local_path(w.url or "") or Path("")).as_posix()
        if not text or any(ord(c) < 32 for c in text):
            raise BadInput(f"{where}: {text!r} is not a usable path")
        url = (base / text).resolve().as_uri()
    else:
        raise BadInput(f"{where}: {filename} has neither url nor path")
    return LockedWheel(filename=filename, url=url, sha256=sha, size=w.size, upload_time=w.upload_time, path=w.path)


def _requirement(text: str, where: str) -> str:
    try:
        Requirement(text)
    except InvalidRequirement as e:
        raise BadInput(f"{where}: {text!r} is not a valid requirement: {e}") from None
    return text


class _Table:
    """A TOML table from outside, read with type checks whose errors name the path."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise BadInput(f"{where} must be a table, not {type(data).__name__}")
        self.data = data
        self.where = where

    def get(self, key: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
        value = self.data.get(key)
        if value is None:
            if required:
                raise BadInput(f"{self.where}.{key} is missing")
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BadInput(f"{self.where}.{key} has the wrong type ({type(value).__name__})")
        return value

    def list(self, key: str, item: type, *, required: bool = False) -> list[Any]:
        value = self.get(key, list, required=required) or []
        for i, v in enumerate(value):
            if not isinstance(v, item):
                raise BadInput(f"{self.where}.{key}[{i}] has the wrong type ({type(v).__name__})")
        return value
