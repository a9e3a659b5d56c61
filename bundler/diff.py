"""``wheelhouse diff OLD NEW``: what changes between two bundles or locks, for review before a bundle
crosses the gap.

Per target: packages added, removed and changed (old -> new version), license changes (from the
bundles' SBOMs; a lock says nothing of licenses, so a lock against a bundle shows none), and the
bytes of the new files the old side lacks, which is what has to be carried over. Bundles are read without unpacking; locks are read as ``wheelhouse fetch`` reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundler.errors import BadBundle, BadInput
from bundler.fsutil import read_regular

_MAX_MEMBER = 16 << 20  # bundle.json and sbom.cdx.json are read into memory


@dataclass(slots=True)
class Side:
    """One side of a diff: per target, project -> (version, file name); file sizes by sha256."""

    targets: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    files: dict[str, int | None] = field(default_factory=dict)  # sha256 -> size
    licenses: dict[tuple[str, str], str] = field(default_factory=dict)
    has_licenses: bool = False  # a bundle with an SBOM; a lock does not say, which is no change


def load(path: Path) -> Side:
    """A lock (``*.toml``), a bundle archive or an unpacked bundle directory, as a ``Side``."""
    if not path.exists():
        raise BadInput(f"no such bundle or lock: {path}")
    if path.is_dir():
        return _from_bundle(_read_member(path, "bundle.json"), _read_member(path, "sbom.cdx.json", required=False), path)
    if path.suffix == ".toml":
        return _from_lock(path)
    manifest, sbom = _archive_members(path)
    return _from_bundle(manifest, sbom, path)


def _from_lock(path: Path) -> Side:
    from bundler.locktool import read_lock

    lock = read_lock(path)
    side = Side()
    for prof in lock.profiles:
        side.targets[prof.name] = {pkg.name: (pkg.version, w.filename) for pkg, w in lock.for_target(prof.name)}
    for pkg in lock.packages:
        for w in pkg.wheels:
            side.files[w.sha256] = w.size
    for _, w in lock.bootstrap.values():  # the installer's pip crosses the gap too
        side.files[w.sha256] = w.size
    return side


def _from_bundle(manifest: bytes | None, sbom: bytes | None, where: Path) -> Side:
    from bundler.manifest import Manifest
    from bundler.sbom import licenses_of

    if manifest is None:
        raise BadInput(f"{where} has no bundle.json: not a wheelhouse bundle")
    m = Manifest.from_json(manifest, origin=f"{where}/bundle.json")
    side = Side(licenses=licenses_of(sbom) if sbom else {}, has_licenses=sbom is not None)
    for t in m.targets:
        side.targets[t.name] = {p.name: (p.version, p.wheel.rsplit("/", 1)[-1]) for p in (*t.packages, *t.sdists_as_packages())}
    for rel, (size, sha) in m.files.items():
        if rel.startswith("wheels/"):
            side.files[sha] = size
    return side


def _read_member(folder: Path, name: str, *, required: bool = True) -> bytes | None:
    try:
        return read_regular(folder / name, _MAX_MEMBER)
    except FileNotFoundError:
        if required:
            raise BadInput(f"{folder} has no {name}: not a wheelhouse bundle") from None
        return None
    except OSError as e:
        raise BadInput(f"cannot read {folder / name}: {e.strerror or e}") from None


def _archive_members(path: Path) -> tuple[bytes | None, bytes | None]:
    from bundler.archive import open_archive

    found: dict[str, bytes] = {}
    try:
        with open_archive(path) as archive:
            for entry, stream in archive:
                base = entry.name.split("/", 1)[-1]
                if stream is not None and entry.name.count("/") == 1 and base in ("bundle.json", "sbom.cdx.json"):
                    if entry.size > _MAX_MEMBER:
                        raise BadInput(f"{path}: {entry.name} is larger than {_MAX_MEMBER >> 20} MiB")
                    found[base] = stream.read(entry.size)
                if len(found) == 2:
                    break
    except BadBundle as e:
        raise BadInput(e.message) from None
    return found.get("bundle.json"), found.get("sbom.cdx.json")


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    name: str
    old: str | None  # version; None when added
    new: str | None  # version; None when removed


def compare(old: Side, new: Side) -> dict[str, Any]:
    """The differences as plain data (what ``--json`` prints)."""
    targets: dict[str, Any] = {}
    for name in sorted(set(old.targets) | set(new.targets)):
        a, b = old.targets.get(name, {}), new.targets.get(name, {})
        added = [{"name": p, "version": b[p][0]} for p in sorted(set(b) - set(a))]
        removed = [{"name": p, "version": a[p][0]} for p in sorted(set(a) - set(b))]
        changed = [{"name": p, "old": a[p][0], "new": b[p][0]} for p in sorted(set(a) & set(b)) if a[p][0] != b[p][0]]
        licenses = []
        for p in sorted(set(a) & set(b)) if old.has_licenses and new.has_licenses else ():
            la, lb = old.licenses.get((p, a[p][0])), new.licenses.get((p, b[p][0]))
            if la != lb and (la or lb):
                licenses.append({"name": p, "old": la, "new": lb})
        for p in sorted(set(b) - set(a)) if new.has_licenses else ():
            if new.licenses.get((p, b[p][0])):
                licenses.append({"name": p, "old": None, "new": new.licenses[(p, b[p][0])]})
        targets[name] = {"only-in": "new" if name not in old.targets else "old" if name not in new.targets else None,
                         "added": added, "removed": removed, "changed": changed, "licenses": licenses}
    carried = {sha: size for sha, size in new.files.items() if sha not in old.files}
    identical = set(old.files) == set(new.files) and all(
        not (t["added"] or t["removed"] or t["changed"] or t["only-in"]) for t in targets.values())
    return {"identical": identical, "targets": targets, "new-files": len(carried),
            "new-bytes": sum(size or 0 for size in carried.values()),
            "unknown-sizes": sum(1 for size in carried.values() if size is None)}


def render(result: dict[str, Any]) -> str:
    """The differences for a reviewer, one line per package."""
    from bundler.manifest import printable
    from bundler.progress import human

    lines = []
    for name, t in result["targets"].items():
        head = f"target {name}" + (f" (only in the {t['only-in']} side)" if t["only-in"] else "")
        body = ([f"  + {a['name']} {a['version']}" for a in t["added"]] + [f"  - {r['name']} {r['version']}" for r in t["removed"]]
                + [f"  ~ {c['name']} {c['old']} -> {c['new']}" for c in t["changed"]]
                + [f"  license {x['name']}: {x['old'] or 'none'} -> {x['new'] or 'none'}" for x in t["licenses"]])
        lines += [head, *(body or ["  no package changes"])]
    unknown = f" (and {result['unknown-sizes']} of unknown size)" if result["unknown-sizes"] else ""
    lines.append(f"{result['new-files']} new files, {human(result['new-bytes'])}{unknown} to carry across the gap")
    return "".join(printable(line) + "\n" for line in lines)


def to_json(result: dict[str, Any]) -> str:
    """``--json``: the same data, for tooling."""
    return json.dumps(result, indent=2, sort_keys=True) + "\n"
