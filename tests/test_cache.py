"""bundler.cache: the content-addressed store treats its own folder as outside input.

A damaged or tampered cache (a link planted where a partial download goes, a folder where a blob
should be, a FIFO where a state record should be) is repaired or ignored, never written through,
and never a traceback.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from bundler.cache import BlobStore, PartialState
from bundler.fetch import FetchOptions, FileSpec, fetch_files
from support.faultserver import FaultServer, Redirect

FAST = FetchOptions(jobs=2, retries=1, timeout=2.0)


def test_put_bytes_verifies_and_publishes(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = b"wheel bytes"
    digest = hashlib.sha256(data).hexdigest()
    assert store.put_bytes(digest, data).read_bytes() == data
    with pytest.raises(ValueError):
        store.put_bytes("0" * 64, data)
    assert not store.path("0" * 64).exists()


def test_a_folder_where_a_blob_should_be_is_repaired(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = b"x" * 100
    digest = hashlib.sha256(data).hexdigest()
    store.path(digest).mkdir(parents=True)
    assert store.verified(digest, len(data)) is None
    assert store.put_bytes(digest, data).read_bytes() == data


def test_a_link_where_a_blob_should_be_is_not_trusted(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "cache")
    data = b"real"
    digest = hashlib.sha256(data).hexdigest()
    outside = tmp_path / "outside"
    outside.write_bytes(data)
    store.path(digest).parent.mkdir(parents=True)
    store.path(digest).symlink_to(outside)
    assert store.verified(digest, len(data)) is None
    assert outside.read_bytes() == data  # the link is removed, not its target


def test_a_file_where_the_blobs_folder_should_be(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    (tmp_path / "blobs").write_text("in the way")
    data = b"abc"
    digest = hashlib.sha256(data).hexdigest()
    assert store.put_bytes(digest, data).read_bytes() == data


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_state_record_is_ignored_not_waited_on(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = "a" * 64
    part, state = store.partial_paths(digest)
    state.parent.mkdir(parents=True)
    os.mkfifo(state)
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(store.read_state(digest)), daemon=True)
    t.start()
    t.join(5)
    assert result == [None]


@pytest.mark.parametrize("record", ['{"url": 5, "sha256": "' + "a" * 64 + '", "size": "x"}', "[1, 2]", "{", '{"bogus": 1}'])
def test_odd_state_records_are_ignored(tmp_path: Path, record: str) -> None:
    store = BlobStore(tmp_path)
    digest = "a" * 64
    _, state = store.partial_paths(digest)
    state.parent.mkdir(parents=True)
    state.write_text(record)
    assert store.read_state(digest) is None
    store.write_state(PartialState(url="https://x/y", sha256=digest, size=1))
    assert store.read_state(digest) is not None


def test_fetch_never_writes_through_a_planted_partial_link(tmp_path: Path, srv: FaultServer) -> None:
    f = srv.add_file("a-1.0-py3-none-any.whl", size=200_000)
    store = BlobStore(tmp_path / "cache")
    part, _ = store.partial_paths(f.sha256)
    part.parent.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    part.symlink_to(victim)
    report = fetch_files([FileSpec(url=f.url, sha256=f.sha256, size=f.size, filename=f.name)], store, FAST)
    assert report.paths[f.sha256].read_bytes() == f.path.read_bytes()
    assert victim.read_bytes() == b"precious"


def test_redirect_loop_is_a_clear_failure(tmp_path: Path, srv: FaultServer) -> None:
    from bundler.errors import DownloadFailed

    f = srv.add_file("loop-1.0-py3-none-any.whl", size=1000)
    srv.fault(f.name, Redirect(f.url), persistent=True)
    with pytest.raises(DownloadFailed, match="redirects in a loop"):
        fetch_files([FileSpec(url=f.url, sha256=f.sha256, size=f.size, filename=f.name)], BlobStore(tmp_path), FAST)
