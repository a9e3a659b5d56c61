"""The builder (bundler/) and the target side (bundler/_target/) agree where they cannot share code.

The target files are stdlib only and run on the air-gapped machine, so some facts exist twice: the
tag list (packaging.tags on the builder, a stdlib port in capture_profile.py), the bundle.json
reader (``Manifest.from_json`` and ``install.load_manifest``), the Python floor (install.py checks
it before it may load anything). Where the builder imports the target's definitions, these tests
check that the imports are really used; where it cannot, that both sides give the same answers.
"""

from __future__ import annotations

import copy
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from support.bundlefixture import TARGET_DIR
from support.pythons import pyenv_python

from bundler import platforms, profile
from bundler._target import capture_profile as cap
from bundler._target import install as inst
from bundler.bundle import read_bundle
from bundler.errors import BadInput
from bundler.manifest import BundledPackage, BundledTarget, Manifest
from bundler.profile import profile_for_platform

GLIBC_LINUX = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC_LINUX, reason="the host tag list is compared on glibc Linux only")


def _host_platform() -> str:
    libc, version = cap.libc_facts()
    assert libc == "glibc" and version
    return f"{cap.target_arch('linux')}-manylinux_{version.replace('.', '_')}"


# ---------------------------------------------------------------------------------------------
# (a) the tag list: packaging.tags on the builder == the stdlib port on the target


@needs_glibc
def test_builder_tags_equal_capture_builtin_tags_on_this_host() -> None:
    here = "%d.%d.%d" % sys.version_info[:3]
    built = profile_for_platform(_host_platform(), here)
    assert list(built.tags) == cap.builtin_supported_tags()


@needs_glibc
@pytest.mark.parametrize("minor", ["3.8", "3.9", "3.10", "3.12", "3.13"])
def test_builder_tags_equal_capture_builtin_tags_on_other_pythons(minor: str) -> None:
    exe = pyenv_python(minor)
    if exe is None:
        pytest.skip(f"no pyenv CPython {minor}")
    script = str(TARGET_DIR / "capture_profile.py")
    proc = subprocess.run([str(exe), "-I", script, "--tags-from", "builtin"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    captured = json.loads(proc.stdout)
    built = profile_for_platform(_host_platform(), captured["facts"]["python-version"])
    assert list(built.tags) == captured["tags"]


def test_installer_matches_with_the_tags_capture_records() -> None:
    """install.py judges this machine by the same tag source capture_profile.py records by default."""
    machine = inst.this_machine(cap)
    assert machine.tags == cap.capture(name="here")["tags"]
    assert cap.capture()["facts"]["tags-source"] == cap.supported_tags()[1] == "builtin"


# ---------------------------------------------------------------------------------------------
# (b) one table of manifests through both readers


def _good() -> dict[str, Any]:
    wheel = "wheels/alpha-1.0-py3-none-any.whl"
    pip = "wheels/pip-24.0-py3-none-any.whl"
    target = BundledTarget(
        name="cp311-linux",
        profile=profile_for_platform("x86_64-manylinux_2_28", "3.11"),
        pip=pip,
        packages=(BundledPackage(name="alpha", version="1.0", wheel=wheel, requires_dist=("beta>=2",), requires_python=">=3.8"),),
    )
    files = {p: (10, "a" * 64) for p in (wheel, pip, "requirements.txt", "install.py", "capture_profile.py")}
    m = Manifest(name="b", tool="wheelhouse 0.1.0", lock_sha256="0" * 64, created="2025-06-01T00:00:00Z",
                 smoke=("import alpha",), requirements=("alpha",), targets=(target,), files=files)
    return json.loads(m.to_json())


def _change(fn: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    d = _good()
    fn(d)
    return d


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = d
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is _DELETE:
            del node[int(last) if isinstance(node, list) else last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return apply


_DELETE = object()
WHEEL = "wheels/alpha-1.0-py3-none-any.whl"


def _file(path: str, entry: Any) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        d["files"][path] = entry
    return apply


MANIFESTS: list[tuple[str, Any, bool]] = [
    ("good", _good(), True),
    ("good without smoke or requirements", _change(lambda d: (d.pop("smoke"), d.pop("requirements"))), True),
    ("good, package without requires-python", _change(_set("targets.0.packages.0.requires-python", None)), True),
    ("not an object", [], False),
    ("no format", _change(_set("format", _DELETE)), False),
    ("other format", _change(_set("format", "wheelhouse-profile")), False),
    ("format-version 2", _change(_set("format-version", 2)), False),
    ("no name", _change(_set("name", _DELETE)), False),
    ("tool not a string", _change(_set("tool", 1)), False),
    ("no lock-sha256", _change(_set("lock-sha256", _DELETE)), False),
    ("no created", _change(_set("created", _DELETE)), False),
    ("no files", _change(_set("files", _DELETE)), False),
    ("empty files", _change(_set("files", {})), False),
    ("files a list", _change(_set("files", [])), False),
    ("file path with ..", _change(_file("../evil", {"size": 1, "sha256": "0" * 64})), False),
    ("absolute file path", _change(_file("/etc/passwd", {"size": 1, "sha256": "0" * 64})), False),
    ("backslash in a path", _change(_file("a\\b", {"size": 1, "sha256": "0" * 64})), False),
    ("bundle.json listed", _change(_file("bundle.json", {"size": 1, "sha256": "0" * 64})), False),
    ("negative size", _change(_file("install.py", {"size": -1, "sha256": "0" * 64})), False),
    ("boolean size", _change(_file("install.py", {"size": True, "sha256": "0" * 64})), False),
    ("size a string", _change(_file("install.py", {"size": "10", "sha256": "0" * 64})), False),
    ("uppercase sha256", _change(_file("install.py", {"size": 1, "sha256": "A" * 64})), False),
    ("short sha256", _change(_file("install.py", {"size": 1, "sha256": "0" * 63})), False),
    ("no targets", _change(_set("targets", [])), False),
    ("targets an object", _change(_set("targets", {})), False),
    ("target without a name", _change(_set("targets.0.name", _DELETE)), False),
    ("profile not an object", _change(_set("targets.0.profile", "x86_64-manylinux_2_28")), False),
    ("packages not a list", _change(_set("targets.0.packages", {})), False),
    ("package without a name", _change(_set("targets.0.packages.0.name", _DELETE)), False),
    ("package without a version", _change(_set("targets.0.packages.0.version", _DELETE)), False),
    ("requires-dist a string", _change(_set("targets.0.packages.0.requires-dist", "beta>=2")), False),
    ("requires-python a number", _change(_set("targets.0.packages.0.requires-python", 3.8)), False),
    ("wheel not among the files", _change(_set("targets.0.packages.0.wheel", "wheels/beta-2.1-py3-none-any.whl")), False),
    ("wheel not a wheel", _change(_set("targets.0.packages.0.wheel", "install.py")), False),
    ("pip missing", _change(_set("targets.0.pip", None)), False),
    ("pip not a wheel", _change(_set("targets.0.pip", "requirements.txt")), False),
    ("requirements not among the files", _change(_set("targets.0.requirements", "reqs.txt")), False),
    ("smoke a string", _change(_set("smoke", "import alpha")), False),
    ("smoke with a number", _change(_set("smoke", ["import alpha", 1])), False),
    ("requirements a string", _change(_set("requirements", "alpha")), False),
]


def _builder_accepts(doc: Any) -> bool:
    try:
        Manifest.from_json(json.dumps(doc).encode())
    except BadInput:
        return False
    return True


def _installer_accepts(doc: Any, tmp_path: Path) -> bool:
    (tmp_path / "bundle.json").write_text(json.dumps(doc))
    try:
        inst.load_manifest(str(tmp_path))
    except inst.InstallError:
        return False
    return True


@pytest.mark.parametrize(("case", "doc", "good"), MANIFESTS, ids=[c for c, _, _ in MANIFESTS])
def test_builder_and_installer_agree_on_each_manifest(case: str, doc: Any, good: bool, tmp_path: Path) -> None:
    assert _builder_accepts(copy.deepcopy(doc)) is good
    assert _installer_accepts(copy.deepcopy(doc), tmp_path) is good


def test_the_builders_manifest_reads_back_the_same() -> None:
    doc = _good()
    assert json.loads(Manifest.from_json(json.dumps(doc).encode()).to_json()) == doc


def test_only_the_builder_reads_inside_a_profile(tmp_path: Path) -> None:
    """The one deliberate difference: the profile's tags and markers are the builder's business
    (Profile.from_dict); the installer reads only a profile's facts, leniently, to describe it."""
    doc = _change(_set("targets.0.profile.tags", []))
    assert not _builder_accepts(doc)
    assert _installer_accepts(doc, tmp_path)


# ---------------------------------------------------------------------------------------------
# (c) constants, architecture names, legacy manylinux names, the Python floor, skip rules


def test_constants_are_the_targets() -> None:
    assert profile.PROFILE_FORMAT is cap.PROFILE_FORMAT
    assert profile.PROFILE_FORMAT_VERSION == cap.PROFILE_FORMAT_VERSION
    assert platforms.ARCH_ALIASES is cap.ARCH_ALIASES
    assert platforms.LEGACY_MANYLINUX is cap.LEGACY_MANYLINUX
    doc = _good()
    assert (doc["format"], doc["format-version"]) == (inst.BUNDLE_FORMAT, inst.BUNDLE_FORMAT_VERSION)


def test_one_python_floor() -> None:
    assert inst.MIN_PYTHON == cap.MIN_TARGET_PYTHON == profile.MIN_TARGET_PYTHON == (3, 8)
    sh = (TARGET_DIR / "install.sh").read_text()
    assert "sys.version_info >= (%d, %d)" % cap.MIN_TARGET_PYTHON in sh
    assert "needs Python %d.%d or newer" % cap.MIN_TARGET_PYTHON in sh
    assert cap.below_target_floor((3, 7, 16)) and cap.below_target_floor((3, 8, 0)) is None
    with pytest.raises(BadInput, match=cap.TARGET_PYTHON_REASON):
        profile.parse_python_version("3.7")
    assert profile.parse_python_version("%d.%d" % cap.MIN_TARGET_PYTHON)


@pytest.mark.parametrize("alias", sorted(cap.ARCH_ALIASES))
def test_arch_aliases_agree(alias: str) -> None:
    name = cap.normalize_arch(alias)
    assert platforms.normalize_arch(alias.upper()) == name
    if name in platforms.MANYLINUX_MIN:
        # the builder reads "--python-platform AMD64-manylinux_2_28" as the arch the installer compares
        assert profile.parse_platform(f"{alias}-manylinux_2_{max(28, platforms.MANYLINUX_MIN[name])}").arch == name


@pytest.mark.parametrize(("glibc", "legacy"), sorted(cap.LEGACY_MANYLINUX.items()))
def test_legacy_manylinux_names_agree(glibc: tuple[int, int], legacy: str) -> None:
    tag = f"{legacy}_x86_64"
    assert cap.parse_platform_tag(tag) == ("glibc", glibc, "x86_64")
    parsed = platforms.parse_platform_tag(tag)
    assert parsed is not None and parsed.is_legacy and parsed.version == glibc and parsed.words() == f"{legacy} x86_64"
    assert platforms.libc_requirement(tag) == ("glibc", glibc, "x86_64")
    assert profile.parse_platform(f"x86_64-{legacy}").libc_version == glibc
    tags = profile.platform_tags(profile.parse_platform("x86_64-manylinux_2_28"))
    pep600 = "manylinux_%d_%d_x86_64" % glibc
    assert tags[tags.index(pep600) + 1] == tag  # right after its PEP 600 name, as pip orders them


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("manylinux_2_28_aarch64", ("glibc", (2, 28), "aarch64")),
        ("musllinux_1_2_x86_64", ("musl", (1, 2), "x86_64")),
        ("macosx_11_0_arm64", ("macos", (11, 0), "arm64")),
        ("macosx_10_9_universal2", ("macos", (10, 9), "universal2")),
        ("linux_armv7l", ("linux", None, "armv7l")),
        ("win_amd64", ("windows", None, "amd64")),
        ("win32", ("windows", None, "i686")),
        ("any", None),
        ("ios_13_0_arm64_iphoneos", None),
    ],
)
def test_platform_tags_are_read_one_way(tag: str, expected: tuple | None) -> None:
    assert cap.parse_platform_tag(tag) == expected
    parsed = platforms.parse_platform_tag(tag)
    assert (None if parsed is None else (parsed.kind, parsed.version, parsed.arch)) == expected


def test_builder_and_installer_skip_the_same_directories(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    for rel in ["install.py", "wheels/a.whl", "__pycache__/install.cpython-311.pyc", "wheels/__pycache__/x.pyc",
                "venv/pyvenv.cfg", "venv/bin/python", "sub/venv/pyvenv.cfg", "bundle.json"]:
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        (bundle / rel).write_text("x")
    # Only __pycache__ is skipped: a venv inside the bundle directory is unlisted files to both sides.
    builder = set(read_bundle(bundle, want_metadata=False).files) - {"bundle.json"}
    assert builder == inst.files_on_disk(str(bundle)) == {"install.py", "wheels/a.whl", "venv/pyvenv.cfg",
                                                          "venv/bin/python", "sub/venv/pyvenv.cfg"}
    (bundle / "venv" / "pyvenv.cfg").unlink()
    builder = set(read_bundle(bundle, want_metadata=False).files) - {"bundle.json"}
    assert builder == inst.files_on_disk(str(bundle)) and "venv/bin/python" in builder
