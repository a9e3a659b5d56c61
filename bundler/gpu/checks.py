"""Checks on a job's indexes and a finished plan: one PyTorch build per environment, drivers that run it."""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

from packaging.utils import canonicalize_name

from bundler.errors import ResolutionImpossible
from bundler.gpu.backend import PYTORCH_INDEX, variant_of
from bundler.gpu.cuda import cuda_version, driver_need, driver_ok, parse_driver
from bundler.index import redact_url
from bundler.profile import Profile


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
        if not driver_ok(v, driver, os, compat=True):
            out.append(f"{pin.name} {pin.version} needs NVIDIA driver {driver_need(v, os)}; {profile.name} has "
                       f"{profile.facts.nvidia_driver}: CUDA will not initialize there (torch falls back to the CPU)")
        elif not driver_ok(v, driver, os, compat=False):
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
