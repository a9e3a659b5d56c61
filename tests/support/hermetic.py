"""One environment for tests that run wheelhouse or pip: no pip configuration, proxies, netrc or user cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_UNSET = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
          "http_proxy", "https_proxy", "all_proxy")


def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *also_unset: str) -> None:
    """Only what a test passes counts: pip config off, proxies and ``also_unset`` removed, loopback
    never proxied, the default cache and ``NETRC`` under ``tmp_path``."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for var in (*_UNSET, *also_unset):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("WHEELHOUSE_CACHE_DIR", str(tmp_path / "default-cache"))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
