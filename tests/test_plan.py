"""Resolution: the resolver cases in-process against a fake index, and end to end through ``main``.

The resolver cases are data (``Case``/``W`` tables). Every case runs in-process through
``plan()`` against ``fakeindex.FakeIndex`` (the ``ProjectIndex`` protocol, no sockets); a
selection of them (``E2E_CASES``) also runs through ``main(["lock", ...])`` against the loopback
index server, reading the result back with ``bundler.lock.read_lock`` and the hashed
``requirements.txt``. The tests that need the request log or stderr are written out. Nothing here
talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from packaging.pylock import Pylock

from bundler.cli import main
from bundler.config import build_job
from bundler.errors import BundlerError
from bundler.lock import Lock, read_lock
from bundler.plan import Plan, plan
from bundler.profile import PRESETS, profile_for_platform
from fakeindex import FakeIndex
from indexserver import IndexServer
from wheelgen import make_wheel
from hermetic import hermetic

LINUX = ("--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11")
LINUX_NAME = "x86_64-manylinux_2_28-cp311"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, "MACOSX_DEPLOYMENT_TARGET")


# ---------------------------------------------------------------------------------------------
# helpers


@dataclass(frozen=True)
class W:
    """A wheel to publish: ``W("lib", "1.0", deps=["x>=1"], index="main")``."""

    name: str
    version: str
    tag: str = "py3-none-any"
    deps: tuple[str, ...] | list[str] = ()
    rp: str | None = None  # Requires-Python, on the page and in METADATA
    page_rp: str | None = None  # Requires-Python on the index page only (METADATA says nothing)
    extras: tuple[str, ...] | list[str] = ()
    yanked: str | bool | None = None
    index: str = "main"


def publish(server: IndexServer, wheels: list[W], formats: tuple[str, ...] = ("json", "html")) -> None:
    """Publish ``wheels``, creating their indexes (serving ``formats``) as needed."""
    for w in wheels:
        try:
            server.add_index(w.index, formats=formats)
        except ValueError:
            pass  # already there
        if w.page_rp is not None:
            path = make_wheel(server.root / "_src", w.name, w.version, tag=w.tag, requires_dist=list(w.deps),
                              provides_extra=list(w.extras))
            server.add_file(w.index, path, requires_python=w.page_rp, yanked=w.yanked)
            continue
        server.add_wheel(w.index, w.name, w.version, tag=w.tag, requires_dist=list(w.deps), requires_python=w.rp,
                         provides_extra=list(w.extras), yanked=w.yanked)


def lock(tmp_path: Path, server: IndexServer, *args: str, index: str = "main", target: tuple[str, ...] = LINUX,
         cache: bool = True, out: str = "pylock.toml") -> int:
    """Run ``wheelhouse lock`` with the loopback index as the default index."""
    argv = ["lock", *args, "-o", str(tmp_path / out), "--index-url", server.index_url(index), "-q", *target]
    argv += ["--no-cache"] if not cache else ["--cache-dir", str(tmp_path / "cache")]
    return main(argv)


def locked(tmp_path: Path, name: str = "pylock.toml") -> Lock:
    return read_lock(tmp_path / name)


def versions(lk: Lock, target: str | None = None) -> dict[str, str]:
    """``{name: version}`` installed on ``target`` (the only target when None)."""
    if target is None:
        assert len(lk.profiles) == 1
        target = lk.profiles[0].name
    return {pkg.name: pkg.version for pkg, _ in lk.for_target(target)}


def wheels(lk: Lock, target: str | None = None) -> dict[str, str]:
    """``{name: wheel filename}`` installed on ``target``."""
    if target is None:
        assert len(lk.profiles) == 1
        target = lk.profiles[0].name
    return {pkg.name: wheel.filename for pkg, wheel in lk.for_target(target)}


def requirements_txt(path: Path) -> dict[str, tuple[str, str | None, list[str]]]:
    """Parse wheelhouse's requirements.txt: ``{name: (version, marker, [sha256...])}``."""
    text = path.read_text().replace("\\\n", " ")
    out: dict[str, tuple[str, str | None, list[str]]] = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9._-]+)==(\S+)(?:\s*;\s*(.*?))?((?:\s+--hash=sha256:[0-9a-f]{64})+)\s*$", line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3).strip() if m.group(3) else None, re.findall(r"sha256:([0-9a-f]{64})", m.group(4)))
    return out


_SERVER_NOISE = re.compile(r"-{40}\nException occurred during processing of request.*?\n-{40}\n", re.S)


def stderr_of(capsys: pytest.CaptureFixture[str]) -> str:
    """What wheelhouse printed on stderr, without the loopback server's own tracebacks.

    (socketserver prints one when a client drops a keep-alive connection with a reset, which
    happens when a failed lock closes its client while prefetches are still in flight.)
    """
    return _SERVER_NOISE.sub("", capsys.readouterr().err)


def sha256_of(server: IndexServer, index: str, filename: str) -> str:
    return hashlib.sha256((server.root / index / "files" / filename).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# resolver scenarios as data


@dataclass(frozen=True)
class Case:
    id: str
    wheels: list[W]
    args: list[str]  # requirements and flags
    expect: dict[str, str] | None  # name -> version; None: must fail with exit 1
    files: dict[str, str] = field(default_factory=dict)  # name -> chosen wheel filename
    target: tuple[str, ...] = LINUX


CP311_2_17 = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"

CASES = [
    # -- local versions --------------------------------------------------------------------------
    Case("local-matches-public-pin",
         [W("torch", "2.3.0+cu121", tag=CP311_2_17), W("torch", "2.2.0+cu121", tag=CP311_2_17)],
         ["torch==2.3.0"], {"torch": "2.3.0+cu121"},
         {"torch": "torch-2.3.0+cu121-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"}),
    Case("local-exact-pin-cpu",
         [W("torch", "2.3.0+cu121", tag=CP311_2_17), W("torch", "2.3.0+cpu", tag=CP311_2_17), W("torch", "2.3.1+cu121", tag=CP311_2_17)],
         ["torch==2.3.0+cpu"], {"torch": "2.3.0+cpu"}),
    Case("local-exact-pin-cu121",
         [W("torch", "2.3.0+cpu", tag=CP311_2_17), W("torch", "2.3.0+cu121", tag=CP311_2_17)],
         ["torch==2.3.0+cu121"], {"torch": "2.3.0+cu121"}),
    Case("local-missing-exact",
         [W("torch", "2.3.0+cu121", tag=CP311_2_17)],
         ["torch==2.3.0+cpu"], None),
    Case("local-range-admits-local",
         [W("torch", "2.3.0+cu121", tag=CP311_2_17), W("torch", "2.2.0+cu121", tag=CP311_2_17)],
         ["torch>=2.3,<2.4"], {"torch": "2.3.0+cu121"}),
    # -- yanked (PEP 592) --------------------------------------------------------------------------
    Case("yanked-skipped", [W("lib", "1.0"), W("lib", "2.0", yanked="broken")], ["lib"], {"lib": "1.0"}),
    Case("yanked-skipped-by-range", [W("lib", "1.0"), W("lib", "2.0", yanked=True)], ["lib>=1.0"], {"lib": "1.0"}),
    Case("yanked-allowed-when-pinned", [W("lib", "1.0"), W("lib", "2.0", yanked="broken")], ["lib==2.0"], {"lib": "2.0"}),
    Case("yanked-only-range-fails", [W("lib", "1.0"), W("lib", "2.0", yanked="broken")], ["lib>=1.5"], None),
    Case("yanked-transitive-pin", [W("app", "1.0", deps=["lib==2.0"]), W("lib", "1.0"), W("lib", "2.0", yanked=True)],
         ["app"], {"app": "1.0", "lib": "2.0"}),
    # -- pre-releases ----------------------------------------------------------------------------
    Case("pre-skipped", [W("pkg", "1.0"), W("pkg", "2.0rc1")], ["pkg"], {"pkg": "1.0"}),
    Case("pre-with-flag", [W("pkg", "1.0"), W("pkg", "2.0rc1")], ["pkg", "--pre"], {"pkg": "2.0rc1"}),
    Case("pre-named-by-specifier", [W("pkg", "1.0"), W("pkg", "2.0rc1")], ["pkg>=2.0rc1"], {"pkg": "2.0rc1"}),
    Case("pre-only-prereleases", [W("pkg", "3.0b1"), W("pkg", "3.0a2")], ["pkg"], {"pkg": "3.0b1"}),
    Case("pre-only-prereleases-transitive", [W("app", "1.0", deps=["pkg"]), W("pkg", "3.0b1")], ["app"], {"app": "1.0", "pkg": "3.0b1"}),
    Case("pre-not-named-by-exclusion", [W("pkg", "1.0"), W("pkg", "2.0rc1"), W("pkg", "3.0rc1")], ["pkg!=2.0rc1"], {"pkg": "1.0"}),
    Case("pre-only-prereleases-boundary", [W("pkg", "0.1.0a1"), W("pkg", "0.2.0a1"), W("pkg", "0.3.0a1")], ["pkg<0.2.0"],
         {"pkg": "0.1.0a1"}),
    Case("pre-transitive-skipped", [W("app", "1.0", deps=["pkg>=1"]), W("pkg", "1.0"), W("pkg", "2.0rc1")],
         ["app"], {"app": "1.0", "pkg": "1.0"}),
    # -- requires-python from the index page, against the full target version ------------------------
    Case("rp-page-excludes-x.y.0", [W("pkg", "1.0"), W("pkg", "2.0", page_rp=">=3.11.5")], ["pkg"], {"pkg": "1.0"}),
    Case("rp-page-admits-patch", [W("pkg", "1.0"), W("pkg", "2.0", page_rp=">=3.11.5")], ["pkg"], {"pkg": "2.0"},
         target=("--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11.7")),
    Case("rp-page-upper-bound", [W("pkg", "1.0", page_rp=">=3.8"), W("pkg", "2.0", page_rp="<3.11")], ["pkg"], {"pkg": "1.0"}),
    Case("rp-page-nothing-fits", [W("pkg", "2.0", page_rp=">=3.12")], ["pkg"], None),
    Case("rp-page-and-metadata", [W("pkg", "1.0", rp=">=3.8"), W("pkg", "2.0", rp=">=3.11.5")], ["pkg"], {"pkg": "1.0"}),
    # -- extras ----------------------------------------------------------------------------------
    Case("extra-not-requested",
         [W("pkg", "1.0", deps=["lib", "speedup; extra == 'fast'"], extras=["fast"]), W("lib", "1.0"), W("speedup", "1.0")],
         ["pkg"], {"pkg": "1.0", "lib": "1.0"}),
    Case("extra-requested",
         [W("pkg", "1.0", deps=["lib", "speedup; extra == 'fast'"], extras=["fast"]), W("lib", "1.0"), W("speedup", "1.0")],
         ["pkg[fast]"], {"pkg": "1.0", "lib": "1.0", "speedup": "1.0"}),
    Case("extra-requested-by-dependency",
         [W("app", "1.0", deps=["pkg[fast]>=1"]), W("pkg", "1.0", deps=["speedup>=2; extra == 'fast'"], extras=["fast"]),
          W("speedup", "1.0"), W("speedup", "2.0")],
         ["app"], {"app": "1.0", "pkg": "1.0", "speedup": "2.0"}),
    Case("extra-self-referential",
         [W("pkg", "1.0", deps=["pkg[fast,io]; extra == 'all'", "speedup; extra == 'fast'", "aio; extra == 'io'"],
            extras=["fast", "io", "all"]), W("speedup", "1.0"), W("aio", "1.0")],
         ["pkg[all]"], {"pkg": "1.0", "speedup": "1.0", "aio": "1.0"}),
    Case("extra-with-marker-for-other-os",
         [W("pkg", "1.0", deps=["winext; extra == 'fast' and sys_platform == 'win32'", "speedup; extra == 'fast'"], extras=["fast"]),
          W("speedup", "1.0"), W("winext", "1.0")],
         ["pkg[fast]"], {"pkg": "1.0", "speedup": "1.0"}),
    # -- markers on a foreign target (the host is Linux x86_64) ---------------------------------------
    *[Case(f"markers-{label}",
           [W("app", "1.0", deps=["winonly; sys_platform == 'win32'", "armonly; platform_machine == 'aarch64'",
                                  "linuxonly; sys_platform == 'linux'", "oldpy; python_version < '3.10'",
                                  "x86dep; platform_machine == 'x86_64'"]),
            W("winonly", "1.0"), W("armonly", "1.0"), W("linuxonly", "1.0"), W("oldpy", "1.0"), W("x86dep", "1.0"),
            W("rootwin", "1.0")],
           ["app", "rootwin; os_name == 'nt'"], expect,
           target=("--python-platform", plat, "--python-version", ver))
      for label, plat, ver, expect in [
          ("windows", "x86_64-pc-windows-msvc", "3.11", {"app": "1.0", "winonly": "1.0", "rootwin": "1.0"}),
          ("linux-x86_64", "x86_64-manylinux_2_28", "3.11", {"app": "1.0", "linuxonly": "1.0", "x86dep": "1.0"}),
          ("linux-aarch64", "aarch64-manylinux_2_28", "3.11", {"app": "1.0", "armonly": "1.0", "linuxonly": "1.0"}),
          ("macos-arm-py39", "aarch64-apple-darwin", "3.9", {"app": "1.0", "oldpy": "1.0"}),
      ]],
    # -- per-wheel metadata: one version, two wheels, different Requires-Dist ------------------------
    *[Case(f"per-wheel-deps-{arch}",
           [W("pkg", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64", deps=["x86dep"]),
            W("pkg", "1.0", tag="cp311-cp311-manylinux_2_17_aarch64", deps=["armdep"]),
            W("x86dep", "1.0"), W("armdep", "1.0")],
           ["pkg"], {"pkg": "1.0", dep: "1.0"}, {"pkg": f"pkg-1.0-cp311-cp311-manylinux_2_17_{arch}.whl"},
           target=("--python-platform", f"{arch}-manylinux_2_28", "--python-version", "3.11"))
      for arch, dep in [("x86_64", "x86dep"), ("aarch64", "armdep")]],
    # -- tag priority ------------------------------------------------------------------------------
    *[Case(f"tags-{label}",
           [W("pkg", "1.0", tag=t) for t in tags], ["pkg"], {"pkg": "1.0"}, {"pkg": f"pkg-1.0-{best}.whl"}, target=target)
      for label, tags, best, target in [
          ("manylinux-2_28-over-2_17",
           ["cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux_2_28_x86_64", "py3-none-any"],
           "cp311-cp311-manylinux_2_28_x86_64", LINUX),
          ("cp311-over-abi3",
           ["cp38-abi3-manylinux_2_28_x86_64", "cp311-cp311-manylinux_2_17_x86_64", "py3-none-any"],
           "cp311-cp311-manylinux_2_17_x86_64", LINUX),
          ("abi3-over-pure", ["py3-none-any", "cp38-abi3-manylinux_2_17_x86_64"], "cp38-abi3-manylinux_2_17_x86_64", LINUX),
          ("pure-when-glibc-too-old", ["cp311-cp311-manylinux_2_28_x86_64", "py3-none-any"], "py3-none-any",
           ("--python-platform", "x86_64-manylinux_2_17", "--python-version", "3.11")),
          ("windows-wheel-on-windows",
           ["cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-win_amd64", "py3-none-any"], "cp311-cp311-win_amd64",
           ("--python-platform", "x86_64-pc-windows-msvc", "--python-version", "3.11")),
          ("musl-not-manylinux",
           ["cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-musllinux_1_1_x86_64", "py3-none-any"],
           "cp312-cp312-musllinux_1_1_x86_64", ("--python-platform", "x86_64-unknown-linux-musl", "--python-version", "3.12")),
      ]],
    Case("tags-newer-version-without-wheel-backs-off",
         [W("pkg", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64"), W("pkg", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64")],
         ["pkg"], {"pkg": "1.0"}),
    # -- plain backtracking ------------------------------------------------------------------------
    Case("backtrack-over-conflict",
         [W("a", "2.0", deps=["c==2.0"]), W("a", "1.0", deps=["c==1.0"]), W("b", "1.0", deps=["c<2"]),
          W("c", "1.0"), W("c", "2.0")],
         ["a", "b"], {"a": "1.0", "b": "1.0", "c": "1.0"}),
    Case("constraint-via-requirements", [W("lib", "1.0"), W("lib", "2.0"), W("app", "1.0", deps=["lib"])],
         ["app", "lib<2"], {"app": "1.0", "lib": "1.0"}),
]


def plan_in_process(wheels: list[W], args: list[str], target: tuple[str, ...] = LINUX,
                    index_url: str = "https://main.example/simple/") -> tuple[Plan, FakeIndex]:
    """Plan ``args`` (requirements and ``--pre``) for ``target`` like ``wheelhouse lock`` would,
    but through ``plan()`` on a ``FakeIndex`` holding ``wheels`` (index "main" is the default index)."""
    flags = dict(zip(target[::2], target[1::2]))
    job = build_job(positional=[a for a in args if not a.startswith("--")], req_files=[], constraint_files=[], profile_specs=[],
                    platform=flags.get("--python-platform"), version=flags.get("--python-version"), index_url=index_url,
                    extra_index_urls=[], find_links=[], named=[], pins=[], pre="--pre" in args, exclude_newer=None)
    fake = FakeIndex(job.indexes)
    for w in wheels:
        fake.add_wheel("default" if w.index == "main" else w.index, w.name, w.version, tag=w.tag, requires_dist=list(w.deps),
                       requires_python=w.rp, page_requires_python=w.page_rp, provides_extra=list(w.extras), yanked=w.yanked)
    return plan(fake, job.profiles, job.inputs, job.indexes), fake


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolution_case(case: Case) -> None:
    if case.expect is None:
        with pytest.raises(BundlerError) as err:
            plan_in_process(case.wheels, case.args, case.target)
        assert err.value.exit_code == 1
        return
    result, _ = plan_in_process(case.wheels, case.args, case.target)
    [target] = result.targets
    assert {p.name: p.version for p in target.pins} == case.expect
    for name, filename in case.files.items():
        assert next(p.link.filename for p in target.pins if p.name == name) == filename


# End to end through main(): one or two cases of each kind. Page attributes (yanked,
# requires-python, %2B in local versions) are parsed from both formats.
E2E_CASES = [c for c in CASES if c.id in {
    "local-matches-public-pin", "local-missing-exact", "yanked-skipped", "yanked-allowed-when-pinned", "yanked-only-range-fails",
    "pre-with-flag", "rp-page-excludes-x.y.0", "rp-page-admits-patch", "extra-requested", "markers-windows",
    "per-wheel-deps-aarch64", "tags-musl-not-manylinux", "backtrack-over-conflict"}]
HTML_CASES = [c for c in E2E_CASES if c.id.startswith(("local-matches", "yanked-skipped", "rp-page-excludes"))]


@pytest.mark.parametrize(
    ("case", "formats"),
    [pytest.param(c, ("json", "html"), id=c.id) for c in E2E_CASES] + [pytest.param(c, ("html",), id=f"html-{c.id}") for c in HTML_CASES],
)
def test_resolution_case_end_to_end(case: Case, formats: tuple[str, ...], index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, case.wheels, formats)
    rc = lock(tmp_path, index_server, *case.args, target=case.target, cache=zlib.crc32(case.id.encode()) % 2 == 0)
    if case.expect is None:
        assert rc == 1
        assert not (tmp_path / "pylock.toml").exists()
        return
    assert rc == 0
    lk = locked(tmp_path)
    assert versions(lk) == case.expect
    for name, filename in case.files.items():
        assert wheels(lk)[name] == filename
    reqs = requirements_txt(tmp_path / "requirements.txt")
    assert {n: v for n, (v, _, _) in reqs.items()} == case.expect
    for pkg, wheel in lk.for_target(lk.profiles[0].name):
        w = next(w for w in case.wheels if f"{w.name}-{w.version}-{w.tag}.whl" == wheel.filename)
        assert wheel.url == index_server.file_url(w.index, wheel.filename)  # percent-encoded: + is %2B
        assert wheel.sha256 == sha256_of(index_server, w.index, wheel.filename)
        assert reqs[pkg.name][2] == [wheel.sha256]


DIAGNOSED = [
    Case("unknown-project", [W("app", "1.0", deps=["missing-dep"])], ["app"], None),
    Case("no-file-for-target", [W("fastlib", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64"), W("fastlib", "1.9", tag="cp312-cp312-win_amd64"),
                                W("app", "1.0", deps=["fastlib>=1.9"])], ["app"], None),
    Case("conflict", [W("a", "1.0", deps=["c==1.0"]), W("b", "1.0", deps=["c==2.0"]), W("c", "1.0"), W("c", "2.0")], ["a", "b"], None),
    Case("no-version-matches", [W("torch", "2.3.0+cu121", tag=CP311_2_17)], ["torch==2.3.0+cpu"], None),
    Case("requires-python", [W("pkg", "2.0", rp=">=3.12")], ["pkg"], None),
]


@pytest.mark.parametrize("case", DIAGNOSED, ids=[c.id for c in DIAGNOSED])
def test_fake_index_failures_read_like_the_real_ones(case: Case, index_server: IndexServer, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The failure message is built from the ``ProjectIndex`` protocol alone: the same words against
    the fake index as through ``main`` against the loopback server with the same URLs."""
    with pytest.raises(BundlerError) as err:
        plan_in_process(case.wheels, case.args, index_url=index_server.index_url("main"))
    publish(index_server, case.wheels)
    capsys.readouterr()
    assert lock(tmp_path, index_server, *case.args, cache=False) == err.value.exit_code == 1
    expected = f"wheelhouse: error: {err.value.message}\n" + (f"hint: {err.value.hint}\n" if err.value.hint else "")
    assert stderr_of(capsys) == expected


# ---------------------------------------------------------------------------------------------
# index semantics


def test_explicit_pin_takes_project_only_from_its_index(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [
        W("acme-core", "1.0", deps=["lib"], index="private"),
        W("acme-util", "0.5", index="private"),
        W("lib", "5.0", index="private"),  # the explicit index serves nothing it is not pinned for
        W("acme-core", "9.0", index="main"),  # hostile higher version on the general index
        W("acme-util", "9.0", index="main"),
        W("lib", "1.0", index="main"),
    ])
    rc = lock(tmp_path, index_server, "Acme_Core", "acme-util",
              "--index", f"private={index_server.index_url('private')}", "--pin", "Acme_*=private")
    assert rc == 0
    lk = locked(tmp_path)
    assert versions(lk) == {"acme-core": "1.0", "acme-util": "0.5", "lib": "1.0"}
    by_name = {p.name: p for p in lk.packages}
    assert by_name["acme-core"].index == index_server.index_url("private")
    assert by_name["acme-util"].index == index_server.index_url("private")
    assert by_name["lib"].index == index_server.index_url("main")
    assert wheels(lk)["lib"] == "lib-1.0-py3-none-any.whl"


def test_explicit_pin_never_falls_back(index_server: IndexServer, tmp_path: Path) -> None:
    """A pinned project missing on its index is an error, even though the general index has it."""
    publish(index_server, [W("acme-other", "1.0", index="private"), W("acme-core", "9.0", index="main")])
    rc = lock(tmp_path, index_server, "acme-core", "--index", f"private={index_server.index_url('private')}",
              "--pin", "acme-*=private")
    assert rc == 1
    assert not (tmp_path / "pylock.toml").exists()
    assert not any(r.path.startswith("/main/simple/acme-core") for r in index_server.requests)


def test_explicit_index_serves_nothing_unpinned(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("acme-core", "1.0", index="private"), W("onlyprivate", "1.0", index="private"),
                           W("lib", "1.0", index="main")])
    rc = lock(tmp_path, index_server, "acme-core", "onlyprivate", "--index", f"private={index_server.index_url('private')}",
              "--pin", "acme-*=private")
    assert rc == 1
    assert "onlyprivate" in stderr_of(capsys)
    assert not (tmp_path / "pylock.toml").exists()
    assert not any(r.path.startswith("/private/simple/onlyprivate") for r in index_server.requests)


@pytest.mark.parametrize(
    ("extra_has", "default_has", "expect", "source"),
    [
        (["1.0"], ["99.0"], "1.0", "private"),  # dependency confusion: the private name wins
        (["1.0", "1.1"], ["1.0", "99.0"], "1.1", "private"),  # never mixed across indexes
        ([], ["2.0"], "2.0", "main"),  # only the default has it
    ],
    ids=["private-wins", "no-mixing", "only-default"],
)
def test_first_index_that_has_a_project_supplies_it(index_server: IndexServer, tmp_path: Path, extra_has: list[str],
                                                    default_has: list[str], expect: str, source: str) -> None:
    index_server.add_index("private")
    publish(index_server, [W("internal-tool", v, index="private") for v in extra_has]
            + [W("internal-tool", v, index="main") for v in default_has] + [W("filler", "1.0", index="private")])
    rc = lock(tmp_path, index_server, "internal-tool", "--extra-index-url", index_server.index_url("private"))
    assert rc == 0
    lk = locked(tmp_path)
    assert versions(lk) == {"internal-tool": expect}
    pkg = lk.packages[0]
    assert pkg.index == index_server.index_url(source)
    assert pkg.wheels[0].url == index_server.file_url(source, f"internal_tool-{expect}-py3-none-any.whl")


@pytest.mark.parametrize("private", [W("corp-auth", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64", index="private"),
                                     W("corp-auth", "1.0", yanked="leaked", index="private"),
                                     W("corp-auth", "1.0", page_rp=">=3.12", index="private")],
                         ids=["no-wheel-for-target", "all-yanked", "requires-python"])
def test_first_index_unusable_files_never_fall_back(index_server: IndexServer, tmp_path: Path, private: W,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The private index has the name, so it owns it, even when none of its files suits the target."""
    publish(index_server, [private, W("corp-auth", "99.0", index="main")])
    assert lock(tmp_path, index_server, "corp-auth", "--extra-index-url", index_server.index_url("private")) == 1
    err = stderr_of(capsys)
    assert "corp-auth" in err and "Traceback" not in err
    assert not (tmp_path / "pylock.toml").exists()


def test_first_index_protection_applies_to_dependencies(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("app", "1.0", deps=["corp-auth>=1"], index="main"), W("corp-auth", "66.6", index="main"),
                           W("corp-auth", "1.2", index="private")])
    rc = lock(tmp_path, index_server, "app", "--extra-index-url", index_server.index_url("private"), cache=False)
    assert rc == 0
    assert versions(locked(tmp_path)) == {"app": "1.0", "corp-auth": "1.2"}


def test_find_links_is_searched_first(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("pkg", "1.0", index="flat"), W("pkg", "2.0"), W("lib", "3.0")])
    rc = lock(tmp_path, index_server, "pkg", "lib", "--find-links", index_server.find_links_url("flat"))
    assert rc == 0
    lk = locked(tmp_path)
    assert versions(lk) == {"pkg": "1.0", "lib": "3.0"}
    assert [w.url for p in lk.packages if p.name == "pkg" for w in p.wheels] == [index_server.file_url("flat", "pkg-1.0-py3-none-any.whl")]


def test_constraints_restrict_but_do_not_add(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("app", "1.0", deps=["lib"]), W("lib", "1.0"), W("lib", "2.0"), W("unused", "1.0")])
    cons = tmp_path / "constraints.txt"
    cons.write_text("lib<2\nunused==1.0\n")
    assert lock(tmp_path, index_server, "app", "-c", str(cons)) == 0
    assert versions(locked(tmp_path)) == {"app": "1.0", "lib": "1.0"}


# ---------------------------------------------------------------------------------------------
# requires-python known only from the wheel's METADATA (HTML index, no data-requires-python)


@pytest.mark.parametrize(("pyver", "expect"), [("3.11", "1.0"), ("3.11.4", "1.0"), ("3.11.5", "2.0"), ("3.11.7", "2.0")])
def test_requires_python_from_metadata_backtracks(index_server: IndexServer, tmp_path: Path, pyver: str, expect: str) -> None:
    index_server.add_index("html", formats=("html",), metadata_files=False)
    src = tmp_path / "src"
    index_server.add_file("html", make_wheel(src, "pkg", "1.0"))
    index_server.add_file("html", make_wheel(src, "pkg", "2.0", requires_python=">=3.11.5"))
    rc = lock(tmp_path, index_server, "pkg", index="html",
              target=("--python-platform", "x86_64-manylinux_2_28", "--python-version", pyver))
    assert rc == 0
    assert versions(locked(tmp_path)) == {"pkg": expect}
    # the page really did not say it: the planner had to read 2.0's METADATA
    assert any(r.path.endswith("/pkg-2.0-py3-none-any.whl") and r.range for r in index_server.requests)


def test_requires_python_from_metadata_of_a_dependency(index_server: IndexServer, tmp_path: Path) -> None:
    index_server.add_index("html", formats=("html",), metadata_files=False)
    src = tmp_path / "src"
    index_server.add_file("html", make_wheel(src, "app", "2.0", requires_dist=["lib"], requires_python=">=3.12"))
    index_server.add_file("html", make_wheel(src, "app", "1.0", requires_dist=["lib<2"]))
    index_server.add_file("html", make_wheel(src, "lib", "1.5"))
    index_server.add_file("html", make_wheel(src, "lib", "2.0", requires_python=">=3.11.5"))
    assert lock(tmp_path, index_server, "app", index="html", cache=False) == 0
    assert versions(locked(tmp_path)) == {"app": "1.0", "lib": "1.5"}


def test_requires_python_conflict_is_explained(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index_server.add_index("html", formats=("html",), metadata_files=False)
    index_server.add_file("html", make_wheel(tmp_path / "src", "pkg", "2.0", requires_python=">=3.12"))
    assert lock(tmp_path, index_server, "pkg", index="html") == 1
    err = stderr_of(capsys)
    assert "pkg 2.0 requires Python >=3.12" in err
    assert "3.11.0" in err
    assert "Traceback" not in err
    assert not (tmp_path / "pylock.toml").exists()


# ---------------------------------------------------------------------------------------------
# hash-pinned inputs and direct URLs


def test_hash_pinned_requirements_choose_the_matching_file(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("pkg", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64", deps=["lib"]), W("pkg", "1.0", deps=["lib"]),
                           W("lib", "1.0"), W("lib", "2.0")])
    pure = sha256_of(index_server, "main", "pkg-1.0-py3-none-any.whl")
    lib1 = sha256_of(index_server, "main", "lib-1.0-py3-none-any.whl")
    reqs = tmp_path / "requirements.txt.in"
    reqs.write_text(
        "#\n# This file is autogenerated by pip-compile with Python 3.11\n# by the following command:\n#\n"
        "#    pip-compile --generate-hashes requirements.in\n#\n"
        f"lib==1.0 \\\n    --hash=sha256:{lib1} \\\n    --hash=sha256:{'0' * 64}\n    # via pkg\n"
        f"pkg==1.0 \\\n    --hash=sha256:{pure}\n    # via -r requirements.in\n")
    assert lock(tmp_path, index_server, "-r", str(reqs)) == 0
    lk = locked(tmp_path)
    # the better-ranked cp311 wheel is not the one whose hash was pinned
    assert wheels(lk) == {"pkg": "pkg-1.0-py3-none-any.whl", "lib": "lib-1.0-py3-none-any.whl"}
    out = requirements_txt(tmp_path / "requirements.txt")
    assert out == {"lib": ("1.0", None, [lib1]), "pkg": ("1.0", None, [pure])}


def test_hash_pin_matching_no_file_fails(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("pkg", "1.0"), W("pkg", "1.1")])
    reqs = tmp_path / "req.txt"
    reqs.write_text(f"pkg==1.0 --hash=sha256:{'ab' * 32}\n")
    assert lock(tmp_path, index_server, "-r", str(reqs)) == 1
    err = stderr_of(capsys)
    assert "pkg" in err and "Traceback" not in err
    assert not (tmp_path / "pylock.toml").exists()
    assert not (tmp_path / "requirements.txt").exists()


def test_hash_pin_on_a_dependency_without_version(index_server: IndexServer, tmp_path: Path) -> None:
    """A --hash pin also picks among versions: the newest file whose hash is pinned wins."""
    publish(index_server, [W("app", "1.0", deps=["lib"]), W("lib", "1.0"), W("lib", "2.0")])
    lib1 = sha256_of(index_server, "main", "lib-1.0-py3-none-any.whl")
    reqs = tmp_path / "req.txt"
    reqs.write_text(f"app\nlib --hash=sha256:{lib1}\n")
    assert lock(tmp_path, index_server, "-r", str(reqs), cache=False) == 0
    assert versions(locked(tmp_path)) == {"app": "1.0", "lib": "1.0"}


@pytest.mark.parametrize("with_hash", [False, True], ids=["plain", "sha256-fragment"])
def test_direct_url_locks_that_exact_file(index_server: IndexServer, tmp_path: Path, with_hash: bool) -> None:
    publish(index_server, [W("pkg", "1.0", deps=["lib"], index="files"), W("pkg", "2.0", index="main"), W("lib", "1.0", index="main")])
    url = index_server.file_url("files", "pkg-1.0-py3-none-any.whl")
    sha = sha256_of(index_server, "files", "pkg-1.0-py3-none-any.whl")
    spec = f"pkg @ {url}" + (f"#sha256={sha}" if with_hash else "")
    assert lock(tmp_path, index_server, spec, cache=with_hash) == 0
    lk = locked(tmp_path)
    assert versions(lk) == {"pkg": "1.0", "lib": "1.0"}
    pkg = next(p for p in lk.packages if p.name == "pkg")
    assert [(w.url, w.sha256) for w in pkg.wheels] == [(url, sha)]
    assert not any(w.filename.startswith("pkg-2.0") for p in lk.packages for w in p.wheels)


def test_direct_url_without_hash_is_read_once(index_server: IndexServer, tmp_path: Path) -> None:
    """The bytes read to hash a direct URL also give its metadata: no second request, even with --no-cache."""
    publish(index_server, [W("pkg", "1.0", deps=["lib"], index="files"), W("lib", "1.0", index="main")])
    url = index_server.file_url("files", "pkg-1.0-py3-none-any.whl")
    assert lock(tmp_path, index_server, f"pkg @ {url}", cache=False) == 0
    assert versions(locked(tmp_path)) == {"pkg": "1.0", "lib": "1.0"}
    assert len([r for r in index_server.requests if r.path.startswith("/files/files/pkg-1.0")]) == 1


def test_direct_url_with_extras_uses_that_file_for_the_base(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("pkg", "1.0", deps=["speedup; extra == 'fast'"], extras=["fast"], index="files"),
                           W("pkg", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64"), W("speedup", "1.0")])
    url = index_server.file_url("files", "pkg-1.0-py3-none-any.whl")
    assert lock(tmp_path, index_server, f"pkg[fast] @ {url}", cache=False) == 0
    lk = locked(tmp_path)
    assert versions(lk) == {"pkg": "1.0", "speedup": "1.0"}
    assert wheels(lk)["pkg"] == "pkg-1.0-py3-none-any.whl"  # not the better-ranked file of the index
    assert [w.url for p in lk.packages if p.name == "pkg" for w in p.wheels] == [url]


def test_direct_url_must_suit_the_target(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("pkg", "1.0", tag="cp311-cp311-win_amd64", index="files"), W("lib", "1.0")])
    url = index_server.file_url("files", "pkg-1.0-cp311-cp311-win_amd64.whl")
    assert lock(tmp_path, index_server, f"pkg @ {url}") == 1
    err = stderr_of(capsys)
    assert "pkg-1.0-cp311-cp311-win_amd64.whl is not usable on target x86_64-manylinux_2_28-cp311" in err
    assert not (tmp_path / "pylock.toml").exists()
    # with a marker the URL applies to the targets it suits only
    rc = lock(tmp_path, index_server, f"pkg @ {url} ; sys_platform == 'win32'", "lib",
              "--profile", "rhel8-py311", "--profile", "windows-py311", target=())
    assert rc == 0
    lk = locked(tmp_path)
    assert versions(lk, "rhel8-py311") == {"lib": "1.0"}
    assert wheels(lk, "windows-py311") == {"lib": "lib-1.0-py3-none-any.whl", "pkg": "pkg-1.0-cp311-cp311-win_amd64.whl"}


def test_direct_url_conflicting_with_a_dependency_pin_fails(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("pkg", "1.0", index="files"), W("pkg", "2.0"), W("app", "1.0", deps=["pkg>=2"])])
    url = index_server.file_url("files", "pkg-1.0-py3-none-any.whl")
    assert lock(tmp_path, index_server, "app", f"pkg @ {url}") == 1
    assert not (tmp_path / "pylock.toml").exists()


# ---------------------------------------------------------------------------------------------
# several targets in one lock


def test_multi_target_lock(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [
        W("app", "1.0", deps=["common", "winonly; sys_platform == 'win32'", "armonly; platform_machine == 'aarch64'"]),
        W("common", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64"),
        W("common", "1.0", tag="cp311-cp311-manylinux_2_17_aarch64"),
        W("common", "1.0", tag="cp311-cp311-win_amd64"),
        W("winonly", "1.0"), W("armonly", "1.0"),
        # the newest release has a wheel for Windows only: Linux targets stay on 1.0
        W("app", "2.0", tag="cp311-cp311-win_amd64", deps=["common", "winonly; sys_platform == 'win32'"]),
    ])
    arm = tmp_path / "arm.json"
    arm.write_text(json.dumps(profile_for_platform("aarch64-manylinux_2_28", "3.11.9", name="arm-box").to_dict()))
    assert "rhel8-py311" in PRESETS and "windows-py311" in PRESETS
    rc = lock(tmp_path, index_server, "app", "--profile", "rhel8-py311", "--profile", "windows-py311", "--profile", str(arm),
              target=())
    assert rc == 0
    with (tmp_path / "pylock.toml").open("rb") as f:
        data = tomllib.load(f)
    Pylock.from_dict(data)  # valid PEP 751
    assert len(data["environments"]) == 3
    lk = locked(tmp_path)
    assert [p.name for p in lk.profiles] == ["rhel8-py311", "windows-py311", "arm-box"]
    assert versions(lk, "rhel8-py311") == {"app": "1.0", "common": "1.0"}
    assert versions(lk, "windows-py311") == {"app": "2.0", "common": "1.0", "winonly": "1.0"}
    assert versions(lk, "arm-box") == {"app": "1.0", "common": "1.0", "armonly": "1.0"}
    assert wheels(lk, "rhel8-py311")["common"] == "common-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    assert wheels(lk, "windows-py311")["common"] == "common-1.0-cp311-cp311-win_amd64.whl"
    assert wheels(lk, "arm-box")["common"] == "common-1.0-cp311-cp311-manylinux_2_17_aarch64.whl"

    apps = [p for p in data["packages"] if p["name"] == "app"]
    assert sorted((p["version"], tuple(p["tool"]["wheelhouse"]["targets"])) for p in apps) == [
        ("1.0", ("arm-box", "rhel8-py311")), ("2.0", ("windows-py311",))]
    by_name = {p["name"]: p for p in data["packages"] if p["name"] != "app"}
    assert "marker" not in by_name["common"]
    assert by_name["common"]["tool"]["wheelhouse"]["targets"] == {
        "arm-box": "common-1.0-cp311-cp311-manylinux_2_17_aarch64.whl",
        "rhel8-py311": "common-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        "windows-py311": "common-1.0-cp311-cp311-win_amd64.whl",
    }
    assert len(by_name["common"]["wheels"]) == 3
    assert by_name["winonly"]["tool"]["wheelhouse"]["targets"] == {"windows-py311": "winonly-1.0-py3-none-any.whl"}
    assert by_name["armonly"]["tool"]["wheelhouse"]["targets"] == {"arm-box": "armonly-1.0-py3-none-any.whl"}

    # the per-package markers select exactly the targets that install the package
    from packaging.markers import Marker

    envs = {t.name: dict(t.markers) for t in lk.profiles}
    for pkg in [by_name["winonly"], by_name["armonly"], *apps]:
        marker = Marker(pkg["marker"])
        holds = {t for t, env in envs.items() if marker.evaluate(env)}
        assert holds == set(pkg["tool"]["wheelhouse"]["targets"])
    for env_marker in data["environments"]:
        assert sum(Marker(env_marker).evaluate(env) for env in envs.values()) == 1
    reqs = requirements_txt(tmp_path / "requirements.txt")
    assert reqs["winonly"][1] == by_name["winonly"]["marker"]
    assert len(reqs["common"][2]) == 3


def test_multi_target_per_wheel_dependencies(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [
        W("pkg", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64", deps=["x86dep"]),
        W("pkg", "1.0", tag="cp311-cp311-manylinux_2_17_aarch64", deps=["armdep"]),
        W("x86dep", "1.0"), W("armdep", "1.0"),
    ])
    x86 = tmp_path / "x86.json"
    arm = tmp_path / "arm.json"
    x86.write_text(json.dumps(profile_for_platform("x86_64-manylinux_2_28", "3.11", name="x86").to_dict()))
    arm.write_text(json.dumps(profile_for_platform("aarch64-manylinux_2_28", "3.11", name="arm").to_dict()))
    assert lock(tmp_path, index_server, "pkg", "--profile", str(x86), "--profile", str(arm), target=(), cache=False) == 0
    lk = locked(tmp_path)
    assert versions(lk, "x86") == {"pkg": "1.0", "x86dep": "1.0"}
    assert versions(lk, "arm") == {"pkg": "1.0", "armdep": "1.0"}


# ---------------------------------------------------------------------------------------------
# what goes over the wire


def _file_requests(server: IndexServer, index: str) -> list[Any]:
    return [r for r in server.requests if r.path.startswith(f"/{index}/files/")]


def test_range_reads_without_metadata_files(index_server: IndexServer, tmp_path: Path) -> None:
    index_server.add_index("html", formats=("html",), metadata_files=False)
    publish(index_server, [W("app", "1.0", deps=["lib>=2"], index="html"), W("lib", "2.0", index="html"),
                           W("lib", "1.0", index="html")])
    assert lock(tmp_path, index_server, "app", index="html", cache=False) == 0
    assert versions(locked(tmp_path)) == {"app": "1.0", "lib": "2.0"}
    files = _file_requests(index_server, "html")
    assert files, "metadata must have been read from the wheels"
    assert all(r.range is not None and r.status == 206 for r in files), [(r.path, r.range, r.status) for r in files]
    assert not any(r.path.endswith(".metadata") for r in files)
    assert {r.path.rsplit("/", 1)[1] for r in files} == {"app-1.0-py3-none-any.whl", "lib-2.0-py3-none-any.whl"}
    for r in files:  # a tiny wheel fits in one tail read: never more bytes than the file has
        assert r.bytes_sent <= (index_server.root / "html" / "files" / r.path.rsplit("/", 1)[1]).stat().st_size


def test_metadata_files_used_when_offered(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("app", "1.0", deps=["lib"]), W("lib", "1.0")])
    assert lock(tmp_path, index_server, "app") == 0
    files = _file_requests(index_server, "main")
    assert sorted(r.path.rsplit("/", 1)[1] for r in files) == ["app-1.0-py3-none-any.whl.metadata",
                                                                "lib-1.0-py3-none-any.whl.metadata"]


def test_json_is_asked_for_and_html_accepted(index_server: IndexServer, tmp_path: Path) -> None:
    index_server.add_index("json", formats=("json",))
    index_server.add_index("html", formats=("html",))
    publish(index_server, [W("app", "1.0", deps=["lib"], index="json"), W("lib", "1.0", index="html")])
    rc = lock(tmp_path, index_server, "app", "--extra-index-url", index_server.index_url("json"), index="html")
    assert rc == 0
    assert versions(locked(tmp_path)) == {"app": "1.0", "lib": "1.0"}
    pages = [r for r in index_server.requests if "/simple/" in r.path]
    assert pages
    for r in pages:
        assert JSON_TYPE in r.headers["accept"]
        q_json = re.search(re.escape(JSON_TYPE) + r"(?:\s*;\s*q=([\d.]+))?", r.headers["accept"])
        assert q_json and float(q_json.group(1) or 1) >= 0.5  # JSON is preferred, not merely tolerated
    served = {r.path: r.response_headers.get("Content-Type", "") for r in pages if r.status == 200}
    assert served["/json/simple/app/"].startswith(JSON_TYPE)
    assert served["/html/simple/lib/"].startswith("text/html")


@pytest.mark.parametrize("refresh", [True, False], ids=["refresh", "page-ttl"])
def test_warm_cache_only_revalidates_pages(index_server: IndexServer, tmp_path: Path, refresh: bool) -> None:
    """Metadata is cached for good (keyed by the file's hash); pages are revalidated, or with the
    default page reuse window not even that."""
    index_server.add_index("html", formats=("html",), metadata_files=False)
    publish(index_server, [W("app", "1.0", deps=["lib", "other"]), W("lib", "1.0"), W("other", "1.0", index="html"),
                           W("other", "0.9", index="html")])
    args = ("app", "--extra-index-url", index_server.index_url("html"), *(["--refresh"] if refresh else []))
    assert lock(tmp_path, index_server, *args) == 0
    first = (tmp_path / "pylock.toml").read_bytes()
    assert any(r.range for r in index_server.requests) and any(r.path.endswith(".metadata") for r in index_server.requests)
    found_pages = {r.path for r in index_server.requests if "/simple/" in r.path and r.status == 200}
    assert found_pages == {"/main/simple/app/", "/main/simple/lib/", "/html/simple/other/"}
    bodies = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "pages").rglob("*.body") if p.stat().st_size}  # not 404s
    index_server.clear_log()
    assert lock(tmp_path, index_server, *args) == 0
    assert (tmp_path / "pylock.toml").read_bytes() == first
    assert bodies and all(p.stat().st_mtime_ns == t for p, t in bodies.items()), "a 304 must not rewrite the page body"
    second = index_server.requests
    for r in second:
        assert "/simple/" in r.path, f"unexpected request {r.path}"
        assert r.range is None
    revalidated = {r.path for r in second if r.status == 304}
    assert revalidated == (found_pages if refresh else set()), "cached pages are revalidated (304) only with --refresh"
    assert all("if-none-match" in r.headers for r in second if r.path in found_pages)
    # the only other requests are the lookups that found nothing (404s are not cached)
    assert {r.status for r in second if r.path not in found_pages} <= {404}


# ---------------------------------------------------------------------------------------------
# errors a user can cause


def test_no_compatible_wheel(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("fastlib", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64"),
                           W("fastlib", "1.9", tag="cp312-cp312-win_amd64"),
                           W("app", "1.0", deps=["fastlib>=1.9"])])
    assert lock(tmp_path, index_server, "app") == 1
    err = stderr_of(capsys)
    assert "Traceback" not in err
    assert "fastlib has no file usable on target x86_64-manylinux_2_28-cp311" in err
    assert re.search(r"2\.0\s+cp312\s+manylinux_2_17_x86_64", err), err
    assert re.search(r"1\.9\s+cp312\s+win_amd64", err), err
    assert "CPython 3.11.0" in err and "cp311" in err and "manylinux_2_28_x86_64" in err  # what the target needs
    assert not (tmp_path / "pylock.toml").exists()
    assert not (tmp_path / "requirements.txt").exists()


def test_explain_prints_near_misses(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("fastlib", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64"),
                           W("fastlib", "1.5", tag="cp311-cp311-manylinux_2_17_x86_64", rp=">=3.11.4")])
    rc = main(["explain", "fastlib", "--index-url", index_server.index_url("main"), "--cache-dir", str(tmp_path / "cache"), *LINUX])
    out = capsys.readouterr().out
    assert rc == 0  # the project exists; nothing usable is what the report says
    assert "usable: none" in out
    assert "near misses" in out
    assert "fastlib-2.0-cp312-cp312-manylinux_2_17_x86_64.whl: built for cp312-cp312; the target runs CPython 3.11.0" in out
    assert "fastlib-1.5-cp311-cp311-manylinux_2_17_x86_64.whl: requires Python >=3.11.4" in out
    assert out.index("fastlib-2.0") < out.index("fastlib-1.5")  # newest first

    capsys.readouterr()
    rc = main(["explain", "fastlib", "--index-url", index_server.index_url("main"), "--no-cache",
               "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11.4"])
    out = capsys.readouterr().out
    assert "usable: 1 versions, newest 1.5 via fastlib-1.5-cp311-cp311-manylinux_2_17_x86_64.whl" in out


def test_explain_unknown_project(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("lib", "1.0")])
    rc = main(["explain", "nope", "--index-url", index_server.index_url("main"), "--no-cache", *LINUX])
    assert rc == 1
    assert "no configured index has this project" in capsys.readouterr().out


def test_unsatisfiable_conflict(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("a", "1.0", deps=["c==1.0"]), W("b", "1.0", deps=["c==2.0"]), W("c", "1.0"), W("c", "2.0")])
    assert lock(tmp_path, index_server, "a", "b") == 1
    err = stderr_of(capsys)
    assert "a 1.0 requires c==1.0" in err
    assert "b 1.0 requires c==2.0" in err
    assert "Traceback" not in err
    assert not (tmp_path / "pylock.toml").exists()
    assert not (tmp_path / "requirements.txt").exists()


def test_unknown_project(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("app", "1.0", deps=["missing-dep"])])
    assert lock(tmp_path, index_server, "app", cache=False) == 1
    err = stderr_of(capsys)
    assert "app 1.0 requires missing-dep" in err and "no index has a project named 'missing-dep'" in err
    assert not (tmp_path / "pylock.toml").exists()


def test_failed_lock_keeps_the_previous_lock(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("lib", "1.0")])
    assert lock(tmp_path, index_server, "lib") == 0
    before = (tmp_path / "pylock.toml").read_bytes()
    assert lock(tmp_path, index_server, "lib>=2") == 1
    assert (tmp_path / "pylock.toml").read_bytes() == before


def test_metadata_cache_cannot_be_poisoned_by_another_index(index_server: IndexServer, tmp_path: Path) -> None:
    """A hostile index that claims a real file's sha256 must not plant metadata for later locks."""
    from indexserver import Response

    index_server.add_index("good")
    index_server.add_index("evil", formats=("html",), metadata_files=False)
    real = index_server.add_wheel("good", "app", "1.0")
    fake = index_server.add_wheel("evil", "app", "1.0", requires_dist=["malware"])
    index_server.add_wheel("evil", "malware", "1.0")
    page = f'<a href="{fake.url}#sha256={real.sha256}">{fake.filename}</a>'.encode()

    def lie(req: Any) -> Any:
        if req.path.startswith("/evil/simple/app/"):
            return Response(200, {"Content-Type": "text/html"}, page)
        return None

    index_server.set_fault(lie)
    cache = str(tmp_path / "cache")
    out = tmp_path / "evil"
    out.mkdir()
    assert main(["lock", "app", "--python-platform", "linux", "--python-version", "3.11", "--index-url",
                 index_server.index_url("evil"), "--cache-dir", cache, "-o", str(out / "pylock.toml"), "-q"]) == 0
    assert "malware" in versions(read_lock(out / "pylock.toml"))
    assert main(["lock", "app", "--python-platform", "linux", "--python-version", "3.11", "--index-url",
                 index_server.index_url("good"), "--cache-dir", cache, "-o", str(tmp_path / "pylock.toml"), "-q"]) == 0
    assert versions(locked(tmp_path)) == {"app": "1.0"}


def test_not_found_answers_are_cached_too(index_server: IndexServer, tmp_path: Path) -> None:
    """Within the page TTL a second lock does not ask a higher-priority index again for a project it lacks."""
    index_server.add_index("main")
    index_server.add_index("private")
    index_server.add_wheel("main", "app", "1.0")
    index_server.add_wheel("private", "internal", "1.0")
    args = ["app", "--extra-index-url", index_server.index_url("private")]
    assert lock(tmp_path, index_server, *args) == 0
    assert any(r.path.startswith("/private/simple/app/") and r.status == 404 for r in index_server.requests)
    index_server.clear_log()
    assert lock(tmp_path, index_server, *args) == 0
    assert index_server.requests == []
    index_server.clear_log()
    assert lock(tmp_path, index_server, *args, "--refresh") == 0
    assert any(r.path.startswith("/private/simple/app/") for r in index_server.requests)


def test_explain_points_at_the_explicit_index_that_has_it(index_server: IndexServer, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("acme-core", "1.0", index="private"), W("onlyprivate", "1.0", index="private"),
                           W("lib", "1.0", index="main")])
    rc = main(["explain", "onlyprivate", "--python-platform", "linux", "--python-version", "3.11", "--no-cache",
               "--index-url", index_server.index_url("main"), "--index", f"private={index_server.index_url('private')}",
               "--pin", "acme-*=private"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "index private has 1 files of onlyprivate, but it is explicit and serves only acme-*" in out
    assert "--pin 'onlyprivate=private'" in out


def test_range_reads_that_are_not_a_zip_fall_back_to_the_whole_wheel(index_server: IndexServer, tmp_path: Path) -> None:
    """A proxy that garbles ranged answers costs a whole-wheel download (hash-checked), not a failed lock."""
    from indexserver import Response

    index_server.add_index("main", formats=("html",), metadata_files=False)
    info = index_server.add_wheel("main", "app", "1.0", requires_dist=["dep"])
    index_server.add_wheel("main", "dep", "1.0")

    def garble(req: Any) -> Any:
        rng = req.headers.get("range", "")
        if rng and "/files/app-" in req.path:
            n = min(info.size, 4096)
            return Response(206, {"Content-Range": f"bytes {info.size - n}-{info.size - 1}/{info.size}"}, b"\0" * n)
        return None

    index_server.set_fault(garble)
    assert lock(tmp_path, index_server, "app", cache=False) == 0
    assert versions(locked(tmp_path)) == {"app": "1.0", "dep": "1.0"}
    assert any(r.path.endswith(info.filename) and not r.range and r.status == 200 for r in index_server.requests)
