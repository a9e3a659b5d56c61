"""bundler.diagnose: failure messages built from the resolver's data, through the fake index, and
on the loopback index for source distributions (real sdists, never built here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundler.cli import main
from bundler.errors import NoCompatibleFile, ResolutionImpossible
from support.hermetic import hermetic
from support.indexserver import IndexServer
from support.plancases import LINUX, W, lock, locked, stderr_of, versions
from support.sdistgen import make_sdist
from test_plan import plan_in_process


def failure(wheels: list[W], args: list[str], target: tuple[str, ...] = LINUX) -> ResolutionImpossible:
    with pytest.raises(ResolutionImpossible) as e:
        plan_in_process(wheels, args, target)
    return e.value


def test_a_dependencys_pin_on_a_yanked_release_says_it_is_yanked() -> None:
    err = failure([W("app", "1.0", deps=["lib==2.0"]), W("lib", "1.0"), W("lib", "2.0", yanked="broken build")], ["app"])
    assert "2.0 is yanked (broken build)" in err.message and "your own == pin" in err.message
    assert err.hint and "lib==2.0" in err.hint and "--pre" not in err.hint


def test_pre_is_suggested_only_when_a_pre_release_would_help() -> None:
    assert "--pre" not in (failure([W("a", "1.0")], ["a!=1.0"]).hint or "")
    assert "--pre" in (failure([W("a", "1.0"), W("a", "2.0rc1")], ["a>1.0"]).hint or "")


# -- the real conflict, not a side path -----------------------------------------------------------
# a 2.3.0 needs d, which no index has; a's other versions need b>=2 while x (or the user) needs b<2.
# resolvelib's backjumping can end on a 2.3.0, so its final causes name only d.

SIDE_PATH = [W("a", "2.3.0", deps=["d"]), W("a", "2.2.0", deps=["b>=2"]), W("b", "1.0"), W("b", "2.0"),
             W("x", "1.0", deps=["b<2"])]


@pytest.mark.parametrize("wheels, args", [
    (SIDE_PATH, ["x", "a"]),
    (SIDE_PATH, ["a", "x"]),
    (SIDE_PATH + [W("a", "2.1.0", deps=["b>=2"])], ["a", "b==1.0"]),  # resolvelib's causes hold d and b
])
def test_impossible_names_the_conflict_on_b_not_the_missing_d(wheels: list[W], args: list[str]) -> None:
    err = failure(wheels, args)
    head, _, side = err.message.partition("other versions were ruled out on the way:")
    assert "no version of b satisfies every constraint" in head and "a 2.2.0 requires b>=2" in head
    assert "b<2" in head or "b==1.0" in head
    assert "'d'" not in head and "a 2.3.0 requires d" in side
    assert err.hint and "loosen" in err.hint


def test_a_missing_project_the_user_asked_for_is_still_the_story() -> None:
    err = failure(SIDE_PATH, ["x", "d"])
    assert err.message.startswith("you asked for d, but no index has a project named 'd'")


def test_setting_aside_a_dead_end_can_find_a_resolution() -> None:
    """Versions whose dependency nothing provides are never usable: set aside, the rest resolves."""
    result, _ = plan_in_process([W("a", "2.3.0", deps=["d"]), W("a", "2.2.0"), W("x", "1.0", deps=["a"])], ["x"])
    assert {p.name: p.version for p in result.targets[0].pins} == {"a": "2.2.0", "x": "1.0"}


# -- Requires-Python bounds -------------------------------------------------------------------------

PY39 = ("--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.9")


def test_requires_python_upper_bound_is_named() -> None:
    with pytest.raises(NoCompatibleFile) as e:
        plan_in_process([W("pkg", "2.0", page_rp="<=3.8")], ["pkg"], PY39)
    assert "pkg 2.0 requires Python <=3.8, an upper bound the target's Python 3.9.0 is past" in e.value.message
    assert e.value.hint and "older Python" in e.value.hint


def test_requires_python_bound_is_named_for_a_pinned_version() -> None:
    err = failure([W("pkg", "1.0"), W("pkg", "2.0", page_rp="<3.9")], ["pkg==2.0"], PY39)
    assert "pkg 2.0 requires Python <3.9, an upper bound" in err.message


def test_requires_python_lower_bound_is_named_as_such() -> None:
    with pytest.raises(NoCompatibleFile) as e:
        plan_in_process([W("pkg", "2.0", page_rp=">=3.10")], ["pkg"], PY39)
    assert "pkg 2.0 requires Python >=3.10; the target runs 3.9.0" in e.value.message


# -- source distributions, on the loopback index ------------------------------------------------------

@pytest.fixture
def sdist_world(index_server: IndexServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> IndexServer:
    """hydra-core in small: 1.3.2 needs omegaconf 2.x and antlr4 4.9.*, whose 4.9.3 is an sdist only;
    0.11.3 needs only omegaconf 1.x, which has wheels."""
    hermetic(monkeypatch, tmp_path)
    srv = index_server
    srv.add_index("main")
    srv.add_wheel("main", "hydra-core", "0.11.3", requires_dist=["omegaconf<2"])
    srv.add_wheel("main", "hydra-core", "1.3.2", requires_dist=["omegaconf>=2.2,<2.4", "antlr4-python3-runtime==4.9.*"])
    srv.add_wheel("main", "omegaconf", "1.4.1")
    srv.add_wheel("main", "omegaconf", "2.3.0", requires_dist=["antlr4-python3-runtime==4.9.*"])
    srv.add_wheel("main", "antlr4-python3-runtime", "4.13.2")
    srv.add_file("main", make_sdist(tmp_path / "src", "antlr4-python3-runtime", "4.9.3"))
    srv.add_wheel("main", "app", "1.0", requires_dist=["mid"])
    srv.add_wheel("main", "mid", "1.0", requires_dist=["docopt"])
    srv.add_file("main", make_sdist(tmp_path / "src", "docopt", "0.6.2"))
    srv.add_wheel("main", "netifaces", "0.11.0", tag="cp311-cp311-manylinux_2_17_x86_64")
    srv.add_wheel("main", "netifaces", "0.11.0", tag="cp39-cp39-win_amd64")
    srv.add_file("main", make_sdist(tmp_path / "src", "netifaces", "0.11.0"))
    return srv


PY312 = ("--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.12")


def test_only_binary_names_the_transitive_sdist_only_project(sdist_world: IndexServer, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert lock(tmp_path, sdist_world, "hydra-core>=1.3", "--only-binary", ":all:", target=PY312) == 1
    err = stderr_of(capsys)
    assert "antlr4-python3-runtime 4.9.3 is published only as an sdist, and --only-binary forbids building it" in err
    assert "--no-binary antlr4-python3-runtime" in err
    assert lock(tmp_path, sdist_world, "app", "--only-binary", "docopt", target=PY312) == 1
    err = stderr_of(capsys)
    assert "docopt 0.6.2 is published only as an sdist, and --only-binary forbids building it" in err
    assert "needed because mid 1.0 requires docopt" in err and "take docopt out of --only-binary" in err


def test_availability_table_shows_the_sdist_that_alone_fits(sdist_world: IndexServer, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert lock(tmp_path, sdist_world, "netifaces", "--only-binary", ":all:", target=PY312) == 1
    err = stderr_of(capsys)
    assert "netifaces 0.11.0 has no wheel for this target, only an sdist, and --only-binary forbids building it" in err
    row = next(line for line in err.splitlines() if line.strip().startswith("0.11.0"))
    assert row.rstrip().endswith("manylinux_2_17_x86_64, win_amd64; sdist")


# -- a requested project held far back (the hydra-core 0.11.3 case) ---------------------------------

def _lock_warnings(srv: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    """Lock ``args`` without -q and return the warning lines printed."""
    argv = ["lock", *args, "-o", str(tmp_path / "pylock.toml"), "--index-url", srv.index_url("main"), *PY312,
            "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    return [line for line in stderr_of(capsys).splitlines() if line.startswith("warning:")]


def test_held_back_by_an_sdist_only_dependency_warns(sdist_world: IndexServer, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    [warning] = _lock_warnings(sdist_world, tmp_path, capsys, "hydra-core", "--only-binary", ":all:")
    assert "hydra-core resolved to 0.11.3 on target x86_64-manylinux_2_28-cp312, although 1.3.2 is its newest release" in warning
    assert "antlr4-python3-runtime 4.9.3 is published only as an sdist, and --only-binary forbids building it" in warning
    assert "--no-binary antlr4-python3-runtime" in warning


def test_no_held_back_warning_when_building_is_allowed_or_the_user_holds_it(sdist_world: IndexServer, tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert _lock_warnings(sdist_world, tmp_path, capsys, "hydra-core", "--only-binary", "omegaconf") == []
    assert versions(locked(tmp_path))["hydra-core"] == "1.3.2"
    (tmp_path / "pylock.toml").unlink()
    assert _lock_warnings(sdist_world, tmp_path, capsys, "hydra-core<1", "--only-binary", ":all:") == []


def test_no_held_back_warning_for_an_ordinary_conflict(index_server: IndexServer, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    hermetic(monkeypatch, tmp_path)
    index_server.add_index("main")
    index_server.add_wheel("main", "a", "2.0", requires_dist=["b>=2"])
    index_server.add_wheel("main", "a", "1.0")
    index_server.add_wheel("main", "b", "1.0")
    index_server.add_wheel("main", "b", "2.0")
    assert _lock_warnings(index_server, tmp_path, capsys, "a", "b<2", "--only-binary", ":all:") == []
    assert versions(locked(tmp_path))["a"] == "1.0"
