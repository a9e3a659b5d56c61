"""The world test_delta.py and test_publish.py share: real bundles for this machine's Python, built
through the ``wheelhouse`` command from a loopback index, one month apart (``words`` 0.5 -> 0.6),
with a real pip wheel inside so that ``install.sh`` installs them offline. A test module imports
the ``site`` fixture by name (module-scoped).

Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from .bundlefixture import offline_prefix, pip_wheel_from_installed
from .indexserver import IndexServer
from .wheelgen import make_wheel

WHEELHOUSE = [sys.executable, "-m", "bundler"]
OFFLINE = offline_prefix()
needs_offline = pytest.mark.skipif(OFFLINE is None, reason="no network namespace: 'unshare -n true' fails here")
linux_x86_64 = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() != "x86_64"
                                  or platform.libc_ver()[0] != "glibc", reason="builds x86_64 glibc Linux bundles")
GREET = "from words import WORDS\n\ndef greet(name):\n    return WORDS[0] + ', ' + name\n"


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "TWINE_", "WHEELHOUSE_")) and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(PIP_CONFIG_FILE=os.devnull, NO_PROXY="127.0.0.1,localhost")
    env.pop("SOURCE_DATE_EPOCH", None)
    return env


def run(cmd: list[str | Path], *, offline: bool = False, timeout: float = 300, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [str(c) for c in cmd]
    if offline:
        assert OFFLINE is not None
        argv = [*OFFLINE, *argv]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env or clean_env())
    assert "Traceback" not in r.stderr, r.stderr
    return r


def untar(archive: Path, dest: Path) -> Path:
    """Unpack with the system tar (it detects gzip and zstd itself) into ``dest``; return the folder
    this archive made."""
    if archive.name.endswith(".zst") and shutil.which("zstd") is None:
        pytest.skip("tar needs the zstd program to unpack .tar.zst")
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.iterdir())
    subprocess.run(["tar", "-xf", str(archive), "-C", str(dest)], check=True, capture_output=True)
    (top,) = set(dest.iterdir()) - before
    return top


@dataclass
class Site:
    root: Path
    cache: Path
    lock1: Path  # words 0.5
    lock2: Path  # words 0.6, everything else the same
    full1: Path  # bundle archives (tar.gz: the system tar unpacks it without zstd)
    full2: Path
    wheels: Path  # the source wheels


def wheelhouse(*args: str | Path) -> subprocess.CompletedProcess[str]:
    r = run([*WHEELHOUSE, *args])
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if shutil.which("tar") is None:
        pytest.skip("no tar")
    root = tmp_path_factory.mktemp("site")
    with IndexServer(root / "index") as server:
        server.add_index("main")
        src = root / "src"
        server.add_file("main", make_wheel(src, "greet", "1.0", files={"greet/__init__.py": GREET},
                                           requires_dist=["words>=0.5"]))
        for v in ("0.5", "0.6"):
            server.add_file("main", make_wheel(src, "words", v, files={"words/__init__.py": f"WORDS = ['hello']\nV = '{v}'\n"}))
        server.add_file("main", make_wheel(src, "bigdep", "1.0", files={"bigdep/__init__.py": "X = 1\n" + "#" * 200_000}))
        server.add_file("main", pip_wheel_from_installed(root / "pipwheel"))
        profile = root / "host.json"
        wheelhouse("profile", "capture", "-o", profile)
        cache = root / "cache"
        url = server.index_url("main")
        locks, fulls = [], []
        for n, pin in ((1, "words==0.5"), (2, "words==0.6")):
            lock = root / f"lock{n}" / "pylock.toml"
            lock.parent.mkdir()
            wheelhouse("lock", "greet", "bigdep", pin, "--profile", profile, "--index-url", url, "--cache-dir", cache,
                       "-o", lock, "-q")
            wheelhouse("fetch", lock, "--cache-dir", cache, "-q")
            out = root / f"out{n}" / "site.tar.gz"
            out.parent.mkdir()
            wheelhouse("pack", lock, "--cache-dir", cache, "-o", out, "-q")
            locks.append(lock)
            fulls.append(out)
        yield Site(root, cache, locks[0], locks[1], fulls[0], fulls[1], src)
