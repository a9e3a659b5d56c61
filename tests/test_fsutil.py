"""fsutil's write and read primitives: atomic publication, the umask's mode, links never followed
where refused, sizes capped, nothing left behind after a failure."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundler.fsutil import atomic_write, read_regular
from bundler.httpcache import PlannerCache, _store


def _leftovers(folder: Path) -> list[str]:
    return [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_atomic_write_publishes_the_bytes_with_the_umasks_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a" / "b" / "f", b"data")
    finally:
        os.umask(old)
    f = tmp_path / "a" / "b" / "f"
    assert f.read_bytes() == b"data"
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    assert _leftovers(f.parent) == []


def test_atomic_write_replaces_a_link_and_never_writes_through_it(tmp_path: Path) -> None:
    target = tmp_path / "outside"
    target.write_bytes(b"keep")
    link = tmp_path / "entry"
    link.symlink_to(target)
    atomic_write(link, b"new")
    assert target.read_bytes() == b"keep"
    assert not link.is_symlink() and link.read_bytes() == b"new"


def test_atomic_write_into_a_missing_folder_without_make_parent_fails_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "missing" / "f", b"x", make_parent=False)
    assert not (tmp_path / "missing").exists()


def test_a_failed_write_removes_its_temporary(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "f", "not bytes")  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_read_regular_caps_the_size(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 10)
    assert read_regular(f, 10) == b"x" * 10
    with pytest.raises(OSError) as e:
        read_regular(f, 9)
    assert e.value.errno == errno.EFBIG
    (tmp_path / "empty").write_bytes(b"")
    assert read_regular(tmp_path / "empty", 0) == b""


def test_read_regular_refuses_a_fifo_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError) as e:
        read_regular(fifo, 100)
    assert e.value.errno == errno.EINVAL


def test_read_regular_follows_links_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"secret")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "real")
    assert read_regular(link, 100) == b"secret"
    with pytest.raises(OSError) as e:
        read_regular(link, 100, follow=False)
    assert e.value.errno == errno.ELOOP


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 3 << 20), slack=st.integers(-2, 2))
def test_read_regular_gives_back_what_was_written_or_refuses_past_the_limit(tmp_path_factory: pytest.TempPathFactory,
                                                                          size: int, slack: int) -> None:
    folder = tmp_path_factory.mktemp("rw")
    data = os.urandom(16) * (size // 16) + b"z" * (size % 16)
    atomic_write(folder / "f", data)
    limit = max(0, size + slack)
    if size <= limit:
        assert read_regular(folder / "f", limit) == data
    else:
        with pytest.raises(OSError):
            read_regular(folder / "f", limit)


def test_a_cache_entry_is_written_again_after_its_folder_was_removed(tmp_path: Path) -> None:
    cache = PlannerCache(tmp_path / "cache")
    cache.put_metadata("ab" + "0" * 62, b"one")  # the folder is made, and remembered
    folder = tmp_path / "cache" / "metadata"
    for entry in folder.iterdir():
        entry.unlink()
    folder.rmdir()
    cache.put_metadata("ab" + "1" * 62, b"two")
    assert cache.get_metadata("ab" + "1" * 62) == b"two"


def test_a_cache_entry_in_a_folder_that_became_a_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "d").write_bytes(b"not a folder")
    _store(tmp_path / "d" / "entry", b"x")  # a miss later, never an error now
    assert (tmp_path / "d").read_bytes() == b"not a folder"
