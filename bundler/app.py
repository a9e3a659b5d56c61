"""The verbs of wheelhouse as functions, one per command, as ``installer.install`` is one function.

Each takes parsed inputs (a ``Job``, paths, options) and returns a result; warnings come back as
data for the caller to print. Nothing here prints, and nothing here parses a command line.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from bundler.errors import BadInput, ResolutionImpossible, UsageError
from bundler.fsutil import overwritten_input
from bundler.index import IndexConfig, ProjectIndex, supplying_indexes
from bundler.job import Job
from bundler.model import Plan

if TYPE_CHECKING:
    import httpx

    from bundler.profile import Profile
    from bundler.cache import BlobStore
    from bundler.build import Builder
    from bundler.fetch import FetchOptions, FetchReport, FileSpec, Reporter
    from bundler.pack import PackResult
    from bundler.repository import Repository
    from bundler.http1 import LeanGet
    from bundler.transport import Trust


@dataclass(frozen=True, slots=True, kw_only=True)
class Network:
    """How the planner reaches indexes: the page cache (None: none), revalidation, TLS, concurrency.
    ``offline``: cached pages whatever their age, and no request at all."""

    cache_dir: Path | None
    refresh: bool = False
    cert: str | None = None
    jobs: int = 16
    offline: bool = False
    trust: Trust | None = None  # the CA bundle and credentials, perhaps already loading (else ``Trust(cert)``)


@dataclass(frozen=True, slots=True, kw_only=True)
class LockResult:
    plan: Plan
    lock_path: Path
    requirements_path: Path
    requests: int  # HTTP requests the planner sent
    elapsed: float
    warnings: tuple[str, ...]
    notes: tuple[str, ...] = ()  # for the user, less pressing than warnings (find-links files hashed on download)


def refuse_overwriting(outputs: Sequence[Path], inputs: Sequence[Path]) -> None:
    """Refuse, before any work, a run whose output is one of its inputs (also through links)."""
    clash = overwritten_input(outputs, inputs)
    if clash is not None:
        out, src = clash
        raise UsageError(f"{out} is also an input of this run ({src}); wheelhouse never writes over what it reads",
                         hint="give another output path (-o)")


def check_output(output: Path, example: str) -> None:
    """An output path must be a file name in an existing directory."""
    if output.is_dir():
        raise UsageError(f"-o {output} is a directory; give a file name such as {output / example}")
    if not output.parent.exists():
        raise BadInput(f"cannot write {output}: directory {output.parent} does not exist")
    if not output.parent.is_dir():
        raise BadInput(f"cannot write {output}: {output.parent} is not a directory")


def open_repository(indexes: Sequence[IndexConfig], net: Network) -> Repository:
    """The planner's view of ``indexes`` (close it when done). Its HTTP client is made on the first
    request, so a lock served from the cache never imports httpx; offline, none is ever made."""
    from bundler.httpcache import PlannerCache
    from bundler.repository import Repository
    from bundler.transport import Trust

    if net.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if net.offline and net.refresh:
        raise UsageError("--offline and --refresh contradict each other: revalidating a page needs the network")
    cache = PlannerCache(net.cache_dir)
    if cache.root is not None:
        try:
            cache.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            why = "not a directory" if isinstance(e, FileExistsError) else e.strerror or e
            raise BadInput(f"cannot use cache directory {cache.root}: {why}", hint="give another --cache-dir, or --no-cache") from None

    trust = net.trust or Trust(net.cert)  # one CA bundle and one set of credentials for both clients

    def client() -> httpx.Client:
        from bundler.http import make_client

        return make_client(max_connections=max(net.jobs, 4), trust=trust)

    def lean() -> LeanGet | None:
        from bundler.http1 import lean_get

        return lean_get(trust, max_idle=max(net.jobs, 4))

    return Repository(indexes, client, cache, jobs=net.jobs, page_ttl=0.0 if net.refresh else 600.0, offline=net.offline,
                      lean=lean)


def resolve(job: Job, repo: ProjectIndex, *, progress: Callable[[Any], None] | None = None, bootstrap: bool = True,
            builder: Builder | None = None) -> Plan:
    """The plan of ``job`` over ``repo`` (any ``ProjectIndex``); a resolution that cannot succeed comes
    back as a ``ResolutionImpossible`` that tells the story, told while the pages are still at hand.

    With a ``builder``, sdists can serve versions without a usable wheel, and the plan records how
    each locked sdist is built (``Plan.builds``)."""
    import dataclasses

    from bundler.diagnose import explain_impossible
    from bundler.plan import plan

    direct = {r.url: repo.direct_link(r.url) for r in job.inputs.requirements if r.url}
    try:
        result = plan(repo, job.profiles, job.inputs, job.indexes, direct_links=direct, progress=progress, bootstrap=bootstrap,
                      sources=builder)
        if builder is not None and any(not p.link.is_wheel for t in result.targets for p in t.pins):
            from bundler.build import build_records

            result = dataclasses.replace(result, builds=build_records(builder, result.targets))
        return result
    except ResolutionImpossible as e:
        raise explain_impossible(e, repo) from None


def make_builder(job: Job, repo: ProjectIndex, cache_root: Path) -> Builder:
    """The builder of sdists for ``job``: the Python running wheelhouse, the job's indexes and policy;
    made (with bundler.build and the build tooling it imports) when an sdist first needs it."""
    def make() -> Builder:
        from bundler.build import Builder as _Builder

        return _Builder(repo, job.indexes, cache_root, host=host_profile, policy=job.inputs.policy)
    return _Lazy(make)  # type: ignore[return-value]


class _Lazy:
    """An object made on first use of any of its attributes, once, whatever the thread."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make, self._made, self._lock = make, None, threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._made is None:
                self._made = self._make()
        return getattr(self._made, name)


def first_pages(job: Job) -> list[str]:
    """The projects whose pages a lock needs first: the requirements that hold on some target, and
    the installers every target gets (``plan.with_bootstrap``)."""
    from bundler.model import BOOTSTRAP, FAST_INSTALLER

    envs = [{**p.markers, "extra": ""} for p in job.profiles]
    names = [r.name for r in job.inputs.requirements if r.marker is None or any(r.marker.evaluate(e) for e in envs)]
    return [*names, BOOTSTRAP, FAST_INSTALLER]


def existing_pins(lock_path: Path, *, upgrade: bool = False, upgrade_packages: Sequence[str] = ()) -> dict[str, dict[str, str]]:
    """The pins of the lock already at ``lock_path`` (target -> project -> version), to be preferred
    by a re-lock; none with ``upgrade``, and none for ``upgrade_packages``. A missing or unreadable
    lock pins nothing: it is about to be replaced."""
    from packaging.utils import canonicalize_name

    from bundler.errors import BundlerError
    from bundler.locktool import read_lock

    if upgrade or not lock_path.is_file():
        return {}
    try:
        old = read_lock(lock_path)
    except BundlerError:
        return {}
    released = {canonicalize_name(n) for n in upgrade_packages}
    return {prof.name: {canonicalize_name(pkg.name): pkg.version for pkg, _ in old.for_target(prof.name)
                        if canonicalize_name(pkg.name) not in released} for prof in old.profiles}


def lock(job: Job, output: Path, net: Network, *, progress: Callable[[Any], None] | None = None,
         inputs: Sequence[Path] = (), upgrade: bool = False, upgrade_packages: Sequence[str] = ()) -> LockResult:
    """Resolve ``job`` for every target and write the lock and its requirements.txt to ``output``.

    When ``output`` already holds a lock, its pins are preferred (a re-lock with unchanged inputs
    changes nothing); ``upgrade`` releases all of them, ``upgrade_packages`` the named ones."""
    import dataclasses

    from bundler.lock import requirements_path, write_lock

    req_path = requirements_path(output)
    refuse_overwriting([output, req_path], [*job.files, *inputs])
    started = time.monotonic()
    repo = open_repository(job.indexes, net)
    scratch = None
    try:
        repo.prefetch_projects(first_pages(job))  # requested while the rest of the planner loads
        from bundler.gpu.checks import check_variants, driver_warnings
        from bundler.heldback import held_back_warnings

        preferred = existing_pins(output, upgrade=upgrade, upgrade_packages=upgrade_packages)
        if preferred:
            job = dataclasses.replace(job, inputs=dataclasses.replace(job.inputs, preferred=preferred))
        scratch = None if net.cache_dir is not None else tempfile.TemporaryDirectory(prefix="wheelhouse-cache-")
        builder = make_builder(job, repo, net.cache_dir if net.cache_dir is not None else Path(scratch.name))  # type: ignore[union-attr]
        result = resolve(job, repo, progress=progress, builder=builder)
        warnings = held_back_warnings(repo, job.inputs, result, sources=builder,
                                      direct_links={r.url: repo.direct_link(r.url) for r in job.inputs.requirements if r.url})
    finally:
        repo.close()
        if scratch is not None:
            scratch.cleanup()
    notes = repo.notes()
    for t in result.targets:
        check_variants(t.pins)  # one torch build per environment: never +cpu next to +cu121
        warnings += driver_warnings(t.pins, t.profile)
    recipe = job.recipe
    lock_path, req_path = write_lock(result, output, exclude_newer=job.inputs.policy.exclude_newer,
                                     title=recipe.name if recipe and recipe.name else None, smoke=recipe.smoke if recipe else ())
    return LockResult(plan=result, lock_path=lock_path, requirements_path=req_path, requests=repo.requests,
                      elapsed=time.monotonic() - started, warnings=tuple(warnings), notes=tuple(notes))


def plan_files(result: Plan) -> list[FileSpec]:
    """Every file a fresh plan names, bootstrap pip included, and the wheels that build its sdists (on
    the builder and on each target, as ``fetch.lock_files`` reads them from a lock), with the URLs the
    plan used (credentials the indexes were given still in them: they go to the downloader only, never to disk)."""
    from bundler.fetch import FileSpec

    pins = [p for t in result.targets for p in (*t.pins, *([t.bootstrap] if t.bootstrap else []), *([t.uv] if t.uv else []))]
    pins += [p for b in result.builds for p in (*b.builder, *(x for env in b.targets.values() for x in env))]
    return [FileSpec(url=p.link.url, sha256=p.link.sha256 or "", size=p.link.size, filename=p.link.filename) for p in pins]


def fetch(specs: Sequence[FileSpec], store: BlobStore, options: FetchOptions, *, dest: Path | None = None,
          reporter: Reporter | None = None) -> FetchReport:
    """Bring ``specs`` into the cache verified, and copy them into ``dest`` when given."""
    from bundler.fetch import fetch_files, place

    try:
        store.root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"cannot use cache directory {store.root}: {e.strerror or e}", hint="give another --cache-dir") from None
    report = fetch_files(specs, store, options, reporter=reporter)
    if dest is not None:
        try:
            place(specs, report, dest)
        except OSError as e:
            raise BadInput(f"cannot place files in {dest}: {e.strerror or e}") from None
    return report


def pack(lock_path: Path, store: BlobStore, output: Path, *, fmt: str | None = None, level: int | None = None,
         since: Path | None = None, sign_key: Path | None = None, progress: Any = None,
         bytecode: Sequence[Path] | None = ()) -> PackResult:
    """Write the bundle of ``lock_path`` to ``output`` (a delta over ``since`` when given; signed
    with the SSH key ``sign_key`` when given), refusing to write over the lock or the old bundle,
    and ``NAME.sha256`` beside it; ``progress(done, total)`` hears the bytes archived. ``bytecode``:
    interpreters to compile the targets' bytecode with besides those found (None: no bytecode)."""
    from bundler.fsutil import atomic_write
    from bundler.pack import pack as write_bundle

    sums = checksum_path(output)
    refuse_overwriting([output, sums], [lock_path, *([since] if since else [])])
    result = write_bundle(lock_path, store, output, fmt=fmt, level=level, since=since, sign_key=sign_key, progress=progress,
                          bytecode=bytecode)
    try:  # `sha256sum -c NAME.sha256` beside the bundle, as sites check downloads
        atomic_write(sums, f"{result.sha256}  {output.name}\n".encode())
    except OSError as e:
        raise BadInput(f"cannot write {sums}: {e.strerror or e}") from None
    return result


def checksum_path(bundle: Path) -> Path:
    """The ``sha256sum -c`` file written beside a bundle."""
    return bundle.with_name(bundle.name + ".sha256")


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    reports: tuple[str, ...]  # one per target, then notes on explicit indexes that have the project
    found: bool  # some index that may supply the project has it


def explain(job: Job, package: str, net: Network) -> Explanation:
    """Why ``package`` has (or lacks) a usable file for each of ``job``'s targets."""
    from packaging.utils import canonicalize_name

    from bundler.diagnose import explain_project

    name = canonicalize_name(package)
    repo = open_repository(job.indexes, net)
    try:
        found = repo.all_links(name)
        chosen = repo.project_links(name)
    finally:
        repo.close()
    allowed = supplying_indexes(job.indexes, name)
    reports = [explain_project(name, [(i, links) for i, links in found if i in allowed], chosen[0] if chosen else None,
                               prof, job.inputs.policy) for prof in job.profiles]
    for index, links in found:
        if links and index not in allowed:
            reports.append(f"\nindex {index.name} has {len(links)} files of {name}, but it is explicit and serves only "
                           f"{', '.join(index.packages or ())}: add --pin '{name}={index.name}' to take {name} from it")
    return Explanation(reports=tuple(reports), found=chosen is not None)


def host_profile() -> Profile:
    """The Python running wheelhouse, captured as capture-profile.py would on a target: the one
    place wheelhouse looks at the machine it runs on, and only when the target is named ``host``."""
    from bundler._target import capture_profile
    from bundler.profile import Profile as _Profile

    return _Profile.from_dict(capture_profile.capture(name="host"), origin="host")
