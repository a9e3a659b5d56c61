"""What the user asks for: requirement strings, ``-r``/``-c`` files (pip syntax, ``--hash`` pins) and recipes."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bundler.errors import BadInput
from bundler.fsutil import read_regular
from bundler.urls import redact_url, remember_credentials
from bundler.validate import read_toml, target_name


@dataclass(slots=True)
class RequirementSet:
    """Requirements gathered from the command line and files, in order."""

    requirements: list[Requirement] = field(default_factory=list)
    constraints: list[Requirement] = field(default_factory=list)
    hashes: dict[str, frozenset[str]] = field(default_factory=dict)
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    pre: bool = False
    require_hashes: bool = False  # --require-hashes was given in a file
    files: list[Path] = field(default_factory=list)  # every requirements/constraints file read, includes too
    unhashed: list[str] = field(default_factory=list)  # origins of requirement lines without --hash
    only_binary: list[str] = field(default_factory=list)  # --only-binary values from files, in order
    no_binary: list[str] = field(default_factory=list)

    def check_hash_mode(self) -> None:
        """In hash-checking mode (some line has ``--hash``, or ``--require-hashes`` was given), every
        requirement line must carry hashes, as pip requires; name the lines that do not."""
        if (self.hashes or self.require_hashes) and self.unhashed:
            shown = ", ".join(self.unhashed[:5]) + (f" and {len(self.unhashed) - 5} more" if len(self.unhashed) > 5 else "")
            raise BadInput(f"some requirements carry --hash pins and others do not: no hash on {shown}",
                           hint="add --hash to every line (pip-compile --generate-hashes does), or remove them all")

    def add(self, text: str, origin: str, *, constraint: bool = False, hashes: list[str] | None = None) -> None:
        req = parse_requirement(text, origin)
        if not constraint and not hashes and not req.url:
            self.unhashed.append(origin)
        if constraint:
            if req.extras:
                raise BadInput(f"{origin}: constraints cannot have extras ({text!r})")
            self.constraints.append(req)
        else:
            self.requirements.append(req)
        if hashes:
            name, new = canonicalize_name(req.name), frozenset(hashes)
            self.hashes[name] = self.hashes[name] & new if name in self.hashes else new


def parse_requirement(text: str, origin: str) -> Requirement:
    """Parse one PEP 508 requirement; the error names where it came from."""
    try:
        req = Requirement(text)
    except InvalidRequirement as e:
        raise BadInput(f"{origin}: invalid requirement {_redact_urls(text)!r}: {_redact_urls(str(e))}") from None
    if req.url:
        # Credentials leave the URL here, where it enters, and live on only in memory for the
        # request (``bundler.http.NetrcAuth``): nothing downstream (lock, bundle, messages) sees them.
        req.url = remember_credentials(req.url)
        if not req.url.startswith(("https://", "http://", "file:")):
            raise BadInput(f"{origin}: {req.name} @ {req.url}: only http(s) and file URLs to wheels are supported")
    return req


def _redact_urls(text: str) -> str:
    """``text`` with the userinfo of every URL in it removed."""
    return re.sub(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", lambda m: redact_url(m.group()), text)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            out.append((start, buf.strip()))
        buf = ""
    if buf.strip():
        out.append((start, buf.strip()))
    return out


def read_requirements_file(path: str | Path, into: RequirementSet, *, constraint: bool = False, _seen: set[Path] | None = None) -> None:
    """Read a pip requirements file (``-r``, ``-c``, ``--hash``, index options; pip-compile output works)."""
    p = Path(path)
    seen = _seen if _seen is not None else set()
    try:
        real = p.resolve()
        text = read_regular(p, 16 << 20).decode("utf-8")  # never a FIFO or device
    except OSError as e:
        raise BadInput(f"cannot read requirements file {p}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise BadInput(f"requirements file {p} is not UTF-8 text") from None
    if real in seen:
        return
    seen.add(real)
    into.files.append(p)
    for lineno, line in _logical_lines(text):
        origin = f"{p}:{lineno}"
        try:
            words = shlex.split(line, posix=True)
        except ValueError as e:
            raise BadInput(f"{origin}: cannot parse {line!r}: {e}") from None
        if words[0].startswith("-"):
            _option_line(words, origin, p, into, constraint, seen)
            continue
        req_words, hashes = [], []
        for w in line.split():  # not the shlex words: quotes in markers must survive
            if w.startswith("--hash="):
                algo, _, digest = w[len("--hash="):].partition(":")
                if algo != "sha256" or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
                    raise BadInput(f"{origin}: unsupported hash {w!r} (wheelhouse pins sha256 only)")
                hashes.append(digest.lower())
            elif w.startswith("-"):
                raise BadInput(f"{origin}: unsupported per-requirement option {w!r}")
            else:
                req_words.append(w)
        into.add(" ".join(req_words), origin, constraint=constraint, hashes=hashes)
    if _seen is None:  # the top-level file, with everything it includes
        into.check_hash_mode()


def _option_line(words: list[str], origin: str, base: Path, into: RequirementSet, constraint: bool, seen: set[Path]) -> None:
    opt, value = words[0], (words[1] if len(words) > 1 else None)
    if "=" in opt and opt.startswith("--"):
        opt, value = opt.split("=", 1)
    elif len(opt) > 2 and opt[1] != "-" and value is None:
        opt, value = opt[:2], opt[2:]
    if opt in ("-r", "--requirement", "-c", "--constraint"):
        if not value:
            raise BadInput(f"{origin}: {opt} needs a file name")
        read_requirements_file(base.parent / value, into, constraint=constraint or opt in ("-c", "--constraint"), _seen=seen)
    elif opt in ("-i", "--index-url") and value:
        into.index_url = value
    elif opt == "--extra-index-url" and value:
        into.extra_index_urls.append(value)
    elif opt in ("-f", "--find-links") and value:
        into.find_links.append(value if "://" in value else str(base.parent / value))
    elif opt == "--pre":
        into.pre = True
    elif opt == "--require-hashes":
        into.require_hashes = True
    elif opt in ("--no-binary", "--only-binary") and value:
        (into.no_binary if opt == "--no-binary" else into.only_binary).append(value)
    elif opt in ("--prefer-binary", "--trusted-host", "--no-index"):
        pass  # wheels are preferred per version anyway, and hashes always checked
    else:
        raise BadInput(f"{origin}: unsupported option {opt!r} in a requirements file")


def parse_timestamp(text: str, origin: str = "--exclude-newer") -> datetime:
    """Parse an RFC 3339 timestamp or a date (``2024-06-01`` means its start, UTC)."""
    t = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
            return datetime.fromisoformat(t).replace(tzinfo=timezone.utc)
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{origin}: bad timestamp {text!r}", hint="use RFC 3339, e.g. 2024-06-01T00:00:00Z") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------------------------------------
# PyTorch backend names (the policy behind them is bundler.gpu; a name needs no table, so reading a
# recipe or a lock does not load it)

BACKEND_HELP = "auto, cpu or cuXYZ (CUDA X.Y: cu118, cu121, cu124, cu126, cu128, cu129, cu130)"


def parse_backend(text: str, origin: str = "--torch-backend") -> str:
    """Validate a torch backend name (``auto``, ``cpu``, ``cuXYZ``); return it lower-cased."""
    name = text.strip().lower()
    if name in ("auto", "cpu") or re.fullmatch(r"cu\d{2,3}", name):
        return name
    raise BadInput(f"{origin}: unknown torch backend {text!r}", hint=f"use {BACKEND_HELP}")


# ---------------------------------------------------------------------------------------------
# Recipes

RECIPE_KEYS = {"only-binary", "no-binary", "name", "description", "requirements", "constraints", "pre", "exclude-newer", "smoke", "targets", "index", "find-links",
               "torch-backend"}
TARGET_KEYS = {"python-platform", "python-version", "profile", "name"}
INDEX_KEYS = {"name", "url", "packages", "default"}


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipeTarget:
    python_platform: str | None = None
    python_version: str | None = None
    profile: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipeIndex:
    name: str
    url: str
    packages: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Recipe:
    path: Path
    name: str
    description: str = ""
    requirements: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    pre: bool = False
    exclude_newer: datetime | None = None
    smoke: tuple[str, ...] = ()
    targets: tuple[RecipeTarget, ...] = ()
    indexes: tuple[RecipeIndex, ...] = ()
    find_links: tuple[str, ...] = ()
    torch_backend: str | None = None  # auto | cpu | cuXYZ (see bundler.gpu)
    only_binary: tuple[str, ...] = ()  # pip's --only-binary values (":all:", ":none:" or names)
    no_binary: tuple[str, ...] = ()


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BadInput(f"{where} must be a {names}, not {type(value).__name__}")
    return value


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    _expect(value, list, where)
    for i, v in enumerate(value):
        _expect(v, str, f"{where}[{i}]")
    return tuple(value)


def _unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise BadInput(f"{where}: unknown key{'s' if len(extra) > 1 else ''} {', '.join(repr(k) for k in extra)}",
                       hint=f"allowed keys: {', '.join(sorted(allowed))}")


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe TOML file (unknown keys are errors; relative paths are resolved)."""
    p = Path(path)
    data = read_toml(p, "recipe")
    where = str(p)
    _unknown(data, RECIPE_KEYS, where)
    targets = []
    for i, t in enumerate(_expect(data.get("targets", []), list, f"{where}: targets")):
        tw = f"{where}: targets[{i}]"
        _expect(t, dict, tw)
        _unknown(t, TARGET_KEYS, tw)
        if ("profile" in t) == ("python-platform" in t or "python-version" in t):
            raise BadInput(f"{tw}: give either 'profile' or both 'python-platform' and 'python-version'")
        if "profile" not in t and not ("python-platform" in t and "python-version" in t):
            raise BadInput(f"{tw}: 'python-platform' and 'python-version' go together")
        if isinstance(t.get("python-version"), float):
            raise BadInput(f"{tw}.python-version must be a string: write python-version = \"{t['python-version']}\" "
                           "(TOML reads 3.10 as the number 3.1)")
        for key in ("python-platform", "python-version", "name"):
            if key in t:
                _expect(t[key], str, f"{tw}.{key}")
        if "name" in t:
            target_name(t["name"], f"{tw}.name")
        prof = t.get("profile")
        if prof is not None:
            _expect(prof, str, f"{tw}.profile")
            if prof.endswith(".json") or "/" in prof:
                prof = str((p.parent / prof))
        targets.append(RecipeTarget(python_platform=t.get("python-platform"), python_version=str(t["python-version"]) if "python-version" in t else None,
                                    profile=prof, name=t.get("name")))
    indexes = []
    for i, ix in enumerate(_expect(data.get("index", []), list, f"{where}: index")):
        iw = f"{where}: index[{i}]"
        _expect(ix, dict, iw)
        _unknown(ix, INDEX_KEYS, iw)
        if "name" not in ix or "url" not in ix:
            raise BadInput(f"{iw}: needs 'name' and 'url'")
        url = _expect(ix["url"], str, f"{iw}.url")
        if not re.match(r"^[a-z]+://", url) and url.lower() != "pypi":
            url = (p.parent / url).resolve().as_uri()
        indexes.append(RecipeIndex(name=_expect(ix["name"], str, f"{iw}.name"), url=url,
                                   packages=_str_list(ix["packages"], f"{iw}.packages") if "packages" in ix else None))
    exclude = data.get("exclude-newer")
    if isinstance(exclude, date) and not isinstance(exclude, datetime):
        exclude = datetime(exclude.year, exclude.month, exclude.day, tzinfo=timezone.utc)
    if exclude is not None and not isinstance(exclude, (str, datetime)):
        raise BadInput(f"{where}: exclude-newer must be an RFC 3339 timestamp string")
    if isinstance(exclude, datetime):
        exclude = exclude if exclude.tzinfo else exclude.replace(tzinfo=timezone.utc)
    elif isinstance(exclude, str):
        exclude = parse_timestamp(exclude, f"{where}: exclude-newer")
    backend = data.get("torch-backend")
    if backend is not None:
        backend = parse_backend(_expect(backend, str, f"{where}: torch-backend"), f"{where}: torch-backend")
    return Recipe(
        path=p,
        name=_expect(data.get("name", p.stem), str, f"{where}: name"),
        description=_expect(data.get("description", ""), str, f"{where}: description"),
        requirements=_str_list(data.get("requirements", []), f"{where}: requirements"),
        constraints=_str_list(data.get("constraints", []), f"{where}: constraints"),
        pre=_expect(data.get("pre", False), bool, f"{where}: pre"),
        exclude_newer=exclude,
        smoke=_str_list(data.get("smoke", []), f"{where}: smoke"),
        targets=tuple(targets),
        indexes=tuple(indexes),
        find_links=tuple(str(p.parent / f) if "://" not in f else f for f in _str_list(data.get("find-links", []), f"{where}: find-links")),
        torch_backend=backend,
        only_binary=_binary_values(data, "only-binary", where),
        no_binary=_binary_values(data, "no-binary", where),
    )


def _binary_values(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    """A recipe's ``only-binary``/``no-binary``: a string (":all:", "a,b") or a list of names."""
    value = data.get(key, [])
    return (_expect(value, str, f"{where}: {key}"),) if isinstance(value, str) else _str_list(value, f"{where}: {key}")


def binary_rules(only_binary: Sequence[str], no_binary: Sequence[str]) -> tuple[frozenset[str], frozenset[str]]:
    """pip's --only-binary/--no-binary values, in the order given, as (only, no) sets of canonical
    names or ``:all:``. As in pip, ``:all:`` and ``:none:`` reset the set, and a name given to one
    flag is taken out of the other."""
    only: set[str] = set()
    no: set[str] = set()
    for flag, value in [*(("only", v) for v in only_binary), *(("no", v) for v in no_binary)]:
        mine, other = (only, no) if flag == "only" else (no, only)
        for item in (x.strip() for x in value.split(",")):
            if not item:
                continue
            if item == ":all:":
                mine.clear()
                mine.add(":all:")
                other.clear()
            elif item == ":none:":
                mine.clear()
            else:
                if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", item):
                    raise BadInput(f"--{flag}-binary: {item!r} is not a project name", hint="give :all:, :none: or NAME[,NAME]")
                mine.add(canonicalize_name(item))
                other.discard(canonicalize_name(item))
    return frozenset(only), frozenset(no)
