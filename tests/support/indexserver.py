"""A real PEP 503/691/658/700 package index on loopback, for tests.

Each ``IndexServer`` binds ``127.0.0.1:<ephemeral>`` and serves any number of
named indexes from a background ``ThreadingHTTPServer``::

    /{index}/simple/                      project list (HTML or JSON)
    /{index}/simple/{normalized-name}/    project page (HTML or JSON)
    /{index}/links/                       flat find-links HTML page
    /{index}/files/{filename}             file bytes (Range, ETag, If-Range, HEAD)
    /{index}/files/{filename}.metadata    PEP 658 core metadata

HTML pages use relative hrefs, JSON pages absolute URLs, so clients must
handle both. Every request is logged in ``IndexServer.requests``.
"""

from __future__ import annotations

import email.utils
import hashlib
import html
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Optional
from urllib.parse import quote, unquote, urlsplit

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

from .loopback import LoopbackHandler, LoopbackServer

from .wheelgen import make_wheel, read_metadata

__all__ = ["FaultHook", "IndexServer", "Request", "RequestRecord", "Response", "WheelInfo"]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "text/html; charset=utf-8"
_JSON_TYPES = (JSON_TYPE, "application/vnd.pypi.simple.latest+json")
_HTML_TYPES = ("application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.latest+html",
               "text/html")


@dataclass(frozen=True)
class WheelInfo:
    """What a test needs to know about a served file."""

    filename: str
    path: Path
    url: str  # absolute URL of the file
    sha256: str  # hex digest of the file
    size: int
    metadata_sha256: str | None  # hex digest of METADATA; None for sdists


@dataclass
class RequestRecord:
    """One handled request. Header keys are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    status: int
    range: str | None
    bytes_sent: int
    response_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """The request as seen by routing and by fault hooks."""

    method: str
    path: str  # raw request target, e.g. "/main/files/a-1.0-py3-none-any.whl"
    headers: dict[str, str]  # lower-cased keys


@dataclass
class Response:
    """A complete response; ``body`` is omitted on the wire for HEAD and 304."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


FaultHook = Callable[[Request], Optional[Response]]
"""Called before routing; returning a Response short-circuits normal handling."""


@dataclass
class _File:
    filename: str
    project: str  # canonical name
    version: str
    data: bytes
    metadata: bytes | None
    requires_python: str | None
    yanked: str | bool  # False, True (no reason) or the reason
    upload_time: datetime | None  # aware, UTC
    last_modified: float


@dataclass
class _Index:
    name: str
    formats: tuple[str, ...]
    metadata_files: bool
    range_support: bool
    display_names: dict[str, str] = field(default_factory=dict)  # canonical -> as added
    files: dict[str, _File] = field(default_factory=dict)  # filename -> file

    def project_files(self, project: str) -> list[_File]:
        found = [f for f in self.files.values() if f.project == project]
        return sorted(found, key=lambda f: (Version(f.version), f.filename))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _etag_matches(header: str | None, etag: str) -> bool:
    """Weak comparison of an If-None-Match header against ``etag``."""
    if header is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def _accept_score(accept: str, types: tuple[str, ...]) -> tuple[float, int]:
    """Best (q, specificity) any of ``types`` gets; the most specific matching range wins."""
    ranges: list[tuple[str, float]] = []
    for item in accept.lower().split(","):
        rng, *params = (p.strip() for p in item.split(";"))
        q = next((p[2:] for p in params if p.startswith("q=")), "1")
        ranges.append((rng, float(q) if q.replace(".", "", 1).isdigit() else 0.0))
    scores = [(0.0, -1)]
    for t in types:
        specs = {t: 2, t.split("/")[0] + "/*": 1, "*/*": 0}
        if matches := [(specs[rng], q) for rng, q in ranges if rng in specs]:
            spec, q = max(matches)
            scores.append((q, spec))
    return max(scores)


def _wants_json(accept: str | None) -> bool:
    """True when Accept prefers PEP 691 JSON to HTML (``*/*`` alone means HTML)."""
    if not accept:
        return False
    json_score = _accept_score(accept, _JSON_TYPES)
    return json_score[0] > 0 and json_score > _accept_score(accept, _HTML_TYPES)


class _Unsatisfiable(Exception):
    """The Range header cannot be satisfied (answer 416)."""


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Parse one ``bytes=`` range into inclusive (first, last).

    Returns None when the header should be ignored (unknown unit, several
    ranges, bad syntax) and raises ``_Unsatisfiable`` when it can't be met.
    """
    unit, _, spec = header.partition("=")
    start_s, sep, end_s = spec.strip().partition("-")
    if (unit.strip().lower() != "bytes" or "," in spec or not sep or not (start_s or end_s)
            or not all(s.isdigit() for s in (start_s, end_s) if s)):
        return None
    if not start_s:  # suffix range: the last N bytes
        if int(end_s) == 0 or size == 0:
            raise _Unsatisfiable
        return max(size - int(end_s), 0), size - 1
    start, end = int(start_s), (int(end_s) if end_s else size - 1)
    if end_s and end < start:
        return None
    if start >= size:
        raise _Unsatisfiable
    return start, min(end, size - 1)


class IndexServer:
    """A threaded HTTP package index bound to 127.0.0.1 on an ephemeral port.

    The socket is bound in ``__init__`` so ``base_url`` (and file URLs) are
    known before ``start()``. A stopped server cannot be restarted.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._indexes: dict[str, _Index] = {}
        self._log: list[RequestRecord] = []
        self._fault: FaultHook | None = None
        self._httpd = LoopbackServer(self, _Handler, (ConnectionError, TimeoutError))
        host, port = self._httpd.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------
    def start(self) -> IndexServer:
        """Start serving in a daemon thread; returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                name=f"IndexServer{self.base_url}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> IndexServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- content ---------------------------------------------------------
    def add_index(self, name: str, *, formats: Iterable[str] = ("json", "html"),
                  metadata_files: bool = True, range_support: bool = True) -> None:
        """Create an empty index served under ``/{name}/``."""
        fmts = tuple(formats)
        if not fmts or not set(fmts) <= {"json", "html"}:
            raise ValueError(f"formats must be a non-empty subset of json/html, got {fmts}")
        with self._lock:
            if name in self._indexes:
                raise ValueError(f"index {name!r} already exists")
            self._indexes[name] = _Index(name, fmts, metadata_files, range_support)

    def add_wheel(self, index: str, name: str, version: str, *, tag: str = "py3-none-any",
                  requires_dist: Iterable[str] = (), requires_python: str | None = None,
                  provides_extra: Iterable[str] = (), yanked: str | bool | None = None,
                  upload_time: datetime | None = None) -> WheelInfo:
        """Generate a wheel with :func:`wheelgen.make_wheel` and publish it."""
        self._index(index)
        path = make_wheel(self.root / index / "files", name, version, tag=tag,
                          requires_dist=requires_dist, requires_python=requires_python,
                          provides_extra=provides_extra)
        return self._publish(index, path, name, requires_python, yanked, upload_time)

    def add_file(self, index: str, path: Path | str, *, project: str | None = None,
                 requires_python: str | None = None, yanked: str | bool | None = None,
                 upload_time: datetime | None = None) -> WheelInfo:
        """Copy an existing wheel or sdist into the index and publish it.

        The project name and version come from the filename (``project`` only
        overrides the display name). Wheels get a ``.metadata`` file; sdists don't.
        """
        self._index(index)
        src = Path(path)
        dest = self.root / index / "files" / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.resolve() != dest.resolve():
            shutil.copyfile(src, dest)
        return self._publish(index, dest, project, requires_python, yanked, upload_time)

    def _publish(self, index: str, path: Path, display: str | None,
                 requires_python: str | None, yanked: str | bool | None,
                 upload_time: datetime | None) -> WheelInfo:
        if path.name.endswith(".whl"):
            name, ver, _, _ = parse_wheel_filename(path.name)
            metadata: bytes | None = read_metadata(path)
        else:
            name, ver = parse_sdist_filename(path.name)
            metadata = None
        data = path.read_bytes()
        if upload_time is not None:  # naive datetimes are taken to be UTC
            upload_time = (upload_time.replace(tzinfo=timezone.utc) if upload_time.tzinfo is None
                           else upload_time.astimezone(timezone.utc))
        modified = upload_time.timestamp() if upload_time else float(int(time.time()))
        yank: str | bool = True if yanked == "" else (yanked or False)
        entry = _File(path.name, name, str(ver), data, metadata, requires_python,
                      yank, upload_time, modified)
        with self._lock:
            idx = self._index(index)
            idx.files[path.name] = entry
            idx.display_names.setdefault(name, display or name)
        return WheelInfo(path.name, path, self.file_url(index, path.name), _sha256(data),
                         len(data), _sha256(metadata) if metadata is not None else None)

    def _index(self, name: str) -> _Index:
        with self._lock:
            if name not in self._indexes:
                raise KeyError(f"no index {name!r}; call add_index() first")
            return self._indexes[name]

    # -- URLs ------------------------------------------------------------
    def index_url(self, index: str) -> str:
        """PEP 503 base URL, e.g. ``http://127.0.0.1:PORT/main/simple/``."""
        return f"{self.base_url}/{index}/simple/"

    def find_links_url(self, index: str) -> str:
        """URL of a flat HTML page linking every file of the index."""
        return f"{self.base_url}/{index}/links/"

    def file_url(self, index: str, filename: str) -> str:
        """Absolute URL of a file (``+`` and friends percent-encoded)."""
        return f"{self.base_url}/{index}/files/{quote(filename, safe='')}"

    # -- request log and faults -----------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        """Forget all logged requests."""
        with self._lock:
            self._log.clear()

    def set_fault(self, hook: FaultHook | None) -> None:
        """Install (or with None remove) a hook run before routing every request."""
        with self._lock:
            self._fault = hook

    # -- routing ---------------------------------------------------------
    def _route(self, req: Request) -> Response:
        with self._lock:
            fault = self._fault
        if fault is not None and (resp := fault(req)) is not None:
            return resp
        split = urlsplit(req.path)
        segs = [unquote(s) for s in split.path.split("/")[1:]]
        query = f"?{split.query}" if split.query else ""
        with self._lock:
            idx = self._indexes.get(segs[0]) if segs else None
            if idx is None or len(segs) < 2:
                return _not_found()
            rest = segs[1:]
            base = f"/{quote(idx.name)}"
            if rest in (["simple"], ["links"]):
                return _redirect(f"{base}/{rest[0]}/{query}")
            if rest == ["simple", ""]:
                return self._project_list(idx, req)
            if rest == ["links", ""]:
                return _html(req, "Links", self._anchors(idx, idx.files.values(), "../"))
            if rest[0] == "simple" and (len(rest) == 2 or (len(rest) == 3 and rest[2] == "")):
                canonical = canonicalize_name(rest[1])
                if len(rest) == 2 or rest[1] != canonical:  # like PyPI: 301 to the normal form
                    return _redirect(f"{base}/simple/{quote(canonical)}/{query}")
                return self._project_page(idx, canonical, req)
            if len(rest) == 2 and rest[0] == "files":
                return self._file(idx, rest[1], req)
        return _not_found()

    def _project_list(self, idx: _Index, req: Request) -> Response:
        names = sorted({f.project for f in idx.files.values()})
        if self._use_json(idx, req):
            return _json(req, {"projects": [{"name": idx.display_names[n]} for n in names]})
        links = "".join(f'    <a href="{quote(n)}/">{html.escape(idx.display_names[n])}</a><br/>\n'
                        for n in names)
        return _html(req, "Simple index", links)

    def _project_page(self, idx: _Index, project: str, req: Request) -> Response:
        files = idx.project_files(project)
        if not files:
            return _not_found()
        if self._use_json(idx, req):
            return _json(req, {
                "name": project,
                "versions": sorted({f.version for f in files}, key=Version),
                "files": [self._json_file(idx, f) for f in files],
            })
        return _html(req, f"Links for {project}", self._anchors(idx, files, "../../"))

    def _json_file(self, idx: _Index, f: _File) -> dict[str, object]:
        meta: dict[str, str] | bool = False
        if idx.metadata_files and f.metadata is not None:
            meta = {"sha256": _sha256(f.metadata)}
        entry: dict[str, object] = {
            "filename": f.filename,
            "url": self.file_url(idx.name, f.filename),
            "hashes": {"sha256": _sha256(f.data)},
            "requires-python": f.requires_python,
            "core-metadata": meta,
            "dist-info-metadata": meta,
            "yanked": f.yanked,
            "size": len(f.data),
        }
        if f.upload_time is not None:
            entry["upload-time"] = f.upload_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return entry

    def _anchors(self, idx: _Index, files: Iterable[_File], prefix: str) -> str:
        out = []
        for f in sorted(files, key=lambda f: f.filename):
            attrs = f'href="{prefix}files/{quote(f.filename, safe="")}#sha256={_sha256(f.data)}"'
            if f.requires_python is not None:
                attrs += f' data-requires-python="{html.escape(f.requires_python)}"'
            if idx.metadata_files and f.metadata is not None:
                digest = _sha256(f.metadata)
                attrs += f' data-dist-info-metadata="sha256={digest}"'
                attrs += f' data-core-metadata="sha256={digest}"'
            if f.yanked is not False:
                reason = "" if f.yanked is True else f.yanked
                attrs += f' data-yanked="{html.escape(reason)}"'
            out.append(f"    <a {attrs}>{html.escape(f.filename)}</a><br/>\n")
        return "".join(out)

    @staticmethod
    def _use_json(idx: _Index, req: Request) -> bool:
        if "json" not in idx.formats:
            return False
        return "html" not in idx.formats or _wants_json(req.headers.get("accept"))

    def _file(self, idx: _Index, filename: str, req: Request) -> Response:
        f = idx.files.get(filename)
        data: bytes | None = f.data if f else None
        if f is None and filename.endswith(".metadata") and idx.metadata_files:
            f = idx.files.get(filename.removesuffix(".metadata"))
            data = f.metadata if f else None
        if f is None or data is None:
            return _not_found()
        etag = f'"{_sha256(data)}"'
        last_modified = email.utils.formatdate(f.last_modified, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": last_modified,
                   "Content-Type": "application/octet-stream",
                   "Cache-Control": "max-age=365000000, immutable, public"}
        if idx.range_support:
            headers["Accept-Ranges"] = "bytes"
        if _etag_matches(req.headers.get("if-none-match"), etag):
            return Response(304, headers)
        range_header = req.headers.get("range")
        if_range = req.headers.get("if-range")
        if not idx.range_support or range_header is None or (
                if_range is not None and if_range not in (etag, last_modified)):
            return Response(200, headers, data)
        try:
            span = _parse_range(range_header, len(data))
        except _Unsatisfiable:
            headers["Content-Range"] = f"bytes */{len(data)}"
            return Response(416, headers)
        if span is None:
            return Response(200, headers, data)
        first, last = span
        headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
        return Response(206, headers, data[first:last + 1])



def _not_found() -> Response:
    return Response(404, {"Content-Type": "text/plain"}, b"404 Not Found\n")


def _redirect(location: str) -> Response:
    return Response(301, {"Location": location, "Content-Type": "text/plain"}, b"Moved\n")


def _html(req: Request, title: str, body: str) -> Response:
    text = ("<!DOCTYPE html>\n<html>\n  <head>\n"
            '    <meta name="pypi:repository-version" content="1.1">\n'
            f"    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n"
            f"    <h1>{html.escape(title)}</h1>\n{body}  </body>\n</html>\n")
    return _cached_page(req, text.encode("utf-8"), HTML_TYPE)


def _json(req: Request, payload: dict[str, object]) -> Response:
    payload = {"meta": {"api-version": "1.1"}, **payload}
    return _cached_page(req, json.dumps(payload, indent=1).encode("utf-8"), JSON_TYPE)


def _cached_page(req: Request, body: bytes, content_type: str) -> Response:
    """An index page with an ETag (honouring If-None-Match) and ``max-age=0``."""
    etag = f'"{_sha256(body)}"'
    headers = {"Content-Type": content_type, "ETag": etag,
               "Cache-Control": "max-age=0", "Vary": "Accept"}
    if _etag_matches(req.headers.get("if-none-match"), etag):
        return Response(304, headers)
    return Response(200, headers, body)


class _Handler(LoopbackHandler):
    server_version = "wheelhouse-test-index/1.0"

    def _handle(self) -> None:
        owner = self.server.owner
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(self.command, self.path, headers)
        try:
            resp = owner._route(req)
        except Exception as exc:  # surface server bugs as 500s, not hangs
            resp = Response(500, {"Content-Type": "text/plain"}, f"{exc!r}\n".encode())
        no_body = self.command == "HEAD" or resp.status == 304
        body = b"" if no_body else resp.body
        out = dict(resp.headers)
        if resp.status != 304:
            out.setdefault("Content-Length", str(len(resp.body)))
        # Log before writing, so a client that has read the response sees the record.
        rec = RequestRecord(self.command, self.path, headers, resp.status,
                            headers.get("range"), len(body), out)
        with owner._lock:
            owner._log.append(rec)
        try:
            self.send_response(resp.status)
            for key, value in out.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            rec.bytes_sent = 0
            self.close_connection = True
