"""Local files an index location given by the user names: find-links folders, ``file:`` pages, wheels.

Only regular files are read. Each is opened without blocking and checked on its descriptor, so a
FIFO or a device named like a wheel is refused instead of hanging the lock or streaming forever,
and a link in a find-links folder is followed only to a regular file inside that folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bundler.errors import BadInput, IndexUnavailable
from bundler.fsutil import open_regular
from bundler.fsutil import sha256_file as hash_regular
from bundler.index import IndexConfig, Link

__all__ = ["flat_files", "folder_links", "hash_regular", "local_path", "open_regular"]


def local_path(url: str) -> Path | None:
    """The path a ``file:`` URL or a plain path names; None for any other URL."""
    if url.startswith("file:"):
        from urllib.request import url2pathname  # (imports http.client and more: only for a file: URL)

        return Path(url2pathname(unquote(urlsplit(url).path)))
    if "://" not in url:
        return Path(url)
    return None


def flat_files(folder: Path) -> list[Path]:
    """The distribution files of a find-links folder: regular files, and links to regular files
    inside the folder. A link leading out of it (to a private file, a FIFO, a device) is skipped."""
    root = folder.resolve()
    out = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.name.endswith((".whl", ".tar.gz", ".zip")):
            continue
        path = Path(entry.path)
        if entry.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(root) or not target.is_file():
                continue
        elif not entry.is_file(follow_symlinks=False):
            continue
        out.append(path)
    return out


def folder_links(index: IndexConfig, folder: Path) -> list[Link]:
    """The files of the find-links folder ``folder`` that ``index`` names, each hashed as it is read."""
    if not folder.is_dir():
        raise BadInput(f"find-links location {folder} is not a directory")
    links = []
    for entry in flat_files(folder):
        try:
            sha, size = hash_regular(entry)
        except OSError as e:
            raise IndexUnavailable(f"find-links {index.name}: cannot read {entry}: {e.strerror or e}") from None
        links.append(Link(filename=entry.name, url=entry.resolve().as_uri(), index=index.name, index_url=index.url,
                          sha256=sha, size=size, flat=True))
    return links
