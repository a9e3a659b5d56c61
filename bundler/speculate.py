"""Speculation ahead of the resolver: pages ranked and metadata prefetched on worker threads."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Iterable, Sequence

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from bundler.choicememo import ChoiceMemo
from bundler.index import IndexConfig, Link, ProjectIndex
from bundler.profile import Profile
from bundler.select import Policy, WheelChoice

if TYPE_CHECKING:
    from bundler.plan import MetadataStore


class Speculator:
    """Walks ahead of the resolver on worker threads: as a page arrives it ranks the files for every
    target and prefetches the newest candidate's metadata; as metadata arrives it prefetches the
    pages of that candidate's dependencies. Resolution then rarely waits on a round trip, and the
    ranking it needs is already computed (``choices``)."""

    def __init__(self, repo: ProjectIndex, store: MetadataStore, profiles: Sequence[Profile], policy: Policy) -> None:
        self.repo = repo
        self.store = store
        self.profiles = [(p, p.tag_ranks(), dict(p.markers)) for p in profiles]
        self.policy = policy
        self._choices: dict[tuple[str, str, str], list[WheelChoice]] = {}
        self._asked: dict[str, list[SpecifierSet]] = {}  # what the metadata read so far asks of each project
        self._extras: dict[str, set[str]] = {}  # the extras asked of each project (``uvicorn[standard]``)
        self._lock = threading.Lock()
        self.memo = ChoiceMemo(getattr(repo, "cache", None))  # rankings of cached pages, kept between runs

    def choices(self, profile: Profile, project: str, index: str) -> list[WheelChoice] | None:
        with self._lock:
            return self._choices.get((profile.name, project, index))

    def on_page(self, project: str, index: IndexConfig, links: Sequence[Link]) -> None:
        project = canonicalize_name(project)
        wanted = []
        for profile, ranks, _ in self.profiles:
            key = (profile.name, project, index.name)
            with self._lock:
                if key in self._choices:
                    continue
            found = self.memo.versions(project, links, profile, policy=self.policy, ranks=ranks)
            with self._lock:
                self._choices[key] = found
                asked = list(self._asked.get(project, ()))
            # The newest version some requirement already read admits: a project pinned by its parent
            # (pydantic-core by pydantic) would otherwise have its newest, unused release fetched.
            best = _likely([c for c in found if any(s.contains(c.version, prereleases=True) for s in asked)]) or _likely(found)
            if best is not None:
                wanted.append(best.link)
        self.repo.prefetch_metadata(wanted)

    def ask_extras(self, project: str, extras: Iterable[str]) -> None:
        """Record extras some requirement asks of ``project`` (the user's own, before any metadata)."""
        with self._lock:
            self._extras.setdefault(canonicalize_name(project), set()).update(canonicalize_name(e) for e in extras)

    def on_metadata(self, link: Link, data: bytes) -> None:
        meta = self.store.parse(link, data)
        deps: dict[str, list[SpecifierSet]] = {}
        with self._lock:
            extras = ["", *sorted(self._extras.get(canonicalize_name(meta.name), ()))]
        for _, _, env in self.profiles:
            for r in meta.requires_dist:
                if r.marker is None or any(r.marker.evaluate({**env, "extra": e}) for e in extras):
                    deps.setdefault(canonicalize_name(r.name), []).append(r.specifier)
                    if r.extras:
                        self.ask_extras(r.name, r.extras)
        with self._lock:
            for name, specs in deps.items():
                self._asked.setdefault(name, []).extend(specs)
        self.repo.prefetch_projects(sorted(deps))


def _likely(choices: Sequence[WheelChoice]) -> WheelChoice | None:
    """The choice the resolver will most likely try first, to fetch its metadata ahead: the newest
    final release (a pre-release is taken only when asked for, or when there is nothing else)."""
    return next((c for c in choices if not c.version.is_prerelease), choices[0] if choices else None)
