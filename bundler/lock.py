"""PEP 751 ``pylock.toml`` and a hashed ``requirements.txt`` out of a plan, and the lock read back.

The lock is modelled with ``packaging.pylock`` (frozen dataclasses whose validation errors name the
path). Several targets go into one lock: ``environments`` lists one marker per target, a package used
by only some targets carries the ``or`` of their markers, and ``[packages.tool.wheelhouse.targets]``
records exactly which wheel each target installs. ``[tool.wheelhouse]`` keeps every target's profile,
so later stages (fetch, pack, install) need nothing but the lock; ``bundler.locktool`` validates it.
"""

from __future__ import annotations

import dataclasses
import io
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import tomli_w
from packaging.markers import Marker
from packaging.pylock import Package, PackageSdist, PackageWheel, Pylock, PylockValidationError
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from bundler import __version__
from bundler.errors import BadInput, ResolutionImpossible
from bundler.fsutil import atomic_write_all
from bundler.index import IndexConfig, redact_url
from bundler.localfiles import local_path
from bundler.locktool import Lock, LockedPackage, LockedWheel, from_pylock, read_lock, read_lock_source
from bundler.profile import Profile

if TYPE_CHECKING:
    from bundler.model import BuildRecord, Pin, Plan

__all__ = ["Lock", "LockedPackage", "LockedWheel", "from_pylock", "read_lock", "read_lock_source", "render_lock",
           "lock_table", "render_requirements", "requirements_path", "target_marker", "to_pylock", "write_lock"]


def target_marker(profile: Profile) -> str:
    """A marker that holds on the target: implementation, OS, machine and Python minor version."""
    m = profile.markers
    return str(Marker(f"implementation_name == '{m['implementation_name']}' and sys_platform == '{m['sys_platform']}' "
                      f"and platform_machine == '{m['platform_machine']}' and python_version == '{m['python_version']}'"))


def _unique_names(plan: Plan) -> list[str]:
    names: list[str] = []
    for t in plan.targets:
        base, n = t.profile.name, 2
        name = base
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


def _wheel(pin: Pin, lock_dir: Path | None = None) -> PackageWheel:
    """A PEP 751 wheel entry: ``url`` for a remote file; ``path`` (relative to the lock's folder, as
    PEP 751 says) for a local file, so no absolute path of the build machine is written."""
    link = pin.link
    if not link.sha256:
        raise BadInput(f"{link.filename} has no sha256 on index {link.index}; wheelhouse locks only hashed files")
    local = local_path(link.url)
    if local is not None:
        where = Path(os.path.relpath(local, lock_dir)).as_posix() if lock_dir is not None else local.as_posix()
        return PackageWheel(name=link.filename, path=where, size=link.size, hashes={"sha256": link.sha256})
    return PackageWheel(name=link.filename, url=redact_url(link.url), upload_time=link.upload_time, size=link.size,
                        hashes={"sha256": link.sha256})


def _sdist(pin: Pin, lock_dir: Path | None = None) -> PackageSdist:
    """A PEP 751 sdist entry, written as ``_wheel`` writes a wheel's (``url``, or ``path`` relative to the lock)."""
    w = _wheel(pin, lock_dir)
    return PackageSdist(name=w.name, url=w.url, path=w.path, upload_time=w.upload_time, size=w.size, hashes=w.hashes)


def build_tables(builds: Sequence[BuildRecord], names: dict[str, str], lock_dir: Path | None) -> list[dict[str, Any]]:
    """``[[tool.wheelhouse.builds]]``: per locked sdist, its build requirements as resolved for the builder
    and for each target (by the lock's target names), so pack and a re-lock build with the same files."""
    out = []
    for b in builds:
        entry: dict[str, Any] = {"sdist": b.sdist, "filename": b.filename, "requires": list(b.requires),
                                 "builder": [_wheel_dict(_wheel(p, lock_dir)) for p in b.builder]}
        entry["targets"] = {names.get(t, t): [_wheel_dict(_wheel(p, lock_dir)) for p in pins] for t, pins in sorted(b.targets.items())}
        out.append(entry)
    return out


def _wheel_dict(w: PackageWheel) -> dict[str, Any]:
    """A wheel as a TOML table inside ``[tool.wheelhouse]`` (the bootstrap pip), as PEP 751 spells it."""
    d: dict[str, Any] = {"name": w.name, **({"url": w.url} if w.url else {"path": w.path})}
    if w.upload_time is not None:
        d["upload-time"] = w.upload_time
    if w.size is not None:
        d["size"] = w.size
    d["hashes"] = dict(w.hashes)
    return d


def _index_dict(index: IndexConfig, lock_dir: Path | None) -> dict[str, Any]:
    """An index as the lock records it: a local folder relative to the lock's folder, like ``path`` entries."""
    d = index.to_dict()
    local = local_path(index.url)
    if local is not None and lock_dir is not None:
        d["url"] = Path(os.path.relpath(local.resolve(), lock_dir)).as_posix()
    return d


def _target_entry(name: str, marker: str, target: Any, lock_dir: Path | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "marker": marker, "profile": {**target.profile.to_dict(), "name": name}}
    if target.bootstrap is not None:  # the pip the installer runs; not part of the installed set
        entry["bootstrap"] = {"name": target.bootstrap.name, "version": target.bootstrap.version,
                              "wheel": _wheel_dict(_wheel(target.bootstrap, lock_dir))}
    if getattr(target, "uv", None) is not None:  # the fast installer install.sh prefers; not installed either
        entry["uv"] = {"name": target.uv.name, "version": target.uv.version, "wheel": _wheel_dict(_wheel(target.uv, lock_dir))}
    return entry


def to_pylock(plan: Plan, *, exclude_newer: datetime | None = None, title: str | None = None,
              smoke: Sequence[str] = (), lock_dir: Path | None = None) -> Pylock:
    """The PEP 751 lock of ``plan``; local files are ``path`` entries relative to ``lock_dir``."""
    names = _unique_names(plan)
    markers = {n: target_marker(t.profile) for n, t in zip(names, plan.targets)}
    grouped: dict[tuple[str, str], dict[str, Pin]] = {}
    for name, target in zip(names, plan.targets):
        for pin in target.pins:
            grouped.setdefault((pin.name, pin.version), {})[name] = pin
    _check_distinguishable(grouped, markers)
    packages = []
    for (pname, version), by_target in sorted(grouped.items()):
        first = next(iter(by_target.values()))
        wheels: dict[str, PackageWheel] = {}
        for pin in by_target.values():
            if pin.link.is_wheel:
                wheels.setdefault(pin.link.filename, _wheel(pin, lock_dir))
        sdist = next((_sdist(p, lock_dir) for p in by_target.values() if not p.link.is_wheel), None)
        marker = None
        if len(by_target) != len(names):
            uniq = sorted({markers[t] for t in by_target})
            marker = Marker(uniq[0] if len(uniq) == 1 else " or ".join(f"({m})" for m in uniq))
        packages.append(Package(
            name=canonicalize_name(pname), version=Version(version), marker=marker,
            index=redact_url(first.link.index_url) if first.link.index != "direct" and not first.link.flat else None,
            wheels=[wheels[k] for k in sorted(wheels)] or None, sdist=sdist,
            tool={"wheelhouse": {"targets": {t: p.link.filename for t, p in sorted(by_target.items())}}}))
    tool: dict[str, Any] = {
        "version": __version__,
        "requirements": list(plan.requirements),
        "indexes": [_index_dict(i, lock_dir) for i in plan.indexes],
        "targets": [_target_entry(n, markers[n], t, lock_dir) for n, t in zip(names, plan.targets)],
    }
    if plan.builds:
        tool["builds"] = build_tables(plan.builds, dict(zip((t.profile.name for t in plan.targets), names)), lock_dir)
    if title:
        tool["name"] = title
    if smoke:
        tool["smoke"] = list(smoke)
    if exclude_newer is not None:
        tool["exclude-newer"] = exclude_newer
    return Pylock(lock_version=Version("1.0"), environments=[Marker(m) for m in sorted(set(markers.values()))],
                  created_by="wheelhouse", packages=packages, tool={"wheelhouse": tool})


def _check_distinguishable(grouped: dict[tuple[str, str], dict[str, Pin]], markers: dict[str, str]) -> None:
    """Two targets with the same marker must not need two versions of one package in one lock."""
    versions: dict[str, dict[str, str]] = {}
    for (pname, version), by_target in grouped.items():
        for t in by_target:
            versions.setdefault(pname, {})[t] = version
    for pname, per_target in versions.items():
        seen: dict[str, tuple[str, str]] = {}
        for t, v in per_target.items():
            m = markers[t]
            if m in seen and seen[m][1] != v:
                other = seen[m][0]
                raise ResolutionImpossible(
                    f"targets {other} and {t} look alike to an installer ({m}) but need different versions of {pname} "
                    f"({seen[m][1]} and {v}); one lock cannot tell them apart",
                    hint="lock these targets in separate runs (-o pylock.<target>.toml)")
            seen[m] = (t, v)


def render_lock(pylock: Pylock) -> str:
    """Serialize a validated lock as TOML: the table written is the one validated."""
    table = lock_table(pylock)
    try:
        Pylock.from_dict(table)  # what ``Pylock.validate`` does, without making the table again
    except PylockValidationError as e:  # a bug in wheelhouse, not in the user's input
        raise RuntimeError(f"generated pylock.toml does not validate: {e}") from e
    return tomli_w.dumps(table)


def lock_table(pylock: Pylock) -> dict[str, Any]:
    """``pylock.to_dict()``, made without the deep copy of every value that ``dataclasses.asdict``
    makes there (most of the time of writing a big lock): values are read, not copied, since the
    table is serialized at once. The same rules as packaging's: ``_`` in a name becomes ``-``, None
    is left out, versions, markers and specifiers become strings. Tests hold both to equality."""
    return _table(pylock)


def _table(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if v is None:
                continue
            if isinstance(v, (Version, Marker, SpecifierSet)):
                v = str(v)
            elif f.name == "environments":
                v = [str(e) for e in v]
            else:
                v = _table(v)
            out[f.name.replace("_", "-")] = v
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(_table(v) for v in value)
    if isinstance(value, dict):
        return {k: _table(v) for k, v in value.items()}
    return value


def render_requirements(lock: Lock) -> str:
    """A pip requirements file with ``--hash`` pins (and markers when several targets share it)."""
    out = io.StringIO()
    out.write(f"# generated by wheelhouse {__version__} for {', '.join(p.name for p in lock.profiles)}\n")
    out.write("# install with: pip install --no-index --find-links WHEELS --require-hashes -r requirements.txt\n")
    sdists = sorted(pkg.name for pkg in lock.packages if pkg.sdist is not None)
    if sdists:  # pip builds those from their hash-pinned sdist; the hashes still admit only the locked files
        out.write(f"# built from source by the installer: {', '.join(sdists)}\n")
    else:
        out.write("--only-binary :all:\n")
    for pkg in lock.packages:
        line = f"{pkg.name}=={pkg.version}"
        if pkg.marker:
            line += f" ; {pkg.marker}"
        hashes = sorted({w.sha256 for w in (*pkg.wheels, *([pkg.sdist] if pkg.sdist else ()))})
        out.write(line + "".join(f" \\\n    --hash=sha256:{h}" for h in hashes) + "\n")
    return out.getvalue()


def requirements_path(lock_path: Path) -> Path:
    """Where ``requirements.txt`` goes beside a lock: ``requirements.NAME.txt`` for ``pylock.NAME.toml``."""
    name = lock_path.name
    stem = name[len("pylock."):-len(".toml")] if name.startswith("pylock.") and name.endswith(".toml") and name != "pylock.toml" else ""
    return lock_path.with_name(f"requirements.{stem}.txt" if stem else "requirements.txt")


def write_lock(plan: Plan, output: Path, *, exclude_newer: datetime | None = None, title: str | None = None,
               smoke: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write ``output`` (pylock) and ``requirements.txt`` beside it, both or neither.

    For ``pylock.NAME.toml`` the requirements file is ``requirements.NAME.txt``. What is written is
    first read back through the same validator every other lock goes through.
    """
    lock_dir = output.parent.resolve()
    pylock = to_pylock(plan, exclude_newer=exclude_newer, title=title, smoke=smoke, lock_dir=lock_dir)
    lock_text = render_lock(pylock)
    req_text = render_requirements(from_pylock(pylock, origin=str(output), base=lock_dir))
    req_path = requirements_path(output)
    try:
        atomic_write_all([(output, lock_text.encode()), (req_path, req_text.encode())])
    except OSError as e:  # os.replace names the temporary file first and the final one second
        raise BadInput(f"cannot write {e.filename2 or e.filename or output}: {e.strerror or e}") from None
    return output, req_path
