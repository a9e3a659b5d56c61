"""Read a bundle back — an archive (tar, tar.gz, tar.zst) or an unpacked directory — and verify it.

Archive layers prove nothing: a truncated zstd stream or a tar cut at a member boundary can read
back without an error. So a reader checks the exact member set and every size and sha256 against
``bundle.json``, and every member must sit under the one top directory. ``archive.open_archive``
refuses what is unsafe to unpack (absolute paths, ``..``, links, devices) and turns a damaged
stream into ``BadBundle``. The completeness proof is run again from the dependency data each
wheel's own METADATA gives (a sdist a target builds has none to read: its data is the lock's). A delta bundle is checked with the bundle it was made from
(``verify(delta, with_bundle=old)``): its base files are read there, against the delta's manifest.

``read_base`` reads what an old bundle (an archive, its unpacked folder, or a lock) holds, for
``pack --since``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Protocol

from bundler._target.install import MAX_MANIFEST, MAX_SIGNATURE, SIGNATURE, describe_unlisted, not_in_bundle, printable, unlisted_groups
from bundler.archive import open_archive, sniff
from bundler.errors import BadBundle, BadInput, BundlerError, Incomplete
from bundler.manifest import Manifest, check_complete, top_folder
from bundler.wheelmeta import BadMetadata, metadata_from_zip, parse_metadata

_MAX_MANIFEST = MAX_MANIFEST  # the installer's cap: a manifest it would refuse is refused here too
_CHUNK = 1 << 20


@dataclass(slots=True)
class BundleReading:
    """What was found in a bundle: its manifest, each file's (size, sha256), and the problems seen."""

    manifest: Manifest | None = None
    files: dict[str, tuple[int, str]] = field(default_factory=dict)
    metadata: dict[str, tuple[tuple[str, ...], str | None]] = field(default_factory=dict)  # wheel path -> deps
    problems: list[str] = field(default_factory=list)
    top: str = ""
    manifest_bytes: bytes | None = None  # what a signature covers
    signature: bytes | None = None  # bundle.json.sig, the one file bundle.json cannot list
    signer: str | None = None  # the principal, once verify(trust=...) has checked the signature

    def authenticity(self) -> str:
        """One line on who vouches for the bundle, for ``wheelhouse verify``."""
        if self.signer is not None:
            return f"signed by {self.signer}, whom the allowed_signers file lists"
        return "not authenticated: " + ("signed, but" if self.signature is not None else "unsigned, and") + " no --trust given"


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _digest(stream: _Readable, spool: IO[bytes] | None) -> tuple[int, str]:
    h = hashlib.sha256()
    n = 0
    while chunk := stream.read(_CHUNK):
        h.update(chunk)
        n += len(chunk)
        if spool is not None:
            spool.write(chunk)
    return n, h.hexdigest()


def _wheel_deps(fileobj: IO[bytes], wheel: str) -> tuple[tuple[str, ...], str | None]:
    project = PurePosixPath(wheel).name.split("-")[0]
    meta = parse_metadata(metadata_from_zip(fileobj, project))
    return tuple(str(r) for r in meta.requires_dist), meta.requires_python


def read_bundle(path: Path, *, want_metadata: bool = True, manifest_only: bool = False) -> BundleReading:
    """Read every member of a bundle archive or directory; problems are collected, not raised."""
    reading = BundleReading()
    if path.is_dir():
        _read_directory(path, reading, want_metadata)
        return reading
    if not path.exists():
        raise BadInput(f"no such bundle: {path}")
    try:
        _read_archive(path, reading, want_metadata, manifest_only)
    except BadBundle as e:  # a damaged stream or an unsafe member: reading stops there
        reading.problems.append(printable(e.message.removeprefix(f"{path}: ")))  # the report names the bundle once
    except OSError as e:  # the spool for a wheel's metadata, on a full disk
        raise BundlerError(f"cannot read {path}: {e.strerror or e}") from None
    return reading


def _read_archive(path: Path, reading: BundleReading, want_metadata: bool, manifest_only: bool) -> None:
    with open_archive(path) as archive:
        for entry, src in archive:
            top, _, rel = entry.name.partition("/")
            reading.top = reading.top or top
            if top != reading.top or (src is not None and not rel):
                reading.problems.append(f"member {entry.name!r} is outside the bundle directory {printable(reading.top)}/")
                continue
            if src is None:
                continue
            if rel in reading.files:
                reading.problems.append(f"member {printable(rel)} appears twice")
            if rel == "bundle.json":
                if entry.size > _MAX_MANIFEST:
                    reading.problems.append(f"bundle.json has {entry.size} bytes, more than a manifest can need")
                    continue
                data = src.read()
                reading.files[rel] = (len(data), hashlib.sha256(data).hexdigest())
                reading.manifest_bytes = data
                reading.manifest = _manifest(data, reading)
                if manifest_only:
                    return
                continue
            if rel == SIGNATURE and entry.size <= MAX_SIGNATURE:
                reading.signature = src.read()
                reading.files[rel] = (len(reading.signature), hashlib.sha256(reading.signature).hexdigest())
                continue
            wheel = want_metadata and rel.startswith("wheels/") and rel.endswith(".whl")
            with tempfile.TemporaryFile() if wheel else contextlib.nullcontext() as spool:
                reading.files[rel] = _digest(src, spool if wheel else None)
                if wheel:
                    spool.seek(0)
                    _record_deps(spool, rel, reading)


def _manifest(data: bytes, reading: BundleReading) -> Manifest | None:
    try:
        return Manifest.from_json(data)
    except BadInput as e:
        reading.problems.append(e.message)
        return None


def _record_deps(fileobj: IO[bytes], rel: str, reading: BundleReading) -> None:
    try:
        reading.metadata[rel] = _wheel_deps(fileobj, rel)
    except BadMetadata as e:
        reading.problems.append(printable(f"{rel}: {e}"))


def _read_directory(root: Path, reading: BundleReading, want_metadata: bool) -> None:
    reading.top = root.name
    for dirpath, dirnames, filenames in os.walk(root):
        for d in list(dirnames):
            if not_in_bundle(Path(dirpath, d).relative_to(root).as_posix()):
                dirnames.remove(d)  # __pycache__, which Python may write anywhere: the installer skips them too
                continue
            if os.path.islink(os.path.join(dirpath, d)):
                reading.problems.append(f"{printable(os.path.relpath(os.path.join(dirpath, d), root))} is a link")
                dirnames.remove(d)
        for fn in filenames:
            full = Path(dirpath) / fn
            rel = full.relative_to(root).as_posix()
            if full.is_symlink() or not full.is_file():
                reading.problems.append(f"{printable(rel)} is a link or device, not a regular file")
                continue
            with open(full, "rb") as f:
                reading.files[rel] = _digest(f, None)
                if rel == "bundle.json":
                    if reading.files[rel][0] > _MAX_MANIFEST:
                        reading.problems.append(f"bundle.json has {reading.files[rel][0]} bytes, more than a manifest can need")
                        continue
                    f.seek(0)
                    reading.manifest_bytes = f.read(_MAX_MANIFEST + 1)
                    reading.manifest = _manifest(reading.manifest_bytes, reading)
                elif rel == SIGNATURE and reading.files[rel][0] <= MAX_SIGNATURE:
                    f.seek(0)
                    reading.signature = f.read(MAX_SIGNATURE + 1)
                elif want_metadata and rel.startswith("wheels/") and rel.endswith(".whl"):
                    f.seek(0)
                    _record_deps(f, rel, reading)


@dataclass(frozen=True, slots=True, kw_only=True)
class OldBundle:
    """What an older bundle (or lock) holds, for ``pack --since``: its top folder and wheels."""

    name: str  # the old bundle's top folder, the directory a target gives to --with
    lock_sha256: str
    wheels: dict[str, str]  # path in a bundle (wheels/<file>) -> sha256, of the files the old bundle carries


def read_base(path: Path) -> OldBundle:
    """The wheels an old bundle archive, unpacked bundle folder or lock provides."""
    from bundler.lock import read_lock_source

    if not path.exists():
        raise BadInput(f"--since {path}: no such bundle or lock")
    is_bundle = path.is_dir()
    if not is_bundle:
        try:
            with open(path, "rb") as f:
                is_bundle = sniff(f.read(512)) is not None
        except OSError as e:
            raise BadInput(f"cannot read {path}: {e.strerror or e}") from None
    if not is_bundle:
        lock, raw = read_lock_source(path)
        sha = hashlib.sha256(raw).hexdigest()
        wheels = {f"wheels/{w.filename}": w.sha256 for p in lock.packages for w in p.wheels}
        wheels.update({f"wheels/{w.filename}": w.sha256 for _, w in lock.bootstrap.values()})
        wheels.update({f"wheels/{w.filename}": w.sha256 for _, w in lock.uv.values()})
        return OldBundle(name=top_folder(lock.name or "bundle", sha), lock_sha256=sha, wheels=wheels)
    reading = read_bundle(path, want_metadata=False, manifest_only=True)
    m = reading.manifest
    if m is None:
        raise BadInput(f"--since {path}: no readable bundle.json" + (f": {reading.problems[0]}" if reading.problems else ""))
    top = path.name if path.is_dir() else reading.top
    return OldBundle(name=top or m.top, lock_sha256=m.lock_sha256,
                     wheels={p: sha for p, (_, sha) in m.carried().items() if p.startswith(("wheels/", "bytecode/"))})


def _check_base(m: Manifest, with_bundle: Path | None, reading: BundleReading) -> None:
    """A delta's base files, read in the old bundle and checked against the delta's manifest."""
    assert m.base is not None
    if with_bundle is None:
        reading.problems.append(f"a delta bundle: {len(m.base.files)} files are expected from {printable(m.base.name)}; "
                                "give --with OLD_BUNDLE to check them")
        return
    old = read_bundle(with_bundle)
    for p in sorted(m.base.files):
        if p not in old.files:
            reading.problems.append(f"{printable(p)} is expected from {printable(str(with_bundle))}, which lacks it")
            continue
        (size, sha), (esize, esha) = old.files[p], m.files[p]
        if sha != esha or size != esize:
            reading.problems.append(f"{printable(p)} in {printable(str(with_bundle))}: expected sha256 {esha} "
                                    f"({esize} bytes), got {sha} ({size} bytes)")
        elif p in old.metadata:
            reading.metadata[p] = old.metadata[p]


def verify(path: Path, *, with_bundle: Path | None = None, trust: Path | None = None) -> BundleReading:
    """Check a bundle completely; raise ``BadBundle`` listing every problem, else return the reading.
    A delta bundle needs ``with_bundle``, the bundle (archive or folder) it was made from. With
    ``trust`` (an OpenSSH allowed_signers file), the signature over bundle.json is checked first:
    unsigned, a bad signature and an unknown signer are each refused by name."""
    reading = read_bundle(path)
    if trust is not None:
        from bundler.signing import verify as check_signature

        if reading.manifest_bytes is None:
            raise BadBundle(f"{printable(str(path))} has no readable bundle.json to check a signature over",
                            hint="do not install it; build or copy it again")
        reading.signer = check_signature(reading.manifest_bytes, reading.signature, trust, where=printable(str(path)))
    m = reading.manifest
    if m is None and not any("bundle.json" in p for p in reading.problems):
        reading.problems.append("bundle.json is missing")
    if m is not None:
        # bundle.json cannot list itself, nor the signature over its bytes: the two unlisted files.
        found = {p: v for p, v in reading.files.items() if p not in ("bundle.json", SIGNATURE)}
        if m.base is not None:
            _check_base(m, with_bundle, reading)
        for p in sorted(set(m.carried()) - set(found)):
            reading.problems.append(f"{printable(p)} is listed in bundle.json but missing from the bundle")
        # Unlisted files (a venv inside an unpacked bundle among them) are named once per unknown folder.
        reading.problems += [describe_unlisted(p, n, v, " is in the bundle but not in bundle.json")
                             for p, n, v in unlisted_groups(set(found) - set(m.carried()), m.carried())]
        for p in sorted(set(found) & set(m.carried())):
            (size, sha), (esize, esha) = found[p], m.files[p]
            if sha != esha or size != esize:
                reading.problems.append(f"{printable(p)}: expected sha256 {esha} ({esize} bytes), got {sha} ({size} bytes)")
        for t in m.targets:
            for pkg in (*t.packages, *(b for sd in t.sdists for b in sd.build_packages)):
                real = reading.metadata.get(pkg.wheel)
                if real is not None and (tuple(real[0]), real[1]) != (tuple(pkg.requires_dist), pkg.requires_python):
                    reading.problems.append(f"{printable(pkg.wheel)}: bundle.json's dependency data differs from the wheel's METADATA")
            try:
                check_complete(t, m.requirements)
            except Incomplete as e:
                reading.problems.append(e.message)
    if reading.problems:
        shown = "\n  ".join(reading.problems[:30]) + (f"\n  ... and {len(reading.problems) - 30} more" if len(reading.problems) > 30 else "")
        raise BadBundle(f"{printable(str(path))} failed verification:\n  {shown}", hint="do not install it; build or copy it again")
    return reading
