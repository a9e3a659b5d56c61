"""Words for failures: why a resolution is impossible, and why a project has no file for a target."""

from __future__ import annotations

from typing import Any, Sequence

from packaging.version import InvalidVersion, Version

from bundler.errors import BundlerError, NoCompatibleFile, ResolutionImpossible
from bundler.index import IndexConfig, Link, redact_url
from bundler.profile import Profile
from bundler.select import Policy, Rejection, availability, explain_links, filter_specifier, versions_for_target, wheel_info


def _who(info: Any) -> str:
    parent = info.parent
    if parent is None:
        return "you asked for"
    return f"{parent} requires"


def _compress(items: Sequence[str], limit: int = 8) -> str:
    items = list(items)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", ... ({len(items) - limit} more)"


def target_needs(profile: Profile) -> str:
    """What the target accepts, in a few words: its own ABI tag (plus abi3 and pure wheels) and platforms."""
    plats = profile.platform_tags()
    own = profile.tags[0].split("-")[1] if profile.tags else "?"
    return f"{profile.describe()}; accepts {own}, abi3 and pure-Python wheels for {_compress(plats, 4)}"


def availability_table(links: Sequence[Link], limit: int = 6) -> str:
    """An indented table: version | Python tags | platforms, newest first."""
    rows = availability(links)
    if not rows:
        sdists = sorted({link.filename for link in links if not link.is_wheel})
        return "    only source distributions: " + _compress(sdists, 4) if sdists else "    no files at all"
    lines = [f"    {v:<14} {_compress(py, 5):<34} {_compress(plats, 4)}" for v, py, plats in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"    ... and {len(rows) - limit} older versions")
    return "\n".join(lines)


def no_file_error(name: str, index: IndexConfig, links: Sequence[Link], profile: Profile, policy: Policy) -> BundlerError:
    """The error for a project whose files exist but none suits the target."""
    rejections = explain_links(name, links, profile, policy=policy)
    reasons = sorted({r.reason for r in rejections})
    hint = _hint_for(reasons, profile)
    msg = (f"{name} has no file usable on target {profile.name} (index {index.name}).\n"
           f"  target: {target_needs(profile)}\n  available:\n{availability_table(links)}")
    return NoCompatibleFile(msg, hint=hint)


def _hint_for(reasons: Sequence[str], profile: Profile) -> str:
    if reasons == ["sdist"]:
        return "this project publishes only source distributions; build a wheel for the target and add it with --find-links"
    if "requires-python" in reasons and "tags" not in reasons:
        return f"pick a version that supports Python {profile.markers['python_version']}, or a target with another Python"
    if reasons == ["no-hash"]:
        return "this index publishes no sha256 for these files; use one that does, or put the wheels in a --find-links folder (hashed when read)"
    if "too-new" in reasons:
        return "move --exclude-newer later, or pin an older version"
    return "choose a version that has wheels for this target (see the table), or a target that matches an available wheel"


def _version_of(link: Link) -> Any:
    info = wheel_info(link.filename) if link.is_wheel else None
    return info[1] if info else None


def explain_impossible(causes: Sequence[Any], provider: Any, profile: Profile) -> BundlerError:
    """Turn resolvelib's causes into a message built from the requirements involved."""
    by_name: dict[str, list[Any]] = {}
    for info in causes:
        by_name.setdefault(info.requirement.name, []).append(info)
    # A requirement nothing can satisfy on its own is a clearer story than the conflict around it.
    for name, infos in by_name.items():
        if name == "<python>":
            continue
        found = provider.repo.project_links(name)
        if found is None:
            searched = ", ".join(f"{i.name} ({redact_url(i.url)})" for i in provider.repo.sources_for(name))
            who = _who(infos[0])
            return ResolutionImpossible(f"{who} {infos[0].requirement}, but no index has a project named {name!r} (searched {searched})",
                                        hint="check the spelling, or add the index that hosts it (--extra-index-url, --index NAME=URL with --pin)")
        index, links = found
        usable = versions_for_target(name, links, profile, policy=provider.policy)
        if not usable:
            return no_file_error(name, index, links, profile, provider.policy)
        pinned = provider.hashes.get(name)
        if pinned is not None and not versions_for_target(name, links, profile, policy=provider.policy, hashes=pinned):
            offered = _compress([f"{c.link.filename} (sha256 {c.link.sha256})" for c in usable], 3)
            return ResolutionImpossible(
                f"no file of {name} on index {index.name} matches the --hash pins given for it "
                f"({_compress(sorted(pinned), 3)}); the files usable on target {profile.name} are {offered}",
                hint="a wrong or stale hash, or a file replaced on the index: check before regenerating the hashes")
        if len(infos) == 1:
            spec = infos[0].requirement.specifier
            ok = filter_specifier(usable, spec, allow_pre=provider.policy.allow_pre)
            if not ok:
                versions = _compress([str(c.version) for c in usable], 10)
                matching = [link for link, v in ((link, _version_of(link)) for link in links)
                            if v is not None and spec.contains(v, prereleases=True)]
                offered = f"\n  files matching {infos[0].requirement}:\n{availability_table(matching)}" if matching else ""
                return ResolutionImpossible(
                    f"{_who(infos[0])} {infos[0].requirement}, but no version of {name} that matches it has a wheel for target {profile.name}.\n"
                    f"  versions usable on the target: {versions}{offered}\n  target: {target_needs(profile)}",
                    hint="relax the version specifier, or allow pre-releases with --pre" if any(s.version for s in spec) else None)
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
    return ResolutionImpossible(head + ":\n" + "\n".join(lines),
                                hint="loosen one of these pins, or add a constraint (-c) that picks a compatible version")


def explain_project(name: str, found: list[tuple[IndexConfig, list[Link]]], chosen: IndexConfig | None,
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
        else:
            out.append("  usable: none")
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
