"""PEP 751 ``pylock.toml`` and a hashed ``requirements.txt`` out of a plan, and the lock read back.

Several targets go into one lock: ``environments`` lists one marker per target, a package used by
only some targets carries the ``or`` of their markers, and ``[packages.tool.wheelhouse.targets]``
records exactly which wheel each target installs. ``[tool.wheelhouse]`` keeps every target's
profile, so later stages (fetch, pack, install) need nothing but the lock.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import tomllib
import tomli_w
from packaging.pylock import Pylock, PylockValidationError

from bundler import __version__
from bundler.errors import BadInput, ResolutionImpossible
from bundler.httpcache import atomic_write_all
from bundler.index import redact_url
from bundler.inputs import parse_toml
from bundler.profile import Profile

if TYPE_CHECKING:  # the readers of a lock (fetch, pack) need not load the resolver
    from bundler.plan import Pin, Plan


def target_marker(profile: Profile) -> str:
    """A marker that holds on the target: implementation, OS, machine and Python minor version."""
    m = profile.markers
    return (f"implementation_name == '{m['implementation_name']}' and sys_platform == '{m['sys_platform']}' "
            f"and platform_machine == '{m['platform_machine']}' and python_version == '{m['python_version']}'")


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedWheel:
    filename: str
    url: str
    sha256: str
    size: int | None
    upload_time: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedPackage:
    name: str
    version: str
    index: str | None
    marker: str | None
    wheels: tuple[LockedWheel, ...]
    targets: dict[str, str]  # target name -> wheel filename


@dataclass(frozen=True, slots=True, kw_only=True)
class Lock:
    """A lock as wheelhouse reads it back."""

    profiles: tuple[Profile, ...]
    packages: tuple[LockedPackage, ...]
    requirements: tuple[str, ...]
    bootstrap: dict[str, tuple[str, LockedWheel]] = field(default_factory=dict)  # target -> (pip version, wheel)
    smoke: tuple[str, ...] = ()
    name: str | None = None

    def for_target(self, target: str) -> list[tuple[LockedPackage, LockedWheel]]:
        """The (package, wheel) pairs installed on ``target``."""
        out = []
        for pkg in self.packages:
            fname = pkg.targets.get(target)
            if fname:
                out.append((pkg, next(w for w in pkg.wheels if w.filename == fname)))
        return out


def _unique_names(plan: Plan) -> list[str]:
    names: list[str] = []
    for t in plan.targets:
        base, n = t.profile.name, 2
        name = base
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


def _wheel_entry(pin: Pin) -> dict[str, Any]:
    link = pin.link
    if not link.sha256:
        raise BadInput(f"{link.filename} has no sha256 on index {link.index}; wheelhouse locks only hashed files")
    entry: dict[str, Any] = {"name": link.filename, "url": redact_url(link.url)}
    if link.upload_time is not None:
        entry["upload-time"] = link.upload_time
    if link.size is not None:
        entry["size"] = link.size
    entry["hashes"] = {"sha256": link.sha256}
    return entry


def _target_entry(name: str, marker: str, target: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "marker": marker, "profile": {**target.profile.to_dict(), "name": name}}
    if target.bootstrap is not None:  # the pip the installer runs; not part of the installed set
        entry["bootstrap"] = {"name": target.bootstrap.name, "version": target.bootstrap.version,
                              "wheel": _wheel_entry(target.bootstrap)}
    return entry


def lock_dict(plan: Plan, *, exclude_newer: datetime | None = None, title: str | None = None,
              smoke: Sequence[str] = ()) -> dict[str, Any]:
    """The pylock.toml document for ``plan`` as a dict (TOML-serializable)."""
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
        wheels: dict[str, dict[str, Any]] = {}
        for pin in by_target.values():
            wheels.setdefault(pin.link.filename, _wheel_entry(pin))
        pkg: dict[str, Any] = {"name": pname, "version": version}
        if len(by_target) != len(names):
            uniq = sorted({markers[t] for t in by_target})
            pkg["marker"] = uniq[0] if len(uniq) == 1 else " or ".join(f"({m})" for m in uniq)
        if first.link.index != "direct":
            pkg["index"] = redact_url(first.link.index_url)
        pkg["wheels"] = [wheels[k] for k in sorted(wheels)]
        pkg["tool"] = {"wheelhouse": {"targets": {t: p.link.filename for t, p in sorted(by_target.items())}}}
        packages.append(pkg)
    tool: dict[str, Any] = {
        "version": __version__,
        "requirements": list(plan.requirements),
        "indexes": [i.to_dict() for i in plan.indexes],
        "targets": [_target_entry(n, markers[n], t) for n, t in zip(names, plan.targets)],
    }
    if title:
        tool["name"] = title
    if smoke:
        tool["smoke"] = list(smoke)
    if exclude_newer is not None:
        tool["exclude-newer"] = exclude_newer
    doc: dict[str, Any] = {"lock-version": "1.0"}
    doc["environments"] = sorted(set(markers.values()))
    doc["created-by"] = "wheelhouse"
    doc["packages"] = packages
    doc["tool"] = {"wheelhouse": tool}
    return doc


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


def render_lock(doc: dict[str, Any]) -> str:
    """Serialize and validate a lock document with ``packaging.pylock`` (errors name the path)."""
    text = tomli_w.dumps(doc)
    try:
        Pylock.from_dict(tomllib.loads(text))
    except PylockValidationError as e:  # a bug in wheelhouse, not in the user's input
        raise RuntimeError(f"generated pylock.toml does not validate: {e}") from e
    return text


def render_requirements(doc: dict[str, Any]) -> str:
    """A pip requirements file with ``--hash`` pins (and markers when several targets share it)."""
    out = io.StringIO()
    targets = [t["name"] for t in doc["tool"]["wheelhouse"]["targets"]]
    out.write(f"# generated by wheelhouse {__version__} for {', '.join(targets)}\n")
    out.write("# install with: pip install --no-index --find-links WHEELS --require-hashes -r requirements.txt\n")
    out.write("--only-binary :all:\n")
    for pkg in doc["packages"]:
        line = f"{pkg['name']}=={pkg['version']}"
        if "marker" in pkg:
            line += f" ; {pkg['marker']}"
        hashes = sorted({w["hashes"]["sha256"] for w in pkg["wheels"]})
        out.write(line + "".join(f" \\\n    --hash=sha256:{h}" for h in hashes) + "\n")
    return out.getvalue()


def write_lock(plan: Plan, output: Path, *, exclude_newer: datetime | None = None, title: str | None = None,
               smoke: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write ``output`` (pylock) and ``requirements.txt`` beside it, both or neither.

    For ``pylock.NAME.toml`` the requirements file is ``requirements.NAME.txt``.
    """
    doc = lock_dict(plan, exclude_newer=exclude_newer, title=title, smoke=smoke)
    lock_text = render_lock(doc)
    req_text = render_requirements(doc)
    name = output.name
    stem = name[len("pylock."):-len(".toml")] if name.startswith("pylock.") and name.endswith(".toml") and name != "pylock.toml" else ""
    req_path = output.with_name(f"requirements.{stem}.txt" if stem else "requirements.txt")
    try:
        atomic_write_all([(output, lock_text.encode()), (req_path, req_text.encode())])
    except OSError as e:  # os.replace names the temporary file first and the final one second
        raise BadInput(f"cannot write {e.filename2 or e.filename or output}: {e.strerror or e}") from None
    return output, req_path


def read_lock(path: str | Path) -> Lock:
    """Read a wheelhouse-written pylock.toml back (validated with ``packaging.pylock``)."""
    return read_lock_source(path)[0]


def read_lock_source(path: str | Path) -> tuple[Lock, dict[str, Any], bytes]:
    """The lock, its TOML document and its bytes, from one read (pack needs all three)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise BadInput(f"cannot read lock {p}: {e.strerror or e}") from None
    data = parse_toml(raw, p, "lock")
    try:
        Pylock.from_dict(data)
    except PylockValidationError as e:
        raise BadInput(f"lock {p} is not a valid PEP 751 lock: {e}") from None
    tool = data.get("tool", {}).get("wheelhouse")
    if not isinstance(tool, dict) or "targets" not in tool:
        raise BadInput(f"lock {p} was not written by wheelhouse (no [tool.wheelhouse] targets)")
    profiles = tuple(Profile.from_dict(t["profile"], origin=f"{p}: tool.wheelhouse.targets") for t in tool["targets"])
    packages = []
    for pkg in data["packages"]:
        wheels = tuple(_locked_wheel(w) for w in pkg.get("wheels", []))
        packages.append(LockedPackage(name=pkg["name"], version=pkg["version"], index=pkg.get("index"), marker=pkg.get("marker"),
                                      wheels=wheels, targets=dict(pkg.get("tool", {}).get("wheelhouse", {}).get("targets", {}))))
    names = {prof.name for prof in profiles}
    for pkg in packages:
        listed = {w.filename for w in pkg.wheels}
        for target, fname in pkg.targets.items():
            if target not in names or fname not in listed:
                raise BadInput(f"lock {p}: package {pkg.name} says target {target!r} installs {fname!r}, but "
                               + ("the lock has no such target" if target not in names else "lists no such wheel"),
                               hint="the lock was edited by hand or damaged: lock again")
    bootstrap = {t["name"]: (t["bootstrap"]["version"], _locked_wheel(t["bootstrap"]["wheel"]))
                 for t in tool["targets"] if "bootstrap" in t}
    lock = Lock(profiles=profiles, packages=tuple(packages), requirements=tuple(tool.get("requirements", [])),
                bootstrap=bootstrap, smoke=tuple(tool.get("smoke", [])), name=tool.get("name"))
    return lock, data, raw


def _locked_wheel(w: dict[str, Any]) -> LockedWheel:
    return LockedWheel(filename=w["name"], url=w["url"], sha256=w["hashes"]["sha256"], size=w.get("size"),
                       upload_time=w.get("upload-time"))
