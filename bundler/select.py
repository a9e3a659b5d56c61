"""Pure candidate selection: which file of which version a target can use, and why not.

Given a project's links and a target ``Profile``, ``versions_for_target`` returns, for each
version, the best wheel by the target's tag priority, after applying requires-python (against the
target's full version), yanking (PEP 592: only for ``==`` pins), ``--exclude-newer``, hash pins and
pre-release rules (PEP 440). ``explain_links`` says why each file was rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime
from typing import Iterable, Iterator, Sequence

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from bundler.index import Link
from bundler.pagefiles import PageFiles, tag_key
from bundler.platforms import libc_requirement, normalize_arch
from bundler.profile import Profile


@dataclass(frozen=True, slots=True, kw_only=True)
class WheelChoice:
    """The file chosen for one version of a project on one target."""

    name: str  # canonical project name
    version: Version
    link: Link
    rank: int  # tag priority of the link on the target (0 is best)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """One file the target cannot use, and why."""

    filename: str
    version: str
    reason: str  # short code: sdist | tags | requires-python | yanked | too-new | hash | no-hash | bad-name
    detail: str
    distance: int = 2  # how far from usable: 1 only the libc is too old, 2 one flaw, 3 two, 4 not a wheel


@dataclass(frozen=True, slots=True)
class Policy:
    """Knobs that apply to every project.

    ``undated_ok`` names indexes whose files may lack an upload time under ``exclude_newer`` (the
    PyTorch indexes give none; their projects are pinned by exact versions instead).
    """

    allow_pre: bool = False
    exclude_newer: datetime | None = None
    undated_ok: frozenset[str] = frozenset()
    # pip's --only-binary / --no-binary: canonical names, or ":all:" for every project. A bare
    # Policy() takes wheels only: sdists need a builder (``plan(sources=...)``), which only a
    # Job's run supplies; ``job.build_job`` gives pip's default (sdists allowed) there.
    only_binary: frozenset[str] = frozenset({":all:"})
    no_binary: frozenset[str] = frozenset()

    def source_allowed(self, project: str) -> bool:
        """Whether an sdist of ``project`` may be a candidate (``--only-binary`` forbids it)."""
        return _names_rule(self.only_binary, self.no_binary, project)

    def binary_allowed(self, project: str) -> bool:
        """Whether a wheel of ``project`` may be a candidate (``--no-binary`` forbids it)."""
        return _names_rule(self.no_binary, self.only_binary, project)


@lru_cache(maxsize=1 << 16)  # pure; a page is ranked once per target, and again for pins and explanations
def wheel_info(filename: str) -> tuple[str, Version, frozenset[str]] | None:
    """Name, version and tag strings of a wheel filename, or None when it is malformed."""
    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        return None
    return name, version, frozenset(str(t) for t in tags)


def best_rank(tags: Iterable[str], ranks: dict[str, int]) -> int | None:
    """The best (lowest) priority of any of ``tags`` on the target, or None if none is supported."""
    best = None
    for t in tags:
        r = ranks.get(t)
        if r is not None and (best is None or r < best):
            best = r
    return best


def filename_tags(filename: str) -> Iterator[str]:
    """The tags of a wheel filename's (compressed) tag set, from the string alone (no validation)."""
    parts = filename[:-4].lower().split("-")
    if len(parts) < 5:
        return
    for py in parts[-3].split("."):
        for abi in parts[-2].split("."):
            for plat in parts[-1].split("."):
                yield f"{py}-{abi}-{plat}"


def tag_mismatch(tags: Iterable[str], profile: Profile) -> tuple[str, int]:
    """Say in words why a wheel's tags miss the target (the Python side, the platform side, or
    both), with the ``Rejection.distance`` that goes with it."""
    accepted = set(profile.tags)
    pys = {t.rsplit("-", 1)[0] for t in accepted}
    plats = set(profile.platform_tags()) | {"any"}
    wheel_pys = sorted({t.rsplit("-", 1)[0] for t in tags})
    wheel_plats = sorted({t.rsplit("-", 1)[1] for t in tags})
    py_ok = any(p in pys for p in wheel_pys)
    plat_ok = any(p in plats for p in wheel_plats)
    parts, distance = [], 2
    if not py_ok:
        parts.append(f"built for {', '.join(wheel_pys)}; the target runs {profile.describe().split(' on ')[0]}")
    if not plat_ok:
        gap, libc_only = _platform_gap(wheel_plats, profile)
        parts.append(f"built for {', '.join(wheel_plats)}; {gap}")
        distance = 3 if not py_ok else 1 if libc_only else 2
    return "; ".join(parts) or "tag combination not supported: " + ", ".join(sorted(tags)), distance


def _platform_gap(wheel_plats: Sequence[str], profile: Profile) -> tuple[str, bool]:
    """Why the platforms miss, and whether only the libc is too old (same OS and CPU)."""
    f = profile.facts
    for plat in wheel_plats:
        need = libc_requirement(plat)
        if need and f.libc_version and need[0] == f.libc and normalize_arch(need[2]) == f.arch:
            return f"it needs {need[0]} {need[1][0]}.{need[1][1]}, the target has {f.libc_version}", True
    return f"the target is {f.os} {f.arch}" + (f" with {f.libc} {f.libc_version}" if f.libc else ""), False


@lru_cache(maxsize=4096)  # pure, and a project repeats the same few values on thousands of files
def requires_python_ok(spec: str | None, python_full_version: str) -> bool:
    """Whether a Requires-Python value admits the target's full Python version (bad values admit)."""
    if not spec:
        return True
    try:
        return SpecifierSet(spec).contains(python_full_version, prereleases=True)
    except InvalidSpecifier:
        return True  # pip and uv ignore unparsable values instead of failing the whole project


def unhashed_index_file(link: Link) -> bool:
    """True for a file a simple-API index gives no sha256 for. Every locked file is installed with
    --require-hashes, so an index must give one; a find-links page may not (the planner then hashes
    the file on its first download, ``bundler.findlinks``), and local files are hashed when read."""
    return link.sha256 is None and not link.flat


def _check(link: Link, info: tuple[str, Version, frozenset[str]] | None, profile: Profile,
           ranks: dict[str, int], policy: Policy, pinned: bool, hashes: frozenset[str] | None) -> Rejection | int:
    """Return the tag rank of a usable wheel, or the Rejection that rules it out."""
    if info is None:
        kind = "sdist" if not link.is_wheel else "bad-name"
        detail = "a source distribution wheelhouse cannot read" if kind == "sdist" else "malformed wheel filename"
        return Rejection(filename=link.filename, version="?", reason=kind, detail=detail, distance=4)
    version = info[1]

    def reject(reason: str, detail: str, distance: int = 2) -> Rejection:  # the version in words only when rejected
        return Rejection(filename=link.filename, version=str(version), reason=reason, detail=detail, distance=distance)

    rank = best_rank(info[2], ranks)
    if rank is None:
        detail, distance = tag_mismatch(info[2], profile)
        return reject("tags", detail, distance)
    if not requires_python_ok(link.requires_python, profile.markers["python_full_version"]):
        return reject("requires-python", f"requires Python {link.requires_python}")
    if link.is_yanked and not pinned:
        return reject("yanked", "yanked" + (f" ({link.yanked})" if link.yanked else ""))
    if policy.exclude_newer and link.upload_time and link.upload_time >= policy.exclude_newer:
        return reject("too-new", f"uploaded {link.upload_time:%Y-%m-%d %H:%M}, after --exclude-newer")
    if policy.exclude_newer and link.upload_time is None and not link.flat and link.index not in policy.undated_ok:
        # As uv does: a file whose index gives no upload time cannot be shown to be old enough.
        return reject("too-new", "the index gives no upload time, so --exclude-newer cannot admit it")
    if unhashed_index_file(link):
        return reject("no-hash", "the index gives no sha256 for it")
    if hashes is not None and link.sha256 not in hashes:
        return reject("hash", "sha256 not among the pinned --hash values")
    return rank


def versions_for_target(
    project: str,
    links: Sequence[Link],
    profile: Profile,
    *,
    policy: Policy = Policy(),
    pinned_versions: frozenset[Version] = frozenset(),
    hashes: frozenset[str] | None = None,
    ranks: dict[str, int] | None = None,
) -> list[WheelChoice]:
    """For each version of ``project``, the best usable wheel on ``profile``; newest version first.

    ``pinned_versions`` lists versions named by an ``==`` pin, for which yanked files are allowed.
    Pre-release filtering is left to the caller, which knows the specifiers.
    """
    ranks = ranks if ranks is not None else profile.tag_ranks()
    norm = canonicalize_name(project)
    best: dict[Version, WheelChoice] = {}
    python = profile.markers["python_full_version"]
    # Most files of big projects are for other platforms or fail a check that needs no version:
    # they are skipped before the (much slower) full filename parse. ``_check`` below still decides;
    # this only leaves out files it would reject.
    ours: dict[str, bool] = {}  # a name as files spell it -> whether it is this project's
    for link in _usable_wheels(links, ranks):
        if _rejected_whatever_the_version(link, python, policy, pinned_versions, hashes):
            continue
        info = wheel_info(link.filename)
        if info is None:
            continue
        mine = ours.get(info[0])
        if mine is None:
            mine = ours[info[0]] = canonicalize_name(info[0]) == norm
        if not mine:
            continue
        version = info[1]
        result = _check(link, info, profile, ranks, policy, version in pinned_versions, hashes)
        if isinstance(result, Rejection):
            continue
        current = best.get(version)
        if current is None or result < current.rank:
            best[version] = WheelChoice(name=norm, version=version, link=link, rank=result)
    return with_sdists([best[v] for v in sorted(best, reverse=True)], norm, links, profile, policy=policy,
                       pinned_versions=pinned_versions, hashes=hashes)


def _usable_wheels(links: Sequence[Link], ranks: dict[str, int]) -> Iterator[Link]:
    """The wheels of ``links`` whose tag set ``ranks`` supports, in page order, judged from the
    filename alone (no validation) and remembered per distinct tag set: a project's thousands of
    files share a few dozen. A ``PageFiles`` makes the ``Link`` of those files only."""
    seen: dict[str, bool] = {}

    def usable(key: str) -> bool:
        ok = seen.get(key)
        if ok is None:
            ok = seen[key] = best_rank(filename_tags(f"x-1-{key}.whl"), ranks) is not None
        return ok

    if isinstance(links, PageFiles):
        wanted = sorted(i for key, positions in links.tag_groups().items() if usable(key) for i in positions)
        return (k for k in map(links.link, wanted) if k is not None)
    return (k for k in links if (key := tag_key(k.filename)) is not None and usable(key))


def _rejected_whatever_the_version(link: Link, python: str, policy: Policy, pinned: frozenset[Version],
                                   hashes: frozenset[str] | None) -> bool:
    """True when ``_check`` rejects ``link`` for a reason that does not depend on its version."""
    if unhashed_index_file(link) or (hashes is not None and link.sha256 not in hashes):
        return True
    if link.is_yanked and not pinned:
        return True
    if policy.exclude_newer:
        if link.upload_time is None:
            if not link.flat and link.index not in policy.undated_ok:
                return True
        elif link.upload_time >= policy.exclude_newer:
            return True
    return not requires_python_ok(link.requires_python, python)


def filter_specifier(choices: Sequence[WheelChoice], specifier: SpecifierSet, *, allow_pre: bool) -> list[WheelChoice]:
    """Keep the choices whose version satisfies ``specifier``.

    Pre-releases follow uv's default: allowed with ``--pre``, when a specifier names one, or when
    the project has nothing but pre-releases.
    """
    only_pre = bool(choices) and all(c.version.is_prerelease for c in choices)
    pre = allow_pre or names_pre_release(specifier) or only_pre
    return [c for c in choices if specifier.contains(c.version, prereleases=pre) and (pre or not c.version.is_prerelease)]


def names_pre_release(specifier: SpecifierSet) -> bool:
    """Whether ``specifier`` asks for a pre-release by naming one (``!=`` never does, as in packaging and pip)."""
    return any(Version(s.version.replace("*", "0")).is_prerelease for s in specifier if s.operator != "!=" and parsable_version(s.version))


def parsable_version(v: str) -> bool:
    """Whether a specifier version (wildcards allowed) parses as a PEP 440 version."""
    try:
        Version(v.replace("*", "0"))
    except InvalidVersion:
        return False
    return True


def explain_links(project: str, links: Sequence[Link], profile: Profile, *, policy: Policy = Policy()) -> list[Rejection]:
    """Why each file of ``project`` cannot be used on ``profile`` (usable files are left out)."""
    ranks = profile.tag_ranks()
    norm = canonicalize_name(project)
    out = []
    for link in links:
        version = None if link.is_wheel else sdist_version(link.filename, norm)
        if version is not None:  # an sdist: refused by the policy, or by the checks a wheel gets
            rejection = (check_sdist(link, version, profile, policy, False, None) if policy.source_allowed(norm) else
                         Rejection(filename=link.filename, version=str(version), reason="sdist", distance=4,
                                   detail="a source distribution, and --only-binary forbids building it"))
            if rejection is not None:
                out.append(rejection)
            continue
        info = wheel_info(link.filename) if link.is_wheel else None
        result = _check(link, info, profile, ranks, policy, False, None)
        if isinstance(result, Rejection):
            out.append(result)
    return out


def availability(links: Sequence[Link]) -> list[tuple[str, list[str], list[str]]]:
    """Summarize what a project offers: (version, python tags, platform tags) per version, newest first."""
    table: dict[Version, tuple[set[str], set[str]]] = {}
    for link in links:
        info = wheel_info(link.filename) if link.is_wheel else None
        if info is None:
            continue
        pys, plats = table.setdefault(info[1], (set(), set()))
        for t in info[2]:
            interpreter, abi, platform = t.split("-")
            pys.add(interpreter if abi in ("none", "abi3") or abi == interpreter else f"{interpreter}-{abi}")
            plats.add(platform)
    return [(str(v), sorted(table[v][0]), sorted(table[v][1])) for v in sorted(table, reverse=True)]


def compress(items: Sequence[str], limit: int = 8) -> str:
    items = list(items)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", ... ({len(items) - limit} more)"


def target_needs(profile: Profile) -> str:
    """What the target accepts, in a few words: its own ABI tag (plus abi3 and pure wheels) and platforms."""
    plats = profile.platform_tags()
    own = profile.tags[0].split("-")[1] if profile.tags else "?"
    return f"{profile.describe()}; accepts {own}, abi3 and pure-Python wheels for {compress(plats, 4)}"


# -- source distributions ---------------------------------------------------------------------

SDIST_RANK = 1 << 20  # worse than any wheel tag: a version's wheel is always preferred to its sdist


def _names_rule(forbid: frozenset[str], allow: frozenset[str], project: str) -> bool:
    """pip's rule for --only-binary/--no-binary: a name given to one flag overrides ``:all:`` given to the other."""
    if project in allow:
        return True
    return project not in forbid and ":all:" not in forbid


def sdist_version(filename: str, project: str) -> Version | None:
    """The version of an sdist filename of ``project`` (.tar.gz or .zip), or None when it is not one."""
    if not filename.endswith((".tar.gz", ".zip")):
        return None
    try:
        name, version = parse_sdist_filename(filename)
    except (InvalidSdistFilename, InvalidVersion):
        return None
    return version if canonicalize_name(name) == project else None


def check_sdist(link: Link, version: Version, profile: Profile, policy: Policy, pinned: bool,
                hashes: frozenset[str] | None) -> Rejection | None:
    """The Rejection that rules out an sdist (the checks of a wheel, tags aside), or None when usable."""
    v = str(version)
    if not requires_python_ok(link.requires_python, profile.markers["python_full_version"]):
        return Rejection(filename=link.filename, version=v, reason="requires-python", detail=f"requires Python {link.requires_python}")
    if link.is_yanked and not pinned:
        return Rejection(filename=link.filename, version=v, reason="yanked", detail="yanked" + (f" ({link.yanked})" if link.yanked else ""))
    if policy.exclude_newer and (link.upload_time is None and not link.flat and link.index not in policy.undated_ok
                                 or link.upload_time and link.upload_time >= policy.exclude_newer):
        return Rejection(filename=link.filename, version=v, reason="too-new", detail="not shown to be older than --exclude-newer")
    if unhashed_index_file(link):
        return Rejection(filename=link.filename, version=v, reason="no-hash", detail="the index gives no sha256 for it")
    if hashes is not None and link.sha256 not in hashes:
        return Rejection(filename=link.filename, version=v, reason="hash", detail="sha256 not among the pinned --hash values")
    return None


def with_sdists(choices: list[WheelChoice], project: str, links: Sequence[Link], profile: Profile, *, policy: Policy,
                pinned_versions: frozenset[Version] = frozenset(), hashes: frozenset[str] | None = None) -> list[WheelChoice]:
    """``choices`` (wheels, newest first) plus, for each version with no usable wheel, its sdist when
    the policy allows building it; without ``binary_allowed`` the wheels are dropped."""
    if not policy.binary_allowed(project):
        choices = []
    if not policy.source_allowed(project):
        return choices
    have = {c.version for c in choices}
    extra: dict[Version, WheelChoice] = {}
    for link in links.non_wheels() if isinstance(links, PageFiles) else (k for k in links if not k.is_wheel):
        version = sdist_version(link.filename, project)
        if version is None or version in have or version in extra:
            continue
        if check_sdist(link, version, profile, policy, version in pinned_versions, hashes) is None:
            extra[version] = WheelChoice(name=project, version=version, link=link, rank=SDIST_RANK)
    if not extra:
        return choices
    return sorted([*choices, *extra.values()], key=lambda c: c.version, reverse=True)
