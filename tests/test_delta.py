"""Delta bundles and bundle identity (issue 12, items 4 and 5): ``pack --since``, ``install.sh --with``,
``verify --with``, top folders named after the lock, and the bundled pylock.toml installed by uv."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from support.siteworld import Site, clean_env, linux_x86_64, needs_offline, run, site, untar, wheelhouse

from bundler.manifest import top_folder

pytestmark = [pytest.mark.slow, linux_x86_64]
__all__ = ["site"]


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _members(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return [m.name for m in tar.getmembers() if m.isfile()]


def _delta(site: Site, tmp_path: Path, since: Path) -> Path:
    out = tmp_path / "delta" / "site.tar.gz"
    out.parent.mkdir(exist_ok=True)
    r = wheelhouse("pack", site.lock2, "--cache-dir", site.cache, "--since", since, "-o", out)
    assert "--with " in r.stderr  # the command to run on the target names the base folder
    return out


@pytest.mark.parametrize("since", ["archive", "folder", "lock"])
def test_delta_carries_only_what_the_old_bundle_lacks(site: Site, tmp_path: Path, since: str) -> None:
    old_dir = untar(site.full1, tmp_path / "old")
    old = {"archive": site.full1, "folder": old_dir, "lock": site.lock1}[since]
    delta = _delta(site, tmp_path, old)
    top = top_folder("site", _sha(site.lock2))
    wheels = [n for n in _members(delta) if "/wheels/" in n]
    assert wheels == [f"{top}/wheels/words-0.6-py3-none-any.whl"]
    assert delta.stat().st_size < 0.15 * site.full2.stat().st_size
    manifest = json.loads(tarfile.open(delta).extractfile(f"{top}/bundle.json").read())  # type: ignore[union-attr]
    full = json.loads(tarfile.open(site.full2).extractfile(f"{top}/bundle.json").read())  # type: ignore[union-attr]
    # the full set is listed with the same hashes as the full bundle; only bundle.json's base and SHA256SUMS differ
    # (over a lock, the unchanged wheels' bytecode is left out: the target compiles those)
    kept = {p: v for p, v in full["files"].items() if p != "SHA256SUMS"
            and not (since == "lock" and p.startswith("bytecode/") and not p.endswith("/words-0.6-py3-none-any.whl.zip"))}
    assert {p: v for p, v in manifest["files"].items() if p != "SHA256SUMS"} == kept
    base = manifest["base"]
    assert base["lock-sha256"] == _sha(site.lock1)
    # the folder a target gives to --with; from a lock alone, the output's stem is unknown
    assert base["name"] == old_dir.name if since != "lock" else base["name"].endswith(_sha(site.lock1)[:8])
    assert "wheels/words-0.6-py3-none-any.whl" not in base["files"]
    assert "wheels/greet-1.0-py3-none-any.whl" in base["files"] and all(p.startswith(("wheels/", "bytecode/"))
                                                                          for p in base["files"])
    # the bytecode of the unchanged wheels comes from the base too (a lock as base has none: it is compiled there)
    carried_bytecode = [n for n in _members(delta) if "/bytecode/" in n]
    assert all(n.endswith("/words-0.6-py3-none-any.whl.zip") for n in carried_bytecode)


def test_two_bundles_of_one_file_name_unpack_side_by_side(site: Site, tmp_path: Path) -> None:
    dest = tmp_path / "target"
    one = untar(site.full1, dest)
    two = untar(site.full2, dest)
    assert one.name == top_folder("site", _sha(site.lock1)) and two.name == top_folder("site", _sha(site.lock2))
    assert site.full1.name == site.full2.name and one != two
    for d in (one, two):
        assert wheelhouse("verify", d).returncode == 0


def test_verify_a_delta_with_and_without_its_base(site: Site, tmp_path: Path) -> None:
    old_dir = untar(site.full1, tmp_path / "old")
    delta = _delta(site, tmp_path, site.full1)
    new_dir = untar(delta, tmp_path / "new")
    alone = run(["wheelhouse", "verify", delta])
    assert alone.returncode == 1 and "--with" in alone.stderr and old_dir.name in alone.stderr
    for d, base in ((delta, site.full1), (new_dir, old_dir), (delta, old_dir)):
        r = run(["wheelhouse", "verify", d, "--with", base])
        assert r.returncode == 0, r.stderr
    # a base that is not the one it was made from: the first bundle lacks nothing it names, but another lock does
    broken = Path(shutil.copytree(old_dir, tmp_path / "broken" / old_dir.name))
    (broken / "wheels" / "greet-1.0-py3-none-any.whl").write_bytes(b"not a wheel")
    r = run(["wheelhouse", "verify", delta, "--with", broken])
    assert r.returncode == 1 and "greet-1.0-py3-none-any.whl" in r.stderr and "expected sha256" in r.stderr


@needs_offline
def test_delta_installs_offline_with_the_old_bundle(site: Site, tmp_path: Path) -> None:
    old_dir = untar(site.full1, tmp_path / "target")
    new_dir = untar(_delta(site, tmp_path, site.full1), tmp_path / "target")
    venv = tmp_path / "venv"
    refused = run(["sh", new_dir / "install.sh", "--venv", venv], offline=True)
    assert refused.returncode == 1 and "--with" in refused.stderr and not venv.exists()
    r = run(["sh", new_dir / "install.sh", "--with", old_dir, "--venv", venv], offline=True)
    assert r.returncode == 0, r.stdout + r.stderr
    code = "import greet, words, bigdep; print(greet.greet('x'), words.V)"
    out = run([venv / "bin" / "python", "-I", "-c", code], offline=True)
    assert out.stdout.strip() == "hello, x 0.6", out.stderr
    # a base file changed on the target: refused before any venv is made
    (old_dir / "wheels" / "bigdep-1.0-py3-none-any.whl").write_bytes(b"x")
    bad = run(["sh", new_dir / "install.sh", "--with", old_dir, "--venv", tmp_path / "venv2"], offline=True)
    assert bad.returncode == 1 and "bigdep-1.0-py3-none-any.whl" in bad.stderr and not (tmp_path / "venv2").exists()


@needs_offline
def test_uv_installs_the_bundled_pylock_offline(site: Site, tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (pip install -e '.[test]')")
    bundle = untar(site.full2, tmp_path / "target")
    venv = tmp_path / "uv-venv"
    env = {**clean_env(), "UV_NO_CACHE": "1", "UV_PYTHON_DOWNLOADS": "never"}
    import sys

    r = run([uv, "venv", "--python", sys.executable, venv], env=env, offline=True)
    assert r.returncode == 0, r.stderr
    r = run([uv, "pip", "install", "--offline", "--python", venv / "bin" / "python", "-r", bundle / "pylock.toml"],
            env=env, offline=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = run([venv / "bin" / "python", "-I", "-c", "import greet, words; print(greet.greet('uv'), words.V)"], offline=True)
    assert out.stdout.strip() == "hello, uv 0.6", out.stderr


@needs_offline
def test_pip_installs_the_bundled_pylock_offline(site: Site, tmp_path: Path) -> None:
    import sys

    import pip

    if tuple(int(x) for x in pip.__version__.split(".")[:2]) < (26, 0):
        pytest.skip(f"pip {pip.__version__} cannot install from a pylock.toml")
    bundle = untar(site.full2, tmp_path / "target")
    venv = tmp_path / "pip-venv"
    assert run([sys.executable, "-m", "venv", "--without-pip", venv]).returncode == 0
    r = run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-index",
             "--disable-pip-version-check", "-r", bundle / "pylock.toml"], offline=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = run([venv / "bin" / "python", "-I", "-c", "import greet, words; print(greet.greet('pip'), words.V)"], offline=True)
    assert out.stdout.strip() == "hello, pip 0.6", out.stderr
