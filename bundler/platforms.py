"""Wheel platform tags and CPU architecture names, read one way by the whole builder.

The facts are the target side's: ``bundler/_target/capture_profile.py`` (stdlib only, shipped in
every bundle) defines the architecture aliases, the legacy manylinux names and the platform-tag
parser, and the bundle's installer uses the same code on the target. This module re-exports them
for ``profile``, ``select`` and ``diagnose`` and adds what only the builder needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from bundler._target.capture_profile import ARCH_ALIASES, LEGACY_MANYLINUX, normalize_arch
from bundler._target.capture_profile import parse_platform_tag as _split_platform_tag

__all__ = [
    "ARCH_ALIASES",
    "LEGACY_MANYLINUX",
    "MANYLINUX_MIN",
    "PlatformTag",
    "libc_requirement",
    "normalize_arch",
    "parse_platform_tag",
]

# The oldest glibc minor that has manylinux wheels, per architecture (manylinux1 for x86, PEP 599's
# manylinux2014 for the others, later manylinux_2_X images for armv7l and riscv64).
MANYLINUX_MIN = {"x86_64": 5, "i686": 5, "aarch64": 17, "ppc64le": 17, "s390x": 17, "armv7l": 31, "riscv64": 39}


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
