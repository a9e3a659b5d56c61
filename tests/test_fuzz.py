"""Property-based fuzzing of the readers of outside data not covered beside their modules.

Invariant for every reader: a valid result or the project's own error, never another exception
(index pages: test_index.py; bundle.json: test_install_trust.py and test_manifest.py; tar members:
test_archive.py).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundler.errors import BundlerError
from bundler.inputs import load_recipe
from bundler.locktool import read_lock
from bundler.profile import Profile
from bundler.wheelmeta import BadMetadata, metadata_from_zip, parse_metadata

# WHEELHOUSE_FUZZ_EXAMPLES=5000 for a longer hunt than the suite's default.
SETTINGS = settings(max_examples=int(os.environ.get("WHEELHOUSE_FUZZ_EXAMPLES", "200")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

_scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=30)


def _docs(keys: list[str]) -> st.SearchStrategy[object]:
    return st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.sampled_from(keys) | st.text(max_size=8), inner, max_size=6), max_leaves=40)


@SETTINGS
@given(st.binary(max_size=400) | st.lists(st.sampled_from(
    ["Metadata-Version: 2.1", "Name: pkg", "Version: 1.0", "Version: not a version", "Requires-Dist: a>=1",
     "Requires-Dist: b; extra == 'x'", "Requires-Dist: ((", "Requires-Python: >=3.8", "Requires-Python: ~~",
     " folded", "\udcff", "Provides-Extra: x", ""]), max_size=12).map(lambda ls: "\n".join(ls).encode("utf-8", "surrogateescape")))
def test_core_metadata(data: bytes) -> None:
    try:
        parse_metadata(data)
    except BadMetadata:
        pass


@SETTINGS
@given(st.binary(max_size=600))
def test_wheel_zips(data: bytes) -> None:
    try:
        metadata_from_zip(io.BytesIO(data), "pkg")
    except BadMetadata:
        pass


@SETTINGS
@given(st.dictionaries(st.sampled_from(["pkg-1.0.dist-info/METADATA", "pkg-1.0.dist-info/RECORD", "other/METADATA"]),
                       st.binary(max_size=200), max_size=3))
def test_wheel_zips_with_real_structure(members: dict[str, bytes]) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    try:
        metadata_from_zip(io.BytesIO(buf.getvalue()), "pkg")
    except BadMetadata:
        pass


RECIPE_KEYS = ["name", "requirements", "constraints", "pre", "exclude-newer", "smoke", "targets", "index", "find-links",
               "python-platform", "python-version", "profile", "url", "packages", "torch-backend", "description"]


@SETTINGS
@given(_docs(RECIPE_KEYS).filter(lambda d: isinstance(d, dict)))
def test_recipes(doc: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.toml"
        try:
            path.write_text(tomli_w.dumps(doc))
        except (TypeError, ValueError):
            return  # not representable in TOML (None values)
        try:
            load_recipe(path)
        except BundlerError:
            pass


PROFILE_KEYS = ["format", "format-version", "name", "tags", "markers", "facts", "python_full_version", "implementation_name",
                "sys_platform", "platform_machine", "python_version"]


@SETTINGS
@given(_docs(PROFILE_KEYS))
def test_profiles(doc: object) -> None:
    try:
        Profile.from_dict(doc, origin="fuzz")  # type: ignore[arg-type]
    except BundlerError:
        pass


LOCK_KEYS = ["lock-version", "created-by", "packages", "name", "version", "wheels", "hashes", "sha256", "url", "path",
             "size", "tool", "wheelhouse", "targets", "profile", "bootstrap", "wheel", "requirements", "marker", "index"]


@SETTINGS
@given(_docs(LOCK_KEYS).filter(lambda d: isinstance(d, dict)))
def test_locks(doc: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pylock.toml"
        try:
            path.write_text(tomli_w.dumps(doc))
        except (TypeError, ValueError):
            path.write_text(json.dumps(doc))  # not TOML at all: also outside input
        try:
            read_lock(path)
        except BundlerError:
            pass


@SETTINGS
@given(st.binary(max_size=300))
def test_lock_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pylock.toml"
        path.write_bytes(data)
        try:
            read_lock(path)
        except BundlerError:
            pass


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a TOML document."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _valid_lock() -> dict:
    import tomllib

    from bundler.lock import render_lock, to_pylock
    from test_lock import TWO

    return tomllib.loads(render_lock(to_pylock(TWO)))


VALID_LOCK = _valid_lock()
LOCK_PATHS = _paths(VALID_LOCK)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(LOCK_PATHS), _docs(LOCK_KEYS)), min_size=1, max_size=3))
def test_locks_mutated_from_a_valid_one(edits: list[tuple[tuple, object]]) -> None:
    import copy

    doc = copy.deepcopy(VALID_LOCK)
    for path, value in edits:
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    with tempfile.TemporaryDirectory() as tmp:
        lock = Path(tmp) / "pylock.toml"
        try:
            lock.write_text(tomli_w.dumps(doc))
        except (TypeError, ValueError):
            return
        try:
            read_lock(lock)
        except BundlerError:
            pass
