"""An in-memory ``bundler.index.ProjectIndex``: project -> links per index, link -> METADATA bytes.

In the spirit of pypa/installer's ``FakeWheelSource``: the planner and its failure messages run
against this without sockets or threads, which proves they use only the protocol. Wheels have no
bytes, only a filename, a made-up sha256 and their core metadata.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Sequence
from urllib.parse import quote, urljoin

from packaging.utils import canonicalize_name

from bundler.errors import BadInput
from bundler.index import IndexConfig, Link, supplying_indexes
from .wheelgen import wheel_filename


class FakeIndex:
    """Serves the wheels given to ``add_wheel``; ``metadata_reads`` records which files were asked for."""

    def __init__(self, indexes: Sequence[IndexConfig]) -> None:
        self.indexes = list(indexes)
        self._pages: dict[tuple[str, str], list[Link]] = {}
        self._metadata: dict[str, bytes] = {}
        self.metadata_reads: list[str] = []

    def add_wheel(self, index: str, name: str, version: str, *, tag: str = "py3-none-any", requires_dist: Iterable[str] = (),
                  requires_python: str | None = None, page_requires_python: str | None = None,
                  provides_extra: Iterable[str] = (), yanked: str | bool | None = None) -> Link:
        """Publish a wheel on ``index``; ``requires_python`` goes into METADATA, ``page_requires_python``
        onto the page only (default: the same as METADATA). ``yanked=True`` yanks without a reason."""
        config = next(i for i in self.indexes if i.name == index)
        lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        lines += [f"Requires-Python: {requires_python}"] if requires_python else []
        lines += [f"Provides-Extra: {e}" for e in provides_extra] + [f"Requires-Dist: {r}" for r in requires_dist]
        metadata = ("\n".join(lines) + "\n").encode()
        filename = wheel_filename(name, version, tag)
        link = Link(filename=filename, url=urljoin(config.url, f"../files/{quote(filename)}"), index=index,
                    index_url=config.url, sha256=hashlib.sha256(filename.encode() + metadata).hexdigest(),
                    requires_python=page_requires_python or requires_python,
                    yanked="" if yanked is True else yanked or None)
        self._pages.setdefault((index, canonicalize_name(name)), []).append(link)
        self._metadata[link.url] = metadata
        return link

    # -- the ProjectIndex protocol -----------------------------------------------------------

    def project_links(self, project: str) -> tuple[IndexConfig, list[Link]] | None:
        for index in supplying_indexes(self.indexes, project):
            links = self._pages.get((index.name, canonicalize_name(project)))
            if links:
                return index, list(links)
        return None

    def all_links(self, project: str) -> list[tuple[IndexConfig, list[Link]]]:
        return [(i, list(self._pages.get((i.name, canonicalize_name(project)), []))) for i in self.indexes]

    def metadata(self, link: Link) -> bytes:
        self.metadata_reads.append(link.filename)
        return self._metadata[link.url]

    def direct_link(self, url: str) -> Link:
        raise BadInput(f"the fake index serves no direct references ({url})")

    def hashed(self, link: Link) -> Link:
        return link  # every file here has a sha256

    def prefetch_projects(self, projects: Sequence[str]) -> None:
        pass  # everything is already here

    def prefetch_metadata(self, links: Sequence[Link]) -> None:
        pass

    def listen(self, on_page: Callable[[str, IndexConfig, list[Link]], None], on_metadata: Callable[[Link, bytes], None]) -> None:
        pass  # nothing arrives later, so there is nothing to speculate on
