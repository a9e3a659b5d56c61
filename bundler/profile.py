"""Target profiles: the ordered tag list and PEP 508 marker environment of a target machine.

Everything here is computed from explicit facts. Nothing reads the machine wheelhouse runs on:
a profile comes from a file captured on the target, from a uv-style platform name plus a Python
version, or from a named preset.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from packaging import tags as ptags
from packaging.version import InvalidVersion, Version

from bundler._target.capture_profile import (
    MIN_TARGET_PYTHON,
    PROFILE_FORMAT,
    PROFILE_FORMAT_VERSION,
    TARGET_PYTHON_REASON,
)
from bundler.errors import BadInput
from bundler.fsutil import read_regular
from bundler.validate import target_name
from bundler.platforms import LEGACY_MANYLINUX, MANYLINUX_MIN, Platform, parse_platform

__all__ = ["Facts", "Platform", "Profile", "load_profile", "parse_platform", "platform_tags", "preset_profile",
           "profile_for_platform", "resolve_profile"]  # Platform and parse_platform live in bundler.platforms

# The newest CPython minor a target may name (uv's range); the oldest is MIN_TARGET_PYTHON.
MAX_TARGET_MINOR = 15

MARKER_KEYS = (
    "implementation_name",
    "implementation_version",
    "os_name",
    "platform_machine",
    "platform_python_implementation",
    "platform_release",
    "platform_system",
    "platform_version",
    "python_full_version",
    "python_version",
    "sys_platform",
)


_TAG = re.compile(r"[A-Za-z0-9_.]{1,64}-[A-Za-z0-9_.]{1,64}-[A-Za-z0-9_.]{1,200}")
_MARKER_VALUE = re.compile(r"[^'\"\x00-\x1f\x7f]{0,300}")

@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What is known about a target beyond its tags and markers."""

    implementation: str = "cpython"
    python_version: str = "3.11.0"
    os: str = "linux"  # linux | windows | macos
    arch: str = "x86_64"
    libc: str | None = None  # glibc | musl | None
    libc_version: str | None = None  # "2.28", "1.2"
    macos_version: str | None = None  # "13.0"
    nvidia_driver: str | None = None  # "535.104.05"
    source: str = "preset"  # preset | platform | capture
    pip_version: str | None = None  # the target's pip, when captured
    system_pip_tags_count: str | None = None  # how many tags that pip accepts (the profile keeps a current pip's)
    tags_source: str | None = None  # where a captured tag list came from ("pip 23.2.1")
    captured_at: str | None = None
    capture_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k.replace("_", "-"): getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Facts:
        known = set(cls.__slots__)
        kwargs = {k.replace("-", "_"): v for k, v in data.items() if k.replace("-", "_") in known}
        return cls(**{k: (str(v) if v is not None else None) for k, v in kwargs.items()})


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """A target machine: supported tags in priority order (best first) and its marker environment."""

    name: str
    tags: tuple[str, ...]
    markers: Mapping[str, str]
    facts: Facts = field(default_factory=Facts)

    def tag_ranks(self) -> dict[str, int]:
        """Map each supported tag string to its priority (0 is best)."""
        ranks: dict[str, int] = {}
        for i, tag in enumerate(self.tags):
            ranks.setdefault(tag, i)
        return ranks

    def python_tags(self) -> list[str]:
        """The distinct interpreter tags (``cp311``, ``py3``...) in priority order."""
        seen: dict[str, None] = {}
        for t in self.tags:
            seen.setdefault(t.split("-")[0], None)
        return list(seen)

    def platform_tags(self) -> list[str]:
        """The distinct platform tags in priority order, ``any`` excluded."""
        seen: dict[str, None] = {}
        for t in self.tags:
            plat = t.split("-")[2]
            if plat != "any":
                seen.setdefault(plat, None)
        return list(seen)

    def describe(self) -> str:
        """A one-line human description: ``CPython 3.11.0 on linux x86_64 (glibc 2.28)``."""
        f = self.facts
        impl = {"cpython": "CPython", "pypy": "PyPy"}.get(f.implementation, f.implementation)
        extra = ""
        if f.libc:
            extra = f" ({f.libc} {f.libc_version})"
        elif f.macos_version:
            extra = f" (macOS {f.macos_version})"
        return f"{impl} {f.python_version} on {f.os} {f.arch}{extra}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "format-version": PROFILE_FORMAT_VERSION,
            "name": self.name,
            "facts": self.facts.to_dict(),
            "markers": dict(self.markers),
            "tags": list(self.tags),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, origin: str = "profile") -> Profile:
        """Build a profile from its JSON form, checking every field; errors name ``origin``."""
        if not isinstance(data, Mapping):
            raise BadInput(f"{origin}: a profile must be a JSON object")
        if data.get("format") != PROFILE_FORMAT:
            raise BadInput(f"{origin}: not a wheelhouse profile (missing \"format\": \"{PROFILE_FORMAT}\")")
        if data.get("format-version") != PROFILE_FORMAT_VERSION:
            raise BadInput(f"{origin}: unsupported profile format-version {data.get('format-version')!r}")
        tags = data.get("tags")
        if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
            raise BadInput(f"{origin}: 'tags' must be a non-empty list of strings")
        for t in tags:
            if not _TAG.fullmatch(t):
                raise BadInput(f"{origin}: malformed tag {t[:80]!r} (expected interpreter-abi-platform)")
        markers = data.get("markers")
        if not isinstance(markers, Mapping):
            raise BadInput(f"{origin}: 'markers' must be an object")
        missing = [k for k in MARKER_KEYS if not isinstance(markers.get(k), str)]
        if missing:
            raise BadInput(f"{origin}: marker environment lacks {', '.join(missing)}")
        odd = [k for k, v in markers.items() if not isinstance(k, str) or (isinstance(v, str) and not _MARKER_VALUE.fullmatch(v))]
        if odd:  # the values are quoted into markers and lock files: no quotes, no control characters
            raise BadInput(f"{origin}: marker {str(odd[0])[:40]!r} has a value wheelhouse cannot quote safely")
        try:
            python = Version(markers["python_full_version"])
        except InvalidVersion:
            raise BadInput(f"{origin}: python_full_version {markers['python_full_version']!r} is not a version") from None
        if python.release[:2] < MIN_TARGET_PYTHON:
            raise BadInput(f"{origin}: the target runs Python {python}; {_floor_reason()}",
                           hint="capture the profile again with a Python %d.%d or newer on the target" % MIN_TARGET_PYTHON)
        facts = data.get("facts", {})
        if not isinstance(facts, Mapping):
            raise BadInput(f"{origin}: 'facts' must be an object")
        name = target_name(data.get("name") or "target", f"{origin}: name")
        return cls(
            name=name,
            tags=tuple(tags),
            markers={k: str(v) for k, v in markers.items() if isinstance(v, str)},
            facts=Facts.from_dict(facts),
        )

    def with_name(self, name: str) -> Profile:
        """The same profile under another (checked) target name."""
        return replace(self, name=target_name(name, "target name"))


def load_profile(path: str | Path) -> Profile:
    """Read a profile JSON file written by ``capture-profile.py`` or ``wheelhouse profile capture``."""
    p = Path(path)
    try:
        text = read_regular(p, 16 << 20).decode("utf-8")  # a profile is a few kB; never a FIFO or device
    except OSError as e:
        raise BadInput(f"cannot read profile {p}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise BadInput(f"profile {p} is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"profile {p} is not valid JSON: {e.msg} at line {e.lineno}") from None
    except RecursionError:
        raise BadInput(f"profile {p} nests too deeply") from None
    return Profile.from_dict(data, origin=str(p))


# ---------------------------------------------------------------------------------------------
# Profiles from a platform name and a Python version (uv's --python-platform/--python-version).

def _floor_reason() -> str:
    return "wheelhouse supports target Pythons %d.%d and newer: %s" % (MIN_TARGET_PYTHON + (TARGET_PYTHON_REASON,))


def parse_python_version(text: str) -> tuple[int, int, int]:
    """Parse ``3.11`` (meaning 3.11.0) or ``3.11.7``; CPython 3.8 (the installer's floor) to 3.15."""
    m = re.fullmatch(r"\s*(?:cp|py)?(3)\.?(\d{1,2})(?:\.(\d{1,2}))?\s*", text)
    if not m:
        raise BadInput(f"bad Python version {text!r}", hint="give it as X.Y or X.Y.Z, e.g. 3.11 or 3.11.7")
    major, minor, micro = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if (major, minor) < MIN_TARGET_PYTHON:
        raise BadInput(f"unsupported Python version {text!r}: {_floor_reason()}")
    if minor > MAX_TARGET_MINOR:
        raise BadInput(f"unsupported Python version {text!r}: wheelhouse targets CPython %d.%d to 3.{MAX_TARGET_MINOR}"
                       % MIN_TARGET_PYTHON)
    return (major, minor, micro)


def _linux_platform_tags(p: Platform) -> list[str]:
    arch = p.arch
    out: list[str] = []
    assert p.libc_version is not None
    major, minor = p.libc_version
    if p.libc == "glibc":
        for m in range(minor, MANYLINUX_MIN[arch] - 1, -1):
            out.append(f"manylinux_{major}_{m}_{arch}")
            if (major, m) in LEGACY_MANYLINUX:
                out.append(f"{LEGACY_MANYLINUX[major, m]}_{arch}")
    else:
        for m in range(minor, -1, -1):
            out.append(f"musllinux_{major}_{m}_{arch}")
    out.append(f"linux_{arch}")
    return out


def platform_tags(p: Platform) -> list[str]:
    """Platform tags of a parsed platform, best first (pip/packaging order)."""
    if p.os == "linux":
        return _linux_platform_tags(p)
    if p.os == "windows":
        return [{"x86_64": "win_amd64", "aarch64": "win_arm64", "i686": "win32"}[p.arch]]
    assert p.macos_version is not None
    mac_arch = "arm64" if p.arch == "aarch64" else "x86_64"
    # packaging 26.3 misspells the "fat32" binary format as "fat3"; real wheels say fat32.
    return [t[: -len("fat3")] + "fat32" if t.endswith("_fat3") else t for t in ptags.mac_platforms(p.macos_version, mac_arch)]


def _markers_for(p: Platform, version: tuple[int, int, int]) -> dict[str, str]:
    full = "%d.%d.%d" % version
    machine = {
        "linux": p.arch,
        "windows": {"x86_64": "AMD64", "aarch64": "ARM64", "i686": "x86"}.get(p.arch, p.arch),
        "macos": "arm64" if p.arch == "aarch64" else p.arch,
    }[p.os]
    return {
        "implementation_name": "cpython",
        "implementation_version": full,
        "os_name": "nt" if p.os == "windows" else "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": {"linux": "Linux", "windows": "Windows", "macos": "Darwin"}[p.os],
        "platform_version": "",
        "python_full_version": full,
        "python_version": "%d.%d" % version[:2],
        "sys_platform": {"linux": "linux", "windows": "win32", "macos": "darwin"}[p.os],
    }


def cpython_tag_list(version: tuple[int, int, int], plats: Iterable[str]) -> list[str]:
    """The ordered tags a CPython of ``version`` accepts on ``plats`` (explicit ABIs, no host lookups)."""
    py = version[:2]
    plats = list(plats)
    abi = "cp%d%d" % py + ("m" if py < (3, 8) else "")
    out = [str(t) for t in ptags.cpython_tags(py, [abi], plats)]
    out += [str(t) for t in ptags.compatible_tags(py, "cp%d%d" % py, plats)]
    return out


def profile_for_platform(
    platform: str, python_version: str, *, name: str | None = None, macos_target: str | None = None
) -> Profile:
    """Build a profile from a uv-style platform name and a Python version (uv's defaults)."""
    p = parse_platform(platform, macos_target=macos_target)
    version = parse_python_version(python_version)
    facts = Facts(
        implementation="cpython",
        python_version="%d.%d.%d" % version,
        os=p.os,
        arch=p.arch,
        libc=p.libc,
        libc_version="%d.%d" % p.libc_version if p.libc_version else None,
        macos_version="%d.%d" % p.macos_version if p.macos_version else None,
        source="platform",
    )
    label = name or f"{platform.strip().lower()}-cp{version[0]}{version[1]}"
    return Profile(name=label, tags=tuple(cpython_tag_list(version, platform_tags(p))), markers=_markers_for(p, version), facts=facts)


# Named presets: common real machines with their exact glibc and default Python.
PRESETS: dict[str, tuple[str, str, str]] = {
    # name: (platform, python version, description)
    "rhel7-py39": ("x86_64-manylinux_2_17", "3.9", "RHEL/CentOS 7 (glibc 2.17) with Python 3.9"),
    "rhel8-py311": ("x86_64-manylinux_2_28", "3.11", "RHEL/Rocky/Alma 8 (glibc 2.28) with Python 3.11"),
    "rhel9-py311": ("x86_64-manylinux_2_34", "3.11", "RHEL/Rocky/Alma 9 (glibc 2.34) with Python 3.11"),
    "ubuntu20.04-py38": ("x86_64-manylinux_2_31", "3.8.10", "Ubuntu 20.04 system Python 3.8.10 (glibc 2.31)"),
    "ubuntu22.04-py310": ("x86_64-manylinux_2_35", "3.10.12", "Ubuntu 22.04 system Python 3.10.12 (glibc 2.35)"),
    "ubuntu24.04-py312": ("x86_64-manylinux_2_39", "3.12.3", "Ubuntu 24.04 system Python 3.12.3 (glibc 2.39)"),
    "debian12-py311": ("x86_64-manylinux_2_36", "3.11.2", "Debian 12 system Python 3.11.2 (glibc 2.36)"),
    "ubuntu22.04-aarch64-py310": ("aarch64-manylinux_2_35", "3.10.12", "Ubuntu 22.04 on ARM64 (Jetson, Graviton, Grace)"),
    "alpine3.20-py312": ("x86_64-musllinux_1_2", "3.12", "Alpine Linux 3.20 (musl 1.2) with Python 3.12"),
    "windows-py311": ("x86_64-pc-windows-msvc", "3.11", "Windows 10/11 x64 with Python 3.11"),
    "windows-py312": ("x86_64-pc-windows-msvc", "3.12", "Windows 10/11 x64 with Python 3.12"),
    "macos-arm64-py312": ("aarch64-apple-darwin", "3.12", "Apple silicon Mac (macOS 13+) with Python 3.12"),
    "macos-x86_64-py311": ("x86_64-apple-darwin", "3.11", "Intel Mac (macOS 13+) with Python 3.11"),
}


def preset_profile(name: str) -> Profile:
    """Return the named preset profile."""
    try:
        platform, version, _ = PRESETS[name]
    except KeyError:
        raise BadInput(f"unknown profile preset {name!r}", hint="run 'wheelhouse profile list' to see the presets, or give a profile file") from None
    return profile_for_platform(platform, version, name=name)


def resolve_profile(spec: str, *, host: Callable[[], Profile] | None = None) -> Profile:
    """A ``--profile`` value: ``host``, a preset name, or the path of a profile JSON file.

    ``host`` captures the machine running wheelhouse; only the command line passes it, so nothing
    below it ever looks at this machine.
    """
    if spec == "host":
        if host is None:
            raise BadInput("the target 'host' (the Python running wheelhouse) can be named only on the command line")
        return host()
    if spec in PRESETS:
        return preset_profile(spec)
    if spec.endswith(".json") or "/" in spec or Path(spec).exists():
        return load_profile(spec)
    return preset_profile(spec)
