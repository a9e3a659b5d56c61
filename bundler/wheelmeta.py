"""Core metadata of wheels: parse METADATA, and read it out of a (possibly remote) wheel zip.

``RangeFile`` is a read-only, seekable file over HTTP Range requests, so that ``zipfile`` can read
a remote wheel's central directory and its METADATA member without downloading the whole wheel.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from email.parser import BytesParser
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


class BadMetadata(ValueError):
    """A METADATA file or wheel zip that cannot be read."""


def parse_metadata(data: bytes) -> CoreMetadata:
    """Parse METADATA bytes (RFC 822 style). Unparsable Requires-Dist lines raise ``BadMetadata``."""
    msg = BytesParser().parsebytes(data, headersonly=True)
    name, version = msg.get("Name"), msg.get("Version")
    if not name or not version:
        raise BadMetadata("METADATA lacks Name or Version")
    reqs = []
    for line in msg.get_all("Requires-Dist") or []:
        try:
            reqs.append(Requirement(line))
        except InvalidRequirement as e:
            raise BadMetadata(f"{name} {version} has an invalid Requires-Dist {line!r}: {e}") from None
    return CoreMetadata(
        name=str(name),
        version=str(version),
        requires_dist=tuple(reqs),
        requires_python=(msg.get("Requires-Python") or None),
        provides_extra=tuple(canonicalize_name(e) for e in (msg.get_all("Provides-Extra") or [])),
    )


_DIST_INFO = re.compile(r"^([^/]+)\.dist-info/METADATA$")


def metadata_from_zip(fileobj: IO[bytes], project: str) -> bytes:
    """Read ``<name>-<version>.dist-info/METADATA`` of ``project`` from a wheel zip."""
    try:
        with zipfile.ZipFile(fileobj) as zf:
            want = canonicalize_name(project)
            for info in zf.infolist():
                m = _DIST_INFO.match(info.filename)
                if m and canonicalize_name(m.group(1).rsplit("-", 1)[0]) == want:
                    return zf.read(info)
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as e:
        raise BadMetadata(f"not a readable wheel: {e}") from None
    raise BadMetadata(f"wheel has no {project}-*.dist-info/METADATA")


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
