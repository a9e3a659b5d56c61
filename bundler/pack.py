"""Pack a lock and the cached wheels into one reproducible archive with its installer.

The archive holds one directory ``<name>-<first 8 hex of the lock's sha256>/`` (layout in
DESIGN.md), so two bundles written to one file name unpack side by side: the wheels, a static PEP 503
index over them, the lock, requirements.txt, SHA256SUMS, ``bundle.json`` and the target-side
scripts, and ``sbom.cdx.json`` (``bundler.sbom``), signed with ``bundle.json.sig`` when a key is given. The bundled ``pylock.toml`` is the lock rewritten so that every wheel is a ``path`` entry
into ``wheels/`` (``uv pip install -r pylock.toml`` works from the unpacked folder, offline);
``bundle.json``'s ``lock-sha256`` stays the sha256 of the lock pack read.

With ``since`` (an older bundle or lock), a delta bundle: the manifest, lock, index and scripts
describe the full set, but only the wheels the old bundle lacks are carried; ``base.files`` in
``bundle.json`` names the rest, which ``install.sh --with OLD_DIR`` takes from the old bundle. ``plan_bundle`` decides every member and its bytes; ``archive.write_reproducible`` writes
them reproducibly to the byte, with every mtime fixed here (``SOURCE_DATE_EPOCH``, else the lock's
exclude-newer, else its newest upload time) and modes 0644/0755.

The lock's sdists are built here first (``bundler.packsdist``): a pure wheel replaces its sdist; a
sdist that builds only for this platform, or not at all here, is carried in ``wheels/`` with its
build requirements resolved for each target that installs it, and that target's entry in
``bundle.json`` lists it under ``sdists`` for install.sh to build there.

Nothing is written unless every wheel is in the cache with the right sha256 and the completeness
proof holds for every target (the build requirements of the sdists it builds included); the archive is written under a temporary name and renamed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import tomli_w

from packaging.pylock import Pylock, PylockValidationError
from packaging.utils import canonicalize_name

from bundler import __version__
from bundler.archive import FORMATS, Member, SourceChanged, write_reproducible
from bundler.cache import BlobStore
from bundler.errors import BadInput, BundlerError, HashMismatch
from bundler.lock import Lock, LockedWheel, read_lock_source, render_requirements
from bundler.manifest import Base, BundledPackage, BundledSdist, BundledTarget, Manifest, check_complete, top_folder
from bundler.packsdist import with_built_wheels
from bundler.sbom import SBOM, SbomEntry, sbom_json
from bundler.signing import SIGNATURE, sign
from bundler.wheelmeta import BadMetadata, metadata_from_zip, parse_metadata

# Wheels are deflated zips already: zstd 3 makes the science stack 0.5 % smaller than zstd 1 and the
# CUDA torch stack 0.1 % smaller, for about 1.6x the compression time. gzip 1 and 6 cost the same here.
DEFAULT_LEVELS = {"tar.zst": 1, "tar.gz": 6, "tar": 0}
TARGET_DIR = Path(__file__).resolve().parent / "_target"
SCRIPTS = {"install.sh": 0o755, "install.py": 0o644, "capture_profile.py": 0o644, "publish.py": 0o644}
_EPOCH_1980 = 315532800  # zip's earliest time; used when a lock has no date at all


@dataclass(frozen=True, slots=True, kw_only=True)
class PackResult:
    path: Path
    sha256: str
    size: int
    manifest: Manifest  # manifest.top is the folder the archive unpacks to
    notes: tuple[str, ...] = ()  # for the user: sdists carried for the target because they do not build here


def _relocate(wheel: dict[str, Any], known: set[str], where: str) -> None:
    """Point one PEP 751 wheel (or sdist) table at ``wheels/<file>``, the bundle's copy."""
    filename = wheel.get("name") or _basename(wheel)
    if filename not in known:
        raise BundlerError(f"{where}: {filename!r} is not one of the bundle's wheels")
    wheel.pop("url", None)
    wheel.pop("upload-time", None)  # an index's fact about a URL; a path entry has none
    wheel["name"] = filename
    wheel["path"] = f"wheels/{filename}"


def _basename(entry: dict[str, Any]) -> str:
    source = entry.get("url") or entry.get("path") or ""
    return unquote(urlsplit(source).path if "url" in entry else source).rsplit("/", 1)[-1]


def bundled_lock(lock_bytes: bytes, filenames: set[str]) -> bytes:
    """The lock as the bundle ships it: every wheel (the bootstrap pip's too) and every sdist the bundle
    carries a ``path`` entry into ``wheels/``, relative to the lock as PEP 751 says; nothing else changes, and the same lock
    always gives the same bytes."""
    data = tomllib.loads(lock_bytes.decode("utf-8"))
    for i, pkg in enumerate(data.get("packages", [])):
        for j, wheel in enumerate(pkg.get("wheels", [])):
            _relocate(wheel, filenames, f"packages[{i}].wheels[{j}]")
        sdist = pkg.get("sdist")
        if sdist is not None and (sdist.get("name") or _basename(sdist)) in filenames:  # carried for a target to build
            _relocate(sdist, filenames, f"packages[{i}].sdist")
    for i, target in enumerate(data.get("tool", {}).get("wheelhouse", {}).get("targets", [])):
        if "bootstrap" in target:
            _relocate(target["bootstrap"]["wheel"], filenames, f"tool.wheelhouse.targets[{i}].bootstrap.wheel")
        if "uv" in target:
            _relocate(target["uv"]["wheel"], filenames, f"tool.wheelhouse.targets[{i}].uv.wheel")
    try:
        Pylock.from_dict(data).validate()
    except PylockValidationError as e:  # a bug here, not in the input: the lock read validated
        raise RuntimeError(f"the bundled pylock.toml does not validate: {e}") from e
    return tomli_w.dumps(data).encode()


def format_of(output: Path, requested: str | None) -> str:
    """The archive format: as requested, else from the output's suffix, else tar.zst."""
    if requested:
        if requested not in FORMATS:
            raise BadInput(f"unknown --format {requested!r}", hint=f"choose one of {', '.join(FORMATS)}")
        return requested
    name = output.name
    for fmt in FORMATS:
        if name.endswith("." + fmt):
            return fmt
    if name.endswith(".tgz"):
        return "tar.gz"
    return "tar.zst"


def bundle_name(lock: Lock, output: Path) -> str:
    """The top directory inside the archive: the recipe's name, else the output's stem."""
    base = lock.name or re.sub(r"(\.tar(\.zst|\.gz)?|\.tgz)$", "", output.name) or "bundle"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip(".-") or "bundle"


_MAX_MTIME = 8**11 - 1  # eleven octal digits in a ustar header


def _mtime(lock: Lock, source_date_epoch: str | None) -> int:
    if source_date_epoch:
        if not source_date_epoch.strip().isdigit() or int(source_date_epoch) > _MAX_MTIME:
            raise BadInput(f"SOURCE_DATE_EPOCH={source_date_epoch[:40]!r} is not a number of seconds a tar header can hold",
                           hint=f"give seconds since 1970 up to {_MAX_MTIME} (the year 2242)")
        return int(source_date_epoch)
    stamp = lock.exclude_newer
    times = [w.upload_time for p in lock.packages for w in p.wheels if w.upload_time is not None]
    for value in ([stamp] if stamp is not None else []) + ([max(times)] if times else []):
        if isinstance(value, datetime):
            return int((value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp())
    return _EPOCH_1980


def _wheel_metadata(path: Path, project: str, version: str, filename: str) -> tuple[tuple[str, ...], str | None, str | None]:
    """(Requires-Dist, Requires-Python, License-Expression) of a cached wheel, checked against the lock."""
    try:
        with open(path, "rb") as f:
            meta = parse_metadata(metadata_from_zip(f, project))
    except (BadMetadata, OSError) as e:
        raise BundlerError(f"cannot read the metadata of {filename}: {e}") from None
    if canonicalize_name(meta.name) != canonicalize_name(project) or meta.version.split("+")[0] != version.split("+")[0]:
        raise BundlerError(f"{filename} says it is {meta.name} {meta.version}, but the lock names {project} {version}")
    return tuple(str(r) for r in meta.requires_dist), meta.requires_python, meta.license_expression


def sbom_entries(lock: Lock, wheels: dict[str, tuple[LockedWheel, str, str]], licenses: dict[str, str | None],
                 builds: dict[str, Any] | None = None) -> list[SbomEntry]:
    """One SBOM entry per shipped wheel: where it came from (the lock's index for its package; the
    bootstrap pip's own download URL when no package names it), the targets it serves (as an
    installed package or as a target's bootstrap pip), and for a wheel built here the sdist it was
    built from (``builds``: sdist sha256 -> build record)."""
    built = {b["wheel"]: (b["sdist"], sha) for sha, b in (builds or {}).items()}
    index: dict[str, str | None] = {}
    served: dict[str, set[str]] = {}
    for pkg in lock.packages:
        for w in pkg.files:
            index.setdefault(w.filename, pkg.index)
        for target, fn in pkg.targets.items():
            served.setdefault(fn, set()).add(target)
    for target, (_, w) in lock.bootstrap.items():
        served.setdefault(w.filename, set()).add(target)
        if index.get(w.filename) is None and w.url.startswith(("http://", "https://")):
            index[w.filename] = w.url  # never a file: URL, which would name a folder of the build machine
    return [SbomEntry(name=project, version=version, filename=fn, sha256=w.sha256, index=index.get(fn),
                      license=licenses.get(fn), targets=tuple(sorted(served.get(fn, ()))), source=built.get(fn))
            for fn, (w, project, version) in sorted(wheels.items())]


def _simple_index(wheels: dict[str, tuple[str, str]], requires_python: dict[str, str | None]) -> dict[str, bytes]:
    """A static PEP 503 index: simple/index.html and simple/<project>/index.html over ../../wheels/."""
    projects: dict[str, list[str]] = {}
    for filename, (project, _) in wheels.items():
        projects.setdefault(canonicalize_name(project), []).append(filename)
    head = '<!DOCTYPE html>\n<html>\n<head><meta name="pypi:repository-version" content="1.0"><title>{}</title></head>\n<body>\n'
    pages = {"simple/index.html": (head.format("Simple index") + "".join(
        f'<a href="{p}/">{p}</a>\n' for p in sorted(projects)) + "</body>\n</html>\n").encode()}
    for project, files in projects.items():
        links = []
        for fn in sorted(files):
            rp = requires_python.get(fn)
            attr = f' data-requires-python="{html.escape(rp)}"' if rp else ""
            links.append(f'<a href="../../wheels/{quote(fn)}#sha256={wheels[fn][1]}"{attr}>{html.escape(fn)}</a>\n')
        pages[f"simple/{project}/index.html"] = (head.format(f"Links for {project}") + "".join(links) + "</body>\n</html>\n").encode()
    return pages


def _bytecode(targets: list[BundledTarget], blobs: dict[str, tuple[Path, str]], store: BlobStore,
              pythons: Sequence[Path], say: Any = None) -> tuple[list[BundledTarget], dict[str, Path]]:
    """``targets`` with the bytecode compiled on this machine for each CPython target whose version
    it has an interpreter of, and the bundle files that holds (path -> blob); see bundler.bytecode.
    ``blobs`` maps each wheel's bundle path to its blob and sha256."""
    from bundler import bytecode

    files: dict[str, Path] = {}
    found: dict[str, bytecode.Interpreter | None] = {}
    out = []
    for target in targets:
        interp = None
        if target.profile.markers.get("implementation_name") == "cpython":
            version = target.profile.markers.get("python_version", "")
            if version not in found:
                found[version] = bytecode.find_interpreter(version, pythons)  # None: the target compiles (cli says so)
            interp = found[version]
        if interp is None:
            out.append(target)
            continue
        wheels = [*([target.pip] if target.pip else []), *(p.wheel for p in target.packages)]
        compiled = bytecode.compile_wheels([blobs[rel] for rel in wheels], interp, store, say)
        mapping = {rel: bytecode.bundle_path(interp.magic, rel.rsplit("/", 1)[-1]) for rel in wheels}
        files.update({mapping[rel]: compiled[blobs[rel][1]] for rel in wheels})
        out.append(dataclasses.replace(target, bytecode_magic=interp.magic, bytecode=mapping))
    return out, files


def plan_bundle(lock_path: Path, store: BlobStore, output: Path, since: Path | None = None, *,
                sign_key: Path | None = None, bytecode: Sequence[Path] | None = None,
                progress: Any = None) -> tuple[Manifest, list[Member], int, tuple[str, ...]]:
    """Everything that goes into the bundle, checked: wheels present and hashing right, metadata
    read from them, completeness proven for every target. Raises before anything is written.
    With ``since``, a delta over that bundle or lock (see the module docstring); with ``sign_key``,
    ``bundle.json.sig``, an SSH signature over bundle.json (``bundler.signing``). ``bytecode`` (None:
    none) lists interpreters to compile the targets' bytecode with, besides those found here."""
    from bundler.bundle import read_base

    old = read_base(since) if since is not None else None
    lock, lock_bytes = read_lock_source(lock_path)
    sdists = with_built_wheels(lock, store)  # sdists built here into pure wheels, or carried for the target
    lock, builds = sdists.lock, sdists.built
    name = bundle_name(lock, output)
    wheels: dict[str, tuple[LockedWheel, str, str]] = {}  # filename -> (wheel, project, version)

    def add(wheel: LockedWheel, project: str, version: str) -> None:
        seen = wheels.get(wheel.filename)
        if seen is not None and seen[0].sha256 != wheel.sha256:
            raise BundlerError(f"the lock names two different files called {wheel.filename}")
        wheels[wheel.filename] = (wheel, project, version)

    for pkg in lock.packages:
        for w in pkg.wheels:
            add(w, pkg.name, pkg.version)
    sdist_meta: dict[str, tuple[tuple[str, ...], str | None, str | None]] = {}  # carried sdist -> its metadata
    for on_target in sdists.on_target.values():
        for b in on_target:
            add(b.sdist, b.name, b.version)
            sdist_meta[b.sdist.filename] = (b.requires_dist, b.requires_python, None)
            for w in b.env:  # its build requirements, resolved for the target
                add(w, w.filename.split("-")[0], w.filename.split("-")[1])
    for prof in lock.profiles:
        if prof.name not in lock.bootstrap:
            raise BundlerError(f"the lock has no bootstrap pip wheel for target {prof.name}; the installer needs one",
                               hint="re-lock with an index that offers pip (PyPI does)")
        version, w = lock.bootstrap[prof.name]
        add(w, "pip", version)
    for version, w in lock.uv.values():
        add(w, "uv", version)
    missing = [fn for fn, (w, _, _) in wheels.items() if not store.path(w.sha256).is_file()]
    if missing:
        raise BundlerError(f"{len(missing)} of {len(wheels)} files of the lock are not in the cache {store.root}: "
                           f"{', '.join(sorted(missing)[:5])}{' ...' if len(missing) > 5 else ''}",
                           hint=f"run 'wheelhouse fetch {lock_path}' first (with the same --cache-dir), or use 'wheelhouse build'")

    def check(item: tuple[str, tuple[LockedWheel, str, str]]) -> tuple[str, tuple[tuple[str, ...], str | None, str | None], int]:
        # Only the size and the metadata here: the bytes are hashed once, as they are copied into
        # the archive, and a mismatch there fails the pack before anything is published.
        fn, (w, project, version) = item
        path = store.path(w.sha256)
        size = path.stat().st_size
        if w.size is not None and size != w.size:
            path.unlink(missing_ok=True)
            raise BundlerError(f"{fn} in the cache {store.root} has {size} bytes, not the {w.size} the lock names; "
                               "the damaged copy was removed", hint=f"run 'wheelhouse fetch {lock_path}' again")
        return fn, sdist_meta.get(fn) or _wheel_metadata(path, project, version, fn), size

    # Serially: the central directory is found directly (wheelmeta), a fraction of a millisecond a wheel.
    checked = {fn: (meta, size) for fn, meta, size in map(check, sorted(wheels.items()))}

    def bundled(filename: str, project: str, version: str) -> BundledPackage:
        return BundledPackage(name=project, version=version, wheel=f"wheels/{filename}", requires_dist=checked[filename][0][0],
                              requires_python=checked[filename][0][1])

    targets = []
    for prof in lock.profiles:
        here = {b.sdist.filename: b for b in sdists.on_target.get(prof.name, ())}
        pkgs = tuple(bundled(w.filename, p.name, p.version) for p, w in lock.for_target(prof.name) if w.filename not in here)
        built_here = tuple(BundledSdist(name=b.name, version=b.version, sdist=f"wheels/{b.sdist.filename}", requires_dist=b.requires_dist,
                                        requires_python=b.requires_python, build_requires=b.requires, reason=b.reason,
                                        build_packages=tuple(bundled(w.filename, *wheels[w.filename][1:]) for w in b.env))
                           for b in here.values())
        uv = lock.uv.get(prof.name)
        target = BundledTarget(name=prof.name, profile=prof, pip=f"wheels/{lock.bootstrap[prof.name][1].filename}", packages=pkgs,
                               uv=f"wheels/{uv[1].filename}" if uv else None, sdists=built_here)
        check_complete(target, lock.requirements)
        targets.append(target)
    compiled: dict[str, Path] = {}
    if bytecode is not None:
        targets, compiled = _bytecode(targets, {f"wheels/{fn}": (store.path(w.sha256), w.sha256) for fn, (w, _, _) in wheels.items()},
                                      store, bytecode, getattr(progress, "note", None))
        if old is not None:  # a base that lacks the bytecode of a wheel it provides (a lock): the target compiles it
            def kept(rel: str, archive: str) -> bool:
                return old.wheels.get(rel) != wheels[rel[len("wheels/"):]][0].sha256 or old.wheels.get(archive) == compiled[archive].name
            targets = [dataclasses.replace(t, bytecode={r: a for r, a in t.bytecode.items() if kept(r, a)}) for t in targets]
            compiled = {a: compiled[a] for t in targets for a in t.bytecode.values()}

    members = [Member(path=f"wheels/{fn}", size=checked[fn][1], sha256=w.sha256, source=store.path(w.sha256))
               for fn, (w, _, _) in wheels.items()]
    for path, blob in sorted(compiled.items()):
        members.append(Member(path=path, size=blob.stat().st_size, sha256=blob.name, source=blob))
    generated = {"pylock.toml": bundled_lock(lock_bytes, set(wheels)), "requirements.txt": render_requirements(lock).encode()}
    generated.update(_simple_index({fn: (project, w.sha256) for fn, (w, project, _) in wheels.items()},
                                   {fn: checked[fn][0][1] for fn in wheels}))
    modes = {}
    for script, mode in SCRIPTS.items():
        generated[script] = (TARGET_DIR / script).read_bytes()
        modes[script] = mode
    for path, data in generated.items():
        members.append(Member(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data,
                               mode=modes.get(path, 0o644)))
    mtime = _mtime(lock, os.environ.get("SOURCE_DATE_EPOCH"))
    created = datetime.fromtimestamp(mtime, timezone.utc)
    lock_sha256 = hashlib.sha256(lock_bytes).hexdigest()
    sbom = sbom_json(sbom_entries(lock, wheels, {fn: checked[fn][0][2] for fn in wheels}, builds), bundle=top_folder(name, lock_sha256),
                     lock_sha256=lock_sha256, created=created, tool=f"wheelhouse {__version__}")
    members.append(Member(path=SBOM, size=len(sbom), sha256=hashlib.sha256(sbom).hexdigest(), data=sbom))
    from_base = sorted(m.path for m in members if old is not None and old.wheels.get(m.path) == m.sha256)
    full = list(members)
    members = [m for m in members if m.path not in set(from_base)]
    sums = "".join(f"{m.sha256}  {m.path}\n" for m in sorted(members, key=lambda m: m.path)).encode()  # what it carries
    members.append(Member(path="SHA256SUMS", size=len(sums), sha256=hashlib.sha256(sums).hexdigest(), data=sums))
    full.append(members[-1])
    manifest = Manifest(name=name, tool=f"wheelhouse {__version__}", lock_sha256=lock_sha256,
                        created=created.strftime("%Y-%m-%dT%H:%M:%SZ"), smoke=lock.smoke, requirements=lock.requirements,
                        targets=tuple(targets), files={m.path: (m.size, m.sha256) for m in full},
                        base=Base(name=old.name, lock_sha256=old.lock_sha256, files=tuple(from_base)) if old else None,
                        builds=builds)
    data = manifest.to_json()
    members.append(Member(path="bundle.json", size=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data))
    if sign_key is not None:  # beside bundle.json, which cannot list its own signature (Ed25519 is deterministic)
        sig = sign(data, sign_key)
        members.append(Member(path=SIGNATURE, size=len(sig), sha256=hashlib.sha256(sig).hexdigest(), data=sig))
    return manifest, sorted(members, key=lambda m: m.path), mtime, sdists.notes


def pack(lock_path: Path, store: BlobStore, output: Path, *, fmt: str | None = None, level: int | None = None,
         threads: int | None = None, since: Path | None = None, sign_key: Path | None = None,
         progress: Any = None, bytecode: Sequence[Path] | None = ()) -> PackResult:
    """Check everything, then write the bundle for ``lock_path`` to ``output``; see the module docstring."""
    fmt = format_of(output, fmt)
    if level is None:
        level = DEFAULT_LEVELS[fmt]
    elif fmt == "tar.zst" and not 1 <= level <= 22 or fmt == "tar.gz" and not 0 <= level <= 9:
        raise BadInput(f"--level {level} is out of range for {fmt} (zstd 1-22, gzip 0-9)")
    manifest, members, mtime, notes = plan_bundle(lock_path, store, output, since, sign_key=sign_key, bytecode=bytecode, progress=progress)
    try:
        sha, size = write_reproducible(manifest.top, members, output, fmt=fmt, level=level, mtime=mtime, threads=threads,
                                       progress=progress)
    except SourceChanged as e:  # the blob changed in the cache since plan_bundle looked at it
        assert e.member.source is not None
        e.member.source.unlink(missing_ok=True)  # a damaged blob in the content-addressed store
        raise HashMismatch(f"{e.member.path} in the cache {store.root}", e.expected, e.actual,
                           hint="the damaged copy was removed from the cache: run 'wheelhouse fetch LOCK' again") from None
    return PackResult(path=output, sha256=sha, size=size, manifest=manifest, notes=notes)
