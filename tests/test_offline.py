"""``--offline``: lock, build, fetch and explain from the cache alone, whatever its age.

A lock made online fills the cache; the records are then aged by hours (their stored time
rewritten), and an offline re-lock must give the same bytes without a single request, also inside
a network namespace that has no network at all. What the cache lacks is named, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bundler.cli import main
from bundler.errors import IndexUnavailable
from bundler.httpcache import PlannerCache
from bundler.index import IndexConfig
from bundler.repository import Repository
from support.hermetic import hermetic
from support.indexserver import IndexServer

TARGET = ["--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11"]
HOURS_AGO = 6 * 3600


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, "SSL_CERT_FILE")


@pytest.fixture
def site(index_server: IndexServer) -> IndexServer:
    index_server.add_index("main")
    index_server.add_wheel("main", "app", "1.0", requires_dist=["helper>=1", "extra-dep; python_version<'3'"])
    index_server.add_wheel("main", "helper", "1.0")
    index_server.add_wheel("main", "helper", "2.0")
    index_server.add_wheel("main", "pip", "24.0")
    index_server.add_index("other")  # a higher-priority index without these projects: its 404s are cached
    return index_server


def _lock_args(server: IndexServer, cache: Path, output: Path, *extra: str) -> list[str]:
    return ["lock", "app", *extra, "--extra-index-url", server.index_url("other"), "--index-url",
            server.index_url("main"), *TARGET, "-o", str(output), "--cache-dir", str(cache), "-q"]


def _age(cache: Path, seconds: float = HOURS_AGO) -> int:
    """Rewrite every cached page's stored time to ``seconds`` ago (and its max-age to 0); how many."""
    records = list((cache / "pages").rglob("*.json"))
    for record in records:
        meta = json.loads(record.read_text())
        meta["stored"], meta["max-age"] = time.time() - seconds, 0
        record.write_text(json.dumps(meta))
    return len(records)


def _warm(server: IndexServer, tmp_path: Path, *, fetch: bool = False) -> tuple[Path, Path]:
    """Lock online (and fetch, when asked) into a fresh cache, then age the cache; (cache, lock)."""
    cache, lock = tmp_path / "cache", tmp_path / "online" / "pylock.toml"
    lock.parent.mkdir()
    assert main(_lock_args(server, cache, lock)) == 0
    if fetch:
        assert main(["fetch", str(lock), "--cache-dir", str(cache), "-q"]) == 0
    assert _age(cache) >= 3  # app, helper and pip on main, and the 404s of "other"
    return cache, lock


def test_offline_relock_of_an_aged_cache_is_identical_and_sends_nothing(site: IndexServer, tmp_path: Path) -> None:
    cache, lock = _warm(site, tmp_path, fetch=True)
    site.clear_log()
    again = tmp_path / "offline" / "pylock.toml"
    again.parent.mkdir()
    assert main(_lock_args(site, cache, again, "--offline")) == 0
    assert again.read_bytes() == lock.read_bytes()
    assert again.with_name("requirements.txt").read_bytes() == lock.with_name("requirements.txt").read_bytes()
    bundle = tmp_path / "offline" / "b.tar.zst"
    assert main(["build", "app", "--offline", "--extra-index-url", site.index_url("other"), "--index-url",
                 site.index_url("main"), *TARGET, "-o", str(bundle), "--cache-dir", str(cache), "-q"]) == 0
    assert bundle.stat().st_size > 0
    assert main(["fetch", str(lock), "--offline", "--cache-dir", str(cache), "-q"]) == 0
    assert site.requests == []  # not one request, though the server was there to answer


def test_without_offline_an_aged_cache_is_revalidated(site: IndexServer, tmp_path: Path) -> None:
    cache, _ = _warm(site, tmp_path)
    site.clear_log()
    assert main(_lock_args(site, cache, tmp_path / "again.toml")) == 0
    assert site.requests  # the contrast: the same cache online asks the server again


def test_metadata_comes_from_a_fetched_wheel_when_its_record_is_gone(site: IndexServer, tmp_path: Path) -> None:
    cache, lock = _warm(site, tmp_path, fetch=True)
    shutil.rmtree(cache / "metadata")
    site.stop()
    again = tmp_path / "again.toml"
    assert main(_lock_args(site, cache, again, "--offline")) == 0
    assert again.read_bytes() == lock.read_bytes()


def test_a_page_the_cache_lacks_is_named(site: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site.add_wheel("main", "newcomer", "1.0")
    cache, _ = _warm(site, tmp_path)
    site.stop()
    capsys.readouterr()
    assert main(_lock_args(site, cache, tmp_path / "x.toml", "newcomer", "--offline")) == 1
    err = capsys.readouterr().err
    assert "offline: the page of newcomer on index extra-1 (" in err and "/other/simple/newcomer/)" in err
    assert "is not in the cache; run once online" in err
    assert "Traceback" not in err


def test_metadata_the_cache_lacks_is_named(site: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache, _ = _warm(site, tmp_path)  # not fetched: no whole wheel to read the metadata from either
    shutil.rmtree(cache / "metadata")
    site.stop()
    capsys.readouterr()
    assert main(_lock_args(site, cache, tmp_path / "x.toml", "--offline")) == 1
    err = capsys.readouterr().err
    assert "offline: the metadata of app-1.0-py3-none-any.whl from index default (" in err and "is not in the cache" in err
    assert "Traceback" not in err


def test_a_file_the_cache_lacks_is_named_by_fetch_and_build(site: IndexServer, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    cache, lock = _warm(site, tmp_path)  # locked, never fetched
    site.stop()
    capsys.readouterr()
    assert main(["fetch", str(lock), "--offline", "--cache-dir", str(cache), "-q"]) == 1
    err = capsys.readouterr().err
    assert "offline: " in err and ".whl (sha256 " in err and "is not in the cache" in err and "Traceback" not in err
    assert main(["build", "app", "--offline", "--index-url", site.index_url("main"), *TARGET, "-o",
                 str(tmp_path / "b.tar.zst"), "--cache-dir", str(cache), "-q"]) == 1
    assert "offline: " in capsys.readouterr().err
    assert not (tmp_path / "b.tar.zst").exists()


def test_offline_and_refresh_contradict(site: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_lock_args(site, tmp_path / "cache", tmp_path / "x.toml", "--offline", "--refresh")) == 2
    assert "--offline and --refresh" in capsys.readouterr().err


def test_explain_works_offline(site: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache, _ = _warm(site, tmp_path)
    site.stop()
    capsys.readouterr()
    assert main(["explain", "helper", "--offline", "--index-url", site.index_url("main"), *TARGET,
                 "--cache-dir", str(cache)]) == 0
    assert "2.0" in capsys.readouterr().out


def test_an_offline_repository_makes_no_client_even_to_speculate(site: IndexServer, tmp_path: Path) -> None:
    cache, _ = _warm(site, tmp_path)
    made: list[int] = []

    def client() -> object:  # the factory the repository would call for its first request
        made.append(1)
        raise AssertionError("an offline repository made an HTTP client")

    main_index = IndexConfig(name="main", url=site.index_url("main"))
    repo = Repository([main_index], client, PlannerCache(cache), jobs=2, offline=True)  # type: ignore[arg-type]
    try:
        repo.prefetch_projects(["app", "helper", "never-seen", "also-never-seen"])
        found = repo.project_links("helper")
        assert found is not None
        repo.prefetch_metadata(found[1])
        assert b"Name: helper" in repo.metadata(found[1][-1])
        with pytest.raises(IndexUnavailable, match="offline: the page of never-seen on index main"):
            repo.project_links("never-seen")
    finally:
        repo.close()
    assert made == [] and repo.requests == 0


def _no_network_namespace() -> bool:
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_offline_relock_inside_a_network_namespace(site: IndexServer, tmp_path: Path) -> None:
    if not _no_network_namespace():
        pytest.skip("cannot make a network namespace here (unshare -n true fails)")
    cache, lock = _warm(site, tmp_path, fetch=True)
    site.stop()
    again = tmp_path / "netns" / "pylock.toml"
    again.parent.mkdir()
    args = _lock_args(site, cache, again, "--offline")
    bundle = tmp_path / "netns" / "b.tar.zst"
    build = ["build", "app", "--offline", "--extra-index-url", site.index_url("other"), "--index-url",
             site.index_url("main"), *TARGET, "-o", str(bundle), "--cache-dir", str(cache), "-q"]
    for argv in (args, build):
        run = subprocess.run(["unshare", "-n", sys.executable, "-m", "bundler", *argv], capture_output=True, text=True,
                             check=False, env=dict(os.environ), cwd=tmp_path, timeout=300)
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
    assert again.read_bytes() == lock.read_bytes()
    assert bundle.stat().st_size > 0
