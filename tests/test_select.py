"""bundler.select: per-target wheel choice, filters and explanations, over hand-built Link objects."""

from __future__ import annotations

import hashlib

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bundler.index import Link
from bundler.profile import profile_for_platform
from bundler.select import (
    Policy,
    Rejection,
    WheelChoice,
    _check,
    availability,
    best_rank,
    explain_links,
    filter_specifier,
    requires_python_ok,
    versions_for_target,
    wheel_info,
)

LINUX = profile_for_platform("x86_64-manylinux_2_28", "3.11")
WINDOWS = profile_for_platform("x86_64-pc-windows-msvc", "3.11")
MAC = profile_for_platform("aarch64-apple-darwin", "3.12")

T0 = datetime(2024, 6, 1, tzinfo=timezone.utc)


def link(filename: str, **kw) -> Link:
    kw.setdefault("index", "test")
    kw.setdefault("index_url", "https://example.invalid/simple/")
    kw.setdefault("url", f"https://example.invalid/files/{filename}")
    kw.setdefault("sha256", hashlib.sha256(filename.encode()).hexdigest())  # indexes give one; see test_no_hash_*
    return Link(filename=filename, **kw)


def chosen(choices: list[WheelChoice]) -> list[tuple[str, str]]:
    return [(str(c.version), c.link.filename) for c in choices]


def sha(c: str) -> str:
    return c * 64


# ---------------------------------------------------------------------------------------------
# helpers


@pytest.mark.parametrize(
    "filename, expected",
    [
        ("numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
         ("numpy", "2.0.0", {"cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64"})),
        ("six-1.16.0-py2.py3-none-any.whl", ("six", "1.16.0", {"py2-none-any", "py3-none-any"})),
        ("torch-2.3.0+cu121-cp311-cp311-linux_x86_64.whl", ("torch", "2.3.0+cu121", {"cp311-cp311-linux_x86_64"})),
        ("Foo_Bar-1.0-1-py3-none-any.whl", ("foo-bar", "1.0", {"py3-none-any"})),
        ("not-a-wheel.whl", None),
        ("pkg-notaversion-py3-none-any.whl", None),
        ("pkg-1.0.tar.gz", None),
    ],
)
def test_wheel_info(filename: str, expected) -> None:
    info = wheel_info(filename)
    if expected is None:
        assert info is None
    else:
        assert (info[0], str(info[1]), set(info[2])) == expected


def test_best_rank() -> None:
    ranks = {"a": 0, "b": 3, "c": 7}
    assert best_rank(["c", "b", "x"], ranks) == 3
    assert best_rank(["x", "y"], ranks) is None
    assert best_rank([], ranks) is None


@pytest.mark.parametrize(
    "spec, full, ok",
    [
        (None, "3.11.0", True),
        ("", "3.11.0", True),
        (">=3.8", "3.11.0", True),
        (">=3.12", "3.11.0", False),
        (">=3.11.1", "3.11.0", False),  # full version, not just the minor
        (">=3.11.1", "3.11.7", True),
        ("<3.11.4", "3.11.7", False),
        (">=3.9,<3.13", "3.12.0", True),
        ("!=3.11.*", "3.11.7", False),
        ("~=3.10", "3.11.0", True),
        (">=3.13.0rc1", "3.13.0", True),
        ("not a specifier", "3.11.0", True),  # unparsable values admit, as pip and uv do
    ],
)
def test_requires_python_ok(spec, full: str, ok: bool) -> None:
    assert requires_python_ok(spec, full) is ok


# ---------------------------------------------------------------------------------------------
# versions_for_target


def test_best_rank_wins_per_version() -> None:
    links = [
        link("pkg-1.0-py3-none-any.whl"),
        link("pkg-1.0-cp311-abi3-manylinux_2_17_x86_64.whl"),
        link("pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        link("pkg-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"),
        link("pkg-1.0-cp311-cp311-win_amd64.whl"),
        link("pkg-0.9-py3-none-any.whl"),
        link("pkg-1.0.tar.gz"),
    ]
    got = versions_for_target("pkg", links, LINUX)
    assert chosen(got) == [("1.0", "pkg-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"), ("0.9", "pkg-0.9-py3-none-any.whl")]
    assert got[0].rank == 0 and got[0].name == "pkg"
    assert chosen(versions_for_target("pkg", links, WINDOWS))[0] == ("1.0", "pkg-1.0-cp311-cp311-win_amd64.whl")


@pytest.mark.parametrize(
    "profile, filenames, expected",
    [
        # order of the links does not matter
        (LINUX, ["p-1-py3-none-any.whl", "p-1-cp311-cp311-manylinux2014_x86_64.whl"], "p-1-cp311-cp311-manylinux2014_x86_64.whl"),
        (LINUX, ["p-1-cp311-cp311-manylinux2014_x86_64.whl", "p-1-py3-none-any.whl"], "p-1-cp311-cp311-manylinux2014_x86_64.whl"),
        # newest glibc that the target has beats older ones
        (LINUX, ["p-1-cp311-cp311-manylinux_2_17_x86_64.whl", "p-1-cp311-cp311-manylinux_2_24_x86_64.whl"], "p-1-cp311-cp311-manylinux_2_24_x86_64.whl"),
        # a too-new glibc is not even a candidate
        (LINUX, ["p-1-cp311-cp311-manylinux_2_34_x86_64.whl", "p-1-py3-none-any.whl"], "p-1-py3-none-any.whl"),
        # version-specific ABI beats abi3
        (WINDOWS, ["p-1-cp39-abi3-win_amd64.whl", "p-1-cp311-cp311-win_amd64.whl"], "p-1-cp311-cp311-win_amd64.whl"),
        (WINDOWS, ["p-1-cp39-abi3-win_amd64.whl", "p-1-py3-none-any.whl"], "p-1-cp39-abi3-win_amd64.whl"),
        (MAC, ["p-1-cp312-cp312-macosx_10_9_universal2.whl", "p-1-cp312-cp312-macosx_11_0_arm64.whl"], "p-1-cp312-cp312-macosx_11_0_arm64.whl"),
        (MAC, ["p-1-cp312-cp312-macosx_10_9_x86_64.whl", "p-1-cp312-cp312-macosx_14_0_arm64.whl"], None),
    ],
)
def test_rank_table(profile, filenames: list[str], expected: str | None) -> None:
    got = versions_for_target("p", [link(f) for f in filenames], profile)
    assert [c.link.filename for c in got] == ([expected] if expected else [])


def test_incompatible_and_foreign_files_skipped() -> None:
    links = [
        link("pkg-2.0-cp312-cp312-manylinux_2_17_x86_64.whl"),  # other Python
        link("pkg-2.0-cp311-cp311-manylinux_2_17_aarch64.whl"),  # other arch
        link("pkg-2.0-cp311-cp311-musllinux_1_2_x86_64.whl"),  # other libc
        link("pkg-2.0.tar.gz"),  # sdist
        link("pkg-2.0-bogus.whl"),  # malformed
        link("other-3.0-py3-none-any.whl"),  # another project on the same page
        link("pkg-1.0-py3-none-any.whl"),
    ]
    assert chosen(versions_for_target("pkg", links, LINUX)) == [("1.0", "pkg-1.0-py3-none-any.whl")]


def test_project_name_normalized() -> None:
    links = [link("Foo_Bar-1.0-py3-none-any.whl"), link("foo.bar-2.0-py3-none-any.whl")]
    got = versions_for_target("FOO-bar", links, LINUX)
    assert [str(c.version) for c in got] == ["2.0", "1.0"]
    assert {c.name for c in got} == {"foo-bar"}


def test_newest_first() -> None:
    links = [link(f"p-{v}-py3-none-any.whl") for v in ("1.0", "10.0", "2.0", "1.10", "2.0rc1")]
    assert [str(c.version) for c in versions_for_target("p", links, LINUX)] == ["10.0", "2.0", "2.0rc1", "1.10", "1.0"]


@pytest.mark.parametrize(
    "requires_python, version, usable",
    [
        (">=3.8", "3.11", True),
        (">=3.11.1", "3.11", False),  # "3.11" means 3.11.0
        (">=3.11.1", "3.11.7", True),
        ("<3.11", "3.11", False),
        (">=3.12", "3.11.7", False),
        ("&lt;bad", "3.11", True),
    ],
)
def test_requires_python_uses_full_version(requires_python: str, version: str, usable: bool) -> None:
    prof = profile_for_platform("linux", version)
    links = [link("p-1.0-py3-none-any.whl", requires_python=requires_python)]
    assert bool(versions_for_target("p", links, prof)) is usable


def test_requires_python_falls_back_to_older_version() -> None:
    links = [link("p-2.0-py3-none-any.whl", requires_python=">=3.12"), link("p-1.0-py3-none-any.whl", requires_python=">=3.8")]
    assert chosen(versions_for_target("p", links, LINUX)) == [("1.0", "p-1.0-py3-none-any.whl")]


@pytest.mark.parametrize("yanked", ["", "broken build"])
def test_yanked_only_when_pinned(yanked: str) -> None:
    links = [link("p-2.0-py3-none-any.whl", yanked=yanked), link("p-1.0-py3-none-any.whl")]
    assert [str(c.version) for c in versions_for_target("p", links, LINUX)] == ["1.0"]
    pinned = versions_for_target("p", links, LINUX, pinned_versions=frozenset({Version("2.0")}))
    assert [str(c.version) for c in pinned] == ["2.0", "1.0"]
    # a pin on another version does not let the yanked one in
    assert [str(c.version) for c in versions_for_target("p", links, LINUX, pinned_versions=frozenset({Version("1.0")}))] == ["1.0"]


def test_yanked_file_loses_to_unyanked_file_of_same_version() -> None:
    links = [link("p-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", yanked=""), link("p-1.0-py3-none-any.whl")]
    assert chosen(versions_for_target("p", links, LINUX)) == [("1.0", "p-1.0-py3-none-any.whl")]


@pytest.mark.parametrize(
    "upload_time, flat, usable",
    [
        (T0 - timedelta(days=1), False, True),
        (T0 - timedelta(seconds=1), False, True),
        (T0, False, False),  # at the cutoff is not before it
        (T0 + timedelta(days=1), False, False),
        (None, False, False),  # an index without upload times cannot prove age
        (None, True, True),  # find-links and direct references are exempt
        (T0 + timedelta(days=1), True, False),  # ...but a known time still counts
    ],
)
def test_exclude_newer(upload_time, flat: bool, usable: bool) -> None:
    links = [link("p-1.0-py3-none-any.whl", upload_time=upload_time, flat=flat)]
    assert bool(versions_for_target("p", links, LINUX, policy=Policy(exclude_newer=T0))) is usable
    # without the policy, upload times do not matter
    assert versions_for_target("p", links, LINUX)


def test_exclude_newer_picks_older_version() -> None:
    links = [
        link("p-2.0-py3-none-any.whl", upload_time=T0 + timedelta(hours=1)),
        link("p-1.0-py3-none-any.whl", upload_time=T0 - timedelta(days=30)),
    ]
    assert [str(c.version) for c in versions_for_target("p", links, LINUX, policy=Policy(exclude_newer=T0))] == ["1.0"]


@pytest.mark.parametrize(
    "hashes, expected",
    [
        (None, ["2.0", "1.0"]),
        (frozenset({sha("a")}), ["2.0"]),
        (frozenset({sha("b"), sha("c")}), ["1.0"]),
        (frozenset({sha("f")}), []),
        (frozenset(), []),
    ],
)
def test_hash_filtering(hashes, expected: list[str]) -> None:
    links = [
        link("p-2.0-py3-none-any.whl", sha256=sha("a")),
        link("p-1.0-py3-none-any.whl", sha256=sha("b")),
        link("p-0.5-py3-none-any.whl"),  # no hash: never matches a hash pin
    ]
    got = versions_for_target("p", links, LINUX, hashes=hashes)
    assert [str(c.version) for c in got] == (expected if hashes is not None else ["2.0", "1.0", "0.5"])


def test_hash_pin_can_choose_worse_ranked_file() -> None:
    links = [
        link("p-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", sha256=sha("a")),
        link("p-1.0-py3-none-any.whl", sha256=sha("b")),
    ]
    got = versions_for_target("p", links, LINUX, hashes=frozenset({sha("b")}))
    assert chosen(got) == [("1.0", "p-1.0-py3-none-any.whl")]


def test_local_versions_kept_distinct() -> None:
    links = [link("torch-2.3.0+cu121-cp311-cp311-linux_x86_64.whl"), link("torch-2.3.0-cp311-cp311-manylinux1_x86_64.whl")]
    got = versions_for_target("torch", links, LINUX)
    assert [str(c.version) for c in got] == ["2.3.0+cu121", "2.3.0"]


# ---------------------------------------------------------------------------------------------
# filter_specifier


def _choices(*versions: str) -> list[WheelChoice]:
    links = [link(f"p-{v}-py3-none-any.whl") for v in versions]
    return versions_for_target("p", links, LINUX)


@pytest.mark.parametrize(
    "versions, spec, allow_pre, expected",
    [
        # default: pre-releases excluded
        (["1.0", "2.0b1"], "", False, ["1.0"]),
        (["1.0", "2.0b1"], ">=1.0", False, ["1.0"]),
        (["1.0", "2.0.dev1"], "", False, ["1.0"]),
        (["1.0", "2.0rc1", "2.0"], ">=1.0", False, ["2.0", "1.0"]),
        # --pre includes them
        (["1.0", "2.0b1"], "", True, ["2.0b1", "1.0"]),
        (["1.0", "2.0b1"], ">=1.0", True, ["2.0b1", "1.0"]),
        # a specifier that names a pre-release includes them
        (["1.0", "2.0b1"], ">=2.0b1", False, ["2.0b1"]),
        (["1.0", "2.0b1"], "==2.0b1", False, ["2.0b1"]),
        (["1.0", "2.0b1", "2.0b2"], ">1.0,<2.0b2", False, ["2.0b1"]),
        # only pre-releases exist: they are allowed
        (["2.0a1", "2.0b1"], "", False, ["2.0b1", "2.0a1"]),
        (["2.0a1", "2.0b1"], ">=2.0a1", False, ["2.0b1", "2.0a1"]),
        # plain ranges
        (["1.0", "1.5", "2.0"], ">=1.5", False, ["2.0", "1.5"]),
        (["1.0", "1.5", "2.0"], "<2", False, ["1.5", "1.0"]),
        (["1.0", "1.5", "2.0"], "==1.*", False, ["1.5", "1.0"]),
        (["1.0", "1.5", "2.0"], "==3.0", False, []),
        ([], ">=1", False, []),
        # local versions: ==2.3.0 matches 2.3.0+cu121; a local pin matches only itself
        (["2.3.0+cu121", "2.2.0+cu121"], "==2.3.0", False, ["2.3.0+cu121"]),
        (["2.3.0+cu121", "2.3.0+cu118", "2.3.0"], "==2.3.0", False, ["2.3.0+cu121", "2.3.0+cu118", "2.3.0"]),
        (["2.3.0+cu121", "2.3.0+cu118", "2.3.0"], "==2.3.0+cu118", False, ["2.3.0+cu118"]),
        (["2.3.0+cu121", "2.2.0"], ">=2.3", False, ["2.3.0+cu121"]),
        (["2.3.0+cu121", "2.2.0"], "<2.3", False, ["2.2.0"]),
    ],
)
def test_filter_specifier(versions: list[str], spec: str, allow_pre: bool, expected: list[str]) -> None:
    got = filter_specifier(_choices(*versions), SpecifierSet(spec), allow_pre=allow_pre)
    assert [str(c.version) for c in got] == expected


# ---------------------------------------------------------------------------------------------
# explain_links


def test_explain_links_reasons() -> None:
    links = [
        link("p-1.0.tar.gz"),
        link("p-1.0-bad.whl"),
        link("p-1.0-cp311-cp311-win_amd64.whl"),
        link("p-1.0-py3-none-any.whl", requires_python=">=3.12"),
        link("p-0.9-py3-none-any.whl", yanked="security hole"),
        link("p-0.8-py3-none-any.whl", yanked=""),
        link("p-0.7-py3-none-any.whl", upload_time=T0 + timedelta(days=1)),
        link("p-0.6-py3-none-any.whl"),  # no upload time under exclude-newer
        link("p-0.5-py3-none-any.whl", flat=True),  # usable: left out
        link("p-0.4-py3-none-any.whl", upload_time=T0 - timedelta(days=1)),  # usable: left out
    ]
    got = explain_links("p", links, LINUX, policy=Policy(exclude_newer=T0))
    table = [(r.filename, r.version, r.reason) for r in got]
    assert table == [
        ("p-1.0.tar.gz", "1.0", "sdist"),  # --only-binary :all: (a bare Policy) forbids building it
        ("p-1.0-bad.whl", "?", "bad-name"),
        ("p-1.0-cp311-cp311-win_amd64.whl", "1.0", "tags"),
        ("p-1.0-py3-none-any.whl", "1.0", "requires-python"),
        ("p-0.9-py3-none-any.whl", "0.9", "yanked"),
        ("p-0.8-py3-none-any.whl", "0.8", "yanked"),
        ("p-0.7-py3-none-any.whl", "0.7", "too-new"),
        ("p-0.6-py3-none-any.whl", "0.6", "too-new"),
    ]
    details = {r.filename: r.detail for r in got}
    assert details["p-1.0-cp311-cp311-win_amd64.whl"] == "built for win_amd64; the target is linux x86_64 with glibc 2.28"
    assert details["p-1.0-py3-none-any.whl"] == "requires Python >=3.12"
    assert details["p-0.9-py3-none-any.whl"] == "yanked (security hole)"
    assert details["p-0.8-py3-none-any.whl"] == "yanked"
    assert "2024-06-02 00:00" in details["p-0.7-py3-none-any.whl"]
    assert "no upload time" in details["p-0.6-py3-none-any.whl"]


def test_explain_links_nothing_wrong() -> None:
    assert explain_links("p", [link("p-1.0-py3-none-any.whl")], LINUX) == []


def test_explain_links_check_order() -> None:
    """The first failing check is reported: tags before requires-python before yanked."""
    links = [link("p-1.0-cp311-cp311-win_amd64.whl", requires_python=">=4", yanked="")]
    assert [r.reason for r in explain_links("p", links, LINUX)] == ["tags"]
    assert [r.reason for r in explain_links("p", links, WINDOWS)] == ["requires-python"]


# ---------------------------------------------------------------------------------------------
# availability


def test_availability_table() -> None:
    links = [
        link("a-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        link("a-1.0-cp39-abi3-win_amd64.whl"),
        link("a-1.0-pp310-pypy310_pp73-win_amd64.whl"),
        link("a-0.9-py2.py3-none-any.whl"),
        link("a-1.0.tar.gz"),
        link("a-junk.whl"),
    ]
    assert availability(links) == [
        ("1.0", ["cp311", "cp39", "pp310-pypy310_pp73"], ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "win_amd64"]),
        ("0.9", ["py2", "py3"], ["any"]),
    ]


def test_availability_empty() -> None:
    assert availability([link("a-1.0.tar.gz")]) == []


def test_no_hash_file_is_never_selected() -> None:
    """Every locked file is installed with --require-hashes, so an unhashed index file is refused."""
    links = [link("p-2.0-py3-none-any.whl", sha256=None), link("p-1.0-py3-none-any.whl")]
    assert chosen(versions_for_target("p", links, LINUX)) == [("1.0", "p-1.0-py3-none-any.whl")]
    assert [(r.filename, r.reason) for r in explain_links("p", links, LINUX)] == [("p-2.0-py3-none-any.whl", "no-hash")]


def test_a_find_links_file_without_a_hash_is_a_candidate_hashed_later() -> None:
    """A find-links page may give no sha256: the planner hashes the file on download (bundler.findlinks)."""
    links = [link("p-2.0-py3-none-any.whl", sha256=None, flat=True), link("p-1.0-py3-none-any.whl", sha256=None),
             link("p-1.0.tar.gz", sha256=None, flat=True)]
    assert chosen(versions_for_target("p", links, LINUX)) == [("2.0", "p-2.0-py3-none-any.whl")]
    sdists = Policy(only_binary=frozenset())
    assert chosen(versions_for_target("p", links, LINUX, policy=sdists)) == [("2.0", "p-2.0-py3-none-any.whl"),
                                                                             ("1.0", "p-1.0.tar.gz")]
    # --hash pins cannot be checked before the file is read: the planner hashes it first
    assert versions_for_target("p", links, LINUX, hashes=frozenset({"0" * 64})) == []


def test_rejection_distance_orders_near_misses() -> None:
    links = [
        link("p-1.0-cp311-cp311-manylinux_2_34_x86_64.whl"),  # only the glibc is too old
        link("p-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"),  # wrong Python
        link("p-1.0-cp311-cp311-win_amd64.whl"),  # wrong platform
        link("p-1.0-cp312-cp312-win_amd64.whl"),  # both
        link("p-1.0.tar.gz"),  # not a wheel
    ]
    assert [r.distance for r in explain_links("p", links, LINUX)] == [1, 2, 2, 3, 4]


RHEL6 = profile_for_platform("x86_64-manylinux_2_12", "3.11")


@pytest.mark.parametrize(
    "filename, detail, distance",
    [
        ("p-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "it needs glibc 2.17, the target has 2.12", 1),
        # a legacy name is read as the glibc it stands for (bundler.platforms, shared with the installer)
        ("p-1.0-cp311-cp311-manylinux2014_x86_64.whl", "it needs glibc 2.17, the target has 2.12", 1),
        ("p-1.0-cp311-cp311-manylinux2014_aarch64.whl", "the target is linux x86_64 with glibc 2.12", 2),
        ("p-1.0-cp311-cp311-musllinux_1_2_x86_64.whl", "the target is linux x86_64 with glibc 2.12", 2),
        ("p-1.0-cp311-cp311-win_amd64.whl", "the target is linux x86_64 with glibc 2.12", 2),
    ],
)
def test_platform_gap_names_the_libc_only_when_it_is_the_only_gap(filename: str, detail: str, distance: int) -> None:
    [rejection] = explain_links("p", [link(filename)], RHEL6)
    assert rejection.reason == "tags"
    assert detail in rejection.detail
    assert rejection.distance == distance


# ---------------------------------------------------------------------------------------------
# the prefilters of versions_for_target (tags by string, checks that need no version) change nothing


def _reference(project: str, links: list[Link], profile, policy: Policy, pinned: frozenset[Version],
               hashes: frozenset[str] | None) -> list[WheelChoice]:
    """``versions_for_target`` without any shortcut: parse every file, ask ``_check`` about each."""
    from packaging.utils import canonicalize_name

    ranks, norm = profile.tag_ranks(), canonicalize_name(project)
    best: dict[Version, WheelChoice] = {}
    for lk in links:
        info = wheel_info(lk.filename) if lk.is_wheel else None
        if info is None or canonicalize_name(info[0]) != norm:
            continue
        result = _check(lk, info, profile, ranks, policy, info[1] in pinned, hashes)
        if isinstance(result, Rejection):
            continue
        if info[1] not in best or result < best[info[1]].rank:
            best[info[1]] = WheelChoice(name=norm, version=info[1], link=lk, rank=result)
    return [best[v] for v in sorted(best, reverse=True)]


_NAMES = st.sampled_from(["pkg"] * 6 + ["Pkg", "pkg_x", "other", "pkg-1.0"])
_VERSIONS = st.sampled_from(["1.0", "2.0", "2.0rc1", "1.0+local", "1!0.5", "x.y", "1.0-1"])
_PYS = st.sampled_from(["cp311", "py3", "cp311", "py3", "cp310", "py2.py3", "CP311", "cp312", "pp310", ""])
_ABIS = st.sampled_from(["cp311", "none", "abi3", "cp311", "none", "cp310", "NONE", "cp311d"])
_PLATS = st.sampled_from(["manylinux_2_17_x86_64", "any", "win_amd64", "manylinux_2_17_x86_64.manylinux2014_x86_64",
                          "macosx_11_0_arm64", "manylinux_2_34_x86_64", "musllinux_1_1_x86_64", "linux_x86_64", "ANY"])


@st.composite
def _files(draw: st.DrawFn) -> Link:
    parts = [draw(_NAMES), draw(_VERSIONS)]
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["1", "2abc", "x"])))  # a build tag, valid or not
    parts += [draw(_PYS), draw(_ABIS), draw(_PLATS)]
    parts = parts[: draw(st.integers(2, len(parts)))] if draw(st.integers(0, 19)) == 0 else parts  # too few parts
    filename = "-".join(parts) + draw(st.sampled_from([".whl"] * 10 + [".tar.gz", ".WHL"]))
    return link(filename, sha256=draw(st.sampled_from([None, "a" * 64, "a" * 64, "b" * 64])),
                requires_python=draw(st.sampled_from([None, None, ">=3.8", ">=3.12", "<3.11.5", "garbage"])),
                yanked=draw(st.sampled_from([None, None, None, None, "", "broken"])),
                upload_time=draw(st.sampled_from([None, T0 - timedelta(days=1), T0, T0 + timedelta(days=1)])),
                flat=draw(st.booleans()), index=draw(st.sampled_from(["test", "undated"])))


@settings(max_examples=400, deadline=None)
@given(files=st.lists(_files(), max_size=25), profile=st.sampled_from([LINUX, WINDOWS, MAC]),
       exclude=st.sampled_from([None, T0]), pinned=st.sets(st.sampled_from([Version("1.0"), Version("2.0")])),
       hashes=st.sampled_from([None, frozenset({"a" * 64})]))
def test_prefilters_choose_exactly_what_checking_every_file_chooses(files: list[Link], profile, exclude, pinned,
                                                                    hashes) -> None:
    policy = Policy(exclude_newer=exclude, undated_ok=frozenset({"undated"}))
    expected = _reference("pkg", files, profile, policy, frozenset(pinned), hashes)
    got = versions_for_target("pkg", files, profile, policy=policy, pinned_versions=frozenset(pinned), hashes=hashes)
    assert got == expected
