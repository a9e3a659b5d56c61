"""Indexes as data: the files a project offers, and pure parsers for the formats that list them.

PEP 503 (HTML) and PEP 691 (JSON) simple pages, PEP 592 yanking, PEP 658/714 core-metadata
advertisement, PEP 700 upload-time and size, and flat find-links pages/directories all parse into
``Link`` objects. The choice of parser follows the response Content-Type, never what was asked for.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
import html
from typing import Any, Callable, Mapping, Protocol, Sequence
from urllib.parse import unquote, urljoin

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from bundler.errors import IndexUnavailable
from bundler.urls import encode_userinfo, redact_url

PYPI_SIMPLE = "https://pypi.org/simple/"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexConfig:
    """An index or find-links location named by the user.

    ``packages`` makes the index explicit: only projects matching one of the glob patterns come
    from it, and they come from nowhere else.
    """

    name: str
    url: str
    kind: str = "index"  # index | find-links
    packages: tuple[str, ...] | None = None

    @property
    def explicit(self) -> bool:
        return self.packages is not None

    def claims(self, project: str) -> bool:
        """True when this explicit index owns ``project`` (patterns match normalized names)."""
        if self.packages is None:
            return False
        norm = canonicalize_name(project)
        return any(fnmatch.fnmatchcase(norm, _normalize_pattern(p)) for p in self.packages)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "url": redact_url(self.url), "kind": self.kind}
        if self.packages is not None:
            d["packages"] = list(self.packages)
        return d


# Not frozen, for speed (a lock reads tens of thousands from the cache and frozen dataclasses set
# each field through object.__setattr__); hashed and compared by value all the same. Never mutated.
@dataclass(slots=True, kw_only=True, unsafe_hash=True)
class Link:
    """One file a project offers on one index."""

    filename: str
    url: str
    index: str  # IndexConfig.name
    index_url: str
    sha256: str | None = None
    requires_python: str | None = None
    yanked: str | None = None  # None: not yanked; "" yanked without a reason
    upload_time: datetime | None = None
    size: int | None = None
    metadata: bool = False  # PEP 658/714: a .metadata file is served next to the file
    metadata_sha256: str | None = None
    flat: bool = False  # from find-links or a direct reference, where no upload time exists

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def is_yanked(self) -> bool:
        return self.yanked is not None


class ProjectIndex(Protocol):
    """What the planner (and the messages about its failures) need from the indexes: pages and core
    metadata. ``bundler.repository.Repository`` serves them over HTTP; ``tests/support/fakeindex.py`` from memory.
    """

    indexes: Sequence[IndexConfig]  # in priority order; ``supplying_indexes`` picks among them

    def project_links(self, project: str) -> tuple[IndexConfig, Sequence[Link]] | None:
        """The files of ``project`` from the one index that supplies it, or None when no index has it."""

    def all_links(self, project: str) -> list[tuple[IndexConfig, Sequence[Link]]]:
        """The files of ``project`` on every configured index, supplying or not (for ``explain``)."""

    def metadata(self, link: Link) -> bytes:
        """The core metadata (METADATA file) of a wheel."""

    def direct_link(self, url: str) -> Link:
        """The file a ``name @ URL`` requirement names, hashed (reading it once when the URL gives no hash)."""

    def hashed(self, link: Link) -> Link:
        """``link`` with its sha256: as given, or for a find-links page that gives none, from the file read once."""

    def prefetch_projects(self, projects: Sequence[str]) -> None:
        """Start fetching project pages that will be needed soon (no-op allowed)."""

    def prefetch_metadata(self, links: Sequence[Link]) -> None:
        """Start fetching core metadata that will be needed soon (no-op allowed)."""

    def listen(self, on_page: Callable[[str, IndexConfig, Sequence[Link]], None], on_metadata: Callable[[Link, bytes], None]) -> None:
        """Be told, from any thread, when a project page or a file's metadata arrives (no-op allowed)."""


def supplying_indexes(indexes: Sequence[IndexConfig], project: str) -> list[IndexConfig]:
    """The indexes that may supply ``project``, in priority order (DESIGN.md's index semantics).

    An explicit index that claims the project is its only source (the first such one, if several
    claim it), so a general index can never substitute a look-alike. Otherwise every general index
    may, and the first one that has the project at all supplies all of its files; explicit indexes
    serve nothing they do not claim.
    """
    explicit = [i for i in indexes if i.explicit and i.claims(project)]
    if explicit:
        return explicit[:1]
    return [i for i in indexes if not i.explicit]


def _normalize_pattern(pattern: str) -> str:
    """Normalize a project-name glob like a project name (PEP 503), keeping ``*`` and ``?``."""
    return re.sub(r"[-_.]+", "-", pattern.strip()).lower()


def metadata_key(link: Link) -> str | None:
    """The permanent cache key of a file's core metadata: its sha256 *and* where it came from.

    Keying by the hash alone would let an index that claims another file's hash plant metadata
    that a later lock of the real file (from another index) would read back.
    """
    if not link.sha256:
        return None
    return hashlib.sha256(f"{link.sha256}|{redact_url(link.url)}".encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# URL helpers (credentials: ``bundler.urls``)


def normalize_index_url(url: str) -> str:
    """Expand the name ``pypi``; give http(s) simple-index URLs a trailing slash."""
    if url.strip().lower() in ("pypi", "pypi.org"):
        return PYPI_SIMPLE
    url = url.strip()
    if url.startswith(("http://", "https://")):
        url = encode_userinfo(url)
        if not url.endswith("/"):
            url += "/"
    return url


def project_url(index_url: str, project: str) -> str:
    """The PEP 503 page URL of ``project`` on a simple index."""
    return urljoin(index_url if index_url.endswith("/") else index_url + "/", canonicalize_name(project) + "/")


def filename_from_url(url: str) -> str:
    """The unquoted file name at the end of ``url`` (query and fragment ignored)."""
    name = url.partition("#")[0].partition("?")[0].rsplit("/", 1)[-1]
    return unquote(name) if "%" in name else name


def project_of_filename(filename: str) -> str:
    """The normalized project name a distribution filename (wheel or sdist) belongs to."""
    if filename.endswith(".whl"):
        return canonicalize_name(filename.split("-", 1)[0])
    stem = filename
    for ext in (".tar.gz", ".tar.bz2", ".tgz", ".zip"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    return canonicalize_name(stem.rsplit("-", 1)[0])


def _join(base: str, href: str) -> str:
    """``urljoin`` with a fast path for absolute URLs (most hrefs; urllib is slow on 10^4 links)."""
    if href.startswith(("https://", "http://")):
        return href
    return urljoin(base, href)


def split_hash(url: str) -> tuple[str, str | None]:
    """``(url without fragment, sha256 from a #sha256=... fragment or None)``."""
    base, _, frag = url.partition("#")
    if frag.startswith("sha256="):
        return base, frag[len("sha256=") :].lower()
    return base, None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value)  # 3.11+ reads a "Z" suffix itself
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _metadata_attr(value: Any) -> tuple[bool, str | None]:
    """Interpret a PEP 658/714 value: ``true``, ``false``, ``{"sha256": ...}`` or ``sha256=...``."""
    if value is None or value is False or value == "false":
        return False, None
    if isinstance(value, Mapping):
        h = value.get("sha256")
        return True, h.lower() if isinstance(h, str) else None
    if isinstance(value, str) and value.startswith("sha256="):
        return True, value[len("sha256=") :].lower()
    return True, None


# ---------------------------------------------------------------------------------------------
# Parsers


def _entry_link(index: IndexConfig, page_url: str, url: str, *, filename: str | None, sha256: Any,
                requires_python: Any, yanked: Any, upload_time: Any, size: Any, metadata: Any) -> Link | None:
    """One file of a page as a ``Link``, with every value checked where it enters.

    Files that are not wheels or sdists by their name's grammar are skipped, as pip skips them
    (old eggs, installers, non-PEP 440 versions); a distribution whose URL or digest is malformed
    makes the whole page an error, since nothing an index says about it can then be trusted.
    """
    url, frag_hash = split_hash(url)
    name = filename if isinstance(filename, str) and filename else filename_from_url(url)
    if not _is_distribution(name):
        return None

    def where() -> str:  # only on the error paths: redacting every entry's page URL is not free
        return f"index {index.name} ({redact_url(page_url)}): {_printable(name)}"

    remote = page_url.startswith(("http://", "https://"))
    if remote and not url.startswith(("http://", "https://")):
        raise IndexUnavailable(f"{where()} links to {_printable(redact_url(url))}; a remote index may link only http(s) files")
    clean = url.isprintable() and " " not in url or _BAD_URL_CHAR.search(url) is None  # isprintable(): most in C
    if not url.startswith(("http://", "https://", "file:")) or not clean:
        raise IndexUnavailable(f"{where()} has a malformed URL {_printable(redact_url(url))}")
    sha = sha256 if sha256 is not None else frag_hash
    if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha.lower())):
        raise IndexUnavailable(f"{where()} has a malformed sha256 {_printable(repr(sha))}",
                               hint="the index is broken or hostile: nothing from it is used")
    has_meta, meta_sha = _metadata_attr(metadata)
    if meta_sha is not None and not _SHA256.fullmatch(meta_sha):
        raise IndexUnavailable(f"{where()} has a malformed core-metadata sha256 {_printable(repr(meta_sha))}")
    return Link(
        filename=name,
        url=url,
        index=index.name,
        index_url=index.url,
        sha256=sha.lower() if isinstance(sha, str) else None,
        requires_python=_printable(requires_python) if isinstance(requires_python, str) and requires_python else None,
        yanked=None if yanked is None or yanked is False or yanked == "\0" else (_printable(yanked) if isinstance(yanked, str) else ""),
        upload_time=_parse_time(upload_time),
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        metadata=has_meta,
        metadata_sha256=meta_sha,
    )


_SHA256 = re.compile(r"[0-9a-f]{64}")
# Whitespace (as str.isspace: sre's \s is the same Unicode class) or a C0 control character; a
# regex, because a per-character check cost seconds on pages with 10^4 long URLs.
_BAD_URL_CHAR = re.compile(r"[\s\x00-\x1f]")
_DIST_NAME = re.compile(r"[A-Za-z0-9._+!-]+\.(whl|tar\.gz|zip|tar\.bz2|tgz)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _is_distribution(filename: str) -> bool:
    """A wheel or sdist name by its grammar (no path separators, spaces or control characters)."""
    if len(filename) > 255 or not _DIST_NAME.fullmatch(filename):
        return False
    if filename.endswith(".whl"):
        return _is_wheel_name(filename)
    # parse_sdist_filename's grammar (legacy .tar.bz2 and .tgz sdists too): NAME-VERSION, split at the
    # last dash, VERSION a PEP 440 version (remembered: the wheels of that version asked already)
    stem = filename[: -len(next(e for e in (".tar.gz", ".zip", ".tar.bz2", ".tgz") if filename.endswith(e)))]
    _, dash, version = stem.rpartition("-")
    return bool(dash) and _version_ok(version)


def _is_wheel_name(filename: str) -> bool:
    """Whether ``parse_wheel_filename`` accepts ``filename``, asking it about each part once.

    Its checks are of the parts between the dashes, one by one (the project name with any build
    tag, the version, the tag set), and a page repeats them across thousands of files: each part
    is checked in a minimal wheel name of its own, and the answers are remembered.
    """
    stem = filename[:-4]
    dashes = stem.count("-")
    if dashes not in (4, 5):
        return False
    parts = stem.split("-", dashes - 2)
    build = parts[2] if dashes == 5 else None
    return _version_ok(parts[1]) and _wheel_ok(f"x-1-{parts[-1]}.whl") and _wheel_ok(
        f"{parts[0]}-1{'-' + build if build is not None else ''}-py3-none-any.whl")


@lru_cache(maxsize=1 << 14)
def _version_ok(text: str) -> bool:
    """Whether ``text`` is a PEP 440 version (the check both filename grammars make of it)."""
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


@lru_cache(maxsize=1 << 14)
def _wheel_ok(filename: str) -> bool:
    try:
        parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    return True


def _printable(text: str) -> str:
    """``text`` with control characters escaped, safe to print on a terminal or store."""
    if text.isprintable():  # no control character (the common case, decided in C)
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def parse_json_page(body: bytes, page_url: str, index: IndexConfig) -> Sequence[Link]:
    """Parse a PEP 691 JSON project page (``bundler.jsonpage``)."""
    from bundler.jsonpage import parse_json_page as parse

    return parse(body, page_url, index)


_TAG_START = re.compile(r"<(?:(!--)|(a|base)(?=[\s/>]))", re.IGNORECASE)
_ATTR_NAME = re.compile(r"[^\s\"'=<>/]+")
_UNQUOTED = re.compile(r"[^\s>]+")
_SPACE = re.compile(r"[\s/]*")


def _anchors(text: str) -> tuple[str | None, list[dict[str, str | None]]]:
    """The ``<base href>`` and the attributes of every ``<a>`` of a simple-index page.

    A single forward scan, so the time is linear in the page whatever it holds: quoted values may
    contain ``>``, comments are skipped, and a tag or quote that never closes ends the scan (as
    ``html.parser`` drops an unfinished tag). Several times faster than ``html.parser`` on projects
    with tens of thousands of files; tests compare the two.
    """
    base = None
    anchors = []
    pos, n = 0, len(text)
    while (m := _TAG_START.search(text, pos)) is not None:
        if m.group(1):  # a comment: nothing inside it is markup
            end = text.find("-->", m.end())
            if end < 0:
                break
            pos = end + 3
            continue
        attrs: dict[str, str | None] = {}
        pos = m.end()
        while True:
            pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
            if pos >= n:
                return base, anchors  # the tag never closes
            if text[pos] == ">":
                pos += 1
                break
            name = _ATTR_NAME.match(text, pos)
            if name is None:  # a stray quote, '=' or '<': skip it, as browsers do
                pos += 1
                continue
            pos = _SPACE.match(text, name.end()).end()  # type: ignore[union-attr]
            value: str | None = None
            if pos < n and text[pos] == "=":
                pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
                if pos < n and text[pos] in "\"'":
                    close = text.find(text[pos], pos + 1)
                    if close < 0:
                        return base, anchors  # an unclosed quote swallows the rest of the page
                    value, pos = text[pos + 1:close], close + 1
                elif (bare := _UNQUOTED.match(text, pos)) is not None:
                    value, pos = bare.group(), bare.end()
            attrs.setdefault(name.group().lower(), html.unescape(value) if value is not None else None)
        if m.group(2).lower() == "base":
            base = base or attrs.get("href")
        else:
            anchors.append(attrs)
    return base, anchors


def parse_html_page(body: bytes, page_url: str, index: IndexConfig) -> list[Link]:
    """Parse a PEP 503 HTML project page or a flat find-links page."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    base_href, anchors = _anchors(text)
    base = urljoin(page_url, base_href) if base_href else page_url
    links = []
    for a in anchors:
        href = a.get("href")
        if not href:
            continue
        meta_attr = a.get("data-core-metadata", a.get("data-dist-info-metadata"))  # valueless: absent, as pip does
        if meta_attr is None:
            meta: Any = None
        elif meta_attr in ("true", ""):
            meta = True
        else:
            meta = meta_attr
        link = _entry_link(index, page_url, _join(base, href), filename=None, sha256=None,
                           requires_python=a.get("data-requires-python"), yanked=a.get("data-yanked", "\0") or "",
                           upload_time=a.get("data-upload-time"),  # not in PEP 503, but some mirrors send it
                           size=None, metadata=meta)
        if link is not None:
            links.append(link)
    return links


def is_json_type(content_type: str) -> bool:
    """Whether a page of this Content-Type is read as PEP 691 JSON (anything else as HTML, or refused)."""
    return content_type.split(";")[0].strip().lower() in (JSON_TYPE, "application/json")


def parse_page(body: bytes, content_type: str, page_url: str, index: IndexConfig) -> Sequence[Link]:
    """Parse a project page by its Content-Type (JSON for the PEP 691 type, HTML otherwise)."""
    ctype = content_type.split(";")[0].strip().lower()
    if is_json_type(ctype):
        return parse_json_page(body, page_url, index)
    if ctype in ("text/html", "application/vnd.pypi.simple.v1+html", "application/xhtml+xml", ""):
        return parse_html_page(body, page_url, index)
    raise IndexUnavailable(
        f"index {index.name} answered {redact_url(page_url)} with Content-Type {ctype!r}, which is not a package index page",
        hint="check that the URL points at a PEP 503/691 simple index (it usually ends in /simple/)",
    )
