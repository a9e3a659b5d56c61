"""Checks for values that enter from outside (index pages, locks, recipes, profiles, bundles).

Each function returns the value when it is well-formed and raises ``BadInput`` naming where it
came from otherwise. Values are checked where they enter, so nothing unchecked can reach a
generated file (``requirements.txt``, ``pylock.toml``, ``bundle.json``, ``SHA256SUMS``, ``simple/``)
or a command line.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from packaging.utils import (InvalidSdistFilename, InvalidWheelFilename, canonicalize_name, parse_sdist_filename,
                             parse_wheel_filename)
from packaging.version import InvalidVersion, Version

from bundler.errors import BadInput
from bundler.fsutil import read_regular

_SHA256 = re.compile(r"[0-9a-f]{64}")
# PEP 508 names: letters, digits and . _ - inside, a letter or digit at both ends.
_PROJECT = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
# Target names appear in file names, markers' neighbours, shell output and JSON keys.
_TARGET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,79}")
_FILENAME_CHARS = re.compile(r"[A-Za-z0-9._+!-]+")
SDIST_SUFFIXES = (".tar.gz", ".zip")
MAX_FILENAME = 255


def sha256_hex(value: object, where: str) -> str:
    """A sha256 digest: exactly 64 lowercase hex digits (uppercase digests are lowered first)."""
    if isinstance(value, str) and _SHA256.fullmatch(value.lower()):
        return value.lower()
    raise BadInput(f"{where}: {_show(value)} is not a sha256 digest (64 hex digits)")


def project_name(value: object, where: str) -> str:
    """A PEP 508 project name, as given (callers canonicalize when they compare)."""
    if isinstance(value, str) and len(value) <= 200 and _PROJECT.fullmatch(value):
        return value
    raise BadInput(f"{where}: {_show(value)} is not a valid project name")


def version(value: object, where: str) -> str:
    """A PEP 440 version string, as given."""
    if isinstance(value, str) and len(value) <= 200:
        try:
            Version(value)
            if value.strip() == value and "\n" not in value:
                return value
        except InvalidVersion:
            pass
    raise BadInput(f"{where}: {_show(value)} is not a valid PEP 440 version")


def target_name(value: object, where: str) -> str:
    """A target name: letters, digits and ``._+-``, at most 80 characters, starting alphanumeric."""
    if isinstance(value, str) and _TARGET.fullmatch(value):
        return value
    raise BadInput(f"{where}: {_show(value)} is not a valid target name",
                   hint="use letters, digits, '.', '_', '+' and '-' (at most 80 characters)")


def dist_filename(value: object, where: str, *, project: str | None = None) -> str:
    """A wheel or sdist filename per its grammar, with no path separator or odd character; when
    ``project`` is given, the file must belong to it."""
    if not isinstance(value, str) or not value or len(value) > MAX_FILENAME or not _FILENAME_CHARS.fullmatch(value):
        raise BadInput(f"{where}: {_show(value)} is not a distribution filename")
    try:
        if value.endswith(".whl"):
            name = parse_wheel_filename(value)[0]
        elif value.endswith(SDIST_SUFFIXES):
            name = parse_sdist_filename(value)[0]
        else:
            raise BadInput(f"{where}: {_show(value)} is neither a wheel nor an sdist (.tar.gz, .zip)")
    except (InvalidWheelFilename, InvalidSdistFilename) as e:
        raise BadInput(f"{where}: {_show(value)} is not a valid distribution filename ({e})") from None
    if project is not None and canonicalize_name(project) != name:
        raise BadInput(f"{where}: {value} is a file of {name}, not of {canonicalize_name(project)}")
    return value


def http_url(value: object, where: str) -> str:
    """An absolute http(s) URL without whitespace or control characters."""
    if (isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) <= 8192
            and not any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value)):
        return value
    raise BadInput(f"{where}: {_show(value)} is not an http(s) URL")


def _show(value: object) -> str:
    """A short, printable rendering of a rejected value (never more than 80 characters)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


MAX_TOML = 16 << 20  # recipes, locks and profiles are kilobytes; a lock of thousands of files is a few MB


def read_toml(path: Path, what: str, *, limit: int = MAX_TOML) -> dict[str, Any]:
    """Load a TOML file; an unreadable, oversized, non-regular or invalid file is a ``BadInput``
    naming ``what`` and the path."""
    try:
        data = read_regular(path, limit)
    except OSError as e:
        raise BadInput(f"cannot read {what} {path}: {e.strerror or e}") from None
    return parse_toml(data, path, what)


def parse_toml(data: bytes, path: Path, what: str) -> dict[str, Any]:
    """Parse TOML bytes read from ``path``; errors as in ``read_toml``."""
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadInput(f"{what} {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{what} {path} is not valid TOML: {e}") from None
    except RecursionError:  # tomllib recurses on nested inline tables and arrays
        raise BadInput(f"{what} {path} nests too deeply") from None
