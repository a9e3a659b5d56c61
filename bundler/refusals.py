"""Why a project's files are refused on a target, in words: a refused sdist (``--only-binary``), a
Requires-Python bound, and the table of what the index has. Used by ``bundler.diagnose`` and
``bundler.heldback``."""

from __future__ import annotations

from typing import Sequence

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidSdistFilename, parse_sdist_filename
from packaging.version import InvalidVersion, Version

from bundler.index import Link
from bundler.profile import Profile
from bundler.select import Policy, availability, best_rank, check_sdist, compress, parsable_version, requires_python_ok, wheel_info


def availability_table(links: Sequence[Link], limit: int = 6) -> str:
    """An indented table: version | Python tags | platforms, newest first; a version that has an
    sdist says so (``; sdist``), and a version published only as one has its own row."""
    rows = availability(links)
    sdists = sdist_links(links)
    if not rows:
        names = sorted({link.filename for link in links if not link.is_wheel})
        return "    only source distributions: " + compress(names, 4) if names else "    no files at all"
    table = {Version(v): (compress(py, 5), compress(plats, 4)) for v, py, plats in rows}
    for v in sdists:
        table.setdefault(v, ("(no wheels)", ""))
    versions = sorted(table, reverse=True)
    lines = []
    for v in versions[:limit]:
        py, plats = table[v]
        source = ("sdist only" if not plats else f"{plats}; sdist") if v in sdists else plats
        lines.append(f"    {str(v):<14} {py:<34} {source}")
    if len(versions) > limit:
        lines.append(f"    ... and {len(versions) - limit} older versions")
    return "\n".join(lines)


def sdist_links(links: Sequence[Link]) -> dict[Version, Link]:
    """The sdists among ``links`` by version (the first of each version)."""
    out: dict[Version, Link] = {}
    for link in links:
        if link.is_wheel:
            continue
        try:
            _, version = parse_sdist_filename(link.filename)
        except (InvalidSdistFilename, InvalidVersion):
            continue
        out.setdefault(version, link)
    return out


def build_hint(name: str, policy: Policy) -> str:
    """How to let wheelhouse build ``name`` from source under pip's --only-binary rule."""
    if ":all:" in policy.only_binary:
        return f"let wheelhouse build it: drop --only-binary :all:, or exempt it with --no-binary {name} (a name overrides :all:)"
    return f"let wheelhouse build it: take {name} out of --only-binary"


def file_story(name: str, links: Sequence[Link], profile: Profile, policy: Policy,
               spec: SpecifierSet | None = None) -> tuple[str, str] | None:
    """(sentence, hint) naming why the newest version of ``name`` (admitted by ``spec``) that has
    files has no usable one, when the reason is a refused sdist or a Requires-Python the target's
    Python misses (an upper bound is named as such); None otherwise."""
    return sdist_story(name, links, profile, policy, spec) or python_story(name, links, profile, spec)


def sdist_story(name: str, links: Sequence[Link], profile: Profile, policy: Policy,
                spec: SpecifierSet | None = None) -> tuple[str, str] | None:
    """(sentence, hint) when the newest version of ``name`` admitted by ``spec`` with no wheel for
    the target has an sdist that is refused (``--only-binary``, a hash, --exclude-newer...)."""
    ranks = profile.tag_ranks()
    fitting: set[Version] = set()
    published: set[Version] = set()
    for link in links:
        info = wheel_info(link.filename) if link.is_wheel else None
        if info is not None:
            published.add(info[1])
            if best_rank(info[2], ranks) is not None and requires_python_ok(link.requires_python, _full(profile)):
                fitting.add(info[1])
    admitted = [(v, link) for v, link in sdist_links(links).items()
                if v not in fitting and (spec is None or spec.contains(v, prereleases=True))]
    if admitted:
        version, link = max(admitted, key=lambda item: item[0])
        what = (f"{name} {version} has no wheel for this target, only an sdist" if version in published
                else f"{name} {version} is published only as an sdist")
        if not policy.source_allowed(name):
            return f"{what}, and --only-binary forbids building it", build_hint(name, policy)
        refused = check_sdist(link, version, profile, policy, False, None)
        if refused is not None and refused.reason != "requires-python":
            return f"{what}, and it is refused: {refused.detail}", hint_for([refused.reason], profile)
    return None


def _full(profile: Profile) -> str:
    return profile.markers["python_full_version"]


def python_story(name: str, links: Sequence[Link], profile: Profile, spec: SpecifierSet | None = None) -> tuple[str, str] | None:
    """(sentence, hint) when the newest version of ``name`` (admitted by ``spec``) is refused for its
    Requires-Python, naming the bound, and saying so when it is an upper one (``<=3.8`` on 3.9)."""
    found = []
    for link in links:
        info = wheel_info(link.filename) if link.is_wheel else None
        version = info[1] if info else None if link.is_wheel else _sdist_version(link)
        if version and (spec is None or spec.contains(version, prereleases=True)) and link.requires_python \
                and not requires_python_ok(link.requires_python, _full(profile)):
            found.append((version, link.requires_python))
    if not found:
        return None
    version, bound = max(found)
    py = _full(profile)
    try:
        failing = [s for s in SpecifierSet(bound) if not s.contains(py, prereleases=True)]
    except InvalidSpecifier:
        failing = []
    if failing and all(s.operator in ("<", "<=") or s.operator in ("==", "~=", "===") and parsable_version(s.version)
                       and Version(py) > Version(s.version.replace("*", "0")) for s in failing):
        return (f"{name} {version} requires Python {bound}, an upper bound the target's Python {py} is past",
                f"use a target with an older Python, or a {name} release whose Requires-Python admits {py}")
    return (f"{name} {version} requires Python {bound}; the target runs {py}",
            f"pick a {name} version that supports Python {profile.markers['python_version']}, or a target with another Python")


def _sdist_version(link: Link) -> Version | None:
    try:
        return parse_sdist_filename(link.filename)[1]
    except (InvalidSdistFilename, InvalidVersion):
        return None


def hint_for(reasons: Sequence[str], profile: Profile) -> str:
    """What to do about files refused for ``reasons`` (``Rejection.reason`` codes) on ``profile``."""
    if reasons == ["sdist"]:
        return "its only files are source distributions, and --only-binary forbids building them: drop --only-binary for it"
    if "requires-python" in reasons and "tags" not in reasons:
        return f"pick a version that supports Python {profile.markers['python_version']}, or a target with another Python"
    if reasons == ["no-hash"]:
        return ("this index publishes no sha256 for these files; use one that does, or serve the wheels as a --find-links folder "
                "or page (their files are hashed when read)")
    if "too-new" in reasons:
        return "move --exclude-newer later, or pin an older version"
    return "choose a version that has wheels for this target (see the table), or a target that matches an available wheel"
