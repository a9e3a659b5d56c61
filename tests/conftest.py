"""Shared pytest fixtures for the wheelhouse test suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from indexserver import IndexServer


@pytest.fixture
def index_server(tmp_path: Path) -> Iterator[IndexServer]:
    """A running loopback package index; files live under ``tmp_path/index``."""
    with IndexServer(tmp_path / "index") as server:
        yield server
