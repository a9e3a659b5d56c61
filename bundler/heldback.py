"""Warnings for requested projects that resolved far below their newest release.

``hydra-core`` under ``--only-binary :all:`` resolves to 0.11.3 from 2019 without a word: every
newer release needs ``antlr4-python3-runtime==4.9.*``, published only as an sdist. The resolver
is right to back off, but the user should hear why. This is cheap by construction: only the
user's own requirements are looked at, and only one whose locked version is older than the
newest release that fits the target costs anything more (one more resolution, pinned to that
release, whose failure names the cause).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from bundler.choicememo import ChoiceMemo
from bundler.errors import BundlerError, ResolutionImpossible
from bundler.index import Link, ProjectIndex
from bundler.model import Inputs, Plan, TargetPlan
from bundler.plan import MetadataStore, SdistMetadata, evaluate_markers, resolve_target
from bundler.refusals import sdist_story
from bundler.select import filter_specifier


def held_back_warnings(repo: ProjectIndex, inputs: Inputs, result: Plan, *, sources: SdistMetadata | None = None,
                       direct_links: Mapping[str, Link] | None = None) -> list[str]:
    """One warning per (target, requested project) locked below its newest release for that target
    because that release needs an sdist the policy forbids building, or cannot otherwise be served."""
    store = MetadataStore(repo, sources)
    memo = ChoiceMemo(getattr(repo, "cache", None))  # the rankings the lock made, when the policies agree
    out: list[str] = []
    for target in result.targets:
        ranks = target.profile.tag_ranks()
        for req in evaluate_markers(inputs.requirements, target.profile):
            if req.url:
                continue
            warning = _held_back(repo, store, memo, ranks, inputs, target, req.name, req.specifier, direct_links or {})
            if warning:
                out.append(warning)
    return out


def _held_back(repo: ProjectIndex, store: MetadataStore, memo: ChoiceMemo, ranks: dict[str, int], inputs: Inputs,
               target: TargetPlan, name: str, spec: SpecifierSet, direct_links: Mapping[str, Link]) -> str | None:
    pin = next((p for p in target.pins if p.name == name), None)
    found = repo.project_links(name)
    if pin is None or found is None or inputs.preferred.get(target.profile.name, {}).get(name) == pin.version:
        return None  # an existing lock's pin is kept on purpose (-U releases it)
    profile, policy = target.profile, inputs.policy
    for c in evaluate_markers(inputs.constraints, profile):
        if c.name == name:
            spec &= c.specifier
    # The newest release that could serve the target if building were allowed (Requires-Python,
    # yanking, --exclude-newer and pre-release rules still hold).
    anything = dataclasses.replace(policy, only_binary=frozenset(), no_binary=frozenset())
    choices = memo.versions(canonicalize_name(name), found[1], profile, policy=anything, ranks=ranks)
    newest = filter_specifier(choices, spec, allow_pre=policy.allow_pre)
    if not newest or newest[0].version <= Version(pin.version):
        return None
    release = newest[0].version
    trial = dataclasses.replace(inputs, constraints=(*inputs.constraints, Requirement(f"{name}=={release}")))
    try:
        resolve_target(repo, store, profile, trial, direct_links)
    except ResolutionImpossible as e:
        cause = _sdist_cause(repo, [*e.causes, *e.side_causes], profile, policy)
    except BundlerError:
        return None
    else:
        return None  # it resolves: the older version was a preference, not a necessity
    if cause is None:
        return None
    return (f"{name} resolved to {pin.version} on target {profile.name}, although {release} is its newest release "
            f"for this target; {release} was ruled out: {cause}")


def _sdist_cause(repo: ProjectIndex, causes: Sequence[Any], profile: Any, policy: Any) -> str | None:
    """The first cause whose requirement only a refused sdist could meet, in words with its hint."""
    for info in causes:
        name = info.requirement.name
        found = repo.project_links(name) if name != "<python>" else None
        if found is None:
            continue
        story = sdist_story(name, found[1], profile, policy, info.requirement.specifier)
        if story is not None:
            who = f"{info.parent} requires {info.requirement}; " if info.parent is not None else ""
            return f"{who}{story[0]} ({story[1]})"
    return None
