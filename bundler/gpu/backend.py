"""Choosing the PyTorch backend of a job (``auto``, ``cpu``, ``cuXYZ``) and the index that serves the torch family."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bundler.errors import BadInput
from bundler.gpu.cuda import cuda_version, driver_need, driver_ok, os_label, parse_driver, supported_cuda, tables
from bundler.index import redact_url
from bundler.inputs import BACKEND_HELP, parse_backend
from bundler.profile import Profile

__all__ = ["BACKEND_HELP", "PYTORCH_INDEX", "TorchChoice", "choose_backend", "family_patterns", "in_family", "index_url",
           "named_variant", "parse_backend", "torch_specifier", "variant_of"]

PYTORCH_INDEX = "https://download.pytorch.org/whl"

# The projects whose builds differ per backend, or that torch pins exactly and that exist under
# these names only on the PyTorch indexes (pytorch-triton, and torchtriton, the 2022 nightly name
# that was hijacked on PyPI). Every backend index serves them, and only it does.
TORCH_FAMILY = ("torch", "torchvision", "torchaudio", "pytorch-triton", "torchtriton")
# CUDA builds also take triton and NVIDIA's CUDA runtime libraries (nvidia-cublas-cu12, ...) from
# the backend's index. The pattern is the CUDA library naming, not ``nvidia-*``: NVIDIA projects
# that live only on PyPI (nvidia-ml-py behind pynvml, nvidia-dali-*, nvidia-modelopt) must stay
# with the general indexes.
CUDA_EXTRA = ("triton", "nvidia-*-cu1[0-9]")

_VARIANT = re.compile(r"^(cpu|cu\d{2,3}|rocm\d+(?:\.\d+)*|xpu)(?:$|\.)")


@dataclass(frozen=True, slots=True, kw_only=True)
class TorchChoice:
    """The backend a job uses, the index that serves the torch family, and why (for the CLI to print)."""

    backend: str  # "cpu" | "cu126" | ...
    index_url: str
    packages: tuple[str, ...]
    nightly: bool = False
    reason: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def index_name(self) -> str:
        return f"pytorch-{'nightly-' if self.nightly else ''}{self.backend}"

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "index": self.index_name, "index-url": self.index_url, "packages": list(self.packages),
                "nightly": self.nightly, "reason": self.reason, "warnings": list(self.warnings)}


# ---------------------------------------------------------------------------------------------
# names and URLs


def index_url(backend: str, *, nightly: bool = False, base: str = PYTORCH_INDEX) -> str:
    """The PyTorch index of ``backend``: ``<base>/cu126/`` or ``<base>/nightly/cu126/``."""
    return f"{base.rstrip('/')}/{'nightly/' if nightly else ''}{backend}/"


def family_patterns(backend: str) -> tuple[str, ...]:
    """The project-name patterns the backend's index serves, and that nothing else serves."""
    return TORCH_FAMILY + (CUDA_EXTRA if cuda_version(backend) else ())


def in_family(project: str, backend: str | None = None) -> bool:
    """Whether the index of ``backend`` (of any backend when None) serves ``project``."""
    norm = canonicalize_name(project)
    patterns = TORCH_FAMILY + CUDA_EXTRA if backend is None else family_patterns(backend)
    return any(fnmatch.fnmatchcase(norm, p) for p in patterns)


def variant_of(version: str) -> str | None:
    """The PyTorch build variant in a local version: ``2.3.0+cu121`` -> ``cu121``; None when plain."""
    try:
        local = Version(str(version)).local
    except InvalidVersion:
        return None
    m = _VARIANT.match(local or "")
    return m.group(1) if m else None


def named_variant(spec: SpecifierSet | None) -> str | None:
    """The build a ``torch`` specifier names through a local version (``==2.3.0+cu121``), if any."""
    for s in spec or ():
        if s.operator in ("==", "===") and "+" in s.version:
            v = variant_of(s.version.rstrip(".*"))
            if v:
                return v
    return None


def torch_specifier(requirements: Iterable[Any]) -> SpecifierSet | None:
    """The combined specifier of every ``torch`` requirement/constraint (markers ignored), or None."""
    spec, seen = SpecifierSet(), False
    for r in requirements:
        if canonicalize_name(r.name) == "torch":
            spec &= r.specifier
            seen = True
    return spec if seen else None


# ---------------------------------------------------------------------------------------------
# choosing


def _release_versions(minor: tuple[int, int], variants: Iterable[str]) -> list[str]:
    """Version strings a release may carry, to test a specifier against (local builds included)."""
    labels = ["", "+cpu"] + [f"+{v}" for v in variants]
    return [f"{minor[0]}.{minor[1]}.{p}{label}" for p in range(10) for label in labels]


def _admitted(minor: tuple[int, int], variants: Sequence[str], spec: SpecifierSet | None) -> bool:
    if spec is None or not str(spec):
        return True
    return any(spec.contains(v, prereleases=True) for v in _release_versions(minor, variants))


def _auto_one(profile: Profile, spec: SpecifierSet | None) -> tuple[str, str, list[str]]:
    """(backend, why, warnings) for one target under ``auto``."""
    f = profile.facts
    if f.os == "macos":
        return "cpu", f"{profile.name} is macOS, where torch has no CUDA builds (the cpu index serves the same wheels as PyPI)", []
    driver = parse_driver(f.nvidia_driver, f.os)
    if driver is None:
        if f.source == "capture":
            return "cpu", f"the profile captured on {profile.name} reports no NVIDIA driver", []
        return "cpu", (f"the NVIDIA driver of {profile.name} is unknown (not a captured profile); capture one on the target "
                       "(wheelhouse profile capture) or name a backend (--torch-backend cu126)"), []
    py = tuple(int(x) for x in profile.markers["python_version"].split(".")[:2])
    known_releases = tables().releases
    releases = [(m, vs) for m, (lo, hi, vs) in sorted(known_releases.items(), reverse=True)
                if lo <= py <= hi and _admitted(m, vs, spec)]
    os = f.os
    have = f"driver {f.nvidia_driver} on {profile.name} ({os_label(os)})"
    supported = supported_cuda(driver, os)
    can = f"runs CUDA up to {supported[0]}.{supported[1]}" if supported else "is older than any CUDA 8+ toolkit driver"
    if not releases:  # a Python or a torch specifier beyond the table: by the driver alone
        known = sorted({b for _, _, vs in known_releases.values() for b in vs}, key=lambda b: cuda_version(b) or (0, 0))
        best = [b for b in known if driver_ok(b, driver, os, compat=False)]
        if best:
            return best[-1], f"{have} {can}; {best[-1]} is the newest CUDA build it supports (no torch release in wheelhouse's table fits the job)", []
        return "cpu", f"{have} {can}: too old for any CUDA build of torch", []
    full = _newest_build(releases, driver, os, compat=False)
    compat = _newest_build(releases, driver, os, compat=True)
    if full is not None:
        (minor, chosen) = full
        why = f"{have} {can}; {chosen} is the newest CUDA build of torch {minor[0]}.{minor[1]} it supports"
        if compat is not None and compat != full:
            why += (f" (torch {compat[0][0]}.{compat[0][1]}+{compat[1]} would run on it only through CUDA minor version "
                    f"compatibility: name --torch-backend {compat[1]} to accept that)")
        return chosen, why, []
    if compat is not None:
        chosen = compat[1]
        warn = (f"{have} is older than the toolkit driver of {chosen} ({driver_need(chosen, os)}): "
                f"{chosen} runs there through CUDA minor version compatibility only (no JIT of newer PTX)")
        return chosen, f"{have} {can}; no CUDA build of the torch releases the job admits is fully supported; taking {chosen}", [warn]
    return "cpu", f"{have} {can}: too old for every CUDA build of the torch releases the job admits", []


def _newest_build(releases: Sequence[tuple[tuple[int, int], Sequence[str]]], driver: tuple[int, ...], os: str, *,
                  compat: bool) -> tuple[tuple[int, int], str] | None:
    """The (torch release, build) the driver runs: newest CUDA major first, then newest torch, then newest CUDA minor."""
    ok = [(minor, v) for minor, variants in releases for v in variants if driver_ok(v, driver, os, compat=compat)]
    if not ok:
        return None

    def key(item: tuple[tuple[int, int], str]) -> tuple[int, tuple[int, int], int]:
        cuda = cuda_version(item[1]) or (0, 0)
        return (cuda[0], item[0], cuda[1])

    return max(ok, key=key)


def _check_named(backend: str, profiles: Sequence[Profile], origin: str) -> list[str]:
    """Refuse a CUDA backend no target driver can run; warn about the ones that need compatibility mode."""
    if cuda_version(backend) is None:
        return []
    warnings = []
    for p in profiles:
        f = p.facts
        if f.os == "macos":
            raise BadInput(f"{origin} {backend}: target {p.name} is macOS, where torch has no CUDA builds",
                           hint="use --torch-backend cpu (or auto) for macOS targets, and lock CUDA targets separately")
        driver = parse_driver(f.nvidia_driver, f.os)
        if driver is None:
            if f.source == "capture":
                warnings.append(f"the profile captured on {p.name} reports no NVIDIA driver: {backend} builds run there on the CPU only")
            continue
        if not driver_ok(backend, driver, f.os, compat=True):
            cuda = cuda_version(backend)
            assert cuda is not None
            supported = supported_cuda(driver, f.os)
            fallback = _auto_one(p, None)[0]
            raise BadInput(f"{origin} {backend}: CUDA {cuda[0]}.{cuda[1]} needs NVIDIA driver {driver_need(backend, f.os)} "
                           f"on {os_label(f.os)}; target {p.name} has {f.nvidia_driver}"
                           + (f", which runs CUDA up to {supported[0]}.{supported[1]}" if supported else ""),
                           hint=f"update the driver on {p.name}, or use --torch-backend auto (picks {fallback} for it) or cpu")
        if not driver_ok(backend, driver, f.os, compat=False):
            warnings.append(f"target {p.name} has NVIDIA driver {f.nvidia_driver}, older than the CUDA toolkit driver of {backend} "
                            f"({driver_need(backend, f.os)}): it runs through CUDA minor version compatibility only "
                            "(no JIT of newer PTX; torch.compile kernels may fail)")
    return warnings


def choose_backend(spec: str, profiles: Sequence[Profile], *, pre: bool = False, torch_spec: SpecifierSet | None = None,
                   base: str = PYTORCH_INDEX, origin: str = "--torch-backend") -> TorchChoice:
    """Resolve ``auto``/``cpu``/``cuXYZ`` for the job's targets into one backend and its index.

    ``torch_spec`` is the job's combined specifier on ``torch`` (it limits the releases ``auto``
    considers, and a local version like ``==2.3.0+cu121`` names the build). With ``pre``, the
    nightly index of the backend is used. Raises ``BadInput`` when the backend cannot serve the
    targets (see the package docstring); the warnings are for the user, not errors. ``origin``
    names where the backend was given, for messages.
    """
    backend = parse_backend(spec, origin)
    named = named_variant(torch_spec)
    warnings: list[str] = []
    if backend == "auto":
        if named and (named == "cpu" or cuda_version(named)):
            backend = named
            why = f"auto: the torch requirement ({torch_spec}) names the {named} build"
            warnings += _check_named(backend, profiles, origin)
        else:
            per = [(p, *_auto_one(p, torch_spec)) for p in profiles]
            for _, _, _, w in per:
                warnings += w
            chosen = {b for _, b, _, _ in per}
            if len(chosen) == 1:
                backend = per[0][1]
                why = "auto: " + "; ".join(w for _, _, w, _ in per)
            elif "cpu" in chosen:
                detail = "; ".join(f"{p.name} -> {b} ({w})" for p, b, w, _ in per)
                raise BadInput(f"{origin} auto: the targets need different torch builds: {detail}",
                               hint="lock the CPU-only and the CUDA targets separately (one backend per lock), "
                                    "or name one backend for all with --torch-backend")
            else:
                backend = min(chosen, key=lambda b: cuda_version(b) or (0, 0))
                why = ("auto: " + "; ".join(f"{p.name} -> {b} ({w})" for p, b, w, _ in per)
                       + f"; using {backend}, the oldest of them, which every target's driver runs")
    else:
        why = f"{origin} {backend}"
        if named and named != backend:
            raise BadInput(f"the torch requirement ({torch_spec}) names the {named} build, but the torch backend is {backend} ({origin})",
                           hint=f"use the {named} backend, or drop the +{named} from the requirement")
        warnings += _check_named(backend, profiles, origin)
    url = index_url(backend, nightly=pre, base=base)
    packages = family_patterns(backend)
    why += f". {', '.join(packages)} come only from {redact_url(url)}{' (nightly: pre-releases are allowed)' if pre else ''}; everything else from the other indexes"
    return TorchChoice(backend=backend, index_url=url, packages=packages, nightly=pre, reason=why, warnings=tuple(warnings))
