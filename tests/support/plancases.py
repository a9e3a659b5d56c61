"""The resolver cases as data (``W`` wheels, ``Case`` scenarios) and the loopback helpers that
lock them through ``main(["lock", ...])``; shared by test_plan and test_repository."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bundler.cli import main
from bundler.lock import Lock, read_lock
from .indexserver import IndexServer
from .wheelgen import make_wheel

LINUX = ("--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11")
LINUX_NAME = "x86_64-manylinux_2_28-cp311"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


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
    # PEP 592 and uv: only the user's own pin admits a yanked file, never a dependency's
    Case("yanked-transitive-pin", [W("app", "1.0", deps=["lib==2.0"]), W("lib", "1.0"), W("lib", "2.0", yanked=True)],
         ["app"], None),
    Case("yanked-transitive-pin-user-pins-too", [W("app", "1.0", deps=["lib==2.0"]), W("lib", "1.0"), W("lib", "2.0", yanked=True)],
         ["app", "lib==2.0"], {"app": "1.0", "lib": "2.0"}),
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

