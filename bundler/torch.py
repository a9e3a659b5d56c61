"""PyTorch backends: which PyTorch index serves the torch family for a job, and why.

A backend is named as uv's ``--torch-backend`` names it: ``auto``, ``cpu`` or ``cuXYZ`` (CUDA
X.Y: ``cu118``, ``cu126``, ``cu130``). The chosen backend becomes one *explicit* index,
``https://download.pytorch.org/whl/<backend>/`` (``.../whl/nightly/<backend>/`` when pre-releases are
allowed), that serves the torch family and nothing else (``family_patterns``). So torch, torchvision,
torchaudio, triton, pytorch-triton and the CUDA libraries come only from it, while everything else
(numpy, jinja2, certifi, ...: the PyTorch indexes re-host stale copies) comes from the general
indexes, PyPI by default; and a higher ``pytorch-triton`` on a public index is never considered.

``auto`` looks at each target profile's NVIDIA driver (``Facts.nvidia_driver``, captured on the
target by ``capture_profile.py``; never this machine's):

- no driver in a captured profile, or no captured profile at all (a ``--python-platform`` target,
  whose driver is unknown): ``cpu``;
- macOS: ``cpu`` -- torch has no CUDA builds for macOS, and the cpu index serves the same plain
  macOS wheels as PyPI, so a macOS target can share a lock with CPU-only Linux/Windows targets;
- a driver: among the CUDA builds of the torch releases the job admits (its torch specifiers, and
  wheels for the target's Python: ``TORCH_RELEASES``) that the driver fully supports, the newest
  CUDA major version, then the newest torch release, then that release's newest CUDA build. "Fully
  supports" means the driver is at least the toolkit driver of that CUDA release in NVIDIA's table
  below (535.104.05 runs CUDA 12.2: cu121, torch 2.5; 560.35.03: cu126, torch 2.14). When no build
  qualifies, the same rule over the builds the driver runs through CUDA minor version compatibility
  (second table) picks one, with a warning; else ``cpu``. A torch requirement with a local version
  (``torch==2.3.0+cu121``) names the build itself.

One backend serves a job. When targets disagree under ``auto``: different CUDA builds resolve to the
oldest one (every newer driver runs it, and the reason says so); CPU-only targets next to CUDA
targets are refused with a message to lock them separately (a CUDA build on the CPU target would
carry gigabytes of unused libraries, a CPU build would waste the GPUs).

A named CUDA backend is checked against every target's captured driver: below the minor version
compatibility minimum it cannot run and is refused; below the toolkit driver it runs only through
minor version compatibility (no PTX JIT for newer PTX) and a warning says so.

NVIDIA driver needed per CUDA toolkit (CUDA Toolkit Release Notes, Table 3 "CUDA Toolkit and
Corresponding Driver Versions", the GA row of each minor release; docs.nvidia.com/cuda/
cuda-toolkit-release-notes). Windows has no row for 13.x (the toolkit stopped bundling the Windows
driver); the 13.x minor-compatibility minimum (>= 580) stands in for it::

    CUDA   Linux x86_64 / aarch64   Windows x86_64
    13.2   595.45.04                (580)
    13.1   590.44.01                (580)
    13.0   580.65.06                (580)
    12.9   575.51.03                576.02
    12.8   570.26                   570.65
    12.6   560.28.03                560.76
    12.5   555.42.02                555.85
    12.4   550.54.14                551.61
    12.3   545.23.06                545.84
    12.2   535.54.03                536.25
    12.1   530.30.02                531.14
    12.0   525.60.13                527.41
    11.8   520.61.05                520.06
    11.7   515.43.04                516.01
    11.6   510.39.01                511.23
    11.5   495.29.05                496.04
    11.4   470.42.01                471.11
    11.3   465.19.01                465.89
    11.2   460.27.03                460.82
    11.1   455.23                   456.38
    11.0   450.51.05                451.48
    10.2   440.33                   441.22
    10.1   418.39                   418.96
    10.0   410.48                   411.31
     9.2   396.26                   397.44
     9.1   390.46                   391.29
     9.0   384.81                   385.54
     8.0   367.48                   369.30

Minimum driver for CUDA minor version compatibility (same release notes, Table 2; the Windows
values and the 11.x/12.x point releases as uv's ``uv-torch`` crate carries them from earlier
editions of that table): 13.x >= 580 (both); 12.x >= 525.60.13 Linux, >= 528.33 Windows; 11.x >=
450.80.02 Linux, >= 452.39 Windows. Before 11.0 there is no minor version compatibility.

uv's ``auto`` uses only the second table, so a driver of the R535 branch gets uv's newest 12.x build;
wheelhouse prefers a build the driver supports without compatibility mode and names the newer one in
the reason, for the user to force with ``--torch-backend`` after reading the caveat.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bundler.errors import BadInput, ResolutionImpossible
from bundler.index import redact_url
from bundler.profile import Profile

PYTORCH_INDEX = "https://download.pytorch.org/whl"
BACKEND_HELP = "auto, cpu or cuXYZ (CUDA X.Y: cu118, cu121, cu124, cu126, cu128, cu129, cu130)"

# The projects whose builds differ per backend, or that torch pins exactly and that exist under
# these names only on the PyTorch indexes (pytorch-triton, and torchtriton, the 2022 nightly name
# that was hijacked on PyPI). Every backend index serves them, and only it does.
TORCH_FAMILY = ("torch", "torchvision", "torchaudio", "pytorch-triton", "torchtriton")
# CUDA builds also take triton and NVIDIA's CUDA runtime libraries (nvidia-cublas-cu12, ...) from
# the backend's index. The pattern is the CUDA library naming, not ``nvidia-*``: NVIDIA projects
# that live only on PyPI (nvidia-ml-py behind pynvml, nvidia-dali-*, nvidia-modelopt) must stay
# with the general indexes.
CUDA_EXTRA = ("triton", "nvidia-*-cu1[0-9]")

# CUDA (major, minor) -> (Linux driver, Windows driver) from NVIDIA's toolkit driver table (above).
TOOLKIT_DRIVERS: dict[tuple[int, int], tuple[str, str | None]] = {
    (13, 2): ("595.45.04", None), (13, 1): ("590.44.01", None), (13, 0): ("580.65.06", None),
    (12, 9): ("575.51.03", "576.02"), (12, 8): ("570.26", "570.65"), (12, 6): ("560.28.03", "560.76"),
    (12, 5): ("555.42.02", "555.85"), (12, 4): ("550.54.14", "551.61"), (12, 3): ("545.23.06", "545.84"),
    (12, 2): ("535.54.03", "536.25"), (12, 1): ("530.30.02", "531.14"), (12, 0): ("525.60.13", "527.41"),
    (11, 8): ("520.61.05", "520.06"), (11, 7): ("515.43.04", "516.01"), (11, 6): ("510.39.01", "511.23"),
    (11, 5): ("495.29.05", "496.04"), (11, 4): ("470.42.01", "471.11"), (11, 3): ("465.19.01", "465.89"),
    (11, 2): ("460.27.03", "460.82"), (11, 1): ("455.23", "456.38"), (11, 0): ("450.51.05", "451.48"),
    (10, 2): ("440.33", "441.22"), (10, 1): ("418.39", "418.96"), (10, 0): ("410.48", "411.31"),
    (9, 2): ("396.26", "397.44"), (9, 1): ("390.46", "391.29"), (9, 0): ("384.81", "385.54"),
    (8, 0): ("367.48", "369.30"),
}
# CUDA major -> (Linux, Windows) minimum driver for minor version compatibility.
COMPAT_DRIVERS: dict[int, tuple[str, str]] = {13: ("580", "580"), 12: ("525.60.13", "528.33"), 11: ("450.80.02", "452.39")}

# Torch releases on download.pytorch.org: (Python range with wheels, CUDA builds published), from
# the release compatibility matrix in pytorch/pytorch RELEASE.md (stable and experimental CUDA).
# Newer releases than the table are not constrained: ``auto`` then goes by the driver alone.
TORCH_RELEASES: dict[tuple[int, int], tuple[tuple[int, int], tuple[int, int], tuple[str, ...]]] = {
    (2, 14): ((3, 10), (3, 15), ("cu126", "cu130", "cu132")),
    (2, 13): ((3, 10), (3, 15), ("cu126", "cu130", "cu132")),
    (2, 12): ((3, 10), (3, 14), ("cu126", "cu130", "cu132")),
    (2, 11): ((3, 10), (3, 14), ("cu126", "cu128", "cu130")),
    (2, 10): ((3, 10), (3, 14), ("cu126", "cu128", "cu130")),
    (2, 9): ((3, 10), (3, 14), ("cu126", "cu128", "cu130")),
    (2, 8): ((3, 9), (3, 13), ("cu126", "cu128", "cu129")),
    (2, 7): ((3, 9), (3, 13), ("cu118", "cu126", "cu128")),
    (2, 6): ((3, 9), (3, 13), ("cu118", "cu124", "cu126")),
    (2, 5): ((3, 9), (3, 13), ("cu118", "cu121", "cu124")),
    (2, 4): ((3, 8), (3, 12), ("cu118", "cu121", "cu124")),
    (2, 3): ((3, 8), (3, 12), ("cu118", "cu121")),
    (2, 2): ((3, 8), (3, 12), ("cu118", "cu121")),
    (2, 1): ((3, 8), (3, 11), ("cu118", "cu121")),
    (2, 0): ((3, 8), (3, 11), ("cu117", "cu118")),
    (1, 13): ((3, 7), (3, 11), ("cu116", "cu117")),
    (1, 12): ((3, 7), (3, 10), ("cu102", "cu113", "cu116")),
}

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
# names, URLs, tables


def parse_backend(text: str, origin: str = "--torch-backend") -> str:
    """Validate a backend name (``auto``, ``cpu``, ``cuXYZ``); return it lower-cased."""
    name = text.strip().lower()
    if name in ("auto", "cpu") or re.fullmatch(r"cu\d{2,3}", name):
        return name
    raise BadInput(f"{origin}: unknown torch backend {text!r}", hint=f"use {BACKEND_HELP}")


def cuda_version(backend: str) -> tuple[int, int] | None:
    """``cu121`` -> (12, 1), ``cu92`` -> (9, 2); None for ``cpu``."""
    m = re.fullmatch(r"cu(\d{1,2})(\d)", backend)
    return (int(m.group(1)), int(m.group(2))) if m else None


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


def parse_driver(text: str | None, os: str = "linux") -> tuple[int, ...] | None:
    """A driver version as a tuple. Windows' internal form ``31.0.15.5161`` is read as ``551.61``."""
    if not text or not re.fullmatch(r"\d+(\.\d+)*", text.strip()):
        return None
    parts = [int(p) for p in text.strip().split(".")]
    if os == "windows" and len(parts) == 4 and parts[0] < 100:
        digits = (str(parts[2]) + str(parts[3]).rjust(4, "0"))[-5:]
        return (int(digits[:3]), int(digits[3:]))
    return tuple(parts)


def _table_driver(cuda: tuple[int, int], os: str, *, compat: bool) -> str | None:
    """The driver the tables name for CUDA ``cuda`` on ``os``: the toolkit driver, or with ``compat``
    the minor version compatibility minimum (the toolkit driver before CUDA 11). None: no row."""
    if compat and cuda[0] in COMPAT_DRIVERS:
        return COMPAT_DRIVERS[cuda[0]][1 if os == "windows" else 0]
    row = TOOLKIT_DRIVERS.get(cuda)
    if row is None:
        return None
    if os == "windows":
        return row[1] or COMPAT_DRIVERS[cuda[0]][1]
    return row[0]


def toolkit_driver(cuda: tuple[int, int], os: str) -> tuple[int, ...] | None:
    """The toolkit driver of CUDA ``cuda`` on ``os`` (Table 3), as a tuple; None when the table has no row."""
    return parse_driver(_table_driver(cuda, os, compat=False))


def compat_driver(cuda: tuple[int, int], os: str) -> tuple[int, ...] | None:
    """The minimum driver that runs CUDA ``cuda`` through minor version compatibility (Table 2)."""
    return parse_driver(_table_driver(cuda, os, compat=True))


def supported_cuda(driver: tuple[int, ...], os: str) -> tuple[int, int] | None:
    """The newest CUDA toolkit the driver fully supports (Table 3), or None."""
    ok = [c for c in TOOLKIT_DRIVERS if (d := toolkit_driver(c, os)) is not None and driver >= d]
    return max(ok) if ok else None


def _driver_ok(backend: str, driver: tuple[int, ...], os: str, *, compat: bool) -> bool:
    cuda = cuda_version(backend)
    if cuda is None:
        return True
    need = compat_driver(cuda, os) if compat else toolkit_driver(cuda, os)
    if need is None:  # a CUDA release newer than the table: at least what the newest known one needs
        known = [c for c in TOOLKIT_DRIVERS if c[0] == cuda[0]] or list(TOOLKIT_DRIVERS)
        need = toolkit_driver(max(known), os)
    return need is not None and driver >= need


def _os_label(os: str) -> str:
    return {"linux": "Linux", "windows": "Windows", "macos": "macOS"}.get(os, os)


def driver_need(backend: str, os: str) -> str:
    """``'>= 560.28.03 (>= 525.60.13 through CUDA minor version compatibility)'``, for messages."""
    cuda = cuda_version(backend)
    if cuda is None:
        return "no NVIDIA driver"
    full, compat = _table_driver(cuda, os, compat=False), _table_driver(cuda, os, compat=True)
    text = f">= {full}" if full else f"a driver for CUDA {cuda[0]}.{cuda[1]} (newer than wheelhouse's table)"
    if compat and compat != full:
        text += f" (>= {compat} through CUDA minor version compatibility)"
    return text


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


def named_variant(spec: SpecifierSet | None) -> str | None:
    """The build a ``torch`` specifier names through a local version (``==2.3.0+cu121``), if any."""
    for s in spec or ():
        if s.operator in ("==", "===") and "+" in s.version:
            v = variant_of(s.version.rstrip(".*"))
            if v:
                return v
    return None


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
    releases = [(m, vs) for m, (lo, hi, vs) in sorted(TORCH_RELEASES.items(), reverse=True)
                if lo <= py <= hi and _admitted(m, vs, spec)]
    os = f.os
    have = f"driver {f.nvidia_driver} on {profile.name} ({_os_label(os)})"
    supported = supported_cuda(driver, os)
    can = f"runs CUDA up to {supported[0]}.{supported[1]}" if supported else "is older than any CUDA 8+ toolkit driver"
    if not releases:  # a Python or a torch specifier beyond the table: by the driver alone
        known = sorted({b for _, _, vs in TORCH_RELEASES.values() for b in vs}, key=lambda b: cuda_version(b) or (0, 0))
        best = [b for b in known if _driver_ok(b, driver, os, compat=False)]
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
    ok = [(minor, v) for minor, variants in releases for v in variants if _driver_ok(v, driver, os, compat=compat)]
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
        if not _driver_ok(backend, driver, f.os, compat=True):
            cuda = cuda_version(backend)
            assert cuda is not None
            supported = supported_cuda(driver, f.os)
            fallback = _auto_one(p, None)[0]
            raise BadInput(f"{origin} {backend}: CUDA {cuda[0]}.{cuda[1]} needs NVIDIA driver {driver_need(backend, f.os)} "
                           f"on {_os_label(f.os)}; target {p.name} has {f.nvidia_driver}"
                           + (f", which runs CUDA up to {supported[0]}.{supported[1]}" if supported else ""),
                           hint=f"update the driver on {p.name}, or use --torch-backend auto (picks {fallback} for it) or cpu")
        if not _driver_ok(backend, driver, f.os, compat=False):
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
    targets (see the module docstring); the warnings are for the user, not errors. ``origin``
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


def torch_specifier(requirements: Iterable[Any]) -> SpecifierSet | None:
    """The combined specifier of every ``torch`` requirement/constraint (markers ignored), or None."""
    spec, seen = SpecifierSet(), False
    for r in requirements:
        if canonicalize_name(r.name) == "torch":
            spec &= r.specifier
            seen = True
    return spec if seen else None


# ---------------------------------------------------------------------------------------------
# after planning


def check_variants(pins: Sequence[Any]) -> None:
    """Refuse one target's pins that mix PyTorch builds (``torch 2.3.0+cu121`` next to ``torchvision 0.18.0+cpu``).

    ``pins`` are objects with ``name`` and ``version`` (``plan.Pin``). Plain versions carry no
    variant and are not compared.
    """
    seen: dict[str, list[str]] = {}
    for pin in pins:
        if canonicalize_name(pin.name) in ("torch", "torchvision", "torchaudio", "torchtext", "torchdata"):
            v = variant_of(pin.version)
            if v:
                seen.setdefault(v, []).append(f"{pin.name} {pin.version}")
    if len(seen) > 1:
        detail = "; ".join(f"{v}: {', '.join(names)}" for v, names in sorted(seen.items()))
        raise ResolutionImpossible(f"the plan mixes PyTorch builds ({detail}); one environment must use one build",
                                   hint=f"take the whole torch family from one index: --torch-backend {' or '.join(sorted(seen))}")


def driver_warnings(pins: Sequence[Any], profile: Profile) -> list[str]:
    """Warnings for CUDA builds among ``pins`` that the profile's captured driver supports only partly, or not at all."""
    driver = parse_driver(profile.facts.nvidia_driver, profile.facts.os)
    if driver is None:
        return []
    out = []
    for pin in pins:
        v = variant_of(pin.version)
        if canonicalize_name(pin.name) != "torch" or not v or not cuda_version(v):
            continue
        os = profile.facts.os
        if not _driver_ok(v, driver, os, compat=True):
            out.append(f"{pin.name} {pin.version} needs NVIDIA driver {driver_need(v, os)}; {profile.name} has "
                       f"{profile.facts.nvidia_driver}: CUDA will not initialize there (torch falls back to the CPU)")
        elif not _driver_ok(v, driver, os, compat=False):
            out.append(f"{pin.name} {pin.version} needs NVIDIA driver {driver_need(v, os)}; {profile.name} has "
                       f"{profile.facts.nvidia_driver}: it runs through CUDA minor version compatibility only")
    return out


def general_pytorch_indexes(indexes: Iterable[Any], base: str = PYTORCH_INDEX) -> list[str]:
    """Warnings for PyTorch indexes (under ``base`` or download.pytorch.org) given as *general* indexes
    (``--extra-index-url .../whl/cu121``): they re-host numpy, jinja2, certifi, ... and supply them."""
    out = []
    roots = (base.rstrip("/") + "/", PYTORCH_INDEX + "/")
    for ix in indexes:
        if not ix.explicit and ix.kind == "index" and ix.url.startswith(roots):
            m = re.search(r"/(?:nightly/)?(cpu|cu\d+)/?$", ix.url)
            use = f" --torch-backend {m.group(1)}" if m else " --torch-backend"
            out.append(f"index {ix.name} ({redact_url(ix.url)}) is a PyTorch index used as a general index: every project it has "
                       f"(it re-hosts numpy, jinja2, certifi, ..., often stale) is taken from it; use{use} instead, "
                       "which takes only the torch family from it")
    return out
