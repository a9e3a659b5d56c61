"""bundler.diagnose: failure messages built from the resolver's data, through the fake index."""

from __future__ import annotations

import pytest

from bundler.errors import ResolutionImpossible
from support.plancases import W
from test_plan import plan_in_process


def failure(wheels: list[W], args: list[str]) -> ResolutionImpossible:
    with pytest.raises(ResolutionImpossible) as e:
        plan_in_process(wheels, args)
    return e.value


def test_a_dependencys_pin_on_a_yanked_release_says_it_is_yanked() -> None:
    err = failure([W("app", "1.0", deps=["lib==2.0"]), W("lib", "1.0"), W("lib", "2.0", yanked="broken build")], ["app"])
    assert "2.0 is yanked (broken build)" in err.message and "your own == pin" in err.message
    assert err.hint and "lib==2.0" in err.hint and "--pre" not in err.hint


def test_pre_is_suggested_only_when_a_pre_release_would_help() -> None:
    assert "--pre" not in (failure([W("a", "1.0")], ["a!=1.0"]).hint or "")
    assert "--pre" in (failure([W("a", "1.0"), W("a", "2.0rc1")], ["a>1.0"]).hint or "")
