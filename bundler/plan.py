"""The planner: one resolvelib resolution per target over pure selection code.

The provider is thin. Candidates come from ``select.versions_for_target`` (the best wheel of each
version for the target's tags), dependencies from the core metadata of *that* wheel evaluated
against the target's markers, and Requires-Python is a requirement on a pseudo-project
``<python>`` whose only candidate is the target's Python, so that a wheel whose metadata excludes
the target is backtracked over like any other conflict.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Protocol, Sequence

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version
from resolvelib import AbstractProvider, BaseReporter, Resolver
from resolvelib.resolvers import ResolutionImpossible as _RLImpossible
from resolvelib.resolvers import ResolutionTooDeep

from bundler.errors import BadInput, BundlerError, NoCompatibleFile, ResolutionImpossible
from bundler.index import IndexConfig, Link, ProjectIndex, project_of_filename, redact_url
from bundler.model import BOOTSTRAP, FAST_INSTALLER, Inputs, Pin, Plan, TargetPlan
from bundler.profile import Profile
from bundler.speculate import Speculator
from bundler.select import (WheelChoice, best_rank, target_needs, filter_specifier, requires_python_ok, versions_for_target,
                            wheel_info)
from bundler.wheelmeta import BadMetadata, CoreMetadata, parse_metadata

PYTHON = "<python>"
SET_ASIDE_ROUNDS = 4  # resolutions tried when the failure is a version whose dependency nothing provides


def _key(name: str, extras: frozenset[str]) -> str:
    """resolvelib identifier: ``name`` or ``name[extra1,extra2]``."""
    return name + (f"[{','.join(sorted(extras))}]" if extras else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class Req:
    """A requirement on a project (with extras) from the user or from a package's metadata."""

    name: str  # canonical
    extras: frozenset[str] = frozenset()
    specifier: SpecifierSet = field(default_factory=SpecifierSet)
    url: str | None = None  # direct reference to a wheel
    parent: str | None = None  # "torchvision 0.18.1"; None for the user's own requirements
    text: str = ""

    @property
    def key(self) -> str:
        return _key(self.name, self.extras)

    def __str__(self) -> str:
        return self.text or f"{self.key}{self.specifier}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    name: str
    version: Version
    extras: frozenset[str] = frozenset()
    link: Link | None = None  # None only for the <python> pseudo-candidate

    @property
    def key(self) -> str:
        return _key(self.name, self.extras)

    def __str__(self) -> str:
        return f"{self.key} {self.version}"


class MetadataStore:
    """Parsed core metadata per file, shared by all targets' resolutions.

    An sdist's metadata comes from ``sources`` (``bundler.build.Builder``); without one, sdists
    cannot be read and their projects are named as needing a build."""

    def __init__(self, repo: ProjectIndex, sources: SdistMetadata | None = None) -> None:
        self.repo = repo
        self.sources = sources
        self._parsed: dict[str, CoreMetadata] = {}
        self._lock = threading.Lock()

    def get(self, link: Link) -> CoreMetadata:
        with self._lock:
            hit = self._parsed.get(link.url)
        if hit is not None:
            return hit
        return self.parse(link, self.repo.metadata(link) if link.is_wheel else sdist_metadata(self.sources, self.repo.hashed(link)))

    def parse(self, link: Link, data: bytes) -> CoreMetadata:
        """Parse (once) and remember the metadata ``data`` of ``link``."""
        key = link.url
        with self._lock:
            hit = self._parsed.get(key)
        if hit is not None:
            return hit
        try:
            meta = parse_metadata(data)
        except BadMetadata as e:
            raise BadInput(f"{link.filename}: {e}") from None
        with self._lock:
            self._parsed[key] = meta
        return meta


class SdistMetadata(Protocol):
    """Where the planner gets an sdist's core metadata (``bundler.build.Builder``)."""

    def metadata(self, link: Link) -> bytes: ...


def sdist_metadata(sources: SdistMetadata | None, link: Link) -> bytes:
    """The metadata of the sdist at ``link`` from ``sources``; an error naming the project without them."""
    if sources is None:
        raise NoCompatibleFile(f"{project_of_filename(link.filename)} {link.filename}: only a source distribution fits, "
                               "and building is not available in this run",
                               hint=f"pass --only-binary {project_of_filename(link.filename)} to refuse it, or lock with a cache directory")
    return sources.metadata(link)


def requirement_from_packaging(req: Requirement, *, parent: str | None = None) -> Req:
    """Convert a parsed PEP 508 requirement (its marker already evaluated) to a ``Req``."""
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return Req(
        name=canonicalize_name(req.name),
        extras=frozenset(canonicalize_name(e) for e in req.extras),
        specifier=req.specifier,
        url=req.url,
        parent=parent,
        text=f"{req.name}{extras} @ {req.url}" if req.url else f"{req.name}{extras}{req.specifier}",
    )


class Provider(AbstractProvider):  # type: ignore[type-arg]
    """resolvelib provider for one target."""

    def __init__(self, repo: ProjectIndex, store: MetadataStore, profile: Profile, inputs: Inputs,
                 direct_links: Mapping[str, Link], speculator: Speculator | None = None,
                 excluded: Mapping[str, frozenset[Version]] | None = None) -> None:
        self.repo = repo
        self.excluded = excluded or {}  # versions set aside: a dependency of theirs has no candidate at all
        self.speculator = speculator
        self.store = store
        self.profile = profile
        self.policy = inputs.policy
        self.ranks = profile.tag_ranks()
        self.env = dict(profile.markers)
        self.python = Version(profile.markers["python_full_version"])
        self.constraints: dict[str, list[Req]] = {}
        for c in evaluate_markers(inputs.constraints, profile):
            self.constraints.setdefault(c.name, []).append(c)
        self.hashes = inputs.hashes
        self.preferred = inputs.preferred.get(profile.name, {})
        self.direct_links = direct_links
        self._choices: dict[str, list[WheelChoice]] = {}

    # -- identity and order ------------------------------------------------------------------

    def identify(self, requirement_or_candidate: Req | Candidate) -> str:
        return requirement_or_candidate.key

    def get_preference(self, identifier: str, resolutions: Mapping[str, Candidate], candidates: Mapping[str, Iterator[Candidate]],
                       information: Mapping[str, Iterator[Any]], backtrack_causes: Sequence[Any]) -> Any:
        infos = list(information[identifier])
        direct = any(i.requirement.url for i in infos)
        pinned = any(s.operator in ("==", "===") and "*" not in s.version for i in infos for s in i.requirement.specifier)
        causes = {c.requirement.name for c in backtrack_causes} | {c.parent.name for c in backtrack_causes if c.parent}
        return (identifier != PYTHON, not direct, not pinned, identifier.split("[")[0] not in causes, identifier)

    # -- candidates --------------------------------------------------------------------------

    def choices(self, name: str, hashes: frozenset[str] | None, pinned: frozenset[Version]) -> list[WheelChoice]:
        """All usable versions of ``name`` for this target, newest first (unfiltered by specifiers)."""
        cache_key = name if hashes is None and not pinned else None
        if cache_key is not None and cache_key in self._choices:
            return self._choices[cache_key]
        found = self.repo.project_links(name)
        if found is None:
            result: list[WheelChoice] = []
        else:
            index, links = found
            if hashes is not None:  # a find-links page without hashes: the files to compare are read first
                links = self._hash_unhashed(name, links, pinned)
            ready = self.speculator.choices(self.profile, name, index.name) if self.speculator and cache_key else None
            if ready is None and cache_key and self.speculator:
                ready = self.speculator.memo.versions(name, links, self.profile, policy=self.policy, ranks=self.ranks)
            result = ready if ready is not None else versions_for_target(
                name, links, self.profile, policy=self.policy, pinned_versions=pinned, hashes=hashes, ranks=self.ranks)
        if cache_key is not None:
            self._choices[cache_key] = result
        return result

    def _hash_unhashed(self, name: str, links: Sequence[Link], pinned: frozenset[Version]) -> list[Link]:
        """``links`` with the sha256 of the files that may be chosen (the best of each version, of the
        ``==`` pinned versions when there are any) learned by reading them, so --hash pins can be checked."""
        unhashed = {c.link.url for c in versions_for_target(name, links, self.profile, policy=self.policy,
                                                             pinned_versions=pinned, ranks=self.ranks)
                    if c.link.sha256 is None and (not pinned or c.version in pinned)}
        return [self.repo.hashed(k) if k.url in unhashed else k for k in links]

    def find_matches(self, identifier: str, requirements: Mapping[str, Iterator[Req]],
                     incompatibilities: Mapping[str, Iterator[Candidate]]) -> Any:
        if identifier == PYTHON:
            # Offer the target's Python only if every Requires-Python admits it, so that a
            # wheel excluding it is a conflict to backtrack over (resolvelib demands consistency).
            if all(r.specifier.contains(self.python, prereleases=True) for r in requirements[identifier]):
                return [Candidate(name=PYTHON, version=self.python)]
            return []
        reqs = list(requirements[identifier])
        name = reqs[0].name
        extras = reqs[0].extras
        all_reqs = reqs + self.constraints.get(name, [])
        bad = {c.version for c in incompatibilities[identifier]} | self.excluded.get(name, frozenset())
        urls = {r.url for r in all_reqs if r.url}
        if urls:
            return self._direct_candidates(name, extras, urls, all_reqs, bad)
        spec = SpecifierSet()
        for r in all_reqs:
            spec &= r.specifier
        hashes = self.hashes.get(name)
        # PEP 592: a yanked file is taken only for the user's own == / === pin (a requirement or a
        # constraint they gave, or the base of an extra they pinned), never for a dependency's.
        own = [r for r in all_reqs if r.parent is None or r.parent.startswith(f"{name}[")]
        pinned = frozenset(Version(s.version) for r in own for s in r.specifier
                           if s.operator in ("==", "===") and "*" not in s.version and _is_version(s.version))
        usable = [c for c in filter_specifier(self.choices(name, hashes, pinned), spec, allow_pre=self.policy.allow_pre)
                  if c.version not in bad]
        keep = self.preferred.get(name)
        if keep is not None:  # an existing lock's pin first, when it still fits (see Inputs.preferred)
            usable.sort(key=lambda c: str(c.version) != keep)
        if usable:  # the resolver asks for the first one's dependencies next
            self.repo.prefetch_metadata([usable[0].link])
        # made as the resolver takes them: it rarely looks past the first few of hundreds of versions
        return lambda: (Candidate(name=name, version=c.version, extras=extras, link=c.link) for c in usable)

    def _direct_candidates(self, name: str, extras: frozenset[str], urls: set[str | None], reqs: list[Req],
                           bad: set[Version]) -> list[Candidate]:
        if len(urls) > 1:
            raise ResolutionImpossible(f"{name} is given by two different URLs: " + ", ".join(sorted(str(u) for u in urls)))
        link = self.direct_links[next(iter(urls))]  # type: ignore[index]
        info = wheel_info(link.filename)
        if info is None:
            raise BadInput(f"{name} @ {link.url}: only wheel URLs can be locked for a target (got {link.filename})")
        if best_rank(info[2], self.ranks) is None:  # a direct URL must still suit the target's tags
            raise NoCompatibleFile(f"{name} @ {redact_url(link.url)}: {link.filename} is not usable on target {self.profile.name}"
                                   f"\n  target: {target_needs(self.profile)}",
                                   hint="give a wheel built for this target, or a marker (; sys_platform == ...) that limits the URL to targets it suits")
        version = info[1]
        if all(r.specifier.contains(version, prereleases=True) for r in reqs) and version not in bad:
            return [Candidate(name=name, version=version, extras=extras, link=link)]
        return []

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        if requirement.url:
            return candidate.link is not None and candidate.link.url == self.direct_links[requirement.url].url
        pinned = self.hashes.get(candidate.name)
        if pinned is not None and (candidate.link is None or candidate.link.sha256 not in pinned):
            return False
        return requirement.specifier.contains(candidate.version, prereleases=True)

    def unsatisfiable_alone(self, requirement: Req) -> bool:
        """Whether no candidate at all could meet ``requirement``, whatever else is chosen."""
        if requirement.name == PYTHON or requirement.url:
            return False
        choices = self.choices(requirement.name, self.hashes.get(requirement.name), frozenset())
        return not filter_specifier(choices, requirement.specifier, allow_pre=self.policy.allow_pre)

    # -- dependencies ------------------------------------------------------------------------

    def get_dependencies(self, candidate: Candidate) -> list[Req]:
        if candidate.name == PYTHON:
            return []
        assert candidate.link is not None
        meta = self.store.get(candidate.link)
        if canonicalize_name(meta.name) != candidate.name:
            raise BadInput(f"{candidate.link.filename} declares the name {meta.name!r} in its metadata, not {candidate.name!r}")
        parent = f"{candidate.name} {candidate.version}"
        deps: list[Req] = []
        if meta.requires_python and not requires_python_ok(meta.requires_python, str(self.python)):
            deps.append(Req(name=PYTHON, specifier=SpecifierSet(meta.requires_python), parent=parent,
                            text=f"Python {meta.requires_python}"))
        if candidate.extras:
            exact = SpecifierSet(f"=={candidate.version}")
            # ``pkg[x] @ URL``: the base project must be that same file, not one from an index.
            url = next((u for u, link in self.direct_links.items() if link == candidate.link), None)
            deps.append(Req(name=candidate.name, specifier=exact, url=url, parent=parent, text=f"{candidate.name}=={candidate.version}"))
            for r in meta.requires_dist:
                if r.marker is None:
                    continue
                if any(_marker_ok(r.marker, self.env, e) for e in candidate.extras) and not _marker_ok(r.marker, self.env, ""):
                    deps.append(requirement_from_packaging(r, parent=f"{candidate.key} {candidate.version}"))
        else:
            for r in meta.requires_dist:
                if r.marker is None or _marker_ok(r.marker, self.env, ""):
                    deps.append(requirement_from_packaging(r, parent=parent))
        self.repo.prefetch_projects([d.name for d in deps if d.name != PYTHON])
        return deps


def _is_version(text: str) -> bool:
    try:
        Version(text)
    except ValueError:
        return False
    return True


def _marker_ok(marker: Marker, env: Mapping[str, str], extra: str) -> bool:
    return marker.evaluate({**env, "extra": extra})


class _Reporter(BaseReporter):  # type: ignore[type-arg]
    def __init__(self, progress: Any) -> None:
        self.progress = progress

    def pinning(self, candidate: Candidate) -> None:
        if self.progress is not None and candidate.name != PYTHON:
            self.progress(candidate)


def resolve_target(repo: ProjectIndex, store: MetadataStore, profile: Profile, inputs: Inputs,
                   direct_links: Mapping[str, Link], *, progress: Any = None, max_rounds: int = 200_000,
                   speculator: Speculator | None = None) -> TargetPlan:
    """Resolve the closure of ``inputs`` for one target profile."""
    roots = evaluate_markers(inputs.requirements, profile)
    repo.prefetch_projects([r.name for r in roots])
    excluded: dict[str, frozenset[Version]] = {}
    side: tuple[Any, ...] = ()
    first: tuple[Any, ...] | None = None
    for _ in range(SET_ASIDE_ROUNDS):
        provider = Provider(repo, store, profile, inputs, direct_links, speculator, excluded)
        try:
            result = Resolver(provider, _Reporter(progress)).resolve(roots, max_rounds=max_rounds)
            break
        except _RLImpossible as e:
            causes = tuple(e.causes)
        except ResolutionTooDeep:
            raise ResolutionImpossible(f"resolution for {profile.name} did not converge after {max_rounds} rounds",
                                       hint="add constraints (-c) that pin the packages being backtracked over") from None
        first = causes if first is None else first
        # resolvelib's backjumping can end on a side path: the last version tried of some project
        # needs a dependency nothing provides, while the conflict that ruled out its other versions
        # is lost. Set such versions aside and resolve again, to reach that conflict.
        parents = [c.parent for c in causes if c.parent is not None and provider.unsatisfiable_alone(c.requirement)]
        dead_ends = len(parents) == len(causes) and not any(c.requirement.name in excluded for c in causes)
        if not dead_ends:
            if any(c.requirement.name in excluded for c in causes):
                causes, side = first, ()  # setting versions aside only moved the failure onto them
            raise ResolutionImpossible(f"the requirements cannot all hold on target {profile.name}", causes=causes,
                                       target=profile, policy=inputs.policy, hashes=inputs.hashes, side_causes=side)
        side += causes
        for parent in parents:
            excluded[parent.name] = excluded.get(parent.name, frozenset()) | {parent.version}
    else:
        raise ResolutionImpossible(f"the requirements cannot all hold on target {profile.name}", causes=first or (),
                                   target=profile, policy=inputs.policy, hashes=inputs.hashes)
    pins = [Pin(name=cand.name, version=str(cand.version), link=repo.hashed(cand.link))  # a find-links file: hashed by now
            for _, cand in sorted(result.mapping.items()) if cand.name != PYTHON and not cand.extras and cand.link is not None]
    return TargetPlan(profile=profile, pins=tuple(pins))


def _tool_pin(repo: ProjectIndex, store: MetadataStore, target: TargetPlan, inputs: Inputs, project: str) -> Pin | None:
    """The locked ``project`` if the closure has it, else its newest wheel for the target under the
    same constraints and policy; None when no index offers one that runs there."""
    pin = next((p for p in target.pins if p.name == project), None)
    if pin is None:
        own = Inputs(requirements=(Requirement(project),), constraints=inputs.constraints, policy=inputs.policy)
        try:
            pin = next((p for p in resolve_target(repo, store, target.profile, own, {}).pins if p.name == project), None)
        except BundlerError:
            pin = None
    return pin


def with_bootstrap(repo: ProjectIndex, store: MetadataStore, target: TargetPlan, inputs: Inputs) -> TargetPlan:
    """Add the installers the target runs: the pip wheel (always needed) and, when an index has one
    for the target, the uv wheel install.sh prefers (see ``_tool_pin``)."""
    return TargetPlan(profile=target.profile, pins=target.pins, bootstrap=_tool_pin(repo, store, target, inputs, BOOTSTRAP),
                      uv=_tool_pin(repo, store, target, inputs, FAST_INSTALLER))


def plan(repo: ProjectIndex, profiles: Sequence[Profile], inputs: Inputs, indexes: Sequence[IndexConfig], *,
         direct_links: Mapping[str, Link] | None = None, progress: Any = None, bootstrap: bool = False,
         sources: SdistMetadata | None = None) -> Plan:
    """Resolve ``inputs`` for every profile (concurrently; pages and metadata are shared).

    With ``bootstrap``, each target also gets a pip wheel for its installer (see ``with_bootstrap``).
    """
    store = MetadataStore(repo, sources)
    direct = dict(direct_links or {})
    speculator = Speculator(repo, store, profiles, inputs.policy)
    for r in inputs.requirements:
        speculator.ask_extras(r.name, r.extras)
    repo.listen(speculator.on_page, speculator.on_metadata)
    if bootstrap:  # the installers' pages (and, through the speculator, their metadata) while the closure resolves
        repo.prefetch_projects([BOOTSTRAP, FAST_INSTALLER])
    if len(profiles) == 1:
        targets = [resolve_target(repo, store, profiles[0], inputs, direct, progress=progress, speculator=speculator)]
    else:
        with ThreadPoolExecutor(max_workers=min(4, len(profiles))) as pool:
            futures = [pool.submit(resolve_target, repo, store, p, inputs, direct, progress=progress, speculator=speculator)
                       for p in profiles]
            targets = [f.result() for f in futures]
    if bootstrap:
        targets = [with_bootstrap(repo, store, t, inputs) for t in targets]
    return Plan(targets=tuple(targets), indexes=tuple(indexes), requirements=tuple(str(r) for r in inputs.requirements))


def evaluate_markers(reqs: Iterable[Requirement], profile: Profile) -> list[Req]:
    """Keep the requirements whose markers hold on ``profile``, as ``Req`` objects."""
    env = dict(profile.markers)
    return [requirement_from_packaging(r) for r in reqs if r.marker is None or _marker_ok(r.marker, env, "")]
