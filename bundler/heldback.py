"""Warnings for requested projects that resolved far below their newest release.

``hydra-core`` under ``--only-binary :all:`` resolves to 0.11.3 from 2019 without a word: every
newer release needs ``antlr4-python3-runtime==4.9.*``, published only as an sdist. The resolver
is right to back off, but the user should hear why. This is cheap by construction: only the
user's own requirements are looked at; a project with no file above its locked version (by name and
upload time alone, ``_above``) costs no ranking at all; and only one whose locked version is older
than the newest release that fits the target costs anything more (one more resolution, pinned to
that release, whose failure names the cause).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bundler.choicememo import ChoiceMemo
from bundler.errors import BundlerError, ResolutionImpossible
from bundler.index import Link, ProjectIndex, _parse_time
from bundler.model import Inputs, Plan, TargetPlan
from bundler.pagefiles import PageFiles
from bundler.plan import MetadataStore, SdistMetadata, evaluate_markers, resolve_target
from bundler.refusals import sdist_story
from bundler.select import Policy, filter_specifier, names_pre_release


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
    # Pre-releases above the lock are taken only when asked for, or when every choice is one: not so
    # when the locked version is a final release that the ranking below keeps (it drops a yanked one).
    locked = Version(pin.version)
    pre = policy.allow_pre or names_pre_release(spec) or locked.is_prerelease or pin.link.is_yanked
    if not _above(found[1], locked, spec, policy, pre=pre):
        return None  # no release above the locked one could be taken (the common case)
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


def _above(links: Sequence[Link], locked: Version, spec: SpecifierSet, policy: Policy, *, pre: bool) -> bool:
    """Whether some file of ``links`` may be a release above ``locked`` that ``spec`` and
    ``--exclude-newer`` admit (a pre-release only with ``pre``), judged from its name and upload time
    alone (no ``Link`` made for a page's files, each version text parsed once). False only when no
    such file exists, so no choice the ranking could keep is above ``locked``; a file it cannot
    judge counts as above."""
    if isinstance(links, PageFiles):
        names, times = links.columns[0], links.columns[5]
    else:
        names, times = [k.filename for k in links], [k.upload_time for k in links]
    newer: dict[str, bool] = {}
    for name, uploaded in zip(names, times):
        text = _version_text(name)
        if text is None:
            continue
        above = newer.get(text)
        if above is None:
            try:
                version = Version(text)
                above = newer[text] = (version > locked and (pre or not version.is_prerelease)
                                       and spec.contains(version, prereleases=True))
            except InvalidVersion:
                above = newer[text] = False  # not a distribution the ranking would take
        if not above:
            continue
        when = uploaded if not isinstance(uploaded, str) else _parse_time(uploaded)
        if policy.exclude_newer is None or when is None or when < policy.exclude_newer:
            return True
    return False


def _version_text(filename: str) -> str | None:
    """The version part of a wheel or sdist file name, as ``parse_wheel_filename`` and
    ``parse_sdist_filename`` split it; None for any other name."""
    if filename.endswith(".whl"):
        parts = filename.split("-")
        return parts[1] if len(parts) in (5, 6) else None
    for ext in (".tar.gz", ".zip"):
        if filename.endswith(ext):
            stem, dash, version = filename[:-len(ext)].rpartition("-")
            return version if dash and stem else None
    return None


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
