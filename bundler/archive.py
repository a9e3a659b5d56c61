"""The bundle's archive format, both ways: tar, tar.gz and tar.zst.

Writing is reproducible to the byte: members sorted, one mtime, owner 0/0 with no user or group
names, GNU tar headers written here rather than by ``tarfile`` (whose stream mode re-buffers every
block), and compression with fixed parameters: zstd frames carry checksums and always use the
multi-threaded engine (its output does not depend on the number of workers, but differs from the
single-threaded one); gzip has no name and a fixed mtime. The archive is written under a temporary
name (``.NAME.<pid>.XXXX.tmp``; those of writers that were killed are removed by the next
writer) and renamed, and its sha256 is computed on a second thread while it is written.

Reading sniffs the format from the magic bytes, not the file name, and refuses what an extractor
must never be handed: members that are not regular files or directories (links, devices, fifos,
sparse files), names that are absolute, hold ``..`` or empty parts, backslashes or control
characters, and members larger than any wheel could be. Every refusal, and every damaged zstd,
gzip or tar stream, is a ``BadBundle`` that names the archive and the member.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import queue
import tarfile
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from bundler.errors import BadBundle, BadInput, BundlerError, HashMismatch
from bundler.fsutil import default_file_mode, remove_stale_temporaries

FORMATS = ("tar.zst", "tar.gz", "tar")
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"
_BLOCK = 512
_RECORD = 20 * _BLOCK
_CHUNK = 1 << 20
# The largest wheels on PyPI (CUDA builds) are a few GB; a member claiming more than this is a
# decompression bomb or a corrupt header, and would otherwise be spooled to disk in full.
MAX_MEMBER_SIZE = 8 << 30
_MAX_NAME = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One regular file of an archive being written: its bytes in ``data``, or in the file ``source``
    (hashed again while it is copied, and refused with ``SourceChanged`` if it no longer matches)."""

    path: str  # inside the top directory
    size: int
    sha256: str
    data: bytes | None = None
    source: Path | None = None
    mode: int = 0o644


class SourceChanged(HashMismatch):
    """A member's source file no longer has the sha256 it was planned with; nothing was written."""

    def __init__(self, member: Member, actual: str) -> None:
        super().__init__(f"{member.path} ({member.source})", member.sha256, actual)
        self.member = member


# ---------------------------------------------------------------------------------------------
# writing


class _Counting:
    """A write-only wrapper that counts what passes through and hashes it on a second thread, so the
    archive's sha256 costs no time on the thread that reads, hashes and compresses the wheels."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._hash, name="pack-sha256", daemon=True)
        self._thread.start()

    def _hash(self) -> None:
        while (data := self._queue.get()) is not None:
            self.sha.update(data)

    def write(self, data: bytes) -> int:
        data = bytes(data)  # a copy: callers reuse their buffers (the read buffer, with plain tar)
        self.raw.write(data)
        self._queue.put(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()

    def digest(self) -> str:
        """The sha256 of everything written (waits for the hashing thread)."""
        self._queue.put(None)
        self._thread.join()
        return self.sha.hexdigest()


def _tar_header(path: str, size: int, mode: int, mtime: int, kind: bytes) -> bytes:
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime, info.type = size, mode, mtime, kind
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "strict")


def _tar_stream(top: str, members: list[Member], mtime: int) -> Iterator[bytes | Member]:
    """The tar archive as header/padding bytes, with members' data left to the writer."""
    dirs = {top}
    for m in members:
        parts = m.path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add(f"{top}/{'/'.join(parts[:i])}")
    entries = sorted([(d + "/", None) for d in dirs] + [(f"{top}/{m.path}", m) for m in members], key=lambda e: e[0])
    for path, m in entries:
        if m is None:
            yield _tar_header(path, 0, 0o755, mtime, tarfile.DIRTYPE)
        else:
            yield _tar_header(path, m.size, m.mode, mtime, tarfile.REGTYPE)
            yield m
            yield b"\0" * (-m.size % _BLOCK)
    yield b"\0" * (2 * _BLOCK)


def _open_compressor(fmt: str, level: int, raw: _Counting, mtime: int, threads: int) -> Any:
    if fmt == "tar.zst":
        import zstandard

        cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, threads=max(1, threads))
        return cctx.stream_writer(raw, closefd=False)
    if fmt == "tar.gz":
        return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime, compresslevel=level)  # type: ignore[arg-type]
    return raw


def write_reproducible(top: str, members: list[Member], output: Path, *, fmt: str, level: int, mtime: int,
                       threads: int | None = None, progress: Callable[[int, int], None] | None = None) -> tuple[str, int]:
    """Write ``members`` under the directory ``top`` to ``output`` atomically, in ``fmt`` (one of
    ``FORMATS``) at compression ``level``, every entry dated ``mtime``; returns the archive's
    (sha256, size). The bytes depend on nothing else, ``threads`` included. A member whose source
    no longer hashes to its sha256 raises ``SourceChanged`` and leaves nothing behind. ``progress``
    is called as ``progress(done, total)`` in bytes of members' content, after each chunk."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown archive format {fmt!r}", hint=f"choose one of {', '.join(FORMATS)}")
    threads = threads if threads is not None else (os.cpu_count() or 1)
    remove_stale_temporaries(output.parent, f".{output.name}.")  # left by a pack that was killed
    try:
        fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.{os.getpid()}.", suffix=".tmp")
    except OSError as e:
        raise BundlerError(f"cannot write {output}: {e.strerror or e}") from None
    raw: _Counting | None = None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), default_file_mode())  # mkstemp makes 0600; a bundle is meant to be copied and shared
            raw = _Counting(f)
            out = _open_compressor(fmt, level, raw, mtime, threads)
            written = 0
            # One buffer for all reads: a fresh 1 MiB bytes object per read costs a page fault per
            # 4 KiB in a new process (glibc maps big blocks anew until its threshold adapts).
            buf = bytearray(_CHUNK)
            view = memoryview(buf)
            total, done = sum(m.size for m in members), 0
            for piece in _tar_stream(top, members, mtime):
                if isinstance(piece, bytes):
                    out.write(piece)
                    written += len(piece)
                    continue
                if piece.data is not None:
                    out.write(piece.data)
                else:
                    h = hashlib.sha256()
                    assert piece.source is not None
                    with open(piece.source, "rb", buffering=0) as src:
                        while n := src.readinto(buf):
                            chunk = view[:n]
                            h.update(chunk)
                            out.write(chunk)  # the compressor copies it: buf is free again
                            if progress is not None:
                                done += n
                                progress(done, total)
                    if h.hexdigest() != piece.sha256:
                        raise SourceChanged(piece, h.hexdigest())
                if progress is not None and piece.data is not None:
                    done += piece.size
                    progress(done, total)
                written += piece.size
            out.write(b"\0" * (-written % _RECORD))
            if out is not raw:
                out.close()
            f.flush()
        digest = raw.digest()
        os.replace(tmp, output)
    except OSError as e:  # a full disk, a vanished source file, ...: no traceback, no temporary file left
        Path(tmp).unlink(missing_ok=True)
        where = f" ({e.filename})" if e.filename and e.filename != tmp else ""
        raise BundlerError(f"cannot write {output}: {e.strerror or e}{where}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        if raw is not None and raw._thread.is_alive():
            raw.digest()  # stop the hashing thread on the way out of a failure
    return digest, raw.size


# ---------------------------------------------------------------------------------------------
# reading


def sniff(head: bytes) -> str | None:
    """The format of an archive from its first 512 bytes: one of ``FORMATS``, else None."""
    if head.startswith(_ZSTD_MAGIC):
        return "tar.zst"
    if head.startswith(_GZIP_MAGIC):
        return "tar.gz"
    if head[257:262] == b"ustar":  # POSIX and GNU headers both carry it; pack writes GNU
        return "tar"
    return None


def _zstd_frames_end(f: IO[bytes], size: int) -> str | None:
    """Why a zstd stream of ``size`` bytes does not end exactly where its last frame does, else None.

    zstandard's stream reader returns a stream cut inside a frame (even inside its checksum) as if it
    had ended, so the frame and block headers (RFC 8878) are walked first: a seek and a 3-byte read
    per block of at most 128 KiB, a few milliseconds for a GB."""
    pos = 0
    while pos < size:
        f.seek(pos)
        head = f.read(18)  # magic, frame header descriptor, window, dictionary id, content size
        if len(head) < 8:
            return f"the stream ends inside a frame header at offset {pos}"
        magic = int.from_bytes(head[:4], "little")
        if 0x184D2A50 <= magic <= 0x184D2A5F:  # a skippable frame
            pos += 8 + int.from_bytes(head[4:8], "little")
            continue
        if magic != 0xFD2FB528:
            return f"no zstd frame at offset {pos}"
        fhd = head[4]
        single, dict_flag = (fhd >> 5) & 1, fhd & 3
        p = pos + 5 + (0 if single else 1) + (0, 1, 2, 4)[dict_flag] + ((1 if single else 0), 2, 4, 8)[fhd >> 6]
        while True:
            f.seek(p)
            block = f.read(3)
            if len(block) < 3:
                return f"the stream ends inside the frame at offset {pos}"
            header = int.from_bytes(block, "little")
            if (header >> 1) & 3 == 3:
                return f"a reserved block type at offset {p}"
            p += 3 + (1 if (header >> 1) & 3 == 1 else header >> 3)  # an RLE block stores one byte
            if header & 1:  # the frame's last block
                break
        pos = p + (4 if (fhd >> 2) & 1 else 0)  # the content checksum
    f.seek(0)
    return None if pos == size else f"the stream ends inside the frame that ends at offset {pos}"


def check_name(name: str) -> str | None:
    """Why a member name is unsafe to extract, or None when it is a plain relative path."""
    if not name or len(name) > _MAX_NAME:
        return "an empty or overlong name"
    if name.startswith("/"):
        return "an absolute path"
    if any(ord(c) < 32 or ord(c) == 127 for c in name) or "\\" in name:
        return "a control character or backslash in its name"
    parts = name.split("/")
    if ".." in parts:
        return "'..' in its path"
    if any(p in ("", ".") for p in parts):
        return "an empty or '.' part in its path"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """A member that passed the safety checks: a directory, or a regular file of ``size`` bytes."""

    name: str
    size: int
    is_dir: bool


class Stream:
    """The bytes of an archive or of one member: ``read(n)`` only, one pass. Damage in the
    stream surfaces as ``BadBundle`` instead of a codec's own exception."""

    def __init__(self, raw: IO[bytes], archive: ArchiveReader) -> None:
        self._raw = raw
        self._archive = archive

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left when ``n`` is negative); b"" at the end."""
        try:
            return self._raw.read(n)
        except self._archive.errors as e:
            raise self._archive.damaged(e) from None


class ArchiveReader:
    """A tar, tar.gz or tar.zst read once from front to back (see ``open_archive``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            f = open(path, "rb")
        except OSError as e:
            raise BadInput(f"cannot read {path}: {e.strerror or e}") from None
        self._closers: list[Any] = [f]
        # What a damaged stream raises: gzip gives OSError, EOFError and zlib.error, tarfile its own.
        self.errors: tuple[type[BaseException], ...] = (tarfile.TarError, EOFError, OSError, ValueError, zlib.error)
        head = f.read(_BLOCK)
        f.seek(0)
        fmt = sniff(head)
        if fmt is None:
            f.close()
            what = "an empty file" if not head else "not a tar, tar.gz or tar.zst archive"
            raise BadBundle(f"{path}: {what}", hint="a bundle is what 'wheelhouse pack' writes")
        self.format = fmt
        stream: IO[bytes] = f
        if fmt == "tar.zst":
            import zstandard

            if (why := _zstd_frames_end(f, os.fstat(f.fileno()).st_size)) is not None:
                f.close()
                raise BadBundle(f"{path}: the zstd stream is damaged or truncated: {why}",
                                hint="copy or build the bundle again")
            stream = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True, closefd=True)
            self.errors += (zstandard.ZstdError,)  # no common base with the others
            self._closers.insert(0, stream)
        elif fmt == "tar.gz":
            stream = gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[assignment]
            self._closers.insert(0, stream)
        self._stream = Stream(stream, self)
        self._member: str | None = None  # the member being read, for messages

    def damaged(self, error: BaseException) -> BadBundle:
        """The ``BadBundle`` for a stream error met while reading (naming the member, if inside one)."""
        member = self._member
        layer = "tar" if isinstance(error, tarfile.TarError) or self.format == "tar" else self.format.split(".")[1]
        name = {"zst": "zstd", "gz": "gzip", "tar": "tar"}[layer]
        where = f" inside member {member!r}" if member else ""
        return BadBundle(f"{self.path}: the {name} stream is damaged or truncated{where}: {error}",
                         hint="copy or build the bundle again")

    def __iter__(self) -> Iterator[tuple[Entry, Stream | None]]:
        """Each member in archive order with a stream of its bytes (None for a directory). A member
        that is not safe to extract raises ``BadBundle`` naming it, and reading stops there."""
        tar = self._guard(lambda: tarfile.open(fileobj=self._stream, mode="r|"))  # type: ignore[call-overload]
        self._closers.insert(0, tar)
        members = iter(tar)
        while (info := self._guard(lambda: next(members, None))) is not None:
            self._member = None
            entry = self._check(info)
            if entry.is_dir:
                yield entry, None
                continue
            self._member = entry.name
            src = self._guard(lambda: tar.extractfile(info))
            assert src is not None
            yield entry, Stream(src, self)
        self._member = None
        # tarfile stops at the end-of-archive blocks; the rest of a compressed stream is read too, so
        # gzip checks its CRC and length and zstd the last frame's checksum.
        if self.format != "tar":
            while self._stream.read(_CHUNK):
                pass

    def _guard(self, step: Any) -> Any:
        try:
            return step()
        except self.errors as e:
            raise self.damaged(e) from None

    def _check(self, info: tarfile.TarInfo) -> Entry:
        why = check_name(info.name)
        if why is None and info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE):
            kinds = {tarfile.SYMTYPE: "a symbolic link", tarfile.LNKTYPE: "a hard link", tarfile.CHRTYPE: "a device",
                     tarfile.BLKTYPE: "a device", tarfile.FIFOTYPE: "a fifo", tarfile.GNUTYPE_SPARSE: "a sparse file"}
            why = f"{kinds.get(info.type, f'a member of tar type {info.type!r}')}, not a regular file or directory"
        if why is None and info.size > MAX_MEMBER_SIZE:
            why = f"{info.size} bytes, more than the {MAX_MEMBER_SIZE >> 30} GiB any member may have"
        if why is not None:
            raise BadBundle(f"{self.path}: unsafe member {info.name!r}, refused: {why}",
                            hint="this archive is not one 'wheelhouse pack' wrote; do not unpack it")
        return Entry(name=info.name, size=0 if info.isdir() else info.size, is_dir=info.isdir())

    def close(self) -> None:
        for c in self._closers:
            c.close()
        self._closers = []

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def open_archive(path: Path) -> ArchiveReader:
    """Open the archive at ``path`` for one pass over its members; use it as a context manager.

    The format comes from the magic bytes (zstd, gzip, else a ustar header). Iterating yields
    ``(Entry, Stream)`` for each member (the stream is None for a directory), checked as the module
    docstring says; a damaged stream or an unsafe member raises ``BadBundle``."""
    return ArchiveReader(path)
