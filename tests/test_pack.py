"""``wheelhouse pack``, ``build`` and ``inspect`` against the loopback index.

The module-wide world of packworld.py locks a small closure (a dependency chain, an extra, a
marker-only dependency, a binary wheel per CPython) for two targets, fetches it into a cache, and
packs it. The tests read the archives back with ``tarfile``/``zstandard``/``gzip`` (never with
``bundler.bundle``), check the layout, the manifest, SHA256SUMS and the static index,
byte-for-byte reproducibility, and the completeness proof and cache checks that stop a pack before
anything is written. Reading bundles back (``verify``) is test_bundle.py. Nothing here talks to
anything but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import pathname2url

import pytest
from bundler.lock import read_lock
from support.packworld import (top_of, CP311, CP312, FORMATS, NAME, PROJECTS, T_MAX, WHEELS, Run, World, cli, flip, raw_tar, sha256,
                       tar_entries, unpacked, world)
from support.wheelgen import make_wheel

from bundler.cache import BlobStore
from bundler.pack import pack
from support.hermetic import hermetic

__all__ = ["unpacked", "world"]  # module-scoped fixtures, built once for this module


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, "SOURCE_DATE_EPOCH")


# ---------------------------------------------------------------------------------------------
# helpers




def zstd_frames(data: bytes) -> list[dict[str, int | bool]]:
    """Walk a zstd stream frame by frame (RFC 8878) and return each frame's header facts."""
    frames: list[dict[str, int | bool]] = []
    pos = 0
    while pos < len(data):
        magic = int.from_bytes(data[pos : pos + 4], "little")
        if 0x184D2A50 <= magic <= 0x184D2A5F:  # skippable frame
            pos += 8 + int.from_bytes(data[pos + 4 : pos + 8], "little")
            continue
        assert magic == 0xFD2FB528, f"no zstd frame at offset {pos}"
        fhd = data[pos + 4]
        fcs_flag, single_segment, checksum, dict_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
        assert (fhd >> 3) & 1 == 0, "reserved bit set"
        p = pos + 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[dict_flag]
        p += ((1 if single_segment else 0), 2, 4, 8)[fcs_flag]
        blocks = 0
        while True:
            header = int.from_bytes(data[p : p + 3], "little")
            p += 3
            last, kind, size = header & 1, (header >> 1) & 3, header >> 3
            assert kind != 3, "reserved block type"
            p += 1 if kind == 1 else size
            blocks += 1
            if last:
                break
        p += 4 if checksum else 0
        frames.append({"checksum": bool(checksum), "blocks": blocks, "dict": dict_flag != 0})
        pos = p
    assert pos == len(data), "trailing bytes after the last frame"
    return frames


def member_names(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> list[str]:
    """Member names as stored, directories with their trailing slash (tarfile strips it)."""
    return [m.name + "/" if m.isdir() else m.name for m, _ in entries]


def listing(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*"))


def edit_package(lock_text: str, project: str, change: Callable[[str], str | None]) -> str:
    """Apply ``change`` to the ``[[packages]]`` block of ``project`` (None drops it)."""
    head, sep, tail = lock_text.partition("\n[tool.wheelhouse]\n")
    parts = head.split("\n[[packages]]\n")
    out = [parts[0]]
    hits = 0
    for part in parts[1:]:
        if part.startswith(f'name = "{project}"\n'):
            hits += 1
            new = change(part)
            if new is not None:
                out.append(new)
        else:
            out.append(part)
    assert hits == 1, f"{project} is not in the lock exactly once"
    return "\n[[packages]]\n".join(out) + sep + tail


def swap_wheel(block: str, old: Path, new: Path) -> str:
    """Point a package block at another wheel file: name, url, size and sha256."""
    old_sha, new_sha = sha256(old.read_bytes()), sha256(new.read_bytes())
    assert old_sha in block
    block = block.replace(old_sha, new_sha).replace(old.name, new.name)
    return re.sub(rf"^size = {old.stat().st_size}$", f"size = {new.stat().st_size}", block, flags=re.MULTILINE)


# ---------------------------------------------------------------------------------------------
# the world: one index, one recipe lock (two targets), one requirement lock (one target), one cache




def fresh_cache(world: World, dest: Path) -> Path:
    """A private copy of the world's cache, for tests that damage it."""
    shutil.copytree(world.cache, dest)
    return dest


def blob(cache: Path, sha: str) -> Path:
    return BlobStore(cache).path(sha)


# ---------------------------------------------------------------------------------------------
# layout


def expected_members(top: str) -> list[str]:
    names = [f"{top}/", *(f"{top}/{f}" for f in ("SHA256SUMS", "bundle.json", "capture_profile.py", "install.py",
                                                   "install.sh", "publish.py", "pylock.toml", "requirements.txt", "sbom.cdx.json")),
             f"{top}/simple/"]
    for p in PROJECTS:
        names += [f"{top}/simple/{p}/", f"{top}/simple/{p}/index.html"]
    names += [f"{top}/simple/index.html", f"{top}/wheels/", *(f"{top}/wheels/{w}" for w in WHEELS)]
    return sorted(names)


@pytest.mark.parametrize("fmt", FORMATS)
def test_layout_exact_members_modes_owners_order(world: World, fmt: str) -> None:
    entries = tar_entries(raw_tar(world.packed[fmt]))
    names = member_names(entries)
    assert names == expected_members(world.top)  # exactly these, and in this (sorted) order
    mtime = int(T_MAX.timestamp())  # the lock's newest upload: the recipe sets no exclude-newer
    for name, (m, _) in zip(names, entries):
        assert m.type == (tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE), name
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", ""), name
        assert m.mtime == mtime, name
        assert m.pax_headers == {}, name
        assert m.mode == (0o755 if m.isdir() or name == f"{world.top}/install.sh" else 0o644), name


def test_system_tar_lists_the_same_members(world: World) -> None:
    if shutil.which("tar") is None or "GNU tar" not in subprocess.run(["tar", "--version"], capture_output=True,
                                                                     text=True).stdout:
        pytest.skip("needs GNU tar (its -tv listing is parsed)")
    for fmt in ("tar.gz", "tar") + (("tar.zst",) if shutil.which("zstd") else ()):
        out = subprocess.run(["tar", "-tvf", str(world.packed[fmt])], capture_output=True, text=True, check=True).stdout
        assert [line.split()[-1] for line in out.splitlines()] == expected_members(world.top)
        assert all(" 0/0 " in line for line in out.splitlines())


@pytest.mark.parametrize("output,top", [("my-bundle.tar.zst", "my-bundle"), ("my-bundle.tgz", "my-bundle"),
                                        ("offline kit.tar", "offline-kit"), ("bundle", "bundle"),
                                        ("L" * 120 + ".tar", "L" * 120)])  # names past tar's 100 bytes
def test_top_directory_is_the_output_stem_without_a_recipe_name(world: World, tmp_path: Path, output: str, top: str) -> None:
    r = cli("pack", world.req_lock, "--cache-dir", world.cache, "-o", tmp_path / output, "-q", "--no-bytecode")
    assert r.rc == 0, r.err
    names = member_names(tar_entries(raw_tar(tmp_path / output)))
    top = top_of(top, world.req_lock)  # the stem, then the lock's identity
    assert {n.split("/")[0] for n in names} == {top}
    assert names[0] == f"{top}/"
    assert cli("verify", tmp_path / output).rc == 0


def test_output_file_mode_follows_the_umask(world: World, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        r = cli("pack", world.lock, "--cache-dir", world.cache, "-o", tmp_path / "b.tar.zst", "-q", "--no-bytecode")
    finally:
        os.umask(old)
    assert r.rc == 0, r.err
    assert (tmp_path / "b.tar.zst").stat().st_mode & 0o777 == 0o644


def test_gzip_header_has_no_name_and_the_fixed_mtime(world: World) -> None:
    head = world.packed["tar.gz"].read_bytes()[:10]
    assert head[:3] == b"\x1f\x8b\x08"
    assert head[3] & 0x08 == 0  # FNAME not set: no file name recorded
    assert int.from_bytes(head[4:8], "little") == int(T_MAX.timestamp())


# ---------------------------------------------------------------------------------------------
# what is inside


def test_bundle_json_describes_every_file(world: World, unpacked: Path) -> None:
    m = json.loads((unpacked / "bundle.json").read_text())
    assert m["format"] == "wheelhouse-bundle" and m["format-version"] == 1
    assert m["name"] == NAME
    assert re.fullmatch(r"wheelhouse \S+", m["tool"])
    assert m["lock-sha256"] == sha256(world.lock.read_bytes())
    assert m["created"] == "2024-06-01T00:00:00Z"
    assert m["smoke"] == ["import alpha, beta, gamma"]
    assert m["requirements"] == ["alpha"]
    files = {p.relative_to(unpacked).as_posix(): p for p in unpacked.rglob("*") if p.is_file()}
    assert set(m["files"]) == set(files) - {"bundle.json"}
    for rel, entry in m["files"].items():
        data = files[rel].read_bytes()
        assert entry == {"size": len(data), "sha256": sha256(data)}, rel
    for rel, src in world.files.items():  # the wheels are the index's bytes
        assert (unpacked / "wheels" / rel).read_bytes() == src.read_bytes()
    # The bundled lock is the lock pack read, its wheels made path entries into wheels/ (item 5 of issue 12):
    # read back from the unpacked folder, every wheel resolves to the bundle's own copy.
    bundled = read_lock(unpacked / "pylock.toml")
    original = read_lock(world.lock)
    assert [(p.name, p.version) for p in bundled.packages] == [(p.name, p.version) for p in original.packages]
    for pkg in bundled.packages:
        for w in pkg.wheels:
            assert w.path == f"wheels/{w.filename}" and w.url == (unpacked / "wheels" / w.filename).resolve().as_uri()
    assert {t: (v, w.path) for t, (v, w) in bundled.bootstrap.items()} == {
        t: (v, f"wheels/{w.filename}") for t, (v, w) in original.bootstrap.items()}
    assert b"\nurl = " not in (unpacked / "pylock.toml").read_bytes()  # no wheel is fetched from anywhere
    assert [t["name"] for t in m["targets"]] == [CP311, CP312]
    for t, py in zip(m["targets"], ("cp311", "cp312")):
        assert t["pip"] == "wheels/pip-24.0-py3-none-any.whl"
        assert t["profile"]["name"] == t["name"]
        assert f"{py}-{py}-manylinux_2_28_x86_64" in t["profile"]["tags"]
        pkgs = {p["name"]: p for p in t["packages"]}
        want = {"alpha", "beta", "gamma", "delta", "epsilon", "native"} | ({"backport"} if py == "cp311" else set())
        assert set(pkgs) == want
        assert pkgs["native"]["wheel"] == f"wheels/native-1.0-{py}-{py}-manylinux_2_17_x86_64.whl"
        assert pkgs["alpha"]["requires-dist"] == ["beta>=2", "delta[fast]>=1", "native", 'backport; python_version < "3.12"']
        assert pkgs["delta"]["requires-dist"] == ['epsilon; extra == "fast"']
        assert all(p["version"] and p["wheel"] in m["files"] for p in pkgs.values())


def test_requirements_txt_pins_every_wheel_with_its_hash(world: World, unpacked: Path) -> None:
    text = (unpacked / "requirements.txt").read_text()
    assert (unpacked / "requirements.txt").read_bytes() == world.lock.with_name("requirements.txt").read_bytes()
    for fn, src in world.files.items():
        if not fn.startswith("pip-"):
            assert f"--hash=sha256:{sha256(src.read_bytes())}" in text, fn
    assert "pip==" not in text  # the bootstrap pip is the installer's, not part of the set


def test_sha256sums_is_sha256sum_compatible(unpacked: Path) -> None:
    lines = (unpacked / "SHA256SUMS").read_text().splitlines()
    listed = [line.split("  ", 1)[1] for line in lines]
    assert listed == sorted(listed)
    on_disk = {p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {"SHA256SUMS", "bundle.json"}
    for line in lines:
        digest, rel = line.split("  ", 1)
        assert re.fullmatch(r"[0-9a-f]{64}", digest) and sha256((unpacked / rel).read_bytes()) == digest
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "-c", "--strict", "--quiet", "SHA256SUMS"], cwd=unpacked, check=True)


def test_simple_index_links_resolve_to_the_wheels_with_their_hashes(unpacked: Path) -> None:
    simple = unpacked / "simple"
    root = (simple / "index.html").read_text()
    assert re.findall(r'href="([^"]+)/"', root) == PROJECTS
    seen = set()
    for project in PROJECTS:
        page = simple / project / "index.html"
        base = "file:" + pathname2url(str(page))
        for href in re.findall(r'href="([^"]+)"', page.read_text()):
            url, _, fragment = urljoin(base, href).partition("#")
            target = Path(unquote(urlsplit(url).path))
            assert target.parent == unpacked / "wheels" and target.is_file(), href
            assert fragment == "sha256=" + sha256(target.read_bytes())
            seen.add(target.name)
    assert seen == set(WHEELS)
    assert 'data-requires-python="&gt;=3.8"' in (simple / "pip" / "index.html").read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine != "x86_64"
                    or sys.version_info[:2] not in ((3, 11), (3, 12)), reason="the world's binary wheel is for x86_64 Linux cp311/cp312")
def test_pip_installs_from_the_simple_index(unpacked: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--index-url", (unpacked / "simple").as_uri(),
                        "--only-binary", ":all:", "--no-cache-dir", "--target", str(target),
                        "-r", str(unpacked / "requirements.txt")], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    for pkg in ("alpha", "beta", "gamma", "delta", "epsilon", "native", "backport"):
        assert (target / pkg / "__init__.py").is_file(), pkg


# ---------------------------------------------------------------------------------------------
# reproducibility


def test_same_lock_other_cache_other_time_same_bytes(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other-cache"
    shutil.copytree(world.cache / "blobs", other / "blobs", copy_function=shutil.copyfile)  # new files, new mtimes
    later = time.time() + 3 * 86400
    for p in other.rglob("*"):
        os.utime(p, (later, later))
    (tmp_path / "b").mkdir()
    time.sleep(1.1)
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o077)
    try:
        for fmt in FORMATS:
            r = cli("pack", world.lock, "--cache-dir", other, "-o", f"b/{NAME}.{fmt}", "-q", "--no-bytecode")
            assert r.rc == 0, r.err
    finally:
        os.umask(old)
    for fmt in FORMATS:
        assert (tmp_path / "b" / f"{NAME}.{fmt}").read_bytes() == world.packed[fmt].read_bytes(), fmt
    # every format holds the very same tar stream
    plain = world.packed["tar"].read_bytes()
    assert len(plain) % 10240 == 0
    assert raw_tar(world.packed["tar.zst"]) == plain
    assert raw_tar(world.packed["tar.gz"]) == plain


def test_pack_function_reports_the_archive_it_wrote(world: World, tmp_path: Path) -> None:
    result = pack(world.lock, BlobStore(world.cache), tmp_path / f"{NAME}.tar.zst", bytecode=None)
    data = (tmp_path / f"{NAME}.tar.zst").read_bytes()
    assert (result.sha256, result.size) == (sha256(data), len(data))
    assert data == world.packed["tar.zst"].read_bytes()
    assert result.manifest.name == NAME


def test_zstd_frames_carry_checksums_and_do_not_depend_on_threads(world: World, tmp_path: Path) -> None:
    data = world.packed["tar.zst"].read_bytes()
    frames = zstd_frames(data)
    assert frames and all(f["checksum"] for f in frames)
    assert not any(f["dict"] for f in frames)
    outs = {}
    for threads in (1, 2, 4):
        out = tmp_path / str(threads) / f"{NAME}.tar.zst"
        out.parent.mkdir()
        pack(world.lock, BlobStore(world.cache), out, threads=threads, bytecode=None)
        outs[threads] = out.read_bytes()
    assert outs[1] == outs[2] == outs[4] == data
    if shutil.which("zstd"):
        subprocess.run(["zstd", "-q", "-t", str(world.packed["tar.zst"])], check=True)


def test_multithreaded_zstd_output_is_the_same_for_any_worker_count_on_many_jobs(world: World, tmp_path: Path) -> None:
    """With 24 MB of data zstd splits the stream into several jobs; the bytes must still not depend on workers."""
    old = world.files["gamma-0.3-py3-none-any.whl"]
    big = make_wheel(tmp_path / "wheels", "gamma", "0.3", files={"gamma/data.bin": os.urandom(8 << 20) * 3})
    cache = tmp_path / "cache"
    shutil.copytree(world.cache / "blobs", cache / "blobs")
    shutil.copyfile(big, tmp_path / "blob")
    BlobStore(cache).publish(tmp_path / "blob", sha256(big.read_bytes()))
    lock = tmp_path / "pylock.toml"
    lock.write_text(edit_package(world.lock.read_text(), "gamma", lambda block: swap_wheel(block, old, big)))
    outs = []
    for threads in (1, 2, 3):
        out = tmp_path / str(threads) / f"{NAME}.tar.zst"
        out.parent.mkdir()
        pack(lock, BlobStore(cache), out, threads=threads, bytecode=None)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    assert all(f["checksum"] for f in zstd_frames(outs[0]))


def test_level_changes_the_bytes_not_the_content(world: World, tmp_path: Path) -> None:
    out = tmp_path / f"{NAME}.tar.zst"
    assert cli("pack", world.lock, "--cache-dir", world.cache, "-o", out, "--level", "19", "-q", "--no-bytecode").rc == 0
    assert out.read_bytes() != world.packed["tar.zst"].read_bytes()
    assert raw_tar(out) == world.packed["tar"].read_bytes()


def test_source_date_epoch_sets_every_mtime(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    out = tmp_path / f"{NAME}.tar.gz"
    assert cli("pack", world.lock, "--cache-dir", world.cache, "-o", out, "-q", "--no-bytecode").rc == 0
    entries = tar_entries(raw_tar(out))
    assert {m.mtime for m, _ in entries} == {1700000000}
    assert int.from_bytes(out.read_bytes()[4:8], "little") == 1700000000
    manifest = json.loads(next(d for m, d in entries if m.name == f"{world.top}/bundle.json"))
    assert manifest["created"] == "2023-11-14T22:13:20Z"
    assert out.read_bytes() != world.packed["tar.gz"].read_bytes()


def test_bad_source_date_epoch_is_refused(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    r = cli("pack", world.lock, "--cache-dir", world.cache, "-o", tmp_path / "b.tar", "-q", "--no-bytecode")
    assert r.rc == 1 and "SOURCE_DATE_EPOCH" in r.err and "yesterday" in r.err
    assert listing(tmp_path) == []


def test_exclude_newer_of_the_lock_is_the_mtime(world: World, tmp_path: Path) -> None:
    out = tmp_path / "x.tar"
    assert cli("pack", world.req_lock, "--cache-dir", world.cache, "-o", out, "-q", "--no-bytecode").rc == 0
    stamp = int(datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp())
    assert {m.mtime for m, _ in tar_entries(out.read_bytes())} == {stamp}


# ---------------------------------------------------------------------------------------------
# nothing is written unless everything is right


def _pack_fails(lock: Path, cache: Path, tmp_path: Path, *, fmt: str = "tar.zst") -> Run:
    outdir = tmp_path / "out"
    outdir.mkdir()
    r = cli("pack", lock, "--cache-dir", cache, "-o", outdir / f"{NAME}.{fmt}")
    assert r.rc == 1, r.err
    assert listing(outdir) == []  # no bundle, no temporary file
    return r


@pytest.mark.parametrize("project,needed_by", [("gamma", "beta 2.1"), ("epsilon", "delta 1.0[fast]"),
                                               ("backport", "alpha 1.0")])
def test_missing_dependency_fails_the_completeness_proof(world: World, tmp_path: Path, project: str, needed_by: str) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text(edit_package(world.lock.read_text(), project, lambda block: None))
    r = _pack_fails(lock, world.cache, tmp_path)
    assert "incomplete" in r.err and project in r.err and needed_by in r.err
    assert f"incomplete for target {CP311}" in r.err  # the first target that fails is named


def test_dependency_missing_for_one_target_only(world: World, tmp_path: Path) -> None:
    line = f'{CP312} = "gamma-0.3-py3-none-any.whl"\n'
    lock = tmp_path / "pylock.toml"
    lock.write_text(edit_package(world.lock.read_text(), "gamma", lambda block: block.replace(line, "", 1)
                                 if line in block else pytest.fail("no cp312 entry for gamma")))
    r = _pack_fails(lock, world.cache, tmp_path)
    assert f"incomplete for target {CP312}" in r.err and "gamma (needed by beta 2.1)" in r.err
    assert CP311 not in r.err


def test_target_entry_naming_an_unlisted_wheel_is_an_error(world: World, tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text(edit_package(world.lock.read_text(), "gamma", lambda block: block.replace(
        f'{CP312} = "gamma-0.3-py3-none-any.whl"', f'{CP312} = "gamma-9.9-py3-none-any.whl"')))
    r = _pack_fails(lock, world.cache, tmp_path)
    assert "gamma-9.9-py3-none-any.whl" in r.err


def _pack_with_gamma_replaced(world: World, tmp_path: Path, new: Path) -> Run:
    """Pack a lock whose gamma wheel is ``new`` (under the old file name when it has the same one),
    with ``new`` published in a fresh cache; the pack is expected to fail."""
    old = world.files["gamma-0.3-py3-none-any.whl"]
    cache = fresh_cache(world, tmp_path / "cache")
    shutil.copyfile(new, tmp_path / "blob")
    BlobStore(cache).publish(tmp_path / "blob", sha256(new.read_bytes()))
    lock = tmp_path / "pylock.toml"
    lock.write_text(edit_package(world.lock.read_text(), "gamma", lambda block: swap_wheel(block, old, new)))
    return _pack_fails(lock, cache, tmp_path)


def test_wheel_for_another_platform_fails_the_completeness_proof(world: World, tmp_path: Path) -> None:
    new = make_wheel(tmp_path / "wheels", "gamma", "0.3", tag="cp39-cp39-win_amd64")
    r = _pack_with_gamma_replaced(world, tmp_path, new)
    assert f"gamma-0.3-cp39-cp39-win_amd64.whl does not install on {CP311}" in r.err


def test_wheel_whose_requires_python_excludes_the_target_fails(world: World, tmp_path: Path) -> None:
    new = make_wheel(tmp_path / "wheels", "gamma", "0.3", requires_python=">=3.13")
    r = _pack_with_gamma_replaced(world, tmp_path, new)
    assert "gamma 0.3 requires Python >=3.13" in r.err


def test_wheel_that_is_another_project_fails(world: World, tmp_path: Path) -> None:
    impostor = make_wheel(tmp_path / "impostor", "gamma", "0.4")
    renamed = tmp_path / "wheels" / "gamma-0.3-py3-none-any.whl"
    renamed.parent.mkdir()
    shutil.copyfile(impostor, renamed)
    r = _pack_with_gamma_replaced(world, tmp_path, renamed)
    assert "gamma-0.3-py3-none-any.whl says it is gamma 0.4" in r.err


def test_missing_blob_asks_for_fetch(world: World, tmp_path: Path) -> None:
    cache = fresh_cache(world, tmp_path / "cache")
    blob(cache, sha256(world.files["gamma-0.3-py3-none-any.whl"].read_bytes())).unlink()
    r = _pack_fails(world.lock, cache, tmp_path)
    assert "gamma-0.3-py3-none-any.whl" in r.err and "not in the cache" in r.err
    assert f"wheelhouse fetch {world.lock}" in r.err


@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_blob_is_a_hash_mismatch(world: World, tmp_path: Path, fmt: str) -> None:
    cache = fresh_cache(world, tmp_path / "cache")
    sha = sha256(world.files["gamma-0.3-py3-none-any.whl"].read_bytes())
    path = blob(cache, sha)
    path.write_bytes(flip(path.read_bytes()))
    r = _pack_fails(world.lock, cache, tmp_path, fmt=fmt)
    assert "hash mismatch" in r.err and "gamma-0.3-py3-none-any.whl" in r.err and sha in r.err


def test_lock_without_bootstrap_pip_is_refused(world: World, tmp_path: Path) -> None:
    text = world.lock.read_text()
    text = re.sub(r"\n\[tool\.wheelhouse\.targets\.bootstrap\]\n.*?(?=\n\[\[|\n\[tool\.wheelhouse\.targets\.profile|\Z)", "\n",
                  text, flags=re.DOTALL)
    assert "bootstrap" not in text
    lock = tmp_path / "pylock.toml"
    lock.write_text(text)
    r = _pack_fails(lock, world.cache, tmp_path)
    assert "bootstrap pip" in r.err


def test_bad_level_and_format(world: World, tmp_path: Path) -> None:
    r = cli("pack", world.lock, "--cache-dir", world.cache, "-o", tmp_path / "b.tar.zst", "--level", "99")
    assert r.rc == 1 and "--level 99" in r.err
    r = cli("pack", world.lock, "--cache-dir", world.cache, "-o", tmp_path / "b.tar.zst", "--format", "zip")
    assert r.rc == 2
    assert listing(tmp_path) == []


@pytest.mark.parametrize("what", ["lock", "output-dir"])
def test_missing_lock_or_output_directory(world: World, tmp_path: Path, what: str) -> None:
    lock = tmp_path / "nope.toml" if what == "lock" else world.lock
    out = tmp_path / ("missing-dir/b.tar.zst" if what == "output-dir" else "b.tar.zst")
    r = cli("pack", lock, "--cache-dir", world.cache, "-o", out)
    assert r.rc == 1 and ("nope.toml" in r.err if what == "lock" else "missing-dir" in r.err)
    assert listing(tmp_path) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc, a directory nobody can create files in")
def test_unwritable_output_directory_is_an_error_not_a_traceback(world: World) -> None:
    r = cli("pack", world.lock, "--cache-dir", world.cache, "-o", "/proc/kit.tar.zst")
    assert r.rc == 1 and "cannot write /proc/kit.tar.zst" in r.err


# ---------------------------------------------------------------------------------------------
# inspect


def test_inspect_prints_packages_versions_and_targets(world: World) -> None:
    r = cli("inspect", world.packed["tar.zst"])
    assert r.rc == 0, r.err
    assert NAME in r.out and CP311 in r.out and CP312 in r.out
    rows = {line.split()[0]: line.split() for line in r.out.splitlines() if line and line.split()[0] in PROJECTS}
    assert set(rows) == set(PROJECTS) - {"pip"}
    versions = {"alpha": "1.0", "beta": "2.1", "gamma": "0.3", "delta": "1.0", "epsilon": "1.0", "native": "1.0",
                "backport": "1.0"}
    for project, version in versions.items():
        assert rows[project][1] == version
    assert rows["alpha"][-1] == "all"
    assert rows["backport"][-1] == CP311  # backport is for Python < 3.12 only
    assert "pip 24.0" in r.out
    assert "import alpha, beta, gamma" in r.out


@pytest.mark.parametrize("fmt", FORMATS)
def test_inspect_json_prints_bundle_json(world: World, unpacked: Path, fmt: str) -> None:
    r = cli("inspect", "--json", world.packed[fmt])
    assert r.rc == 0, r.err
    assert r.out == (unpacked / "bundle.json").read_text()


def test_inspect_an_unpacked_directory(unpacked: Path) -> None:
    r = cli("inspect", unpacked)
    assert r.rc == 0 and "alpha" in r.out


# ---------------------------------------------------------------------------------------------
# build


def test_build_from_a_recipe_equals_lock_fetch_pack(world: World, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    out = tmp_path / "out" / "anything.tar.zst"
    out.parent.mkdir()
    lock = tmp_path / "kept" / "pylock.toml"
    lock.parent.mkdir()
    r = cli("build", world.recipe, "--index-url", world.server.index_url("main"), "--cache-dir", cache, "-o", out,
            "--lock-output", lock, "--no-bytecode")
    assert r.rc == 0, r.err
    assert f"tar -xf anything.tar.zst && sh {top_of(NAME, lock)}/install.sh" in r.err
    assert listing(out.parent) == ["anything.tar.zst", "anything.tar.zst.sha256"]
    assert member_names(tar_entries(raw_tar(out))) == expected_members(top_of(NAME, lock))
    assert cli("verify", out).rc == 0
    # the kept lock packs to the same bytes; the lock is the one the world made, modulo the loopback port
    again = tmp_path / "again" / "anything.tar.zst"
    again.parent.mkdir()
    assert cli("pack", lock, "--cache-dir", cache, "-o", again, "-q", "--no-bytecode").rc == 0
    assert again.read_bytes() == out.read_bytes()
    assert lock.read_bytes() == world.lock.read_bytes()
    assert out.read_bytes() == world.packed["tar.zst"].read_bytes()


def test_build_from_requirements_in_an_empty_cwd(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli("build", "gamma", "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11",
            "--index-url", world.server.index_url("main"), "--cache-dir", tmp_path / "cache", "-o", "g.tar", "-q")
    assert r.rc == 0, r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "g.tar", "g.tar.sha256"]  # no lock left behind in the cwd
    assert r.err == "" and r.out.split() == [sha256((tmp_path / "g.tar").read_bytes()), "g.tar"]  # -q: only the sha256
    check = subprocess.run(["sha256sum", "-c", "g.tar.sha256"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0 and "g.tar: OK" in check.stdout
    names = [m.name for m, _ in tar_entries((tmp_path / "g.tar").read_bytes())]
    top = names[0].split("/")[0]
    assert re.fullmatch(r"g-[0-9a-f]{8}", top)  # the output's stem and the (temporary) lock's identity
    assert f"{top}/wheels/gamma-0.3-py3-none-any.whl" in names and f"{top}/wheels/pip-24.0-py3-none-any.whl" in names


def test_build_that_cannot_resolve_writes_nothing(world: World, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    r = cli("build", "no-such-project", "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11",
            "--index-url", world.server.index_url("main"), "--cache-dir", tmp_path / "cache", "-o", out / "b.tar.zst")
    assert r.rc == 1 and "no-such-project" in r.err
    assert listing(out) == []
