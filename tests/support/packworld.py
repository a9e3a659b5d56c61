"""The world test_pack.py and test_bundle.py share: a loopback index, a recipe and its lock for two
targets, a requirements lock for one, a cache holding every wheel, and the recipe lock packed once
in each format; with helpers that read archives back without bundler's help. A test module imports
the ``world`` and ``unpacked`` fixtures by name (module-scoped: each module builds its own world).

Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
import zstandard
from .indexserver import IndexServer

from bundler.cli import main

NAME = "kit"
CP311 = "x86_64-manylinux_2_28-cp311"
CP312 = "x86_64-manylinux_2_28-cp312"
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
T_MAX = datetime(2024, 6, 1, 0, 0, 0, tzinfo=timezone.utc)  # the newest upload in the world
EXCLUDE_NEWER = "2025-01-02T03:04:05Z"
FORMATS = ("tar.zst", "tar.gz", "tar")
WHEELS = [
    "alpha-1.0-py3-none-any.whl",
    "backport-1.0-py3-none-any.whl",
    "beta-2.1-py3-none-any.whl",
    "delta-1.0-py3-none-any.whl",
    "epsilon-1.0-py3-none-any.whl",
    "gamma-0.3-py3-none-any.whl",
    "native-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
    "native-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
    "pip-24.0-py3-none-any.whl",
]
PROJECTS = ["alpha", "backport", "beta", "delta", "epsilon", "gamma", "native", "pip"]
RECIPE = f"""\
name = "{NAME}"
requirements = ["alpha"]
smoke = ["import alpha, beta, gamma"]

[[targets]]
python-platform = "x86_64-manylinux_2_28"
python-version = "3.11"

[[targets]]
python-platform = "x86_64-manylinux_2_28"
python-version = "3.12"
"""

@dataclass(frozen=True)
class Run:
    rc: int
    out: str
    err: str


def cli(*argv: str | Path) -> Run:
    """``wheelhouse ARGV`` in-process; never a traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    run = Run(rc, out.getvalue(), err.getvalue())
    assert "Traceback" not in run.err
    return run


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_tar(archive: Path) -> bytes:
    """The uncompressed tar stream of an archive, decompressed without bundler's help."""
    data = archive.read_bytes()
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    return data


def tar_entries(raw: bytes) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        out = []
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isreg() else None
            out.append((m, f.read() if f else None))
        return out


def write_archive(entries: list[tuple[tarfile.TarInfo, bytes | None]], path: Path) -> Path:
    """A tar (compressed by the suffix) of ``entries``, written with ``tarfile``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.GNU_FORMAT) as tar:
        for info, data in entries:
            info = _copy(info)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    if path.name.endswith(".zst"):
        raw = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(raw)
    elif path.name.endswith(".gz"):
        raw = gzip.compress(raw, mtime=0)
    path.write_bytes(raw)
    return path


def _copy(info: tarfile.TarInfo) -> tarfile.TarInfo:
    new = tarfile.TarInfo(info.name)
    for attr in ("size", "mode", "mtime", "type", "linkname", "uid", "gid", "uname", "gname", "devmajor", "devminor"):
        setattr(new, attr, getattr(info, attr))
    return new


def extract(archive: Path, dest: Path) -> Path:
    """Unpack with ``tarfile``'s data filter; return the single top directory."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(raw_tar(archive)), mode="r:") as tar:
        tar.extractall(dest, filter="data")
    (top,) = dest.iterdir()
    return top


def flip(data: bytes, at: int | None = None) -> bytes:
    at = len(data) // 2 if at is None else at
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]

@dataclass
class World:
    root: Path
    server: IndexServer
    recipe: Path
    lock: Path  # from the recipe: name "kit", targets cp311 + cp312
    req_lock: Path  # from "alpha" on the command line, one target, with --exclude-newer
    cache: Path
    files: dict[str, Path]  # wheel filename -> its file on the index
    packed: dict[str, Path]  # format -> the recipe lock packed once

    @property
    def top(self) -> str:
        """The folder the recipe lock's bundle unpacks to: its name and the lock's short sha256."""
        return top_of(NAME, self.lock)


def top_of(name: str, lock: Path) -> str:
    """``NAME-<first 8 hex digits of the lock's sha256>``, as pack names a bundle's top folder."""
    return f"{name}-{hashlib.sha256(lock.read_bytes()).hexdigest()[:8]}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("world")
    env = {"PIP_CONFIG_FILE": os.devnull, "NO_PROXY": "127.0.0.1,localhost"}
    with IndexServer(root / "index") as server, pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        for var in ("PIP_INDEX_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "SOURCE_DATE_EPOCH"):
            mp.delenv(var, raising=False)
        server.add_index("main")
        add = server.add_wheel
        infos = [
            add("main", "alpha", "1.0", requires_dist=["beta>=2", "delta[fast]>=1", "native",
                                                        "backport; python_version < '3.12'"], upload_time=T0),
            add("main", "beta", "2.1", requires_dist=["gamma", "winonly; sys_platform == 'win32'"], upload_time=T0),
            add("main", "gamma", "0.3", upload_time=T0),
            add("main", "delta", "1.0", provides_extra=["fast"], requires_dist=["epsilon; extra == 'fast'"], upload_time=T0),
            add("main", "epsilon", "1.0", upload_time=T_MAX),
            add("main", "backport", "1.0", upload_time=T0),
            add("main", "native", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64", upload_time=T0),
            add("main", "native", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64", upload_time=T0),
            add("main", "pip", "24.0", requires_python=">=3.8", upload_time=T0),
        ]
        files = {i.filename: i.path for i in infos}
        recipe = root / "kit.toml"
        recipe.write_text(RECIPE)
        cache = root / "cache"
        lock = root / "lock" / "pylock.toml"
        lock.parent.mkdir()
        url = server.index_url("main")
        assert cli("lock", recipe, "--index-url", url, "--cache-dir", cache, "-q", "-o", lock).rc == 0
        req_lock = root / "req-lock" / "pylock.toml"
        req_lock.parent.mkdir()
        assert cli("lock", "alpha", "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.12",
                   "--exclude-newer", EXCLUDE_NEWER, "--index-url", url, "--cache-dir", cache, "-q", "-o", req_lock).rc == 0
        for lk in (lock, req_lock):
            r = cli("fetch", lk, "--cache-dir", cache, "-q")
            assert r.rc == 0, r.err
        packed = {}
        for fmt in FORMATS:
            out = root / "packed" / fmt / f"{NAME}.{fmt}"
            out.parent.mkdir(parents=True)
            # no pre-compiled bytecode: the layout tests list every member; tests/test_bytecode.py has it
            r = cli("pack", lock, "--cache-dir", cache, "-o", out, "-q", "--no-bytecode")
            assert r.rc == 0, r.err
            packed[fmt] = out
        yield World(root, server, recipe, lock, req_lock, cache, files, packed)


@pytest.fixture(scope="module")
def unpacked(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tar.zst bundle, extracted once (read-only for the tests)."""
    return extract(world.packed["tar.zst"], tmp_path_factory.mktemp("unpacked"))
