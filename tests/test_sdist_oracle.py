"""Resolver scenarios where only an sdist can serve a version, compared with uv (issue 11's acceptance).

Each scenario publishes real wheels (wheelgen) and real sdists (sdistgen's in-tree stdlib backend,
static PKG-INFO or not) on the loopback index for wheelhouse, and the same files in a folder for
``uv pip compile --no-index --find-links`` (uv builds what it must with the same backend, offline).
Both resolve for Linux x86_64 CPython 3.12 and must pin the same versions, with and without
``--only-binary :all:``.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bundler.lock import read_lock
from support.hermetic import hermetic
from support.indexserver import IndexServer
from support.oracle import clean_env, pins_of, uv_binary
from support.plancases import lock
from support.sdistgen import make_sdist
from support.wheelgen import make_wheel

TARGET = ("--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.12")
OTHER_PLATFORM = "cp312-cp312-win_amd64"


@dataclass(frozen=True)
class F:
    """One file: a wheel (``tag``) or, with ``sdist=True``, a source distribution."""

    name: str
    version: str
    deps: tuple[str, ...] = ()
    sdist: bool = False
    tag: str = "py3-none-any"
    static: bool = True
    rp: str | None = None


@dataclass(frozen=True)
class Scenario:
    files: tuple[F, ...]
    requirements: tuple[str, ...]
    expected: dict[str, str] = field(default_factory=dict)  # what both must pin (the default policy)


SCENARIOS = {
    # the newest version has only an sdist: it is the candidate, as pip and uv take it
    "newest-only-sdist": Scenario((F("a", "1.0"), F("a", "2.0", sdist=True)), ("a",), {"a": "2.0"}),
    # wheels exist, but only for another platform: the sdist of the same version serves the target
    "wheel-for-another-platform": Scenario((F("b", "2.0", tag=OTHER_PLATFORM), F("b", "2.0", sdist=True), F("b", "1.0")),
                                           ("b",), {"b": "2.0"}),
    # a usable wheel and an sdist of one version: the same version either way
    "wheel-and-sdist": Scenario((F("c", "1.0"), F("c", "1.0", sdist=True)), ("c",), {"c": "1.0"}),
    # an sdist-only dependency constrains another project
    "sdist-dependency": Scenario((F("app", "1.0", deps=("d",)), F("d", "1.5", deps=("e<2",), sdist=True), F("e", "2.0"),
                                  F("e", "1.9")), ("app",), {"app": "1.0", "d": "1.5", "e": "1.9"}),
    # its metadata only through the PEP 517 hook (no static PKG-INFO)
    "dynamic-metadata": Scenario((F("f", "3.0", deps=("g",), sdist=True, static=False), F("g", "1.0")), ("f",),
                                 {"f": "3.0", "g": "1.0"}),
    # an sdist whose Requires-Python excludes the target is passed over for an older wheel
    "requires-python": Scenario((F("h", "1.0"), F("h", "2.0", sdist=True, rp=">=3.13")), ("h",), {"h": "1.0"}),
    # a pinned older version that only an sdist provides
    "pinned-sdist": Scenario((F("k", "1.0", sdist=True), F("k", "2.0")), ("k==1.0",), {"k": "1.0"}),
}


def _files(folder: Path, scenario: Scenario) -> list[Path]:
    out = []
    for f in scenario.files:
        if f.sdist:
            out.append(make_sdist(folder, f.name, f.version, requires_dist=f.deps, static=f.static, requires_python=f.rp))
        else:
            out.append(make_wheel(folder, f.name, f.version, tag=f.tag, requires_dist=list(f.deps), requires_python=f.rp))
    return out


def _uv(folder: Path, scenario: Scenario, workdir: Path, only_binary: bool) -> tuple[int, dict[str, str], str]:
    uv = uv_binary()
    if uv is None:
        pytest.skip("uv is not installed")
    req = workdir / "requirements.in"
    req.write_text("\n".join(scenario.requirements) + "\n")
    r = subprocess.run([uv, "pip", "compile", str(req), *TARGET, "--no-index", "--find-links", str(folder), "--no-header",
                        "--no-annotate", "--quiet", "--no-cache", "--python", sys.executable,
                        *(["--only-binary", ":all:"] if only_binary else [])],
                       capture_output=True, text=True, env=clean_env(), timeout=300, cwd=workdir)
    return r.returncode, pins_of(r.stdout), r.stderr


@pytest.mark.parametrize("only_binary", [False, True], ids=["default", "only-binary"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sdist_scenarios_agree_with_uv(index_server: IndexServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       name: str, only_binary: bool) -> None:
    hermetic(monkeypatch, tmp_path)
    scenario = SCENARIOS[name]
    folder = tmp_path / "files"
    index_server.add_index("main")
    for path in _files(folder, scenario):
        index_server.add_file("main", path)
    uv_dir = tmp_path / "uv"
    uv_dir.mkdir()
    code, theirs, err = _uv(folder, scenario, uv_dir, only_binary)
    rc = lock(tmp_path, index_server, *scenario.requirements, *(["--only-binary", ":all:"] if only_binary else []),
              target=TARGET)
    assert (rc == 0) == (code == 0), f"uv exit {code}: {err}"
    assert code != 0 or theirs, err  # uv pinned something: the comparison is real
    if rc == 0:
        ours = {p.name: p.version for p in read_lock(tmp_path / "pylock.toml").packages}
        assert ours == theirs
        if not only_binary:
            assert ours == scenario.expected

