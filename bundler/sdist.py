"""Source distributions as files: their PEP 643 static metadata, their pyproject.toml, and a safe unpack.

An sdist comes from an index, so it is outside input: every read here is bounded (archive size,
member count, member size, total unpacked size), one pass over the archive, and nothing is ever
written outside the temporary directory given (tar's ``data`` filter, and a path check for zip).
"""

from __future__ import annotations

import email.parser
import email.policy
import re
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from packaging.version import InvalidVersion, Version

from bundler.errors import BadInput

MAX_ARCHIVE = 1 << 30  # an sdist larger than 1 GiB is refused
MAX_MEMBERS = 200_000
MAX_SMALL = 4 << 20  # PKG-INFO and pyproject.toml
MAX_UNPACKED = 4 << 30

# PKG-INFO or pyproject.toml at the top of the archive's single root folder, as PEP 517/643 place them.
_TOP = re.compile(r"^[^/]+/(PKG-INFO|pyproject\.toml)$")

# The fields a resolution needs: if any is Dynamic, PKG-INFO cannot be trusted for them (PEP 643).
_RESOLUTION_FIELDS = {"requires-dist", "requires-python", "provides-extra"}


class BadSdist(BadInput):
    """An sdist that cannot be read safely or lacks what building it needs."""


@dataclass(frozen=True, slots=True)
class SdistFacts:
    """What an sdist says about itself without running any of its code."""

    pkg_info: bytes | None  # the PKG-INFO bytes (None: absent)
    pyproject: bytes | None  # the pyproject.toml bytes (None: absent)

    @property
    def static_metadata(self) -> bytes | None:
        """PKG-INFO when PEP 643 makes it authoritative for resolution (Metadata-Version >= 2.2 and
        none of Requires-Dist, Requires-Python, Provides-Extra marked Dynamic), else None."""
        return self.pkg_info if self.pkg_info is not None and is_static(self.pkg_info) else None


def is_static(pkg_info: bytes) -> bool:
    """Whether core metadata bytes are PEP 643 static for the fields a resolution reads."""
    msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(pkg_info, headersonly=True)
    try:
        if Version(str(msg.get("Metadata-Version", "0")).strip()) < Version("2.2"):
            return False
    except InvalidVersion:
        return False
    dynamic = {str(v).strip().lower() for v in msg.get_all("Dynamic") or ()}
    return not (dynamic & _RESOLUTION_FIELDS)


def _check_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_ARCHIVE:
        raise BadSdist(f"{path.name} is {size} bytes; sdists over {MAX_ARCHIVE} bytes are refused")


def _is_zip(path: Path) -> bool:
    return path.name.endswith(".zip")


def read_facts(path: Path) -> SdistFacts:
    """PKG-INFO and pyproject.toml of the sdist at ``path``, read in one pass without unpacking."""
    _check_size(path)
    found: dict[str, bytes] = {}
    try:
        if _is_zip(path):
            with zipfile.ZipFile(path) as z:
                infos = z.infolist()
                if len(infos) > MAX_MEMBERS:
                    raise BadSdist(f"{path.name} has more than {MAX_MEMBERS} members")
                for info in infos:
                    m = _TOP.match(info.filename)
                    if m and m.group(1) not in found and info.file_size <= MAX_SMALL:
                        with z.open(info) as f:
                            found[m.group(1)] = _read_capped(f, path.name)
        else:
            with tarfile.open(path, mode="r|*") as t:  # a stream: linear, no random seeks
                for count, member in enumerate(t):
                    if count > MAX_MEMBERS:
                        raise BadSdist(f"{path.name} has more than {MAX_MEMBERS} members")
                    m = _TOP.match(member.name)
                    if m and member.isreg() and m.group(1) not in found and member.size <= MAX_SMALL:
                        f = t.extractfile(member)
                        if f is not None:
                            found[m.group(1)] = _read_capped(f, path.name)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise BadSdist(f"{path.name} is not a readable sdist: {e}") from None
    return SdistFacts(pkg_info=found.get("PKG-INFO"), pyproject=found.get("pyproject.toml"))


def _read_capped(f: IO[bytes], name: str) -> bytes:
    data = f.read(MAX_SMALL + 1)
    if len(data) > MAX_SMALL:
        raise BadSdist(f"{name}: a metadata file is larger than {MAX_SMALL} bytes")
    return data


@dataclass(frozen=True, slots=True)
class BuildSystem:
    """The ``[build-system]`` table, with PEP 517's defaults when pyproject.toml lacks it."""

    requires: tuple[str, ...]
    backend: str
    backend_path: tuple[str, ...] = ()


LEGACY = BuildSystem(requires=("setuptools>=40.8.0",), backend="setuptools.build_meta:__legacy__")


def build_system(facts: SdistFacts, origin: str) -> BuildSystem:
    """The build system an sdist declares (pip's fallback to setuptools' legacy backend otherwise)."""
    if facts.pyproject is None:
        return LEGACY
    try:
        data: dict[str, Any] = tomllib.loads(facts.pyproject.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BadSdist(f"{origin}: pyproject.toml is not valid TOML: {e}") from None
    table = data.get("build-system")
    if table is None:
        return LEGACY
    if not isinstance(table, dict):
        raise BadSdist(f"{origin}: [build-system] is not a table")
    requires = table.get("requires")
    backend = table.get("build-backend")
    path = table.get("backend-path", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise BadSdist(f"{origin}: build-system.requires must be a list of strings")
    if backend is None:
        return BuildSystem(requires=tuple(requires), backend=LEGACY.backend)
    if not isinstance(backend, str) or not isinstance(path, list) or not all(isinstance(p, str) for p in path):
        raise BadSdist(f"{origin}: build-system.build-backend/backend-path have the wrong type")
    return BuildSystem(requires=tuple(requires), backend=backend, backend_path=tuple(path))


def unpack(path: Path, dest: Path) -> Path:
    """Unpack the sdist at ``path`` into the empty directory ``dest``; return its single root folder.

    Nothing lands outside ``dest``: tar members go through the ``data`` filter (no absolute paths,
    no ``..``, no links out, no devices), zip names are checked the same way.
    """
    _check_size(path)
    total = 0
    try:
        if _is_zip(path):
            with zipfile.ZipFile(path) as z:
                infos = z.infolist()
                if len(infos) > MAX_MEMBERS:
                    raise BadSdist(f"{path.name} has more than {MAX_MEMBERS} members")
                for info in infos:
                    p = PurePosixPath(info.filename)
                    if p.is_absolute() or ".." in p.parts or "\\" in info.filename:
                        raise BadSdist(f"{path.name}: member {info.filename!r} points outside the archive")
                    total += info.file_size
                    if total > MAX_UNPACKED:
                        raise BadSdist(f"{path.name} unpacks to more than {MAX_UNPACKED} bytes")
                z.extractall(dest)
        else:
            with tarfile.open(path, mode="r|*") as t:
                for count, member in enumerate(t):
                    if count > MAX_MEMBERS:
                        raise BadSdist(f"{path.name} has more than {MAX_MEMBERS} members")
                    total += max(member.size, 0)
                    if total > MAX_UNPACKED:
                        raise BadSdist(f"{path.name} unpacks to more than {MAX_UNPACKED} bytes")
                    t.extract(member, dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, ValueError) as e:
        raise BadSdist(f"{path.name} cannot be unpacked safely: {e}") from None
    roots = [p for p in dest.iterdir()]
    if len(roots) != 1 or not roots[0].is_dir():
        raise BadSdist(f"{path.name} does not hold a single top-level folder, as sdists do")
    return roots[0]
