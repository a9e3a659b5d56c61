"""bundler/choicememo.py: a target's ranking of a cached page, remembered between runs and checked
again on use (the loopback index, real locks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("damage", ["garbage", "wrong-shape", "out-of-range", "other-file", "other-rank", "twice", "deep"])
def test_a_damaged_or_planted_record_is_a_miss(index_server: IndexServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               damage: str) -> None:
    publish(index_server, WHEELS)
    assert lock(tmp_path, index_server, "app") == 0
    first = (tmp_path / "pylock.toml").read_bytes()
    for record in _records(tmp_path):
        entries = json.loads(record.read_bytes())
        planted = {
            "garbage": b"\x00not json",
            "wrong-shape": json.dumps({"choices": entries}).encode(),
            "out-of-range": json.dumps([[10_000, "2.0", 0]]).encode(),
            # another file of the page named as each version's choice
            "other-file": json.dumps([[entries[-1][0], e[1], e[2]] for e in entries] * 2).encode(),
            "other-rank": json.dumps([[e[0], e[1], e[2] + 1] for e in entries]).encode(),
            "twice": json.dumps(entries + entries).encode(),  # each version must appear once, newest first
            "deep": b"[" * 100_000,
        }[damage]
        record.write_bytes(planted)
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
