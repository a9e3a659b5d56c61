"""CUDA and NVIDIA drivers: the tables in ``tables.toml`` and the arithmetic over them.

The tables are loaded on first use (``tables()``), once, and validated row by row: a malformed row
is a ``TableError`` that names the field (``toolkit-drivers.rows[3].linux``). See the package
docstring for what the tables mean and where they come from.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

_DRIVER = re.compile(r"\d+(\.\d+)*")
_MINOR = re.compile(r"(\d+)\.(\d+)")
_BUILD = re.compile(r"cu\d{2,3}")
_URL = re.compile(r"https://\S+")


class TableError(ValueError):
    """``tables.toml`` is malformed. It ships inside the package, so this is a bug in wheelhouse
    (or a damaged install), not something a user's input causes."""


class Release(NamedTuple):
    """A torch release on download.pytorch.org: the Python range it has wheels for, and its CUDA builds."""

    python_min: tuple[int, int]
    python_max: tuple[int, int]
    builds: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tables:
    """The three tables, keyed for look-up (read-only mappings)."""

    toolkit: Mapping[tuple[int, int], tuple[str, str | None]]  # CUDA (major, minor) -> (Linux, Windows) toolkit driver
    compat: Mapping[int, tuple[str, str]]  # CUDA major -> (Linux, Windows) minor version compatibility minimum
    releases: Mapping[tuple[int, int], Release]  # torch (major, minor) -> Release


# ---------------------------------------------------------------------------------------------
# loading and validation


class _Rows:
    """One table's rows, with helpers that raise ``TableError`` naming the path of the bad field."""

    def __init__(self, data: dict[str, Any], name: str, origin: str, keys: set[str], required: set[str]) -> None:
        self.origin, self.name = origin, name
        table = data.get(name)
        if not isinstance(table, dict):
            raise TableError(f"{origin}: missing table [{name}]")
        unknown = set(table) - {"title", "source", "rows"}
        if unknown:
            raise TableError(f"{origin}: [{name}] has unknown keys {sorted(unknown)}")
        self.url(table.get("source"), f"{name}.source")
        rows = table.get("rows")
        if not isinstance(rows, list) or not rows:
            raise TableError(f"{origin}: {name}.rows must be a non-empty array of tables")
        self.rows: list[tuple[str, dict[str, Any]]] = []
        for i, row in enumerate(rows):
            where = f"{name}.rows[{i}]"
            if not isinstance(row, dict):
                raise TableError(f"{origin}: {where} must be a table")
            if set(row) - keys - {"source"}:
                raise TableError(f"{origin}: {where} has unknown keys {sorted(set(row) - keys - {'source'})}")
            if required - set(row):
                raise TableError(f"{origin}: {where} lacks {', '.join(sorted(required - set(row)))}")
            if "source" in row:
                self.url(row["source"], f"{where}.source")
            self.rows.append((where, row))

    def fail(self, where: str, problem: str) -> TableError:
        return TableError(f"{self.origin}: {where}: {problem}")

    def url(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not _URL.fullmatch(value):
            raise self.fail(where, f"the source must be an https:// URL, not {value!r}")
        return value

    def driver(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not _DRIVER.fullmatch(value):
            raise self.fail(where, f"{value!r} is not a driver version (digits and dots, e.g. '560.28.03')")
        return value

    def minor(self, value: Any, where: str) -> tuple[int, int]:
        m = _MINOR.fullmatch(value) if isinstance(value, str) else None
        if m is None:
            raise self.fail(where, f"{value!r} is not a 'MAJOR.MINOR' version string")
        return int(m.group(1)), int(m.group(2))

    def unique(self, seen: dict[Any, Any], key: Any, where: str) -> None:
        if key in seen:
            raise self.fail(where, f"a second row for {key!r}")


def parse_tables(text: str, origin: str = "tables.toml") -> Tables:
    """Read and validate the tables from ``text`` (the contents of a ``tables.toml``)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TableError(f"{origin}: not valid TOML: {e}") from None
    extra = set(data) - {"toolkit-drivers", "compat-drivers", "torch-releases"}
    if extra:
        raise TableError(f"{origin}: unknown tables {sorted(extra)}")

    compat_rows = _Rows(data, "compat-drivers", origin, {"cuda-major", "linux", "windows"}, {"cuda-major", "linux", "windows"})
    compat: dict[int, tuple[str, str]] = {}
    for where, row in compat_rows.rows:
        major = row["cuda-major"]
        if not isinstance(major, int) or isinstance(major, bool) or major < 11:
            raise compat_rows.fail(f"{where}.cuda-major", f"{major!r} is not a CUDA major version >= 11 (no minor compatibility before)")
        compat_rows.unique(compat, major, f"{where}.cuda-major")
        compat[major] = (compat_rows.driver(row["linux"], f"{where}.linux"), compat_rows.driver(row["windows"], f"{where}.windows"))

    toolkit_rows = _Rows(data, "toolkit-drivers", origin, {"cuda", "linux", "windows"}, {"cuda", "linux"})
    toolkit: dict[tuple[int, int], tuple[str, str | None]] = {}
    for where, row in toolkit_rows.rows:
        cuda = toolkit_rows.minor(row["cuda"], f"{where}.cuda")
        toolkit_rows.unique(toolkit, cuda, f"{where}.cuda")
        windows = toolkit_rows.driver(row["windows"], f"{where}.windows") if "windows" in row else None
        if windows is None and cuda[0] not in compat:
            # The Windows driver then falls back to the major version's compatibility minimum.
            raise toolkit_rows.fail(f"{where}.windows", f"missing, and compat-drivers has no row for CUDA {cuda[0]} to stand in")
        toolkit[cuda] = (toolkit_rows.driver(row["linux"], f"{where}.linux"), windows)

    release_rows = _Rows(data, "torch-releases", origin, {"torch", "python", "cuda-builds"}, {"torch", "python", "cuda-builds"})
    releases: dict[tuple[int, int], Release] = {}
    for where, row in release_rows.rows:
        torch = release_rows.minor(row["torch"], f"{where}.torch")
        release_rows.unique(releases, torch, f"{where}.torch")
        py = row["python"]
        if not isinstance(py, list) or len(py) != 2:
            raise release_rows.fail(f"{where}.python", f"{py!r} is not a [lowest, highest] pair of Python versions")
        lo, hi = release_rows.minor(py[0], f"{where}.python[0]"), release_rows.minor(py[1], f"{where}.python[1]")
        if lo > hi:
            raise release_rows.fail(f"{where}.python", f"the lowest Python {py[0]} is above the highest {py[1]}")
        builds = row["cuda-builds"]
        if not isinstance(builds, list) or not builds:
            raise release_rows.fail(f"{where}.cuda-builds", "must be a non-empty array of build names (cu126, ...)")
        for j, b in enumerate(builds):
            if not isinstance(b, str) or not _BUILD.fullmatch(b):
                raise release_rows.fail(f"{where}.cuda-builds[{j}]", f"{b!r} is not a CUDA build name (cuXYZ)")
        releases[torch] = Release(lo, hi, tuple(builds))

    return Tables(toolkit=MappingProxyType(toolkit), compat=MappingProxyType(compat), releases=MappingProxyType(releases))


@functools.cache
def tables() -> Tables:
    """The tables shipped in ``bundler/gpu/tables.toml``, read once on first use."""
    text = resources.files(__package__).joinpath("tables.toml").read_text(encoding="utf-8")
    return parse_tables(text, "bundler/gpu/tables.toml")


# ---------------------------------------------------------------------------------------------
# driver arithmetic


def cuda_version(backend: str) -> tuple[int, int] | None:
    """``cu121`` -> (12, 1), ``cu92`` -> (9, 2); None for ``cpu``."""
    m = re.fullmatch(r"cu(\d{1,2})(\d)", backend)
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_driver(text: str | None, os: str = "linux") -> tuple[int, ...] | None:
    """A driver version as a tuple. Windows' internal form ``31.0.15.5161`` is read as ``551.61``."""
    if not text or not _DRIVER.fullmatch(text.strip()):
        return None
    parts = [int(p) for p in text.strip().split(".")]
    if os == "windows" and len(parts) == 4 and parts[0] < 100:
        digits = (str(parts[2]) + str(parts[3]).rjust(4, "0"))[-5:]
        return (int(digits[:3]), int(digits[3:]))
    return tuple(parts)


def _table_driver(cuda: tuple[int, int], os: str, *, compat: bool) -> str | None:
    """The driver the tables name for CUDA ``cuda`` on ``os``: the toolkit driver, or with ``compat``
    the minor version compatibility minimum (the toolkit driver before CUDA 11). None: no row."""
    t = tables()
    if compat and cuda[0] in t.compat:
        return t.compat[cuda[0]][1 if os == "windows" else 0]
    row = t.toolkit.get(cuda)
    if row is None:
        return None
    if os == "windows":
        return row[1] or t.compat[cuda[0]][1]
    return row[0]


def toolkit_driver(cuda: tuple[int, int], os: str) -> tuple[int, ...] | None:
    """The toolkit driver of CUDA ``cuda`` on ``os`` (Table 3), as a tuple; None when the table has no row."""
    return parse_driver(_table_driver(cuda, os, compat=False))


def compat_driver(cuda: tuple[int, int], os: str) -> tuple[int, ...] | None:
    """The minimum driver that runs CUDA ``cuda`` through minor version compatibility (Table 2)."""
    return parse_driver(_table_driver(cuda, os, compat=True))


def supported_cuda(driver: tuple[int, ...], os: str) -> tuple[int, int] | None:
    """The newest CUDA toolkit the driver fully supports (Table 3), or None."""
    ok = [c for c in tables().toolkit if (d := toolkit_driver(c, os)) is not None and driver >= d]
    return max(ok) if ok else None


def driver_ok(backend: str, driver: tuple[int, ...], os: str, *, compat: bool) -> bool:
    """Whether ``driver`` runs the builds of ``backend``: fully (Table 3), or with ``compat`` through
    minor version compatibility (Table 2). A CPU backend runs anywhere."""
    cuda = cuda_version(backend)
    if cuda is None:
        return True
    need = compat_driver(cuda, os) if compat else toolkit_driver(cuda, os)
    if need is None:  # a CUDA release newer than the table: at least what the newest known one needs
        known = [c for c in tables().toolkit if c[0] == cuda[0]] or list(tables().toolkit)
        need = toolkit_driver(max(known), os)
    return need is not None and driver >= need


def os_label(os: str) -> str:
    """``linux`` -> ``Linux``, for messages."""
    return {"linux": "Linux", "windows": "Windows", "macos": "macOS"}.get(os, os)


def driver_need(backend: str, os: str) -> str:
    """``'>= 560.28.03 (>= 525.60.13 through CUDA minor version compatibility)'``, for messages."""
    cuda = cuda_version(backend)
    if cuda is None:
        return "no NVIDIA driver"
    full, compat = _table_driver(cuda, os, compat=False), _table_driver(cuda, os, compat=True)
    text = f">= {full}" if full else f"a driver for CUDA {cuda[0]}.{cuda[1]} (newer than wheelhouse's table)"
    if compat and compat != full:
        text += f" (>= {compat} through CUDA minor version compatibility)"
    return text
