"""bundler.platforms: every ``--python-platform`` name uv accepts, read with uv's meaning.

The table is uv's (``uv pip compile --help`` lists the visible names; the tag-style aliases and
s390x/ppc64le/loongarch64 names are hidden ones). Where uv runs, one small resolution per name is
compared with uv's (ours through the in-memory index, uv's over the same wheels in a folder): a project per platform tag, whose 2.0 has only a wheel
with that tag and whose 1.0 is pure, shows which tags the target accepts; one project with
marker-guarded dependencies shows its marker environment.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bundler.errors import BadInput
from bundler.platforms import Platform, parse_platform
from bundler.profile import profile_for_platform
from support.oracle import clean_env, pins_of, uv_binary
from support.plancases import W
from test_plan import plan_in_process
from support.wheelgen import make_wheel

_LINUX_MINORS = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)
_FIRST = {"x86_64": 17, "aarch64": 17, "s390x": 17, "ppc64le": 17, "loongarch64": 36}


def _glibc_names() -> list[tuple[str, Platform]]:
    out = []
    for arch, first in _FIRST.items():
        if first == 17:
            out += [(f"{arch}-manylinux2014", Platform("linux", arch, "glibc", (2, 17))),
                    (f"manylinux2014_{arch}", Platform("linux", arch, "glibc", (2, 17)))]
        for m in (m for m in _LINUX_MINORS if m >= first):
            out += [(f"{arch}-manylinux_2_{m}", Platform("linux", arch, "glibc", (2, m))),
                    (f"manylinux_2_{m}_{arch}", Platform("linux", arch, "glibc", (2, m)))]
    return out


UV_NAMES: list[tuple[str, Platform]] = [
    ("windows", Platform("windows", "x86_64")),
    ("linux", Platform("linux", "x86_64", "glibc", (2, 28))),
    ("macos", Platform("macos", "aarch64", macos_version=(13, 0))),
    ("x86_64-pc-windows-msvc", Platform("windows", "x86_64")),
    ("aarch64-pc-windows-msvc", Platform("windows", "aarch64")),
    ("i686-pc-windows-msvc", Platform("windows", "i686")),
    ("x86_64-unknown-linux-gnu", Platform("linux", "x86_64", "glibc", (2, 28))),
    ("aarch64-apple-darwin", Platform("macos", "aarch64", macos_version=(13, 0))),
    ("x86_64-apple-darwin", Platform("macos", "x86_64", macos_version=(13, 0))),
    ("aarch64-unknown-linux-gnu", Platform("linux", "aarch64", "glibc", (2, 28))),
    ("aarch64-unknown-linux-musl", Platform("linux", "aarch64", "musl", (1, 2))),
    ("x86_64-unknown-linux-musl", Platform("linux", "x86_64", "musl", (1, 2))),
    ("s390x-unknown-linux-gnu", Platform("linux", "s390x", "glibc", (2, 28))),
    ("powerpc64le-unknown-linux-gnu", Platform("linux", "ppc64le", "glibc", (2, 28))),
    ("loongarch64-unknown-linux-gnu", Platform("linux", "loongarch64", "glibc", (2, 36))),
    ("riscv64-unknown-linux", Platform("linux", "riscv64", "glibc", (2, 39))),
    *_glibc_names(),
]

UNSERVED = ["aarch64-linux-android", "x86_64-linux-android", "wasm32-pyodide2024", "wasm32-pyodide2025",
            "arm64-apple-ios", "arm64-apple-ios-simulator", "x86_64-apple-ios-simulator"]


@pytest.mark.parametrize("name, expected", UV_NAMES, ids=[n for n, _ in UV_NAMES])
def test_every_uv_platform_name_is_read_with_uvs_meaning(name: str, expected: Platform) -> None:
    assert parse_platform(name) == expected
    assert profile_for_platform(name, "3.12").tags  # a usable profile, tags and markers


@pytest.mark.parametrize("name", UNSERVED)
def test_platforms_a_bundle_cannot_serve_are_refused_saying_why(name: str) -> None:
    with pytest.raises(BadInput) as e:
        parse_platform(name)
    assert "cannot be served by a wheelhouse bundle" in e.value.message and "pip" in e.value.message
    assert e.value.hint and "uv pip compile" in e.value.hint


# -- compared with uv on the loopback index ----------------------------------------------------------

ARCHES = ("x86_64", "aarch64", "ppc64le", "s390x", "loongarch64", "riscv64")
PLATFORM_TAGS = [
    *[f"manylinux_2_{m}_{a}" for a in ARCHES for m in (17, 28, 29, 35, 36, 38, 39, 40, 41)],
    "manylinux2014_x86_64", "manylinux2014_ppc64le", "linux_x86_64", "linux_s390x",
    *[f"musllinux_1_{m}_{a}" for a in ("x86_64", "aarch64") for m in (1, 2, 3)],
    "win_amd64", "win_arm64", "win32",
    *[f"macosx_{v}_{a}" for a in ("x86_64", "arm64") for v in ("11_0", "13_0", "14_0")], "macosx_10_9_universal2",
]
MACHINES = ("x86_64", "aarch64", "arm64", "ppc64le", "s390x", "loongarch64", "riscv64", "AMD64", "ARM64", "x86", "i686")
MARKERS = [
    *[(f"m-sys-{v}", f"sys_platform == '{v}'") for v in ("linux", "win32", "darwin")],
    *[(f"m-os-{v}", f"os_name == '{v}'") for v in ("nt", "posix")],
    *[(f"m-system-{v.lower()}", f"platform_system == '{v}'") for v in ("Linux", "Windows", "Darwin")],
    *[(f"m-machine-{v.lower()}", f"platform_machine == '{v}'") for v in MACHINES],
]


def _project(tag: str) -> str:
    return "t-" + tag.replace("_", "-")


WHEELS = ([W(_project(t), "1.0") for t in PLATFORM_TAGS] + [W(_project(t), "2.0", tag=f"cp312-cp312-{t}") for t in PLATFORM_TAGS]
          + [W("mk", "1.0", deps=[f"{n}; {m}" for n, m in MARKERS])] + [W(n, "1.0") for n, _ in MARKERS])
REQUIREMENTS = [_project(t) for t in PLATFORM_TAGS] + ["mk"]


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same wheels as files, for uv's --find-links (a folder is read in one go, unlike an index)."""
    folder = tmp_path_factory.mktemp("wheels")
    for w in WHEELS:
        make_wheel(folder, w.name, w.version, tag=w.tag, requires_dist=list(w.deps))
    return folder


def _uv_pins(wheels: Path, name: str, workdir: Path) -> dict[str, str]:
    uv = uv_binary()
    if uv is None:
        pytest.skip("uv is not installed")
    req = workdir / "requirements.in"
    req.write_text("\n".join(REQUIREMENTS) + "\n")
    r = subprocess.run([uv, "pip", "compile", str(req), "--python-platform", name, "--python-version", "3.12",
                        "--no-index", "--find-links", str(wheels), "--no-header", "--no-annotate", "--quiet", "--no-cache",
                        "--python", sys.executable],  # skips uv's interpreter discovery (seconds here); markers come from the flags
                       capture_output=True, text=True, env=clean_env(), timeout=120)
    if r.returncode != 0 and "invalid value" in r.stderr:
        pytest.skip(f"this uv ({uv}) does not know {name}")
    assert r.returncode == 0, r.stderr
    return pins_of(r.stdout)


@pytest.mark.parametrize("name", [n for n, _ in UV_NAMES], ids=[n for n, _ in UV_NAMES])
def test_tags_and_markers_agree_with_uv(wheel_dir: Path, tmp_path: Path, name: str) -> None:
    theirs = _uv_pins(wheel_dir, name, tmp_path)
    result, _ = plan_in_process(WHEELS, REQUIREMENTS, ("--python-platform", name, "--python-version", "3.12"))
    ours = {p.name: p.version for p in result.targets[0].pins}
    differ = {n for n in set(ours) | set(theirs) if ours.get(n) != theirs.get(n)}
    assert not differ, {n: (ours.get(n), theirs.get(n)) for n in sorted(differ)}
