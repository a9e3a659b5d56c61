"""Prove the loopback index fixture and the wheel generator are right.

httpx checks the protocol details; pip (an independent client) checks that
real tools accept the pages and wheels.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import http.client
import io
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from packaging.tags import Tag
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from support.indexserver import IndexServer, Response
from support.wheelgen import make_wheel, read_metadata

JSON_ACCEPT = ("application/vnd.pypi.simple.v1+json, "
               "application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01")
TORCH_TAG = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An httpx client that ignores proxy settings from the environment."""
    with httpx.Client(trust_env=False, timeout=10) as c:
        yield c


@pytest.fixture
def server(index_server: IndexServer) -> IndexServer:
    """The fixture with an index ``main`` holding ``app`` (needs ``lib``) and ``lib``."""
    index_server.add_index("main")
    index_server.add_wheel("main", "app", "1.0", requires_dist=["lib>=2"])
    index_server.add_wheel("main", "lib", "2.0", requires_python=">=3.8")
    index_server.add_wheel("main", "lib", "1.0", yanked="broken build")
    return index_server


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the venv's pip in isolation from user/site config and PIP_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_INPUT="1", NO_PROXY="127.0.0.1,localhost")
    return subprocess.run([sys.executable, "-m", "pip", *args, "--no-cache-dir"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- wheelgen -----------------------------------------------------------------

def test_wheel_is_valid_and_record_verifies(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "My.Pkg", "2.3.0+cu121", tag=TORCH_TAG,
                      requires_dist=["numpy>=1.20", 'rich; extra == "cli"'],
                      requires_python=">=3.9", provides_extra=["cli"])
    assert path.name == f"My_Pkg-2.3.0+cu121-{TORCH_TAG}.whl"
    name, version, build, tags = parse_wheel_filename(path.name)
    assert (name, version, build) == ("my-pkg", Version("2.3.0+cu121"), ())
    assert tags == {Tag("cp311", "cp311", "manylinux_2_17_x86_64"),
                    Tag("cp311", "cp311", "manylinux2014_x86_64")}
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert zf.read("my_pkg/__init__.py") == b'__version__ = "2.3.0+cu121"\n'
        di = "My_Pkg-2.3.0+cu121.dist-info"
        wheel = zf.read(f"{di}/WHEEL").decode()
        assert "Root-Is-Purelib: false" in wheel
        assert wheel.count("Tag: ") == 2
        meta = zf.read(f"{di}/METADATA").decode()
        for line in ("Metadata-Version: 2.1", "Name: My.Pkg", "Version: 2.3.0+cu121",
                     "Requires-Python: >=3.9", "Provides-Extra: cli",
                     "Requires-Dist: numpy>=1.20", 'Requires-Dist: rich; extra == "cli"'):
            assert line in meta.splitlines()
        rows = list(csv.reader(io.StringIO(zf.read(f"{di}/RECORD").decode())))
        assert sorted(r[0] for r in rows) == sorted(zf.namelist())
        for arcname, digest, size in rows:
            if arcname.endswith("/RECORD"):
                assert digest == size == ""
                continue
            data = zf.read(arcname)
            b64 = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={b64}" and int(size) == len(data)


def test_wheel_is_deterministic_and_pure_flag(tmp_path: Path) -> None:
    a = make_wheel(tmp_path / "a", "pkg", "1.0", files={"pkg/data.txt": "x"})
    b = make_wheel(tmp_path / "b", "pkg", "1.0", files={"pkg/data.txt": "x"})
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        wheel = zf.read("pkg-1.0.dist-info/WHEEL").decode()
    assert "Root-Is-Purelib: true" in wheel and "Tag: py3-none-any" in wheel


def test_pip_installs_generated_wheel(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", "hello-world", "0.1", files={"hello_world/x.py": "X = 1\n"})
    proc = _pip("install", "--no-deps", "--no-index", "--target", str(tmp_path / "t"), str(wheel))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "t" / "hello_world" / "x.py").read_text() == "X = 1\n"
    assert (tmp_path / "t" / "hello_world-0.1.dist-info" / "RECORD").is_file()


# -- pages ----------------------------------------------------------------------

def test_pip_download_with_dependency(server: IndexServer, client: httpx.Client,
                                      tmp_path: Path) -> None:
    dest = tmp_path / "dl"
    proc = _pip("download", "--index-url", server.index_url("main"), "-d", str(dest), "app")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in dest.iterdir()) == [
        "app-1.0-py3-none-any.whl", "lib-2.0-py3-none-any.whl"]
    page = client.get(server.index_url("main") + "lib/", headers={"Accept": JSON_ACCEPT}).json()
    want = {f["filename"]: f["hashes"]["sha256"] for f in page["files"]}
    assert _sha256(dest / "lib-2.0-py3-none-any.whl") == want["lib-2.0-py3-none-any.whl"]
    # pip asked for JSON and used PEP 658 metadata instead of whole wheels where it could.
    pages = [r for r in server.requests if r.path == "/main/simple/app/"]
    assert pages and "json" in pages[0].response_headers["Content-Type"]
    assert any(r.path.endswith(".whl.metadata") and r.status == 200 for r in server.requests)


def test_pip_download_plus_version_via_find_links(index_server: IndexServer,
                                                  tmp_path: Path) -> None:
    index_server.add_index("links", formats=("html",))
    info = index_server.add_wheel("links", "torchish", "2.3.0+cu121")
    proc = _pip("download", "--no-deps", "--no-index", "--find-links",
                index_server.find_links_url("links"), "-d", str(tmp_path), "torchish==2.3.0+cu121")
    assert proc.returncode == 0, proc.stderr
    assert _sha256(tmp_path / info.filename) == info.sha256
    assert "/links/files/torchish-2.3.0%2Bcu121-py3-none-any.whl" in [
        r.path for r in index_server.requests]


def test_json_vs_html_by_accept(server: IndexServer, client: httpx.Client) -> None:
    url = server.index_url("main") + "lib/"
    j = client.get(url, headers={"Accept": JSON_ACCEPT})
    assert j.headers["content-type"] == "application/vnd.pypi.simple.v1+json"
    data = j.json()
    assert data["meta"]["api-version"] == "1.1" and data["name"] == "lib"
    assert data["versions"] == ["1.0", "2.0"]
    files = {f["filename"]: f for f in data["files"]}
    old, new = files["lib-1.0-py3-none-any.whl"], files["lib-2.0-py3-none-any.whl"]
    assert old["yanked"] == "broken build" and new["yanked"] is False
    assert new["requires-python"] == ">=3.8" and old["requires-python"] is None
    assert new["url"].startswith(server.base_url + "/main/files/")
    assert new["size"] == len(client.get(new["url"]).content)
    assert new["core-metadata"] == new["dist-info-metadata"] != False  # noqa: E712
    for accept in (None, "*/*", "text/html", "application/vnd.pypi.simple.v1+html"):
        h = client.get(url, headers={"Accept": accept} if accept else {})
        assert h.headers["content-type"].startswith("text/html")
    assert client.get(url, headers={"Accept": "application/vnd.pypi.simple.v1+json, */*"}
                      ).headers["content-type"] == "application/vnd.pypi.simple.v1+json"
    listing = client.get(server.index_url("main"), headers={"Accept": JSON_ACCEPT}).json()
    assert listing["projects"] == [{"name": "app"}, {"name": "lib"}]


def test_html_page_attributes(server: IndexServer, client: httpx.Client) -> None:
    html = client.get(server.index_url("main") + "lib/").text
    anchors = {text: attrs for attrs, text in re.findall(r"<a ([^>]*)>([^<]*)</a>", html)}
    new, old = anchors["lib-2.0-py3-none-any.whl"], anchors["lib-1.0-py3-none-any.whl"]
    assert 'href="../../files/lib-2.0-py3-none-any.whl#sha256=' in new
    assert 'data-requires-python="&gt;=3.8"' in new and "data-yanked" not in new
    assert 'data-yanked="broken build"' in old
    assert "data-core-metadata=\"sha256=" in new and "data-dist-info-metadata=\"sha256=" in new


def test_html_only_index_ignores_json_accept(index_server: IndexServer,
                                             client: httpx.Client) -> None:
    index_server.add_index("legacy", formats=("html",))
    index_server.add_wheel("legacy", "pkg", "1.0", yanked=True)
    r = client.get(index_server.index_url("legacy") + "pkg/",
                   headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'data-yanked=""' in r.text


def test_metadata_file_matches_advertised_hash(server: IndexServer, client: httpx.Client) -> None:
    page = client.get(server.index_url("main") + "app/", headers={"Accept": JSON_ACCEPT}).json()
    f = page["files"][0]
    meta = client.get(f["url"] + ".metadata")
    assert meta.status_code == 200
    assert hashlib.sha256(meta.content).hexdigest() == f["core-metadata"]["sha256"]
    wheel = server.root / "main" / "files" / f["filename"]
    assert meta.content == read_metadata(wheel)
    assert b"Requires-Dist: lib>=2" in meta.content


def test_no_metadata_files_and_no_range(index_server: IndexServer, client: httpx.Client) -> None:
    index_server.add_index("bare", metadata_files=False, range_support=False)
    info = index_server.add_wheel("bare", "pkg", "1.0")
    assert info.metadata_sha256 is not None  # known, just not served
    page = client.get(index_server.index_url("bare") + "pkg/",
                      headers={"Accept": JSON_ACCEPT}).json()
    assert page["files"][0]["core-metadata"] is False
    html = client.get(index_server.index_url("bare") + "pkg/").text
    assert "data-core-metadata" not in html and "data-dist-info-metadata" not in html
    assert client.get(info.url + ".metadata").status_code == 404
    r = client.get(info.url, headers={"Range": "bytes=0-9"})
    assert r.status_code == 200 and len(r.content) == info.size
    assert "accept-ranges" not in r.headers


def test_redirects_and_404(server: IndexServer, client: httpx.Client) -> None:
    for path in ("/main/simple/Lib/", "/main/simple/LIB", "/main/simple/lib"):
        r = client.get(server.base_url + path)
        assert r.status_code == 301 and r.headers["location"] == "/main/simple/lib/"
    assert client.get(server.index_url("main") + "nope/").status_code == 404
    assert client.get(server.base_url + "/other/simple/").status_code == 404
    assert client.get(server.base_url + "/main/files/nope.whl").status_code == 404
    assert client.get(server.index_url("main") + "LIB/", follow_redirects=True).status_code == 200


# -- files ------------------------------------------------------------------------

def test_range_requests(server: IndexServer, client: httpx.Client) -> None:
    info = server.add_wheel("main", "ranged", "1.0", tag="py3-none-any")
    whole = client.get(info.url)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    data = whole.content
    cases = {"bytes=10-19": (10, 19), "bytes=100-": (100, info.size - 1),
             "bytes=-22": (info.size - 22, info.size - 1),
             f"bytes=5-{info.size + 50}": (5, info.size - 1)}
    for header, (first, last) in cases.items():
        r = client.get(info.url, headers={"Range": header})
        assert r.status_code == 206, header
        assert r.headers["content-range"] == f"bytes {first}-{last}/{info.size}"
        assert r.content == data[first:last + 1]
        assert int(r.headers["content-length"]) == last - first + 1
    for header in (f"bytes={info.size}-", "bytes=-0"):
        r = client.get(info.url, headers={"Range": header})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{info.size}"
    rec = [r for r in server.requests if r.range == "bytes=10-19"]
    assert rec and rec[0].status == 206 and rec[0].bytes_sent == 10


def test_etag_if_none_match_and_if_range(server: IndexServer, client: httpx.Client) -> None:
    info = server.add_wheel("main", "tagged", "1.0")
    r = client.get(info.url)
    etag = r.headers["etag"]
    assert etag == f'"{info.sha256}"' and "last-modified" in r.headers
    assert client.get(info.url, headers={"If-None-Match": etag}).status_code == 304
    ok = client.get(info.url, headers={"Range": "bytes=0-3", "If-Range": etag})
    assert ok.status_code == 206 and ok.content == b"PK\x03\x04"
    lm = client.get(info.url, headers={"Range": "bytes=0-3",
                                       "If-Range": r.headers["last-modified"]})
    assert lm.status_code == 206
    stale = client.get(info.url, headers={"Range": "bytes=0-3", "If-Range": '"stale"'})
    assert stale.status_code == 200 and len(stale.content) == info.size
    page_url = server.index_url("main") + "tagged/"
    page = client.get(page_url)
    assert page.headers["cache-control"] == "max-age=0"
    again = client.get(page_url, headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    json_page = client.get(page_url, headers={"Accept": JSON_ACCEPT,
                                              "If-None-Match": page.headers["etag"]})
    assert json_page.status_code == 200  # different representation, different ETag


def test_percent_encoded_plus_and_upload_time(index_server: IndexServer,
                                              client: httpx.Client) -> None:
    index_server.add_index("main")
    when = datetime(2024, 1, 1, tzinfo=timezone.utc)
    info = index_server.add_wheel("main", "torch", "2.3.0+cu121", tag=TORCH_TAG, upload_time=when)
    assert "%2B" in info.url and "+" not in urlsplit(info.url).path
    html = client.get(index_server.index_url("main") + "torch/").text
    assert "files/torch-2.3.0%2Bcu121-cp311" in html
    page = client.get(index_server.index_url("main") + "torch/",
                      headers={"Accept": JSON_ACCEPT}).json()
    assert page["files"][0]["upload-time"] == "2024-01-01T00:00:00.000000Z"
    assert page["files"][0]["url"] == info.url
    r = client.get(info.url)
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == info.sha256
    assert r.headers["last-modified"] == "Mon, 01 Jan 2024 00:00:00 GMT"


def test_add_file_serves_sdist(index_server: IndexServer, client: httpx.Client,
                               tmp_path: Path) -> None:
    index_server.add_index("main")
    sdist = tmp_path / "pkg-1.0.tar.gz"
    sdist.write_bytes(b"not really a tarball")
    info = index_server.add_file("main", sdist, requires_python=">=3.10")
    assert info.metadata_sha256 is None and info.size == 20
    page = client.get(index_server.index_url("main") + "pkg/",
                      headers={"Accept": JSON_ACCEPT}).json()
    assert page["files"][0]["core-metadata"] is False
    assert client.get(info.url).content == b"not really a tarball"
    assert client.get(info.url + ".metadata").status_code == 404


# -- transport ----------------------------------------------------------------------

def test_head_keepalive_and_log(server: IndexServer) -> None:
    info = server.add_wheel("main", "kept", "1.0")
    host, port = urlsplit(server.base_url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for method in ("HEAD", "GET", "GET"):
            conn.request(method, urlsplit(info.url).path)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200 and int(resp.headers["Content-Length"]) == info.size
            assert len(body) == (0 if method == "HEAD" else info.size)
        conn.request("GET", "/main/simple/kept/")
        assert conn.getresponse().read().startswith(b"<!DOCTYPE html>")
    finally:
        conn.close()
    log = server.requests
    assert [r.method for r in log] == ["HEAD", "GET", "GET", "GET"]
    assert [r.bytes_sent for r in log[:3]] == [0, info.size, info.size]
    server.clear_log()
    assert server.requests == []


def test_concurrent_requests(server: IndexServer, client: httpx.Client) -> None:
    infos = [server.add_wheel("main", f"p{i}", "1.0") for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: client.get(i.url), infos * 4))
    assert all(hashlib.sha256(r.content).hexdigest() == i.sha256
               for r, i in zip(results, infos * 4))


def test_fault_hook(server: IndexServer, client: httpx.Client) -> None:
    server.set_fault(lambda req: Response(503) if req.path.endswith(".whl") else None)
    url = server.index_url("main") + "lib/"
    assert client.get(url).status_code == 200
    wheel_url = client.get(url, headers={"Accept": JSON_ACCEPT}).json()["files"][0]["url"]
    assert client.get(wheel_url).status_code == 503
    server.set_fault(None)
    assert client.get(wheel_url).status_code == 200
