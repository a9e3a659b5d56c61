"""A PyPI-shaped index and a download.pytorch.org-shaped mirror on one loopback ``IndexServer``,
for the torch tests (see test_torch.py's docstring for what each index publishes)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .indexserver import IndexServer, Response

PYS = ("310", "311", "312")
UPLOADED = datetime(2024, 5, 1, tzinfo=timezone.utc)
LINUX_X86 = '; platform_system == "Linux" and platform_machine == "x86_64"'
TORCH_DEPS = ["filelock", "typing-extensions>=4.8.0", "sympy", "networkx", "jinja2", "fsspec"]
CUDA_DEPS = ["nvidia-cublas-cu12==12.1.3.1" + LINUX_X86, "nvidia-cudnn-cu12==8.9.2.26" + LINUX_X86, "triton==2.3.0" + LINUX_X86,
             'mkl<=2021.4.0,>=2021.1.1; platform_system == "Windows"']
CPU_DEPS = ['mkl<=2021.4.0,>=2021.1.1; platform_system == "Windows"']
X86 = "linux_x86_64"
AARCH64 = "manylinux_2_17_aarch64.manylinux2014_aarch64"
WIN = "win_amd64"


def _mirror(req: Any) -> Response | None:
    """``/whl/<backend>/<project>/`` -> index ``<backend>``; ``/whl/nightly/<backend>/...`` -> ``nightly-<backend>``."""
    if not req.path.startswith("/whl/"):
        return None
    segs = req.path.split("/")[2:]
    if segs and segs[0] == "nightly":
        segs = [f"nightly-{segs[1]}", *segs[2:]]
    return Response(302, {"Location": f"/{segs[0]}/simple/{'/'.join(segs[1:])}"})


def _torch_release(server: IndexServer, index: str, variant: str | None, deps: list[str]) -> None:
    local = f"+{variant}" if variant else ""
    for py in PYS:
        cp = f"cp{py}-cp{py}"
        for plat in (X86, WIN):
            server.add_wheel(index, "torch", f"2.3.0{local}", tag=f"{cp}-{plat}", requires_dist=TORCH_DEPS + deps, requires_python=">=3.8.0")
            server.add_wheel(index, "torchvision", f"0.18.0{local}", tag=f"{cp}-{plat}", requires_dist=["numpy", "torch==2.3.0", "pillow!=8.3.*,>=5.3.0"])
            server.add_wheel(index, "torchaudio", f"2.3.0{local}", tag=f"{cp}-{plat}", requires_dist=["torch==2.3.0"])
        # aarch64: plain versions, and no CUDA libraries in the metadata at all
        server.add_wheel(index, "torch", "2.3.0", tag=f"{cp}-{AARCH64}", requires_dist=TORCH_DEPS, requires_python=">=3.8.0")
        server.add_wheel(index, "torchvision", "0.18.0", tag=f"{cp}-linux_aarch64", requires_dist=["numpy", "torch==2.3.0", "pillow!=8.3.*,>=5.3.0"])
        server.add_wheel(index, "torchaudio", "2.3.0", tag=f"{cp}-{AARCH64}", requires_dist=["torch==2.3.0"])
    # re-hosted copies: stale, and one hostile higher numpy; none may ever be locked
    for name, version in [("numpy", "1.26.3"), ("numpy", "9.9.9"), ("jinja2", "3.1.3"), ("certifi", "2022.12.7"), ("pillow", "10.2.0")]:
        server.add_wheel(index, name, version)


def _pypi(server: IndexServer) -> None:
    def add(name: str, version: str, tag: str = "py3-none-any", deps: tuple[str, ...] = (), when: datetime = UPLOADED) -> None:
        server.add_wheel("pypi", name, version, tag=tag, requires_dist=list(deps), upload_time=when)

    for name, version, deps in [("filelock", "3.13.1", ()), ("typing-extensions", "4.9.0", ()), ("sympy", "1.12", ("mpmath>=0.19",)),
                                ("mpmath", "1.3.0", ()), ("networkx", "3.2.1", ()), ("jinja2", "3.1.4", ("MarkupSafe>=2.0",)),
                                ("markupsafe", "2.1.5", ()), ("fsspec", "2024.2.0", ()), ("pillow", "10.3.0", ()), ("numpy", "1.26.4", ()),
                                ("certifi", "2024.2.2", ()), ("pip", "24.0", ()), ("pytorch-triton", "99.0", ()),
                                ("tritonlib", "1.0", ("pytorch-triton>=2.1",))]:
        add(name, version, deps=deps)
    add("numpy", "2.0.0", when=datetime(2024, 7, 1, tzinfo=timezone.utc))  # newer than the recipes' exclude-newer
    add("mkl", "2021.4.0", tag="py2.py3-none-win_amd64")
    for py in PYS:
        cp = f"cp{py}-cp{py}"
        # PyPI's torch: a CUDA build on Linux x86_64 whose CUDA libraries hide behind a marker; its
        # aarch64 wheel of the same version declares none (per-wheel metadata).
        add("torch", "2.3.1", tag=f"{cp}-manylinux1_x86_64", deps=(*TORCH_DEPS, 'nvidia-cublas-cu12==12.4.5.8; platform_system == "Linux"'))
        add("torch", "2.3.1", tag=f"{cp}-manylinux2014_aarch64", deps=tuple(TORCH_DEPS))
        add("torch", "2.3.1", tag=f"{cp}-{WIN}", deps=(*TORCH_DEPS, *CPU_DEPS))
        add("triton", "2.3.1", tag=f"{cp}-manylinux_2_17_x86_64.manylinux2014_x86_64")
    add("nvidia-cublas-cu12", "12.4.5.8", tag="py3-none-manylinux2014_x86_64")


def add_pytorch_indexes(server: IndexServer) -> None:
    """Fill ``server`` with index ``pypi`` and the PyTorch-shaped ``cpu``, ``cu121``, ``cu128`` and
    ``nightly-cu124``, reachable under ``/whl/...`` as on download.pytorch.org (``base``)."""
    server.add_index("pypi", formats=("json", "html"))
    for name in ("cpu", "cu121", "cu128", "nightly-cu124"):
        server.add_index(name, formats=("html",))
    _pypi(server)
    _torch_release(server, "cpu", "cpu", CPU_DEPS)
    _torch_release(server, "cu121", "cu121", CUDA_DEPS)
    for py in PYS:
        server.add_wheel("cu121", "triton", "2.3.0", tag=f"cp{py}-cp{py}-manylinux_2_17_x86_64.manylinux2014_x86_64", requires_dist=["filelock"])
    server.add_wheel("cu121", "nvidia-cublas-cu12", "12.1.3.1", tag="py3-none-manylinux1_x86_64")
    server.add_wheel("cu121", "nvidia-cudnn-cu12", "8.9.2.26", tag="py3-none-manylinux1_x86_64", requires_dist=["nvidia-cublas-cu12"])
    # cu128: x86_64 needs glibc 2.28, no aarch64 build at all
    for plat in ("manylinux_2_28_x86_64", WIN):
        server.add_wheel("cu128", "torch", "2.7.0+cu128", tag=f"cp311-cp311-{plat}", requires_dist=TORCH_DEPS)
    # nightly
    server.add_wheel("nightly-cu124", "torch", "2.5.0.dev20240801+cu124", tag=f"cp311-cp311-{X86}",
                     requires_dist=[*TORCH_DEPS, "pytorch-triton==3.0.0+dedb7bdf33" + LINUX_X86])
    server.add_wheel("nightly-cu124", "pytorch-triton", "3.0.0+dedb7bdf33", tag=f"cp311-cp311-{X86}", requires_dist=["filelock"])
    server.add_wheel("nightly-cu124", "numpy", "2.1.0.dev0")
    server.set_fault(_mirror)


def base(server: IndexServer) -> str:
    """The mirror's root, as ``--torch-index`` takes it (``https://download.pytorch.org/whl``)."""
    return f"{server.base_url}/whl"
