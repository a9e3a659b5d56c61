"""A small world for the supply-chain tests (test_supply.py, test_diff.py): a loopback index whose
wheels declare licenses, two locks one package version apart (alpha 1.0 MIT -> 1.1 Apache-2.0),
their bundles, and two fresh ed25519 keys made with ``ssh-keygen``: the site's and a stranger's.
Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from .indexserver import IndexServer
from .packworld import cli

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
TARGET = ["--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.12"]


def keypair(folder: Path, name: str) -> tuple[Path, str]:
    """A fresh unencrypted ed25519 key and its public line."""
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key, (folder / f"{name}.pub").read_text().strip()


@dataclass(frozen=True)
class SupplyWorld:
    root: Path
    url: str
    cache: Path
    locks: dict[str, Path]  # "old" (alpha 1.0), "new" (alpha 1.1)
    key: Path  # the build machine's key
    stranger: Path  # a key the site does not list
    allowed: Path  # the site's allowed_signers file, listing only ``key`` as builder@lab
    server: IndexServer

    def pack(self, which: str, out: Path, *extra: str | Path) -> Path:
        out.parent.mkdir(parents=True, exist_ok=True)
        r = cli("pack", self.locks[which], "--cache-dir", self.cache, "-o", out, "-q", *extra)
        assert r.rc == 0, r.err
        return out


@pytest.fixture(scope="module")
def supply(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SupplyWorld]:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("needs ssh-keygen")
    root = tmp_path_factory.mktemp("supply")
    with IndexServer(root / "index") as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIP_CONFIG_FILE", os.devnull)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        for var in ("PIP_INDEX_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "SOURCE_DATE_EPOCH"):
            mp.delenv(var, raising=False)
        server.add_index("main")
        from .wheelgen import make_wheel

        src = root / "src"
        for name, version, lic, deps in (("alpha", "1.0", "MIT", ["beta"]), ("alpha", "1.1", "Apache-2.0", ["beta"]),
                                         ("beta", "2.0", "BSD-3-Clause OR MIT", []), ("pip", "24.0", None, [])):
            server.add_file("main", make_wheel(src, name, version, requires_dist=deps, license_expression=lic), upload_time=T0)
        url = server.index_url("main")
        cache = root / "cache"
        locks = {}
        for which, pin in (("old", "alpha==1.0"), ("new", "alpha==1.1")):
            lock = root / which / "pylock.toml"
            lock.parent.mkdir()
            r = cli("lock", pin, *TARGET, "--index-url", url, "--cache-dir", cache, "-q", "-o", lock)
            assert r.rc == 0, r.err
            r = cli("fetch", lock, "--cache-dir", cache, "-q")
            assert r.rc == 0, r.err
            locks[which] = lock
        keys = root / "keys"
        keys.mkdir()
        key, pub = keypair(keys, "lab")
        stranger, _ = keypair(keys, "stranger")
        allowed = root / "allowed_signers"
        allowed.write_text(f"builder@lab {pub}\n")
        yield SupplyWorld(root, url, cache, locks, key, stranger, allowed, server)
