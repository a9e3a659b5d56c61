"""PEP 517 builds of sdists on the builder, each in an isolated, locked, hash-verified environment.

The build requirements of an sdist are resolved by wheelhouse itself, from the same indexes, for the
builder's Python (``Builder.environment``), and only from wheels (a build requirement is never built
from source, so building cannot recurse). Their files are fetched into the content-addressed cache,
verified, and installed into a fresh venv with ``pip install --no-index --require-hashes``; the hooks
run there through ``pyproject_hooks`` with ``SOURCE_DATE_EPOCH`` set, so a wheel built twice is the
same bytes. Metadata is cached by the sdist's sha256, built wheels by (sdist sha256, environment).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import venv
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bundler.cache import BlobStore
from bundler.errors import BundlerError, ResolutionImpossible
from bundler.index import IndexConfig, Link, ProjectIndex
from bundler.model import BuildRecord, Inputs, Pin
from bundler.profile import Profile
from bundler.sdist import BadSdist, BuildSystem, build_system, read_facts, unpack
from bundler.select import Policy

SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip can hold: a fixed, reproducible stamp
BUILD_TIMEOUT = 3600.0
MAX_METADATA = 16 << 20


class BuildFailed(BundlerError):
    """A PEP 517 hook of an sdist failed (its output's tail is in the message)."""


@dataclass(frozen=True, slots=True)
class EnvFile:
    """One wheel of a build environment: its name, digest and verified blob."""

    filename: str
    sha256: str
    path: Path


def env_digest(files: Sequence[EnvFile]) -> str:
    """The identity of a build environment: the builder's Python and the exact wheels installed."""
    h = hashlib.sha256(f"{sys.implementation.name} {sys.version_info[:3]} {sys.platform}\n".encode())
    for f in sorted(files, key=lambda f: f.sha256):
        h.update(f"{f.sha256} {f.filename}\n".encode())
    return h.hexdigest()


def make_env(files: Sequence[EnvFile], dest: Path) -> Path:
    """A fresh venv at ``dest`` holding exactly ``files`` (installed offline, hash-checked); its python."""
    have_pip = importlib.util.find_spec("pip") is not None
    venv.EnvBuilder(with_pip=not have_pip, symlinks=os.name != "nt", clear=True).create(dest)
    python = dest / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if files:
        folder = dest / "wheelhouse-files"
        folder.mkdir()
        lines = []
        for f in files:
            shutil.copyfile(f.path, folder / f.filename)
            lines.append(f"{folder / f.filename} --hash=sha256:{f.sha256}")
        req = dest / "wheelhouse-requirements.txt"
        req.write_text("\n".join(lines) + "\n")
        pip = [sys.executable, "-m", "pip", "--python", str(python)] if have_pip else [str(python), "-m", "pip"]
        cmd = [*pip, "install", "--no-index", "--no-deps", "--require-hashes", "--no-cache-dir",
               "--disable-pip-version-check", "--quiet", "-r", str(req)]
        _run(cmd, None, {}, "installing the build environment")
    return python


def _clean_environ(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a build: the user's, minus what would leak other packages into it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(extra)
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONHASHSEED"] = "0"
    env["SOURCE_DATE_EPOCH"] = SOURCE_DATE_EPOCH
    env["PIP_CONFIG_FILE"] = os.devnull  # a site's pip.conf (constraints, indexes) must not change a locked env
    return env


def _run(cmd: Sequence[str], cwd: str | None, extra: Mapping[str, str], what: str) -> None:
    try:
        r = subprocess.run(list(cmd), cwd=cwd, env=_clean_environ(extra), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BuildFailed(f"{what}: {e}") from None
    if r.returncode != 0:
        tail = "\n".join(r.stdout.decode("utf-8", "replace").splitlines()[-25:])
        raise BuildFailed(f"{what} failed (exit {r.returncode}):\n{tail}")


def _hooks(src: Path, system: BuildSystem, python: Path, what: str) -> Any:
    import warnings

    from pyproject_hooks import BuildBackendHookCaller, BuildBackendWarning

    # pyproject-hooks re-raises the backend's warnings here (setuptools' deprecation banners about
    # the project's own packaging): addressed to the project's authors, noise in a bundling run.
    warnings.filterwarnings("ignore", category=BuildBackendWarning)

    def runner(cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None) -> None:
        _run(cmd, cwd, extra_environ or {}, what)

    return BuildBackendHookCaller(str(src), system.backend, backend_path=list(system.backend_path) or None,
                                  runner=runner, python_executable=str(python))


def _call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from pyproject_hooks import BackendUnavailable, HookMissing, UnsupportedOperation

    try:
        return fn(*args, **kwargs)
    except BackendUnavailable as e:
        raise BuildFailed(f"{what}: the build backend cannot be imported: {e.message or e}") from None
    except (HookMissing, UnsupportedOperation) as e:
        raise BuildFailed(f"{what}: the build backend lacks a hook: {e}") from None


def build_wheel(sdist: Path, sha256: str, files: Sequence[EnvFile], cache_root: Path) -> Path:
    """Build ``sdist`` into a wheel in an environment of exactly ``files``; cached by (sha256, environment),
    so a re-build with everything cached starts no build."""
    out = cache_root / "sdist-wheels" / f"{sha256}-{env_digest(files)[:32]}"
    done = sorted(out.glob("*.whl")) if out.is_dir() else []
    if len(done) == 1:
        return done[0]
    what = f"building {sdist.name}"
    with tempfile.TemporaryDirectory(prefix="wheelhouse-build-") as tmp:
        work = Path(tmp)
        (work / "src").mkdir()
        src = unpack(sdist, work / "src")
        system = build_system(read_facts(sdist), sdist.name)
        python = make_env(files, work / "env")
        hooks = _hooks(src, system, python, what)
        missing = _missing(_call(what, hooks.get_requires_for_build_wheel), files)
        if missing:
            raise BuildFailed(f"{what}: the backend asks for {', '.join(missing)}, which the recorded build environment lacks",
                              hint="lock again, so that the build requirements are resolved anew")
        (work / "out").mkdir()
        name = _call(what, hooks.build_wheel, str(work / "out"))
        out.mkdir(parents=True, exist_ok=True)
        final = out / name
        shutil.move(str(work / "out" / name), final)
    return final


def _missing(requires: Sequence[str], files: Sequence[EnvFile]) -> list[str]:
    """The requirements (by name) that none of ``files`` provides."""
    have = {canonicalize_name(f.filename.split("-", 1)[0]) for f in files}
    out = []
    for r in requires:
        try:
            name = canonicalize_name(Requirement(r).name)
        except InvalidRequirement:
            raise BuildFailed(f"the build backend asks for {r!r}, which is not a requirement") from None
        if name not in have:
            out.append(r)
    return out


def build_many(jobs: Sequence[tuple[Path, str, Sequence[EnvFile]]], cache_root: Path) -> list[Path]:
    """``build_wheel`` for each (sdist, sha256, files), in parallel bounded by the CPUs."""
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        return list(pool.map(lambda j: build_wheel(j[0], j[1], j[2], cache_root), jobs))


class Builder:
    """Sdist metadata and build environments for the planner, from the indexes it resolves from."""

    def __init__(self, repo: ProjectIndex, indexes: Sequence[IndexConfig], cache_root: Path, *,
                 host: Profile | Callable[[], Profile], policy: Policy = Policy()) -> None:
        self.repo = repo
        self.indexes = tuple(indexes)
        self.cache_root = cache_root
        self.store = BlobStore(cache_root)
        self._host = host  # the builder's own profile, or how to capture it when an sdist first needs it
        # Build requirements are taken only as wheels: building them would recurse.
        self.policy = replace(policy, only_binary=frozenset({":all:"}), no_binary=frozenset())
        self._lock = threading.Lock()
        self._envs: dict[tuple[str, tuple[str, ...]], tuple[Pin, ...]] = {}
        self._requires: dict[str, tuple[str, ...]] = {}  # sdist sha256 -> build requirements used

    @property
    def host(self) -> Profile:
        """The profile of the Python running the builds (captured on first use: most locks build nothing)."""
        with self._lock:
            if callable(self._host):
                self._host = self._host()
            return self._host

    # -- files -------------------------------------------------------------------------------

    def sdist_path(self, link: Link) -> Path:
        """The sdist of ``link``, fetched hash-verified into the cache."""
        from bundler.fetch import FileSpec, fetch_files

        assert link.sha256 is not None  # select.check_sdist refuses unhashed files
        found = self.store.verified(link.sha256, link.size)
        if found is not None:
            return found
        spec = FileSpec(url=link.url, sha256=link.sha256, size=link.size, filename=link.filename)
        return fetch_files([spec], self.store).paths[link.sha256]

    def env_files(self, pins: Sequence[Pin]) -> list[EnvFile]:
        """The wheels of ``pins``, fetched hash-verified into the cache."""
        from bundler.fetch import FileSpec, fetch_files

        specs = [FileSpec(url=p.link.url, sha256=p.link.sha256 or "", size=p.link.size, filename=p.link.filename) for p in pins]
        paths = fetch_files(specs, self.store).paths if specs else {}
        return [EnvFile(filename=s.filename, sha256=s.sha256, path=paths[s.sha256]) for s in specs]

    # -- resolution --------------------------------------------------------------------------

    def environment(self, requires: Sequence[str], profile: Profile | None = None, *, origin: str = "") -> tuple[Pin, ...]:
        """The closure of ``requires`` (wheels only) for ``profile`` (default: the builder's Python)."""
        from bundler.plan import plan

        profile = profile or self.host
        key = (profile.name, tuple(sorted(requires)))
        with self._lock:
            hit = self._envs.get(key)
        if hit is not None:
            return hit
        try:
            reqs = tuple(Requirement(r) for r in requires)
        except InvalidRequirement as e:
            raise BadSdist(f"{origin}: a build requirement is not valid: {e}") from None
        try:
            result = plan(self.repo, [profile], Inputs(requirements=reqs, policy=self.policy), self.indexes)
        except ResolutionImpossible as e:
            from bundler.diagnose import explain_impossible

            told = explain_impossible(e, self.repo)
            raise BuildFailed(f"the build requirements of {origin} ({', '.join(requires)}) for {profile.name}: {told.message}",
                              hint=told.hint) from None
        except BundlerError as e:
            raise type(e)(f"the build requirements of {origin} ({', '.join(requires)}) for {profile.name}: {e.message}",
                          hint=e.hint) from None
        pins = result.targets[0].pins
        with self._lock:
            self._envs[key] = pins
        return pins

    # -- metadata ----------------------------------------------------------------------------

    def metadata(self, link: Link) -> bytes:
        """Core metadata of the sdist at ``link``: PEP 643 static PKG-INFO when it is authoritative, else
        the ``prepare_metadata_for_build_wheel`` hook in an isolated build environment. Cached by sha256."""
        from bundler.fsutil import atomic_write, read_regular

        assert link.sha256 is not None
        cached = self.cache_root / "sdist-metadata" / f"{link.sha256}.metadata"
        if cached.is_file():
            return read_regular(cached, MAX_METADATA)
        path = self.sdist_path(link)
        facts = read_facts(path)
        data = facts.static_metadata
        if data is None:
            data = self._hook_metadata(path, link, build_system(facts, link.filename))
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cached, data)
        return data

    def _hook_metadata(self, path: Path, link: Link, system: BuildSystem) -> bytes:
        what = f"preparing the metadata of {link.filename}"
        requires = system.requires
        with tempfile.TemporaryDirectory(prefix="wheelhouse-meta-") as tmp:
            work = Path(tmp)
            (work / "src").mkdir()
            src = unpack(path, work / "src")
            files = self.env_files(self.environment(requires, origin=link.filename))
            hooks = _hooks(src, system, make_env(files, work / "env"), what)
            extra = _missing(_call(what, hooks.get_requires_for_build_wheel), files)
            if extra:  # the backend's dynamic build requirements (PEP 517): resolve them with the static ones
                requires = (*requires, *extra)
                files = self.env_files(self.environment(requires, origin=link.filename))
                hooks = _hooks(src, system, make_env(files, work / "env2"), what)
            (work / "meta").mkdir()
            dist_info = _call(what, hooks.prepare_metadata_for_build_wheel, str(work / "meta"), _allow_fallback=True)
            meta = work / "meta" / dist_info / "METADATA"
            if not meta.is_file():
                raise BuildFailed(f"{what}: the backend wrote no {dist_info}/METADATA")
            with self._lock:
                self._requires[link.sha256 or ""] = tuple(requires)
            from bundler.fsutil import read_regular

            return read_regular(meta, MAX_METADATA)

    # -- the lock's record -------------------------------------------------------------------

    def record(self, link: Link, profiles: Sequence[Profile]) -> BuildRecord:
        """How the locked sdist ``link`` is built: its build requirements, resolved for the builder and,
        where they resolve, for each target (needed there only when the built wheel is not pure)."""
        assert link.sha256 is not None
        with self._lock:
            requires = self._requires.get(link.sha256)
        if requires is None:
            requires = build_system(read_facts(self.sdist_path(link)), link.filename).requires
        builder = self.environment(requires, origin=link.filename)
        targets: dict[str, tuple[Pin, ...]] = {}
        for profile in profiles:
            try:
                targets[profile.name] = self.environment(requires, profile, origin=link.filename)
            except BundlerError:
                continue  # the target cannot build it; pack says so only if the built wheel is not pure
        return BuildRecord(sdist=link.sha256, filename=link.filename, requires=tuple(requires), builder=builder,
                           targets=targets)


def build_records(builder: Builder, targets: Sequence[Any]) -> tuple[BuildRecord, ...]:
    """A ``BuildRecord`` for every sdist the ``targets`` (``TargetPlan``) pin, in filename order."""
    sdists: dict[str, tuple[Link, list[Profile]]] = {}
    for t in targets:
        for pin in t.pins:
            if not pin.link.is_wheel and pin.link.sha256:
                sdists.setdefault(pin.link.sha256, (pin.link, []))[1].append(t.profile)
    return tuple(builder.record(link, profiles) for link, profiles in sorted(sdists.values(), key=lambda x: x[0].filename))
