"""bundler.pageworker: big JSON pages parsed by a real helper process give exactly the files a local
parse gives; a page it cannot take (small, busy, broken, helper gone) comes back None, for the
caller to parse itself; and a lock through the loopback index is the same with the helper as without."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import bundler.pageworker as pageworker
from bundler.errors import IndexUnavailable
from bundler.index import IndexConfig
from bundler.jsonpage import parse_json_page
from bundler.pagecheck import project_page
from bundler.pageworker import PageWorker
from bundler.workers import DaemonPool
from support.hermetic import hermetic
from support.indexserver import IndexServer
from support.plancases import JSON_TYPE, W, lock, locked, publish

IX = IndexConfig(name="main", url="https://example.org/simple/")
PAGE = "https://example.org/simple/pkg/"
TAGS = ["cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-win_amd64", "cp312-cp312-macosx_11_0_arm64", "py3-none-any"]


def big_page(versions: int = 600) -> bytes:
    """A PEP 691 page of a few thousand files, over ``SMALLEST``."""
    files: list[dict[str, Any]] = []
    for v in range(versions):
        for tag in TAGS:
            name = f"pkg-1.{v}-{tag}.whl"
            files.append({"filename": name, "url": f"https://files.example.org/packages/{v:04x}/{name}",
                          "hashes": {"sha256": f"{v:064x}"}, "requires-python": ">=3.8", "size": 1000 + v,
                          "upload-time": "2024-01-02T03:04:05.123456Z", "yanked": v % 97 == 0 or False})
        files.append({"filename": f"pkg-1.{v}.tar.gz", "url": f"https://files.example.org/packages/pkg-1.{v}.tar.gz",
                      "hashes": {"sha256": f"{v + 1:064x}"}, "core-metadata": {"sha256": f"{v + 2:064x}"}})
    body = json.dumps({"meta": {"api-version": "1.1"}, "name": "pkg", "files": files}).encode()
    assert len(body) > pageworker.SMALLEST
    return body


@pytest.fixture
def worker() -> Iterator[PageWorker]:
    w = PageWorker()
    w.start()
    deadline = time.monotonic() + 30
    while not w._ready.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert w._ready.is_set(), "the helper did not start"
    yield w
    w.close()


def test_the_helper_gives_the_files_a_local_parse_gives(worker: PageWorker) -> None:
    body = big_page()
    mine = parse_json_page(body, PAGE, IX)
    theirs = worker.parse(body, PAGE, IX)
    assert theirs is not None
    assert theirs.columns == mine.columns
    assert theirs.tag_groups() == mine.tag_groups()
    assert list(theirs) == list(mine)  # the same Links, made on use
    again = worker.parse(big_page(300), PAGE, IX)  # one helper serves page after page
    assert again is not None and again.count == 300 * 5


def test_what_the_helper_does_not_take(worker: PageWorker) -> None:
    assert worker.parse(b'{"files": []}', PAGE, IX) is None  # small: parsed where it is
    body = big_page()
    with worker._lock:  # busy with another page
        assert worker.parse(body, PAGE, IX) is None
    broken = body[:-10]
    assert worker.parse(broken, PAGE, IX) is None  # the caller parses it, and raises its own error
    with pytest.raises(IndexUnavailable, match="broken JSON page"):
        parse_json_page(broken, PAGE, IX)
    assert worker.parse(body, PAGE, IX) is not None  # still serving after a broken page


def test_a_helper_that_is_gone_leaves_the_parsing_here(worker: PageWorker) -> None:
    assert worker._proc is not None
    worker._proc.kill()
    worker._proc.wait()
    assert worker.parse(big_page(), PAGE, IX) is None
    assert worker._dead and worker.parse(big_page(), PAGE, IX) is None  # not asked again
    assert PageWorker().parse(big_page(), PAGE, IX) is None  # never started


def test_close_ends_the_helper(worker: PageWorker) -> None:
    proc = worker._proc
    assert proc is not None and proc.poll() is None
    worker.close()
    assert proc.wait(timeout=10) == 0
    assert worker.parse(big_page(), PAGE, IX) is None


def test_a_page_the_helper_refuses_raises_its_error_where_it_is_used(worker: PageWorker) -> None:
    body = big_page()[:-10]
    files = project_page(IX, body, JSON_TYPE, PAGE, PAGE, None, worker)
    with pytest.raises(IndexUnavailable, match="broken JSON page"):
        files.tag_groups()


def test_a_lock_is_the_same_with_the_helper(index_server: IndexServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hermetic(monkeypatch, tmp_path)
    wheels = [W("app", "1.0", deps=["lib>=1", "tool"]), W("lib", "1.0"), W("lib", "2.0", deps=["tool<3"]),
              W("tool", "2.0"), W("tool", "3.0"), W("pip", "24.0")]
    publish(index_server, wheels, formats=("json",))
    assert lock(tmp_path, index_server, "app", out="alone.toml", cache=False) == 0

    used: list[str] = []
    parse = PageWorker.parse

    def counted(self: PageWorker, body: bytes, page_url: str, index: IndexConfig) -> Any:
        files = parse(self, body, page_url, index)
        if files is not None:
            used.append(page_url)
        return files

    # Every page goes to the helper once it runs, also one the resolver waits for (which a lock parses
    # in place): lib's and tool's pages are asked for after the planner listens, so the helper has started.
    monkeypatch.setattr(pageworker, "SMALLEST", 0)
    monkeypatch.setattr(DaemonPool, "on_lane", lambda self: True)
    monkeypatch.setattr(PageWorker, "parse", counted)
    monkeypatch.setattr(PageWorker, "start", _started_and_ready(PageWorker.start))
    assert lock(tmp_path, index_server, "app", out="helped.toml", cache=False) == 0
    assert used, "no page went to the helper"
    assert locked(tmp_path, "helped.toml").packages == locked(tmp_path, "alone.toml").packages


def _started_and_ready(start: Any) -> Any:
    """``PageWorker.start`` that returns once the helper is ready, so the small test lock uses it."""
    def wait(self: PageWorker) -> None:
        start(self)
        deadline = time.monotonic() + 30
        while not self._ready.is_set() and not self._dead and time.monotonic() < deadline:
            time.sleep(0.01)
    return wait


def test_the_helper_runs_this_wheelhouse_not_a_bundler_folder_where_it_is_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planted = tmp_path / "bundler"
    planted.mkdir()
    (planted / "__init__.py").write_text("raise SystemExit('planted')\n")
    (planted / "pageworker.py").write_text("raise SystemExit('planted')\n")
    monkeypatch.chdir(tmp_path)
    w = PageWorker()
    w.start()
    try:
        deadline = time.monotonic() + 30
        while not w._ready.is_set() and not w._dead and time.monotonic() < deadline:
            time.sleep(0.01)
        assert w.parse(big_page(), PAGE, IX) is not None
    finally:
        w.close()


def test_only_a_planner_reading_pages_from_the_network_starts_the_helper(index_server: IndexServer, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``explain`` (no listener) and a warm lock (no request) start no helper process; a cold lock
    does, whether its first requests went out before the planner listened or after."""
    from bundler.http import make_client
    from bundler.httpcache import PlannerCache
    from bundler.repository import Repository

    hermetic(monkeypatch, tmp_path)
    publish(index_server, [W("app", "1.0"), W("lib", "1.0")], formats=("json",))
    url = index_server.index_url("main")

    def repository() -> Repository:
        return Repository([IndexConfig(name="main", url=url)], make_client, PlannerCache(tmp_path / "cache"))

    def started(repo: Repository) -> bool:
        return repo._helper._proc is not None

    explaining = repository()
    try:
        assert explaining.project_links("app") is not None and not started(explaining)
    finally:
        explaining.close()
    early = repository()  # its first page is asked for before anyone listens, as a lock's are
    try:
        assert early.project_links("lib") is not None and not started(early)
        early.listen(lambda *a: None, lambda *a: None)
        assert started(early)
    finally:
        early.close()
    warm = repository()  # both pages are in the cache and fresh: no request, no helper
    try:
        warm.listen(lambda *a: None, lambda *a: None)
        assert warm.project_links("app") is not None and warm.project_links("lib") is not None
        assert warm.requests == 0 and not started(warm)
    finally:
        warm.close()
    (tmp_path / "cache").rename(tmp_path / "old-cache")
    late = repository()  # listening first, then a page from the network
    try:
        late.listen(lambda *a: None, lambda *a: None)
        assert not started(late)
        assert late.project_links("app") is not None and started(late)
    finally:
        late.close()
