"""Trust boundaries on the index side (issue 10, classes 2, 6 and 7), end to end through ``main``
against the loopback index server: a remote page may not make lock read local files or FIFOs; a
login page is not "no such project"; credentials in a direct reference reach the server and nothing
else (lock, requirements.txt, cache, messages).
"""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest

from bundler.cli import main
from bundler.httpcache import PlannerCache
from bundler.index import IndexConfig
from bundler.repository import Repository
from support.hermetic import hermetic
from support.indexserver import IndexServer, Request, Response
from support.plancases import JSON_TYPE, W, lock, locked, publish, stderr_of, versions
from support.wheelgen import make_wheel

pytestmark = pytest.mark.timeout(60)  # a FIFO read by mistake would hang: fail instead


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, "MACOSX_DEPLOYMENT_TARGET")


def _page(links: list[str]) -> Response:
    anchors = "".join(f'<a href="{href}">{href.rsplit("/", 1)[-1]}</a><br/>\n' for href in links)
    return Response(200, {"Content-Type": "text/html"}, f"<!DOCTYPE html><html><body>\n{anchors}</body></html>\n".encode())


# ---------------------------------------------------------------------------------------------
# class 2: scheme and file-type confusion


@pytest.fixture
def planted(tmp_path: Path) -> dict[str, Path]:
    """A FIFO and a private regular wheel on the builder, named like distributions."""
    private = tmp_path / "private"
    private.mkdir()
    fifo = private / "evil-1.0-py3-none-any.whl"
    os.mkfifo(fifo)
    secret = make_wheel(private, "evil", "2.0")
    return {"fifo": fifo, "secret": secret}


@pytest.mark.parametrize("which", ["fifo", "secret"])
def test_remote_page_linking_local_files_is_refused(index_server: IndexServer, tmp_path: Path, planted: dict[str, Path],
                                                    which: str, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("lib", "1.0")])
    before = planted["secret"].stat().st_atime_ns
    index_server.set_fault(lambda req: _page([planted[which].as_uri()]) if req.path.startswith("/main/simple/evil/") else None)
    assert lock(tmp_path, index_server, "evil") == 1
    err = stderr_of(capsys)
    assert "index default" in err and "http(s)" in err and "Traceback" not in err
    assert not (tmp_path / "pylock.toml").exists()
    assert planted["secret"].stat().st_atime_ns == before or which == "fifo"


def test_local_index_linking_a_fifo_fails_without_hanging(tmp_path: Path, planted: dict[str, Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A ``file:`` index the user gave may link local files, but a FIFO is never opened for reading."""
    page = tmp_path / "simple" / "evil"
    page.mkdir(parents=True)
    (page / "index.html").write_text(f'<a href="{planted["fifo"].as_uri()}#sha256={"0" * 64}">{planted["fifo"].name}</a>')
    rc = main(["lock", "evil", "-o", str(tmp_path / "pylock.toml"), "--index-url", (tmp_path / "simple").as_uri(), "-q",
               "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.12", "--no-cache"])
    assert rc == 1
    err = stderr_of(capsys)
    assert "not a regular file" in err and "Traceback" not in err


def test_local_index_page_that_is_a_fifo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "simple" / "evil"
    page.mkdir(parents=True)
    os.mkfifo(page / "index.html")
    rc = main(["lock", "evil", "-o", str(tmp_path / "pylock.toml"), "--index-url", (tmp_path / "simple").as_uri(), "-q",
               "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.12", "--no-cache"])
    assert rc == 1
    assert "not a regular file" in stderr_of(capsys)


def test_find_links_folder_reads_only_its_own_regular_files(tmp_path: Path, planted: dict[str, Path]) -> None:
    """A FIFO named like a wheel is skipped, and so is a link leading out of the folder (to a private
    file or a FIFO); a link to a file inside the folder is followed."""
    folder = tmp_path / "flat"
    folder.mkdir()
    os.mkfifo(folder / "evil-3.0-py3-none-any.whl")
    (folder / "evil-2.0-py3-none-any.whl").symlink_to(planted["secret"])
    (folder / "evil-4.0-py3-none-any.whl").symlink_to(planted["fifo"])
    make_wheel(folder, "evil", "0.1")
    real = make_wheel(folder, "lib", "2.0")
    (folder / "lib-2.1-py3-none-any.whl").symlink_to(real.name)  # a relative link inside the folder
    with httpx.Client() as client:
        repo = Repository([IndexConfig(name="flat", url=str(folder), kind="find-links")], client, PlannerCache(None))
        try:
            found = repo.project_links("evil")
            assert found is not None
            assert [link.filename for link in found[1]] == ["evil-0.1-py3-none-any.whl"]
            lib = repo.project_links("lib")
            assert lib is not None
            assert sorted(link.filename for link in lib[1]) == ["lib-2.0-py3-none-any.whl", "lib-2.1-py3-none-any.whl"]
        finally:
            repo.close()


def test_direct_reference_to_a_fifo(tmp_path: Path, planted: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["lock", f"evil @ {planted['fifo'].as_uri()}", "-o", str(tmp_path / "pylock.toml"), "-q", "--no-cache",
               "--index-url", (tmp_path / "nowhere").as_uri(), "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.12"])
    assert rc == 1
    assert "not a regular file" in stderr_of(capsys)


# ---------------------------------------------------------------------------------------------
# class 6: dependency confusion by "absence"

LOGIN = (b"<!DOCTYPE html><html><body><h1>Sign in</h1><form method=post action=/login>"
         b"<input name=user><input type='password' name=pw><button>Sign in</button></form></body></html>")


def _internal(answer: str):  # type: ignore[no-untyped-def]
    def hook(req: Request) -> Response | None:
        if req.path.startswith("/private/simple/internal-pkg/"):
            if answer == "redirect-login":
                return Response(302, {"Location": "/private/login?next=/private/simple/internal-pkg/"})
            if answer == "login":
                return Response(200, {"Content-Type": "text/html"}, LOGIN)
            if answer == "redirect-empty":
                return Response(302, {"Location": "/private/portal/"})
            if answer == "form":
                return Response(200, {"Content-Type": "text/html"}, b"<html><form action=/search><input name=q></form></html>")
            if answer == "empty":
                return Response(200, {"Content-Type": "text/html"}, b"<!DOCTYPE html><html><body></body></html>")
            if answer == "empty-json":
                return Response(200, {"Content-Type": JSON_TYPE}, b'{"meta": {"api-version": "1.1"}, "name": "internal-pkg", "files": []}')
        if req.path.startswith("/private/login"):
            return Response(200, {"Content-Type": "text/html; charset=utf-8"}, LOGIN)
        if req.path.startswith("/private/portal/"):
            return Response(200, {"Content-Type": "text/html"}, b"<html><body>Welcome</body></html>")
        return None
    return hook


@pytest.mark.parametrize("answer", ["redirect-login", "login", "redirect-empty", "form", "empty", "empty-json"])
def test_a_page_that_is_not_absent_never_falls_through(index_server: IndexServer, tmp_path: Path, answer: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Index A (first) does not say 404 for internal-pkg; index B has a higher version. A login page
    or a redirect elsewhere is an error naming A; a real but empty page means A owns the name (and
    has no file for it). Either way B's 99.0 is never taken."""
    publish(index_server, [W("filler", "1.0", index="private"), W("internal-pkg", "99.0", index="main")])
    index_server.set_fault(_internal(answer))
    rc = lock(tmp_path, index_server, "internal-pkg", "--extra-index-url", index_server.index_url("private"))
    assert rc == 1
    err = stderr_of(capsys)
    assert "Traceback" not in err and "internal-pkg" in err
    if answer in ("redirect-login", "login", "redirect-empty", "form"):
        assert "index extra" in err and "ended at" in err
    if answer == "redirect-login":
        assert "/private/login?next=" in err and "login page" in err
    assert "extra" in err and "99.0" not in err
    assert not (tmp_path / "pylock.toml").exists()  # (B's page may be read, by speculation, but never used)


def test_real_404_still_falls_through(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("filler", "1.0", index="private"), W("internal-pkg", "99.0", index="main")])
    assert lock(tmp_path, index_server, "internal-pkg", "--extra-index-url", index_server.index_url("private")) == 0
    assert versions(locked(tmp_path)) == {"internal-pkg": "99.0"}


# ---------------------------------------------------------------------------------------------
# class 7: credentials in a direct reference

TOKENS = ["a/b", "a#b", "a?b", "p@ss", "x%2Fy", "tok%2Fen"]


def _requires_basic(user: str, password: str):  # type: ignore[no-untyped-def]
    want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def hook(req: Request) -> Response | None:
        if req.path.startswith("/main/files/") and req.headers.get("authorization") != want:
            return Response(401, {"WWW-Authenticate": 'Basic realm="x"', "Content-Type": "text/plain"}, b"no\n")
        return None
    return hook


def _spellings(token: str) -> set[str]:
    return {token, unquote(token), quote(unquote(token), safe="")}


def _assert_nowhere(tmp_path: Path, token: str, *texts: str) -> None:
    for text in texts:
        for s in _spellings(token):
            assert s not in text, f"{s!r} leaked"
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink() and "index" not in path.relative_to(tmp_path).parts[:1]:
            data = path.read_bytes()
            for s in _spellings(token):
                assert s.encode() not in data, f"{s!r} leaked into {path}"


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("pinned", [False, True], ids=["hashed-by-lock", "pinned-sha256"])
def test_direct_reference_credentials_reach_the_server_only(index_server: IndexServer, tmp_path: Path, token: str,
                                                            pinned: bool, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("lib", "1.0")])
    info = index_server.add_wheel("main", "pkg", "1.0")
    index_server.set_fault(_requires_basic("user", unquote(token)))
    url = info.url.replace("http://", f"http://user:{token}@") + (f"#sha256={info.sha256}" if pinned else "")
    rc = lock(tmp_path, index_server, f"pkg @ {url}")
    out, err = capsys.readouterr()
    assert rc == 0, err
    lk = locked(tmp_path)
    assert lk.packages[0].wheels[0].url == index_server.file_url("main", "pkg-1.0-py3-none-any.whl")
    _assert_nowhere(tmp_path, token, out, err)


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("failure", ["404", "refused"])
def test_direct_reference_errors_never_print_credentials(index_server: IndexServer, tmp_path: Path, token: str, failure: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("pkg", "1.0")])
    url = index_server.file_url("main", "pkg-9.0-py3-none-any.whl")
    if failure == "refused":
        with socket.socket() as s:  # a port nobody listens on once closed
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}/pkg-9.0-py3-none-any.whl"
    rc = lock(tmp_path, index_server, f"pkg @ {url.replace('http://', f'http://user:{token}@')}")
    out, err = capsys.readouterr()
    assert rc == 1
    assert "Traceback" not in err and "pkg-9.0" in err
    _assert_nowhere(tmp_path, token, out, err)
