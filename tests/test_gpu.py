"""The GPU policy (``bundler.gpu``): its tables, checked against NVIDIA's own table; the loader's
validation; ``auto`` over drivers and Pythons; backend names; and that the stages which only read
recipes and locks never load the package.

The end-to-end torch tests (loopback PyTorch-shaped indexes, lock, explain, diagnostics) are in
test_torch.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from bundler import inputs
from bundler.errors import BadInput
from bundler.gpu import backend as gpu
from bundler.gpu import cuda
from bundler.inputs import parse_backend
from bundler.profile import Profile, profile_for_platform


def test_reading_recipes_and_locks_does_not_load_the_gpu_policy() -> None:
    """lock, fetch and pack validate a backend name (through inputs) without importing bundler.gpu."""
    code = ("import sys, bundler.fetch, bundler.pack, bundler.lock; "
            "loaded = [m for m in sys.modules if m.startswith('bundler.gpu')]; assert not loaded, loaded")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_backend_names_are_one_function() -> None:
    assert gpu.parse_backend is inputs.parse_backend


def test_recipe_key_is_validated(tmp_path: Path) -> None:
    from bundler.inputs import load_recipe

    path = tmp_path / "r.toml"
    path.write_text('torch-backend = "cuda12"\n')
    with pytest.raises(BadInput, match=r"r.toml: torch-backend: unknown torch backend 'cuda12'"):
        load_recipe(path)
    path.write_text('torch-backend = "CU126"\n')
    assert load_recipe(path).torch_backend == "cu126"


# ---------------------------------------------------------------------------------------------
# the tables against NVIDIA's

# Transcribed by hand, for this test, from NVIDIA's CUDA Toolkit Release Notes (the CUDA 13.1 edition),
# Table 3 "CUDA Toolkit and Corresponding Driver Versions",
# https://docs.nvidia.com/cuda/cuda-toolkit-release-notes/index.html, as NVIDIA prints it: toolkit,
# Linux x86_64 driver, Windows x86_64 driver. Not copied from tables.toml; the Update rows are there
# to prove that the GA row of each release is the one used.
NVIDIA_TABLE_3 = [
    ("CUDA 13.1", ">=590.44.01", "N/A"),
    ("CUDA 13.0 Update 2", ">=580.95.05", "N/A"),
    ("CUDA 13.0 GA", ">=580.65.06", "N/A"),
    ("CUDA 12.9 Update 1", ">=575.57.08", ">=576.57"),
    ("CUDA 12.9 GA", ">=575.51.03", ">=576.02"),
    ("CUDA 12.8 Update 1", ">=570.124.06", ">=572.61"),
    ("CUDA 12.8 GA", ">=570.26", ">=570.65"),
    ("CUDA 12.6 Update 3", ">=560.35.05", ">=561.17"),
    ("CUDA 12.6 GA", ">=560.28.03", ">=560.76"),
    ("CUDA 12.5 GA", ">=555.42.02", ">=555.85"),
    ("CUDA 12.4 Update 1", ">=550.54.15", ">=551.78"),
    ("CUDA 12.4 GA", ">=550.54.14", ">=551.61"),
    ("CUDA 12.3 GA", ">=545.23.06", ">=545.84"),
    ("CUDA 12.2 Update 2", ">=535.104.05", ">=537.13"),
    ("CUDA 12.2 GA", ">=535.54.03", ">=536.25"),
    ("CUDA 12.1 GA", ">=530.30.02", ">=531.14"),
    ("CUDA 12.0 Update 1", ">=525.85.12", ">=528.33"),
    ("CUDA 12.0 GA", ">=525.60.13", ">=527.41"),
    ("CUDA 11.8 GA", ">=520.61.05", ">=520.06"),
    ("CUDA 11.7 Update 1", ">=515.48.07", ">=516.31"),
    ("CUDA 11.7 GA", ">=515.43.04", ">=516.01"),
    ("CUDA 11.6 GA", ">=510.39.01", ">=511.23"),
    ("CUDA 11.5 GA", ">=495.29.05", ">=496.04"),
    ("CUDA 11.4 Update 4", ">=470.82.01", ">=472.50"),
    ("CUDA 11.4.0 GA", ">=470.42.01", ">=471.11"),
    ("CUDA 11.3.0 GA", ">=465.19.01", ">=465.89"),
    ("CUDA 11.2.0 GA", ">=460.27.03", ">=460.82"),
    ("CUDA 11.1 GA", ">=455.23", ">=456.38"),
    ("CUDA 11.0.2 GA", ">= 450.51.05", ">= 451.48"),
    ("CUDA 10.2.89", ">= 440.33", ">= 441.22"),
    ("CUDA 10.1 (10.1.105 general release, and updates)", ">= 418.39", ">= 418.96"),
    ("CUDA 10.0.130", ">= 410.48", ">= 411.31"),
    ("CUDA 9.2 (9.2.88)", ">= 396.26", ">= 397.44"),
    ("CUDA 9.1 (9.1.85)", ">= 390.46", ">= 391.29"),
    ("CUDA 9.0 (9.0.76)", ">= 384.81", ">= 385.54"),
    ("CUDA 8.0 (8.0.44)", ">= 367.48", ">= 369.30"),
]


def _nvidia(cell: str) -> tuple[int, ...] | None:
    return None if cell == "N/A" else cuda.parse_driver(cell.lstrip(">= "))


@pytest.mark.parametrize(("toolkit", "linux", "windows"), NVIDIA_TABLE_3, ids=[row[0] for row in NVIDIA_TABLE_3])
def test_toolkit_drivers_match_nvidias_table(toolkit: str, linux: str, windows: str) -> None:
    m = re.match(r"CUDA (\d+)\.(\d+)", toolkit)
    assert m is not None
    release = (int(m.group(1)), int(m.group(2)))
    if "Update" in toolkit:
        # An update may need a newer driver; the GA row decides, so every update's driver also counts as supporting it.
        assert cuda.toolkit_driver(release, "linux") < _nvidia(linux)
        assert cuda.supported_cuda(_nvidia(linux), "linux") == release
        return
    assert cuda.toolkit_driver(release, "linux") == _nvidia(linux)
    assert cuda.supported_cuda(_nvidia(linux), "linux") == release  # exactly the GA driver runs it
    if windows == "N/A":  # no Windows driver bundled with 13.x: the minor-compatibility minimum stands in
        assert cuda.toolkit_driver(release, "windows") == cuda.compat_driver(release, "windows") == (580,)
    else:
        assert cuda.toolkit_driver(release, "windows") == _nvidia(windows)


@pytest.mark.parametrize(("release", "linux", "windows"), [
    ((13, 0), "580", "580"), ((12, 8), "525.60.13", "528.33"), ((12, 1), "525.60.13", "528.33"), ((11, 8), "450.80.02", "452.39"),
    ((10, 2), "440.33", "441.22"),  # no minor version compatibility before CUDA 11
])
def test_minor_version_compatibility_table(release: tuple[int, int], linux: str, windows: str) -> None:
    assert cuda.compat_driver(release, "linux") == cuda.parse_driver(linux)
    assert cuda.compat_driver(release, "windows") == cuda.parse_driver(windows)


@pytest.mark.parametrize("os", ["linux", "windows"])
def test_newer_cuda_never_needs_an_older_driver(os: str) -> None:
    """A property of NVIDIA's tables that a typo in a row would break."""
    rows = sorted(cuda.tables().toolkit)
    drivers = [cuda.toolkit_driver(c, os) for c in rows]
    assert all(a is not None and b is not None and a <= b for a, b in zip(drivers, drivers[1:])), list(zip(rows, drivers))
    for c in rows:
        full, compat = cuda.toolkit_driver(c, os), cuda.compat_driver(c, os)
        # NVIDIA's own exception: the GA driver of a major version's first release can predate that
        # major's minor version compatibility minimum (11.0: 450.51.05 < 450.80.02; 12.0 on
        # Windows: 527.41 < 528.33, the driver of 12.0 Update 1).
        assert full is not None and compat is not None and (compat <= full or c[1] == 0)


# ---------------------------------------------------------------------------------------------
# the loader


SHIPPED = resources.files("bundler.gpu").joinpath("tables.toml").read_text(encoding="utf-8")


def test_the_shipped_tables_load_once() -> None:
    assert cuda.tables() is cuda.tables()
    t = cuda.parse_tables(SHIPPED)
    assert t.toolkit[(12, 6)] == ("560.28.03", "560.76") and t.compat[12] == ("525.60.13", "528.33")
    assert t.releases[(2, 5)] == cuda.Release((3, 9), (3, 13), ("cu118", "cu121", "cu124"))
    with pytest.raises(TypeError):
        t.toolkit[(99, 0)] = ("1", "1")  # type: ignore[index]


BROKEN = [
    # (replace this, with this, the error names)
    ('linux = "575.51.03"', 'linux = "575.5x.03"', r"toolkit-drivers\.rows\[3\]\.linux: '575\.5x\.03' is not a driver version"),
    ('cuda = "12.8"', 'cuda = "12.9"', r"toolkit-drivers\.rows\[4\]\.cuda: a second row for \(12, 9\)"),
    ('cuda = "12.8"', "cuda = 12.8", r"toolkit-drivers\.rows\[4\]\.cuda: 12\.8 is not a 'MAJOR\.MINOR' version string"),
    ('{ cuda = "13.2", linux = "595.45.04" }', '{ cuda = "13.2" }', r"toolkit-drivers\.rows\[0\] lacks linux"),
    ('{ cuda = "13.2", linux = "595.45.04" }', '{ cuda = "13.2", linux = "595.45.04", linx = "1" }',
     r"toolkit-drivers\.rows\[0\] has unknown keys \['linx'\]"),
    ('    { cuda-major = 13, linux = "580", windows = "580" },\n', "",
     r"toolkit-drivers\.rows\[0\]\.windows: missing, and compat-drivers has no row for CUDA 13"),
    ("cuda-major = 11,", "cuda-major = 10,", r"compat-drivers\.rows\[2\]\.cuda-major: 10 is not a CUDA major version >= 11"),
    ('python = ["3.9", "3.13"], cuda-builds = ["cu126", "cu128", "cu129"]', 'python = ["3.13", "3.9"], cuda-builds = ["cu126"]',
     r"torch-releases\.rows\[6\]\.python: the lowest Python 3\.13 is above the highest 3\.9"),
    ('cuda-builds = ["cu126", "cu128", "cu129"]', 'cuda-builds = ["cu126", "cuda12.8"]',
     r"torch-releases\.rows\[6\]\.cuda-builds\[1\]: 'cuda12\.8' is not a CUDA build name"),
    ('source = "https://github.com/pytorch/pytorch', 'source = "github.com/pytorch/pytorch',
     r"torch-releases\.source: the source must be an https:// URL"),
    ("source = \"https://github.com/astral-sh/uv/tree/main/crates/uv-torch\" },\n    { cuda-major = 11",
     "source = \"see uv\" },\n    { cuda-major = 11", r"compat-drivers\.rows\[1\]\.source: the source must be an https:// URL"),
    ("[torch-releases]", "[torch-release]", r"unknown tables \['torch-release'\]"),
    ("rows = [\n    { cuda = ", "rows = [\n    { cuda = = ", r"not valid TOML"),
]


@pytest.mark.parametrize(("old", "new", "error"), BROKEN, ids=[b[2][:40] for b in BROKEN])
def test_a_malformed_row_is_a_clear_error(old: str, new: str, error: str) -> None:
    assert old in SHIPPED
    with pytest.raises(cuda.TableError, match=r"^tables\.toml: .*" + error):
        cuda.parse_tables(SHIPPED.replace(old, new, 1))


# ---------------------------------------------------------------------------------------------
# auto, drivers, names and URLs


def _profile(platform: str, py: str, driver: str | None, *, captured: bool = True) -> Profile:
    p = profile_for_platform(platform, py)
    return replace(p, facts=replace(p.facts, nvidia_driver=driver, source="capture" if captured else "platform"))


LINUX, WINDOWS = "x86_64-manylinux_2_28", "x86_64-pc-windows-msvc"
AUTO = [
    # (platform, python, driver, torch specifier, backend, in the reason)
    (LINUX, "3.11", None, None, "cpu", "reports no NVIDIA driver"),
    ("aarch64-apple-darwin", "3.12", None, None, "cpu", "macOS, where torch has no CUDA builds"),
    (LINUX, "3.11", "390.48", None, "cpu", "too old for every CUDA build"),
    (LINUX, "3.9", "470.82.01", None, "cu113", "runs CUDA up to 11.4; cu113 is the newest CUDA build of torch 1.12"),
    (LINUX, "3.11", "470.82.01", None, "cu118", "through CUDA minor version compatibility only"),  # warning, see below
    (LINUX, "3.11", "515.65.01", None, "cu117", "runs CUDA up to 11.7; cu117 is the newest CUDA build of torch 2.0"),
    (LINUX, "3.11", "525.85.12", None, "cu118", "runs CUDA up to 12.0; cu118 is the newest CUDA build of torch 2.7"),
    (LINUX, "3.11", "535.104.05", None, "cu121", "runs CUDA up to 12.2; cu121 is the newest CUDA build of torch 2.5"),
    (LINUX, "3.11", "550.54.15", None, "cu124", "runs CUDA up to 12.4; cu124 is the newest CUDA build of torch 2.6"),
    (LINUX, "3.11", "560.35.03", None, "cu126", "runs CUDA up to 12.6; cu126 is the newest CUDA build of torch 2.14"),
    (LINUX, "3.9", "570.124.06", None, "cu128", "runs CUDA up to 12.8; cu128 is the newest CUDA build of torch 2.8"),
    (LINUX, "3.9", "575.57.08", None, "cu129", "runs CUDA up to 12.9; cu129 is the newest CUDA build of torch 2.8"),
    (LINUX, "3.12", "580.95.05", None, "cu130", "runs CUDA up to 13.0; cu130 is the newest CUDA build of torch 2.14"),
    (LINUX, "3.12", "595.58.03", None, "cu132", "runs CUDA up to 13.2"),
    (LINUX, "3.11", "570.124.06", "==2.3.0", "cu121", "cu121 is the newest CUDA build of torch 2.3"),
    (LINUX, "3.11", "570.124.06", ">=2.6,<2.8", "cu128", "cu128 is the newest CUDA build of torch 2.7"),
    (LINUX, "3.11", "535.104.05", "==2.3.0+cu118", "cu118", "names the cu118 build"),
    (WINDOWS, "3.11", "536.25", None, "cu121", "(Windows) runs CUDA up to 12.2"),
    (LINUX, "3.11", "531.00", None, "cu121", "(Linux) runs CUDA up to 12.1"),  # Linux: 12.1 needs 530.30.02
    (WINDOWS, "3.11", "531.00", None, "cu118", "(Windows) runs CUDA up to 12.0"),  # Windows: 12.1 needs 531.14
    (WINDOWS, "3.11", "31.0.15.6081", None, "cu126", "runs CUDA up to 12.6"),  # Windows' own spelling of 560.81
    (LINUX, "3.11", None, None, "cpu", "unknown (not a captured profile)"),
]


@pytest.mark.parametrize(("platform", "py", "driver", "spec", "backend", "why"), AUTO,
                         ids=[f"{a[0].split('-')[0]}-{a[0].split('-')[1][:3]}-py{a[1]}-{a[2]}-{a[3]}-{i}" for i, a in enumerate(AUTO)])
def test_auto_backend(platform: str, py: str, driver: str | None, spec: str | None, backend: str, why: str) -> None:
    captured = not why.startswith("unknown")
    choice = gpu.choose_backend("auto", [_profile(platform, py, driver, captured=captured)],
                                  torch_spec=SpecifierSet(spec) if spec is not None else None)
    assert choice.backend == backend
    assert why in choice.reason + " ".join(choice.warnings)
    assert choice.index_url == f"https://download.pytorch.org/whl/{backend}/"


def test_auto_picks_the_oldest_build_for_targets_with_different_drivers() -> None:
    a, b = _profile(LINUX, "3.11", "560.35.03"), _profile(LINUX, "3.12", "535.104.05")
    choice = gpu.choose_backend("auto", [replace(a, name="new"), replace(b, name="old")])
    assert choice.backend == "cu121" and "using cu121, the oldest of them, which every target's driver runs" in choice.reason


@pytest.mark.parametrize(("text", "os", "parsed"), [("535.104.05", "linux", (535, 104, 5)), ("551.61", "windows", (551, 61)),
                                                   ("31.0.15.5161", "windows", (551, 61)), ("", "linux", None), ("n/a", "linux", None)])
def test_parse_driver(text: str, os: str, parsed: tuple[int, ...] | None) -> None:
    assert cuda.parse_driver(text, os) == parsed


@pytest.mark.parametrize(("backend", "url"), [("cpu", "https://download.pytorch.org/whl/cpu/"), ("cu126", "https://download.pytorch.org/whl/cu126/")])
def test_index_urls(backend: str, url: str) -> None:
    assert gpu.index_url(backend) == url
    assert gpu.index_url(backend, nightly=True) == url.replace("/whl/", "/whl/nightly/")


def test_family_patterns() -> None:
    assert gpu.in_family("torch") and gpu.in_family("pytorch_triton") and gpu.in_family("nvidia-cudnn-cu12")
    assert gpu.in_family("nvidia-cublas-cu11") and not gpu.in_family("nvidia-ml-py") and not gpu.in_family("numpy")
    assert "triton" not in gpu.family_patterns("cpu") and "triton" in gpu.family_patterns("cu126")


@pytest.mark.parametrize("name", ["auto", "cpu", "cu118", "cu126", "CU128", " cu92 "])
def test_backend_names(name: str) -> None:
    assert parse_backend(name) == name.strip().lower()


@pytest.mark.parametrize("name", ["gpu", "cuda", "cu1", "rocm6.2", "cu12.6"])
def test_bad_backend_names(name: str) -> None:
    with pytest.raises(BadInput, match="unknown torch backend"):
        parse_backend(name)
