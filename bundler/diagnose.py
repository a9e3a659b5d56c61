"""Words for failures: why a resolution is impossible, and why a project has no file for a target."""

from __future__ import annotations

import re
from typing import Any, Sequence

from packaging.version import InvalidVersion, Version

from bundler.errors import BundlerError, NoCompatibleFile, ResolutionImpossible
from bundler.gpu.hints import driver_note, torch_index_hint, unknown_project_hint
from bundler.gpu.hints import same_release as _same_release
from bundler.index import IndexConfig, Link, ProjectIndex, redact_url, supplying_indexes
from bundler.platforms import libc_requirement, normalize_arch, parse_platform_tag
from bundler.profile import Profile
from bundler.refusals import hint_for, availability_table, file_story
from bundler.select import (
    Policy,
    Rejection,
    best_rank,
    explain_links,
    filter_specifier,
    compress,
    target_needs,
    versions_for_target,
    wheel_info,
)


def _who(info: Any) -> str:
    parent = info.parent
    if parent is None:
        return "you asked for"
    return f"{parent} requires"


def no_file_error(name: str, index: IndexConfig, links: Sequence[Link], profile: Profile, policy: Policy,
                  needed_by: str | None = None) -> BundlerError:
    """The error for a project whose files exist but none suits the target; ``needed_by`` says
    which requirement brought it in (``omegaconf 2.3.0 requires antlr4-python3-runtime==4.9.*``)."""
    rejections = explain_links(name, links, profile, policy=policy)
    reasons = sorted({r.reason for r in rejections})
    hint = hint_for(reasons, profile)
    gap = wheel_gap(name, links, profile)
    story = file_story(name, links, profile, policy)
    summary = ""
    if gap is not None:
        summary, hint = f"  {gap[0]}\n", gap[1]
    if story is not None:  # a refused sdist or a Requires-Python bound says more than the tags
        summary, hint = f"  {story[0]}\n{summary}", story[1]
    if needed_by:
        summary = f"  needed because {needed_by}\n{summary}"
    msg = (f"{name} has no file usable on target {profile.name} (index {index.name}).\n{summary}"
           f"  target: {target_needs(profile)}\n  available:\n{availability_table(links)}")
    return NoCompatibleFile(msg, hint=hint)


# ---------------------------------------------------------------------------------------------
# No wheel for the target's Python, platform or glibc: one sentence and what to change.

def _plat_words(plats: Sequence[str]) -> list[str]:
    """``manylinux_2_17_x86_64`` -> ``manylinux_2_17 x86_64``; legacy aliases of a PEP 600 tag are dropped."""
    plats = sorted(set(plats))
    out = []
    for p in plats:
        tag = parse_platform_tag(p)
        if tag is None or tag.kind == "windows":
            out.append(p)
            continue
        if tag.is_legacy and tag.version and f"manylinux_{tag.version[0]}_{tag.version[1]}_{tag.arch}" in plats:
            continue
        out.append(tag.words())
    return out


def _pythons(tags: Sequence[str]) -> str:
    """``cp310-cp310-..., cp312-cp312-...`` -> ``CPython 3.10-3.12``; other tag sets are listed as they are."""
    minors, abi3, other = set(), [], set()
    for t in tags:
        interp, abi, _ = t.split("-")
        m = re.fullmatch(r"cp3(\d+)", interp)
        if m and abi == "abi3":
            abi3.append(int(m.group(1)))
        elif m:
            minors.add(int(m.group(1)))
        else:
            other.add(interp if abi in ("none", interp) else f"{interp}-{abi}")
    parts = []
    if minors:
        lo, hi = min(minors), max(minors)
        run = f"3.{lo}-3.{hi}" if sorted(minors) == list(range(lo, hi + 1)) and lo != hi else ", ".join(f"3.{m}" for m in sorted(minors))
        parts.append(f"CPython {run}")
    if abi3:
        parts.append(f"CPython 3.{min(abi3)}+ (abi3)")
    parts += sorted(other)
    return ", ".join(parts)


def _target_platform(profile: Profile) -> str:
    f = profile.facts
    if f.os == "linux":
        return f"{f.arch} with {f.libc} {f.libc_version}" if f.libc else f"Linux {f.arch}"
    if f.os == "macos":
        return f"macOS {f.macos_version} {f.arch}"
    return f"{f.os.capitalize()} {f.arch}"


def wheel_gap(name: str, links: Sequence[Link], profile: Profile) -> tuple[str, str] | None:
    """(sentence, hint) when no wheel of ``name`` has tags the target accepts: the Python is not
    built for (``torch 2.3.0+cu121 has wheels for CPython 3.10-3.12; the target runs 3.13``), or the
    platform or glibc is not (``... has wheels for manylinux_2_28 x86_64 / win_amd64; the target is
    aarch64 with glibc 2.17``). None when some wheel's tags fit (something else rules it out)."""
    ranks = profile.tag_ranks()
    wheels: dict[Version, list[frozenset[str]]] = {}
    for link in links:
        info = wheel_info(link.filename) if link.is_wheel else None
        if info is None:
            continue
        if best_rank(info[2], ranks) is not None:
            return None
        wheels.setdefault(info[1], []).append(info[2])
    if not wheels:
        return None
    plats = set(profile.platform_tags()) | {"any"}
    py = profile.markers["python_version"]
    on_platform = {v: [t for tags in ts for t in tags if t.rsplit("-", 1)[1] in plats] for v, ts in wheels.items()}
    fitting = [v for v, tags in on_platform.items() if tags]
    if fitting:
        v = max(fitting)
        pys = _pythons(on_platform[v])
        built = sorted({int(m.group(1)) for t in on_platform[v] if (m := re.match(r"cp3(\d+)-", t))})
        example = f" (for example --python-version 3.{built[-1]})" if built else ""
        return (f"{name} {v} has wheels for {pys}; the target runs {py}",
                f"use a target with a Python {name} {v} is built for{example}, or a {name} release with wheels for Python {py}")
    v = max(wheels)
    wheel_plats = sorted({t.rsplit("-", 1)[1] for tags in wheels[v] for t in tags})
    sentence = f"{name} {v} has wheels for {' / '.join(_plat_words(wheel_plats))}; the target is {_target_platform(profile)}"
    f = profile.facts
    needs = [need[1] for p in wheel_plats
             if (need := libc_requirement(p)) and normalize_arch(need[2]) == f.arch and need[0] == f.libc]
    if needs and f.libc_version:
        need = "%d.%d" % min(needs)
        return sentence, (f"the target's {f.libc} {f.libc_version} is older than {name} {v} needs ({need}): use a {name} "
                          f"version built for {f.libc} {f.libc_version} or older, or a target with {f.libc} >= {need}")
    return sentence, (f"{name} {v} is not built for the target's platform: choose a version that is (see the table), "
                      "or a target it is built for")


def _unknown_hint(name: str, sources: Sequence[IndexConfig]) -> str:
    return unknown_project_hint(name, sources) or "check the spelling, or add the index that hosts it (--extra-index-url, --index NAME=URL with --pin)"


def _version_of(link: Link) -> Any:
    info = wheel_info(link.filename) if link.is_wheel else None
    return info[1] if info else None


def _alone(name: str, infos: Sequence[Any], repo: ProjectIndex, profile: Profile, policy: Policy,
           hashes: Any) -> BundlerError | None:
    """The error when the requirements ``infos`` on ``name`` cannot be met whatever else is chosen
    (no such project, no usable file, hash pins, one specifier nothing matches); None when only
    their combination with others fails."""
    found = repo.project_links(name)
    if found is None:
        sources = supplying_indexes(repo.indexes, name)
        searched = ", ".join(f"{i.name} ({redact_url(i.url)})" for i in sources)
        who = _who(infos[0])
        return ResolutionImpossible(f"{who} {infos[0].requirement}, but no index has a project named {name!r} (searched {searched})",
                                    hint=_unknown_hint(name, sources))
    index, links = found
    usable = versions_for_target(name, links, profile, policy=policy)
    if not usable:
        parent = next((i for i in infos if i.parent is not None), None)
        return no_file_error(name, index, links, profile, policy, needed_by=parent and f"{_who(parent)} {parent.requirement}")
    pinned = hashes.get(name)
    if pinned is not None and not versions_for_target(name, links, profile, policy=policy, hashes=pinned):
        offered = compress([f"{c.link.filename} (sha256 {c.link.sha256 or 'not published by its page'})" for c in usable], 3)
        return ResolutionImpossible(
            f"no file of {name} on index {index.name} matches the --hash pins given for it "
            f"({compress(sorted(pinned), 3)}); the files usable on target {profile.name} are {offered}",
            hint="a wrong or stale hash, or a file replaced on the index: check before regenerating the hashes")
    if len(infos) == 1:
        spec = infos[0].requirement.specifier
        ok = filter_specifier(usable, spec, allow_pre=policy.allow_pre)
        if not ok:
            versions = compress([str(c.version) for c in usable], 10)
            matching = [link for link, v in ((link, _version_of(link)) for link in links)
                        if v is not None and spec.contains(v, prereleases=True)]
            offered = f"\n  files matching {infos[0].requirement}:\n{availability_table(matching)}" if matching else ""
            pre_helps = not policy.allow_pre and any(c.version.is_prerelease and spec.contains(c.version, prereleases=True)
                                                     for c in usable)
            hint = ("allow pre-releases with --pre" if pre_helps
                    else "relax the version specifier" if any(s.version for s in spec) else None)
            why = ""
            yanked = [link for link in matching if link.is_yanked]
            if matching and len(yanked) == len(matching):  # PEP 592: only the user's own pin takes one
                reasons = sorted({f" ({link.yanked})" if link.yanked else "" for link in yanked})
                why = (f"; {', '.join(sorted({str(_version_of(link)) for link in yanked}))} is yanked{reasons[0]}, "
                       "and a yanked release is taken only for your own == pin")
                hint = f"pin {name}=={_version_of(yanked[0])} yourself if you really need the yanked release"
            elsewhere = torch_index_hint(name, spec, index) if not matching else None
            gap = wheel_gap(name, matching, profile) if matching else None
            story = None if yanked or elsewhere else file_story(name, links, profile, policy, spec)
            if elsewhere:
                why, hint = f"; {elsewhere[0]}", elsewhere[1]
            elif story:
                why, hint = f"\n  {story[0]}", story[1]
            elif gap and not yanked:
                why, hint = f"\n  {gap[0]}", gap[1]
            if not elsewhere:
                hint = _same_release(name, spec, usable) or hint
            return ResolutionImpossible(
                f"{_who(infos[0])} {infos[0].requirement}, but no version of {name} that matches it has a wheel for target {profile.name}"
                f"{why}.\n"
                f"  versions usable on the target: {versions}{offered}\n  target: {target_needs(profile)}",
                hint=hint)
    return None


def explain_impossible(error: ResolutionImpossible, repo: ProjectIndex) -> BundlerError:
    """Turn the resolver's ``ResolutionImpossible`` (its causes, target and policy) into a message built
    from the requirements involved; an error without causes is returned as it is. ``repo`` is asked
    again for the projects involved (cheap: their pages are cached by then).

    A requirement of the user's that nothing can satisfy is the story; else a conflict between
    requirements on one project (the final causes) is, and requirements that failed on their own
    on the way there (``a 2.3.0 requires d``, no such project) are side notes, as are the
    ``side_causes`` the planner set aside to find the conflict."""
    if not error.causes or error.target is None:
        return error
    causes, profile, policy, hashes = error.causes, error.target, error.policy or Policy(), error.hashes
    by_name: dict[str, list[Any]] = {}
    for info in causes:
        by_name.setdefault(info.requirement.name, []).append(info)
    dead: list[tuple[Any, BundlerError]] = []
    for name, infos in by_name.items():
        found = None if name == "<python>" else _alone(name, infos, repo, profile, policy, hashes)
        if found is not None:
            dead.append((infos[0], found))
    for info, found in dead:
        if info.parent is None:
            return found
    conflicting = [n for n, infos in by_name.items() if not any(d[0] in infos for d in dead)]
    side = [f"    {_first_line(found)}" for _, found in [*dead, *_side_dead_ends(error, repo)]]
    if dead and not any(n == "<python>" or len(by_name[n]) > 1 for n in conflicting):
        first = dead[0][1]
        if side[1:]:
            first.message += "\n  also ruled out on the way:\n" + "\n".join(side[1:])
        return first
    by_name = {n: by_name[n] for n in conflicting}
    lines = []
    for name, infos in by_name.items():
        if name == "<python>":
            for info in infos:
                lines.append(f"  {info.parent} requires {info.requirement}, but the target runs Python {profile.markers['python_full_version']}")
            continue
        for info in infos:
            lines.append(f"  {_who(info)} {info.requirement}")
    names = [n for n in by_name if n != "<python>"]
    head = f"the requirements cannot all hold on target {profile.name}"
    if names:
        head += f": no version of {', '.join(names)} satisfies every constraint"
    if side:
        lines += ["  other versions were ruled out on the way:", *side]
    return ResolutionImpossible(head + ":\n" + "\n".join(lines),
                                hint="loosen one of these pins, or add a constraint (-c) that picks a compatible version")


def _first_line(error: BundlerError) -> str:
    return error.message.split("\n", 1)[0].rstrip(".")


def _side_dead_ends(error: ResolutionImpossible, repo: ProjectIndex) -> list[tuple[Any, BundlerError]]:
    """The planner's ``side_causes`` (requirements of versions it set aside because nothing could
    satisfy them) with the error each one is on its own."""
    out = []
    profile, policy = error.target, error.policy or Policy()
    for info in error.side_causes:
        found = _alone(info.requirement.name, [info], repo, profile, policy, error.hashes)
        if found is not None:
            out.append((info, found))
    return out


def explain_project(name: str, found: list[tuple[IndexConfig, Sequence[Link]]], chosen: IndexConfig | None,
                    profile: Profile, policy: Policy) -> str:
    """A report of every index's files for ``name`` on ``profile``: usable versions and near misses."""
    out = [f"{name} for target {profile.name}", f"  target: {target_needs(profile)}"]
    if not any(links for _, links in found):
        out.append("  no configured index has this project")
        return "\n".join(out)
    for index, links in found:
        tag = " (supplies this project)" if chosen is not None and index.name == chosen.name else ""
        if not links:
            out.append(f"\nindex {index.name} ({redact_url(index.url)}): no such project")
            continue
        usable = versions_for_target(name, links, profile, policy=policy)
        out.append(f"\nindex {index.name} ({redact_url(index.url)}){tag}: {len(links)} files")
        if usable:
            best = usable[0]
            out.append(f"  usable: {len(usable)} versions, newest {best.version} via {best.link.filename}")
            note = driver_note(name, usable, profile)
            if note:
                out.append(f"  note: {note}")
        else:
            out.append("  usable: none")
            gap = wheel_gap(name, links, profile)
            if gap:
                out += [f"  {gap[0]}", f"  hint: {gap[1]}"]
        out.append("  available:\n" + availability_table(links))
        near = _near_misses(explain_links(name, links, profile, policy=policy))
        if near:
            out.append("  near misses (newest versions):")
            out += [f"    {r.filename}: {r.detail}" for r in near]
    return "\n".join(out)


def _near_misses(rejections: Sequence[Rejection], limit: int = 8) -> list[Rejection]:
    """The rejections closest to usable (``Rejection.distance``), newest first among equals."""

    def key(r: Rejection) -> Any:
        try:
            v = Version(r.version)
        except InvalidVersion:
            v = Version("0")
        return (-r.distance, v)

    return sorted(rejections, key=key, reverse=True)[:limit]
