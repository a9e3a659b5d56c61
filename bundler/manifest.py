"""The bundle manifest (``bundle.json``) and the completeness proof run before a bundle ships.

``bundle.json`` (its format name and version, and the checks a reader runs, are defined once in
the target-side ``bundler/_target/install.py``, which reads it on the target)::

    {"format": "wheelhouse-bundle", "format-version": 1, "name", "tool", "lock-sha256", "created",
     "smoke": [...], "requirements": [...root requirements...],
     "base": {"name", "lock-sha256", "files": ["wheels/...", ...]},    # a delta bundle only
     "targets": [{"name", "profile": {...}, "requirements": "requirements.txt", "pip": "wheels/pip-...whl",
                  "packages": [{"name", "version", "wheel", "requires-dist": [...], "requires-python"}],
                  "sdists": [{"name", "version", "sdist": "wheels/x-1.0.tar.gz", "requires-dist", "requires-python",
                              "reason", "build-requires": [...], "build-packages": [{...as packages...}]}]}],
     "files": {"<posix path>": {"size", "sha256"}, ...}}      # every file but bundle.json itself

A target's ``sdists`` (omitted when empty) are the locked sdists install.sh builds there, offline:
each with its dependencies (as the lock resolved them) and its build requirements, met by
``build-packages``, wheels of the bundle resolved for that target.

Completeness is pure: it takes each target's packages with the dependency data read from the
wheels themselves and proves that every root requirement and every Requires-Dist that applies on the
target (its markers, the extras asked for) is met inside the bundle by a wheel the target can use,
or by a sdist it builds; and for each such sdist, that its build requirements are met the same way
by its build packages.

``lock-sha256`` is the identity of the bundle: the sha256 of the lock ``wheelhouse pack`` read (the
build's lock), which also names the bundle's top folder (``NAME-<its first 8 hex digits>``). The
bundled ``pylock.toml`` is a rewrite of that lock whose wheels are ``path`` entries into ``wheels/``;
it is listed in ``files`` like every other file, with its own sha256.

A delta bundle (``pack --since OLD``) lists the full set in ``files`` but carries only the files the
old bundle lacks; ``base.files`` names those expected from the old bundle's directory instead.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from packaging.markers import InvalidMarker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bundler._target import install as _installer
from bundler._target.install import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, InstallError, check_manifest
from bundler.errors import BadInput, Incomplete
from bundler.profile import Profile
from bundler.select import filename_tags, requires_python_ok


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``, ``\\n``; bidi and line-separator
    characters as ``\\u202e``), for printing anything read from a bundle (``inspect``, ``verify``).

    The same function the target-side installer uses on what it prints.
    """
    return str(_installer.printable(text))


@dataclass(frozen=True, slots=True, kw_only=True)
class BundledPackage:
    """One installed package of a target, with the dependency data read from its wheel."""

    name: str
    version: str
    wheel: str  # path inside the bundle, e.g. wheels/x-1.0-py3-none-any.whl
    requires_dist: tuple[str, ...]
    requires_python: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "wheel": self.wheel,
                "requires-dist": list(self.requires_dist), "requires-python": self.requires_python}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BundledPackage:
        return cls(name=d["name"], version=d["version"], wheel=d["wheel"], requires_dist=tuple(d.get("requires-dist", ())),
                   requires_python=d.get("requires-python"))


@dataclass(frozen=True, slots=True, kw_only=True)
class BundledSdist:
    """A sdist a target builds at install time, with what building it needs from the bundle."""

    name: str
    version: str
    sdist: str  # path inside the bundle, e.g. wheels/x-1.0.tar.gz
    requires_dist: tuple[str, ...]
    requires_python: str | None
    build_requires: tuple[str, ...]
    build_packages: tuple[BundledPackage, ...]  # the build requirements' closure, for the target
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "sdist": self.sdist, "requires-dist": list(self.requires_dist),
                "requires-python": self.requires_python, "build-requires": list(self.build_requires),
                "build-packages": [p.to_dict() for p in self.build_packages], "reason": self.reason}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BundledSdist:
        return cls(name=d["name"], version=d["version"], sdist=d["sdist"], requires_dist=tuple(d.get("requires-dist", ())),
                   requires_python=d.get("requires-python"), build_requires=tuple(d.get("build-requires", ())),
                   build_packages=tuple(BundledPackage.from_dict(p) for p in d.get("build-packages", ())),
                   reason=d.get("reason", ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class BundledTarget:
    name: str
    profile: Profile
    pip: str | None  # path of the bootstrap pip wheel
    packages: tuple[BundledPackage, ...]
    uv: str | None = None  # path of the uv wheel install.sh prefers, when the lock has one for this target
    sdists: tuple[BundledSdist, ...] = ()  # built on the target by install.sh
    # Bytecode compiled on the builder (bundler.bytecode): the magic number, and wheel path -> archive path.
    bytecode_magic: str | None = None
    bytecode: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "profile": self.profile.to_dict(), "requirements": "requirements.txt", "pip": self.pip,
             "packages": [p.to_dict() for p in self.packages], **({"uv": self.uv} if self.uv else {}),
             **({"sdists": [s.to_dict() for s in self.sdists]} if self.sdists else {})}
        if self.bytecode_magic:
            d["bytecode"] = {"magic": self.bytecode_magic, "files": dict(sorted(self.bytecode.items()))}
        return d

    def sdists_as_packages(self) -> tuple[BundledPackage, ...]:
        """The sdists this target builds, as packages whose ``wheel`` is the sdist's path."""
        return tuple(BundledPackage(name=s.name, version=s.version, wheel=s.sdist, requires_dist=s.requires_dist,
                                    requires_python=s.requires_python) for s in self.sdists)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BundledTarget:
        bc = d.get("bytecode") or {}
        return cls(name=d["name"], profile=Profile.from_dict(d["profile"], origin="bundle.json"), pip=d.get("pip"),
                   packages=tuple(BundledPackage.from_dict(p) for p in d.get("packages", ())), uv=d.get("uv"),
                   sdists=tuple(BundledSdist.from_dict(s) for s in d.get("sdists", ())),
                   bytecode_magic=bc.get("magic"), bytecode=dict(bc.get("files") or {}))


@dataclass(frozen=True, slots=True, kw_only=True)
class Base:
    """What a delta bundle takes from an older bundle: that bundle's name and lock, and the files."""

    name: str
    lock_sha256: str
    files: tuple[str, ...]  # paths in the new bundle's ``files`` that the delta does not carry

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "lock-sha256": self.lock_sha256, "files": sorted(self.files)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    name: str
    tool: str
    lock_sha256: str
    created: str
    smoke: tuple[str, ...]
    requirements: tuple[str, ...]
    targets: tuple[BundledTarget, ...]
    files: dict[str, tuple[int, str]]  # path -> (size, sha256), of the full set (a delta's base files too)
    base: Base | None = None  # set for a delta bundle
    builds: dict[str, Any] = field(default_factory=dict)  # sdist sha256 -> the pure wheel built from it (packsdist)

    @property
    def top(self) -> str:
        """The bundle's top folder: its name and the lock's identity, so bundles unpack side by side."""
        return top_folder(self.name, self.lock_sha256)

    def carried(self) -> dict[str, tuple[int, str]]:
        """The files the bundle itself holds: all of ``files`` but a delta's base files."""
        skip = set(self.base.files) if self.base else set()
        return {p: v for p, v in self.files.items() if p not in skip}

    def to_json(self) -> bytes:
        """Canonical bytes: sorted keys, fixed indentation, trailing newline."""
        doc = {"format": BUNDLE_FORMAT, "format-version": BUNDLE_FORMAT_VERSION, "name": self.name, "tool": self.tool,
               "lock-sha256": self.lock_sha256, "created": self.created, "smoke": list(self.smoke),
               "requirements": list(self.requirements), "targets": [t.to_dict() for t in self.targets],
               "files": {p: {"size": s, "sha256": h} for p, (s, h) in sorted(self.files.items())}}
        if self.base is not None:
            doc["base"] = self.base.to_dict()
        if self.builds:
            doc["builds"] = self.builds
        return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, origin: str = "bundle.json") -> Manifest:
        """Read ``bundle.json`` bytes; refused exactly when the bundle's installer would refuse them
        (the same ``check_manifest``), or when a target's profile is not a valid profile."""
        if len(data) > _installer.MAX_MANIFEST:
            raise BadInput(f"{origin} has {len(data)} bytes, more than a bundle manifest can need")
        try:
            d = _installer.parse_json(data)  # bounded: long numbers and deep nesting are ValueErrors
        except ValueError as e:
            raise BadInput(f"{origin} is not a readable bundle manifest: {printable(str(e)[:200])}") from None
        try:
            check_manifest(d)
        except InstallError as e:
            raise BadInput(f"{origin} is not a usable bundle manifest: {e.message}", hint=e.hint) from None
        try:
            return cls(name=d["name"], tool=d["tool"], lock_sha256=d["lock-sha256"], created=d["created"],
                       smoke=tuple(d.get("smoke", ())), requirements=tuple(d.get("requirements", ())),
                       targets=tuple(BundledTarget.from_dict(t) for t in d["targets"]),
                       files={p: (int(v["size"]), str(v["sha256"])) for p, v in d["files"].items()},
                       base=Base(name=d["base"]["name"], lock_sha256=d["base"]["lock-sha256"],
                                 files=tuple(d["base"]["files"])) if "base" in d else None,
                       builds=dict(d.get("builds") or {}))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise BadInput(f"{origin} is not a readable bundle manifest: {printable(str(e)[:200])}") from None


def top_folder(name: str, lock_sha256: str) -> str:
    """``NAME-<first 8 hex digits of the lock's sha256>``: two bundles of one name unpack side by side."""
    return f"{name}-{lock_sha256[:8]}"


def _req(text: str, where: str) -> Requirement:
    try:
        return _parse_requirement(text)
    except InvalidRequirement as e:
        raise Incomplete(f"{where}: unreadable requirement {text!r}: {e}") from None


@functools.lru_cache(maxsize=4096)
def _parse_requirement(text: str) -> Requirement:
    # A package's Requires-Dist is visited once per extra asked of it and once per target: parse each line once.
    return Requirement(text)


def _applies(req: Requirement, env: Mapping[str, str], extras: Sequence[str]) -> bool:
    if req.marker is None:
        return True
    try:
        return any(req.marker.evaluate({**env, "extra": e}) for e in ("", *extras))
    except InvalidMarker:  # pragma: no cover - Requirement() already parsed it
        return False


def check_complete(target: BundledTarget, roots: Sequence[str]) -> None:
    """Prove ``target`` installs from the bundle alone, the sdists it builds included, and that each
    of those builds from the bundle alone; raise ``Incomplete`` naming what is missing."""
    prof = target.profile
    tags = set(prof.tags)
    problems: list[str] = []
    if target.pip is not None and not set(filename_tags(target.pip.rsplit("/", 1)[-1])) & tags:
        problems.append(f"the bootstrap {target.pip} does not run on {prof.name}")
    if target.uv is not None and not set(filename_tags(target.uv.rsplit("/", 1)[-1])) & tags:
        problems.append(f"the installer {target.uv} does not run on {prof.name}")
    problems += _closure(prof, target.packages, target.sdists_as_packages(), roots, "the requirements")
    for s in target.sdists:
        problems += _closure(prof, s.build_packages, (), s.build_requires, f"the build requirements of {s.sdist.rsplit('/', 1)[-1]}")
    if problems:
        problems = [printable(p) for p in problems]  # names and requirements come from bundle.json
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise Incomplete(f"the bundle is incomplete for target {printable(prof.name)}:\n  {shown}",
                         hint="re-lock so the lock and the wheels agree; nothing was written")


def _closure(prof: Profile, wheels: Sequence[BundledPackage], sdists: Sequence[BundledPackage], roots: Sequence[str],
             asked_by: str) -> list[str]:
    """What keeps ``roots`` from being met on ``prof`` by ``wheels`` (tags checked) and ``sdists`` (built there)."""
    env = dict(prof.markers)
    tags = set(prof.tags)
    problems: list[str] = []
    by_name: dict[str, BundledPackage] = {}
    for p in (*wheels, *sdists):
        if canonicalize_name(p.name) in by_name:
            problems.append(f"{p.name} appears twice for {prof.name} ({by_name[canonicalize_name(p.name)].wheel} and {p.wheel})")
        by_name[canonicalize_name(p.name)] = p
    for p in wheels:
        wheel = p.wheel.rsplit("/", 1)[-1]
        if not set(filename_tags(wheel)) & tags:
            problems.append(f"{wheel} does not install on {prof.name} ({prof.describe()})")
    for p in (*wheels, *sdists):
        if not requires_python_ok(p.requires_python, prof.markers["python_full_version"]):
            problems.append(f"{p.name} {p.version} requires Python {p.requires_python}; {prof.name} runs "
                            f"{prof.markers['python_full_version']}")
    todo: list[tuple[Requirement, str]] = [(r, asked_by) for r in (_req(t, asked_by) for t in roots) if _applies(r, env, ())]
    seen: set[tuple[str, str]] = set()
    while todo:
        req, needed_by = todo.pop()
        name = canonicalize_name(req.name)
        pkg = by_name.get(name)
        if pkg is None:
            problems.append(f"{req} (needed by {needed_by}) is not in the bundle for {prof.name}")
            continue
        try:
            ok = req.url is not None or req.specifier.contains(Version(pkg.version), prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            problems.append(f"{needed_by} needs {req}, but the bundle has {pkg.name} {pkg.version} for {prof.name}")
        for extra in sorted({canonicalize_name(e) for e in req.extras} | {""}):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for text in pkg.requires_dist:
                dep = _req(text, f"{pkg.name} {pkg.version}")
                # The base set is what holds with extra == ""; an extra adds what holds only with it.
                holds = dep.marker is None or dep.marker.evaluate({**env, "extra": extra})
                if not holds or (extra and dep.marker is None):
                    continue
                todo.append((dep, f"{pkg.name} {pkg.version}" + (f"[{extra}]" if extra else "")))
    return problems
