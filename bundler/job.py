"""A ``Job``: command-line options and a recipe turned into the planner's inputs (targets, indexes, requirements)."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name

from bundler.errors import BadInput, UsageError
from bundler.gpu.backend import PYTORCH_INDEX, TorchChoice, choose_backend, torch_specifier
from bundler.gpu.checks import general_pytorch_indexes
from bundler.index import PYPI_SIMPLE, IndexConfig, normalize_index_url
from bundler.urls import encode_userinfo, redact_url
from bundler.inputs import Recipe, RequirementSet, binary_rules, load_recipe, parse_timestamp, read_requirements_file
from bundler.model import Inputs
from bundler.profile import Profile, profile_for_platform, resolve_profile
from bundler.select import Policy


def pip_default_index() -> str:
    """The index pip would use: ``PIP_INDEX_URL``, else ``index-url`` from pip's config files, else PyPI."""
    env = os.environ.get("PIP_INDEX_URL")
    if env:
        return normalize_index_url(env)
    cfg_env = os.environ.get("PIP_CONFIG_FILE")
    if cfg_env == os.devnull:
        return PYPI_SIMPLE
    files = [Path("/etc/pip.conf"), Path.home() / ".pip" / "pip.conf", Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "pip" / "pip.conf"]
    if cfg_env:
        files.append(Path(cfg_env))
    url = None
    for f in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(f)
        except (configparser.Error, OSError):
            continue
        for section in ("global", "install", "download"):
            if parser.has_option(section, "index-url"):
                url = parser.get(section, "index-url").split()[0]
    return normalize_index_url(url) if url else PYPI_SIMPLE


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A fully parsed lock request."""

    profiles: tuple[Profile, ...]
    indexes: tuple[IndexConfig, ...]
    inputs: Inputs
    recipe: Recipe | None
    torch: TorchChoice | None = None  # the PyTorch backend, when one was asked for (print its reason)
    warnings: tuple[str, ...] = ()  # for the user: printed, never fatal
    files: tuple[Path, ...] = ()  # every file read to build the job: no output may overwrite one


def build_profiles(profile_specs: Sequence[str], platform: str | None, version: str | None, recipe: Recipe | None,
                   host: Callable[[], Profile] | None = None) -> list[Profile]:
    """Targets from --profile / --python-platform + --python-version, else from the recipe
    (``host`` captures the machine running wheelhouse, for the target named ``host``)."""
    if (platform is None) != (version is None):
        raise UsageError("--python-platform and --python-version go together")
    profiles = [resolve_profile(s, host=host) for s in profile_specs]
    if platform is not None and version is not None:
        profiles.append(profile_for_platform(platform, version, macos_target=os.environ.get("MACOSX_DEPLOYMENT_TARGET")))
    if not profiles and recipe is not None:
        for t in recipe.targets:
            if t.profile:
                prof = resolve_profile(t.profile, host=host)
            else:
                assert t.python_platform and t.python_version
                prof = profile_for_platform(t.python_platform, t.python_version, macos_target=os.environ.get("MACOSX_DEPLOYMENT_TARGET"))
            profiles.append(prof.with_name(t.name) if t.name else prof)
    if not profiles:
        raise UsageError("no target given", hint="use --python-platform PLAT --python-version X.Y, --profile NAME|FILE, or a recipe with [[targets]]")
    return profiles


def _split_pair(value: str, flag: str) -> tuple[str, str]:
    if "=" not in value:
        raise UsageError(f"{flag} expects NAME=VALUE, got {value!r}")
    a, b = value.split("=", 1)
    if not a.strip() or not b.strip():
        raise UsageError(f"{flag} expects NAME=VALUE, got {value!r}")
    return a.strip(), b.strip()


def build_indexes(*, index_url: str | None, extra_index_urls: Sequence[str], find_links: Sequence[str], named: Sequence[str],
                  pins: Sequence[str], recipe: Recipe | None, reqset: RequirementSet) -> list[IndexConfig]:
    """The index list in priority order, as DESIGN.md's index semantics define it.

    Order: find-links, --extra-index-url (in order), --index NAME=URL, recipe indexes (file order; with
    --index-url, which overrides the recipe, only its explicit ones),
    then the default index (--index-url, the recipe's or requirements file's, else pip's default).
    An index named by ``--pin PATTERN=NAME`` or with ``packages`` in a recipe is explicit.
    """
    general: list[IndexConfig] = []
    explicit_patterns: dict[str, list[str]] = {}
    for pin in pins:
        pattern, name = _split_pair(pin, "--pin")
        explicit_patterns.setdefault(name, []).append(pattern)

    def add(name: str, url: str, kind: str = "index", packages: tuple[str, ...] | None = None) -> None:
        if any(i.name == name for i in general):
            raise UsageError(f"two indexes are named {name!r}")
        if name in explicit_patterns:
            packages = tuple(packages or ()) + tuple(explicit_patterns[name])
        if kind != "find-links":
            url = normalize_index_url(url)  # also percent-encodes awkward characters in a token
        if "://" in url:
            try:
                urlsplit(encode_userinfo(url)).port  # also checks the host part ("http://[bad/") and the port
            except ValueError as e:
                if "@" in url:  # where a token ends is then uncertain: show only what follows the last '@'
                    raise BadInput(f"index {name}: bad URL '...@{url.rsplit('@', 1)[1]}': its host or port is malformed",
                                   hint="percent-encode '/', '#', '?' and '@' inside a token (%2F, %23, %3F, %40)") from None
                raise BadInput(f"index {name}: bad URL {redact_url(url)!r}: {e}") from None
        general.append(IndexConfig(name=name, url=url, kind=kind, packages=packages))

    for i, f in enumerate(list(find_links) + list(reqset.find_links) + list(recipe.find_links if recipe else ())):
        add(f"find-links-{i + 1}" if i else "find-links", f, "find-links")
    for i, u in enumerate(list(extra_index_urls) + reqset.extra_index_urls):
        add(f"extra-{i + 1}", u)
    for n in named:
        name, url = _split_pair(n, "--index")
        add(name, url)
    if recipe is not None:
        for ix in recipe.indexes:
            if index_url and not ix.packages and ix.name not in explicit_patterns:
                continue  # --index-url overrides the recipe's general indexes; its explicit ones stay
            add(ix.name, ix.url, packages=ix.packages)
    default = index_url or reqset.index_url
    if default is not None or not any(not i.explicit and i.kind == "index" for i in general):
        url = normalize_index_url(default) if default else pip_default_index()
        name = "pypi" if url == PYPI_SIMPLE and not any(i.name == "pypi" for i in general) else "default"
        add(name, url)
    unknown = set(explicit_patterns) - {i.name for i in general}
    if unknown:
        raise UsageError(f"--pin names an index that is not defined: {', '.join(sorted(unknown))}",
                         hint="define it with --index NAME=URL (or [[index]] in a recipe)")
    return general


def build_job(*, positional: Sequence[str], req_files: Sequence[str], constraint_files: Sequence[str], profile_specs: Sequence[str],
              platform: str | None, version: str | None, index_url: str | None, extra_index_urls: Sequence[str],
              find_links: Sequence[str], named: Sequence[str], pins: Sequence[str], pre: bool, exclude_newer: str | None,
              default_recipe: Path | None = None, torch_backend: str | None = None, torch_index: str | None = None,
              need_requirements: bool = True, host: Callable[[], Profile] | None = None,
              only_binary: Sequence[str] = (), no_binary: Sequence[str] = ()) -> Job:
    """Parse everything a ``lock`` invocation names into a ``Job``.

    ``torch_backend`` (``--torch-backend``; it overrides the recipe's ``torch-backend``) adds the
    PyTorch index of that backend as an explicit index serving the torch family (see
    ``bundler.gpu``). ``torch_index`` replaces ``https://download.pytorch.org/whl`` (a mirror of
    that tree), else ``WHEELHOUSE_PYTORCH_INDEX`` does. ``need_requirements=False`` builds the targets,
    indexes and policy alone (for ``explain``).
    """
    recipe = None
    reqset = RequirementSet()
    for item in positional:
        if item.endswith(".toml"):
            if recipe is not None:
                raise UsageError("only one recipe per run")
            recipe = load_recipe(item)
        else:
            reqset.add(item, "command line")
    if recipe is None and not positional and not req_files and default_recipe is not None and need_requirements:
        recipe = load_recipe(default_recipe)
    if recipe is not None:
        for r in recipe.requirements:
            reqset.add(r, str(recipe.path))
        for c in recipe.constraints:
            reqset.add(c, str(recipe.path), constraint=True)
    for f in req_files:
        read_requirements_file(f, reqset)
    for f in constraint_files:
        read_requirements_file(f, reqset, constraint=True)
    if not reqset.requirements and need_requirements:
        raise UsageError("nothing to lock", hint="give requirements, -r FILE, or a recipe")
    when: datetime | None = parse_timestamp(exclude_newer) if exclude_newer else (recipe.exclude_newer if recipe else None)
    profiles = build_profiles(profile_specs, platform, version, recipe, host)
    indexes = build_indexes(index_url=index_url, extra_index_urls=extra_index_urls, find_links=find_links, named=named,
                            pins=pins, recipe=recipe, reqset=reqset)
    allow_pre = pre or reqset.pre or bool(recipe and recipe.pre)
    if len({p.name for p in profiles}) != len(profiles):
        raise BadInput("two targets have the same name: " + ", ".join(p.name for p in profiles))
    choice, notes = None, []
    backend = torch_backend if torch_backend is not None else (recipe.torch_backend if recipe else None)
    base = pytorch_base(torch_index)
    if backend is not None:
        origin = "--torch-backend" if torch_backend is not None or recipe is None else f"{recipe.path}: torch-backend"
        choice = choose_backend(backend, profiles, pre=allow_pre, base=base, origin=origin,
                                torch_spec=torch_specifier(list(reqset.requirements) + list(reqset.constraints)))
        indexes, notes = with_torch_index(indexes, choice, pins=pins, recipe=recipe, from_flag=torch_backend is not None)
    # The PyTorch indexes give no upload times: --exclude-newer cannot hold their files back, so the
    # torch family is admitted undated (recipes pin it with == for reproducible re-locks).
    only, no = binary_rules([*(recipe.only_binary if recipe else ()), *reqset.only_binary, *only_binary],
                            [*(recipe.no_binary if recipe else ()), *reqset.no_binary, *no_binary])
    policy = Policy(allow_pre=allow_pre, exclude_newer=when, undated_ok=frozenset({choice.index_name}) if choice else frozenset(),
                    only_binary=only, no_binary=no)
    inputs = Inputs(requirements=tuple(reqset.requirements), constraints=tuple(reqset.constraints), hashes=dict(reqset.hashes), policy=policy)
    warnings = list(choice.warnings if choice else ()) + notes + general_pytorch_indexes(indexes, base)
    if choice and when:
        loose = sorted({r.name for r in reqset.requirements if canonicalize_name(r.name) in ("torch", "torchvision", "torchaudio")
                        and not any(s.operator in ("==", "===") and "*" not in s.version for s in r.specifier)})
        if loose:
            warnings.append(f"the PyTorch index gives no upload times, so --exclude-newer does not hold back {', '.join(loose)}: "
                            "pin them with == for a lock that re-locks the same")
    files = [*([recipe.path] if recipe else []), *reqset.files,
             *(Path(s) for s in profile_specs if Path(s).is_file()),
             *(Path(t.profile) for t in (recipe.targets if recipe else ()) if t.profile)]
    return Job(profiles=tuple(profiles), indexes=tuple(indexes), inputs=inputs, recipe=recipe, torch=choice,
               warnings=tuple(warnings), files=tuple(f for f in files if f.is_file()))


def pytorch_base(torch_index: str | None) -> str:
    """The PyTorch wheel tree: ``--torch-index``, else ``WHEELHOUSE_PYTORCH_INDEX``, else download.pytorch.org."""
    return torch_index or os.environ.get("WHEELHOUSE_PYTORCH_INDEX") or PYTORCH_INDEX


def with_torch_index(indexes: Sequence[IndexConfig], choice: TorchChoice, *, pins: Sequence[str], recipe: Recipe | None,
                     from_flag: bool) -> tuple[list[IndexConfig], list[str]]:
    """Put the backend's explicit index first, so the torch family comes from it and from nowhere else.

    Another explicit index that also claims torch is a conflict, except a recipe's when the
    backend came from the command line: the flag overrides the recipe, and being first, the
    backend's index shadows it for the torch family.
    """
    if any(i.name == choice.index_name for i in indexes):
        raise UsageError(f"an index is already named {choice.index_name!r}, the name of the --torch-backend index",
                         hint="rename that index, or drop it and let --torch-backend add the PyTorch index")
    family = ("torch", "torchvision", "torchaudio")
    notes = []
    for ix in indexes:
        if not ix.explicit or not any(ix.claims(f) for f in family):
            continue
        by_pin = any(name.strip() == ix.name and IndexConfig(name="_", url="_", packages=(pattern,)).claims(f)
                     for pattern, _, name in (p.partition("=") for p in pins) for f in family)
        from_recipe = recipe is not None and any(r.name == ix.name and r.packages for r in recipe.indexes)
        if by_pin or not from_recipe:
            raise UsageError(f"index {ix.name} is pinned to serve torch, and --torch-backend would serve it too",
                             hint="drop the --pin for the torch family, or drop --torch-backend")
        if not from_flag:
            raise BadInput(f"{recipe.path if recipe else 'the recipe'}: index {ix.name} serves torch and torch-backend is set too",
                           hint="keep one: the [[index]] with the torch packages, or torch-backend")
        notes.append(f"--torch-backend overrides the recipe's index {ix.name} for the torch family")
    torch_index = IndexConfig(name=choice.index_name, url=choice.index_url, packages=choice.packages)
    return [torch_index, *indexes], notes
