"""``bundler.manifest``: bundle.json both ways, and the completeness proof as pure data.

Targets are built from explicit profiles (``profile_for_platform``); no bundle, no index, no I/O.
The same proof run through ``wheelhouse pack`` on real wheels is in test_pack.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundler.errors import BadInput, Incomplete
from bundler.manifest import Base, BundledPackage, BundledSdist, BundledTarget, Manifest, check_complete, printable, top_folder
from bundler.profile import Profile, profile_for_platform

CP311 = profile_for_platform("x86_64-manylinux_2_28", "3.11", name="cp311")
CP312 = profile_for_platform("x86_64-manylinux_2_28", "3.12", name="cp312")
WIN = profile_for_platform("x86_64-pc-windows-msvc", "3.12", name="win")
PIP = "wheels/pip-24.0-py3-none-any.whl"


def pkg(name: str, version: str = "1.0", *deps: str, wheel: str | None = None, requires_python: str | None = None) -> BundledPackage:
    return BundledPackage(name=name, version=version, wheel=f"wheels/{wheel or f'{name}-{version}-py3-none-any.whl'}",
                          requires_dist=tuple(deps), requires_python=requires_python)


def target(profile: Profile, *packages: BundledPackage, pip: str | None = PIP) -> BundledTarget:
    return BundledTarget(name=profile.name, profile=profile, pip=pip, packages=packages)


# A chain with an extra, a marker-only dependency and a platform-specific one, like test_pack's world.
CLOSURE = (pkg("alpha", "1.0", "beta>=2", "delta[fast]>=1", "backport; python_version < '3.12'", "winonly; sys_platform == 'win32'"),
           pkg("beta", "2.1", "gamma"), pkg("gamma", "0.3"),
           pkg("delta", "1.0", "epsilon; extra == 'fast'"), pkg("epsilon", "1.0"), pkg("backport", "1.0"))


def manifest() -> Manifest:
    # Every file the targets name is listed, as the installer's own check demands.
    files = {p.wheel: (10, "cd" * 32) for p in CLOSURE}
    files.update({PIP: (20, "cd" * 32), "requirements.txt": (5, "ef" * 32), "install.sh": (3, "ef" * 32)})
    return Manifest(name="kit", tool="wheelhouse 0.1.0", lock_sha256="ab" * 32, created="2024-06-01T00:00:00Z",
                    smoke=("import alpha",), requirements=("alpha",),
                    targets=(target(CP311, *CLOSURE), target(CP312, *(p for p in CLOSURE if p.name != "backport"))),
                    files=files)


# ---------------------------------------------------------------------------------------------
# bundle.json


def test_json_round_trip_is_exact() -> None:
    m = manifest()
    data = m.to_json()
    assert Manifest.from_json(data) == m
    assert Manifest.from_json(data).to_json() == data


def test_json_is_canonical() -> None:
    data = manifest().to_json()
    doc = json.loads(data)
    assert data == (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    assert (doc["format"], doc["format-version"]) == ("wheelhouse-bundle", 1)
    assert list(doc["files"]) == sorted(doc["files"])
    assert doc["files"]["install.sh"] == {"size": 3, "sha256": "ef" * 32}
    assert doc["targets"][0]["packages"][1] == {"name": "beta", "version": "2.1", "wheel": "wheels/beta-2.1-py3-none-any.whl",
                                                "requires-dist": ["gamma"], "requires-python": None}


@pytest.mark.parametrize("change,needle", [
    (lambda d: d.update({"format": "something-else"}), "not a wheelhouse bundle manifest"),
    (lambda d: d.update({"format-version": 2}), "format-version 2; this installer understands 1"),
    (lambda d: d.pop("targets"), "targets"),
    (lambda d: d["files"].update({"x": {"size": "many"}}), "needs an integer .size."),
])
def test_from_json_refuses_what_it_cannot_read(change: Callable[[dict[str, Any]], object], needle: str) -> None:
    doc = json.loads(manifest().to_json())
    change(doc)
    with pytest.raises(BadInput, match=needle):
        Manifest.from_json(json.dumps(doc).encode(), origin="kit/bundle.json")


def test_a_delta_manifest_round_trips_and_names_what_it_carries() -> None:
    from dataclasses import replace

    m = manifest()
    delta = replace(m, base=Base(name="kit-12345678", lock_sha256="12" * 32, files=(PIP,)))
    assert Manifest.from_json(delta.to_json()) == delta
    assert json.loads(delta.to_json())["base"] == {"name": "kit-12345678", "lock-sha256": "12" * 32, "files": [PIP]}
    assert set(delta.carried()) == set(m.files) - {PIP} and m.carried() == m.files
    assert "base" not in json.loads(m.to_json())  # a full bundle's bundle.json is as before
    assert m.top == top_folder("kit", "ab" * 32) == "kit-abababab"


@pytest.mark.parametrize("base,needle", [
    ({"name": "old", "lock-sha256": "12" * 32, "files": ["wheels/nope-1.0-py3-none-any.whl"]}, "not one of the bundle's wheels"),
    ({"name": "old", "lock-sha256": "12" * 32, "files": ["install.sh"]}, "not one of the bundle's wheels"),
    ({"name": "old", "files": []}, "'base' needs"),
    ("old", "'base' needs"),
])
def test_a_base_the_installer_would_refuse_is_refused(base: object, needle: str) -> None:
    doc = json.loads(manifest().to_json())
    doc["base"] = base
    with pytest.raises(BadInput, match=needle):
        Manifest.from_json(json.dumps(doc).encode())


def test_from_json_names_its_origin_for_garbage() -> None:
    with pytest.raises(BadInput, match="kit/bundle.json is not a readable bundle manifest"):
        Manifest.from_json(b"\x00not json", origin="kit/bundle.json")


# ---------------------------------------------------------------------------------------------
# completeness


def test_complete_closure_passes_on_both_targets() -> None:
    check_complete(target(CP311, *CLOSURE), ["alpha"])
    check_complete(target(CP312, *(p for p in CLOSURE if p.name != "backport")), ["alpha"])


@pytest.mark.parametrize("missing,needed_by", [("gamma", "beta 2.1"), ("epsilon", "delta 1.0[fast]"),
                                               ("backport", "alpha 1.0"), ("alpha", "the requirements")])
def test_missing_dependency_is_named_with_what_needs_it(missing: str, needed_by: str) -> None:
    with pytest.raises(Incomplete) as info:
        check_complete(target(CP311, *(p for p in CLOSURE if p.name != missing)), ["alpha"])
    assert "incomplete for target cp311" in info.value.message
    assert f"(needed by {needed_by}) is not in the bundle for cp311" in info.value.message


def test_marker_for_another_platform_needs_nothing() -> None:
    with pytest.raises(Incomplete, match="winonly"):
        check_complete(target(WIN, *CLOSURE), ["alpha"])  # on Windows winonly applies, and is missing


def test_extra_only_dependency_is_needed_only_with_the_extra() -> None:
    plain = (pkg("app", "1.0", "delta"), pkg("delta", "1.0", "epsilon; extra == 'fast'"))
    check_complete(target(CP311, *plain), ["app"])
    with pytest.raises(Incomplete, match=r"epsilon.*needed by delta 1.0\[fast\]"):
        check_complete(target(CP311, *plain), ["delta[fast]"])


def test_version_outside_the_specifier_is_named() -> None:
    with pytest.raises(Incomplete, match=r"alpha 1.0 needs beta>=2, but the bundle has beta 1.5 for cp311"):
        check_complete(target(CP311, *(pkg("beta", "1.5", "gamma") if p.name == "beta" else p for p in CLOSURE)), ["alpha"])


def test_wheel_for_another_platform_or_python_is_named() -> None:
    native = pkg("native", "1.0", wheel="native-1.0-cp312-cp312-manylinux_2_17_x86_64.whl")
    check_complete(target(CP312, native), ["native"])
    with pytest.raises(Incomplete, match="native-1.0-cp312-cp312-manylinux_2_17_x86_64.whl does not install on cp311"):
        check_complete(target(CP311, native), ["native"])
    with pytest.raises(Incomplete, match=r"gamma 0.3 requires Python >=3.13; cp312 runs 3.12"):
        check_complete(target(CP312, pkg("gamma", "0.3", requires_python=">=3.13")), ["gamma"])


def test_bootstrap_pip_must_run_on_the_target() -> None:
    with pytest.raises(Incomplete, match="the bootstrap wheels/pip-24.0-cp39-cp39-win_amd64.whl does not run on cp311"):
        check_complete(target(CP311, pkg("gamma", "0.3"), pip="wheels/pip-24.0-cp39-cp39-win_amd64.whl"), ["gamma"])
    check_complete(target(CP311, pkg("gamma", "0.3"), pip=None), ["gamma"])


def test_unreadable_requirement_is_incomplete_not_a_traceback() -> None:
    with pytest.raises(Incomplete, match=r"beta 2.1: unreadable requirement 'gamma >>> 1'"):
        check_complete(target(CP311, pkg("beta", "2.1", "gamma >>> 1"), pkg("gamma", "0.3")), ["beta"])


def test_every_problem_is_listed_and_long_lists_are_cut() -> None:
    roots = [f"missing{i}" for i in range(25)]
    with pytest.raises(Incomplete) as info:
        check_complete(target(CP311), roots)
    assert info.value.message.count("is not in the bundle") == 20
    assert "... and 5 more" in info.value.message


# ---------------------------------------------------------------------------------------------
# hostile bundle.json: the project's own error or a valid manifest, never another exception


def _from_json_or_bad_input(data: bytes) -> None:
    try:
        Manifest.from_json(data)
    except BadInput as e:
        assert "\x1b" not in str(e)


@pytest.mark.parametrize("data", [b"[" * 100_000 + b"]" * 100_000, b'{"a": ' + b"9" * 100_000 + b"}",
                                  b'{"a": Infinity}', b" " * (8 << 20) + b"{}", b"\xff"],
                         ids=["deep", "huge-number", "infinity", "too-big", "not-utf8"])
def test_from_json_bounds_hostile_documents(data: bytes) -> None:
    with pytest.raises(BadInput, match="bundle.json"):
        Manifest.from_json(data)


_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
_json = st.recursive(_scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                     max_leaves=30)


def _replace_somewhere(doc: Any, path: list[int], value: object) -> Any:
    """``doc`` with the node at ``path`` (indices taken modulo each container's size) replaced."""
    if not path or not isinstance(doc, (dict, list)) or not doc:
        return value
    keys = list(doc) if isinstance(doc, dict) else list(range(len(doc)))
    key = keys[path[0] % len(keys)]
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[key] = _replace_somewhere(doc[key], path[1:], value)
    return copy


@settings(max_examples=200, deadline=None)
@given(_json)
def test_from_json_fuzz_arbitrary_documents(doc: object) -> None:
    _from_json_or_bad_input(json.dumps(doc).encode())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=7), _json)
def test_from_json_fuzz_one_field_of_a_valid_manifest(path: list[int], value: object) -> None:
    doc = json.loads(manifest().to_json())
    _from_json_or_bad_input(json.dumps(_replace_somewhere(doc, path, value)).encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_from_json_fuzz_bytes(data: bytes) -> None:
    _from_json_or_bad_input(data)


def test_printable_escapes_what_a_terminal_would_obey() -> None:
    assert printable("kit\x1b]0;title\x07\nfake line\u202e") == "kit\\x1b]0;title\\x07\\nfake line\\u202e"
    assert printable("torch 2.3.0+cu121 ≥ ü") == "torch 2.3.0+cu121 ≥ ü"


def test_incomplete_messages_escape_names_from_the_manifest() -> None:
    with pytest.raises(Incomplete) as e:
        check_complete(target(CP311, pkg("alpha", "1.0")), ["alpha>2; extra != '\x1b[2K'"])
    assert "\x1b" not in e.value.message and "\\x1b[2k" in e.value.message  # packaging lowers extras


# ---------------------------------------------------------------------------------------------
# sdists a target builds itself


SETUPTOOLS = pkg("setuptools", "80.0")
CEXT = BundledSdist(name="cext", version="1.0", sdist="wheels/cext-1.0.tar.gz", requires_dist=("gamma",), requires_python=">=3.8",
                    build_requires=("setuptools>=61",), build_packages=(SETUPTOOLS,), reason="the builder could not build it")


def with_sdist(*sdists: BundledSdist, packages: tuple[BundledPackage, ...] = (pkg("app", "1.0", "cext"), pkg("gamma", "0.3"))
               ) -> Manifest:
    from dataclasses import replace

    t = replace(target(CP312, *packages), sdists=sdists)
    files = {p.wheel: (10, "cd" * 32) for p in (*packages, SETUPTOOLS)}
    files.update({PIP: (20, "cd" * 32), "requirements.txt": (5, "ef" * 32), "wheels/cext-1.0.tar.gz": (30, "ab" * 32)})
    return Manifest(name="kit", tool="wheelhouse 0.1.0", lock_sha256="ab" * 32, created="2024-06-01T00:00:00Z", smoke=(),
                    requirements=("app",), targets=(t,), files=files)


def test_a_target_that_builds_a_sdist_round_trips_and_is_complete() -> None:
    m = with_sdist(CEXT)
    assert Manifest.from_json(m.to_json()) == m
    doc = json.loads(m.to_json())
    assert doc["targets"][0]["sdists"][0]["build-packages"][0]["wheel"] == SETUPTOOLS.wheel
    assert "sdists" not in json.loads(manifest().to_json())["targets"][0]  # a target that builds nothing is as before
    check_complete(m.targets[0], m.requirements)


@pytest.mark.parametrize("change,needle", [
    ({"sdist": "wheels/other-1.0.tar.gz"}, "not a source distribution of 'cext'"),
    ({"sdist": "cext-1.0.tar.gz"}, "not a source distribution of 'cext'"),
    ({"sdist": "wheels/../cext-1.0.tar.gz"}, "not a source distribution"),
    ({"sdist": "wheels/cext-1.0-py3-none-any.whl"}, "not a source distribution"),
    ({"name": "cext; rm -rf /"}, "not a project name"),
    ({"name": "gamma", "sdist": "wheels/cext-1.0.tar.gz"}, "appears twice"),
    ({"version": "1.0 --no-deps"}, "not a PEP 440 version"),
    ({"build-requires": "setuptools"}, "'build-requires' must be a list of strings"),
    ({"build-packages": [{"name": "setuptools", "version": "80.0", "wheel": "wheels/missing-1.0-py3-none-any.whl"}]},
     "build-packages\\[0\\].wheel refers to"),
    ({"build-packages": [{"name": "x", "version": "1", "wheel": "wheels/cext-1.0.tar.gz"}]}, "is not a wheel"),
    ({"build-packages": "setuptools"}, "build-packages must be a list"),
])
def test_a_sdist_entry_the_installer_would_refuse_is_refused(change: dict[str, Any], needle: str) -> None:
    doc = json.loads(with_sdist(CEXT).to_json())
    doc["targets"][0]["sdists"][0].update(change)
    with pytest.raises(BadInput, match=needle):
        Manifest.from_json(json.dumps(doc).encode())


def test_the_proof_covers_what_a_sdist_needs_and_its_build_requirements() -> None:
    from dataclasses import replace

    def problems(m: Manifest) -> str:
        with pytest.raises(Incomplete) as info:
            check_complete(m.targets[0], m.requirements)
        return info.value.message

    # the sdist's own dependency is missing
    assert "gamma (needed by cext 1.0) is not in the bundle for cp312" in problems(with_sdist(CEXT, packages=(pkg("app", "1.0", "cext"),)))
    # nothing builds it: no build package meets setuptools>=61
    text = problems(with_sdist(replace(CEXT, build_packages=(pkg("setuptools", "40.0"),))))
    assert "the build requirements of cext-1.0.tar.gz needs setuptools>=61, but the bundle has setuptools 40.0 for cp312" in text
    text = problems(with_sdist(replace(CEXT, build_packages=())))
    assert "setuptools>=61 (needed by the build requirements of cext-1.0.tar.gz) is not in the bundle for cp312" in text
    # a build requirement's wheel that does not install on the target, and its own dependencies
    text = problems(with_sdist(replace(CEXT, build_packages=(pkg("setuptools", "80.0", "helper", wheel="setuptools-80.0-cp311-cp311-win_amd64.whl"),))))
    assert "setuptools-80.0-cp311-cp311-win_amd64.whl does not install on cp312" in text
    assert "helper (needed by setuptools 80.0) is not in the bundle for cp312" in text
    # the sdist's Requires-Python
    assert "cext 1.0 requires Python <3.12" in problems(with_sdist(replace(CEXT, requires_python="<3.12")))
