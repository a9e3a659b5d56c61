"""The content-addressed store: verified files by sha256, shared by every lock.

Layout under the cache directory (the planner's pages and metadata live beside it)::

    blobs/sha256/<aa>/<sha256>     a verified file; only ever published with ``os.replace``
    partial/<sha256>.part          bytes of an unfinished download
    partial/<sha256>.json          its state: redacted URL, expected size and sha256, ETag, Last-Modified
    locks/<sha256>.lock            an advisory lock held while one process works on that file
    derived/<aa>/<key>             the sha256 of a blob made from other blobs (bytecode compiled from
                                   a wheel): ``key`` is a sha256 over everything the result depends on

A blob is re-hashed every time it is used, so a file damaged on disk (or edited by hand) is found
before it reaches a bundle; the damaged copy is removed and fetched again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from bundler.fsutil import atomic_write, read_regular, remove_odd, sha256_file

_SHA256 = re.compile(r"[0-9a-f]{64}")

try:  # POSIX; on Windows the store still works for one process at a time
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


def default_cache_dir() -> Path:
    """``$WHEELHOUSE_CACHE_DIR``, else the platform's user cache directory + ``/wheelhouse``."""
    env = os.environ.get("WHEELHOUSE_CACHE_DIR")
    if env:
        return Path(env)
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "wheelhouse" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "wheelhouse"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wheelhouse"


@dataclass(slots=True, kw_only=True)
class PartialState:
    """What is known about the bytes in a ``.part`` file; enough to resume safely with If-Range."""

    url: str  # redacted: never credentials
    sha256: str
    size: int | None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def validator(self) -> str | None:
        """The If-Range value: a strong ETag, else Last-Modified (weak ETags may not be used)."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


class BlobStore:
    """Verified files under ``root/blobs`` and the state of unfinished downloads."""

    def __init__(self, root: Path) -> None:
        # absolute: its paths become file: URLs and reach builds that run in other directories
        self.root = Path(root).absolute()

    def path(self, sha256: str) -> Path:
        """Where the blob with this sha256 lives (whether or not it exists)."""
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / "blobs" / "sha256" / sha256[:2] / sha256

    def verified(self, sha256: str, size: int | None) -> Path | None:
        """The blob's path if it exists and its bytes hash right; a damaged blob is deleted."""
        path = self.path(sha256)
        try:
            if remove_odd(path):  # a link, a directory or a device where a blob should be: not ours
                return None
            st = path.stat()
        except OSError:
            return None
        if size is None or st.st_size == size:
            digest, _ = sha256_file(path)
            if digest == sha256:
                return path
        path.unlink(missing_ok=True)
        return None

    def put_bytes(self, sha256: str, data: bytes) -> Path:
        """Publish bytes already in memory (a whole wheel the planner read); they are hashed here,
        so nothing unverified is ever stored under a digest it does not have."""
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise ValueError(f"bytes hash to {actual}, not {sha256}")
        final = self.path(sha256)
        if self.verified(sha256, len(data)) is None:
            with self.locked(sha256):
                self._make_parent(final)
                remove_odd(final)
                atomic_write(final, data)
        return final

    def derived(self, key: str) -> Path | None:
        """The blob recorded under ``key`` by ``put_derived`` (verified), or None when there is none."""
        index = self.root / "derived" / key[:2] / key
        self.path(key)  # validates the key's shape
        try:
            sha256 = read_regular(index, 128).decode("ascii").strip()
            size = None
            if " " in sha256:
                sha256, size_text = sha256.split(" ", 1)
                size = int(size_text)
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if not _SHA256.fullmatch(sha256):
            return None
        return self.verified(sha256, size)

    def put_derived(self, key: str, data: bytes) -> Path:
        """Store ``data`` as a blob and record it under ``key`` (a sha256 over its inputs)."""
        sha256 = hashlib.sha256(data).hexdigest()
        final = self.put_bytes(sha256, data)
        index = self.root / "derived" / key[:2] / key
        self.path(key)
        self._make_parent(index)
        remove_odd(index)
        atomic_write(index, f"{sha256} {len(data)}\n".encode())
        return final

    def publish(self, source: Path, sha256: str) -> Path:
        """Move an already verified file into place atomically."""
        final = self.path(sha256)
        self._make_parent(final)
        remove_odd(final)
        os.replace(source, final)
        return final

    def _make_parent(self, path: Path) -> None:
        """Create the folders down to ``path``, replacing whatever non-folder is in the way (a damaged
        or tampered cache), so nothing is ever written through a planted link."""
        self.root.mkdir(parents=True, exist_ok=True)
        folder = self.root
        for part in path.relative_to(self.root).parts[:-1]:
            folder = folder / part
            if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
                folder.unlink()
            folder.mkdir(exist_ok=True)

    # -- unfinished downloads ----------------------------------------------------------------
    def partial_paths(self, sha256: str) -> tuple[Path, Path]:
        """The ``.part`` file and its state record for a download of this sha256."""
        base = self.root / "partial" / sha256
        self.path(sha256)  # validates the digest
        return base.with_suffix(".part"), base.with_suffix(".json")

    def read_state(self, sha256: str) -> PartialState | None:
        """The state record of an unfinished download, or None when missing or unreadable."""
        _, state_path = self.partial_paths(sha256)
        try:
            data = json.loads(read_regular(state_path, 1 << 16))
            state = PartialState(**{k: data.get(k) for k in ("url", "sha256", "size", "etag", "last_modified")})
        except (OSError, ValueError, TypeError, AttributeError, RecursionError):
            return None
        ok = (state.sha256 == sha256 and isinstance(state.url, str) and (state.size is None or isinstance(state.size, int))
              and all(v is None or isinstance(v, str) for v in (state.etag, state.last_modified)))
        return state if ok else None

    def write_state(self, state: PartialState) -> None:
        """Record the state of an unfinished download (atomically)."""
        _, state_path = self.partial_paths(state.sha256)
        self._make_parent(state_path)
        atomic_write(state_path, json.dumps(asdict(state)).encode())

    def discard_partial(self, sha256: str) -> None:
        """Forget an unfinished download: its bytes and its state."""
        for p in self.partial_paths(sha256):
            remove_odd(p)
            p.unlink(missing_ok=True)

    @contextlib.contextmanager
    def locked(self, sha256: str) -> Iterator[None]:
        """Hold the advisory lock for one file, so two processes never write the same ``.part``."""
        self.path(sha256)
        lock_path = self.root / "locks" / f"{sha256}.lock"
        self._make_parent(lock_path)
        remove_odd(lock_path)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock
