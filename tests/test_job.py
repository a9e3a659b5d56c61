"""Command-line flags against recipes when the index list is built."""

from __future__ import annotations

from pathlib import Path

from bundler.job import build_indexes
from bundler.inputs import RequirementSet, load_recipe


def _recipe(tmp_path: Path) -> Path:
    path = tmp_path / "r.toml"
    path.write_text('name = "r"\nrequirements = ["alpha"]\n[[targets]]\nprofile = "host"\n'
                    '[[index]]\nname = "private"\nurl = "https://private.example/simple/"\npackages = ["corp-*"]\n'
                    '[[index]]\nname = "pypi"\nurl = "pypi"\n')
    return path


def test_index_url_overrides_the_recipes_general_indexes_but_keeps_explicit_ones(tmp_path: Path) -> None:
    recipe = load_recipe(_recipe(tmp_path))
    got = build_indexes(index_url="https://mirror.example/simple", extra_index_urls=[], find_links=[], named=[], pins=[],
                        recipe=recipe, reqset=RequirementSet())
    assert [(i.name, i.url) for i in got] == [("private", "https://private.example/simple/"),
                                             ("default", "https://mirror.example/simple/")]
    assert got[0].packages == ("corp-*",)


def test_without_index_url_the_recipes_indexes_are_used_in_file_order(tmp_path: Path) -> None:
    recipe = load_recipe(_recipe(tmp_path))
    got = build_indexes(index_url=None, extra_index_urls=[], find_links=[], named=[], pins=[], recipe=recipe,
                        reqset=RequirementSet())
    assert [i.name for i in got] == ["private", "pypi"]
