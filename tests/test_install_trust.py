"""The target side as an attacker sees it (issue 10, classes 3, 4 and 11).

Nothing bundle.json does not list may run: a venv planted inside the bundle directory fails
verification, and a venv found at the default place (next to the bundle) is never reused unless
named with ``--venv``. A bundle unpacked under a path with ``;``, ``#``, ``%``, spaces or
non-ASCII installs. Everything printed from bundle.json is escaped. ``load_manifest`` and
``check_manifest`` answer any document with a valid result or an ``InstallError``.
"""

from __future__ import annotations

import json
import shlex
import string
from pathlib import Path

import pytest
from support.bundlefixture import rewrite_manifest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_install import (  # noqa: F401 - pip_wheel is a fixture
    OFFLINE,
    default_venv,
    make_bundle,
    needs_offline,
    pip_wheel,
    run_install,
    tree,
    venv_run,
)

from bundler._target import install as inst

ESC = "\x1b[2K\x1b[1A"  # erase the line, move up: hides what was printed before


def _trojan_venv(venv: Path, marker: Path) -> None:
    """A venv whose python, if anything ran it, would leave ``marker``."""
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.7\n")
    python = venv / "bin" / "python"
    python.write_text(f"#!/bin/sh\necho pwned > '{marker}'\n")
    python.chmod(0o755)


# ---------------------------------------------------------------------------------------
# class 11: planted venvs


@pytest.mark.parametrize("mode", [(), ("--check-only",), ("--dry-run",)], ids=["install", "check-only", "dry-run"])
def test_a_venv_planted_inside_the_bundle_fails_verification_and_never_runs(tmp_path, pip_wheel, mode):
    bundle = make_bundle(tmp_path, pip_wheel)
    marker = tmp_path / "PWNED"
    _trojan_venv(bundle / "venv", marker)
    before = tree(bundle)
    result = run_install(bundle, *mode)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "bundle verification failed: venv/: a virtual environment inside the bundle directory (2 files" in result.stderr
    assert not marker.exists() and tree(bundle) == before
    assert not default_venv(bundle).exists()


def test_a_venv_at_the_default_place_is_not_reused_unless_named(tmp_path, pip_wheel):
    bundle = make_bundle(tmp_path, pip_wheel)
    marker = tmp_path / "PWNED"
    venv = default_venv(bundle)
    _trojan_venv(venv, marker)  # as a hostile archive with a second top directory would leave it
    for mode in [(), ("--dry-run",)]:
        result = run_install(bundle, *mode)
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"install.sh: error: {venv} already exists" in result.stderr
        assert "does not reuse one it did not make in this run" in result.stderr
        assert f"hint: to install afresh, remove it (rm -rf {venv})" in result.stderr
        assert result.stdout == "" and not marker.exists()
    # --check-only does not use a venv, so it does not care.
    assert run_install(bundle, "--check-only").returncode == 0
    # Named explicitly, it is the user's choice (as a --venv inside the bundle directory would be).
    dry = run_install(bundle, "--dry-run", "--venv", str(venv))
    assert dry.returncode == 0, dry.stderr
    assert f"# reuse the existing venv {venv}" in dry.stdout and not marker.exists()


def test_a_venv_named_inside_the_bundle_is_the_only_one_skipped(tmp_path, pip_wheel):
    bundle = make_bundle(tmp_path, pip_wheel)
    _trojan_venv(bundle / "mine", tmp_path / "unused")
    dry = run_install(bundle, "--dry-run", "--venv", str(bundle / "mine"))
    assert dry.returncode == 0, dry.stderr
    (bundle / "other").mkdir()
    (bundle / "other" / "x.py").write_text("")
    refused = run_install(bundle, "--dry-run", "--venv", str(bundle / "mine"))
    assert refused.returncode == 1
    assert "bundle verification failed: other/x.py: unexpected file" in refused.stderr
    assert "mine" not in refused.stderr


# ---------------------------------------------------------------------------------------
# class 11: awkward paths


AWKWARD = ["semi;colon/b", "hash#and%41pct/b", "spa ce/nön-ascii ü/b", "all; #%ü $x/b"]


@needs_offline
@pytest.mark.parametrize("where", AWKWARD)
def test_installs_under_an_awkward_path(tmp_path, pip_wheel, where):
    bundle = make_bundle(tmp_path, pip_wheel, where=where)
    result = run_install(bundle, offline=True)
    assert result.returncode == 0, result.stdout + result.stderr
    venv = default_venv(bundle)
    assert venv_run(venv, "import alpha, pip; print(alpha.__version__)") == "1.0\n"


def test_dry_run_pins_the_bootstrap_pip_by_version_from_the_quoted_bundle_folder(tmp_path, pip_wheel):
    # pip by name and version from the folder of its verified wheel (no direct_url.json), each path
    # one shell-quoted argument, never a requirements-file line where ';' or ' #' would cut it
    bundle = make_bundle(tmp_path, pip_wheel, where="a;b#c%d/b")
    dry = run_install(bundle, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "--find-links %s pip==" % shlex.quote(str(bundle / "wheels")) in dry.stdout


# ---------------------------------------------------------------------------------------
# class 11: what is printed


def test_names_and_smoke_commands_are_printed_escaped(tmp_path, pip_wheel):
    bundle = make_bundle(tmp_path, pip_wheel)
    rewrite_manifest(bundle, name=f"evil{ESC}\nfake: all good", smoke=[f"import alpha  # {ESC}\nprint('two lines')"])
    result = run_install(bundle, "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "\x1b" not in out and "fake: all good" not in out.splitlines()
    assert "evil\\x1b[2K\\x1b[1A\\nfake: all good" in out
    assert "import alpha  # \\x1b[2K\\x1b[1A\\nprint(" in out


def test_profile_facts_are_printed_escaped(tmp_path, pip_wheel):
    bundle = make_bundle(tmp_path, pip_wheel)
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["targets"][0]["profile"]["facts"]["arch"] = f"vax{ESC}\nok"
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    result = run_install(bundle, "--check-only")
    assert result.returncode == 1
    assert "\x1b" not in result.stderr and "vax\\x1b[2K\\x1b[1A\\nok" in result.stderr


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        (("targets", 0, "name"), f"t{ESC}", "is not a target name"),
        (("targets", 0, "packages", 0, "name"), "alpha\nbeta", "is not a project name"),
        (("targets", 0, "packages", 0, "version"), "1.0\x1b", "is not a PEP 440 version"),
        (("format-version",), True, "has format-version True"),
        (("targets", 0, "profile", "facts"), ["x"], "profile.facts must be an object"),
        (("targets", 0, "profile", "markers", "python_version"), {"a": 1}, "must be a string"),
    ],
)
def test_bad_values_in_bundle_json_are_refused_escaped(tmp_path, pip_wheel, where, value, message):
    bundle = make_bundle(tmp_path, pip_wheel)
    manifest = json.loads((bundle / "bundle.json").read_text())
    node = manifest
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    result = run_install(bundle, "--check-only")
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert "\x1b" not in result.stderr and "Traceback" not in result.stderr


def test_printable():
    assert inst.printable("plain ü ≥ text") == "plain ü ≥ text"
    assert inst.printable("a\x1b[31mb\nc\td\re\x00\x7f\x9b") == "a\\x1b[31mb\\nc\\td\\re\\x00\\x7f\\x9b"
    assert inst.printable("bidi\u202eevil\u2028line\ufeff") == "bidi\\u202eevil\\u2028line\\ufeff"


# ---------------------------------------------------------------------------------------
# classes 3 and 4: bounded, shape-checked reading of bundle.json


def _load(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "bundle.json").write_bytes(data)
    inst.load_manifest(str(tmp_path))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"format": "wheelhouse-bundle", "format-version": 1' + b"0" * 5000 + b"}", "a number with 5001 digits"),
        (b'{"format": NaN}', "NaN is not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"format": "wheelhouse-bundle", "format-version": 1, "files": []}', "'files' must be a non-empty object"),
        (b" " * (inst.MAX_MANIFEST + 1), "larger than 8 MiB"),
    ],
    ids=["deep", "long-number", "nan", "not-utf8", "wrong-type", "too-big"],
)
def test_hostile_manifests_are_install_errors(tmp_path, data, message):
    with pytest.raises(inst.InstallError, match=message):
        _load(tmp_path, data)


_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
_json = st.recursive(_scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                     max_leaves=30)
_KEYS = ["format", "format-version", "files", "targets", "name", "tool", "lock-sha256", "created", "smoke",
         "requirements", "profile", "packages", "pip", "wheel", "version", "requires-dist", "requires-python", "size",
         "sha256", "facts", "markers"]
_keyed = st.recursive(_scalars | st.sampled_from(["wheelhouse-bundle", "wheels/a-1-py3-none-any.whl", "0" * 64, 1]),
                      lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), kids, max_size=6),
                      max_leaves=40)


def _valid_manifest() -> dict:
    sha = "a" * 64
    return {"format": "wheelhouse-bundle", "format-version": 1, "name": "n", "tool": "t", "lock-sha256": sha,
            "created": "c", "smoke": [], "requirements": ["a"],
            "files": {"requirements.txt": {"size": 1, "sha256": sha}, "wheels/a-1-py3-none-any.whl": {"size": 1, "sha256": sha}},
            "targets": [{"name": "t", "profile": {"facts": {}, "markers": {}}, "requirements": "requirements.txt",
                         "pip": "wheels/a-1-py3-none-any.whl",
                         "packages": [{"name": "a", "version": "1", "wheel": "wheels/a-1-py3-none-any.whl"}]}]}


def _replace_somewhere(doc, path, value):
    """``doc`` with the node at ``path`` (indices taken modulo each container's size) replaced."""
    if not path or not isinstance(doc, (dict, list)) or not doc:
        return value
    keys = list(doc) if isinstance(doc, dict) else list(range(len(doc)))
    key = keys[path[0] % len(keys)]
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[key] = _replace_somewhere(doc[key], path[1:], value)
    return copy


def _accepts_or_install_error(doc) -> None:
    try:
        inst.check_manifest(doc)
    except inst.InstallError as e:
        assert e.report() and "\x1b" not in inst.printable(e.report())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json | _keyed)
def test_check_manifest_fuzz_arbitrary_documents(doc):
    _accepts_or_install_error(doc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=6), _json | _keyed)
def test_check_manifest_fuzz_one_field_of_a_valid_manifest(path, value):
    inst.check_manifest(_valid_manifest())
    _accepts_or_install_error(_replace_somewhere(_valid_manifest(), path, value))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200) | st.text(alphabet=string.printable + "[]{}\":,0123456789eE.-", max_size=200).map(str.encode))
def test_load_manifest_fuzz_bytes(tmp_path, data):
    try:
        _load(tmp_path, data)
    except inst.InstallError:
        pass


def test_offline_prefix_known():
    # The awkward-path installs need a network namespace; say so when they are skipped.
    assert OFFLINE is None or OFFLINE[0] == "unshare"
