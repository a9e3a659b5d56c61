"""The HTTP ``ProjectIndex`` (``bundler.repository``) and the index-selection rule, end to end through
``main`` against the loopback index server: which index supplies a project, direct URLs, what
goes over the wire, and the page and metadata caches. The selection rule and the metadata
strategies are also tested directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pytest

from bundler.cli import main
from bundler.errors import HashMismatch, ResponseTooLarge
from bundler.httpcache import CachedPage, PlannerCache, links_key
from bundler.index import IndexConfig, Link, supplying_indexes
from bundler.lock import read_lock
from bundler.remote_metadata import remote_metadata
from bundler.repository import Repository
from support.wheelgen import make_wheel, read_metadata
from support.hermetic import hermetic
from support.indexserver import IndexServer
from support.plancases import JSON_TYPE, W, lock, locked, publish, sha256_of, stderr_of, versions, wheels


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, "MACOSX_DEPLOYMENT_TARGET")



# ---------------------------------------------------------------------------------------------
# the selection rule and the metadata strategies, without a server

PRIVATE = IndexConfig(name="private", url="https://private.example/simple/", packages=("acme-*",))
OTHER = IndexConfig(name="other", url="https://other.example/simple/", packages=("acme-core", "tool"))
EXTRA = IndexConfig(name="extra", url="https://extra.example/simple/")
MAIN = IndexConfig(name="main", url="https://main.example/simple/")


@pytest.mark.parametrize(("project", "expect"), [
    ("Acme_Core", ["private"]),  # the first explicit index that claims it, alone
    ("acme-util", ["private"]),
    ("tool", ["other"]),
    ("requests", ["extra", "main"]),  # general indexes in priority order; explicit ones serve nothing else
])
def test_supplying_indexes(project: str, expect: list[str]) -> None:
    assert [i.name for i in supplying_indexes([PRIVATE, EXTRA, OTHER, MAIN], project)] == expect


@dataclass
class Answer:
    status_code: int
    content: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class FakeServer:
    """A ``get(url, headers)`` for ``remote_metadata``: a wheel, an optional .metadata file, Range on or off."""

    def __init__(self, wheel: bytes, metadata: bytes | None, ranges: bool) -> None:
        self.wheel, self.metadata_file, self.ranges = wheel, metadata, ranges
        self.asked: list[tuple[str, str | None]] = []

    def get(self, url: str, headers: Mapping[str, str], limit: int) -> Answer:
        self.asked.append((url.rsplit("/", 1)[1], headers.get("Range")))
        if url.endswith(".metadata"):
            return Answer(200, self.metadata_file) if self.metadata_file is not None else Answer(404)
        rng, size = headers.get("Range"), len(self.wheel)
        if not rng or not self.ranges:
            if size > limit:  # the reader cuts a body off at its limit, as http.request_with_retries does
                raise ResponseTooLarge(f"more than {limit} bytes")
            return Answer(200, self.wheel)
        first, _, last = rng.removeprefix("bytes=").partition("-")
        start, end = (max(size - int(last), 0), size - 1) if not first else (int(first), min(int(last), size - 1))
        return Answer(206, self.wheel[start:end + 1], {"Content-Range": f"bytes {start}-{end}/{size}"})


@pytest.mark.parametrize(("offered", "ranges", "big", "asked", "whole"), [
    (True, True, False, [("pkg-1.0-py3-none-any.whl.metadata", None)], False),
    (False, True, False, [("pkg-1.0-py3-none-any.whl", "bytes=-65536")], False),
    (False, True, True, [("pkg-1.0-py3-none-any.whl", "bytes=-65536")], False),  # METADATA is in the tail
    (False, False, False, [("pkg-1.0-py3-none-any.whl", "bytes=-65536")], False),  # Range ignored, a small wheel: all here
    (False, False, True, [("pkg-1.0-py3-none-any.whl", "bytes=-65536")], True),  # Range ignored, a big one: streamed
], ids=["metadata-file", "range", "range-big", "small-whole", "big-whole"])
def test_remote_metadata_strategies(tmp_path: Path, offered: bool, ranges: bool, big: bool,
                                    asked: list[tuple[str, str | None]], whole: bool) -> None:
    files = {"pkg/__init__.py": "", "pkg/blob.bin": os.urandom(300_000)} if big else None
    path = make_wheel(tmp_path, "pkg", "1.0", requires_dist=["lib>=2"], **({"files": files} if files else {}))
    wheel, meta = path.read_bytes(), read_metadata(path)
    server = FakeServer(wheel, meta, ranges)
    link = Link(filename=path.name, url=f"https://files.example/{path.name}", index="main", index_url="",
                sha256=hashlib.sha256(wheel).hexdigest(), metadata=offered,
                metadata_sha256=hashlib.sha256(meta).hexdigest() if offered else None)
    streamed: list[bool] = []
    assert remote_metadata(link, server.get, lambda: streamed.append(True) or meta) == meta
    assert server.asked[0] == asked[0] and (len(server.asked) == 1) == (len(asked) == 1)
    assert streamed == ([True] if whole else [])


def test_remote_metadata_file_must_match_its_advertised_hash(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "pkg", "1.0")
    meta = read_metadata(path)
    server = FakeServer(path.read_bytes(), b"Metadata-Version: 2.1\nName: pkg\nVersion: 6.6.6\n", ranges=True)
    link = Link(filename=path.name, url=f"https://files.example/{path.name}", index="main", index_url="", metadata=True,
                metadata_sha256=hashlib.sha256(meta).hexdigest())
    with pytest.raises(HashMismatch):
        remote_metadata(link, server.get, lambda: b"")


# ---------------------------------------------------------------------------------------------
# index semantics


def test_explicit_pin_takes_project_only_from_its_index(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [
        W("acme-core", "1.0", deps=["lib"], index="private"),
        W("acme-util", "0.5", index="private"),
        W("lib", "5.0", index="private"),  # the explicit index serves nothing it is not pinned for
        W("acme-core", "9.0", index="main"),  # hostile higher version on the general index
        W("acme-util", "9.0", index="main"),
        W("lib", "1.0", index="main"),
    ])
    rc = lock(tmp_path, index_server, "Acme_Core", "acme-util",
              "--index", f"private={index_server.index_url('private')}", "--pin", "Acme_*=private")
    assert rc == 0
    lk = locked(tmp_path)
    assert versions(lk) == {"acme-core": "1.0", "acme-util": "0.5", "lib": "1.0"}
    by_name = {p.name: p for p in lk.packages}
    assert by_name["acme-core"].index == index_server.index_url("private")
    assert by_name["acme-util"].index == index_server.index_url("private")
    assert by_name["lib"].index == index_server.index_url("main")
    assert wheels(lk)["lib"] == "lib-1.0-py3-none-any.whl"


def test_explicit_pin_never_falls_back(index_server: IndexServer, tmp_path: Path) -> None:
    """A pinned project missing on its index is an error, even though the general index has it."""
    publish(index_server, [W("acme-other", "1.0", index="private"), W("acme-core", "9.0", index="main")])
    rc = lock(tmp_path, index_server, "acme-core", "--index", f"private={index_server.index_url('private')}",
              "--pin", "acme-*=private")
    assert rc == 1
    assert not (tmp_path / "pylock.toml").exists()
    assert not any(r.path.startswith("/main/simple/acme-core") for r in index_server.requests)


def test_explicit_index_serves_nothing_unpinned(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("acme-core", "1.0", index="private"), W("onlyprivate", "1.0", index="private"),
                           W("lib", "1.0", index="main")])
    rc = lock(tmp_path, index_server, "acme-core", "onlyprivate", "--index", f"private={index_server.index_url('private')}",
              "--pin", "acme-*=private")
    assert rc == 1
    assert "onlyprivate" in stderr_of(capsys)
    assert not (tmp_path / "pylock.toml").exists()
    assert not any(r.path.startswith("/private/simple/onlyprivate") for r in index_server.requests)


@pytest.mark.parametrize(
    ("extra_has", "default_has", "expect", "source"),
    [
        (["1.0"], ["99.0"], "1.0", "private"),  # dependency confusion: the private name wins
        (["1.0", "1.1"], ["1.0", "99.0"], "1.1", "private"),  # never mixed across indexes
        ([], ["2.0"], "2.0", "main"),  # only the default has it
    ],
    ids=["private-wins", "no-mixing", "only-default"],
)
def test_first_index_that_has_a_project_supplies_it(index_server: IndexServer, tmp_path: Path, extra_has: list[str],
                                                    default_has: list[str], expect: str, source: str) -> None:
    index_server.add_index("private")
    publish(index_server, [W("internal-tool", v, index="private") for v in extra_has]
            + [W("internal-tool", v, index="main") for v in default_has] + [W("filler", "1.0", index="private")])
    rc = lock(tmp_path, index_server, "internal-tool", "--extra-index-url", index_server.index_url("private"))
    assert rc == 0
    lk = locked(tmp_path)
    assert versions(lk) == {"internal-tool": expect}
    pkg = lk.packages[0]
    assert pkg.index == index_server.index_url(source)
    assert pkg.wheels[0].url == index_server.file_url(source, f"internal_tool-{expect}-py3-none-any.whl")


@pytest.mark.parametrize("private", [W("corp-auth", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64", index="private"),
                                     W("corp-auth", "1.0", yanked="leaked", index="private"),
                                     W("corp-auth", "1.0", page_rp=">=3.12", index="private")],
                         ids=["no-wheel-for-target", "all-yanked", "requires-python"])
def test_first_index_unusable_files_never_fall_back(index_server: IndexServer, tmp_path: Path, private: W,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The private index has the name, so it owns it, even when none of its files suits the target."""
    publish(index_server, [private, W("corp-auth", "99.0", index="main")])
    assert lock(tmp_path, index_server, "corp-auth", "--extra-index-url", index_server.index_url("private")) == 1
    err = stderr_of(capsys)
    assert "corp-auth" in err and "Traceback" not in err
    assert not (tmp_path / "pylock.toml").exists()


def test_first_index_protection_applies_to_dependencies(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("app", "1.0", deps=["corp-auth>=1"], index="main"), W("corp-auth", "66.6", index="main"),
                           W("corp-auth", "1.2", index="private")])
    rc = lock(tmp_path, index_server, "app", "--extra-index-url", index_server.index_url("private"), cache=False)
    assert rc == 0
    assert versions(locked(tmp_path)) == {"app": "1.0", "corp-auth": "1.2"}


def test_find_links_is_searched_first(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("pkg", "1.0", index="flat"), W("pkg", "2.0"), W("lib", "3.0")])
    rc = lock(tmp_path, index_server, "pkg", "lib", "--find-links", index_server.find_links_url("flat"))
    assert rc == 0
    lk = locked(tmp_path)
    assert versions(lk) == {"pkg": "1.0", "lib": "3.0"}
    assert [w.url for p in lk.packages if p.name == "pkg" for w in p.wheels] == [index_server.file_url("flat", "pkg-1.0-py3-none-any.whl")]


def test_constraints_restrict_but_do_not_add(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("app", "1.0", deps=["lib"]), W("lib", "1.0"), W("lib", "2.0"), W("unused", "1.0")])
    cons = tmp_path / "constraints.txt"
    cons.write_text("lib<2\nunused==1.0\n")
    assert lock(tmp_path, index_server, "app", "-c", str(cons)) == 0
    assert versions(locked(tmp_path)) == {"app": "1.0", "lib": "1.0"}


@pytest.mark.parametrize("with_hash", [False, True], ids=["plain", "sha256-fragment"])
def test_direct_url_locks_that_exact_file(index_server: IndexServer, tmp_path: Path, with_hash: bool) -> None:
    publish(index_server, [W("pkg", "1.0", deps=["lib"], index="files"), W("pkg", "2.0", index="main"), W("lib", "1.0", index="main")])
    url = index_server.file_url("files", "pkg-1.0-py3-none-any.whl")
    sha = sha256_of(index_server, "files", "pkg-1.0-py3-none-any.whl")
    spec = f"pkg @ {url}" + (f"#sha256={sha}" if with_hash else "")
    assert lock(tmp_path, index_server, spec, cache=with_hash) == 0
    lk = locked(tmp_path)
    assert versions(lk) == {"pkg": "1.0", "lib": "1.0"}
    pkg = next(p for p in lk.packages if p.name == "pkg")
    assert [(w.url, w.sha256) for w in pkg.wheels] == [(url, sha)]
    assert not any(w.filename.startswith("pkg-2.0") for p in lk.packages for w in p.wheels)


def test_direct_url_without_hash_is_read_once(index_server: IndexServer, tmp_path: Path) -> None:
    """The bytes read to hash a direct URL also give its metadata: no second request, even with --no-cache."""
    publish(index_server, [W("pkg", "1.0", deps=["lib"], index="files"), W("lib", "1.0", index="main")])
    url = index_server.file_url("files", "pkg-1.0-py3-none-any.whl")
    assert lock(tmp_path, index_server, f"pkg @ {url}", cache=False) == 0
    assert versions(locked(tmp_path)) == {"pkg": "1.0", "lib": "1.0"}
    assert len([r for r in index_server.requests if r.path.startswith("/files/files/pkg-1.0")]) == 1


def test_direct_url_with_extras_uses_that_file_for_the_base(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("pkg", "1.0", deps=["speedup; extra == 'fast'"], extras=["fast"], index="files"),
                           W("pkg", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64"), W("speedup", "1.0")])
    url = index_server.file_url("files", "pkg-1.0-py3-none-any.whl")
    assert lock(tmp_path, index_server, f"pkg[fast] @ {url}", cache=False) == 0
    lk = locked(tmp_path)
    assert versions(lk) == {"pkg": "1.0", "speedup": "1.0"}
    assert wheels(lk)["pkg"] == "pkg-1.0-py3-none-any.whl"  # not the better-ranked file of the index
    assert [w.url for p in lk.packages if p.name == "pkg" for w in p.wheels] == [url]


def test_direct_url_must_suit_the_target(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("pkg", "1.0", tag="cp311-cp311-win_amd64", index="files"), W("lib", "1.0")])
    url = index_server.file_url("files", "pkg-1.0-cp311-cp311-win_amd64.whl")
    assert lock(tmp_path, index_server, f"pkg @ {url}") == 1
    err = stderr_of(capsys)
    assert "pkg-1.0-cp311-cp311-win_amd64.whl is not usable on target x86_64-manylinux_2_28-cp311" in err
    assert not (tmp_path / "pylock.toml").exists()
    # with a marker the URL applies to the targets it suits only
    rc = lock(tmp_path, index_server, f"pkg @ {url} ; sys_platform == 'win32'", "lib",
              "--profile", "rhel8-py311", "--profile", "windows-py311", target=())
    assert rc == 0
    lk = locked(tmp_path)
    assert versions(lk, "rhel8-py311") == {"lib": "1.0"}
    assert wheels(lk, "windows-py311") == {"lib": "lib-1.0-py3-none-any.whl", "pkg": "pkg-1.0-cp311-cp311-win_amd64.whl"}


def test_direct_url_conflicting_with_a_dependency_pin_fails(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("pkg", "1.0", index="files"), W("pkg", "2.0"), W("app", "1.0", deps=["pkg>=2"])])
    url = index_server.file_url("files", "pkg-1.0-py3-none-any.whl")
    assert lock(tmp_path, index_server, "app", f"pkg @ {url}") == 1
    assert not (tmp_path / "pylock.toml").exists()


# ---------------------------------------------------------------------------------------------
# what goes over the wire


def _file_requests(server: IndexServer, index: str) -> list[Any]:
    return [r for r in server.requests if r.path.startswith(f"/{index}/files/")]


def test_range_reads_without_metadata_files(index_server: IndexServer, tmp_path: Path) -> None:
    index_server.add_index("html", formats=("html",), metadata_files=False)
    publish(index_server, [W("app", "1.0", deps=["lib>=2"], index="html"), W("lib", "2.0", index="html"),
                           W("lib", "1.0", index="html")])
    assert lock(tmp_path, index_server, "app", index="html", cache=False) == 0
    assert versions(locked(tmp_path)) == {"app": "1.0", "lib": "2.0"}
    files = _file_requests(index_server, "html")
    assert files, "metadata must have been read from the wheels"
    assert all(r.range is not None and r.status == 206 for r in files), [(r.path, r.range, r.status) for r in files]
    assert not any(r.path.endswith(".metadata") for r in files)
    assert {r.path.rsplit("/", 1)[1] for r in files} == {"app-1.0-py3-none-any.whl", "lib-2.0-py3-none-any.whl"}
    for r in files:  # a tiny wheel fits in one tail read: never more bytes than the file has
        assert r.bytes_sent <= (index_server.root / "html" / "files" / r.path.rsplit("/", 1)[1]).stat().st_size


def test_metadata_files_used_when_offered(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("app", "1.0", deps=["lib"]), W("lib", "1.0")])
    assert lock(tmp_path, index_server, "app") == 0
    files = _file_requests(index_server, "main")
    assert sorted(r.path.rsplit("/", 1)[1] for r in files) == ["app-1.0-py3-none-any.whl.metadata",
                                                                "lib-1.0-py3-none-any.whl.metadata"]


def test_json_is_asked_for_and_html_accepted(index_server: IndexServer, tmp_path: Path) -> None:
    index_server.add_index("json", formats=("json",))
    index_server.add_index("html", formats=("html",))
    publish(index_server, [W("app", "1.0", deps=["lib"], index="json"), W("lib", "1.0", index="html")])
    rc = lock(tmp_path, index_server, "app", "--extra-index-url", index_server.index_url("json"), index="html")
    assert rc == 0
    assert versions(locked(tmp_path)) == {"app": "1.0", "lib": "1.0"}
    pages = [r for r in index_server.requests if "/simple/" in r.path]
    assert pages
    for r in pages:
        assert JSON_TYPE in r.headers["accept"]
        q_json = re.search(re.escape(JSON_TYPE) + r"(?:\s*;\s*q=([\d.]+))?", r.headers["accept"])
        assert q_json and float(q_json.group(1) or 1) >= 0.5  # JSON is preferred, not merely tolerated
    served = {r.path: r.response_headers.get("Content-Type", "") for r in pages if r.status == 200}
    assert served["/json/simple/app/"].startswith(JSON_TYPE)
    assert served["/html/simple/lib/"].startswith("text/html")


@pytest.mark.parametrize("refresh", [True, False], ids=["refresh", "page-ttl"])
def test_warm_cache_only_revalidates_pages(index_server: IndexServer, tmp_path: Path, refresh: bool) -> None:
    """Metadata is cached for good (keyed by the file's hash); pages are revalidated, or with the
    default page reuse window not even that."""
    index_server.add_index("html", formats=("html",), metadata_files=False)
    publish(index_server, [W("app", "1.0", deps=["lib", "other"]), W("lib", "1.0"), W("other", "1.0", index="html"),
                           W("other", "0.9", index="html")])
    args = ("app", "--extra-index-url", index_server.index_url("html"), *(["--refresh"] if refresh else []))
    assert lock(tmp_path, index_server, *args) == 0
    first = (tmp_path / "pylock.toml").read_bytes()
    assert any(r.range for r in index_server.requests) and any(r.path.endswith(".metadata") for r in index_server.requests)
    found_pages = {r.path for r in index_server.requests if "/simple/" in r.path and r.status == 200}
    assert found_pages == {"/main/simple/app/", "/main/simple/lib/", "/html/simple/other/"}
    bodies = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "pages").rglob("*.body") if p.stat().st_size}  # not 404s
    index_server.clear_log()
    assert lock(tmp_path, index_server, *args) == 0
    assert (tmp_path / "pylock.toml").read_bytes() == first
    assert bodies and all(p.stat().st_mtime_ns == t for p, t in bodies.items()), "a 304 must not rewrite the page body"
    second = index_server.requests
    for r in second:
        assert "/simple/" in r.path, f"unexpected request {r.path}"
        assert r.range is None
    revalidated = {r.path for r in second if r.status == 304}
    assert revalidated == (found_pages if refresh else set()), "cached pages are revalidated (304) only with --refresh"
    assert all("if-none-match" in r.headers for r in second if r.path in found_pages)
    # the only other requests are the lookups that found nothing (404s are not cached)
    assert {r.status for r in second if r.path not in found_pages} <= {404}


def test_metadata_cache_cannot_be_poisoned_by_another_index(index_server: IndexServer, tmp_path: Path) -> None:
    """A hostile index that claims a real file's sha256 must not plant metadata for later locks."""
    from support.indexserver import Response

    index_server.add_index("good")
    index_server.add_index("evil", formats=("html",), metadata_files=False)
    real = index_server.add_wheel("good", "app", "1.0")
    fake = index_server.add_wheel("evil", "app", "1.0", requires_dist=["malware"])
    index_server.add_wheel("evil", "malware", "1.0")
    page = f'<a href="{fake.url}#sha256={real.sha256}">{fake.filename}</a>'.encode()

    def lie(req: Any) -> Any:
        if req.path.startswith("/evil/simple/app/"):
            return Response(200, {"Content-Type": "text/html"}, page)
        return None

    index_server.set_fault(lie)
    cache = str(tmp_path / "cache")
    out = tmp_path / "evil"
    out.mkdir()
    assert main(["lock", "app", "--python-platform", "linux", "--python-version", "3.11", "--index-url",
                 index_server.index_url("evil"), "--cache-dir", cache, "-o", str(out / "pylock.toml"), "-q"]) == 0
    assert "malware" in versions(read_lock(out / "pylock.toml"))
    assert main(["lock", "app", "--python-platform", "linux", "--python-version", "3.11", "--index-url",
                 index_server.index_url("good"), "--cache-dir", cache, "-o", str(tmp_path / "pylock.toml"), "-q"]) == 0
    assert versions(locked(tmp_path)) == {"app": "1.0"}


def test_not_found_answers_are_cached_too(index_server: IndexServer, tmp_path: Path) -> None:
    """Within the page TTL a second lock does not ask a higher-priority index again for a project it lacks."""
    index_server.add_index("main")
    index_server.add_index("private")
    index_server.add_wheel("main", "app", "1.0")
    index_server.add_wheel("private", "internal", "1.0")
    args = ["app", "--extra-index-url", index_server.index_url("private")]
    assert lock(tmp_path, index_server, *args) == 0
    assert any(r.path.startswith("/private/simple/app/") and r.status == 404 for r in index_server.requests)
    index_server.clear_log()
    assert lock(tmp_path, index_server, *args) == 0
    assert index_server.requests == []
    index_server.clear_log()
    assert lock(tmp_path, index_server, *args, "--refresh") == 0
    assert any(r.path.startswith("/private/simple/app/") for r in index_server.requests)


def test_explain_points_at_the_explicit_index_that_has_it(index_server: IndexServer, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("acme-core", "1.0", index="private"), W("onlyprivate", "1.0", index="private"),
                           W("lib", "1.0", index="main")])
    rc = main(["explain", "onlyprivate", "--python-platform", "linux", "--python-version", "3.11", "--no-cache",
               "--index-url", index_server.index_url("main"), "--index", f"private={index_server.index_url('private')}",
               "--pin", "acme-*=private"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "index private has 1 files of onlyprivate, but it is explicit and serves only acme-*" in out
    assert "--pin 'onlyprivate=private'" in out


def test_range_reads_that_are_not_a_zip_fall_back_to_the_whole_wheel(index_server: IndexServer, tmp_path: Path) -> None:
    """A proxy that garbles ranged answers costs a whole-wheel download (hash-checked), not a failed lock."""
    from support.indexserver import Response

    index_server.add_index("main", formats=("html",), metadata_files=False)
    info = index_server.add_wheel("main", "app", "1.0", requires_dist=["dep"])
    index_server.add_wheel("main", "dep", "1.0")

    def garble(req: Any) -> Any:
        rng = req.headers.get("range", "")
        if rng and "/files/app-" in req.path:
            n = min(info.size, 4096)
            return Response(206, {"Content-Range": f"bytes {info.size - n}-{info.size - 1}/{info.size}"}, b"\0" * n)
        return None

    index_server.set_fault(garble)
    assert lock(tmp_path, index_server, "app", cache=False) == 0
    assert versions(locked(tmp_path)) == {"app": "1.0", "dep": "1.0"}
    assert any(r.path.endswith(info.filename) and not r.range and r.status == 200 for r in index_server.requests)


# ---------------------------------------------------------------------------------------------
# pages parsed on first use: a warm lock whose rankings are remembered (choicememo) parses none

RIX = IndexConfig(name="main", url="https://idx.example/simple/")
RPAGE = "https://idx.example/simple/pkg/"
RECORD_BODY = json.dumps({"meta": {"api-version": "1.1"}, "name": "pkg", "files": [
    {"filename": "pkg-1.0-py3-none-any.whl", "url": "https://files.example/pkg-1.0-py3-none-any.whl", "hashes": {"sha256": "c" * 64}},
]}).encode()


@pytest.mark.parametrize("change", ["body", "content-type", "page-url", "index-name", "index-url"])
def test_links_key_changes_with_everything_the_links_depend_on(change: str) -> None:
    args = {"body": RECORD_BODY, "content_type": JSON_TYPE, "page_url": RPAGE, "index": RIX}
    other = {"body": RECORD_BODY + b" ", "content-type": "application/json", "page-url": RPAGE + "x/",
             "index-name": IndexConfig(name="other", url=RIX.url), "index-url": IndexConfig(name="main", url="https://x.example/simple/")}
    field_name = {"content-type": "content_type", "page-url": "page_url", "index-name": "index", "index-url": "index"}.get(change, change)
    assert links_key(**args) != links_key(**{**args, field_name: other[change]})  # type: ignore[arg-type]


def test_no_links_key_for_urls_with_credentials() -> None:
    """Relative links inherit the page URL's userinfo, and the cache never stores credentials."""
    assert links_key(RECORD_BODY, JSON_TYPE, "https://u:tok@idx.example/simple/pkg/", RIX) is None
    assert links_key(RECORD_BODY, JSON_TYPE, RPAGE, IndexConfig(name="main", url="https://u:tok@idx.example/simple/")) is None


def test_a_warm_lock_parses_no_page_and_a_lost_ranking_parses_its_page_again(index_server: IndexServer, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from bundler import pagecheck

    publish(index_server, [W("app", "1.0", deps=["lib"]), W("lib", "1.0"), W("lib", "2.0")])
    parsed: list[str] = []
    real = pagecheck.parse_page

    def counting(body: bytes, ctype: str, url: str, index: IndexConfig) -> Any:
        parsed.append(url.rstrip("/").rsplit("/", 1)[-1])
        return real(body, ctype, url, index)

    monkeypatch.setattr(pagecheck, "parse_page", counting)
    assert lock(tmp_path, index_server, "app") == 0
    first = (tmp_path / "pylock.toml").read_bytes()
    assert {"app", "lib"} <= set(parsed)
    parsed.clear()
    assert lock(tmp_path, index_server, "app") == 0
    assert (tmp_path / "pylock.toml").read_bytes() == first and parsed == []
    for record in (tmp_path / "cache" / "choices").rglob("*"):
        if record.is_file():
            record.write_bytes(record.read_bytes()[:-20])
    assert lock(tmp_path, index_server, "app") == 0
    assert (tmp_path / "pylock.toml").read_bytes() == first and {"app", "lib"} <= set(parsed)


def test_a_broken_json_page_is_an_error_when_it_is_first_used(index_server: IndexServer, tmp_path: Path) -> None:
    """A JSON page is parsed on first use, not on arrival: a broken one is still the lock's error."""
    from bundler.errors import IndexUnavailable

    cache = PlannerCache(tmp_path)
    cache.put_page(CachedPage(url=RPAGE, body=b'{"files": [', content_type=JSON_TYPE, etag=None, last_modified=None,
                              stored=time.time(), max_age=600))
    repo = Repository([RIX], lambda: pytest.fail("no request: the page is fresh in the cache"), cache)  # type: ignore[arg-type,return-value]
    try:
        found = repo.project_links("pkg")
        assert found is not None
        for _ in range(2):  # raised at each use, not once
            with pytest.raises(IndexUnavailable, match="broken JSON page"):
                list(found[1])
    finally:
        repo.close()


def test_client_is_made_on_the_first_request_and_closed_with_the_repository(index_server: IndexServer, tmp_path: Path) -> None:
    """A lock served from the cache makes no HTTP client (and so never imports httpx); one that
    needs the network makes one, once, and ``close`` closes it."""
    from bundler.http import make_client
    from bundler.repository import Repository

    publish(index_server, [W("app", "1.0", deps=["lib"]), W("lib", "1.0")])
    assert lock(tmp_path, index_server, "app") == 0
    made: list[Any] = []

    def factory() -> Any:
        made.append(make_client())
        return made[-1]

    repo = Repository([IndexConfig(name="main", url=index_server.index_url("main"))], factory, PlannerCache(tmp_path / "cache"))
    try:
        found = repo.project_links("app")
        assert found is not None and repo.metadata(found[1][0])
        assert made == [] and repo.requests == 0
        assert repo.project_links("never-asked") is None  # not in the cache: a request, through one new client
        assert len(made) == 1 and repo.requests >= 1
        assert repo.project_links("never-asked-either") is None
        assert len(made) == 1
    finally:
        repo.close()
    assert made[0].is_closed


def test_a_revalidated_redirected_page_keeps_resolving_against_where_it_was(index_server: IndexServer, tmp_path: Path) -> None:
    """The HTML page of lib is reached by a redirect to another path and links relatively: after a
    304 on --refresh its links still resolve against the final URL, not the one asked for."""
    from support.indexserver import Response

    index_server.add_index("moved", formats=("html",))
    publish(index_server, [W("app", "1.0", deps=["lib"]), W("lib", "1.0", index="moved")])
    index_server.set_fault(lambda req: Response(301, {"Location": "/moved/simple/lib/"})
                           if req.path == "/main/simple/lib/" else None)
    assert lock(tmp_path, index_server, "app") == 0
    first = (tmp_path / "pylock.toml").read_bytes()
    assert b"/moved/files/lib-1.0" in first
    index_server.clear_log()
    assert lock(tmp_path, index_server, "app", "--refresh") == 0
    assert any(r.status == 304 for r in index_server.requests)
    assert (tmp_path / "pylock.toml").read_bytes() == first


def test_a_server_that_ignores_range_streams_a_big_wheel_to_the_cache(index_server: IndexServer, tmp_path: Path) -> None:
    """Range ignored and no metadata file: the wheel is cut off at the tail read's cap, downloaded
    whole to disk (never held in memory), hash-checked, kept for fetch, and its METADATA read."""
    index_server.add_index("main", metadata_files=False, range_support=False)
    src = tmp_path / "src"
    big = make_wheel(src, "big", "1.0", requires_dist=["lib"], files={"big/__init__.py": "", "big/blob.bin": os.urandom(2_000_000)})
    index_server.add_file("main", big)
    index_server.add_file("main", make_wheel(src, "lib", "1.0"))
    assert lock(tmp_path, index_server, "big") == 0
    assert versions(locked(tmp_path)) == {"big": "1.0", "lib": "1.0"}
    sha = hashlib.sha256(big.read_bytes()).hexdigest()
    assert (tmp_path / "cache" / "blobs" / "sha256" / sha[:2] / sha).read_bytes() == big.read_bytes()
    assert not any((tmp_path / "cache" / "partial").glob("*"))  # nothing half-written left behind
    gets = [r for r in index_server.requests if r.path.endswith("big-1.0-py3-none-any.whl")]
    assert len(gets) == 2 and gets[0].range == "bytes=-65536" and gets[1].range is None  # cut off, then whole


def test_a_listener_added_late_hears_of_the_pages_asked_for_before(index_server: IndexServer, tmp_path: Path) -> None:
    """A lock asks for its first pages before the planner (the listener) is loaded: pages that
    arrived before ``listen``, or arrive after, reach the listener; a missing page does not."""
    from bundler.http import make_client

    publish(index_server, [W("app", "1.0"), W("lib", "1.0"), W("lib", "2.0")])
    repo = Repository([IndexConfig(name="main", url=index_server.index_url("main"))], make_client, PlannerCache(tmp_path / "cache"))
    heard: dict[str, list[str]] = {}
    try:
        repo.prefetch_projects(["app", "lib", "missing"])
        assert repo.project_links("app") is not None  # arrived before anyone listens
        repo.listen(lambda project, index, links: heard.setdefault(project, sorted(k.filename for k in links)),
                    lambda link, data: None)
        assert repo.project_links("lib") is not None and repo.project_links("missing") is None
        deadline = time.monotonic() + 10
        while len(heard) < 2 and time.monotonic() < deadline:  # a done-callback may run just after the wait ends
            time.sleep(0.01)
    finally:
        repo.close()
    assert heard == {"app": ["app-1.0-py3-none-any.whl"], "lib": ["lib-1.0-py3-none-any.whl", "lib-2.0-py3-none-any.whl"]}
