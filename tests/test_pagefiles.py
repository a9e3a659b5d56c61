"""bundler/pagefiles.py: a page's files as columns, Links made on use. What a target is offered from a
``PageFiles`` must be exactly what it is offered from the plain list of the same links; hypothesis
writes the pages (names that are and are not distributions, odd tag sets, yanked files, times)."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundler.index import IndexConfig, Link
from bundler.jsonpage import entries_links, parse_json_page
from bundler.pagefiles import FIELDS, PageFiles, columns_of, tag_key, usual
from bundler.profile import profile_for_platform
from bundler.select import Policy, versions_for_target

IX = IndexConfig(name="main", url="https://example.org/simple/")
PAGE = "https://example.org/simple/pkg/"
EXAMPLES = int(os.environ.get("WHEELHOUSE_FUZZ_EXAMPLES", "300"))
TARGETS = [profile_for_platform("x86_64-manylinux_2_28", "3.11"), profile_for_platform("x86_64-pc-windows-msvc", "3.9"),
           profile_for_platform("aarch64-apple-darwin", "3.12"), profile_for_platform("aarch64-manylinux_2_17", "3.8")]

_NAMES = st.sampled_from([
    "pkg-1.0-py3-none-any.whl", "pkg-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "pkg-2.0-cp311-cp311-win_amd64.whl", "pkg-2.0-cp39-abi3-macosx_11_0_arm64.whl", "pkg-2.1rc1-py2.py3-none-any.whl",
    "Pkg_X-3.0-1-cp38-cp38-manylinux_2_17_aarch64.whl", "pkg-3.0-CP311-CP311-WIN_AMD64.whl", "other-1.0-py3-none-any.whl",
    "pkg-1.0.tar.gz", "pkg-1.1.zip", "pkg-0.9.tar.bz2", "pkg-notaversion.tar.gz", "pkg-1.0-x.whl", "pkg.exe",
    "pkg-1.0-py3-none-any.WHL", "pkg-2.0-py3-none-any.whl", "pkg-2.0.tar.gz", "pkg-1!2.0+local-py3-none-any.whl",
])


@st.composite
def _files(draw: st.DrawFn) -> dict:
    name = draw(_NAMES)
    entry = {"filename": name, "url": f"https://files.example.org/{draw(st.integers(0, 3))}/{name}",
             "hashes": {"sha256": hashlib.sha256(draw(st.binary(max_size=4))).hexdigest()}}
    if draw(st.booleans()):
        entry["requires-python"] = draw(st.sampled_from([">=3.8", "<3.10", ">=3.12", "", ">=3.9,<3.12"]))
    if draw(st.booleans()):
        entry["yanked"] = draw(st.sampled_from([True, False, "broken"]))
    if draw(st.booleans()):
        entry["upload-time"] = draw(st.sampled_from(["2024-01-01T00:00:00Z", "2025-07-01T00:00:00.123456Z", "garbage",
                                                     "2024-01-01T00:00:00"]))
    if draw(st.booleans()):
        entry["size"] = draw(st.integers(0, 10**6))
    return entry


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(_files(), max_size=12), st.sampled_from([None, datetime(2025, 1, 1, tzinfo=timezone.utc)]),
       st.booleans())
def test_targets_are_offered_the_same_from_columns_and_from_links(files: list, exclude_newer: datetime | None,
                                                                   sources: bool) -> None:
    page = parse_json_page(_json(files), PAGE, IX)
    assert isinstance(page, PageFiles)
    plain = entries_links(files, PAGE, IX)
    assert list(page) == plain and len(page) == len(plain) and bool(page) == bool(plain)
    policy = Policy(exclude_newer=exclude_newer, only_binary=frozenset() if sources else frozenset({":all:"}))
    for profile in TARGETS:
        fresh = PageFiles.of_links(IX, page)  # nothing made yet: the lazy path from the start
        assert (versions_for_target("pkg", fresh, profile, policy=policy)
                == versions_for_target("pkg", plain, profile, policy=policy))


def _json(files: list) -> bytes:
    import json

    return json.dumps({"meta": {"api-version": "1.1"}, "name": "pkg", "files": files}).encode()


def test_only_the_files_a_target_may_use_are_made() -> None:
    """A page of thousands of files for other platforms: ranking it for one target makes the Links of
    that target's files (and the sdists), not the others."""
    files = [{"filename": f"pkg-{v}-cp311-cp311-{plat}.whl", "url": f"https://f.example/pkg-{v}-{plat}.whl",
              "hashes": {"sha256": "a" * 64}} for v in range(500) for plat in ("win_amd64", "macosx_11_0_arm64", "win32")]
    files += [{"filename": "pkg-7-cp311-cp311-manylinux_2_17_x86_64.whl", "url": "https://f.example/pkg-7-linux.whl",
               "hashes": {"sha256": "b" * 64}}, {"filename": "pkg-7.tar.gz", "url": "https://f.example/pkg-7.tar.gz",
                                                 "hashes": {"sha256": "c" * 64}}]
    page = parse_json_page(_json(files), PAGE, IX)
    found = versions_for_target("pkg", page, TARGETS[0], policy=Policy(only_binary=frozenset()))
    assert [(str(c.version), c.link.filename) for c in found] == [("7", "pkg-7-cp311-cp311-manylinux_2_17_x86_64.whl")]
    assert len(page._made) == 2  # the Linux wheel and the sdist; none of the 1500 others


def test_one_link_per_file_whichever_thread_asks_first() -> None:
    page = parse_json_page(_json([{"filename": f"pkg-{i}-py3-none-any.whl", "url": f"https://f.example/{i}.whl",
                                   "hashes": {"sha256": "a" * 64}} for i in range(200)]), PAGE, IX)
    assert isinstance(page, PageFiles)
    seen: list[list[Link | None]] = []
    barrier = threading.Barrier(4)

    def ask() -> None:
        barrier.wait()
        seen.append([page.link(i) for i in range(page.count)])

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(all(a is b for a, b in zip(seen[0], other)) for other in seen[1:])
    assert [k.url for k in seen[0] if k is not None] == [f"https://f.example/{i}.whl" for i in range(200)]


@pytest.mark.parametrize(("filename", "key"), [
    ("pkg-1.0-py3-none-any.whl", "py3-none-any"),
    ("Pkg-1.0-1-CP311-cp311-WIN_AMD64.whl", "cp311-cp311-win_amd64"),
    ("pkg-1.0-py2.py3-none-any.whl", "py2.py3-none-any"),
    ("x-1-none-any.whl", None),  # four parts: not a wheel name
    ("pkg-1.0.tar.gz", None),
    ("pkg-1.0-py3-none-any.WHL", None),  # as the selection has always read them: .whl exactly
])
def test_tag_key(filename: str, key: str | None) -> None:
    assert tag_key(filename) == key


def test_columns_round_trip_through_links() -> None:
    links = [Link(filename="pkg-1.0-py3-none-any.whl", url="https://f.example/a.whl", index="main", index_url=IX.url,
                  sha256="a" * 64, requires_python=">=3.8", yanked="", size=3, metadata=True, metadata_sha256="b" * 64,
                  upload_time=datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=timezone.utc))]
    columns = columns_of(links)
    assert len(columns) == len(FIELDS) and usual(columns, remote=True)
    assert PageFiles(IX, columns) == links


@pytest.mark.parametrize("bad", [[1], [None], [""], ["a" * 256], ["a b.whl"], ["a/b.whl"], ["a\\b.whl"], ["a\nb.whl"]])
def test_names_that_no_page_may_give(bad: list) -> None:
    columns = columns_of([Link(filename="pkg-1.0-py3-none-any.whl", url="https://f.example/a.whl", index="main",
                               index_url=IX.url, sha256="a" * 64)])
    columns[0] = bad
    assert not usual(columns, remote=True)
