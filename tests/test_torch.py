"""PyTorch backends (``bundler.gpu``) and the torch stack end to end, against loopback indexes shaped
like the PyTorch ones.

The loopback server plays PyPI (index ``pypi``: JSON pages with upload times) and a mirror of
``download.pytorch.org/whl`` (indexes ``cpu``, ``cu121``, ``cu128``, ``nightly-cu124``: HTML only and no
upload times, as the real ones): a request for ``/whl/cu121/torch/`` is redirected to the index
``cu121``, ``/whl/nightly/cu124/...`` to ``nightly-cu124``. The PyTorch-shaped indexes publish local
versions (``2.3.0+cu121``/``+cpu``) on Linux x86_64 and Windows, plain ``2.3.0`` on aarch64, stale (and
one hostile higher) copies of numpy, jinja2 and certifi, CUDA libraries and triton; the nightly one a
``2.5.0.dev20240801+cu124`` that pins ``pytorch-triton==3.0.0+dedb7bdf33``. PyPI has newer torch and
triton builds, newer CUDA libraries and a hostile ``pytorch-triton 99.0``: none may be picked.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest

from bundler.cli import main
from bundler.app import resolve as app_resolve
from bundler.job import build_job
from bundler.errors import BadInput, BundlerError, NoCompatibleFile, ResolutionImpossible, UsageError
from bundler.gpu import checks
from bundler.http import make_client
from bundler.httpcache import PlannerCache
from bundler.lock import read_lock
from bundler.plan import Pin, Plan, plan
from bundler.profile import Profile, profile_for_platform
from bundler.repository import Repository
from support.indexserver import IndexServer, Response
from support.hermetic import hermetic
from support.torchindex import AARCH64, WIN, X86, add_pytorch_indexes, base


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, "MACOSX_DEPLOYMENT_TARGET", "WHEELHOUSE_PYTORCH_INDEX")


@pytest.fixture
def indexes(index_server: IndexServer) -> Iterator[IndexServer]:
    """PyPI plus a download.pytorch.org-shaped mirror (see the module docstring)."""
    add_pytorch_indexes(index_server)
    yield index_server


def profile_file(tmp_path: Path, platform: str, version: str, driver: str | None, name: str, *, captured: bool = True) -> str:
    """A profile as ``capture_profile.py`` writes it on the target (facts.nvidia-driver when there is one)."""
    p = profile_for_platform(platform, version, name=name)
    p = replace(p, facts=replace(p.facts, nvidia_driver=driver, source="capture" if captured else "platform"))
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(p.to_dict()))
    return str(path)


def job(server: IndexServer, reqs: list[str], *, backend: str | None, target: tuple[str, str] | None = ("x86_64-manylinux_2_28", "3.11"),
        profiles: tuple[str, ...] = (), pre: bool = False, exclude_newer: str | None = None, extra: tuple[str, ...] = (),
        index_url: str | None = None) -> Any:
    return build_job(positional=reqs, req_files=[], constraint_files=[], profile_specs=list(profiles),
                     platform=target[0] if target else None, version=target[1] if target else None,
                     index_url=index_url or server.index_url("pypi"), extra_index_urls=list(extra), find_links=[], named=[], pins=[],
                     pre=pre, exclude_newer=exclude_newer, torch_backend=backend, torch_index=base(server))


def resolve(j: Any) -> Plan:
    client = make_client()
    repo = Repository(j.indexes, client, PlannerCache(None))
    try:
        return app_resolve(j, repo, bootstrap=False)
    finally:
        repo.close()
        client.close()


def files(p: Plan, i: int = 0) -> dict[str, str]:
    return {pin.name: pin.link.filename for pin in p.targets[i].pins}


def sources(p: Plan, i: int = 0) -> dict[str, str]:
    """``{name: index name}`` that supplied each pin."""
    return {pin.name: pin.link.index for pin in p.targets[i].pins}


# ---------------------------------------------------------------------------------------------
# the torch stack for Linux x86_64, Linux aarch64 and Windows on Python 3.10-3.12


COMMON = {"filelock": "filelock-3.13.1-py3-none-any.whl", "typing-extensions": "typing_extensions-4.9.0-py3-none-any.whl",
          "sympy": "sympy-1.12-py3-none-any.whl", "mpmath": "mpmath-1.3.0-py3-none-any.whl",
          "networkx": "networkx-3.2.1-py3-none-any.whl", "jinja2": "jinja2-3.1.4-py3-none-any.whl",
          "markupsafe": "markupsafe-2.1.5-py3-none-any.whl", "fsspec": "fsspec-2024.2.0-py3-none-any.whl",
          "numpy": "numpy-2.0.0-py3-none-any.whl", "pillow": "pillow-10.3.0-py3-none-any.whl",
          "certifi": "certifi-2024.2.2-py3-none-any.whl"}


def expected(backend: str, platform: str, py: str) -> dict[str, str]:
    cp = f"cp{py}-cp{py}"
    local = f"+{backend}"
    out = dict(COMMON)
    if platform.startswith("aarch64"):
        out |= {"torch": f"torch-2.3.0-{cp}-{AARCH64}.whl", "torchvision": f"torchvision-0.18.0-{cp}-linux_aarch64.whl",
                "torchaudio": f"torchaudio-2.3.0-{cp}-{AARCH64}.whl"}
        return out
    plat = WIN if "windows" in platform else X86
    out |= {"torch": f"torch-2.3.0{local}-{cp}-{plat}.whl", "torchvision": f"torchvision-0.18.0{local}-{cp}-{plat}.whl",
            "torchaudio": f"torchaudio-2.3.0{local}-{cp}-{plat}.whl"}
    if plat == WIN:
        out["mkl"] = "mkl-2021.4.0-py2.py3-none-win_amd64.whl"
    elif backend == "cu121":
        out |= {"triton": f"triton-2.3.0-{cp}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "nvidia-cublas-cu12": "nvidia_cublas_cu12-12.1.3.1-py3-none-manylinux1_x86_64.whl",
                "nvidia-cudnn-cu12": "nvidia_cudnn_cu12-8.9.2.26-py3-none-manylinux1_x86_64.whl"}
    return out


PLATFORMS = ("x86_64-manylinux_2_28", "aarch64-manylinux_2_28", "x86_64-pc-windows-msvc")


@pytest.mark.parametrize("backend", ["cu121", "cpu"])
@pytest.mark.parametrize("py", ["3.10", "3.11", "3.12"])
@pytest.mark.parametrize("platform", PLATFORMS)
def test_torch_stack_locks_the_expected_files(indexes: IndexServer, backend: str, platform: str, py: str) -> None:
    j = job(indexes, ["torch", "torchvision", "torchaudio", "certifi"], backend=backend, target=(platform, py))
    p = resolve(j)
    assert files(p) == expected(backend, platform, py.replace(".", ""))
    torch_index = f"pytorch-{backend}"
    family = {"torch", "torchvision", "torchaudio", "triton", "nvidia-cublas-cu12", "nvidia-cudnn-cu12"}
    assert {n: ix for n, ix in sources(p).items() if n in family} == {n: torch_index for n in files(p) if n in family}
    assert {n for n, ix in sources(p).items() if ix != torch_index} == set(COMMON) | ({"mkl"} if "windows" in platform else set())
    checks.check_variants(p.targets[0].pins)


def test_one_lock_for_three_platforms(indexes: IndexServer, tmp_path: Path) -> None:
    """Several targets in one job share the backend's index; each gets the build for its platform."""
    profs = tuple(profile_file(tmp_path, plat, "3.11", None, name, captured=False)
                  for plat, name in zip(PLATFORMS, ("linux", "arm", "win")))
    p = resolve(job(indexes, ["torch", "torchvision"], backend="cu121", target=None, profiles=profs))
    assert [files(p, i)["torch"] for i in range(3)] == [
        f"torch-2.3.0+cu121-cp311-cp311-{X86}.whl", f"torch-2.3.0-cp311-cp311-{AARCH64}.whl", f"torch-2.3.0+cu121-cp311-cp311-{WIN}.whl"]
    assert "nvidia-cublas-cu12" in files(p, 0) and "nvidia-cublas-cu12" not in files(p, 1) and "nvidia-cublas-cu12" not in files(p, 2)


def test_unsupported_python_is_explained(indexes: IndexServer) -> None:
    with pytest.raises(NoCompatibleFile) as e:
        resolve(job(indexes, ["torch"], backend="cu121", target=("x86_64-manylinux_2_28", "3.13")))
    assert "torch 2.3.0+cu121 has wheels for CPython 3.10-3.12; the target runs 3.13" in str(e.value)
    assert e.value.hint is not None and "--python-version 3.12" in e.value.hint


def test_unsupported_python_through_the_cli(indexes: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The recipe key ``torch-backend`` drives ``wheelhouse lock``; a failure leaves no lock behind."""
    monkeypatch.setenv("WHEELHOUSE_PYTORCH_INDEX", base(indexes))
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'requirements = ["torch", "torchvision"]\ntorch-backend = "cpu"\n'
                      f'[[targets]]\npython-platform = "x86_64-pc-windows-msvc"\npython-version = "3.13"\n'
                      f'[[index]]\nname = "pypi"\nurl = "{indexes.index_url("pypi")}"\n')
    assert main(["lock", str(recipe), "-o", str(tmp_path / "pylock.toml"), "--no-cache", "-q"]) == 1
    err = capsys.readouterr().err
    assert "torch 2.3.0+cpu has wheels for CPython 3.10-3.12; the target runs 3.13" in err and "Traceback" not in err
    assert not (tmp_path / "pylock.toml").exists()


def test_recipe_through_the_cli_writes_the_lock(indexes: IndexServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHEELHOUSE_PYTORCH_INDEX", base(indexes))
    recipe = tmp_path / "r.toml"
    recipe.write_text('requirements = ["torch==2.3.0", "torchvision", "torchaudio"]\ntorch-backend = "cu121"\n'
                      'exclude-newer = "2024-06-01T00:00:00Z"\n'
                      '[[targets]]\npython-platform = "x86_64-manylinux_2_28"\npython-version = "3.11"\n'
                      f'[[index]]\nname = "pypi"\nurl = "{indexes.index_url("pypi")}"\n')
    assert main(["lock", str(recipe), "-o", str(tmp_path / "pylock.toml"), "--no-cache", "-q"]) == 0
    lk = read_lock(tmp_path / "pylock.toml")
    got = {pkg.name: (pkg.version, wheel.url) for pkg, wheel in lk.for_target(lk.profiles[0].name)}
    assert got["torch"] == ("2.3.0+cu121", indexes.file_url("cu121", f"torch-2.3.0+cu121-cp311-cp311-{X86}.whl"))
    assert got["nvidia-cudnn-cu12"][1] == indexes.file_url("cu121", "nvidia_cudnn_cu12-8.9.2.26-py3-none-manylinux1_x86_64.whl")
    assert got["numpy"] == ("1.26.4", indexes.file_url("pypi", "numpy-1.26.4-py3-none-any.whl"))


def test_exclude_newer_admits_the_undated_pytorch_index_only(indexes: IndexServer) -> None:
    """The PyTorch indexes give no upload times: --exclude-newer cannot hold them back (their files are
    admitted), while it still holds back PyPI's newer files, and undated files of general indexes."""
    j = job(indexes, ["torch==2.3.0", "torchvision"], backend="cu121", exclude_newer="2024-06-01")
    assert any("--exclude-newer does not hold back torchvision: pin them with ==" in w for w in j.warnings)
    p = resolve(j)
    assert files(p)["torch"] == f"torch-2.3.0+cu121-cp311-cp311-{X86}.whl"
    assert files(p)["numpy"] == "numpy-1.26.4-py3-none-any.whl"  # numpy 2.0.0 was uploaded after the cutoff
    with pytest.raises(BundlerError):  # the same index as a general one: its undated files stay out
        resolve(job(indexes, ["torch==2.3.0"], backend=None, exclude_newer="2024-06-01", extra=(f"{base(indexes)}/cu121/",)))


# ---------------------------------------------------------------------------------------------
# index semantics: one explicit index for the family, nothing else from it


def test_stale_rehosted_copies_and_newer_public_builds_are_never_picked(indexes: IndexServer) -> None:
    p = resolve(job(indexes, ["torch", "torchvision", "numpy", "jinja2", "certifi", "triton", "nvidia-cublas-cu12"], backend="cu121"))
    f = files(p)
    assert (f["numpy"], f["jinja2"], f["certifi"]) == ("numpy-2.0.0-py3-none-any.whl", "jinja2-3.1.4-py3-none-any.whl",
                                                        "certifi-2024.2.2-py3-none-any.whl")
    assert f["torch"].startswith("torch-2.3.0+cu121-")  # not PyPI's 2.3.1
    assert f["triton"].startswith("triton-2.3.0-") and f["nvidia-cublas-cu12"].startswith("nvidia_cublas_cu12-12.1.3.1-")
    asked = {r.path for r in indexes.requests}
    assert not any(path.startswith("/cu121/simple/numpy") for path in asked)  # never even asked
    assert not any(path.startswith(("/pypi/simple/torch/", "/pypi/simple/triton/")) for path in asked)


def test_without_a_backend_the_general_pytorch_index_supplies_stale_copies(indexes: IndexServer) -> None:
    """The trap the backend avoids: as an --extra-index-url, the PyTorch index is searched first for everything."""
    j = job(indexes, ["torch==2.3.0+cu121", "numpy"], backend=None, extra=(f"{base(indexes)}/cu121/",))
    assert any("is a PyTorch index used as a general index" in w and "--torch-backend cu121" in w for w in j.warnings)
    assert files(resolve(j))["numpy"] == "numpy-9.9.9-py3-none-any.whl"


def test_nightly_takes_pytorch_triton_from_the_nightly_index(indexes: IndexServer) -> None:
    j = job(indexes, ["torch", "tritonlib"], backend="cu124", pre=True)
    assert j.torch is not None and j.torch.nightly and j.torch.index_url == f"{base(indexes)}/nightly/cu124/"
    p = resolve(j)
    f, src = files(p), sources(p)
    assert f["torch"] == f"torch-2.5.0.dev20240801+cu124-cp311-cp311-{X86}.whl"
    assert f["pytorch-triton"] == f"pytorch_triton-3.0.0+dedb7bdf33-cp311-cp311-{X86}.whl"  # not PyPI's 99.0
    assert src["pytorch-triton"] == src["torch"] == "pytorch-nightly-cu124"
    assert not any(r.path.startswith("/pypi/simple/pytorch-triton") for r in indexes.requests)


def test_pytorch_triton_is_never_taken_from_a_public_index(indexes: IndexServer) -> None:
    """Even when only a PyPI package asks for it through an open range, without torch: the backend's
    index owns the name, so PyPI's 99.0 is never a candidate (and PyPI is never asked)."""
    p = resolve(job(indexes, ["tritonlib"], backend="cu124", pre=True))
    assert files(p)["pytorch-triton"].startswith("pytorch_triton-3.0.0+dedb7bdf33-")
    with pytest.raises(ResolutionImpossible) as e:  # the cpu index has no pytorch-triton; PyPI's is no option
        resolve(job(indexes, ["tritonlib"], backend="cpu"))
    assert "no index has a project named 'pytorch-triton' (searched pytorch-cpu" in str(e.value)
    assert not any(r.path.startswith("/pypi/simple/pytorch-triton") for r in indexes.requests)


def test_variants_are_never_mixed(indexes: IndexServer) -> None:
    """General indexes can mix builds (the first index that has a project supplies it): torchvision
    +cpu from one, torch +cu121 from the other. check_variants refuses such a plan."""
    indexes.add_index("tvonly", formats=("html",))
    indexes.add_wheel("tvonly", "torchvision", "0.18.0+cpu", tag=f"cp311-cp311-{X86}", requires_dist=["torch==2.3.0"])
    p = resolve(job(indexes, ["torchvision", "torch"], backend=None, extra=(indexes.index_url("tvonly"), f"{base(indexes)}/cu121/")))
    got = {pin.name: pin.version for pin in p.targets[0].pins}
    assert (got["torch"], got["torchvision"]) == ("2.3.0+cu121", "0.18.0+cpu")
    with pytest.raises(ResolutionImpossible, match=r"mixes PyTorch builds \(cpu: torchvision 0.18.0\+cpu; cu121: torch 2.3.0\+cu121\)"):
        checks.check_variants(p.targets[0].pins)
    link = p.targets[0].pins[0].link
    checks.check_variants([Pin(name="torch", version="2.3.0+cu121", link=link), Pin(name="torchaudio", version="2.3.0", link=link)])


# ---------------------------------------------------------------------------------------------
# PEP 440 local versions and per-wheel metadata


@pytest.mark.parametrize(("req", "backend", "version"), [
    ("torch==2.3.0", "cu121", "2.3.0+cu121"),  # a public pin matches a local build
    ("torch==2.3.0+cu121", "cu121", "2.3.0+cu121"),  # an exact local pin matches only that build
    ("torch>=2.3,<2.4", "cpu", "2.3.0+cpu"),
    ("torch==2.3.*", "cpu", "2.3.0+cpu"),
])
def test_local_version_matching(indexes: IndexServer, req: str, backend: str, version: str) -> None:
    p = resolve(job(indexes, [req], backend=backend))
    assert {pin.name: pin.version for pin in p.targets[0].pins}["torch"] == version


def test_exact_local_pin_does_not_match_another_build(indexes: IndexServer) -> None:
    with pytest.raises(BadInput, match=r"names the cu121 build, but the torch backend is cpu"):
        job(indexes, ["torch==2.3.0+cu121"], backend="cpu")


def test_metadata_comes_from_the_selected_wheel(indexes: IndexServer) -> None:
    """PyPI's torch: the x86_64 wheel requires nvidia-cublas-cu12 (marker: Linux), the aarch64 wheel of the
    same version declares nothing; were the x86_64 metadata used for aarch64, the marker would hold there."""
    x86 = resolve(job(indexes, ["torch"], backend=None, target=("x86_64-manylinux_2_28", "3.11")))
    arm = resolve(job(indexes, ["torch"], backend=None, target=("aarch64-manylinux_2_28", "3.11")))
    win = resolve(job(indexes, ["torch"], backend=None, target=("x86_64-pc-windows-msvc", "3.11")))
    assert files(x86)["nvidia-cublas-cu12"] == "nvidia_cublas_cu12-12.4.5.8-py3-none-manylinux2014_x86_64.whl"
    assert files(arm)["torch"] == "torch-2.3.1-cp311-cp311-manylinux2014_aarch64.whl" and "nvidia-cublas-cu12" not in files(arm)
    assert "nvidia-cublas-cu12" not in files(win) and "mkl" in files(win)


# ---------------------------------------------------------------------------------------------
# diagnostics


def test_no_build_for_the_platform(indexes: IndexServer) -> None:
    with pytest.raises(NoCompatibleFile) as e:
        resolve(job(indexes, ["torch"], backend="cu128", target=("aarch64-manylinux_2_17", "3.11")))
    assert "torch 2.7.0+cu128 has wheels for manylinux_2_28 x86_64 / win_amd64; the target is aarch64 with glibc 2.17" in str(e.value)
    assert e.value.hint is not None and "not built for the target's platform" in e.value.hint


def test_glibc_too_old(indexes: IndexServer) -> None:
    with pytest.raises(NoCompatibleFile) as e:
        resolve(job(indexes, ["torch"], backend="cu128", target=("x86_64-manylinux_2_17", "3.11")))
    assert "the target is x86_64 with glibc 2.17" in str(e.value)
    assert e.value.hint is not None and "glibc 2.17 is older than torch 2.7.0+cu128 needs (2.28)" in e.value.hint


def test_local_version_from_an_index_that_was_not_given(indexes: IndexServer) -> None:
    with pytest.raises(ResolutionImpossible) as e:
        resolve(job(indexes, ["torch==2.3.0+cu121"], backend=None))
    msg = str(e.value)
    assert "local version +cu121 is published on the PyTorch index https://download.pytorch.org/whl/cu121/" in msg
    assert e.value.hint is not None and e.value.hint.startswith("add --torch-backend cu121")


def test_nightly_from_an_index_that_was_not_given(indexes: IndexServer) -> None:
    with pytest.raises(ResolutionImpossible) as e:
        resolve(job(indexes, ["torch==2.5.0.dev20240801"], backend=None))
    assert "nightly" in str(e.value) and e.value.hint is not None and "--pre --torch-backend" in e.value.hint


def test_local_pin_on_aarch64_points_at_the_plain_build(indexes: IndexServer) -> None:
    with pytest.raises(ResolutionImpossible) as e:
        resolve(job(indexes, ["torch==2.3.0+cu121"], backend="cu121", target=("aarch64-manylinux_2_28", "3.11")))
    assert e.value.hint is not None and "torch 2.3.0, not +cu121: ask for torch==2.3.0" in e.value.hint


def test_unknown_pytorch_triton_points_at_the_nightly_index(indexes: IndexServer) -> None:
    indexes.add_wheel("pypi", "needs-ptt", "1.0", requires_dist=["pytorch-triton"])
    with pytest.raises(ResolutionImpossible) as e:
        resolve(job(indexes, ["needs-ptt"], backend="cpu"))
    assert "no index has a project named 'pytorch-triton'" in str(e.value)
    assert e.value.hint is not None and "nightly" in e.value.hint and "never take it from PyPI" in e.value.hint


def test_explain_says_why_and_what_to_change(indexes: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{base(indexes)}/cu121/"
    assert main(["explain", "torch", "--index-url", url, "--no-cache", "--python-platform", "x86_64-manylinux_2_28",
                 "--python-version", "3.13"]) == 0
    out = capsys.readouterr().out
    assert "torch 2.3.0+cu121 has wheels for CPython 3.10-3.12; the target runs 3.13" in out and "hint: use a target" in out
    old = profile_file(tmp_path, "x86_64-manylinux_2_28", "3.11", "470.82.01", "old-node")
    assert main(["explain", "torch", "--index-url", url, "--no-cache", "--profile", old]) == 0
    out = capsys.readouterr().out
    assert "note: torch 2.3.0+cu121 needs NVIDIA driver >= 530.30.02 (>= 525.60.13 through CUDA minor version compatibility)" in out
    assert "old-node has 470.82.01" in out


def test_named_cuda_backend_against_the_target_driver(indexes: IndexServer, tmp_path: Path) -> None:
    old = profile_file(tmp_path, "x86_64-manylinux_2_28", "3.11", "470.82.01", "old-node")
    with pytest.raises(BadInput) as e:
        job(indexes, ["torch"], backend="cu128", target=None, profiles=(old,))
    assert "CUDA 12.8 needs NVIDIA driver >= 570.26 (>= 525.60.13 through CUDA minor version compatibility) on Linux" in str(e.value)
    assert "old-node has 470.82.01" in str(e.value) and e.value.hint and "auto (picks cu118 for it)" in e.value.hint
    mid = profile_file(tmp_path, "x86_64-manylinux_2_28", "3.11", "535.104.05", "mid-node")
    j = job(indexes, ["torch"], backend="cu128", target=None, profiles=(mid,))
    assert any("mid-node has NVIDIA driver 535.104.05" in w and "minor version compatibility" in w for w in j.warnings)
    mac = profile_file(tmp_path, "aarch64-apple-darwin", "3.11", None, "mac")
    with pytest.raises(BadInput, match="macOS, where torch has no CUDA builds"):
        job(indexes, ["torch"], backend="cu121", target=None, profiles=(mac,))


# ---------------------------------------------------------------------------------------------
# the backend index in the job


def test_auto_through_build_job(indexes: IndexServer, tmp_path: Path) -> None:
    gpu = profile_file(tmp_path, "x86_64-manylinux_2_28", "3.11", "535.104.05", "gpu-node")
    j = job(indexes, ["torch==2.3.0", "torchvision"], backend="auto", target=None, profiles=(gpu,))
    assert j.torch is not None and j.torch.backend == "cu121"
    assert j.torch.index_url == f"{base(indexes)}/cu121/"
    assert "driver 535.104.05 on gpu-node (Linux) runs CUDA up to 12.2; cu121 is the newest CUDA build of torch 2.3" in j.torch.reason
    assert j.indexes[0].name == "pytorch-cu121" and j.indexes[0].explicit and j.indexes[0].claims("nvidia-cudnn-cu12")
    assert not j.indexes[0].claims("nvidia-ml-py") and not j.indexes[0].claims("numpy")
    assert files(resolve(j))["torch"] == f"torch-2.3.0+cu121-cp311-cp311-{X86}.whl"


def test_auto_refuses_cpu_and_cuda_targets_in_one_lock(indexes: IndexServer, tmp_path: Path) -> None:
    gpu = profile_file(tmp_path, "x86_64-manylinux_2_28", "3.11", "560.35.03", "gpu-node")
    login = profile_file(tmp_path, "x86_64-manylinux_2_28", "3.11", None, "login-node")
    with pytest.raises(BadInput) as e:
        job(indexes, ["torch"], backend="auto", target=None, profiles=(gpu, login))
    assert "gpu-node -> cu126" in str(e.value) and "login-node -> cpu" in str(e.value)
    assert e.value.hint is not None and "lock the CPU-only and the CUDA targets separately" in e.value.hint


def test_flag_overrides_the_recipe(indexes: IndexServer, tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('requirements = ["torch"]\ntorch-backend = "cu121"\n[[targets]]\npython-platform = "linux"\npython-version = "3.11"\n'
                      '[[index]]\nname = "pt"\nurl = "https://download.pytorch.org/whl/cu118"\npackages = ["torch"]\n')
    with pytest.raises(BadInput, match="index pt serves torch and torch-backend is set too"):
        build_job(positional=[str(recipe)], req_files=[], constraint_files=[], profile_specs=[], platform=None, version=None,
                  index_url=None, extra_index_urls=[], find_links=[], named=[], pins=[], pre=False, exclude_newer=None)
    j = build_job(positional=[str(recipe)], req_files=[], constraint_files=[], profile_specs=[], platform=None, version=None,
                  index_url=None, extra_index_urls=[], find_links=[], named=[], pins=[], pre=False, exclude_newer=None,
                  torch_backend="cpu")
    assert [i.name for i in j.indexes][:2] == ["pytorch-cpu", "pt"]
    assert any("overrides the recipe's index pt" in w for w in j.warnings)


def test_mirror_credentials_stay_out_of_the_reason() -> None:
    j = build_job(positional=["torch"], req_files=[], constraint_files=[], profile_specs=[], platform="linux", version="3.11",
                  index_url=None, extra_index_urls=[], find_links=[], named=[], pins=[], pre=False, exclude_newer=None,
                  torch_backend="cu126", torch_index="https://user:s3cret@mirror.example/pytorch/whl")
    assert j.torch is not None and j.indexes[0].url == "https://user:s3cret@mirror.example/pytorch/whl/cu126/"
    assert "s3cret" not in j.torch.reason and "https://mirror.example/pytorch/whl/cu126/" in j.torch.reason


def test_pin_conflicts_with_the_backend(indexes: IndexServer) -> None:
    with pytest.raises(UsageError, match="pinned to serve torch"):
        build_job(positional=["torch"], req_files=[], constraint_files=[], profile_specs=[], platform="linux", version="3.11",
                  index_url=None, extra_index_urls=[], find_links=[], named=["mine=https://example.org/simple"], pins=["torch*=mine"],
                  pre=False, exclude_newer=None, torch_backend="cpu")


RECIPES = Path(__file__).resolve().parent.parent / "recipes"


@pytest.mark.parametrize(("recipe", "backend"), [("torch-cpu.toml", "cpu"), ("torch-cu126.toml", "cu126"), ("torch-pypi.toml", None)])
def test_shipped_recipes(recipe: str, backend: str | None) -> None:
    """Each pins the torch family exactly and fixes exclude-newer (reproducible re-locks), and says how to smoke-test it."""
    j = build_job(positional=[str(RECIPES / recipe)], req_files=[], constraint_files=[], profile_specs=[], platform=None, version=None,
                  index_url=None, extra_index_urls=[], find_links=[], named=[], pins=[], pre=False, exclude_newer=None)
    assert j.recipe is not None and j.recipe.smoke and j.inputs.policy.exclude_newer is not None
    assert {r.name: str(r.specifier) for r in j.inputs.requirements} == {"torch": "==2.8.0", "torchvision": "==0.23.0", "torchaudio": "==2.8.0"}
    assert (j.torch.backend if j.torch else None) == backend
    if backend:
        assert j.indexes[0].url == f"https://download.pytorch.org/whl/{backend}/" and j.indexes[0].explicit
        assert j.inputs.policy.undated_ok == frozenset({f"pytorch-{backend}"})
    assert not j.warnings
    assert [i.url for i in j.indexes if not i.explicit] == ["https://pypi.org/simple/"]
