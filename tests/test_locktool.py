"""bundler.locktool: any PEP 751 lock read back, and every value in it checked where it enters."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable

import pytest
import tomli_w

from bundler.errors import BadInput
from bundler.lock import read_lock, render_lock, to_pylock, write_lock
from test_lock import ONE, TWO
import tomllib


def lock_doc() -> dict:
    return tomllib.loads(render_lock(to_pylock(ONE)))


def write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "pylock.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


def first_wheel(doc: dict) -> dict:
    return doc["packages"][0]["wheels"][0]


def test_wheel_without_name_takes_it_from_the_url(tmp_path: Path) -> None:
    doc = lock_doc()
    name = first_wheel(doc).pop("name")
    lock = read_lock(write(tmp_path, doc))
    assert lock.packages[0].wheels[0].filename == name


def test_valid_lock_with_only_sha512_is_a_clear_error(tmp_path: Path) -> None:
    doc = lock_doc()
    first_wheel(doc)["hashes"] = {"sha512": "ab" * 64}
    with pytest.raises(BadInput, match=r"packages\[0\]\.wheels\[0\].*no sha256 hash \(only sha512\)"):
        read_lock(write(tmp_path, doc))


def test_foreign_lock_without_tool_table_is_refused(tmp_path: Path) -> None:
    doc = lock_doc()
    del doc["tool"]
    for p in doc["packages"]:
        p.pop("tool")
    with pytest.raises(BadInput, match="not written by wheelhouse"):
        read_lock(write(tmp_path, doc))


def _set_sha(doc: dict) -> None:
    first_wheel(doc)["hashes"]["sha256"] = "0" * 64 + "\n--index-url https://evil.example/"


def _set_name(doc: dict) -> None:
    first_wheel(doc)["name"] = "../../etc/requests-2.31.0-py3-none-any.whl"


def _set_other_project(doc: dict) -> None:
    first_wheel(doc)["name"] = "evil-1.0-py3-none-any.whl"
    doc["packages"][0]["tool"]["wheelhouse"]["targets"]["linux"] = "evil-1.0-py3-none-any.whl"


def _set_url(doc: dict) -> None:
    first_wheel(doc)["url"] = "ftp://files.example/requests-2.31.0-py3-none-any.whl"


def _set_target(doc: dict) -> None:
    doc["tool"]["wheelhouse"]["targets"][0]["name"] = "linux\n--find-links /tmp"


def _set_requirement(doc: dict) -> None:
    doc["tool"]["wheelhouse"]["requirements"] = ["requests\n--index-url http://evil"]


def _set_type(doc: dict) -> None:
    doc["tool"]["wheelhouse"]["targets"][0]["profile"] = ["not", "a", "table"]


def _set_smoke_type(doc: dict) -> None:
    doc["tool"]["wheelhouse"]["smoke"] = [1, 2]


@pytest.mark.parametrize("edit, message", [
    (_set_sha, "is not a sha256 digest"),
    (_set_name, "filename"),
    (_set_other_project, "evil.*(not consistent with|not of) .*requests"),
    (_set_url, "is not an http"),
    (_set_target, "is not a valid target name"),
    (_set_requirement, "is not a valid requirement"),
    (_set_type, r"targets\[0\]\.profile has the wrong type"),
    (_set_smoke_type, r"smoke\[0\] has the wrong type"),
])
def test_hostile_values_are_refused_where_they_enter(tmp_path: Path, edit: Callable[[dict], None], message: str) -> None:
    doc = lock_doc()
    edit(doc)
    with pytest.raises(BadInput, match=message):
        read_lock(write(tmp_path, doc))


def test_deeply_nested_lock_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(BadInput, match="nests too deeply"):
        read_lock(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "pylock.toml"
    os.mkfifo(fifo)
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            read_lock(fifo)
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(5), "reading a FIFO must not block"
    assert isinstance(errors[0], BadInput) and "not a regular file" in str(errors[0])


def test_round_trip_of_two_targets(tmp_path: Path) -> None:
    path, _ = write_lock(TWO, tmp_path / "pylock.toml")
    lock = read_lock(path)
    assert [p.name for p in lock.profiles] == ["linux", "win"]
    assert {p.name for p in lock.packages} == {"colorama", "numpy", "requests"}
