"""The planner's on-disk cache (``bundler.httpcache``): index pages with their validators, parsed-link
records and core metadata.

Everything the cache reads back is outside input: a damaged, edited or planted entry must be a miss,
never wrong data, never a traceback and never a hang; and a write never goes through a link planted
where an entry should be. Real files under ``tmp_path``, no mocks.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from urllib.parse import urlsplit
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundler.cache import BlobStore
from bundler.errors import IndexUnavailable
from bundler.httpcache import MAX_PAGE, MAX_RECORD, CachedPage, PlannerCache, links_key, max_age_of, offline_miss
from bundler.index import IndexConfig, Link
from bundler.wheelmeta import BadMetadata
from support.wheelgen import make_wheel

# WHEELHOUSE_FUZZ_EXAMPLES=5000 for a longer hunt than the suite's default (as in test_fuzz.py).
SETTINGS = settings(max_examples=int(os.environ.get("WHEELHOUSE_FUZZ_EXAMPLES", "200")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")

INDEX = IndexConfig(name="main", url="https://pypi.example/simple/")
URL = "https://pypi.example/simple/demo/"
SHA = "ab" * 32
META_KEY = "cd" * 32


def _page(**changes: Any) -> CachedPage:
    fields: dict[str, Any] = dict(url=URL, body=b"<html>demo</html>", content_type="text/html", etag='"v1"',
                                  last_modified="Mon, 01 Jan 2024 00:00:00 GMT", stored=time.time(), max_age=600)
    fields.update(changes)
    return CachedPage(**fields)


def _link(filename: str = "demo-1.0-py3-none-any.whl", **changes: Any) -> Link:
    fields: dict[str, Any] = dict(filename=filename, url=f"https://files.example/{filename}", index=INDEX.name,
                                  index_url=INDEX.url, sha256=SHA)
    fields.update(changes)
    return Link(**fields)


def _paths(cache: PlannerCache, url: str = URL) -> tuple[Path, Path]:
    """The validator record and body of ``url``, where the cache puts them."""
    return cache._page_paths(url)


def _finishes(call: Callable[[], object], seconds: float = 10) -> list[object]:
    """``[call()]``, failing the test if it does not return within ``seconds`` (a FIFO opened for
    reading would block forever)."""
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(call()), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "blocked on a cache entry"
    return result


# ---------------------------------------------------------------------------------------------
# pages


def test_page_round_trip(tmp_path: Path) -> None:
    cache = PlannerCache(tmp_path)
    page = _page()
    cache.put_page(page)
    got = cache.get_page(URL)
    assert got == page  # body, content type, ETag, Last-Modified, stored time, max-age
    assert got is not None and got.fresh and got.final_url is None and got.base(URL) == URL


def test_page_without_validators_round_trips_as_none(tmp_path: Path) -> None:
    cache = PlannerCache(tmp_path)
    cache.put_page(_page(etag=None, last_modified=None, content_type="", body=b""))
    got = cache.get_page(URL)
    assert got is not None and (got.etag, got.last_modified, got.content_type, got.body) == (None, None, "", b"")


def test_pages_are_kept_apart_by_url(tmp_path: Path) -> None:
    cache = PlannerCache(tmp_path)
    cache.put_page(_page(body=b"demo"))
    cache.put_page(_page(url="https://pypi.example/simple/other/", body=b"other"))
    assert cache.get_page(URL).body == b"demo"  # type: ignore[union-attr]
    assert cache.get_page("https://pypi.example/simple/other/").body == b"other"  # type: ignore[union-attr]
    assert cache.get_page("https://pypi.example/simple/third/") is None


@pytest.mark.parametrize(("cache_control", "max_age"), [
    (None, 0),
    ("", 0),
    ("max-age=600", 600),
    ("public, max-age=60", 60),
    ("max-age=0", 0),
    ("no-cache", 0),
    ("no-store", 0),
    ("max-age=600, no-cache", 0),
    ("no-store, max-age=600", 0),
    ("private", 0),
    ("max-age=", 0),
    ("max-age=abc", 0),
    ("max-age=-5", 0),
    ("garbage;;==", 0),
    ("max-age=99999999999999999999", 99999999999999999999),
])
def test_max_age_of(cache_control: str | None, max_age: int) -> None:
    assert max_age_of(cache_control) == max_age


@pytest.mark.parametrize(("cache_control", "fresh"), [("max-age=600", True), ("no-cache", False), (None, False),
                                                      ("max-age=x", False)])
def test_fresh_follows_cache_control(tmp_path: Path, cache_control: str | None, fresh: bool) -> None:
    cache = PlannerCache(tmp_path)
    cache.put_page(_page(max_age=max_age_of(cache_control)))
    assert cache.get_page(URL).fresh is fresh  # type: ignore[union-attr]


def test_fresh_expires() -> None:
    assert _page(stored=time.time() - 10, max_age=60).fresh
    assert not _page(stored=time.time() - 61, max_age=60).fresh
    assert not _page(stored=time.time(), max_age=0).fresh


def test_a_304_refresh_keeps_the_body_and_updates_the_time(tmp_path: Path) -> None:
    cache = PlannerCache(tmp_path)
    old = _page(stored=time.time() - 3600, max_age=60)
    cache.put_page(old)
    assert not cache.get_page(URL).fresh  # type: ignore[union-attr]
    _, body = _paths(cache)
    inode = body.stat().st_ino
    now = time.time()
    cache.put_page(replace(old, stored=now, max_age=300, etag='"v2"'), body_unchanged=True)
    got = cache.get_page(URL)
    assert got is not None and got.body == old.body and got.stored == now and got.max_age == 300 and got.fresh
    assert got.etag == '"v2"'
    assert body.stat().st_ino == inode  # only the small validator record was rewritten


def test_a_304_refresh_for_a_body_the_cache_lost_is_a_miss(tmp_path: Path) -> None:
    cache = PlannerCache(tmp_path)
    cache.put_page(_page())
    _paths(cache)[1].unlink()
    cache.put_page(_page(stored=time.time()), body_unchanged=True)
    assert cache.get_page(URL) is None


def test_pages_are_keyed_and_stored_without_credentials(tmp_path: Path) -> None:
    cache = PlannerCache(tmp_path)
    secret_url = "https://alice:s3cret@pypi.example/simple/demo/"
    cache.put_page(_page(url=secret_url, final_url="https://alice:s3cret@pypi.example/simple/demo-moved/"))
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or b"s3cret" not in path.read_bytes()
    got = cache.get_page(URL)  # the same entry, asked for without credentials
    assert got is not None and got.final_url == "https://pypi.example/simple/demo-moved/"
    assert got.base(secret_url) == secret_url.replace("demo/", "demo-moved/")  # same host: credentials put back


@pytest.mark.parametrize(("final_url", "asked", "base"), [
    (None, URL, URL),
    ("https://pypi.example/simple/Demo/", URL, "https://pypi.example/simple/Demo/"),
    ("https://mirror.example/simple/demo/", URL, "https://mirror.example/simple/demo/"),
    ("https://pypi.example/simple/Demo/", "https://u:p@pypi.example/simple/demo/", "https://u:p@pypi.example/simple/Demo/"),
    # another host never receives the credentials given for the one asked
    ("https://mirror.example/simple/demo/", "https://u:p@pypi.example/simple/demo/", "https://mirror.example/simple/demo/"),
])
def test_base(final_url: str | None, asked: str, base: str) -> None:
    assert _page(final_url=final_url).base(asked) == base


def test_a_final_url_equal_to_the_url_is_not_stored(tmp_path: Path) -> None:
    cache = PlannerCache(tmp_path)
    cache.put_page(_page(final_url=URL))
    assert cache.get_page(URL).final_url is None  # type: ignore[union-attr]


def test_each_kind_of_entry_is_one_flat_folder(tmp_path: Path) -> None:
    """A cold lock writes hundreds of entries: none of them makes a folder of its own."""
    cache = PlannerCache(tmp_path)
    for i in range(40):
        cache.put_page(_page(url=f"https://pypi.example/simple/p{i}/", body=b"x%d" % i))
        cache.put_metadata(f"{i:064x}", b"Name: p\n")
        cache.put_choices(f"{i + 100:064x}", b"[]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["choices", "metadata", "pages"]
    assert all(entry.is_file() for kind in tmp_path.iterdir() for entry in kind.iterdir())
    assert [len(list(kind.iterdir())) for kind in sorted(tmp_path.iterdir())] == [40, 40, 80]
    assert cache.get_page("https://pypi.example/simple/p7/").body == b"x7"  # type: ignore[union-attr]


def test_a_disabled_cache_stores_and_returns_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cache = PlannerCache(None)
    cache.put_page(_page())
    cache.put_page(_page(), body_unchanged=True)
    cache.put_choices("k" * 64, b"[]")
    cache.put_metadata(META_KEY, b"Name: demo\n")
    assert cache.get_page(URL) is None
    assert cache.get_choices("k" * 64) is None
    assert cache.get_metadata(META_KEY) is None
    assert cache.kept_wheel_metadata(_link()) is None
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# damaged page entries


def _rewrite_meta(cache: PlannerCache, change: Callable[[dict[str, Any]], object]) -> None:
    meta_path = _paths(cache)[0]
    meta = json.loads(meta_path.read_bytes())
    change(meta)
    meta_path.write_text(json.dumps(meta))


def _stored_literal(literal: str) -> Callable[[PlannerCache], None]:
    """Replace the stored time by a JSON literal json.dumps would not write (a huge integer)."""
    def damage(cache: PlannerCache) -> None:
        meta_path = _paths(cache)[0]
        meta = json.loads(meta_path.read_bytes())
        meta_path.write_text(json.dumps(meta).replace(json.dumps(meta["stored"]), literal, 1))
    return damage


def _meta_bytes(data: bytes) -> Callable[[PlannerCache], None]:
    return lambda cache: _paths(cache)[0].write_bytes(data)


_PAGE_DAMAGE: dict[str, Callable[[PlannerCache], object]] = {
    "record missing": lambda c: _paths(c)[0].unlink(),
    "body missing": lambda c: _paths(c)[1].unlink(),
    "record truncated": lambda c: _paths(c)[0].write_bytes(_paths(c)[0].read_bytes()[:40]),
    "body truncated": lambda c: _paths(c)[1].write_bytes(_paths(c)[1].read_bytes()[:5]),
    "body edited": lambda c: _paths(c)[1].write_bytes(b"<html>evil</html>"),
    "record empty": _meta_bytes(b""),
    "record garbage": _meta_bytes(b"\x00\xff garbage \x80"),
    "record not utf-8": _meta_bytes(b'{"url": "\xff"}'),
    "record a list": _meta_bytes(b"[1, 2, 3]"),
    "record a number": _meta_bytes(b"5"),
    "record a string": _meta_bytes(b'"text/html"'),
    "record null": _meta_bytes(b"null"),
    "record nested deep (lists)": _meta_bytes(b"[" * 100_000 + b"]" * 100_000),
    "record nested deep (objects)": _meta_bytes(b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    "record with a 5000-digit number": _meta_bytes(b'{"stored": 1' + b"0" * 5000 + b"}"),
    "no body digest": lambda c: _rewrite_meta(c, lambda m: m.pop("body-sha256")),
    "body digest not a string": lambda c: _rewrite_meta(c, lambda m: m.update({"body-sha256": 5})),
    "content type a number": lambda c: _rewrite_meta(c, lambda m: m.update({"content-type": 5})),
    "etag a list": lambda c: _rewrite_meta(c, lambda m: m.update({"etag": ["x"]})),
    "last-modified an object": lambda c: _rewrite_meta(c, lambda m: m.update({"last-modified": {"a": 1}})),
    "final url a number": lambda c: _rewrite_meta(c, lambda m: m.update({"final-url": 1})),
    "stored a string": lambda c: _rewrite_meta(c, lambda m: m.update({"stored": "yesterday"})),
    "stored null": lambda c: _rewrite_meta(c, lambda m: m.update({"stored": None})),
    "stored NaN": _stored_literal("NaN"),
    "stored infinite": _stored_literal("Infinity"),
    "stored too large for a float": _stored_literal("1" + "0" * 400),
    "max-age a string": lambda c: _rewrite_meta(c, lambda m: m.update({"max-age": "600"})),
    "max-age a float": lambda c: _rewrite_meta(c, lambda m: m.update({"max-age": 1.5})),
    "max-age a bool": lambda c: _rewrite_meta(c, lambda m: m.update({"max-age": True})),
}


@pytest.mark.parametrize("damage", _PAGE_DAMAGE.values(), ids=_PAGE_DAMAGE.keys())
def test_a_damaged_page_entry_is_a_miss(tmp_path: Path, damage: Callable[[PlannerCache], object]) -> None:
    cache = PlannerCache(tmp_path)
    cache.put_page(_page())
    damage(cache)
    assert cache.get_page(URL) is None
    cache.put_page(_page(body=b"new"))  # and the next store repairs it
    assert cache.get_page(URL).body == b"new"  # type: ignore[union-attr]


@pytest.mark.parametrize("which", ["record", "body"])
def test_an_oversized_page_file_is_a_miss(tmp_path: Path, which: str) -> None:
    cache = PlannerCache(tmp_path)
    cache.put_page(_page())
    path = _paths(cache)[0 if which == "record" else 1]
    with open(path, "r+b") as f:  # sparse: no disk or time spent on the zeros
        f.truncate((MAX_RECORD if which == "record" else MAX_PAGE) + 1)
    assert cache.get_page(URL) is None


@needs_fifo
@pytest.mark.parametrize("which", [0, 1], ids=["record", "body"])
def test_a_fifo_where_a_page_file_should_be_is_a_miss_not_a_hang(tmp_path: Path, which: int) -> None:
    cache = PlannerCache(tmp_path)
    cache.put_page(_page())
    path = _paths(cache)[which]
    path.unlink()
    os.mkfifo(path)
    assert _finishes(lambda: cache.get_page(URL)) == [None]


def _plant_link(tmp_path: Path, path: Path, data: bytes | None) -> Path:
    """Replace ``path`` by a link to a file outside the cache holding ``data`` (a link to a FIFO
    when ``data`` is None); returns the target."""
    target = tmp_path / "outside" / path.name
    target.parent.mkdir(exist_ok=True)
    if data is None:
        os.mkfifo(target)
    else:
        target.write_bytes(data)
    path.unlink()
    path.symlink_to(target)
    return target


@pytest.mark.parametrize("which", [0, 1], ids=["record", "body"])
def test_a_link_where_a_page_file_should_be_is_a_miss(tmp_path: Path, which: int) -> None:
    # The link points at a copy of the very entry: only the link makes it a miss. _store never
    # leaves a link, so one is planted, and what it points at is not the cache's to read.
    cache = PlannerCache(tmp_path / "cache")
    cache.put_page(_page())
    path = _paths(cache)[which]
    _plant_link(tmp_path, path, path.read_bytes())
    assert cache.get_page(URL) is None


@needs_fifo
def test_a_link_to_a_fifo_or_nowhere_is_a_miss(tmp_path: Path) -> None:
    cache = PlannerCache(tmp_path / "cache")
    cache.put_page(_page())
    meta, body = _paths(cache)
    _plant_link(tmp_path, body, None)
    assert _finishes(lambda: cache.get_page(URL)) == [None]
    meta.unlink()
    meta.symlink_to(tmp_path / "nowhere")
    assert cache.get_page(URL) is None


def test_a_folder_where_a_page_file_should_be(tmp_path: Path) -> None:
    cache = PlannerCache(tmp_path)
    meta, body = _paths(cache)
    meta.mkdir(parents=True)
    (meta / "inside").write_text("x")
    cache.put_page(_page())  # cannot replace the folder: the store is skipped, the run goes on
    assert cache.get_page(URL) is None
    assert (meta / "inside").read_text() == "x"


def test_a_file_where_the_pages_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "pages").write_text("in the way")
    cache = PlannerCache(tmp_path)
    cache.put_page(_page())
    assert cache.get_page(URL) is None
    assert (tmp_path / "pages").read_text() == "in the way"


def test_writes_replace_a_planted_link_never_write_through_it(tmp_path: Path) -> None:
    cache = PlannerCache(tmp_path / "cache")
    choice = "c" * 64
    cache.put_page(_page(body=b"old"))
    cache.put_choices(choice, b"old")
    cache.put_metadata(META_KEY, b"old")
    meta, body = _paths(cache)
    choices = cache.root / "choices" / choice  # type: ignore[operator]
    victims = [_plant_link(tmp_path, p, b"precious " + p.name.encode())
               for p in (meta, body, choices, cache._metadata_path(META_KEY))]
    cache.put_page(_page(body=b"new"))
    cache.put_choices(choice, b"new")
    cache.put_metadata(META_KEY, b"Name: demo\n")
    for victim in victims:
        assert victim.read_bytes() == b"precious " + victim.name.encode()
    for p in (meta, body, choices, cache._metadata_path(META_KEY)):
        assert p.is_file() and not p.is_symlink()
    assert cache.get_page(URL).body == b"new"  # type: ignore[union-attr]
    assert cache.get_choices(choice) == b"new"
    assert cache.get_metadata(META_KEY) == b"Name: demo\n"


def test_a_304_refresh_does_not_write_through_a_planted_record_link(tmp_path: Path) -> None:
    cache = PlannerCache(tmp_path / "cache")
    cache.put_page(_page())
    victim = _plant_link(tmp_path, _paths(cache)[0], b"precious")
    cache.put_page(_page(stored=time.time()), body_unchanged=True)
    assert victim.read_bytes() == b"precious"
    assert cache.get_page(URL) is not None


@needs_fifo
def test_a_write_over_a_fifo_does_not_block(tmp_path: Path) -> None:
    cache = PlannerCache(tmp_path)
    cache.put_page(_page(body=b"old"))
    _, body = _paths(cache)
    body.unlink()
    os.mkfifo(body)
    _finishes(lambda: cache.put_page(_page(body=b"new")))
    assert cache.get_page(URL).body == b"new"  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# links_key and offline_miss


def test_links_key_names_everything_the_links_depend_on() -> None:
    base = links_key(b"body", "text/html", URL, INDEX)
    assert base is not None and len(base) == 64
    assert links_key(b"body", "text/html", URL, INDEX) == base  # stable: the record is found again
    variants = [
        links_key(b"body2", "text/html", URL, INDEX),
        links_key(b"body", "application/vnd.pypi.simple.v1+json", URL, INDEX),
        links_key(b"body", "text/html", URL + "moved/", INDEX),
        links_key(b"body", "text/html", URL, replace(INDEX, name="other")),
        links_key(b"body", "text/html", URL, replace(INDEX, url="https://mirror.example/simple/")),
    ]
    assert None not in variants and len({base, *variants}) == len(variants) + 1


@pytest.mark.parametrize(("page_url", "index_url"), [
    ("https://u:token@pypi.example/simple/demo/", INDEX.url),
    (URL, "https://u:token@pypi.example/simple/"),
])
def test_no_links_key_when_a_url_carries_credentials(page_url: str, index_url: str) -> None:
    assert links_key(b"body", "text/html", page_url, replace(INDEX, url=index_url)) is None


def test_offline_miss_names_what_is_missing() -> None:
    e = offline_miss("the page of demo on index main (https://pypi.example/simple/demo/)")
    assert isinstance(e, IndexUnavailable)
    assert "the page of demo on index main (https://pypi.example/simple/demo/)" in e.message
    assert e.message.startswith("offline:") and "not in the cache" in e.message
    assert e.hint is not None and "--offline" in e.hint and "--cache-dir" in e.hint
    assert e.hint in str(e)


# ---------------------------------------------------------------------------------------------
# core metadata


def test_metadata_by_key(tmp_path: Path) -> None:
    cache = PlannerCache(tmp_path)
    cache.put_metadata(META_KEY, b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    cache.put_metadata("ef" * 32, b"Name: other\n")
    assert cache.get_metadata(META_KEY) == b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
    assert cache.get_metadata("ef" * 32) == b"Name: other\n"
    assert cache.get_metadata("01" * 32) is None
    cache.put_metadata(META_KEY, b"Name: demo\n")  # a second store replaces the first
    assert cache.get_metadata(META_KEY) == b"Name: demo\n"


@pytest.mark.parametrize("key", [None, ""])
def test_no_metadata_without_a_key(tmp_path: Path, key: str | None) -> None:
    cache = PlannerCache(tmp_path)
    cache.put_metadata(key, b"Name: demo\n")
    assert cache.get_metadata(key) is None
    assert list(tmp_path.iterdir()) == []


def _odd_metadata(tmp_path: Path, kind: str) -> Path:
    cache = PlannerCache(tmp_path / "cache")
    cache.put_metadata(META_KEY, b"Name: demo\n")
    path = cache._metadata_path(META_KEY)
    if kind == "folder":
        path.unlink()
        path.mkdir()
    elif kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif kind == "link":
        _plant_link(tmp_path, path, path.read_bytes())
    elif kind == "dangling link":
        path.unlink()
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "oversized":
        with open(path, "r+b") as f:
            f.truncate(MAX_RECORD + 1)
    return path


@pytest.mark.parametrize("kind", ["folder", pytest.param("fifo", marks=needs_fifo), "link", "dangling link", "oversized"])
def test_an_unreadable_metadata_entry_is_a_miss(tmp_path: Path, kind: str) -> None:
    _odd_metadata(tmp_path, kind)
    cache = PlannerCache(tmp_path / "cache")
    assert _finishes(lambda: cache.get_metadata(META_KEY)) == [None]


def test_kept_wheel_metadata(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "dist", "demo", "1.0", requires_dist=["attrs>=20"])
    data = wheel.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    cache = PlannerCache(tmp_path / "cache")
    link = _link(wheel.name, sha256=sha, size=len(data))
    assert cache.kept_wheel_metadata(link) is None  # not in the blob store
    BlobStore(tmp_path / "cache").put_bytes(sha, data)
    meta = cache.kept_wheel_metadata(link)
    assert meta is not None and b"Name: demo" in meta and b"Requires-Dist: attrs>=20" in meta
    assert cache.kept_wheel_metadata(replace(link, sha256=None)) is None
    assert cache.kept_wheel_metadata(replace(link, size=len(data) + 1)) is None  # a size the blob does not have


def test_kept_wheel_metadata_of_a_wheel_without_any(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("demo/__init__.py", "")
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    BlobStore(tmp_path).put_bytes(sha, data)
    with pytest.raises(BadMetadata):
        PlannerCache(tmp_path).kept_wheel_metadata(_link(sha256=sha, size=len(data)))


# ---------------------------------------------------------------------------------------------
# fuzz: whatever bytes sit in the record files, a read is a miss or a valid result


_scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.just(10**400) | st.floats()
            | st.text(max_size=20))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
_PAGE_KEYS = ("url", "content-type", "etag", "last-modified", "stored", "max-age", "final-url")
_page_records = st.fixed_dictionaries({}, optional={k: _json | st.text(max_size=30) for k in _PAGE_KEYS})

@SETTINGS
@given(which=st.sampled_from(["record", "body", "metadata"]),
       raw=st.binary(max_size=300), page_record=_page_records, structured=st.booleans(), right_digest=st.booleans())
def test_fuzz_record_files(which: str, raw: bytes, page_record: dict[str, Any], structured: bool, right_digest: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cache = PlannerCache(Path(tmp))
        cache.put_page(_page())
        cache.put_metadata(META_KEY, b"Name: demo\n")
        meta_path, body_path = _paths(cache)
        if which == "record":
            if structured:
                # with the body's right digest the damage reaches the checks of every field
                page_record["body-sha256"] = hashlib.sha256(_page().body).hexdigest() if right_digest else raw.hex()
                meta_path.write_text(json.dumps(page_record))
            else:
                meta_path.write_bytes(raw)
        elif which == "body":
            body_path.write_bytes(raw)
        else:
            cache._metadata_path(META_KEY).write_bytes(raw)

        page = cache.get_page(URL)
        assert page is None or (isinstance(page.body, bytes) and isinstance(page.content_type, str)
                                and isinstance(page.stored, float) and type(page.max_age) is int
                                and all(v is None or isinstance(v, str) for v in (page.etag, page.last_modified, page.final_url)))
        # links resolve against the URL asked for, or against where a redirect led: a web URL
        assert page is None or (isinstance(page.fresh, bool) and (page.base(URL) == URL or urlsplit(page.base(URL)).scheme
                                                                  in ("http", "https") and urlsplit(page.base(URL)).hostname))
        meta = cache.get_metadata(META_KEY)
        assert meta is None or isinstance(meta, bytes)


@pytest.mark.parametrize("final", ["0", "", "/simple/demo/", "file:///etc/", "ftp://h/x", "https://", "https://h/a b", "http://[bad/"])
def test_a_planted_final_url_that_no_redirect_leads_to_is_a_miss(tmp_path: Path, final: str) -> None:
    cache = PlannerCache(tmp_path)
    cache.put_page(_page())
    meta_path, _ = _paths(cache)
    record = json.loads(meta_path.read_text())
    record["final-url"] = final
    meta_path.write_text(json.dumps(record))
    assert cache.get_page(URL) is None
    record["final-url"] = "https://mirror.example/simple/demo/"  # a real redirect's target is kept
    meta_path.write_text(json.dumps(record))
    page = cache.get_page(URL)
    assert page is not None and page.base(URL) == "https://mirror.example/simple/demo/"
