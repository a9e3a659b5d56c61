"""capture-profile.py, run with real interpreters, must record exactly what a current pip accepts.

The recorded list is the built-in one (what the bundled pip installs with); on 3.8-3.13 it must equal
each interpreter's own pip's list, and on 3.6 (pip 18.1) it must still hold the modern tags that old
pip lacks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bundler._target import capture_profile as cap
from bundler.errors import BadInput
from support.pythons import pyenv_python, pyenv_root

from bundler.profile import MARKER_KEYS, Profile, cpython_tag_list, load_profile, parse_platform, platform_tags

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "capture-profile.py"
TARGET_SCRIPT = ROOT / "bundler" / "_target" / "capture_profile.py"

MINORS = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]
OLD_MINORS = ["3.6", "3.7"]

# Printed by the interpreter under test: its pip's own tag list and packaging's marker environment.
REFERENCE = r"""
import json
from pip._internal.utils.compatibility_tags import get_supported
from pip._vendor.packaging.markers import default_environment
print(json.dumps({"tags": [str(t) for t in get_supported()], "markers": default_environment()}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PIP_CONFIG_FILE"] = os.devnull
    for var in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONWARNINGS"):
        env.pop(var, None)
    return env


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=60, **kw)


def _python_or_skip(minor: str) -> Path:
    exe = pyenv_python(minor)
    if exe is None:
        pytest.skip(f"no pyenv CPython {minor} under {pyenv_root() / 'versions'}")
    return exe


_cache: dict[str, dict] = {}


@pytest.fixture
def captured(request, tmp_path_factory):
    """Run the script once per interpreter; return the interpreter, profile path and pip's reference."""
    minor = request.param
    if minor not in _cache:
        exe = _python_or_skip(minor)
        out = tmp_path_factory.mktemp("capture-" + minor) / "target.json"
        proc = _run([str(exe), str(SCRIPT), "-o", str(out)])
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "", "with -o nothing goes to stdout"
        ref = _run([str(exe), "-c", REFERENCE])
        assert ref.returncode == 0, ref.stderr
        _cache[minor] = {"python": exe, "path": out, "reference": json.loads(ref.stdout)}
    return _cache[minor]


def linux_last(tags):
    """``tags`` with, inside each interpreter-abi run, the ``linux_<arch>`` tags moved to the end.

    pip 26 (packaging 26) ranks a wheel built on the very machine (linux_x86_64) first; wheelhouse
    ranks it after the manylinux tags, as uv does and as older pips did. Same set, same order
    otherwise, so the comparison with each interpreter's pip is made in one ordering."""
    out, run = [], []
    for tag in list(tags) + [None]:
        if run and (tag is None or tag.rsplit("-", 1)[0] != run[0].rsplit("-", 1)[0]):
            out += [t for t in run if not t.rsplit("-", 1)[1].startswith("linux_")]
            out += [t for t in run if t.rsplit("-", 1)[1].startswith("linux_")]
            run = []
        if tag is not None:
            run.append(tag)
    return out


@pytest.mark.parametrize("captured", MINORS, indirect=True)
def test_tags_equal_pips_get_supported(captured):
    profile = load_profile(captured["path"])
    assert list(profile.tags) == linux_last(captured["reference"]["tags"])
    facts = json.loads(captured["path"].read_text())["facts"]
    # The built-in list is recorded; the interpreter's own pip is only counted.
    assert facts["tags-source"] == "builtin"
    assert facts["system-pip-tags-count"] == len(captured["reference"]["tags"])
    assert profile.facts.system_pip_tags_count == str(len(captured["reference"]["tags"]))


@pytest.mark.parametrize("captured", MINORS, indirect=True)
def test_markers_equal_packagings_default_environment(captured):
    profile = load_profile(captured["path"])
    assert dict(profile.markers) == captured["reference"]["markers"]
    assert set(profile.markers) == set(MARKER_KEYS)


@pytest.mark.parametrize("captured", MINORS, indirect=True)
def test_facts(captured):
    data = json.loads(captured["path"].read_text())
    facts, markers = data["facts"], data["markers"]
    profile = load_profile(captured["path"])
    assert profile.facts.source == "capture"
    assert profile.facts.implementation == "cpython"
    assert profile.facts.python_version == markers["python_full_version"]
    assert profile.facts.os == {"linux": "linux", "win32": "windows", "darwin": "macos"}[markers["sys_platform"]]
    assert profile.facts.arch == cap.normalize_arch(markers["platform_machine"])
    if profile.facts.os == "linux":
        assert profile.facts.libc in ("glibc", "musl")
        assert re.fullmatch(r"\d+\.\d+", profile.facts.libc_version)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", facts["captured-at"])
    py = "cp" + markers["python_version"].replace(".", "")
    assert data["name"] == f"{profile.facts.os}-{profile.facts.arch}-{py}"
    assert "hostname" not in facts and os.uname().nodename not in captured["path"].read_text()


@pytest.mark.parametrize("method", ["builtin", "pip-vendored", "auto", "pip"])
@pytest.mark.parametrize("captured", MINORS, indirect=True)
def test_every_tag_source_equals_pip(captured, method):
    """Every source --tags-from offers gives pip's list on these interpreters (whose pips are current)."""
    proc = _run([str(captured["python"]), str(SCRIPT), "--tags-from", method])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["tags"] == captured["reference"]["tags"]
    pip = data["facts"]["pip-version"]
    expected_source = {"builtin": "builtin", "pip-vendored": f"pip {pip} vendored packaging"}.get(method, f"pip {pip}")
    assert data["facts"]["tags-source"] == expected_source


@pytest.mark.parametrize("captured", MINORS, indirect=True)
def test_without_pip_falls_back_to_builtin(captured):
    """``python -S`` hides site-packages (pip, packaging): the auto chain ends at the built-in logic."""
    proc = _run([str(captured["python"]), "-S", str(SCRIPT)])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["facts"]["tags-source"] == "builtin"
    assert "pip-version" not in data["facts"]
    assert data["tags"] == captured["reference"]["tags"]
    assert data["markers"] == captured["reference"]["markers"]


@pytest.mark.parametrize("captured", MINORS, indirect=True)
def test_cli_profile_show_prints_the_tags(captured):
    proc = subprocess.run(
        [sys.executable, "-m", "bundler", "profile", "show", str(captured["path"]), "--tags"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == captured["reference"]["tags"]


def test_running_interpreter_stdout(tmp_path):
    """Always runs: capture with the test interpreter itself, printing to stdout."""
    proc = _run([sys.executable, str(SCRIPT), "--name", "here"])
    assert proc.returncode == 0, proc.stderr
    profile = Profile.from_dict(json.loads(proc.stdout))
    assert profile.name == "here"
    try:
        from pip._internal.utils.compatibility_tags import get_supported
    except ImportError:
        pytest.skip("no pip in the test interpreter")
    assert list(profile.tags) == linux_last(str(t) for t in get_supported())


def test_output_file_written_atomically(tmp_path):
    out = tmp_path / "p.json"
    out.write_text("old")
    proc = _run([sys.executable, str(SCRIPT), "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert load_profile(out).facts.source == "capture"
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]
    bad = _run([sys.executable, str(SCRIPT), "-o", str(tmp_path / "missing-dir" / "p.json")])
    assert bad.returncode == 1 and "cannot write" in bad.stderr


@pytest.mark.parametrize("minor", OLD_MINORS)
def test_old_interpreters_run(minor, tmp_path):
    """3.6 and 3.7 still capture, with a current pip's tags, and are told they are below the floor."""
    exe = _python_or_skip(minor)
    out = tmp_path / "p.json"
    proc = _run([str(exe), str(SCRIPT), "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert "below the Python versions wheelhouse supports on a target (3.8 and newer)" in proc.stderr
    assert "the bundle's installer needs Python 3.8 or newer on the target" in proc.stderr
    data = json.loads(out.read_text())
    assert data["markers"]["python_version"] == minor
    facts, tags = data["facts"], data["tags"]
    assert facts["tags-source"] == "builtin"
    if facts["libc"] == "glibc":
        # The same list packaging.tags gives for this glibc (an implementation independent of capture's).
        version = tuple(int(p) for p in facts["python-version"].split("."))
        plats = platform_tags(parse_platform(f"{facts['arch']}-manylinux_{facts['libc-version'].replace('.', '_')}"))
        assert tags == cpython_tag_list(version, plats)
        assert f"cp3{minor[2:]}-cp3{minor[2:]}m-manylinux_2_17_{facts['arch']}" in tags  # PEP 600, unknown to pip 18.1
        assert f"cp3{minor[2:]}-cp3{minor[2:]}m-manylinux2014_{facts['arch']}" in tags
    if "system-pip-tags-count" in facts:
        assert facts["system-pip-tags-count"] <= len(tags)
        if facts["pip-version"] == "18.1":  # manylinux1 only: far fewer tags than a current pip accepts
            assert facts["system-pip-tags-count"] < len(tags) // 4
            assert f"pip {facts['pip-version']} accepts {facts['system-pip-tags-count']} tags" in proc.stderr
    with pytest.raises(BadInput, match="the bundle's installer needs Python 3.8 or newer on the target"):
        load_profile(out)


def test_python2_gets_a_clear_message():
    exe = pyenv_python("2.7")
    if exe is None:
        pytest.skip("no pyenv Python 2.7")
    proc = _run([str(exe), str(SCRIPT)])
    assert proc.returncode == 2
    assert "needs Python 3.6 or newer" in proc.stderr


def test_script_is_a_relative_symlink():
    assert SCRIPT.is_symlink()
    assert os.readlink(SCRIPT) == "../bundler/_target/capture_profile.py"
    assert SCRIPT.resolve() == TARGET_SCRIPT.resolve()


NVIDIA_PROPRIETARY = """\
NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023
GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)
"""
NVIDIA_OPEN = """\
NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  (dvs-builder@U16-I3-B03-4-3)  Thu Feb 22 01:25:25 UTC 2024
GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)
"""
NVIDIA_AARCH64 = "NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  570.86.15  Release Build  (dvs-builder@x)  Thu Jan 23 2025\n"


@pytest.mark.parametrize(
    ("text", "version"),
    [
        (NVIDIA_PROPRIETARY, "535.104.05"),
        (NVIDIA_OPEN, "550.54.14"),
        (NVIDIA_AARCH64, "570.86.15"),
        ("", None),
        ("GCC version:  gcc version 12.2.0\n", None),
        ("something else entirely\n", None),
    ],
)
def test_parse_nvidia_proc_version(text, version):
    assert cap.parse_nvidia_proc_version(text) == version


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("musl libc (x86_64)\nVersion 1.2.4\nDynamic Program Loader\nUsage: ...\n", (1, 2, "1.2.4")),
        ("musl libc (aarch64)\nVersion 1.1.24\n", (1, 1, "1.1.24")),
        ("ld.so: missing program name\n", None),
        ("", None),
    ],
)
def test_parse_musl_loader_output(text, version):
    assert cap.parse_musl_loader_output(text) == version


def test_mac_platforms_match_pips_vendored_packaging():
    ptags = pytest.importorskip("pip._vendor.packaging.tags")
    for version, arch in [((14, 2), "arm64"), ((13, 0), "x86_64"), ((10, 15), "x86_64"), ((11, 0), "arm64")]:
        # packaging 26.3 (vendored by pip 26.3) spells the 32-bit fat binary format "fat3", a typo
        # for the "fat32" that every earlier release and real wheels use.
        reference = [p[:-len("fat3")] + "fat32" if p.endswith("_fat3") else p for p in ptags.mac_platforms(version, arch)]
        assert cap.mac_platforms(version, arch) == reference


def test_format_full_version():
    class V:
        major, minor, micro, releaselevel, serial = 3, 13, 0, "candidate", 2

    assert cap.format_full_version(V) == "3.13.0c2"
    V.releaselevel, V.serial = "final", 0
    assert cap.format_full_version(V) == "3.13.0"
