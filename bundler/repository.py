"""The concrete ``ProjectIndex``: index pages and core metadata over HTTP (or from local folders).

Which indexes may supply a project is ``index.supplying_indexes`` (DESIGN.md's index semantics);
the first of them that has the project supplies it. Pages are cached with HTTP revalidation (404s
too, so a higher-priority index is not asked again within the TTL); metadata comes from the cache,
a local file, or ``remote_metadata``. Requests run on a thread pool so that the resolver's next
needs are already in flight (``prefetch_*``); what only computes (parsing and ranking a page, the
speculation's listeners) runs after, on the pool's one lane, or on the resolver's thread as soon as
it waits for it (``workers.DaemonPool.submit_staged``). Only real work goes to the pool: a page
that is fresh in the cache, and metadata that is cached, are served on the calling thread, because a
hand-off to a worker and the wait for it cost more than reading them (a warm lock then runs on one
thread).
Offline, every cached page is reused whatever its age and nothing is ever requested: a miss is an
``IndexUnavailable`` that names what the cache lacks.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from dataclasses import replace
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, NamedTuple, Sequence, TypeVar

from packaging.utils import canonicalize_name

from bundler.errors import BadInput, HashMismatch, IndexUnavailable
from bundler.findlinks import MAX_FILE, Download, UnhashedFiles, download, whole_wheel_metadata
from bundler.fsutil import read_regular
from bundler.httpcache import MAX_PAGE, CachedPage, PlannerCache, max_age_of, offline_miss
from bundler.index import (ACCEPT, IndexConfig, Link, filename_from_url, metadata_key, parse_html_page,
                           project_of_filename, project_url, redact_url, split_hash, supplying_indexes)
from bundler.localfiles import folder_links, hash_regular, local_path, open_regular
from bundler.pagecheck import check_page, project_page
from bundler.pageworker import PageWorker
from bundler.remote_metadata import remote_metadata
from bundler.sender import Sender
from bundler.wheelmeta import BadMetadata, metadata_from_zip
from bundler.workers import DaemonPool

if TYPE_CHECKING:  # httpx (and bundler.http) are imported when a request needs them: a warm lock sends none
    import httpx

    from bundler.http1 import LeanGet, LeanResponse

NOT_FOUND = "x-wheelhouse/not-found"  # content type of a cached 404
_T = TypeVar("_T")


class _Body(NamedTuple):
    """A page's bytes as read (``url`` is empty for a local folder's page, read from ``final_url``)."""

    index: IndexConfig
    project: str
    url: str
    body: bytes
    ctype: str
    final_url: str
    digest: str | None


class Repository:
    """Serves project pages and metadata from the configured indexes, with caching and prefetch."""

    def __init__(
        self,
        indexes: Sequence[IndexConfig],
        client: httpx.Client | Callable[[], httpx.Client],
        cache: PlannerCache,
        *,
        jobs: int = 16,
        page_ttl: float = 600.0,
        offline: bool = False,
        max_file: int = MAX_FILE,
        lean: Callable[[], LeanGet | None] | None = None,
    ) -> None:
        if not indexes:
            raise BadInput("no index to resolve from")
        self.indexes = list(indexes)
        self.cache = cache
        # Pages younger than this are reused without asking: PyPI itself sends max-age=600, but
        # some mirrors send no Cache-Control at all. 0 (``--refresh``) revalidates every page.
        self.page_ttl = page_ttl
        self.offline = offline  # no request at all (not even speculative), whatever the cache's age
        self._pool = DaemonPool(jobs, "wheelhouse-index")  # exit waits for no speculation (see bundler.workers)
        self._lock = threading.Lock()
        self._pages: dict[tuple[str, str], Future[Sequence[Link] | None]] = {}
        self._flat: dict[str, Future[dict[str, list[Link]]]] = {}
        self._meta: dict[str, Future[bytes]] = {}
        self._page_listeners: list[Callable[[str, IndexConfig, Sequence[Link]], None]] = []
        self._meta_listeners: list[Callable[[Link, bytes], None]] = []
        self._closed = threading.Event()
        self._sender = Sender(client, lean, closed=self._closed, offline=offline)
        self._local = threading.local()  # per thread: listener calls waiting to run (see _deliver)
        self.max_file = max_file  # the largest file read whole to be hashed (a find-links page without hashes)
        self._unhashed = UnhashedFiles(cache.root, self._download, ttl=self.page_ttl, offline=offline)
        self._helper = PageWorker()  # parses big JSON pages read ahead, in a second process (started when needed)

    def listen(self, on_page: Callable[[str, IndexConfig, Sequence[Link]], None], on_metadata: Callable[[Link, bytes], None]) -> None:
        """Call ``on_page``/``on_metadata`` (from any thread) as pages and metadata arrive, for speculation.
        Pages asked for before (the first ones are asked for while the planner's modules load) are
        handed to ``on_page`` too, as they arrive or at once; one may reach it twice."""
        with self._lock:
            self._page_listeners.append(on_page)
            self._meta_listeners.append(on_metadata)
            earlier = list(self._pages.items())
        if self.requests:
            self._helper.start()  # pages are read ahead, and some come from the network (see _get_page)
        indexes = {i.name: i for i in self.indexes}
        for (index_name, project), fut in earlier:
            fut.add_done_callback(lambda f, p=project, i=indexes[index_name]: self._replay(on_page, p, i, f))

    def _replay(self, on_page: Callable[[str, IndexConfig, Sequence[Link]], None], project: str, index: IndexConfig,
                fut: Future[Sequence[Link] | None]) -> None:
        links = None if fut.cancelled() or fut.exception() is not None else fut.result()
        if links is not None:  # None: no such page
            self._deliver([on_page], project, index, links)

    def _deliver(self, listeners: Sequence[Callable[..., None]], *args: object) -> None:
        """Call ``listeners(*args)``. A listener that asks for more (a page's listener prefetches
        metadata, whose listener prefetches pages) may be served at once on this thread; those
        calls are queued and run by the outermost ``_deliver``, so the walk over a warm dependency
        graph is a loop, not a recursion as deep as the graph."""
        queue = getattr(self._local, "queue", None)
        if queue is not None:
            queue.append((listeners, args))
            return
        queue = self._local.queue = deque([(listeners, args)])
        try:
            while queue:
                todo, todo_args = queue.popleft()
                for listener in todo:
                    try:
                        listener(*todo_args)
                    except Exception:  # speculation must never break the real work
                        pass
        finally:
            self._local.queue = None

    def close(self) -> None:
        """Stop: queued work is dropped, speculative work in flight sends no further requests (and
        the exit does not wait for it), and the clients this repository made are closed."""
        self._closed.set()
        self._helper.close()
        self._pool.shutdown()
        self._sender.close()

    @property
    def requests(self) -> int:
        """HTTP requests sent, for the summary line."""
        return self._sender.count

    def _send(self, url: str, headers: Mapping[str, str], what: str = "", hint: str | None = None,
              limit: int | None = None) -> httpx.Response | LeanResponse:
        return self._sender.get(url, headers, what, hint, limit)

    def _download(self, url: str, headers: Mapping[str, str], folder: Path, what: str) -> Download:
        """GET ``url`` whole into a file in ``folder``, hashed as it streams (``findlinks.download``)."""
        return self._sender.guarded(url, f"{what}: ", None, lambda: download(self._sender.http(), url, headers, folder,
                                                                            what=what, limit=self.max_file))

    def hashed(self, link: Link) -> Link:
        """``link`` with its sha256: as its page gave it, or for a find-links page that gives none,
        from the whole file read once (``bundler.findlinks``). Simple-API indexes must give one."""
        if link.sha256 is None and not link.flat:
            raise IndexUnavailable(f"index {link.index} gives no sha256 for {link.filename}")
        return link if link.sha256 is not None else self._unhashed.hashed(link)

    def notes(self) -> list[str]:
        """Which find-links pages gave no hashes, and how many of their files were hashed here."""
        return self._unhashed.notes()

    # -- index semantics ---------------------------------------------------------------------

    def project_links(self, project: str) -> tuple[IndexConfig, Sequence[Link]] | None:
        """Links of ``project`` from the first index (in priority order) that has it."""
        sources = supplying_indexes(self.indexes, project)
        futures = [(i, self._page_future(i, project)) for i in sources]
        for index, fut in futures:
            links = self._wait(fut)
            if links is not None:  # only "not found" means absent: an index with the page owns the name
                return index, links
        return None

    def all_links(self, project: str) -> list[tuple[IndexConfig, Sequence[Link]]]:
        """Links of ``project`` on every configured index (for ``explain``)."""
        futures = [(i, self._page_future(i, project)) for i in self.indexes]
        return [(i, self._wait(f) or []) for i, f in futures]

    def prefetch_projects(self, projects: Sequence[str]) -> None:
        for project in projects:
            for index in supplying_indexes(self.indexes, project):
                self._page_future(index, project)

    # -- pages -------------------------------------------------------------------------------

    def _page_future(self, index: IndexConfig, project: str) -> Future[Sequence[Link] | None]:
        key = (index.name, canonicalize_name(project))
        with self._lock:
            fut = self._pages.get(key)
        if fut is not None:
            return fut
        cached = None
        if index.kind != "find-links" and local_path(index.url) is None:
            cached = self.cache.get_page(project_url(index.url, key[1]))
        with self._lock:
            fut = self._pages.get(key)
            if fut is not None:
                return fut
            if not self._reusable(cached):
                if index.kind == "find-links":
                    fut = self._pool.submit(self._flat_links, index, key[1])
                else:
                    fut = self._pool.submit_staged(self._page_body, self._page_links, index, key[1], cached)
                self._pages[key] = fut
                return fut
            fut = self._pages[key] = Future()
        try:  # fresh in the cache: no request, so parse it here
            fut.set_result(self._fetch_page(index, key[1], cached))
        except BaseException as e:  # raised to whoever asks for the result, as from the pool
            fut.set_exception(e)
        return fut

    def _reusable(self, cached: CachedPage | None) -> bool:
        """True when ``cached`` may be used without asking the server again."""
        return cached is not None and (self.offline or cached.fresh or time.time() - cached.stored < self.page_ttl)

    def _flat_links(self, index: IndexConfig, project: str) -> list[Link] | None:
        # The first caller loads the flat listing itself; waiting on another pool task could
        # deadlock a full pool.
        owner = False
        with self._lock:
            fut = self._flat.get(index.name)
            if fut is None:
                fut = self._flat[index.name] = Future()
                owner = True
        if owner:
            try:
                fut.set_result(self._load_flat(index))
            except BaseException as e:
                fut.set_exception(e)
        links = fut.result().get(project) or None
        if links:
            self._deliver(self._page_listeners, project, index, links)
        return links

    def _load_flat(self, index: IndexConfig) -> dict[str, list[Link]]:
        local = local_path(index.url)
        if local is not None:
            links = folder_links(index, local)
        else:
            body, ctype, url, _ = self._get_page(index, index.url, self.cache.get_page(index.url))
            if body is None:
                raise IndexUnavailable(f"find-links page {redact_url(index.url)} was not found (404)")
            links = [replace(link, flat=True) for link in parse_html_page(body, url, index)]
            check_page(index, body, ctype, index.url, url, links)
        grouped: dict[str, list[Link]] = {}
        for link in links:
            grouped.setdefault(project_of_filename(link.filename), []).append(link)
        return grouped

    def _fetch_page(self, index: IndexConfig, project: str, cached: CachedPage | None) -> Sequence[Link] | None:
        return self._page_links(self._page_body(index, project, cached))

    def _page_body(self, index: IndexConfig, project: str, cached: CachedPage | None) -> _Body | None:
        """The I/O half of a page (on a worker): its bytes, read or requested (and cached), or None on 404."""
        local = local_path(index.url)
        if local is not None:
            path = local / project / "index.html"
            if not path.exists():
                return None
            try:
                body = read_regular(path, MAX_PAGE)
            except OSError as e:
                raise IndexUnavailable(f"index {index.name}: cannot read {path}: {e.strerror or e}") from None
            return _Body(index, project, "", body, "", path.resolve().as_uri(), None)
        url = project_url(index.url, project)
        if cached is None and self.offline:
            raise offline_miss(f"the page of {project} on index {index.name} ({redact_url(url)})")
        body, ctype, final_url, digest = self._get_page(index, url, cached)
        return None if body is None else _Body(index, project, url, body, ctype, final_url, digest)

    def _page_links(self, got: _Body | None) -> Sequence[Link] | None:
        """The computing half of a page (on the pool's lane, or on the thread that waits for it):
        its links, checked, and handed to the listeners."""
        if got is None:
            return None
        index, project, url, body, ctype, final_url, digest = got
        if not url:  # a local folder's page
            return parse_html_page(body, final_url, index)
        # A page the resolver waits for is parsed here, at once; one read ahead of it, by the helper
        # process when it is free, leaving this process's interpreter lock to the rest.
        links = project_page(index, body, ctype, url, final_url, digest, self._helper if self._pool.on_lane() else None)
        self._deliver(self._page_listeners, project, index, links)
        return links

    def _get_page(self, index: IndexConfig, url: str, cached: CachedPage | None) -> tuple[bytes | None, str, str, str | None]:
        """The page at ``url`` (``cached`` is what the cache holds for it), revalidated unless it is
        still reusable: (body, content type, URL its links resolve against, body sha256), or
        (None, '', url, None) on 404."""
        if cached is not None and self._reusable(cached):
            if cached.content_type == NOT_FOUND:
                return None, "", url, None
            return cached.body, cached.content_type, cached.base(url), cached.body_sha256
        if self._page_listeners:  # a planner reads pages ahead, and this one comes from the network: the
            self._helper.start()  # helper parses such pages (a warm lock, or ``explain``, never starts it)
        headers = {"Accept": ACCEPT, "Accept-Encoding": "gzip"}
        if cached is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        r = self._send(url, headers, f"index {index.name}: ", hint="check the index URL and your network or proxy settings")
        if r.status_code == 304 and cached is not None:
            self.cache.put_page(replace(cached, stored=time.time(), max_age=max_age_of(r.headers.get("Cache-Control"))),
                                body_unchanged=True)
            return cached.body, cached.content_type, cached.base(url), cached.body_sha256
        if r.status_code == 404 or r.status_code == 410:
            # Remembered like a page, so higher-priority indexes are not asked again within the TTL.
            self.cache.put_page(CachedPage(url=url, body=b"", content_type=NOT_FOUND, etag=None, last_modified=None,
                                           stored=time.time(), max_age=0))
            return None, "", url, None
        if r.status_code in (401, 403):
            raise IndexUnavailable(f"index {index.name} refused access to {redact_url(url)} (HTTP {r.status_code})",
                              hint="give credentials in the index URL (https://user:token@host/...) or in ~/.netrc")
        if r.status_code != 200:
            raise IndexUnavailable(f"index {index.name} answered HTTP {r.status_code} for {redact_url(url)}")
        ctype = r.headers.get("Content-Type", "")
        final = str(r.url)
        digest = hashlib.sha256(r.content).hexdigest()
        self.cache.put_page(CachedPage(url=url, body=r.content, content_type=ctype, etag=r.headers.get("ETag"),
                                       last_modified=r.headers.get("Last-Modified"), stored=time.time(),
                                       max_age=max_age_of(r.headers.get("Cache-Control")), final_url=final, body_sha256=digest))
        return r.content, ctype, final, digest

    # -- direct references -------------------------------------------------------------------

    def direct_link(self, url: str) -> Link:
        """A ``Link`` for a ``name @ URL`` wheel. Without a ``#sha256=`` the file is read once and
        hashed; its metadata, read from those bytes, is remembered so nothing is fetched twice."""
        base, sha = split_hash(url)
        filename = filename_from_url(base)
        local = local_path(base)
        if local is not None:
            if not local.exists():
                raise BadInput(f"direct reference {base}: no such file")
            try:
                actual, size = hash_regular(local)
            except OSError as e:
                raise BadInput(f"direct reference {base}: {e.strerror or e}") from None
            if sha and sha != actual:
                raise HashMismatch(f"{filename} ({base})", sha, actual)
            return Link(filename=filename, url=local.resolve().as_uri(), index="direct", index_url="", sha256=actual,
                        size=size, flat=True)
        # without a sha256: read once, like a file of a find-links page that gives none (``bundler.findlinks``)
        return self.hashed(Link(filename=filename, url=base, index="direct", index_url="", sha256=sha, flat=True))

    # -- metadata ----------------------------------------------------------------------------

    def prefetch_metadata(self, links: Sequence[Link]) -> None:
        for link in links:  # an sdist's metadata comes from the planner's builder; a file with no
            if link.is_wheel and link.sha256 is not None:  # hash is read whole, so only when needed
                self._meta_future(link)

    def metadata(self, link: Link) -> bytes:
        return self._wait(self._meta_future(link))

    def _wait(self, fut: Future[_T]) -> _T:
        """The result of ``fut``; what of its work has not started runs here (``DaemonPool.wait``)."""
        return self._pool.wait(fut)

    def _meta_future(self, link: Link) -> Future[bytes]:
        key = link.url
        with self._lock:
            fut = self._meta.get(key)
        if fut is not None:
            return fut
        cached = self.cache.get_metadata(metadata_key(link))
        with self._lock:
            fut = self._meta.get(key)
            if fut is not None:
                return fut
            if cached is None:
                fut = self._meta[key] = self._pool.submit_staged(self._load_metadata, self._metadata_loaded, link)
                return fut
            fut = self._meta[key] = Future()
        fut.set_result(cached)  # cached for good (keyed by the file's hash): nothing to wait for
        self._deliver(self._meta_listeners, link, cached)
        return fut

    def _load_metadata(self, link: Link) -> tuple[Link, bytes]:
        """The I/O half of a metadata read (on a worker): the bytes, read or requested, and cached."""
        local = local_path(link.url)
        if local is not None and link.index != "direct" and local_path(link.index_url) is None:
            # Local paths come only from a folder or URL the user gave; the parsers already refuse
            # them on remote pages, and this keeps it so whatever builds a Link.
            raise IndexUnavailable(f"index {link.index} ({redact_url(link.index_url)}) links to the local file "
                                   f"{redact_url(link.url)}; a remote index may link only http(s) files")
        link = self.hashed(link)  # a find-links page without hashes: the file is read whole once, here
        known = self._unhashed.metadata(link) or self.cache.get_metadata(metadata_key(link))
        try:
            if known is not None:
                data = known
            elif local is not None:
                with open_regular(local) as f:
                    data = metadata_from_zip(f, project_of_filename(link.filename))
            elif self.offline:  # a wheel kept whole by a fetch (or by a metadata read) may serve
                data = self.cache.kept_wheel_metadata(link)
                if data is None:
                    raise offline_miss(f"the metadata of {link.filename} from index {link.index} "
                                       f"({redact_url(link.index_url)})")
            else:
                what = f"index {link.index}: "
                data = remote_metadata(link, lambda url, headers, limit: self._send(url, headers, what, limit=limit), lambda: whole_wheel_metadata(
                    link, lambda folder: self._download(link.url, {}, folder, what + link.filename), self.cache.root))
        except BadMetadata as e:
            raise IndexUnavailable(f"cannot read the metadata of {link.filename} from index {link.index}: {e}") from None
        except OSError as e:
            raise IndexUnavailable(f"cannot read {link.filename}: {e}") from None
        self.cache.put_metadata(metadata_key(link), data)
        return link, data

    def _metadata_loaded(self, loaded: tuple[Link, bytes]) -> bytes:
        """The computing half of a metadata read: the listeners (on the lane, or on the waiting thread)."""
        self._deliver(self._meta_listeners, *loaded)
        return loaded[1]
