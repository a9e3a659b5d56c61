"""Bytecode compiled on the builder (bundler/bytecode.py) and written as .pyc files on the target
(install.py ``byte_compile``): shipped for every installed wheel, reproducible, cached, used only by
an interpreter with the same magic number, exactly the .pyc compileall writes, and safe against a
hostile archive."""

from __future__ import annotations

import importlib.util
import json
import marshal
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from support.siteworld import Site, linux_x86_64, needs_offline, run, site, untar, wheelhouse

from bundler import bytecode
from bundler._target import install

pytestmark = [pytest.mark.slow, linux_x86_64]
__all__ = ["site"]
MAGIC = importlib.util.MAGIC_NUMBER.hex()


def _manifest(archive: Path) -> dict:
    with tarfile.open(archive) as tar:
        top = tar.getmembers()[0].name.split("/")[0]
        return json.loads(tar.extractfile(f"{top}/bundle.json").read())  # type: ignore[union-attr]


def _site_packages(venv: Path) -> Path:
    (sp,) = (venv / "lib").glob("python3.*/site-packages")
    return sp


def _pyc_body(src: Path) -> tuple[bytes, object]:
    data = Path(importlib.util.cache_from_source(str(src))).read_bytes()
    return data[:16], marshal.loads(data[16:])


def test_every_installed_wheel_ships_its_bytecode(site: Site) -> None:
    m = _manifest(site.full1)
    (target,) = m["targets"]
    assert target["bytecode"]["magic"] == MAGIC  # the host profile: this interpreter's version
    wheels = {target["pip"], *(p["wheel"] for p in target["packages"])}
    assert set(target["bytecode"]["files"]) == wheels
    for wheel, archive in target["bytecode"]["files"].items():
        assert archive == f"bytecode/{MAGIC}/{wheel.split('/')[-1]}.zip" and archive in m["files"]
    with tarfile.open(site.full1) as tar:
        name = next(n for n in tar.getnames() if n.endswith("/greet-1.0-py3-none-any.whl.zip"))
        with zipfile.ZipFile(tar.extractfile(name)) as zf:  # type: ignore[arg-type]
            assert zf.namelist() == ["greet/__init__.py"]
            code = marshal.loads(zf.read("greet/__init__.py"))
    assert code.co_filename == "greet/__init__.py"  # type: ignore[attr-defined]


def test_two_packs_from_fresh_caches_are_identical_and_the_second_is_cached(site: Site, tmp_path: Path) -> None:
    outs = []
    for n in (1, 2):
        cache = tmp_path / f"cache{n}"
        shutil.copytree(site.cache / "blobs", cache / "blobs")  # the wheels only: no compiled bytecode yet
        out = tmp_path / f"out{n}" / "site.tar.gz"
        out.parent.mkdir()
        wheelhouse("pack", site.lock1, "--cache-dir", cache, "-o", out, "-q")
        outs.append(out.read_bytes())
        assert any((cache / "derived").rglob("*"))  # the compiled archives are recorded by wheel and interpreter
    assert outs[0] == outs[1] == site.full1.read_bytes()


@needs_offline
def test_install_writes_the_pycs_compileall_would_from_the_shipped_bytecode(site: Site, tmp_path: Path) -> None:
    bundle = untar(site.full1, tmp_path / "t")
    venv = tmp_path / "venv"
    r = run(["sh", bundle / "install.sh", "--venv", venv], offline=True)  # the same step follows uv and pip
    assert r.returncode == 0, r.stderr
    sp = _site_packages(venv)
    sources = [p for p in sp.rglob("*.py") if "__pycache__" not in p.parts]
    assert len(sources) > 100  # pip's own modules among them
    for src in sources:
        header, _ = _pyc_body(src)
        st = src.stat()
        assert header == importlib.util.MAGIC_NUMBER + struct.pack("<III", 0, int(st.st_mtime) & 0xFFFFFFFF,
                                                                   st.st_size & 0xFFFFFFFF), src
    _, code = _pyc_body(sp / "greet" / "__init__.py")
    assert code.co_filename == "greet/__init__.py"  # type: ignore[attr-defined]  # shipped, not compiled here
    ref = compile((sp / "greet" / "__init__.py").read_bytes(), "x", "exec", dont_inherit=True)
    assert code.co_code == ref.co_code  # type: ignore[attr-defined]
    # the import system puts the real path in place, so tracebacks name the installed file
    out = run([venv / "bin" / "python", "-c", "import greet; print(greet.greet.__code__.co_filename)"])
    assert out.stdout.strip() == str(sp / "greet" / "__init__.py")
    # up to date: importing wrote nothing new
    assert _pyc_body(sp / "greet" / "__init__.py")[1].co_filename == "greet/__init__.py"  # type: ignore[attr-defined]


@needs_offline
def test_no_compile_writes_no_pyc(site: Site, tmp_path: Path) -> None:
    bundle = untar(site.full1, tmp_path / "t")
    venv = tmp_path / "venv"
    assert run(["sh", bundle / "install.sh", "--venv", venv, "--no-compile"], offline=True).returncode == 0
    assert not list(_site_packages(venv).rglob("*.pyc"))


def _venv_with_sources(tmp_path: Path) -> tuple[Path, Path]:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    sp = _site_packages(venv)
    (sp / "mod").mkdir()
    (sp / "mod" / "__init__.py").write_text("X = 1\n")
    return venv, sp


def _archive(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def _byte_compile(venv: Path, magic: str, archives: list[Path]) -> None:
    code = "import sys; sys.path.insert(0, sys.argv[1]); import install; install.byte_compile(sys.argv[2], sys.argv[3:])"
    target = Path(install.__file__).parent
    subprocess.run([str(venv / "bin" / "python"), "-I", "-B", "-c", code, str(target), magic, *map(str, archives)], check=True)


def test_another_magic_number_is_ignored_and_compiled_here(tmp_path: Path) -> None:
    venv, sp = _venv_with_sources(tmp_path)
    body = marshal.dumps(compile("X = 2\n", "mod/__init__.py", "exec"))
    _byte_compile(venv, "00000000", [_archive(tmp_path / "bc.zip", {"mod/__init__.py": body})])
    _, code = _pyc_body(sp / "mod" / "__init__.py")
    assert code.co_filename == str(sp / "mod" / "__init__.py")  # type: ignore[attr-defined]  # compileall's own


def test_a_hostile_archive_writes_nothing_outside_site_packages(tmp_path: Path) -> None:
    venv, sp = _venv_with_sources(tmp_path)
    body = marshal.dumps(compile("X = 3\n", "mod/__init__.py", "exec"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.py").write_text("")
    (sp / "linked").mkdir()
    (sp / "linked" / "m.py").write_text("Y = 1\n")
    (sp / "linked" / "__pycache__").symlink_to(outside)  # a planted link where a __pycache__ goes
    entries = {"../../../../outside/evil.py": body, str(outside / "evil.py"): body, "mod\\..\\x.py": body,
               "linked/m.py": body, "mod/__init__.py": body, "mod/notpy.txt": body}
    install.write_pycs(str(_archive(tmp_path / "bc.zip", entries)), [str(sp)])
    assert sorted(p.name for p in outside.iterdir()) == ["evil.py"]  # nothing written through the link or by '..'
    _, code = _pyc_body(sp / "mod" / "__init__.py")
    assert code.co_filename == "mod/__init__.py"  # type: ignore[attr-defined]  # the plain entry was used


def test_find_interpreter_takes_only_a_final_cpython_of_that_version(tmp_path: Path) -> None:
    here = bytecode.find_interpreter(f"{sys.version_info[0]}.{sys.version_info[1]}", [Path(sys.executable)])
    assert here is not None and here.magic == MAGIC and here.full_version == sys.version.split()[0]
    assert bytecode.find_interpreter("3.99", [Path(sys.executable)]) is None
    fake = tmp_path / "python3.99"
    fake.write_text("#!/bin/sh\necho cpython 3.99 deadbeef final 3.99.0\n")
    fake.chmod(0o755)
    assert bytecode.probe(fake) is not None  # a probe is only what it answers ...
    fake.write_text("#!/bin/sh\necho cpython 3.99 deadbeef candidate 3.99.0rc1\n")
    assert bytecode.probe(fake) is None  # ... and pre-releases change the magic number: never used
    assert bytecode.probe(tmp_path / "missing") is None
