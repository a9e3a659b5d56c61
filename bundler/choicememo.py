"""The usable versions of a page on a target, remembered between runs: a warm re-lock skips ranking.

``select.versions_for_target`` looks at every file of a project (tens of thousands for some) to find
the best wheel of each version for a target. Its answer depends only on the page's links, the
project, the target's tags and Python, and the policy, so for a page read back from the planner's
cache (``links_key`` names its exact links) the answer is stored and reused: the chosen files as
columns (``pagefiles.FIELDS``), with the version and rank of each. A page whose rankings are all
remembered is then never parsed (``repository`` parses JSON pages on first use).

A record read back is checked before use: its shape, its columns as a page's are
(``pagefiles.usual``), each file's name a distribution's, and each chosen file re-checked for the
target (``select._check`` or ``check_sdist``) with the same version and rank; any flaw is a miss,
and the ranking runs as it would have. Pages without a cache key (local folders, in-memory test
indexes, a disabled cache) are always ranked afresh.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import TYPE_CHECKING, Any, Sequence

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bundler.index import Link
from bundler.pagefiles import PageFiles, columns_of
from bundler.profile import Profile
from bundler.select import SDIST_RANK, Policy, WheelChoice, _check, check_sdist, sdist_version, versions_for_target, wheel_info

if TYPE_CHECKING:
    from bundler.httpcache import PlannerCache

FORMAT = "wheelhouse-choices-3"  # changes whenever selection changes what it chooses


class ChoiceMemo:
    """``versions_for_target`` through the cache (see the module docstring); thread-safe."""

    def __init__(self, cache: PlannerCache | None) -> None:
        self.cache = cache if cache is not None and cache.root is not None else None
        self._targets: dict[str, str] = {}
        self._lock = threading.Lock()

    def versions(self, project: str, links: Sequence[Link], profile: Profile, *, policy: Policy,
                 ranks: dict[str, int]) -> list[WheelChoice]:
        """``select.versions_for_target(project, links, profile, policy=policy, ranks=ranks)``."""
        page = links.key if isinstance(links, PageFiles) else None
        if self.cache is None or page is None:
            return versions_for_target(project, links, profile, policy=policy, ranks=ranks)
        key = self._key(page, project, profile, policy)
        hit = self._load(key, project, links, profile, policy, ranks)
        if hit is not None:
            return hit
        found = versions_for_target(project, links, profile, policy=policy, ranks=ranks)
        record = {"versions": [str(c.version) for c in found], "ranks": [c.rank for c in found],
                  "files": columns_of([c.link for c in found])}
        self.cache.put_choices(key, json.dumps(record, separators=(",", ":")).encode())
        return found

    def _key(self, page: str, project: str, profile: Profile, policy: Policy) -> str:
        with self._lock:
            target = self._targets.get(profile.name)
            if target is None:
                facts = [list(profile.tags), profile.markers.get("python_full_version")]
                target = self._targets[profile.name] = hashlib.sha256(json.dumps(facts).encode()).hexdigest()
        rules = [policy.exclude_newer.isoformat() if policy.exclude_newer else None, sorted(policy.undated_ok),
                 policy.source_allowed(project), policy.binary_allowed(project)]
        return hashlib.sha256(json.dumps([FORMAT, page, project, target, rules]).encode()).hexdigest()

    def _load(self, key: str, project: str, links: PageFiles, profile: Profile, policy: Policy,
              ranks: dict[str, int]) -> list[WheelChoice] | None:
        assert self.cache is not None
        data = self.cache.get_choices(key)
        if data is None:
            return None
        try:
            record = json.loads(data)
            versions, ranks_of, columns = record["versions"], record["ranks"], record["files"]
            files = PageFiles.checked(links.index, columns, remote=True)
            if (files is None or type(versions) is not list or type(ranks_of) is not list
                    or not len(versions) == len(ranks_of) == files.count):
                return None
            found = [_choice(project, files.link(i), text, rank, profile, policy, ranks)
                     for i, (text, rank) in enumerate(zip(versions, ranks_of))]
        except (ValueError, TypeError, KeyError, RecursionError, InvalidVersion):
            return None
        # newest first, each version once, as versions_for_target answers
        return found if all(a.version > b.version for a, b in zip(found, found[1:])) else None


def _choice(project: str, link: Link | None, text: Any, rank: Any, profile: Profile, policy: Policy,
            ranks: dict[str, int]) -> WheelChoice:
    """One recorded choice, checked again for the target; ValueError when it does not hold."""
    if link is None or type(rank) is not int or type(text) is not str:
        raise ValueError("not a choice record")
    version = Version(text)
    if rank == SDIST_RANK:
        ok = sdist_version(link.filename, project) == version and check_sdist(link, version, profile, policy, False, None) is None
    else:
        info = wheel_info(link.filename)
        ok = (info is not None and canonicalize_name(info[0]) == project and info[1] == version
              and _check(link, info, profile, ranks, policy, False, None) == rank)
    if not ok:
        raise ValueError("a recorded choice no longer holds")
    return WheelChoice(name=project, version=version, link=link, rank=rank)
