"""bundler.signing: OpenSSH signatures over bundle.json, and the three ways verification fails."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bundler.errors import BadBundle, BadInput
from bundler.signing import sign, verify

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
MANIFEST = b'{"format": "wheelhouse-bundle", "files": {}}\n'


def keypair(folder: Path, name: str) -> tuple[Path, str]:
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key, (folder / f"{name}.pub").read_text().strip()


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path, Path]:
    key, pub = keypair(tmp_path, "lab")
    other, _ = keypair(tmp_path, "stranger")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"builder@lab {pub}\n")
    return key, other, allowed


def test_a_good_signature_names_its_signer(site: tuple[Path, Path, Path]) -> None:
    key, _, allowed = site
    assert verify(MANIFEST, sign(MANIFEST, key), allowed) == "builder@lab"


def test_unsigned_is_refused_as_unsigned(site: tuple[Path, Path, Path]) -> None:
    with pytest.raises(BadBundle, match="not signed"):
        verify(MANIFEST, None, site[2])


def test_an_edited_manifest_is_a_bad_signature(site: tuple[Path, Path, Path]) -> None:
    key, _, allowed = site
    sig = sign(MANIFEST, key)
    with pytest.raises(BadBundle, match="bad signature"):
        verify(MANIFEST.replace(b"{}", b'{"x": 1}'), sig, allowed)


def test_another_key_is_an_unknown_signer(site: tuple[Path, Path, Path]) -> None:
    _, other, allowed = site
    with pytest.raises(BadBundle, match="unknown signer"):
        verify(MANIFEST, sign(MANIFEST, other), allowed)


def test_another_key_over_edited_data_is_a_bad_signature(site: tuple[Path, Path, Path]) -> None:
    _, other, allowed = site
    with pytest.raises(BadBundle, match="bad signature"):
        verify(MANIFEST + b" ", sign(MANIFEST, other), allowed)


def test_garbage_signature_is_a_bad_signature(site: tuple[Path, Path, Path]) -> None:
    with pytest.raises(BadBundle, match="bad signature"):
        verify(MANIFEST, b"-----BEGIN SSH SIGNATURE-----\nnope\n-----END SSH SIGNATURE-----\n", site[2])


def test_missing_key_or_signers_file_are_usage_errors(tmp_path: Path, site: tuple[Path, Path, Path]) -> None:
    with pytest.raises(BadInput, match="no such signing key"):
        sign(MANIFEST, tmp_path / "nokey")
    with pytest.raises(BadInput, match="no such allowed_signers"):
        verify(MANIFEST, b"x", tmp_path / "nofile")
