"""Shared pytest fixtures for the wheelhouse test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.faultserver import FaultServer
from support.indexserver import IndexServer


@pytest.fixture
def index_server(tmp_path: Path) -> Iterator[IndexServer]:
    """A running loopback package index; files live under ``tmp_path/index``."""
    with IndexServer(tmp_path / "index") as server:
        yield server


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[FaultServer]:
    """A running loopback file server that injects faults on request; files live under ``tmp_path/srv``."""
    with FaultServer(tmp_path / "srv") as server:
        yield server


# CI sets WHEELHOUSE_REQUIRE_E2E=1: the end-to-end tests that need pyenv's interpreters, a network
# namespace (`unshare -n`), tar or zstd must then fail when their tool is missing, not skip, so a CI
# runner without them cannot pass while proving nothing about the target side.
_E2E_TOOLS = ("pyenv", "unshare", "network namespace", "tar", "zstd")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("WHEELHOUSE_REQUIRE_E2E") == "1":
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if any(tool in reason for tool in _E2E_TOOLS):
            report.outcome = "failed"
            report.longrepr = f"WHEELHOUSE_REQUIRE_E2E=1, but this end-to-end test would skip: {reason}"
