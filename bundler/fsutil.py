"""Files on the builder: atomic publication, the umask's file mode and streamed sha256.

Every file wheelhouse leaves behind (locks, cache entries, bundles, ``--dest`` copies) is written
under a temporary name in the destination folder and published with ``os.replace``: readers see
the old file or the whole new one, and a symlink at the final path is replaced, never written
through.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import re
import shutil
import stat
from pathlib import Path
from typing import BinaryIO, Sequence

CHUNK = 1 << 20
_names = random.Random()  # temporary names: O_EXCL makes them safe, not their randomness


def default_file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask (mkstemp's is 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (after links). Opened without blocking and
    checked on the descriptor, so a FIFO or a device never hangs or streams forever; ``OSError``
    (``EINVAL``) otherwise."""
    return _regular(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0), "rb")


def _regular(path: Path, flags: int, mode: str) -> BinaryIO:
    """``path`` opened with ``flags``, checked on the descriptor to be a regular file."""
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    f = os.fdopen(fd, mode)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return f  # type: ignore[return-value]


def sha256_file(path: Path, *, limit: int | None = None) -> tuple[str, int]:
    """sha256 hex digest and size of the regular file ``path`` (of its first ``limit`` bytes when
    given), streamed."""
    h = hashlib.sha256()
    n = 0
    with open_regular(path) as f:
        while limit is None or n < limit:
            chunk = f.read(CHUNK if limit is None else min(CHUNK, limit - n))
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def temp_prefix(final: Path) -> str:
    """A prefix for temporary files beside ``final``: recognisable, but short enough that the
    temporary name stays under the 255-byte limit whatever the final name's length."""
    return f".{final.name[:60]}."


def _write_temp(final: Path, data: bytes, *, make_parent: bool = True) -> Path:
    """``data`` in a new temporary file beside ``final`` (its mode the umask's, as ``open()`` gives).

    Made with plain descriptor calls: in a process whose threads compete for the interpreter lock,
    each system call is a hand-off of that lock, and a cold lock writes hundreds of cache entries
    (``os.fdopen`` alone adds an ``fstat`` and an ``isatty``; ``mkstemp`` a ``fchmod`` after it)."""
    if make_parent:
        final.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = final.parent / f"{temp_prefix(final)}{_names.getrandbits(48):012x}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)  # O_EXCL: never an existing file, nor through a link
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "no unused temporary name", str(final.parent))
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def atomic_write(path: Path, data: bytes, *, make_parent: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one (``make_parent``
    False: the caller knows ``path``'s folder exists, and a missing one is ``FileNotFoundError``)."""
    tmp = _write_temp(path, data, make_parent=make_parent)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_all(files: Sequence[tuple[Path, bytes]]) -> None:
    """Write several files as one step: each is written in full under a temporary name, then all
    are renamed; if any step fails, the files already renamed get their previous content back."""
    temps: list[tuple[Path, Path]] = []
    published: list[tuple[Path, bytes | None]] = []
    try:
        for final, data in files:
            temps.append((_write_temp(final, data), final))
        for tmp, final in temps:
            previous = final.read_bytes() if final.is_file() and not final.is_symlink() else None
            os.replace(tmp, final)
            published.append((final, previous))
    except BaseException:
        for final, previous in reversed(published):
            try:
                if previous is None:
                    final.unlink()
                else:
                    atomic_write(final, previous)
            except OSError:
                pass
        raise
    finally:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)


def read_regular(path: Path, limit: int, *, follow: bool = True) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    The file is opened without blocking and checked with ``fstat`` on the open descriptor, so a FIFO,
    a device or a socket is refused instead of hanging or streaming forever. Raises ``OSError``
    (``EINVAL`` for a non-regular file, ``EFBIG`` for one over ``limit``; with ``follow`` False,
    ``ELOOP`` when ``path`` itself is a link, where the system can tell). Plain descriptor calls,
    as ``_write_temp`` explains.
    """
    nofollow = 0 if follow else getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | nofollow)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        chunks, size = [], 0
        want = min(st.st_size, limit) + 1  # one read for a file that did not grow; the loop for one that did
        while size <= limit:
            chunk = os.read(fd, want)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            want = min(CHUNK, limit + 1 - size) or 1
    finally:
        os.close(fd)
    if size > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def remove_odd(path: Path) -> bool:
    """Remove whatever is at ``path`` unless it is a regular file (a link, a directory, a FIFO...);
    True when something was removed. Used on paths wheelhouse owns, such as cache entries."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISREG(st.st_mode):
        return False
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)
    return True


def open_new(path: Path) -> BinaryIO:
    """A new regular file at ``path`` for writing, never through a link: whatever was there
    (a file, a planted symlink) is removed first, and the file is created exclusively."""
    remove_odd(path)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0),
                 default_file_mode())
    return os.fdopen(fd, "wb")


def open_existing(path: Path) -> BinaryIO:
    """The regular file at ``path`` for reading and writing, refusing a link (``OSError``)."""
    return _regular(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0), "r+b")


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file (also through links, or as two spellings of one path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def overwritten_input(outputs: Sequence[Path], inputs: Sequence[Path]) -> tuple[Path, Path] | None:
    """The first (output, input) pair that is one file, else None: a run must never write over what it reads."""
    for out in outputs:
        for src in inputs:
            if same_file(out, src):
                return out, src
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or no number a pid can be: keep the file, to be safe
    return True


def remove_stale_temporaries(folder: Path, prefix: str) -> list[Path]:
    """Remove ``folder/<prefix><pid>.XXXX.tmp`` files whose writer (``pid``) no longer runs: what a
    writer killed by SIGKILL or a power cut leaves behind; returns them. A live pid's file is a
    writer at work and is kept. Only this machine's pids can be told apart: in a folder shared with
    other hosts a stale file may stay until its pid is unused here too."""
    pattern = re.compile(re.escape(prefix) + r"(\d{1,10})\.[A-Za-z0-9_]+\.tmp")
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []  # creating the temporary file will say what is wrong with the folder
    for name in names:
        m = pattern.fullmatch(name)
        if m is None or _alive(int(m.group(1))):
            continue
        stale = folder / name
        try:
            if stat.S_ISREG(stale.lstat().st_mode):
                stale.unlink()
                removed.append(stale)
        except OSError:
            pass  # removed meanwhile by another writer, or not ours to remove
    return removed
