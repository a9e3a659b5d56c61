"""bundler.profile: platform names, Python versions, tag lists and marker environments, all host-free."""

from __future__ import annotations

from typing import Any

import json
import platform as host_platform
import sys

import pytest
from packaging import tags as ptags
from packaging.markers import Marker

from bundler.errors import BadInput
from bundler.profile import (
    MARKER_KEYS,
    PRESETS,
    Facts,
    Platform,
    Profile,
    load_profile,
    parse_platform,
    parse_python_version,
    platform_tags,
    preset_profile,
    profile_for_platform,
    resolve_profile,
)

# ---------------------------------------------------------------------------------------------
# parse_platform

GLIBC_NAMES = [(f"x86_64-manylinux_2_{m}", (2, m)) for m in (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)]


@pytest.mark.parametrize(
    "name, expected",
    [
        *[(n, Platform("linux", "x86_64", "glibc", v)) for n, v in GLIBC_NAMES],
        ("x86_64-manylinux2014", Platform("linux", "x86_64", "glibc", (2, 17))),
        ("x86_64-manylinux2010", Platform("linux", "x86_64", "glibc", (2, 12))),
        ("x86_64-manylinux1", Platform("linux", "x86_64", "glibc", (2, 5))),
        ("aarch64-manylinux2014", Platform("linux", "aarch64", "glibc", (2, 17))),
        ("aarch64-manylinux_2_17", Platform("linux", "aarch64", "glibc", (2, 17))),
        ("aarch64-manylinux_2_28", Platform("linux", "aarch64", "glibc", (2, 28))),
        ("aarch64-manylinux_2_40", Platform("linux", "aarch64", "glibc", (2, 40))),
        ("x86_64-unknown-linux-gnu", Platform("linux", "x86_64", "glibc", (2, 28))),
        ("aarch64-unknown-linux-gnu", Platform("linux", "aarch64", "glibc", (2, 28))),
        ("x86_64-unknown-linux-musl", Platform("linux", "x86_64", "musl", (1, 2))),
        ("aarch64-unknown-linux-musl", Platform("linux", "aarch64", "musl", (1, 2))),
        ("x86_64-musllinux_1_1", Platform("linux", "x86_64", "musl", (1, 1))),
        ("aarch64-musllinux_1_2", Platform("linux", "aarch64", "musl", (1, 2))),
        # uv's riscv64-unknown-linux means glibc 2.39 (its riscv64 floor is manylinux_2_31)
        ("riscv64-unknown-linux", Platform("linux", "riscv64", "glibc", (2, 39))),
        ("riscv64-unknown-linux-gnu", Platform("linux", "riscv64", "glibc", (2, 39))),
        ("x86_64-pc-windows-msvc", Platform("windows", "x86_64")),
        ("aarch64-pc-windows-msvc", Platform("windows", "aarch64")),
        ("i686-pc-windows-msvc", Platform("windows", "i686")),
        ("x86_64-apple-darwin", Platform("macos", "x86_64", macos_version=(13, 0))),
        ("aarch64-apple-darwin", Platform("macos", "aarch64", macos_version=(13, 0))),
        ("linux", Platform("linux", "x86_64", "glibc", (2, 28))),
        ("windows", Platform("windows", "x86_64")),
        ("macos", Platform("macos", "aarch64", macos_version=(13, 0))),
        # spelling tolerance: case, whitespace, arch aliases
        ("  X86_64-Manylinux_2_28 ", Platform("linux", "x86_64", "glibc", (2, 28))),
        ("amd64-pc-windows-msvc", Platform("windows", "x86_64")),
        ("arm64-apple-darwin", Platform("macos", "aarch64", macos_version=(13, 0))),
    ],
)
def test_parse_platform(name: str, expected: Platform) -> None:
    assert parse_platform(name) == expected


@pytest.mark.parametrize(
    "target, expected",
    [("14", (14, 0)), ("11.0", (11, 0)), ("10.15", (10, 15)), ("12.3", (12, 3))],
)
@pytest.mark.parametrize("name", ["x86_64-apple-darwin", "aarch64-apple-darwin", "macos"])
def test_macos_deployment_target_overrides_default(name: str, target: str, expected: tuple[int, int]) -> None:
    assert parse_platform(name, macos_target=target).macos_version == expected


def test_macos_target_ignored_off_macos() -> None:
    assert parse_platform("x86_64-manylinux_2_28", macos_target="11.0").macos_version is None


@pytest.mark.parametrize("target", ["eleven", "13.x", ""])
def test_bad_macos_deployment_target(target: str) -> None:
    if target == "":  # empty means "unset", like an empty environment variable
        assert parse_platform("macos", macos_target=target).macos_version == (13, 0)
        return
    with pytest.raises(BadInput, match="MACOSX_DEPLOYMENT_TARGET"):
        parse_platform("macos", macos_target=target)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "freebsd",
        "x86_64",
        "x86_64-",
        "x86_64-manylinux_2_4",  # older than manylinux1
        "aarch64-manylinux_2_16",  # aarch64 starts at 2.17
        "aarch64-manylinux1",
        "aarch64-manylinux2010",
        "x86_64-manylinux_3_0",
        "sparc-manylinux_2_28",
        "sparc-musllinux_1_2",
        "x86_64-musllinux_2_0",
        "sparc-unknown-linux-gnu",
        "powerpc-pc-windows-msvc",
        "i686-apple-darwin",
        "x86_64-unknown-freebsd",
        "x86_64 manylinux_2_28",
    ],
)
def test_parse_platform_rejects(name: str) -> None:
    with pytest.raises(BadInput) as e:
        parse_platform(name)
    assert "platform" in str(e.value)


def test_unknown_platform_hint_lists_examples() -> None:
    with pytest.raises(BadInput) as e:
        parse_platform("solaris")
    assert e.value.hint and "x86_64-manylinux_2_17" in e.value.hint and "aarch64-apple-darwin" in e.value.hint


# ---------------------------------------------------------------------------------------------
# parse_python_version


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3.11", (3, 11, 0)),
        ("3.11.7", (3, 11, 7)),
        ("3.8", (3, 8, 0)),
        ("3.8.10", (3, 8, 10)),
        ("3.13", (3, 13, 0)),
        ("3.15", (3, 15, 0)),
        (" 3.12 ", (3, 12, 0)),
        ("cp311", (3, 11, 0)),
        ("py312", (3, 12, 0)),
        ("311", (3, 11, 0)),
    ],
)
def test_parse_python_version(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_python_version(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "3", "python3.11", "3.11.x", "3.11.7.1", "2.7", "4.0", "3.6", "3.7", "3.7.16", "3.16", "3.100", "latest", "3,11",
     "3.11rc1"],
)
def test_parse_python_version_rejects(text: str) -> None:
    with pytest.raises(BadInput, match="Python version"):
        parse_python_version(text)


@pytest.mark.parametrize("version", ["3.6", "3.7", "cp37", "3.7.16"])
def test_targets_below_the_installer_floor_are_refused_with_the_reason(version: str) -> None:
    with pytest.raises(BadInput) as e:
        profile_for_platform("x86_64-manylinux_2_28", version)
    assert "the bundle's installer needs Python 3.8 or newer on the target" in str(e.value)
    assert "3.8 and newer" in str(e.value)


@pytest.mark.parametrize("full", ["3.7.16", "3.6.15", "3.7.0rc1"])
def test_captured_profiles_below_the_floor_are_refused(full: str) -> None:
    d = _good()
    d["markers"]["python_full_version"] = full
    with pytest.raises(BadInput) as e:
        Profile.from_dict(d, origin="old.json")
    assert str(e.value).startswith(f"old.json: the target runs Python {full}")
    assert "the bundle's installer needs Python 3.8 or newer on the target" in str(e.value)
    assert e.value.hint and "Python 3.8 or newer" in e.value.hint


# ---------------------------------------------------------------------------------------------
# Tags


@pytest.mark.parametrize(
    "platform, version, first, last",
    [
        ("x86_64-manylinux_2_28", "3.11", "cp311-cp311-manylinux_2_28_x86_64", "py30-none-any"),
        ("x86_64-manylinux_2_17", "3.9", "cp39-cp39-manylinux_2_17_x86_64", "py30-none-any"),
        ("aarch64-manylinux_2_28", "3.12", "cp312-cp312-manylinux_2_28_aarch64", "py30-none-any"),
        ("x86_64-unknown-linux-musl", "3.12", "cp312-cp312-musllinux_1_2_x86_64", "py30-none-any"),
        ("x86_64-pc-windows-msvc", "3.11", "cp311-cp311-win_amd64", "py30-none-any"),
        ("aarch64-pc-windows-msvc", "3.12", "cp312-cp312-win_arm64", "py30-none-any"),
        ("i686-pc-windows-msvc", "3.10", "cp310-cp310-win32", "py30-none-any"),
        ("aarch64-apple-darwin", "3.12", "cp312-cp312-macosx_13_0_arm64", "py30-none-any"),
        ("x86_64-apple-darwin", "3.11", "cp311-cp311-macosx_13_0_x86_64", "py30-none-any"),
        ("x86_64-manylinux_2_28", "3.8", "cp38-cp38-manylinux_2_28_x86_64", "py30-none-any"),
    ],
)
def test_first_and_last_tag(platform: str, version: str, first: str, last: str) -> None:
    p = profile_for_platform(platform, version)
    assert p.tags[0] == first
    assert p.tags[-1] == last
    assert len(set(p.tags)) == len(p.tags)


@pytest.mark.parametrize(
    "platform, version, tag, accepted",
    [
        # glibc 2.28 accepts everything built for older glibc, legacy aliases included
        ("x86_64-manylinux_2_28", "3.11", "cp311-cp311-manylinux_2_28_x86_64", True),
        ("x86_64-manylinux_2_28", "3.11", "cp311-cp311-manylinux_2_17_x86_64", True),
        ("x86_64-manylinux_2_28", "3.11", "cp311-cp311-manylinux2014_x86_64", True),
        ("x86_64-manylinux_2_28", "3.11", "cp311-cp311-manylinux2010_x86_64", True),
        ("x86_64-manylinux_2_28", "3.11", "cp311-cp311-manylinux1_x86_64", True),
        ("x86_64-manylinux_2_28", "3.11", "cp311-cp311-manylinux_2_5_x86_64", True),
        ("x86_64-manylinux_2_28", "3.11", "cp311-cp311-linux_x86_64", True),
        ("x86_64-manylinux_2_28", "3.11", "cp311-abi3-manylinux_2_17_x86_64", True),
        ("x86_64-manylinux_2_28", "3.11", "cp37-abi3-manylinux2014_x86_64", True),
        ("x86_64-manylinux_2_28", "3.11", "py3-none-manylinux_2_17_x86_64", True),
        ("x86_64-manylinux_2_28", "3.11", "py3-none-any", True),
        ("x86_64-manylinux_2_28", "3.11", "cp311-none-any", True),
        # ... but not newer glibc, other arches, musl, other OSes, other Pythons
        ("x86_64-manylinux_2_28", "3.11", "cp311-cp311-manylinux_2_31_x86_64", False),
        ("x86_64-manylinux_2_28", "3.11", "cp311-cp311-manylinux_2_29_x86_64", False),
        ("x86_64-manylinux_2_28", "3.11", "cp311-cp311-manylinux_2_28_aarch64", False),
        ("x86_64-manylinux_2_28", "3.11", "cp311-cp311-musllinux_1_2_x86_64", False),
        ("x86_64-manylinux_2_28", "3.11", "cp311-cp311-win_amd64", False),
        ("x86_64-manylinux_2_28", "3.11", "cp312-cp312-manylinux_2_17_x86_64", False),
        ("x86_64-manylinux_2_28", "3.11", "cp312-abi3-manylinux_2_17_x86_64", False),
        ("x86_64-manylinux_2_28", "3.11", "cp310-cp310-manylinux_2_17_x86_64", False),
        ("x86_64-manylinux_2_28", "3.11", "pp310-pypy310_pp73-manylinux_2_17_x86_64", False),
        ("x86_64-manylinux_2_28", "3.11", "py2-none-any", False),
        ("x86_64-manylinux_2_17", "3.11", "cp311-cp311-manylinux_2_28_x86_64", False),
        ("x86_64-manylinux_2_17", "3.11", "cp311-cp311-manylinux2014_x86_64", True),
        # aarch64 has no manylinux1/2010 and nothing below glibc 2.17
        ("aarch64-manylinux_2_28", "3.11", "cp311-cp311-manylinux2014_aarch64", True),
        ("aarch64-manylinux_2_28", "3.11", "cp311-cp311-manylinux_2_17_aarch64", True),
        ("aarch64-manylinux_2_28", "3.11", "cp311-cp311-manylinux1_aarch64", False),
        ("aarch64-manylinux_2_28", "3.11", "cp311-cp311-manylinux2010_aarch64", False),
        ("aarch64-manylinux_2_28", "3.11", "cp311-cp311-manylinux_2_16_aarch64", False),
        ("aarch64-manylinux_2_28", "3.11", "cp311-cp311-manylinux_2_17_x86_64", False),
        # musl
        ("x86_64-unknown-linux-musl", "3.12", "cp312-cp312-musllinux_1_1_x86_64", True),
        ("x86_64-unknown-linux-musl", "3.12", "cp312-cp312-musllinux_1_3_x86_64", False),
        ("x86_64-unknown-linux-musl", "3.12", "cp312-cp312-manylinux_2_17_x86_64", False),
        # windows
        ("x86_64-pc-windows-msvc", "3.11", "cp311-cp311-win_amd64", True),
        ("x86_64-pc-windows-msvc", "3.11", "cp39-abi3-win_amd64", True),
        ("x86_64-pc-windows-msvc", "3.11", "py3-none-win_amd64", True),
        ("x86_64-pc-windows-msvc", "3.11", "py3-none-any", True),
        ("x86_64-pc-windows-msvc", "3.11", "cp311-cp311-win32", False),
        ("x86_64-pc-windows-msvc", "3.11", "cp311-cp311-win_arm64", False),
        ("x86_64-pc-windows-msvc", "3.11", "cp311-cp311-manylinux_2_17_x86_64", False),
        ("x86_64-pc-windows-msvc", "3.11", "cp311-cp311-linux_x86_64", False),
        ("aarch64-pc-windows-msvc", "3.12", "cp312-cp312-win_arm64", True),
        ("aarch64-pc-windows-msvc", "3.12", "cp312-cp312-win_amd64", False),
        # stable ABI: newer interpreters accept older abi3, never the reverse
        ("x86_64-manylinux_2_28", "3.13", "cp39-abi3-manylinux_2_17_x86_64", True),
        ("x86_64-manylinux_2_28", "3.13", "cp32-abi3-manylinux_2_17_x86_64", True),
        ("x86_64-manylinux_2_28", "3.11", "cp313-abi3-manylinux_2_17_x86_64", False),
        ("x86_64-pc-windows-msvc", "3.13", "cp39-abi3-win_amd64", True),
        # macOS
        ("aarch64-apple-darwin", "3.12", "cp312-cp312-macosx_11_0_arm64", True),
        ("aarch64-apple-darwin", "3.12", "cp312-cp312-macosx_10_9_universal2", True),
        ("aarch64-apple-darwin", "3.12", "cp312-cp312-macosx_14_0_arm64", False),
        ("aarch64-apple-darwin", "3.12", "cp312-cp312-macosx_10_9_x86_64", False),
        ("x86_64-apple-darwin", "3.11", "cp311-cp311-macosx_10_9_x86_64", True),
        ("x86_64-apple-darwin", "3.11", "cp311-cp311-macosx_11_0_arm64", False),
    ],
)
def test_tag_membership(platform: str, version: str, tag: str, accepted: bool) -> None:
    assert (tag in profile_for_platform(platform, version).tag_ranks()) is accepted


def test_preference_order_within_linux_target() -> None:
    ranks = profile_for_platform("x86_64-manylinux_2_28", "3.11").tag_ranks()
    order = [
        "cp311-cp311-manylinux_2_28_x86_64",
        "cp311-cp311-manylinux_2_17_x86_64",
        "cp311-cp311-manylinux2014_x86_64",
        "cp311-cp311-linux_x86_64",
        "cp311-abi3-manylinux_2_28_x86_64",
        "cp310-abi3-manylinux_2_28_x86_64",
        "py311-none-manylinux_2_28_x86_64",
        "py3-none-manylinux_2_28_x86_64",
        "cp311-none-any",
        "py3-none-any",
        "py30-none-any",
    ]
    assert [ranks[t] for t in order] == sorted(ranks[t] for t in order)


@pytest.mark.parametrize(
    "platform, version, plats",
    [
        (
            "x86_64-manylinux_2_28",
            (3, 11),
            [f"manylinux_2_{m}_x86_64" for m in range(28, 17, -1)]
            + ["manylinux_2_17_x86_64", "manylinux2014_x86_64"]
            + [f"manylinux_2_{m}_x86_64" for m in range(16, 12, -1)]
            + ["manylinux_2_12_x86_64", "manylinux2010_x86_64"]
            + [f"manylinux_2_{m}_x86_64" for m in range(11, 5, -1)]
            + ["manylinux_2_5_x86_64", "manylinux1_x86_64", "linux_x86_64"],
        ),
        (
            "aarch64-manylinux_2_28",
            (3, 12),
            [f"manylinux_2_{m}_aarch64" for m in range(28, 17, -1)]
            + ["manylinux_2_17_aarch64", "manylinux2014_aarch64", "linux_aarch64"],
        ),
        ("x86_64-unknown-linux-musl", (3, 12), ["musllinux_1_2_x86_64", "musllinux_1_1_x86_64", "musllinux_1_0_x86_64", "linux_x86_64"]),
        ("x86_64-pc-windows-msvc", (3, 11), ["win_amd64"]),
        ("x86_64-manylinux_2_28", (3, 8), None),  # the oldest target Python
    ],
)
def test_tag_order_matches_packaging(platform: str, version: tuple[int, int], plats: list[str] | None) -> None:
    """The whole list equals packaging's, computed with explicit interpreter, ABI and platforms."""
    p = profile_for_platform(platform, "%d.%d" % version)
    if plats is None:
        plats = p.platform_tags()
    assert p.platform_tags() == plats
    interp = "cp%d%d" % version
    abi = interp + ("m" if version < (3, 8) else "")
    expected = [str(t) for t in ptags.cpython_tags(version, [abi], plats)]
    expected += [str(t) for t in ptags.compatible_tags(version, interp, plats)]
    assert list(p.tags) == expected


@pytest.mark.parametrize(
    "name, macos, mac_arch",
    [
        ("aarch64-apple-darwin", None, "arm64"),
        ("x86_64-apple-darwin", None, "x86_64"),
        ("aarch64-apple-darwin", "14.2", "arm64"),
        ("x86_64-apple-darwin", "10.15", "x86_64"),
    ],
)
def test_macos_platforms_match_packaging(name: str, macos: str | None, mac_arch: str) -> None:
    p = parse_platform(name, macos_target=macos)
    assert p.macos_version is not None
    expected = _fat32(ptags.mac_platforms(p.macos_version, mac_arch))
    assert platform_tags(p) == expected
    assert not any(t.endswith("_fat3") for t in expected)
    prof = profile_for_platform(name, "3.12", macos_target=macos)
    assert prof.platform_tags() == expected
    assert prof.facts.macos_version == "%d.%d" % p.macos_version


def test_macos_default_is_13() -> None:
    assert platform_tags(parse_platform("aarch64-apple-darwin")) == _fat32(ptags.mac_platforms((13, 0), "arm64"))


def _fat32(tags: Any) -> list[str]:
    """packaging 26.3 misspells the fat32 format as fat3; real wheels and pip's other releases say fat32."""
    return [t[: -len("fat3")] + "fat32" if t.endswith("_fat3") else t for t in tags]


def test_python_and_platform_tag_helpers() -> None:
    p = profile_for_platform("x86_64-pc-windows-msvc", "3.11")
    assert p.platform_tags() == ["win_amd64"]
    pys = p.python_tags()
    assert pys[0] == "cp311" and pys.index("cp311") < pys.index("cp310") < pys.index("py3") < pys.index("py30")
    assert "cp312" not in pys


# ---------------------------------------------------------------------------------------------
# Marker environments

LINUX_MARKERS = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.0",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.11.0",
    "python_version": "3.11",
    "sys_platform": "linux",
}


@pytest.mark.parametrize(
    "platform, version, expected",
    [
        ("x86_64-manylinux_2_28", "3.11", LINUX_MARKERS),
        ("aarch64-manylinux_2_28", "3.11.7", {**LINUX_MARKERS, "platform_machine": "aarch64",
                                             "python_full_version": "3.11.7", "implementation_version": "3.11.7"}),
        ("x86_64-unknown-linux-musl", "3.11", LINUX_MARKERS),
        ("x86_64-pc-windows-msvc", "3.11", {**LINUX_MARKERS, "os_name": "nt", "platform_machine": "AMD64",
                                            "platform_system": "Windows", "sys_platform": "win32"}),
        ("aarch64-pc-windows-msvc", "3.11", {**LINUX_MARKERS, "os_name": "nt", "platform_machine": "ARM64",
                                             "platform_system": "Windows", "sys_platform": "win32"}),
        ("i686-pc-windows-msvc", "3.11", {**LINUX_MARKERS, "os_name": "nt", "platform_machine": "x86",
                                          "platform_system": "Windows", "sys_platform": "win32"}),
        ("aarch64-apple-darwin", "3.11", {**LINUX_MARKERS, "platform_machine": "arm64",
                                          "platform_system": "Darwin", "sys_platform": "darwin"}),
        ("x86_64-apple-darwin", "3.11", {**LINUX_MARKERS, "platform_system": "Darwin", "sys_platform": "darwin"}),
    ],
)
def test_marker_environment(platform: str, version: str, expected: dict[str, str]) -> None:
    markers = profile_for_platform(platform, version).markers
    assert dict(markers) == expected
    assert set(markers) == set(MARKER_KEYS)


@pytest.mark.parametrize(
    "platform, marker, holds",
    [
        ("windows", "sys_platform == 'win32' and platform_machine == 'AMD64'", True),
        ("windows", "os_name == 'nt'", True),
        ("windows", "sys_platform == 'linux'", False),
        ("linux", "sys_platform == 'linux' and platform_machine == 'x86_64'", True),
        ("linux", "platform_system == 'Windows'", False),
        ("macos", "sys_platform == 'darwin' and platform_machine == 'arm64'", True),
        ("linux", "python_full_version >= '3.11.1'", False),  # 3.11 means 3.11.0
        ("linux", "python_version < '3.12'", True),
    ],
)
def test_markers_evaluate(platform: str, marker: str, holds: bool) -> None:
    env = dict(profile_for_platform(platform, "3.11").markers)
    assert Marker(marker).evaluate(env) is holds


def test_nothing_depends_on_the_host() -> None:
    """A Windows (or macOS) profile built here carries none of this machine's values where they differ."""
    win = profile_for_platform("x86_64-pc-windows-msvc", "3.11")
    mac = profile_for_platform("aarch64-apple-darwin", "3.11")
    host_machine = host_platform.machine()
    host_system = host_platform.system()
    for prof, machine, system, sysplat in ((win, "AMD64", "Windows", "win32"), (mac, "arm64", "Darwin", "darwin")):
        assert prof.markers["platform_machine"] == machine
        assert prof.markers["platform_system"] == system
        assert prof.markers["sys_platform"] == sysplat
        if host_machine != machine:
            assert prof.markers["platform_machine"] != host_machine
        if host_system != system:
            assert prof.markers["platform_system"] != host_system
        if sys.platform != sysplat:
            assert prof.markers["sys_platform"] != sys.platform
        # the host's release/version strings never leak in
        assert prof.markers["platform_release"] == "" and prof.markers["platform_version"] == ""
        # no tag names a Linux platform
        assert not any("linux" in t for t in prof.tags)
    # "3.11" is 3.11.0 whatever this interpreter's micro version is
    assert win.markers["python_full_version"] == "3.11.0"
    # a Python other than the host's gets that Python's interpreter tags only
    other = "3.9" if sys.version_info[:2] != (3, 9) else "3.10"
    host_interp = "cp%d%d" % sys.version_info[:2]
    assert not any(t.startswith(host_interp + "-") for t in profile_for_platform("linux", other).tags)


def test_facts_recorded() -> None:
    p = profile_for_platform("x86_64-manylinux_2_28", "3.11.7")
    assert p.facts == Facts(implementation="cpython", python_version="3.11.7", os="linux", arch="x86_64",
                            libc="glibc", libc_version="2.28", source="platform")
    assert p.name == "x86_64-manylinux_2_28-cp311"
    assert p.describe() == "CPython 3.11.7 on linux x86_64 (glibc 2.28)"
    assert profile_for_platform("macos", "3.12").describe() == "CPython 3.12.0 on macos aarch64 (macOS 13.0)"
    assert profile_for_platform("windows", "3.12", name="win").name == "win"


# ---------------------------------------------------------------------------------------------
# JSON form


@pytest.mark.parametrize("spec", ["x86_64-manylinux_2_28", "aarch64-apple-darwin", "x86_64-pc-windows-msvc", "x86_64-unknown-linux-musl"])
def test_to_dict_from_dict_round_trip(spec: str) -> None:
    p = profile_for_platform(spec, "3.12")
    d = json.loads(json.dumps(p.to_dict()))
    assert d["format"] == "wheelhouse-profile" and d["format-version"] == 1
    back = Profile.from_dict(d)
    assert back == p
    assert back.tags == p.tags and back.facts == p.facts and dict(back.markers) == dict(p.markers)


def test_load_profile_file(tmp_path) -> None:
    p = profile_for_platform("linux", "3.11", name="cluster")
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(p.to_dict()))
    assert load_profile(path) == p
    assert resolve_profile(str(path)) == p


def _good() -> dict:
    return profile_for_platform("linux", "3.11").to_dict()


def _without(key: str) -> dict:
    d = _good()
    del d[key]
    return d


def _with(**changes) -> dict:
    d = _good()
    d.update({k.replace("_", "-"): v for k, v in changes.items()})
    return d


def _markers_without(key: str) -> dict:
    d = _good()
    del d["markers"][key]
    return d


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "must be a JSON object"),
        (_without("format"), "not a wheelhouse profile"),
        (_with(format="something-else"), "not a wheelhouse profile"),
        (_without("format-version"), "format-version"),
        (_with(format_version=2), "format-version 2"),
        (_without("tags"), "'tags' must be a non-empty list"),
        (_with(tags=[]), "'tags' must be a non-empty list"),
        (_with(tags="cp311-cp311-linux_x86_64"), "'tags' must be a non-empty list"),
        (_with(tags=[1, 2]), "'tags' must be a non-empty list"),
        (_with(tags=["cp311-linux_x86_64"]), "malformed tag 'cp311-linux_x86_64'"),
        (_without("markers"), "'markers' must be an object"),
        (_with(markers=["sys_platform"]), "'markers' must be an object"),
        (_markers_without("sys_platform"), "lacks sys_platform"),
        (_markers_without("python_full_version"), "lacks python_full_version"),
        (_with(facts=[]), "'facts' must be an object"),
    ],
)
def test_from_dict_errors(data, message: str) -> None:
    with pytest.raises(BadInput) as e:
        Profile.from_dict(data, origin="prof.json")
    assert str(e.value).startswith("prof.json: ")
    assert message in str(e.value)


def test_from_dict_defaults() -> None:
    d = _good()
    del d["name"], d["facts"]
    p = Profile.from_dict(d)
    assert p.name == "target" and p.facts == Facts()


def test_load_profile_errors(tmp_path) -> None:
    with pytest.raises(BadInput, match="cannot read profile"):
        load_profile(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BadInput, match="not valid JSON"):
        load_profile(bad)


# ---------------------------------------------------------------------------------------------
# Presets


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build(name: str) -> None:
    platform, version, _ = PRESETS[name]
    p = preset_profile(name)
    assert p.name == name
    assert p == resolve_profile(name)
    assert p.tags and set(p.markers) == set(MARKER_KEYS)
    assert p.markers["python_full_version"] == "%d.%d.%d" % parse_python_version(version)
    assert p.tags[0].startswith("cp%d%d-" % parse_python_version(version)[:2])


def test_unknown_preset() -> None:
    with pytest.raises(BadInput, match="unknown profile preset 'nope'") as e:
        preset_profile("nope")
    assert e.value.hint and "profile list" in e.value.hint
