"""bundler.diff: the review diff between two locks or two bundles (archives or unpacked folders), as text
and JSON, with diff's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bundler.cli import main
from bundler.diff import compare, load
from bundler.lock import write_lock
from support.packworld import extract
from support.supplyworld import SupplyWorld, supply  # noqa: F401 - supply is a fixture
from test_lock import LINUX, TWO, WINDOWS, make_plan, pin


def test_identical_locks_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, _ = write_lock(TWO, tmp_path / "a" / "pylock.toml")
    b, _ = write_lock(TWO, tmp_path / "b" / "pylock.toml")
    assert main(["diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "no package changes" in out and "0 new files" in out


def test_added_removed_changed_per_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = make_plan((LINUX, [pin("requests", "2.31.0"), pin("idna", "3.6"), pin("gone", "1.0")]),
                    (WINDOWS, [pin("requests", "2.31.0")]))
    new = make_plan((LINUX, [pin("requests", "2.31.0"), pin("idna", "3.7", size=5000), pin("fresh", "0.1", size=700)]),
                    (WINDOWS, [pin("requests", "2.31.0")]))
    a, _ = write_lock(old, tmp_path / "a" / "pylock.toml")
    b, _ = write_lock(new, tmp_path / "b" / "pylock.toml")
    assert main(["diff", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "target linux\n  + fresh 0.1\n  - gone 1.0\n  ~ idna 3.6 -> 3.7\n" in out
    assert "target win\n  no package changes\n" in out
    assert "2 new files, 5.7 KB to carry across the gap" in out
    assert main(["diff", str(a), str(b), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["identical"] is False and doc["new-bytes"] == 5700
    assert doc["targets"]["linux"]["changed"] == [{"name": "idna", "old": "3.6", "new": "3.7"}]


def test_a_target_only_on_one_side(tmp_path: Path) -> None:
    a, _ = write_lock(make_plan((LINUX, [pin("six", "1.0")])), tmp_path / "a" / "pylock.toml")
    b, _ = write_lock(TWO, tmp_path / "b" / "pylock.toml")
    result = compare(load(a), load(b))
    assert result["targets"]["win"]["only-in"] == "new" and not result["identical"]


def test_missing_or_unreadable_inputs_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(tmp_path / "nope.toml"), str(tmp_path / "nope2.toml")]) == 1
    assert "no such bundle or lock" in capsys.readouterr().err
    (tmp_path / "dir").mkdir()
    assert main(["diff", str(tmp_path / "dir"), str(tmp_path / "dir")]) == 1
    assert "not a wheelhouse bundle" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# bundles: alpha 1.0 (MIT) -> 1.1 (Apache-2.0), beta and pip the same


def test_bundles_one_upgrade_apart_list_exactly_that_package(supply: SupplyWorld, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    old = supply.pack("old", tmp_path / "old" / "kit.tar.zst")
    new = supply.pack("new", tmp_path / "new" / "kit.tar.gz")
    assert main(["diff", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("target ") and out.count("target ") == 1
    assert out.splitlines()[1:3] == ["  ~ alpha 1.0 -> 1.1", "  license alpha: MIT -> Apache-2.0"], out
    assert len(out.splitlines()) == 4 and "1 new files" in out.splitlines()[3]
    assert main(["diff", str(old), str(new), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    (t,) = doc["targets"].values()
    assert t["changed"] == [{"name": "alpha", "old": "1.0", "new": "1.1"}] and t["added"] == t["removed"] == []
    assert t["licenses"] == [{"name": "alpha", "old": "MIT", "new": "Apache-2.0"}]
    folder = extract(new, tmp_path / "u")
    wheel = folder / "wheels" / "alpha-1.1-py3-none-any.whl"
    assert doc["new-files"] == 1 and doc["new-bytes"] == wheel.stat().st_size  # the bytes that cross the gap
    assert main(["diff", str(new), str(folder)]) == 0  # an archive and its unpacked folder are the same bundle
    assert "0 new files" in capsys.readouterr().out


def test_a_bundle_against_its_own_lock_and_the_other_way(supply: SupplyWorld, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    new = supply.pack("new", tmp_path / "kit.tar.zst")
    assert main(["diff", str(supply.locks["new"]), str(new)]) == 0
    capsys.readouterr()
    assert main(["diff", str(new), str(supply.locks["old"])]) == 1
    assert "  ~ alpha 1.1 -> 1.0" in capsys.readouterr().out
