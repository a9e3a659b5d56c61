"""Generate tiny, valid, installable wheels for tests.

The wheels follow the binary distribution format spec: a ``<pkg>/__init__.py``,
``METADATA`` (Metadata-Version 2.1), ``WHEEL`` and a ``RECORD`` with sha256
hashes and sizes. Output is byte-for-byte deterministic: fixed timestamps,
fixed permissions and a fixed entry order, so equal inputs give equal sha256.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.utils import canonicalize_name

__all__ = ["expand_tag", "make_wheel", "read_metadata", "wheel_filename"]

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644 << 16  # regular file, rw-r--r--


def _escape_name(name: str) -> str:
    """Distribution name as it appears in filenames: runs of ``-_.`` become ``_``."""
    return re.sub(r"[-_.]+", "_", name)


def wheel_filename(name: str, version: str, tag: str = "py3-none-any") -> str:
    """Return ``{name}-{version}-{tag}.whl`` with the name/version escaped per spec.

    Case is preserved (``PyYAML`` stays ``PyYAML``), as on real indexes.
    """
    return f"{_escape_name(name)}-{version.replace('-', '_')}-{tag}.whl"


def expand_tag(tag: str) -> list[str]:
    """Expand a compressed tag set (``py2.py3-none-any``) into single tags, in order."""
    interpreters, abis, platforms = tag.split("-")
    return [
        f"{i}-{a}-{p}"
        for i in interpreters.split(".")
        for a in abis.split(".")
        for p in platforms.split(".")
    ]


def _is_pure(tag: str) -> bool:
    """True when every tag in the set is ``*-none-any`` (Root-Is-Purelib)."""
    return all(t.split("-")[1:] == ["none", "any"] for t in expand_tag(tag))


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _metadata(
    name: str,
    version: str,
    requires_dist: Iterable[str],
    requires_python: str | None,
    provides_extra: Iterable[str],
    license_expression: str | None = None,
) -> bytes:
    lines = [
        "Metadata-Version: 2.4" if license_expression else "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: Generated test package {name}",
    ]
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    if license_expression:
        lines.append(f"License-Expression: {license_expression}")
    lines += [f"Provides-Extra: {extra}" for extra in provides_extra]
    lines += [f"Requires-Dist: {req}" for req in requires_dist]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _wheel_file(tag: str) -> bytes:
    lines = [
        "Wheel-Version: 1.0",
        "Generator: wheelhouse-tests-wheelgen (1.0)",
        f"Root-Is-Purelib: {'true' if _is_pure(tag) else 'false'}",
    ]
    lines += [f"Tag: {t}" for t in expand_tag(tag)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def make_wheel(
    dest_dir: Path | str,
    name: str,
    version: str,
    *,
    tag: str = "py3-none-any",
    requires_dist: Iterable[str] = (),
    requires_python: str | None = None,
    provides_extra: Iterable[str] = (),
    files: Mapping[str, bytes | str] | None = None,
    license_expression: str | None = None,
) -> Path:
    """Write a wheel into ``dest_dir`` and return its path.

    ``files`` maps extra archive paths to contents; they are added next to the
    default ``<pkg>/__init__.py`` (and may override it). An existing file with
    the same name is overwritten.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    pkg = canonicalize_name(name).replace("-", "_")
    dist_info = f"{_escape_name(name)}-{version.replace('-', '_')}.dist-info"

    payload: dict[str, bytes] = {f"{pkg}/__init__.py": f'__version__ = "{version}"\n'.encode()}
    for arcname, content in (files or {}).items():
        payload[arcname] = content.encode("utf-8") if isinstance(content, str) else content
    entries = sorted(payload.items())
    entries.append(
        (f"{dist_info}/METADATA",
         _metadata(name, version, requires_dist, requires_python, provides_extra, license_expression))
    )
    entries.append((f"{dist_info}/WHEEL", _wheel_file(tag)))

    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for arcname, data in entries:
        writer.writerow([arcname, _record_hash(data), len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    entries.append((f"{dist_info}/RECORD", record.getvalue().encode("utf-8")))

    path = dest / wheel_filename(name, version, tag)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for arcname, data in entries:
            info = zipfile.ZipInfo(arcname, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = _FILE_MODE
            zf.writestr(info, data)
    path.write_bytes(buf.getvalue())
    return path


def read_metadata(wheel: Path | str) -> bytes:
    """Return the exact bytes of ``*.dist-info/METADATA`` inside a wheel."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist()
                 if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            raise ValueError(f"{wheel}: expected one .dist-info/METADATA, found {names}")
        return zf.read(names[0])
