"""Signed bundles end to end (issue 15, acceptance 1-2): ``wheelhouse build --sign-key`` with a
fresh ed25519 key made by ``ssh-keygen``, unpacked with the system tar and installed with
``sh install.sh --trust ALLOWED_SIGNERS`` for pyenv's CPython 3.12 inside a network namespace with
no interfaces. The same bundle re-signed by another key, with its signature removed, or with
``bundle.json`` edited and the archive re-packed consistently (so that only the signature can tell)
is refused naming the cause, and nothing is installed.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.bundlefixture import pip_wheel_from_installed
from support.indexserver import IndexServer
from support.packworld import raw_tar, tar_entries, write_archive
from support.supplyworld import keypair
from test_bundle_e2e import OFFLINE, PY312, WHEELHOUSE, needs_offline, needs_py312, run, untar
from support.wheelgen import make_wheel

from bundler.signing import sign

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="builds Linux bundles"),
    pytest.mark.skipif(shutil.which("tar") is None or shutil.which("ssh-keygen") is None, reason="needs tar and ssh-keygen"),
    needs_offline,
    needs_py312,
]
SMOKE = "import greet; assert greet.hello() == 'hello'"


@dataclass
class Signed:
    archive: Path
    allowed: Path
    stranger: Path


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signed]:
    root = tmp_path_factory.mktemp("signed-e2e")
    key, pub = keypair(root, "lab")
    stranger, _ = keypair(root, "stranger")
    allowed = root / "allowed_signers"
    allowed.write_text(f"builder@lab {pub}\n")
    with IndexServer(root / "index") as server:
        server.add_index("main")
        server.add_file("main", make_wheel(root / "src", "greet", "1.0", license_expression="MIT",
                                           files={"greet/__init__.py": "def hello():\n    return 'hello'\n"}))
        server.add_file("main", pip_wheel_from_installed(root / "pip"))
        recipe = root / "signed.toml"
        recipe.write_text(f'name = "signed"\nrequirements = ["greet"]\nsmoke = [{json.dumps(SMOKE)}]\n\n'
                          '[[targets]]\npython-platform = "x86_64-manylinux_2_28"\npython-version = "3.12"\n')
        out = root / "signed.tar.gz"
        r = run([*WHEELHOUSE, "build", recipe, "--index-url", server.index_url("main"), "--cache-dir", root / "cache",
                 "-o", out, "--sign-key", key, "-q"])
        assert r.returncode == 0, r.stderr
    yield Signed(out, allowed, stranger)


def install(bundle: Path, trust: Path, venv: Path) -> tuple[int, str]:
    r = run(["sh", bundle / "install.sh", "--python", PY312, "--venv", venv, "--trust", trust], offline=True, cwd=bundle.parent)
    return r.returncode, r.stdout + r.stderr


def test_signed_bundle_installs_offline_with_trust(signed: Signed, tmp_path: Path) -> None:
    assert OFFLINE is not None and PY312 is not None
    bundle = untar(signed.archive, tmp_path / "u")
    venv = tmp_path / "venv"
    rc, out = install(bundle, signed.allowed, venv)
    assert rc == 0, out
    assert "bundle.json is signed by builder@lab" in out and "smoke test" in out
    r = run([venv / "bin" / "python", "-I", "-c", "import greet, sys; print(greet.hello(), sys.version_info[:2])"], offline=True)
    assert r.stdout.strip() == "hello (3, 12)", r.stderr
    assert run([*WHEELHOUSE, "verify", signed.archive, "--trust", signed.allowed]).returncode == 0


def _repacked(signed: Signed, tmp_path: Path, case: str) -> Path:
    """The archive tampered with as ``case`` says, then re-packed so that it is consistent with itself."""
    entries = tar_entries(raw_tar(signed.archive))
    by_rel = {info.name.split("/", 1)[-1]: data for info, data in entries}
    manifest = by_rel["bundle.json"]
    assert manifest is not None
    out = []
    for info, data in entries:
        rel = info.name.split("/", 1)[-1]
        if rel == "bundle.json.sig":
            if case == "removed":
                continue
            if case == "resigned":
                data = sign(manifest, signed.stranger)
        if rel == "bundle.json" and case == "edited":
            doc = json.loads(manifest)
            doc["smoke"] = ["import os; open(os.path.expanduser('~/PWNED'), 'w')"]  # never runs: refused first
            data = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
        out.append((info, data))
    return write_archive(out, tmp_path / "tampered.tar.gz")


@pytest.mark.parametrize("case,cause", [("resigned", "(unknown signer)"), ("removed", "(unsigned)"), ("edited", "(bad signature)")])
def test_tampered_bundle_is_refused_and_nothing_installed(signed: Signed, tmp_path: Path, case: str, cause: str) -> None:
    archive = _repacked(signed, tmp_path, case)
    assert run([*WHEELHOUSE, "verify", archive]).returncode == 0  # consistent: only the signature can catch it
    bundle = untar(archive, tmp_path / "u")
    venv = tmp_path / "venv"
    rc, out = install(bundle, signed.allowed, venv)
    assert rc == 1 and cause in out and "nothing was installed" in out, out
    assert not venv.exists()
    v = run([*WHEELHOUSE, "verify", archive, "--trust", signed.allowed])
    assert v.returncode == 1 and cause.strip("()").replace("unsigned", "not signed") in v.stderr, v.stderr
