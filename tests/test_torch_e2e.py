"""A simulated CUDA torch bundle, built and installed offline end to end (issue 5, acceptance 3).

Two loopback indexes play the parts. ``pypi`` (JSON, upload times) has the pure packages
(``numpy 1.26.4``, ``filelock 3.13.1``), a bootstrap pip wheel, and a PyPI-style ``torch 2.3.1``
with a newer ``nvidia-cublas-cu12`` that must not be taken. A mirror of ``download.pytorch.org/whl``
(HTML only, no upload times; ``/whl/<backend>/<project>/`` is redirected to the index ``<backend>``)
has per backend one ``torch-2.3.0+<backend>-cp312-cp312-manylinux_2_28_x86_64.whl`` whose
``torch/__init__.py`` sets ``__version__ = "2.3.0+<backend>"`` and imports its dependencies, the
``+cu121`` build's ``nvidia-cublas-cu12 12.1.3.1``, and re-hosted copies of the pure packages (a
stale ``numpy 1.26.3`` and a higher ``filelock 99.0``) that must never be picked.

Each case runs ``wheelhouse build`` in-process for pyenv's CPython 3.12 (not the builder's Python),
unpacks the archive with the system ``tar``, runs ``sh install.sh --python <3.12>`` inside a network
namespace with no interfaces (``unshare -n``), and imports torch from the new venv, offline too:

- ``--torch-backend cu121`` for a ``--python-platform`` target;
- ``--torch-backend auto`` for a profile captured by pyenv's 3.12 with an NVIDIA driver 535.104.05
  (runs CUDA up to 12.2; torch 2.3 has cu118 and cu121 builds: ``cu121``);
- ``--torch-backend auto`` for the same profile without a driver: ``cpu``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.bundlefixture import TARGET_DIR, pip_wheel_from_installed
from support.indexserver import IndexServer, Response
from test_bundle_e2e import OFFLINE, PY312, run, untar
from test_bundle_e2e import pytestmark as E2E_MARKS
from support.wheelgen import make_wheel

from bundler.cli import main
from support.hermetic import hermetic

# slow, and skipped off x86_64 glibc Linux or without tar (test_bundle_e2e's marks), unshare or pyenv's 3.12
pytestmark = [
    *E2E_MARKS,
    pytest.mark.skipif(OFFLINE is None, reason="no network namespace: 'unshare -n true' fails here"),
    pytest.mark.skipif(PY312 is None, reason="no pyenv CPython 3.12"),
]

TAG = "cp312-cp312-manylinux_2_28_x86_64"
CUBLAS = "12.1.3.1"  # the PyTorch index's; PyPI has 12.4.5.8
PURE = {"numpy": "1.26.4", "filelock": "3.13.1"}  # PyPI's; the PyTorch indexes re-host 1.26.3 and 99.0
REHOSTED = {"numpy": "1.26.3", "filelock": "99.0"}


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, "WHEELHOUSE_PYTORCH_INDEX", "SOURCE_DATE_EPOCH")
    monkeypatch.chdir(tmp_path)


def _mirror(req: Any) -> Response | None:
    """``/whl/<backend>/<project>/`` -> ``/<backend>/simple/<project>/`` (files are served from there)."""
    if not req.path.startswith("/whl/"):
        return None
    segs = req.path.split("/")[2:]
    return Response(302, {"Location": f"/{segs[0]}/simple/{'/'.join(segs[1:])}"})


def _torch_files(backend: str) -> dict[str, str]:
    """``torch/__init__.py`` (sets ``__version__``, imports the dependencies as torch does) and ``torch/version.py``."""
    init = f'__version__ = "2.3.0+{backend}"\nimport filelock as _filelock, numpy as _numpy\n'
    if backend != "cpu":  # torch preloads the CUDA libraries of the nvidia-* wheels
        init += "import nvidia.cublas as _cublas\n"
    cuda = "None" if backend == "cpu" else repr(f"{backend[2:-1]}.{backend[-1]}")
    return {"torch/__init__.py": init + "from torch import version\n",
            "torch/version.py": f'__version__ = "2.3.0+{backend}"\ncuda = {cuda}\n'}


@dataclass
class Indexes:
    server: IndexServer

    @property
    def pypi(self) -> str:
        return self.server.index_url("pypi")

    @property
    def torch_base(self) -> str:
        return f"{self.server.base_url}/whl"


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Indexes]:
    root = tmp_path_factory.mktemp("torch-e2e")
    src = root / "src"
    with IndexServer(root / "index") as server:
        server.add_index("pypi", formats=("json", "html"))
        for name, version in PURE.items():
            init = f'__version__ = "{version}"\nSOURCE = "pypi"\n'
            server.add_file("pypi", make_wheel(src / "pypi", name, version, files={f"{name}/__init__.py": init}))
        server.add_file("pypi", pip_wheel_from_installed(root / "pip"))
        # PyPI's own torch and CUDA libraries: newer, and never to be taken when a backend is given
        server.add_wheel("pypi", "torch", "2.3.1", tag=TAG,
                         requires_dist=["filelock", 'nvidia-cublas-cu12==12.4.5.8; platform_system == "Linux"'])
        server.add_wheel("pypi", "nvidia-cublas-cu12", "12.4.5.8", tag="py3-none-manylinux2014_x86_64")

        for backend in ("cpu", "cu121"):
            server.add_index(backend, formats=("html",))
            deps = ["filelock", "numpy>=1.20"]
            if backend != "cpu":
                deps.append(f'nvidia-cublas-cu12=={CUBLAS}; platform_system == "Linux" and platform_machine == "x86_64"')
            server.add_file(backend, make_wheel(src / backend, "torch", f"2.3.0+{backend}", tag=TAG, requires_dist=deps,
                                                requires_python=">=3.8.0", files=_torch_files(backend)))
            for name, stale in REHOSTED.items():  # re-hosted copies: stale numpy, a higher filelock
                server.add_file(backend, make_wheel(src / backend, name, stale,
                                                    files={f"{name}/__init__.py": f'__version__ = "{stale}"\nSOURCE = "pytorch"\n'}))
        server.add_file("cu121", make_wheel(src / "cu121", "nvidia-cublas-cu12", CUBLAS, tag="py3-none-manylinux1_x86_64",
                                            files={"nvidia/__init__.py": "", "nvidia/cublas/__init__.py": f'VERSION = "{CUBLAS}"\n'}))
        server.set_fault(_mirror)
        yield Indexes(server)


def _captured_312(path: Path, driver: str | None) -> Path:
    """A profile captured by pyenv's 3.12 on this machine, with the NVIDIA driver fact set (or removed)."""
    assert PY312 is not None
    r = run([PY312, TARGET_DIR / "capture_profile.py", "-o", path])
    assert r.returncode == 0, r.stderr
    data = json.loads(path.read_text())
    data["facts"].pop("nvidia-driver", None)
    if driver:
        data["facts"]["nvidia-driver"] = driver
    path.write_text(json.dumps(data))
    return path


CASES = {
    "cu121": ("cu121", None),
    "auto-driver-535": ("auto", "535.104.05"),
    "auto-no-driver": ("auto", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_simulated_torch_bundle_installs_offline_and_imports(indexes: Indexes, case: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    backend, driver = CASES[case]
    expected = "cu121" if backend == "cu121" or driver else "cpu"
    if backend == "auto":
        target = ["--profile", str(_captured_312(tmp_path / "target.json", driver))]
    else:
        target = ["--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.12"]
    archive = tmp_path / "out" / f"torch-{case}.tar.gz"
    archive.parent.mkdir()
    indexes.server.clear_log()
    code = main(["build", "--index-url", indexes.pypi, "--torch-backend", backend, "--torch-index", indexes.torch_base,
                 *target, "--cache-dir", str(tmp_path / "cache"), "-o", str(archive), "torch==2.3.0"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"torch backend {expected}:" in err, err
    if backend == "auto":
        assert ("driver 535.104.05" in err and "runs CUDA up to 12.2" in err) if driver else "reports no NVIDIA driver" in err
    # The re-hosted copies were never even asked for: the backend's index serves the torch family only.
    asked = {r.path for r in indexes.server.requests}
    assert not any(p.startswith((f"/whl/{expected}/{n}", f"/{expected}/simple/{n}")) for p in asked for n in REHOSTED), sorted(asked)
    assert any(p.startswith(f"/{expected}/files/torch-2.3.0") for p in asked), sorted(asked)

    bundle = untar(archive, tmp_path / "unpacked")
    venv = tmp_path / "venv 312"
    r = run(["sh", bundle / "install.sh", "--python", PY312, "--venv", venv], offline=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pip check passed" in r.stdout, r.stdout

    python = venv / "bin" / "python"
    code_ = ("import sys, torch, numpy, filelock; "
             "print(sys.version_info[:2], torch.__version__, torch.version.cuda, numpy.SOURCE, numpy.__version__, filelock.__version__)")
    r = run([python, "-I", "-c", code_], offline=True, timeout=60)
    assert r.returncode == 0, r.stderr
    cuda = "12.1" if expected == "cu121" else "None"
    assert r.stdout.split() == ["(3,", "12)", f"2.3.0+{expected}", cuda, "pypi", PURE["numpy"], PURE["filelock"]]
    r = run([python, "-I", "-c", "import torch; print(torch.__version__)"], offline=True, timeout=60)
    assert r.stdout.strip() == f"2.3.0+{expected}"

    listing = "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))"
    r = run([python, "-I", "-c", listing], offline=True, timeout=60)
    assert r.returncode == 0, r.stderr
    installed = json.loads(r.stdout)
    assert installed.pop("pip")
    want = {"torch": f"2.3.0+{expected}", **PURE}
    if expected == "cu121":
        want["nvidia-cublas-cu12"] = CUBLAS
    assert installed == want  # PyPI's versions of the pure packages, the PyTorch index's CUDA library, nothing else


def test_relock_with_a_warm_cache_through_a_redirecting_mirror(indexes: Indexes, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A second lock against the same cache must find the same files (the mirror redirects to the page)."""
    args = ["lock", "--index-url", indexes.pypi, "--torch-backend", "cu121", "--torch-index", indexes.torch_base,
            "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.12", "--cache-dir", str(tmp_path / "cache"),
            "torch==2.3.0", "-q"]
    for n in (1, 2):
        code = main([*args, "-o", str(tmp_path / f"pylock{n}.toml")])
        assert code == 0, capsys.readouterr().err
    assert (tmp_path / "pylock1.toml").read_text() == (tmp_path / "pylock2.toml").read_text()
