"""Re-locking: an existing lock's pins are preferred (as pip-compile and uv do); -P and -U release them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundler.cli import main
from bundler.locktool import read_lock
from support.hermetic import hermetic
from support.indexserver import IndexServer

TARGET = ["--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11"]


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, "SSL_CERT_FILE")


def versions(lock: Path) -> dict[str, str]:
    lk = read_lock(lock)
    return {p.name: p.version for p, _ in lk.for_target(lk.profiles[0].name)}


@pytest.fixture
def relock(tmp_path: Path, index_server: IndexServer):  # noqa: ANN201 - a small local helper
    index_server.add_index("main")
    for name in ("app", "idna", "certifi"):
        index_server.add_wheel("main", name, "1.0", requires_dist=["idna", "certifi"] if name == "app" else [])
    lock = tmp_path / "pylock.toml"

    def run(*extra: str, reqs: tuple[str, ...] = ("app",)) -> int:
        return main(["lock", *reqs, *TARGET, "--index-url", index_server.index_url("main"), "--no-cache", "-q",
                     "-o", str(lock), *extra])

    assert run() == 0
    for name in ("app", "idna", "certifi"):
        index_server.add_wheel("main", name, "2.0", requires_dist=["idna", "certifi"] if name == "app" else [])
    return run, lock


def test_a_relock_with_unchanged_inputs_changes_nothing(relock) -> None:  # noqa: ANN001
    run, lock = relock
    before = lock.read_bytes()
    assert run() == 0
    assert lock.read_bytes() == before


def test_upgrade_package_releases_only_that_pin(relock) -> None:  # noqa: ANN001
    run, lock = relock
    assert run("-P", "IDNA") == 0
    assert versions(lock) == {"app": "1.0", "idna": "2.0", "certifi": "1.0"}


def test_upgrade_releases_every_pin(relock) -> None:  # noqa: ANN001
    run, lock = relock
    assert run("-U") == 0
    assert versions(lock) == {"app": "2.0", "idna": "2.0", "certifi": "2.0"}


def test_a_pin_that_no_longer_fits_gives_way(relock) -> None:  # noqa: ANN001
    run, lock = relock
    assert run(reqs=("app", "certifi>=2")) == 0
    assert versions(lock) == {"app": "1.0", "idna": "1.0", "certifi": "2.0"}


def test_an_unreadable_old_lock_pins_nothing(relock) -> None:  # noqa: ANN001
    run, lock = relock
    lock.write_text("not a lock")
    assert run() == 0
    assert versions(lock) == {"app": "2.0", "idna": "2.0", "certifi": "2.0"}
