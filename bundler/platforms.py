"""Wheel platform tags and CPU architecture names, read one way by the whole builder.

The facts are the target side's: ``bundler/_target/capture_profile.py`` (stdlib only, shipped in
every bundle) defines the architecture aliases, the legacy manylinux names and the platform-tag
parser, and the bundle's installer uses the same code on the target. This module re-exports them
for ``profile``, ``select`` and ``diagnose`` and adds what only the builder needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bundler._target.capture_profile import ARCH_ALIASES, LEGACY_MANYLINUX, normalize_arch
from bundler._target.capture_profile import parse_platform_tag as _split_platform_tag
from bundler.errors import BadInput

__all__ = [
    "ARCH_ALIASES",
    "LEGACY_MANYLINUX",
    "MANYLINUX_MIN",
    "PLATFORM_EXAMPLES",
    "Platform",
    "PlatformTag",
    "libc_requirement",
    "normalize_arch",
    "parse_platform",
    "parse_platform_tag",
]

# The oldest glibc minor that has manylinux wheels, per architecture (manylinux1 for x86, PEP 599's
# manylinux2014 for the others, later manylinux_2_X images for armv7l and riscv64).
# riscv64 is uv's manylinux_2_31 floor (packaging would go down to 2_17 on any architecture).
MANYLINUX_MIN = {"x86_64": 5, "i686": 5, "aarch64": 17, "ppc64le": 17, "s390x": 17, "armv7l": 31, "loongarch64": 36,
                 "riscv64": 31}


@dataclass(frozen=True, slots=True)
class PlatformTag:
    """A parsed wheel platform tag such as ``manylinux_2_17_x86_64`` or ``macosx_11_0_arm64``."""

    kind: str  # glibc | musl | macos | linux | windows
    version: tuple[int, int] | None  # the libc's or macOS's (major, minor); None for linux and windows
    arch: str  # as the tag spells it: x86_64, arm64, amd64, universal2 ...
    base: str  # the tag without its architecture: manylinux_2_17, manylinux2014, macosx_11_0, linux

    @property
    def libc(self) -> str | None:
        """``glibc`` or ``musl`` for a manylinux or musllinux tag, else None."""
        return self.kind if self.kind in ("glibc", "musl") else None

    @property
    def is_legacy(self) -> bool:
        """Whether this is one of the legacy manylinux names (manylinux1, 2010, 2014)."""
        return self.base in LEGACY_MANYLINUX.values()

    def words(self) -> str:
        """``manylinux_2_17 x86_64``: the base and the architecture apart; Windows tags stay whole."""
        return self.base if self.kind == "windows" else f"{self.base} {self.arch}"


def parse_platform_tag(tag: str) -> PlatformTag | None:
    """Parse a wheel platform tag; None for a kind wheelhouse does not read (``any``, ``ios_...``)."""
    found = _split_platform_tag(tag)
    if found is None:
        return None
    kind, version, arch = found
    tag = tag.lower()
    base = tag if kind == "windows" else tag[: -len(arch) - 1]
    return PlatformTag(kind=kind, version=version, arch=arch, base=base)


def libc_requirement(tag: str) -> tuple[str, tuple[int, int], str] | None:
    """``(libc, (major, minor), arch)`` a manylinux or musllinux tag needs, legacy names included."""
    p = parse_platform_tag(tag)
    if p is None or p.libc is None or p.version is None:
        return None
    return p.libc, p.version, p.arch


# ---------------------------------------------------------------------------------------------
# Platform names (uv's --python-platform).

DEFAULT_GLIBC = (2, 28)
DEFAULT_MUSL = (1, 2)
DEFAULT_MACOS = (13, 0)

PLATFORM_EXAMPLES = (
    "x86_64-manylinux_2_17 ... x86_64-manylinux_2_40, aarch64-manylinux_2_28, x86_64-unknown-linux-gnu, "
    "aarch64-unknown-linux-gnu, powerpc64le-unknown-linux-gnu, s390x-unknown-linux-gnu, x86_64-unknown-linux-musl, "
    "x86_64-pc-windows-msvc, aarch64-pc-windows-msvc, x86_64-apple-darwin, aarch64-apple-darwin, linux, windows, macos"
)

# Names uv accepts for machines a bundle cannot serve: install.sh needs a shell, a venv and pip on
# the target, and Android, iOS and Pyodide (WebAssembly) apps embed Python without them.
UNSERVED = {
    "aarch64-linux-android": "Android", "x86_64-linux-android": "Android",
    "arm64-apple-ios": "iOS", "arm64-apple-ios-simulator": "the iOS simulator", "x86_64-apple-ios-simulator": "the iOS simulator",
    "wasm32-pyodide2024": "Pyodide (WebAssembly)", "wasm32-pyodide2025": "Pyodide (WebAssembly)",
}

# uv's short names, and the Rust target triples it spells some architectures with (wheels say ppc64le).
_SHORT = {"linux": "x86_64-unknown-linux-gnu", "windows": "x86_64-pc-windows-msvc", "macos": "aarch64-apple-darwin"}
_GNU_DEFAULT = {"riscv64": 39, "loongarch64": 36}
_TRIPLE_ARCH = {"powerpc64le": "ppc64le", "powerpc64": "ppc64", "x8664": "x86_64"}


@dataclass(frozen=True, slots=True)
class Platform:
    """A parsed platform name."""

    os: str  # linux | windows | macos
    arch: str  # x86_64 | aarch64 | i686 | ...
    libc: str | None = None
    libc_version: tuple[int, int] | None = None
    macos_version: tuple[int, int] | None = None


def _unknown(name: str, why: str = "") -> BadInput:
    return BadInput(f"unknown platform {name!r}{why}", hint=f"use one of: {PLATFORM_EXAMPLES}")


def parse_platform(name: str, *, macos_target: str | None = None) -> Platform:
    """Parse a platform name as uv's ``--python-platform`` reads it (``x86_64-manylinux_2_28``,
    ``manylinux_2_28_x86_64``, ``aarch64-apple-darwin``, ``powerpc64le-unknown-linux-gnu``...),
    with uv's defaults: glibc 2.28 for ``*-unknown-linux-gnu`` (never below the architecture's
    first manylinux), musl 1.2, macOS 13.0 unless ``macos_target`` says otherwise."""
    raw = name.strip().lower()
    raw = _SHORT.get(raw, raw)
    if raw in UNSERVED:
        raise BadInput(f"platform {name!r} ({UNSERVED[raw]}) cannot be served by a wheelhouse bundle: its install script needs "
                       "a shell, a virtual environment and pip on the target, which Python there does not have",
                       hint="lock for it with uv (uv pip compile --python-platform) and package the app with its own tooling")
    spelled = parse_platform_tag(raw) if "-" not in raw else None
    if spelled is not None and spelled.libc is not None:  # uv also takes the wheel tag: manylinux_2_28_x86_64
        raw = f"{spelled.arch}-{spelled.base}"
    m = re.fullmatch(r"([a-z0-9_]+)-(.+)", raw)
    if not m:
        raise _unknown(name)
    arch = _TRIPLE_ARCH.get(m.group(1)) or normalize_arch(m.group(1))
    rest = m.group(2)
    # "x86_64-manylinux_2_28" names the platform tag manylinux_2_28_x86_64: read it as one.
    tag = parse_platform_tag(f"{rest}_{arch}") if rest.startswith(("manylinux", "musllinux")) else None
    if tag is not None and tag.arch == arch and tag.kind == "glibc" and tag.version is not None:
        ver = tag.version
        if arch in MANYLINUX_MIN and ver[0] == 2 and ver[1] >= MANYLINUX_MIN[arch]:
            return Platform("linux", arch, "glibc", ver)
        if not tag.is_legacy:
            raise _unknown(name, f": manylinux_{ver[0]}_{ver[1]} does not exist for {arch}")
    if rest in ("unknown-linux-gnu", "unknown-linux") and arch in MANYLINUX_MIN:
        # uv's defaults: glibc 2.28, but 2.36 for loongarch64 and 2.39 for riscv64-unknown-linux
        return Platform("linux", arch, "glibc", (2, _GNU_DEFAULT.get(arch, max(DEFAULT_GLIBC[1], MANYLINUX_MIN[arch]))))
    if tag is not None and tag.arch == arch and tag.kind == "musl" and tag.version and tag.version[0] == 1 and arch in MANYLINUX_MIN:
        return Platform("linux", arch, "musl", tag.version)
    if rest == "unknown-linux-musl" and arch in MANYLINUX_MIN:
        return Platform("linux", arch, "musl", DEFAULT_MUSL)
    if rest == "pc-windows-msvc" and arch in ("x86_64", "aarch64", "i686"):
        return Platform("windows", arch)
    if rest == "apple-darwin" and arch in ("x86_64", "aarch64"):
        mac = DEFAULT_MACOS
        if macos_target:
            parts = macos_target.split(".")
            try:
                mac = (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)
            except ValueError:
                raise BadInput(f"bad MACOSX_DEPLOYMENT_TARGET {macos_target!r}") from None
        return Platform("macos", arch, macos_version=mac)
    raise _unknown(name)
