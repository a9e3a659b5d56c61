"""Shared pytest fixtures for the wheelhouse test suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from faultserver import FaultServer
from indexserver import IndexServer


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
