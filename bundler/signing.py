"""Signed bundles with keys sites already have: OpenSSH signatures (``ssh-keygen -Y``), namespace
``wheelhouse``, over the bytes of ``bundle.json``.

``bundle.json`` lists every other file of the bundle with its sha256, so a good signature over it
covers the whole bundle. The signature travels in the bundle as ``bundle.json.sig``. A site trusts
the signers listed in an OpenSSH ``allowed_signers`` file; verification tells apart the three ways
to fail: no signature, a signature that does not match, and a signer the file does not list.
The target side (``_target/install.py``) makes the same checks with the same commands.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from bundler._target.install import SIGNATURE, SIGNING_NAMESPACE as NAMESPACE
from bundler.errors import BadBundle, BadInput

__all__ = ["NAMESPACE", "SIGNATURE", "sign", "verify"]


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise BadInput("signing and checking signatures need ssh-keygen (OpenSSH 8.1 or newer)",
                       hint="install the OpenSSH client")
    return found


def sign(manifest: bytes, key: Path) -> bytes:
    """An SSH signature over ``manifest`` made with the private key ``key``."""
    if not key.is_file():
        raise BadInput(f"no such signing key: {key}")
    with tempfile.TemporaryDirectory(prefix="wheelhouse-sign-") as tmp:
        data = Path(tmp) / "bundle.json"
        data.write_bytes(manifest)
        r = subprocess.run([_ssh_keygen(), "-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(data)],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        sig = data.with_name("bundle.json.sig")
        if r.returncode != 0 or not sig.is_file():
            why = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit status {r.returncode}"
            raise BadInput(f"cannot sign with {key}: {why}",
                           hint="give an unencrypted OpenSSH private key, or one your ssh-agent holds")
        return sig.read_bytes()


def verify(manifest: bytes, signature: bytes | None, allowed_signers: Path, *, where: str = "bundle") -> str:
    """The principal that signed ``manifest``; ``BadBundle`` naming why otherwise: unsigned, a bad
    signature, or a signer ``allowed_signers`` does not list."""
    if not allowed_signers.is_file():
        raise BadInput(f"no such allowed_signers file: {allowed_signers}")
    if signature is None:
        raise BadBundle(f"{where} is not signed (no {SIGNATURE}), and --trust requires a signature",
                        hint="ask for a bundle signed with 'wheelhouse pack --sign-key', or install without --trust")
    tool = _ssh_keygen()
    with tempfile.TemporaryDirectory(prefix="wheelhouse-verify-") as tmp:
        sig = Path(tmp) / SIGNATURE
        sig.write_bytes(signature)
        found = subprocess.run([tool, "-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
        principals = [p for p in found.stdout.split() if p]
        if found.returncode != 0 or not principals:
            check = subprocess.run([tool, "-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig)], input=manifest,
                                   capture_output=True, stdin=None, timeout=60)
            if check.returncode != 0:
                raise BadBundle(f"{where}: the signature does not match bundle.json (bad signature)",
                                hint="the bundle was changed after it was signed: do not install it")
            raise BadBundle(f"{where} is signed by a key that {allowed_signers} does not list (unknown signer)",
                            hint="add the signer's public key to the allowed_signers file if you trust it")
        for principal in principals:
            ok = subprocess.run([tool, "-Y", "verify", "-f", str(allowed_signers), "-I", principal, "-n", NAMESPACE,
                                 "-s", str(sig)], input=manifest, capture_output=True, timeout=60)
            if ok.returncode == 0:
                return principal
    raise BadBundle(f"{where}: the signature does not match bundle.json (bad signature)",
                    hint="the bundle was changed after it was signed: do not install it")
