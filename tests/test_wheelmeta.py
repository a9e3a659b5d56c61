"""bundler.wheelmeta: METADATA parsing, METADATA out of a wheel zip, and RangeFile over a fake fetch."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bundler.wheelmeta import BadMetadata, RangeFile, metadata_from_zip, parse_metadata
from support.wheelgen import make_wheel, read_metadata

# ---------------------------------------------------------------------------------------------
# parse_metadata


def test_parse_metadata_full() -> None:
    data = (
        b"Metadata-Version: 2.1\n"
        b"Name: Foo_Bar\n"
        b"Version: 1.2.3\n"
        b"Summary: caf\xc3\xa9\n"
        b"Requires-Python: >=3.8\n"
        b"Provides-Extra: Socks\n"
        b"Provides-Extra: test_all\n"
        b"Requires-Dist: idna<4,>=2.5\n"
        b"Requires-Dist: PySocks!=1.5.7,>=1.5.6; extra == \"socks\"\n"
        b"Requires-Dist: colorama; sys_platform == \"win32\"\n"
        b"\n"
        b"Requires-Dist: this is the description body, not a header\n"
    )
    md = parse_metadata(data)
    assert md.name == "Foo_Bar" and md.version == "1.2.3"
    assert md.requires_python == ">=3.8"
    assert md.provides_extra == ("socks", "test-all")
    assert [str(r) for r in md.requires_dist] == [
        "idna<4,>=2.5",
        'PySocks!=1.5.7,>=1.5.6; extra == "socks"',
        'colorama; sys_platform == "win32"',
    ]


@pytest.mark.parametrize(
    "extra, field, value",
    [
        (b"", "requires_python", None),
        (b"Requires-Python: \n", "requires_python", None),
        (b"Requires-Python: >=3.9, <4\n", "requires_python", ">=3.9, <4"),
        (b"", "requires_dist", ()),
        (b"", "provides_extra", ()),
        (b"Provides-Extra: A.B\n", "provides_extra", ("a-b",)),
    ],
)
def test_parse_metadata_fields(extra: bytes, field: str, value) -> None:
    md = parse_metadata(b"Metadata-Version: 2.1\nName: p\nVersion: 1\n" + extra)
    assert getattr(md, field) == value


@pytest.mark.parametrize(
    "data, message",
    [
        (b"Metadata-Version: 2.1\nVersion: 1.0\n", "lacks Name or Version"),
        (b"Metadata-Version: 2.1\nName: p\n", "lacks Name or Version"),
        (b"", "lacks Name or Version"),
        (b"Name: p\nVersion: 1.0\nRequires-Dist: not a requirement!!\n", "p 1.0 has an invalid Requires-Dist 'not a requirement!!'"),
    ],
)
def test_parse_metadata_bad(data: bytes, message: str) -> None:
    with pytest.raises(BadMetadata, match=message):
        parse_metadata(data)


@pytest.mark.parametrize(
    "data",
    [
        b"Name: a\r\nVersion: 1\r\nRequires-Dist: b ; extra == 'x'\r\n\r\nRequires-Dist: body-not-header\n",
        b"Name: a\nVersion: 1\nRequires-Dist: b\n  >=2\nRequires-Dist:c\nrequires-dist: \td\n",
        b"Name: a\nVersion: 1\nDescription: line one\n        |line two\nRequires-Python: >=3.8\n",
        b"Name: a\nVersion: 1\nnot a header line\nRequires-Dist: after-the-end\n",
        b"Name: a\nVersion: 1\nProvides-Extra: Dev_Tools\nProvides-Extra: test\n",
        b"Name: a\rVersion: 1\rRequires-Dist: old-mac\r",
    ],
    ids=["crlf-and-body", "continuation-and-case", "folded-description", "stray-line", "extras", "cr"],
)
def test_metadata_fields_agree_with_email_parser(data: bytes) -> None:
    from email.parser import BytesParser

    msg = BytesParser().parsebytes(data, headersonly=True)

    def unfold(values: list[str] | None) -> list[str]:  # email keeps the folding; RFC 5322 removes the breaks
        return [v.replace("\n", "") for v in values or []]

    meta = parse_metadata(data)
    assert (meta.name, meta.version, meta.requires_python) == (msg["Name"], msg["Version"], msg["Requires-Python"])
    assert [str(r) for r in meta.requires_dist] == [str(Requirement(r)) for r in unfold(msg.get_all("Requires-Dist"))]
    assert list(meta.provides_extra) == [canonicalize_name(e) for e in unfold(msg.get_all("Provides-Extra"))]


def test_metadata_is_utf8() -> None:
    meta = parse_metadata("Name: caf\u00e9\nVersion: 1\nRequires-Dist: b ; python_version >= '3.8'\n".encode())
    assert meta.name == "caf\u00e9" and meta.requires_dist[0].name == "b"


# ---------------------------------------------------------------------------------------------
# metadata_from_zip


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    "name, version, ask",
    [
        ("six", "1.16.0", "six"),
        ("Foo_Bar", "1.0", "foo-bar"),
        ("foo.bar", "2.0", "Foo_Bar"),
        ("PyYAML", "6.0.1", "pyyaml"),
    ],
)
def test_metadata_from_generated_wheel(tmp_path: Path, name: str, version: str, ask: str) -> None:
    wheel = make_wheel(tmp_path, name, version, requires_dist=["idna>=2"])
    with wheel.open("rb") as f:
        data = metadata_from_zip(f, ask)
    assert data == read_metadata(wheel)
    assert parse_metadata(data).version == version


def test_metadata_from_zip_picks_the_projects_dist_info() -> None:
    blob = _zip({
        "vendored-9.9.dist-info/METADATA": b"Name: vendored\nVersion: 9.9\n",
        "pkg/_vendor/pkg-0.1.dist-info/METADATA": b"Name: pkg\nVersion: 0.1\n",  # not top level
        "pkg-1.0.dist-info/METADATA": b"Name: pkg\nVersion: 1.0\n",
    })
    assert metadata_from_zip(io.BytesIO(blob), "pkg") == b"Name: pkg\nVersion: 1.0\n"


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"not a zip at all", "not a readable wheel"),
        (b"", "not a readable wheel"),
        (_zip({"other-1.0.dist-info/METADATA": b"Name: other\nVersion: 1.0\n"}), "wheel has no pkg-\\*.dist-info/METADATA"),
        (_zip({"pkg/__init__.py": b""}), "wheel has no pkg-"),
    ],
)
def test_metadata_from_zip_bad(blob: bytes, message: str) -> None:
    with pytest.raises(BadMetadata, match=message):
        metadata_from_zip(io.BytesIO(blob), "pkg")


class CountingBytes(io.BytesIO):
    """Counts seeks, to tell the direct central-directory path from zipfile's."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.seeks = 0

    def seek(self, *a: int) -> int:  # type: ignore[override]
        self.seeks += 1
        return super().seek(*a)


META = b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\nRequires-Dist: idna\n" + b"Summary: x\n" * 200


def _zip_with(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED, comment: bytes = b"",
              force_zip64: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            with zf.open(name, "w", force_zip64=force_zip64) as out:
                out.write(data)
        zf.comment = comment
    return buf.getvalue()


@pytest.mark.parametrize(
    "blob",
    [
        _zip_with({"pkg/__init__.py": b"", "pkg-1.0.dist-info/METADATA": META}),
        _zip_with({"pkg-1.0.dist-info/METADATA": META}, compression=zipfile.ZIP_STORED),
        _zip_with({"pkg-1.0.dist-info/METADATA": META}, comment=b"a trailing archive comment"),
        _zip_with({"pkg-1.0.dist-info/METADATA": META}, force_zip64=True),  # zip64 extras: read by zipfile
        b"#!/bin/sh\nprefix\n" + _zip_with({"pkg-1.0.dist-info/METADATA": META}),  # bytes before the zip
        _zip_with({"pkg-1.0.dist-info/METADATA": META}, compression=zipfile.ZIP_BZIP2),  # unusual method
        _zip_with({"pkg-1.0.dist-info/METADATA.orig": b"stale", "Pkg-1.0.dist-info/METADATA": META}),
    ],
    ids=["deflated", "stored", "comment", "zip64", "prefix", "bzip2", "near-names"],
)
def test_metadata_from_zip_direct_and_fallback_agree(blob: bytes) -> None:
    assert metadata_from_zip(io.BytesIO(blob), "pkg") == META


def test_metadata_direct_path_reads_few_places() -> None:
    members = {f"pkg/mod{i}.py": b"x = 1\n" for i in range(2000)}
    members["pkg-1.0.dist-info/METADATA"] = META
    f = CountingBytes(_zip_with(members))
    assert metadata_from_zip(f, "pkg") == META
    assert f.seeks <= 5  # end record, central directory, local header, data: no per-entry work


def test_metadata_that_inflates_beyond_its_size_is_refused() -> None:
    blob = bytearray(_zip_with({"pkg-1.0.dist-info/METADATA": META + b"\0" * 100_000}))
    at = blob.rfind(b"PK\x01\x02")
    blob[at + 24 : at + 28] = len(META).to_bytes(4, "little")  # the central directory claims less than the data holds
    with pytest.raises(BadMetadata, match="size or CRC"):
        metadata_from_zip(io.BytesIO(bytes(blob)), "pkg")
    blob[at + 24 : at + 28] = (65 << 20).to_bytes(4, "little")
    with pytest.raises(BadMetadata, match="no METADATA is that big"):
        metadata_from_zip(io.BytesIO(bytes(blob)), "pkg")


def test_metadata_crc_mismatch_is_bad_metadata() -> None:
    blob = bytearray(_zip_with({"pkg-1.0.dist-info/METADATA": META}, compression=zipfile.ZIP_STORED))
    at = blob.find(b"Requires-Dist: idna")
    blob[at] ^= 0x20  # one flipped bit in the stored METADATA
    with pytest.raises(BadMetadata, match="CRC"):
        metadata_from_zip(io.BytesIO(bytes(blob)), "pkg")


# ---------------------------------------------------------------------------------------------
# RangeFile


class FakeRemote:
    """Serves byte ranges of ``data`` like a Range-capable server and counts what it was asked."""

    def __init__(self, data: bytes, *, short: bool = False) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []
        self.short = short

    def fetch(self, start: int, end: int) -> bytes:  # inclusive end, like an HTTP Range header
        assert 0 <= start <= end < len(self.data)
        self.calls.append((start, end))
        block = self.data[start : end + 1]
        return block[:-1] if self.short else block

    @property
    def fetched(self) -> int:
        return sum(e - s + 1 for s, e in self.calls)


def big_wheel(tmp_path: Path, payload: int = 2 * 1024 * 1024) -> bytes:
    noise = random.Random(0).randbytes(payload)  # incompressible, so the wheel really is that big
    path = make_wheel(tmp_path, "bigpkg", "1.0", requires_dist=["numpy>=1.26"], files={"bigpkg/blob.bin": noise})
    return path.read_bytes()


def test_metadata_from_tail_needs_no_fetch(tmp_path: Path) -> None:
    data = big_wheel(tmp_path)
    remote = FakeRemote(data)
    rf = RangeFile(len(data), data[-16 * 1024 :], remote.fetch)
    md = metadata_from_zip(rf, "bigpkg")
    assert parse_metadata(md).requires_dist[0].name == "numpy"
    assert remote.calls == [] and rf.requests == 1


@pytest.mark.parametrize("tail", [22, 100, 1024])
def test_metadata_with_small_tail_fetches_little(tmp_path: Path, tail: int) -> None:
    data = big_wheel(tmp_path)
    remote = FakeRemote(data)
    rf = RangeFile(len(data), data[-tail:], remote.fetch)
    md = metadata_from_zip(rf, "bigpkg")
    assert md.startswith(b"Metadata-Version: 2.1\nName: bigpkg\n")
    assert len(remote.calls) <= 3
    assert remote.calls or tail >= 1024  # a bare end-of-central-directory record is not enough
    assert rf.requests == 1 + len(remote.calls)
    assert remote.fetched < len(data) // 8  # nowhere near the whole 2 MiB wheel


def test_whole_wheel_read_through_rangefile(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "small", "0.1")
    data = wheel.read_bytes()
    remote = FakeRemote(data)
    rf = RangeFile(len(data), data[-10:], remote.fetch, chunk=64)
    assert metadata_from_zip(rf, "small") == read_metadata(wheel)
    assert all(e - s + 1 <= max(64, len(data)) for s, e in remote.calls)


DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.mark.parametrize(
    "offset, whence, n, expected",
    [
        (0, io.SEEK_SET, 10, DATA[:10]),
        (5000, io.SEEK_SET, 100, DATA[5000:5100]),
        (-10, io.SEEK_END, 10, DATA[-10:]),
        (-10, io.SEEK_END, 100, DATA[-10:]),  # short read at the end
        (-300, io.SEEK_END, -1, DATA[-300:]),  # read to the end, spanning the tail
        (0, io.SEEK_END, 10, b""),
        (20000, io.SEEK_SET, 10, b""),  # past the end
        (-50, io.SEEK_SET, 5, DATA[:5]),  # clamped to 0
        (10230, io.SEEK_SET, 0, b""),
    ],
)
def test_rangefile_seek_and_read(offset: int, whence: int, n: int, expected: bytes) -> None:
    remote = FakeRemote(DATA)
    rf = RangeFile(len(DATA), DATA[-256:], remote.fetch, chunk=1024)
    assert rf.readable() and rf.seekable()
    pos = rf.seek(offset, whence)
    assert rf.tell() == pos
    assert rf.read(n) == expected
    assert rf.tell() == pos + len(expected)


def test_rangefile_caches_chunks() -> None:
    remote = FakeRemote(DATA)
    rf = RangeFile(len(DATA), DATA[-256:], remote.fetch, chunk=1024)
    assert rf.read(10) == DATA[:10]
    assert rf.read(10) == DATA[10:20]
    rf.seek(500)
    assert rf.read(100) == DATA[500:600]
    assert remote.calls == [(0, 1023)]  # one chunk served all three reads
    rf.seek(-100, io.SEEK_END)
    assert rf.read() == DATA[-100:]
    assert remote.calls == [(0, 1023)]  # the tail was already there
    assert rf.requests == 2


def test_rangefile_readinto() -> None:
    rf = RangeFile(len(DATA), DATA[-256:], FakeRemote(DATA).fetch)
    rf.seek(100)
    buf = bytearray(16)
    assert rf.readinto(buf) == 16 and bytes(buf) == DATA[100:116]
    # buffered reading through io works too
    rf.seek(0)
    assert io.BufferedReader(rf).read() == DATA


def test_rangefile_short_answer_is_an_error() -> None:
    rf = RangeFile(len(DATA), DATA[-256:], FakeRemote(DATA, short=True).fetch)
    with pytest.raises(OSError, match="range read returned"):
        rf.read(10)


def test_rangefile_short_answer_surfaces_as_bad_metadata(tmp_path: Path) -> None:
    data = big_wheel(tmp_path, payload=200_000)
    rf = RangeFile(len(data), data[-22:], FakeRemote(data, short=True).fetch)
    with pytest.raises(BadMetadata, match="not a readable wheel"):
        metadata_from_zip(rf, "bigpkg")


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2])
def test_zipfile_path_never_inflates_a_huge_metadata(method: int) -> None:
    """An odd compression method sends the reader through ``zipfile``; its METADATA is capped too."""
    import io as _io
    import zipfile as _zipfile

    from bundler.wheelmeta import BadMetadata, metadata_from_zip

    buf = _io.BytesIO()
    buf.write(b"#!/bin/sh\n" * 10)  # a prefix, as in a self-extracting archive
    with _zipfile.ZipFile(buf, "a", compression=method) as zf:
        zf.writestr("bomb-1.0.dist-info/METADATA", b"Name: bomb\n" + b" " * (70 << 20))
    with pytest.raises(BadMetadata, match="refusing to inflate|inflates past|no METADATA is that big"):
        metadata_from_zip(_io.BytesIO(buf.getvalue()), "bomb")
