"""bundler.heldback._above: the cheap test that lets a lock skip the held-back ranking of a project
with no file above its locked version (the warnings themselves are tested in test_diagnose)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bundler.heldback import _above, _version_text
from bundler.index import IndexConfig, Link
from bundler.pagefiles import PageFiles
from bundler.select import Policy

INDEX = IndexConfig(name="pypi", url="https://idx.example/simple/")
OLD, CUT, NEW = (datetime(2024, m, 1, tzinfo=timezone.utc) for m in (1, 6, 9))


def link(filename: str, uploaded: datetime | None = OLD) -> Link:
    return Link(filename=filename, url=f"https://files.example/{filename}", index="pypi", index_url=INDEX.url,
                sha256="0" * 64, upload_time=uploaded)


def as_page(links: list[Link]) -> PageFiles:
    return PageFiles.of_links(INDEX, links)


@pytest.mark.parametrize("shape", [list, as_page], ids=["links", "page-files"])
@pytest.mark.parametrize("files, policy, expected", [
    ([link("a-1.0-py3-none-any.whl"), link("a-1.0.tar.gz"), link("a-0.9.zip")], Policy(), False),
    ([link("a-1.0-py3-none-any.whl"), link("a-1.1.tar.gz")], Policy(), True),
    ([link("a-1.1-cp311-cp311-win_amd64.whl")], Policy(), True),  # tags are the ranking's business
    ([link("a-1.1-py3-none-any.whl", NEW)], Policy(exclude_newer=CUT), False),  # too new
    ([link("a-1.1-py3-none-any.whl", OLD)], Policy(exclude_newer=CUT), True),
    ([link("a-1.1-py3-none-any.whl", None)], Policy(exclude_newer=CUT), True),  # undated: cannot tell
    ([link("a-1.0rc1-py3-none-any.whl"), link("a-1.1rc1.tar.gz", NEW)], Policy(exclude_newer=CUT), False),
    ([link("a-1.1.post1-1-py3-none-any.whl")], Policy(), True),  # a build tag
    ([link("a-banana-py3-none-any.whl"), link("a-2.0.exe"), link("a-2.0.tar.bz2")], Policy(), False),
    ([link("a-1.1rc1-py3-none-any.whl"), link("a-1.1.dev1.tar.gz")], Policy(), False),  # pre-releases not asked for
])
def test_above(shape, files: list[Link], policy: Policy, expected: bool) -> None:
    assert _above(shape(files), Version("1.0"), SpecifierSet(), policy, pre=False) is expected


@pytest.mark.parametrize("files, spec, pre, expected", [
    (["a-1.1rc1-py3-none-any.whl"], "", True, True),
    (["a-1.1.dev1.tar.gz"], "", True, True),
    (["a-1.1-py3-none-any.whl", "a-2.0.tar.gz"], "<1.1", False, False),  # the specifier rules both out
    (["a-1.1-py3-none-any.whl", "a-2.0.tar.gz"], "!=1.1", False, True),
    (["a-1.1rc1-py3-none-any.whl"], ">=1.1rc1", True, True),
])
def test_above_follows_the_specifier_and_pre_release_rule(files: list[str], spec: str, pre: bool, expected: bool) -> None:
    assert _above(as_page([link(f) for f in files]), Version("1.0"), SpecifierSet(spec), Policy(), pre=pre) is expected


@pytest.mark.parametrize("filename, text", [
    ("a-1.0-py3-none-any.whl", "1.0"), ("a_b-2.0-1-cp311-cp311-linux_x86_64.whl", "2.0"),
    ("a-b-1.0.tar.gz", "1.0"), ("a-1.0.zip", "1.0"), ("a-1.0.tar.bz2", None), ("a.whl", None), ("1.0.tar.gz", None),
])
def test_version_text_splits_as_packaging_does(filename: str, text: str | None) -> None:
    assert _version_text(filename) == text
