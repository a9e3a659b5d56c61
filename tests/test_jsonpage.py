"""bundler/jsonpage.py: the column-at-a-time reading of a JSON page gives exactly what the file-by-file
reading gives (the same links, or the same error), whatever the page holds; hypothesis writes pages."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundler.errors import IndexUnavailable
from bundler.index import IndexConfig
from bundler.jsonpage import columns_links, entries_links

IX = IndexConfig(name="main", url="https://example.org/simple")
PAGE = "https://example.org/simple/pkg/"
EXAMPLES = int(os.environ.get("WHEELHOUSE_FUZZ_EXAMPLES", "300"))
H = "ab" * 32

names = st.sampled_from(["pkg-1.0-py3-none-any.whl", "pkg-2.0-cp311-cp311-manylinux_2_17_x86_64.whl", "pkg-1.0.tar.gz",
                         "pkg-1.0.zip", "pkg-0.9.tar.bz2", "pkg-1.0-1-py3-none-any.whl", "pkg-notaversion.tar.gz",
                         "pkg.exe", "../evil-1.0.tar.gz", "pkg-1.0-py3-none-any.whl\n", "", "pkg-1.0-x.whl"])
urls = st.one_of(st.sampled_from(["https://files.example.org/p/pkg-1.0.tar.gz", "http://h/x.whl", "x.whl", "/abs/x.whl",
                                  "file:///etc/passwd", "https://h/a b.whl", "https://h/x.whl#sha256=" + H,
                                  "https://h/x\x01.whl", "ftp://h/x.whl", "https://h/\u00a0x.whl"]), st.integers())
digests = st.one_of(st.sampled_from([H, H.upper(), "zz", "", H + "\n" + H]), st.none(), st.integers())
texts = st.one_of(st.none(), st.sampled_from(["", ">=3.8", "bad\x1b[31m", "\0", "reason", ">=3.8\n"]), st.booleans(),
                  st.integers(-1, 1))
metas = st.one_of(st.none(), st.booleans(), st.sampled_from(["false", "sha256=" + H, "sha256=zz"]),
                  st.fixed_dictionaries({"sha256": st.sampled_from([H, H.upper(), "zz"])}), st.integers())
entries = st.one_of(
    st.fixed_dictionaries({"filename": names, "url": urls, "hashes": st.one_of(st.fixed_dictionaries({"sha256": digests}),
                                                                                st.none(), st.just([]))},
                          optional={"requires-python": texts, "yanked": texts, "upload-time":
                                    st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5+02:00", "garbage", ""]),
                                    "size": st.one_of(st.integers(-5, 10**12), st.booleans(), st.none()),
                                    "core-metadata": metas, "dist-info-metadata": metas}),
    st.sampled_from([None, 5, "x", []]))


def _outcome(fn, files, page):  # type: ignore[no-untyped-def]
    try:
        return "ok", fn(files, page, IX)
    except IndexUnavailable as e:
        return "error", e.message


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(entries, max_size=6), st.sampled_from([PAGE, "file:///srv/simple/pkg/"]))
def test_columns_agree_with_entries(files: list, page: str) -> None:
    fast = columns_links(files, page, IX)
    if fast is None:  # unusual values: the caller reads file by file, which decides
        return
    assert ("ok", fast) == _outcome(entries_links, files, page)


def test_the_usual_page_takes_the_column_path() -> None:
    files = [{"filename": "pkg-1.0-py3-none-any.whl", "url": "https://h/pkg-1.0-py3-none-any.whl", "hashes": {"sha256": H},
              "requires-python": ">=3.8", "yanked": False, "upload-time": "2024-01-01T00:00:00Z", "size": 10,
              "core-metadata": {"sha256": H}},
             {"filename": "pkg-1.0.tar.gz", "url": "https://h/pkg-1.0.tar.gz", "hashes": {"sha256": H.upper()},
              "yanked": "broken", "size": 5},
             {"filename": "pkg-1.0.exe", "url": "https://h/pkg-1.0.exe", "hashes": {"sha256": H}}]
    fast = columns_links(files, PAGE, IX)
    assert fast is not None and fast == entries_links(files, PAGE, IX)
    assert [k.filename for k in fast] == ["pkg-1.0-py3-none-any.whl", "pkg-1.0.tar.gz"]
    assert fast[1].sha256 == H and fast[1].yanked == "broken" and fast[0].metadata_sha256 == H


@pytest.mark.parametrize("change", [{"url": "ftp://h/x.whl"}, {"hashes": {"sha256": "zz"}}, {"yanked": "a\x1bb"}])
def test_an_unusual_value_leaves_the_decision_to_the_file_by_file_reading(change: dict) -> None:
    files = [{"filename": "pkg-1.0-py3-none-any.whl", "url": "https://h/pkg-1.0-py3-none-any.whl", "hashes": {"sha256": H},
              **change}]
    assert columns_links(files, PAGE, IX) is None


usual = st.fixed_dictionaries(
    {"filename": names.filter(lambda n: n and "\n" not in n and "/" not in n), "url": st.sampled_from(["https://h/a.whl", "http://h/b.tar.gz"]),
     "hashes": st.fixed_dictionaries({"sha256": st.sampled_from([H, H.upper()])})},
    optional={"requires-python": st.sampled_from([None, "", ">=3.8", "<4,>=3.9"]), "yanked": st.sampled_from([None, False, True, "", "bad build"]),
              "upload-time": st.sampled_from(["2024-01-01T00:00:00Z", "garbage", ""]), "size": st.one_of(st.integers(-5, 10**9), st.none()),
              "core-metadata": st.sampled_from([None, True, False, {"sha256": H}, "sha256=" + H])})


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(usual, max_size=8))
def test_usual_pages_take_the_column_path_and_agree(files: list) -> None:
    fast = columns_links(files, PAGE, IX)
    assert fast is not None  # nothing unusual here: the column reading must decide, and agree
    assert fast == entries_links(files, PAGE, IX)


def test_the_collector_is_paused_while_pages_are_read_and_restored_after() -> None:
    """Reads from several threads nest; the collector ends as it was (on, or off if it was off)."""
    import gc
    import threading

    from bundler.jsonpage import parse_json_page

    body = json.dumps({"meta": {"api-version": "1.1"}, "files": [
        {"filename": f"pkg-{i}-py3-none-any.whl", "url": f"https://h/pkg-{i}-py3-none-any.whl", "hashes": {"sha256": H}}
        for i in range(3000)]}).encode()
    seen: list[bool] = []

    def read() -> None:
        for _ in range(20):
            seen.append(len(parse_json_page(body, PAGE, IX)) == 3000)

    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            threads = [threading.Thread(target=read) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert gc.isenabled() is enabled
        finally:
            gc.enable()
    assert seen and all(seen)
