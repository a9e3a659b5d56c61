"""bundler/choicememo.py: a target's ranking of a cached page, remembered between runs and checked
again on use (the loopback index, real locks)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundler import select
from support.hermetic import hermetic
from support.indexserver import IndexServer
from support.plancases import W, lock, publish

WHEELS = [W("app", "1.0", deps=["lib>=1"]), W("app", "2.0", deps=["lib>=2"]),
          W("lib", "1.0"), W("lib", "2.0"), W("lib", "2.1", tag="cp311-cp311-win_amd64"), W("lib", "3.0", rp=">=3.13")]


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path)


def _records(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "cache" / "choices").rglob("*") if p.is_file())


def _rankings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the real rankings (``versions_for_target`` as choicememo calls it)."""
    from bundler import choicememo

    seen: list[str] = []
    real = select.versions_for_target

    def counting(project: str, *args: object, **kwargs: object) -> object:
        seen.append(project)
        return real(project, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(choicememo, "versions_for_target", counting)
    return seen


def test_a_warm_relock_reuses_the_rankings_and_locks_the_same(index_server: IndexServer, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    publish(index_server, WHEELS)
    seen = _rankings(monkeypatch)
    assert lock(tmp_path, index_server, "app") == 0
    first = (tmp_path / "pylock.toml").read_bytes()
    assert {"app", "lib"} <= set(seen) and _records(tmp_path)
    seen.clear()
    assert lock(tmp_path, index_server, "app") == 0
    assert (tmp_path / "pylock.toml").read_bytes() == first
    assert "app" not in seen and "lib" not in seen  # both read back, checked, used


def _planted(record: dict, damage: str) -> bytes:
    versions, ranks, files = record["versions"], record["ranks"], record["files"]
    last = [[column[-1]] * len(versions) for column in files]  # another file of the page as each version's choice
    return {
        "garbage": b"\x00not json",
        "wrong-shape": json.dumps({"choices": record}).encode(),
        "short": json.dumps({**record, "versions": versions[:-1]}).encode(),
        "other-file": json.dumps({**record, "files": last}).encode() if len(versions) > 1 else b"[]",
        "other-rank": json.dumps({**record, "ranks": [r + 1 for r in ranks]}).encode(),
        "twice": json.dumps({"versions": versions * 2, "ranks": ranks * 2, "files": [c * 2 for c in files]}).encode(),
        "local-url": json.dumps({**record, "files": [files[0], ["file:///etc/passwd"] * len(versions), *files[2:]]}).encode(),
        "upper-digest": json.dumps({**record, "files": [*files[:2], [h.upper() for h in files[2]], *files[3:]]}).encode(),
        "not-a-distribution": json.dumps({**record, "files": [[n + ".exe" for n in files[0]], *files[1:]]}).encode(),
        "deep": b"[" * 100_000,
    }[damage]


@pytest.mark.parametrize("damage", ["garbage", "wrong-shape", "short", "other-file", "other-rank", "twice", "local-url",
                                    "upper-digest", "not-a-distribution", "deep"])
def test_a_damaged_or_planted_record_is_a_miss(index_server: IndexServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               damage: str) -> None:
    publish(index_server, WHEELS)
    assert lock(tmp_path, index_server, "app") == 0
    first = (tmp_path / "pylock.toml").read_bytes()
    for record in _records(tmp_path):
        record.write_bytes(_planted(json.loads(record.read_bytes()), damage))
    seen = _rankings(monkeypatch)
    assert lock(tmp_path, index_server, "app") == 0
    assert (tmp_path / "pylock.toml").read_bytes() == first  # the same lock: ranked again where a record was wrong
    assert seen  # at least one record was refused and ranked afresh


def test_another_target_or_policy_does_not_share_a_record(index_server: IndexServer, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    publish(index_server, WHEELS)
    assert lock(tmp_path, index_server, "app") == 0
    seen = _rankings(monkeypatch)
    assert lock(tmp_path, index_server, "app", target=("--python-platform", "windows", "--python-version", "3.11"),
                out="win.toml") == 0
    assert "lib" in seen
    seen.clear()
    assert lock(tmp_path, index_server, "app", "--only-binary", ":all:", out="binary.toml") == 0
    assert "lib" in seen


# ---------------------------------------------------------------------------------------------
# fuzz: whatever a record holds, the answer is a miss (ranked afresh) or choices that hold


_PAGE = json.dumps({"meta": {"api-version": "1.1"}, "name": "lib", "files": [
    {"filename": f"lib-{v}-{tag}.whl", "url": f"https://f.example/lib-{v}-{tag}.whl", "hashes": {"sha256": f"{i:064x}"},
     "upload-time": "2024-01-01T00:00:00Z"}
    for i, (v, tag) in enumerate([("1.0", "py3-none-any"), ("2.0", "cp311-cp311-manylinux_2_17_x86_64"),
                                  ("2.0", "py3-none-any"), ("3.0", "cp311-cp311-win_amd64")])]
    + [{"filename": "lib-0.5.tar.gz", "url": "https://f.example/lib-0.5.tar.gz", "hashes": {"sha256": "f" * 64}}]}).encode()

_values = st.one_of(st.none(), st.booleans(), st.integers(-2, 2**40), st.sampled_from([
    "lib-9.0-py3-none-any.whl", "lib-2.0-py3-none-any.whl", "lib-0.5.tar.gz", "other-1.0-py3-none-any.whl", "lib-1.0.exe",
    "a/b.whl", "https://f.example/x.whl", "file:///etc/passwd", "https://f.example/a b.whl", "0" * 64, "A" * 64, "2.0",
    "9.0", "0.5", "x", "", "2024-01-01T00:00:00Z", ">=3.12", "\x1b[2J"]))


@st.composite
def _planted_records(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(0, 3))
    files = [draw(st.lists(_values, min_size=n, max_size=n)) for _ in range(9)]
    record: object = {"versions": draw(st.lists(_values, min_size=n, max_size=n)),
                      "ranks": draw(st.lists(st.integers(-1, 1 << 21) | _values, min_size=n, max_size=n)), "files": files}
    if draw(st.booleans()):
        record = draw(st.recursive(_values, lambda inner: st.lists(inner, max_size=3), max_leaves=8))
    return json.dumps(record).encode()


@settings(max_examples=int(os.environ.get("WHEELHOUSE_FUZZ_EXAMPLES", "300")), deadline=None)
@given(data=st.data())
def test_whatever_a_record_holds_the_choices_hold(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    from bundler.choicememo import ChoiceMemo
    from bundler.httpcache import PlannerCache
    from bundler.index import IndexConfig
    from bundler.jsonpage import parse_json_page
    from bundler.pagefiles import PageFiles, columns_of, usual
    from bundler.profile import profile_for_platform

    cache = PlannerCache(tmp_path_factory.mktemp("memo"))
    index = IndexConfig(name="main", url="https://idx.example/simple/")
    page = PageFiles.of_links(index, parse_json_page(_PAGE, "https://idx.example/simple/lib/", index), key="k" * 64)
    profile = profile_for_platform("x86_64-manylinux_2_28", "3.11")
    policy = select.Policy(only_binary=frozenset())
    ranks = profile.tag_ranks()
    fresh = ChoiceMemo(cache).versions("lib", page, profile, policy=policy, ranks=ranks)
    assert [str(c.version) for c in fresh] == ["2.0", "1.0", "0.5"]
    [record] = [p for p in cache.root.joinpath("choices").rglob("*") if p.is_file()]  # type: ignore[union-attr]
    if data.draw(st.booleans()):
        record.write_bytes(data.draw(_planted_records()))
    else:  # a few cells of the real record changed: most of the checks are reached
        edited = json.loads(record.read_bytes())
        for _ in range(data.draw(st.integers(1, 3))):
            column = data.draw(st.sampled_from([edited["versions"], edited["ranks"], *edited["files"]]))
            column[data.draw(st.integers(0, len(column) - 1))] = data.draw(_values)
        record.write_bytes(json.dumps(edited).encode())
    got = ChoiceMemo(cache).versions("lib", page, profile, policy=policy, ranks=ranks)
    assert got == fresh or (all(a.version > b.version for a, b in zip(got, got[1:]))
                            and usual(columns_of([c.link for c in got]), remote=True))
    for c in got:
        assert (c.link.index, c.link.index_url) == (index.name, index.url)
        if c.rank == select.SDIST_RANK:
            assert select.sdist_version(c.link.filename, "lib") == c.version
        else:
            info = select.wheel_info(c.link.filename)
            assert info is not None and info[1] == c.version and select.best_rank(info[2], ranks) == c.rank
