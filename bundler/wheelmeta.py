"""Core metadata of wheels: parse METADATA, and read it out of a (possibly remote) wheel zip.

``RangeFile`` is a read-only, seekable file over HTTP Range requests, so that ``zipfile`` can read
a remote wheel's central directory and its METADATA member without downloading the whole wheel.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Callable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreMetadata:
    """The parts of a wheel's METADATA that resolution needs."""

    name: str
    version: str
    requires_dist: tuple[Requirement, ...]
    requires_python: str | None
    provides_extra: tuple[str, ...]
    license_expression: str | None = None  # License-Expression (core metadata 2.4), for the bundle's SBOM


class BadMetadata(ValueError):
    """A METADATA file or wheel zip that cannot be read."""


def parse_metadata(data: bytes) -> CoreMetadata:
    """Parse METADATA bytes (RFC 822 style). Unparsable Requires-Dist lines raise ``BadMetadata``."""
    fields = _header_fields(data)
    name, version = _first(fields, "name"), _first(fields, "version")
    if not name or not version:
        raise BadMetadata("METADATA lacks Name or Version")
    reqs = []
    for line in _unfolded(fields, "requires-dist"):
        try:
            reqs.append(Requirement(line))
        except InvalidRequirement as e:
            raise BadMetadata(f"{name} {version} has an invalid Requires-Dist {line!r}: {e}") from None
    return CoreMetadata(
        name=name,
        version=version,
        requires_dist=tuple(reqs),
        requires_python=_first(fields, "requires-python") or None,
        provides_extra=tuple(canonicalize_name(e) for e in _unfolded(fields, "provides-extra")),
        license_expression=(_first(fields, "license-expression") or "").strip() or None,
    )


_LINE_END = re.compile(r"\r\n|\r|\n")
_FIELD = re.compile(r"([\x21-\x39\x3b-\x7e]+):(.*)", re.DOTALL)


def _header_fields(data: bytes) -> dict[str, list[str]]:
    """The header fields of a METADATA file, by lower-cased name, as ``email.parser`` splits them
    (a value's continuation lines are kept, joined by newlines); the header ends at the first line
    that is neither a field nor a continuation. Decoded as UTF-8, as core metadata 2.1+ says."""
    fields: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in _LINE_END.split(data.decode("utf-8", "replace")):
        if line[:1] in (" ", "\t") and current is not None:
            current[-1] += "\n" + line
            continue
        m = _FIELD.fullmatch(line)
        if m is None:
            break
        current = fields.setdefault(m.group(1).lower(), [])
        current.append(m.group(2).lstrip(" \t"))
    return fields


def _unfolded(fields: dict[str, list[str]], name: str) -> list[str]:
    """The values of a field with folding undone (RFC 5322: drop the line break, keep the blank)."""
    return [v.replace("\n", "") for v in fields.get(name, [])]


def _first(fields: dict[str, list[str]], name: str) -> str | None:
    values = _unfolded(fields, name)
    return values[0] if values else None


_DIST_INFO = re.compile(r"^([^/]+)\.dist-info/METADATA$")


def _dist_info_project(dist_info: str) -> str:
    """``Foo_Bar-1.0`` (a .dist-info directory's stem) -> ``foo-bar``."""
    return canonicalize_name(dist_info.rsplit("-", 1)[0])


def metadata_from_zip(fileobj: IO[bytes], project: str) -> bytes:
    """Read ``<name>-<version>.dist-info/METADATA`` of ``project`` from a wheel zip.

    Plain zips (no zip64, no bytes before the archive) are read directly: one search of the
    central directory instead of ``zipfile`` building an entry object for each of the thousands
    of files a wheel like scipy holds. Anything else goes through ``zipfile``.
    """
    want = canonicalize_name(project)
    try:
        found = _metadata_direct(fileobj, want)
    except (OSError, EOFError, ValueError, zlib.error, struct.error) as e:
        raise BadMetadata(f"not a readable wheel: {e}") from None
    if found is not None:
        return found
    try:
        fileobj.seek(0)
        with zipfile.ZipFile(fileobj) as zf:
            for info in zf.infolist():
                m = _DIST_INFO.match(info.filename)
                if m and _dist_info_project(m.group(1)) == want:
                    if info.file_size > _MAX_METADATA:
                        raise BadMetadata(f"{info.filename} claims {info.file_size} bytes; refusing to inflate it")
                    with zf.open(info) as member:  # the header may lie: never inflate past the cap
                        data = member.read(_MAX_METADATA + 1)
                    if len(data) > _MAX_METADATA:
                        raise BadMetadata(f"{info.filename} inflates past {_MAX_METADATA >> 20} MiB")
                    return data
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError, NotImplementedError, zlib.error) as e:
        raise BadMetadata(f"not a readable wheel: {e}") from None
    raise BadMetadata(f"wheel has no {project}-*.dist-info/METADATA")


_EOCD = struct.Struct("<4s4H2LH")  # end of central directory
_CENTRAL = re.compile(rb"PK\x01\x02(.{42})([^/\x00]{1,255}\.dist-info/METADATA)", re.DOTALL)
_CENTRAL_FIELDS = struct.Struct("<4x2x2xHH2x2x3L3H2x2x4xL")  # flags, method, crc, sizes, name/extra/comment, offset
_LOCAL = struct.Struct("<4s22x2H")  # signature, name and extra lengths
_ZIP64 = 0xFFFFFFFF
_MAX_METADATA = 64 << 20  # real ones are kilobytes; a bigger claim is a damaged or hostile wheel


def _metadata_direct(f: IO[bytes], want: str) -> bytes | None:
    """METADATA of project ``want`` read without ``zipfile``, or None when the zip needs ``zipfile``
    (zip64, a prefix before the archive, an unusual method, or no match at all: it decides then)."""
    size = f.seek(0, io.SEEK_END)
    if size < _EOCD.size:
        return None
    tail_len = min(size, _EOCD.size)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    if not tail.startswith(b"PK\x05\x06"):  # a comment after the record: look further back
        tail_len = min(size, _EOCD.size + 0xFFFF)
        f.seek(size - tail_len)
        tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        return None
    _, _, _, _, entries, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, at)
    eocd_pos = size - len(tail) + at
    if entries == 0xFFFF or cd_offset == _ZIP64 or cd_offset + cd_size != eocd_pos:
        return None  # zip64, or data before the archive: zipfile knows how to shift offsets
    f.seek(cd_offset)
    central = f.read(cd_size)
    for m in _CENTRAL.finditer(central):
        name = m.group(2)
        flags, method, crc, csize, usize, nlen, _, _, offset = _CENTRAL_FIELDS.unpack(b"PK\x01\x02" + m.group(1))
        if nlen != len(name) or _dist_info_project(name.decode("utf-8", "replace")[: -len(".dist-info/METADATA")]) != want:
            continue
        if flags & 0x1 or method not in (0, 8) or _ZIP64 in (csize, usize, offset):
            return None  # encrypted, an unusual method or zip64 sizes: leave it to zipfile
        if usize > _MAX_METADATA:
            raise ValueError(f"{name.decode('utf-8', 'replace')} says it has {usize} bytes; no METADATA is that big")
        f.seek(offset)
        sig, lnlen, lelen = _LOCAL.unpack(f.read(_LOCAL.size))
        if sig != b"PK\x03\x04":
            raise ValueError(f"bad local header for {name.decode('utf-8', 'replace')}")
        f.seek(offset + _LOCAL.size + lnlen + lelen)
        raw = f.read(csize)
        data = zlib.decompressobj(-15).decompress(raw, usize + 1) if method == 8 else raw  # no more than it said
        if len(data) != usize or zlib.crc32(data) != crc:
            raise ValueError(f"{name.decode('utf-8', 'replace')} fails its size or CRC check")
        return data
    return None


class RangeFile(io.RawIOBase):
    """A seekable, read-only view of a remote file, filled by ``fetch(start, end) -> bytes``.

    ``tail`` holds the last bytes of the file (read first, with a suffix Range request), which
    usually contain the zip central directory and, in wheels, the dist-info members too.
    """

    def __init__(self, size: int, tail: bytes, fetch: Callable[[int, int], bytes], chunk: int = 64 * 1024) -> None:
        super().__init__()
        self._size = size
        self._chunks: dict[int, bytes] = {size - len(tail): tail}
        self._fetch = fetch
        self._chunk = chunk
        self._pos = 0
        self.requests = 1

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _cached(self, pos: int, n: int) -> bytes | None:
        for start, data in self._chunks.items():
            if start <= pos and pos + n <= start + len(data):
                return data[pos - start : pos - start + n]
        return None

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self._size - self._pos
        n = min(n, self._size - self._pos)
        if n <= 0:
            return b""
        data = self._cached(self._pos, n)
        if data is None:
            end = min(self._size, self._pos + max(n, self._chunk))
            block = self._fetch(self._pos, end - 1)
            self.requests += 1
            if len(block) != end - self._pos:
                raise OSError(f"range read returned {len(block)} bytes, expected {end - self._pos}")
            self._chunks[self._pos] = block
            data = block[:n]
        self._pos += len(data)
        return data

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)
