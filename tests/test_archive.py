"""``bundler.archive``: the tar, tar.gz and tar.zst format both ways.

Archives are written with ``write_reproducible`` and read back both with ``open_archive`` and
independently (``tarfile``, ``gzip``, ``zstandard``). Hostile archives are built with ``tarfile``
or by hand, and every refusal and every damaged stream must be a ``BadBundle`` naming the member.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from bundler.archive import FORMATS, MAX_MEMBER_SIZE, Member, SourceChanged, open_archive, write_reproducible
from bundler.errors import BadBundle, BadInput, BundlerError, HashMismatch

LEVELS = {"tar.zst": 3, "tar.gz": 6, "tar": 0}
MTIME = 1700000000


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def data_member(path: str, data: bytes, mode: int = 0o644) -> Member:
    return Member(path=path, size=len(data), sha256=sha256(data), data=data, mode=mode)


def file_member(path: str, source: Path) -> Member:
    data = source.read_bytes()
    return Member(path=path, size=len(data), sha256=sha256(data), source=source)


@pytest.fixture
def members(tmp_path: Path) -> list[Member]:
    big = tmp_path / "src" / "big.whl"
    big.parent.mkdir()
    big.write_bytes(os.urandom(3 << 20) + bytes(2 << 20))  # more than one read buffer, part compressible
    return [data_member("bundle.json", b"{}\n"), data_member("install.sh", b"#!/bin/sh\n", 0o755),
            data_member("simple/a/index.html", b"<html></html>\n"), data_member("empty", b""),
            file_member("wheels/big-1.0-py3-none-any.whl", big)]


def write(members: list[Member], out: Path, fmt: str, threads: int | None = None) -> tuple[str, int]:
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_reproducible("top", members, out, fmt=fmt, level=LEVELS[fmt], mtime=MTIME, threads=threads)


def read_all(path: Path) -> dict[str, bytes | None]:
    with open_archive(path) as archive:
        return {e.name: (s.read() if s is not None else None) for e, s in archive}


def plain_tar(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    return data


# ---------------------------------------------------------------------------------------------
# writing and reading back


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path: Path, members: list[Member], fmt: str) -> None:
    out = tmp_path / f"a.{fmt}"
    digest, size = write(members, out, fmt)
    data = out.read_bytes()
    assert (digest, size) == (sha256(data), len(data))
    got = read_all(out)
    want = {m.path: m.data if m.data is not None else Path(str(m.source)).read_bytes() for m in members}
    assert {k: v for k, v in got.items() if v is not None} == {f"top/{p}": d for p, d in want.items()}
    assert sorted(k for k, v in got.items() if v is None) == ["top", "top/simple", "top/simple/a", "top/wheels"]
    with open_archive(out) as archive:
        assert archive.format == fmt
    with tarfile.open(fileobj=io.BytesIO(plain_tar(out)), mode="r:") as tar:  # and tarfile agrees
        infos = tar.getmembers()
    stored = [i.name + ("/" if i.isdir() else "") for i in infos]
    assert stored == sorted(stored)
    for info in infos:
        assert (info.uid, info.gid, info.uname, info.gname, info.mtime) == (0, 0, "", "", MTIME)
        assert info.mode == (0o755 if info.isdir() or info.name == "top/install.sh" else 0o644)
    assert len(plain_tar(out)) % 10240 == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_bytes_do_not_depend_on_threads_or_the_sources_mtime(tmp_path: Path, members: list[Member], fmt: str) -> None:
    outs = set()
    for threads in (1, 2, 4):
        for m in members:
            if m.source is not None:
                os.utime(m.source, (threads * 1000, threads * 1000))
        out = tmp_path / str(threads) / f"a.{fmt}"
        write(members, out, fmt, threads=threads)
        outs.add(out.read_bytes())
    assert len(outs) == 1


def test_every_format_holds_the_same_tar_stream(tmp_path: Path, members: list[Member]) -> None:
    streams = set()
    for fmt in FORMATS:
        write(members, tmp_path / f"a.{fmt}", fmt)
        streams.add(plain_tar(tmp_path / f"a.{fmt}"))
    assert len(streams) == 1


def test_changed_source_is_refused_and_nothing_is_left(tmp_path: Path, members: list[Member]) -> None:
    source = next(m.source for m in members if m.source is not None)
    source.write_bytes(b"not what was planned")
    out = tmp_path / "out" / "a.tar.zst"
    with pytest.raises(SourceChanged) as info:
        write(members, out, "tar.zst")
    assert isinstance(info.value, HashMismatch) and info.value.member.source == source
    assert info.value.actual == sha256(b"not what was planned")
    assert list(out.parent.iterdir()) == []


def test_unwritable_output_is_a_bundler_error(tmp_path: Path, members: list[Member]) -> None:
    with pytest.raises(BundlerError, match="cannot write"):
        write_reproducible("top", members, tmp_path / "missing" / "a.tar", fmt="tar", level=0, mtime=MTIME)
    with pytest.raises(BadInput, match="zip"):
        write_reproducible("top", members, tmp_path / "a.zip", fmt="zip", level=0, mtime=MTIME)


# ---------------------------------------------------------------------------------------------
# hostile members


def hostile_tar(path: Path, name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> Path:
    """A tar whose first member is fine and whose second is ``name`` of type ``kind``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:  # pax: any name survives
        good = tarfile.TarInfo("top/ok.txt")
        good.size = 2
        tar.addfile(good, io.BytesIO(b"ok"))
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, linkname
        data = b"evil" if kind == tarfile.REGTYPE else b""
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    if path.name.endswith(".zst"):
        raw = zstandard.ZstdCompressor(write_checksum=True).compress(raw)
    elif path.name.endswith(".gz"):
        raw = gzip.compress(raw, mtime=0)
    path.write_bytes(raw)
    return path


HOSTILE = [
    ("symlink", "top/link", tarfile.SYMTYPE, "/etc/passwd", "symbolic link"),
    ("hardlink", "top/hard", tarfile.LNKTYPE, "top/ok.txt", "hard link"),
    ("char-device", "top/dev", tarfile.CHRTYPE, "", "device"),
    ("block-device", "top/blk", tarfile.BLKTYPE, "", "device"),
    ("fifo", "top/fifo", tarfile.FIFOTYPE, "", "fifo"),
    ("contiguous", "top/cont", tarfile.CONTTYPE, "", "not a regular file"),
    ("absolute", "/tmp/evil.sh", tarfile.REGTYPE, "", "absolute"),
    ("dotdot", "top/../evil.sh", tarfile.REGTYPE, "", "'..'"),
    ("dot", "top/./evil.sh", tarfile.REGTYPE, "", "'.'"),
    ("empty-part", "top//evil.sh", tarfile.REGTYPE, "", "empty"),
    ("newline", "top/evil\nname.sh", tarfile.REGTYPE, "", "control character"),
    ("backslash", "top\\..\\evil.sh", tarfile.REGTYPE, "", "backslash"),
]


@pytest.mark.parametrize("suffix", ["tar", "tar.zst", "tar.gz"])
@pytest.mark.parametrize("case,name,kind,linkname,why", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_members_are_refused_by_name(tmp_path: Path, suffix: str, case: str, name: str, kind: bytes,
                                             linkname: str, why: str) -> None:
    path = hostile_tar(tmp_path / f"evil.{suffix}", name, kind, linkname)
    seen = []
    with pytest.raises(BadBundle) as info, open_archive(path) as archive:
        for entry, stream in archive:
            seen.append(entry.name)
            assert stream is not None and stream.read() == b"ok"
    assert seen == ["top/ok.txt"]  # refused before its bytes are handed out
    assert repr(name) in info.value.message and str(path) in info.value.message
    assert "unsafe member" in info.value.message and why in info.value.message


def test_oversized_member_is_refused_from_its_header(tmp_path: Path) -> None:
    info = tarfile.TarInfo("top/huge.whl")
    info.size = MAX_MEMBER_SIZE + 1
    path = tmp_path / "huge.tar"
    path.write_bytes(info.tobuf(tarfile.GNU_FORMAT) + bytes(4096))  # no body: the header alone must stop it
    with pytest.raises(BadBundle, match=r"'top/huge.whl'.*GiB"), open_archive(path) as archive:
        list(archive)


# ---------------------------------------------------------------------------------------------
# damaged streams and unknown formats


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


@pytest.mark.parametrize("fmt", ["tar.zst", "tar.gz"])
@pytest.mark.parametrize("damage", ["cut-half", "cut-last-byte", "flip-middle", "flip-checksum"])
def test_damaged_compressed_stream_is_a_bad_bundle(tmp_path: Path, members: list[Member], fmt: str, damage: str) -> None:
    good = tmp_path / f"good.{fmt}"
    write(members, good, fmt)
    data = good.read_bytes()
    bad = {"cut-half": data[: len(data) // 2], "cut-last-byte": data[:-1], "flip-middle": flip(data, len(data) // 2),
           "flip-checksum": flip(data, len(data) - 2)}[damage]
    path = tmp_path / f"bad.{fmt}"
    path.write_bytes(bad)
    with pytest.raises(BadBundle) as info:
        read_all(path)
    layer = "zstd" if fmt == "tar.zst" else "gzip"
    assert f"{path}: the {layer} stream is damaged or truncated" in info.value.message or \
        f"{path}: the tar stream is damaged or truncated" in info.value.message


def test_damage_inside_a_member_names_it(tmp_path: Path, members: list[Member]) -> None:
    good = tmp_path / "good.tar"
    write(members, good, "tar")
    data = good.read_bytes()
    path = tmp_path / "bad.tar"
    path.write_bytes(data[: data.index(b"top/wheels/big") + 512 + 1000])  # cut inside the big wheel's bytes
    with pytest.raises(BadBundle, match=r"inside member 'top/wheels/big-1.0-py3-none-any.whl'"):
        read_all(path)


@pytest.mark.parametrize("content,why", [
    (b"", "an empty file"),
    (os.urandom(4096), "not a tar, tar.gz or tar.zst archive"),
    (b"\xfd7zXZ\x00" + bytes(600), "not a tar, tar.gz or tar.zst archive"),  # xz
    (b"PK\x03\x04" + bytes(600), "not a tar, tar.gz or tar.zst archive"),  # zip
    (b'lock-version = "1.0"\n' * 40, "not a tar, tar.gz or tar.zst archive"),
])
def test_unknown_format_is_a_bad_bundle(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "thing.tar.zst"  # the name does not matter, the bytes do
    path.write_bytes(content)
    with pytest.raises(BadBundle) as info:
        open_archive(path)
    assert info.value.message == f"{path}: {why}"


def test_format_comes_from_the_bytes_not_the_name(tmp_path: Path, members: list[Member]) -> None:
    write(members, tmp_path / "a.tar.gz", "tar.gz")
    renamed = tmp_path / "a.tar.zst"
    (tmp_path / "a.tar.gz").rename(renamed)
    with open_archive(renamed) as archive:
        assert archive.format == "tar.gz"
        assert len(list(archive)) == 9


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="nope.tar"):
        open_archive(tmp_path / "nope.tar")


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(child.stdout)


def test_a_killed_writers_temporary_is_removed_and_a_live_ones_kept(tmp_path: Path, members: list[Member]) -> None:
    out = tmp_path / "kit.tar.zst"
    stale = tmp_path / f".kit.tar.zst.{_dead_pid()}.k2j_x9a1.tmp"  # what a SIGKILL during pack leaves
    live = tmp_path / f".kit.tar.zst.{os.getppid()}.abcd1234.tmp"  # another pack at work right now
    other = tmp_path / f".other.tar.zst.{_dead_pid()}.abcd1234.tmp"  # another output's: not this writer's business
    for f in (stale, live, other):
        f.write_bytes(b"partial")
    write(members, out, "tar.zst")
    assert not stale.exists() and live.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == sorted([live.name, other.name])


def test_the_temporary_name_carries_the_writers_pid(tmp_path: Path) -> None:
    import re
    import threading

    from bundler.fsutil import remove_stale_temporaries

    # A member read from a FIFO: the feeding thread looks at the folder while the archive is being written.
    fifo = tmp_path / "src.whl"
    os.mkfifo(fifo)
    out = tmp_path / "out" / "kit.tar"
    data = b"wheel bytes\n"
    seen: list[str] = []

    def feed() -> None:
        with open(fifo, "wb") as f:  # opens once the writer reads the member
            seen.extend(p.name for p in out.parent.iterdir())
            f.write(data)

    feeder = threading.Thread(target=feed)
    feeder.start()
    write([Member(path="wheels/a-1.0-py3-none-any.whl", size=len(data), sha256=sha256(data), source=fifo)], out, "tar")
    feeder.join()
    assert len(seen) == 1 and re.fullmatch(rf"\.kit\.tar\.{os.getpid()}\.\w+\.tmp", seen[0]), seen
    assert [p.name for p in out.parent.iterdir()] == ["kit.tar"]
    mine = out.parent / f".kit.tar.{os.getpid()}.zz.tmp"  # this process is alive: kept
    mine.write_bytes(b"x")
    assert remove_stale_temporaries(out.parent, ".kit.tar.") == [] and mine.exists()


def test_progress_hears_every_byte_of_content(tmp_path: Path, members: list[Member]) -> None:
    calls: list[tuple[int, int]] = []
    plain = write_reproducible("top", members, tmp_path / "a.tar", fmt="tar", level=0, mtime=MTIME)
    told = write_reproducible("top", members, tmp_path / "b.tar", fmt="tar", level=0, mtime=MTIME,
                              progress=lambda done, total: calls.append((done, total)))
    assert told == plain  # reporting changes nothing in the bytes
    total = sum(m.size for m in members)
    assert calls and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_pack_progress_prints_lines_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    from bundler.progress import PackProgress

    piped = PackProgress(False, interval=0.0, tty=False)
    piped(10, 2000)
    piped(2000, 2000)
    piped.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "packing 2.0 KB" and lines[-1].startswith("  packed 2.0 KB of 2.0 KB at ")
    quiet = PackProgress(True, interval=0.0, tty=False)
    quiet(10, 2000)
    assert capsys.readouterr().err == ""
