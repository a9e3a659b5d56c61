"""``wheelhouse verify`` and ``inspect`` reading bundles back (``bundler.bundle``).

The packed world of packworld.py is read back as archives in every format and as an unpacked
directory; archives are tampered with through ``tarfile`` (never through ``bundler``): ``verify``
must catch every kind of damage an archive layer lets through, refuse foreign members, and never
trace on a path that is not a bundle. Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from support.packworld import CP311, CP312, FORMATS, NAME, World, cli, flip, sha256, tar_entries, unpacked, world, write_archive

from support.hermetic import hermetic

__all__ = ["unpacked", "world"]  # module-scoped fixtures, built once for this module


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, "SOURCE_DATE_EPOCH")


# ---------------------------------------------------------------------------------------------
# verify


@pytest.mark.parametrize("fmt", FORMATS)
def test_verify_passes_on_a_good_archive(world: World, fmt: str) -> None:
    r = cli("verify", world.packed[fmt])
    assert r.rc == 0, r.err
    assert "OK" in r.out and CP311 in r.out and CP312 in r.out


def test_verify_passes_on_the_unpacked_directory(unpacked: Path) -> None:
    r = cli("verify", unpacked)
    assert r.rc == 0, r.err


def _kit_tar(world: World) -> bytes:
    """The plain tar bundle with its top folder (``kit-<lock hash>``, which varies with the index's
    port) renamed to ``kit``, so that members can be named when tests are collected."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.GNU_FORMAT) as tar:
        for m, d in tar_entries(world.packed["tar"].read_bytes()):
            m.name = NAME + "/" + m.name.partition("/")[2] if "/" in m.name.rstrip("/") else NAME
            tar.addfile(m, io.BytesIO(d) if d is not None else None)
    return buf.getvalue()


def _tampered(world: World, tmp_path: Path, name: str,
              change: Callable[[list[tuple[tarfile.TarInfo, bytes | None]]], list[tuple[tarfile.TarInfo, bytes | None]]]) -> Path:
    return write_archive(change(tar_entries(_kit_tar(world))), tmp_path / name)


def _member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = b"", linkname: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o644
    return info, (data if kind == tarfile.REGTYPE else None)


def _verify_fails(archive: Path, *needles: str) -> str:
    r = cli("verify", archive)
    assert r.rc == 1, r.out + r.err
    for needle in needles:
        assert needle in r.err, (needle, r.err)
    return r.err


@pytest.mark.parametrize("suffix", ["tar", "tar.zst", "tar.gz"])
def test_verify_catches_a_flipped_byte_in_a_wheel(world: World, tmp_path: Path, suffix: str) -> None:
    gamma = f"{NAME}/wheels/gamma-0.3-py3-none-any.whl"
    good = world.files["gamma-0.3-py3-none-any.whl"].read_bytes()
    bad = flip(good, 100)
    archive = _tampered(world, tmp_path, f"{NAME}.{suffix}",
                        lambda es: [(m, bad if m.name == gamma else d) for m, d in es])
    _verify_fails(archive, "wheels/gamma-0.3-py3-none-any.whl", sha256(good), sha256(bad))


def test_verify_catches_a_flipped_byte_in_the_unpacked_directory(unpacked: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(unpacked, tmp_path / NAME))
    wheel = copy / "wheels" / "beta-2.1-py3-none-any.whl"
    good = wheel.read_bytes()
    wheel.write_bytes(flip(good, 50))
    _verify_fails(copy, "wheels/beta-2.1-py3-none-any.whl", sha256(good), sha256(wheel.read_bytes()))


@pytest.mark.parametrize("with_cfg", [True, False], ids=["venv", "plain-folder"])
def test_verify_refuses_a_venv_inside_the_bundle_directory(unpacked: Path, tmp_path: Path, with_cfg: bool) -> None:
    # A planted venv with a trojan python: install.sh never runs it, and verify names it as extra.
    copy = Path(shutil.copytree(unpacked, tmp_path / NAME))
    (copy / "venv" / "bin").mkdir(parents=True)
    (copy / "venv" / "bin" / "python").write_text("#!/bin/sh\necho trojan\n")
    if with_cfg:
        (copy / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    err = _verify_fails(copy, "venv/")
    assert ("virtual environment inside the bundle directory (2 files" in err) is with_cfg
    assert ("venv/bin/python" not in err) is with_cfg  # one line for a folder, or the one file it holds
    (copy / "venv" / "__pycache__").mkdir()
    (copy / "venv" / "__pycache__" / "x.pyc").write_bytes(b"x")  # __pycache__ alone is skipped, at any depth
    assert err.count("venv/") == _verify_fails(copy, "venv/").count("venv/")
    shutil.rmtree(copy / "venv")
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "install.cpython-311.pyc").write_bytes(b"x")
    assert cli("verify", copy).rc == 0


def test_verify_escapes_control_characters_in_what_it_prints(unpacked: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(unpacked, tmp_path / NAME))
    (copy / "wheels" / "evil\x1b[2K\nfake line").write_bytes(b"x")
    err = _verify_fails(copy, "evil\\x1b[2K\\nfake line is in the bundle but not in bundle.json")
    assert "\x1b" not in err and "\nfake line" not in err


@pytest.mark.parametrize("kind", ["extra-file", "symlink", "missing-file"])
def test_verify_catches_changes_to_the_unpacked_directory(unpacked: Path, tmp_path: Path, kind: str) -> None:
    copy = Path(shutil.copytree(unpacked, tmp_path / NAME))
    if kind == "extra-file":
        (copy / "wheels" / "evil-1.0-py3-none-any.whl").write_bytes(b"x")
        _verify_fails(copy, "evil-1.0-py3-none-any.whl", "not in bundle.json")
    elif kind == "symlink":
        (copy / "wheels" / "gamma-0.3-py3-none-any.whl").unlink()
        (copy / "wheels" / "gamma-0.3-py3-none-any.whl").symlink_to(unpacked / "wheels" / "gamma-0.3-py3-none-any.whl")
        _verify_fails(copy, "gamma-0.3-py3-none-any.whl", "link")
    else:
        (copy / "install.py").unlink()
        _verify_fails(copy, "install.py", "missing")


def test_verify_catches_a_truncated_zstd_stream(world: World, tmp_path: Path) -> None:
    data = world.packed["tar.zst"].read_bytes()
    cut = tmp_path / f"{NAME}.tar.zst"
    cut.write_bytes(data[: len(data) // 2])
    err = _verify_fails(cut)
    assert re.search(r"truncated|damaged|missing", err)


def test_verify_catches_a_damaged_zstd_checksum(world: World, tmp_path: Path) -> None:
    data = world.packed["tar.zst"].read_bytes()
    bad = tmp_path / f"{NAME}.tar.zst"
    bad.write_bytes(flip(data, len(data) - 2))  # inside the last frame's content checksum
    _verify_fails(bad, "zstd")


def test_verify_catches_a_truncated_gzip_stream(world: World, tmp_path: Path) -> None:
    data = world.packed["tar.gz"].read_bytes()
    cut = tmp_path / f"{NAME}.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    _verify_fails(cut)


@pytest.mark.parametrize("suffix", ["tar", "tar.zst"])
@pytest.mark.parametrize("cut_before,missing", [
    (f"{NAME}/requirements.txt", ["requirements.txt", "wheels/alpha-1.0-py3-none-any.whl", "simple/index.html"]),
    (f"{NAME}/wheels/pip-24.0-py3-none-any.whl", ["wheels/pip-24.0-py3-none-any.whl"]),
    (f"{NAME}/bundle.json", ["bundle.json is missing"]),
])
def test_verify_catches_a_tar_cut_at_a_member_boundary(world: World, tmp_path: Path, suffix: str, cut_before: str,
                                                         missing: list[str]) -> None:
    plain = _kit_tar(world)
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tar:
        offset = tar.getmember(cut_before).offset
    raw = plain[:offset]  # every member before it whole, no end-of-archive blocks: reads back "fine"
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r|") as tar:
        assert cut_before not in [m.name for m in tar]
    archive = tmp_path / f"{NAME}.{suffix}"
    archive.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(raw) if suffix == "tar.zst" else raw)
    err = _verify_fails(archive, *missing)
    if cut_before != f"{NAME}/bundle.json":
        assert "listed in bundle.json but missing" in err


@pytest.mark.parametrize("case,member,needles", [
    ("extra", _member(f"{NAME}/wheels/evil-1.0-py3-none-any.whl", data=b"evil"), ["evil-1.0-py3-none-any.whl", "not in bundle.json"]),
    ("symlink", _member(f"{NAME}/wheels/link.whl", tarfile.SYMTYPE, linkname="/etc/passwd"), ["link.whl", "link"]),
    ("hardlink", _member(f"{NAME}/hard", tarfile.LNKTYPE, linkname=f"{NAME}/install.sh"), [f"{NAME}/hard", "link"]),
    ("device", _member(f"{NAME}/dev", tarfile.CHRTYPE), [f"{NAME}/dev", "device"]),
    ("dotdot", _member(f"{NAME}/../evil.sh", data=b"rm -rf ~"), ["../evil.sh", "unsafe"]),
    ("absolute", _member("/tmp/evil.sh", data=b"rm -rf ~"), ["/tmp/evil.sh", "unsafe"]),
    ("other-top", _member("other/evil.sh", data=b"rm -rf ~"), ["other/evil.sh", "outside"]),
    ("duplicate", _member(f"{NAME}/install.sh", data=b"rm -rf ~"), ["install.sh", "twice"]),
])
def test_verify_refuses_foreign_members(world: World, tmp_path: Path, case: str,
                                        member: tuple[tarfile.TarInfo, bytes | None], needles: list[str]) -> None:
    archive = _tampered(world, tmp_path, f"{NAME}.tar", lambda es: [*es, member])
    _verify_fails(archive, *needles)


@pytest.mark.parametrize("suffix", ["tar", "tar.gz"])
def test_verify_names_an_unsafe_member_and_the_bundle_once(world: World, tmp_path: Path, suffix: str) -> None:
    fifo = _member(f"{NAME}/wheels/pipe", tarfile.FIFOTYPE)
    archive = _tampered(world, tmp_path, f"{NAME}.{suffix}", lambda es: [*es[:3], fifo, *es[3:]])
    err = _verify_fails(archive, f"unsafe member '{NAME}/wheels/pipe'", "fifo")
    assert err.count(str(archive)) == 1


def test_verify_catches_a_manifest_that_lies_about_dependencies(world: World, tmp_path: Path) -> None:
    """A bundle.json edited to drop a dependency (with every hash made consistent) is still caught."""
    def change(es: list[tuple[tarfile.TarInfo, bytes | None]]) -> list[tuple[tarfile.TarInfo, bytes | None]]:
        out = []
        for m, d in es:
            if m.name == f"{NAME}/bundle.json":
                doc = json.loads(d or b"")
                for t in doc["targets"]:
                    for p in t["packages"]:
                        if p["name"] == "beta":
                            p["requires-dist"] = []
                d = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
            out.append((m, d))
        return out

    archive = _tampered(world, tmp_path, f"{NAME}.tar", change)
    _verify_fails(archive, "wheels/beta-2.1-py3-none-any.whl", "METADATA")


@pytest.mark.parametrize("command", ["inspect", "verify"])
@pytest.mark.parametrize("kind", ["missing", "not-a-bundle", "empty", "lock-file"])
def test_inspect_and_verify_bad_paths_without_traceback(world: World, tmp_path: Path, command: str, kind: str) -> None:
    path = tmp_path / "b.tar.zst"
    if kind == "not-a-bundle":
        path.write_bytes(os.urandom(4096))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "lock-file":
        path = world.lock
    r = cli(command, path)
    assert r.rc == 1, (r.out, r.err)
    assert str(path) in r.err or path.name in r.err
    if kind == "missing":
        assert "no such bundle" in r.err


def test_commands_via_the_installed_entry_point_do_not_trace(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("wheelhouse")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bundler"]
    for sub in ("inspect", "verify"):
        r = subprocess.run([*cmd, sub, str(tmp_path / "nope.tar.zst")], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "no such bundle" in r.stderr and "Traceback" not in r.stderr
