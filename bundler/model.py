"""The data passed from the planner to the later stages: what to resolve, and what was resolved.

Frozen dataclasses with no behaviour, so ``lock``, ``job`` and the command line can use them without
loading the resolver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from packaging.requirements import Requirement

from bundler.index import IndexConfig, Link
from bundler.profile import Profile
from bundler.select import Policy


@dataclass(frozen=True, slots=True, kw_only=True)
class Pin:
    """One package of a target's closure, with the file chosen for that target."""

    name: str
    version: str
    link: Link


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetPlan:
    profile: Profile
    pins: tuple[Pin, ...]
    bootstrap: Pin | None = None  # the pip wheel the installer runs on the target (None: none found)
    uv: Pin | None = None  # the uv wheel the installer prefers when there is one; not installed either


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildRecord:
    """How one locked sdist is built: its build requirements, resolved for the builder's Python (to
    build it in isolation there) and for each target (to build it there when the result is not pure)."""

    sdist: str  # sha256 of the sdist
    filename: str
    requires: tuple[str, ...]
    builder: tuple[Pin, ...]
    targets: Mapping[str, tuple[Pin, ...]] = field(default_factory=dict)  # profile name -> closure


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    targets: tuple[TargetPlan, ...]
    indexes: tuple[IndexConfig, ...]
    requirements: tuple[str, ...] = ()
    builds: tuple[BuildRecord, ...] = ()  # one per locked sdist


@dataclass(frozen=True, slots=True, kw_only=True)
class Inputs:
    """Everything a resolution starts from, parsed but with markers not yet evaluated."""

    requirements: tuple[Requirement, ...]
    constraints: tuple[Requirement, ...] = ()
    hashes: Mapping[str, frozenset[str]] = field(default_factory=dict)  # --hash pins per canonical name
    policy: Policy = Policy()
    # The pins of an existing lock, tried first when they still fit, as pip-compile and uv do:
    # target name -> canonical project name -> version.
    preferred: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


BOOTSTRAP = "pip"  # the installer every target gets (``plan.with_bootstrap``)
FAST_INSTALLER = "uv"  # and the faster one install.sh prefers, when an index has it for the target
