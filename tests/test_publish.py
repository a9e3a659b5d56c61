"""Publishing a bundle into a site index from the target (issue 12, item 6): ``install.sh --publish URL``
into a real pypiserver on loopback (with and without authentication), then pip installs from it;
``install.sh --publish-dir DIR`` into a flat folder and a PEP 503 tree, keeping what is there."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.siteworld import Site, clean_env, linux_x86_64, run, site, untar

pytestmark = [pytest.mark.slow, linux_x86_64]
__all__ = ["site"]

SECRET = "s3cret-Pa55"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def pypiserver(packages: Path, htpasswd: Path | None = None) -> Iterator[str]:
    """A real pypiserver on 127.0.0.1 serving ``packages``; yields its base URL."""
    pytest.importorskip("pypiserver")
    port = _free_port()
    auth = ["-P", str(htpasswd), "-a", "update"] if htpasswd else ["-P", ".", "-a", "."]
    # Its default sends unknown projects to PyPI: here to a closed loopback port, which must never be read.
    fallback = ["--fallback-url", f"http://127.0.0.1:{_free_port()}/simple/"]
    proc = subprocess.Popen([sys.executable, "-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", str(port), *auth, *fallback,
                             str(packages)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "simple/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"pypiserver exited: {proc.stderr.read().decode() if proc.stderr else ''}")
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _publish(bundle: Path, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run(["sh", bundle / "install.sh", *args], env={**clean_env(), **(env or {})})


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wheels(bundle: Path) -> list[str]:
    return sorted(p.name for p in (bundle / "wheels").iterdir())


def test_publish_into_pypiserver_twice_then_pip_installs_from_it(site: Site, tmp_path: Path) -> None:
    bundle = untar(site.full1, tmp_path / "target")
    packages = tmp_path / "packages"
    packages.mkdir()
    with pypiserver(packages) as url:
        first = _publish(bundle, "--publish", url)
        assert first.returncode == 0, first.stderr
        assert f"{len(_wheels(bundle))} uploaded, 0 already there" in first.stdout
        assert sorted(p.name for p in packages.iterdir()) == _wheels(bundle)
        assert all(_sha(packages / n) == _sha(bundle / "wheels" / n) for n in _wheels(bundle))
        again = _publish(bundle, "--publish", url)
        assert again.returncode == 0, again.stderr
        assert f"0 uploaded, {len(_wheels(bundle))} already there with the same sha256" in again.stdout
        assert not list(tmp_path.glob("target/*.venv")) and not (bundle.parent / (bundle.name + ".venv")).exists()

        venv = tmp_path / "client"
        assert run([sys.executable, "-m", "venv", venv]).returncode == 0
        r = run([venv / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check", "--index-url", url + "simple/",
                 "greet", "words==0.5", "bigdep"])
        assert r.returncode == 0, r.stderr
        out = run([venv / "bin" / "python", "-c", "import greet, words; print(greet.greet('site'), words.V)"])
        assert out.stdout.strip() == "hello, site 0.5"


def test_publish_with_credentials_never_prints_them(site: Site, tmp_path: Path) -> None:
    from passlib.apache import HtpasswdFile

    bundle = untar(site.full1, tmp_path / "target")
    packages = tmp_path / "packages"
    packages.mkdir()
    htpasswd = tmp_path / "htpasswd"
    ht = HtpasswdFile(str(htpasswd), new=True)
    ht.set_password("lab", SECRET)
    ht.save()
    with pypiserver(packages, htpasswd) as url:
        refused = _publish(bundle, "--publish", url)
        assert refused.returncode == 1 and "401" in refused.stderr and "WHEELHOUSE_PUBLISH_USER" in refused.stderr
        assert not list(packages.iterdir())
        for env in ({"WHEELHOUSE_PUBLISH_USER": "lab", "WHEELHOUSE_PUBLISH_PASSWORD": SECRET},
                    {"TWINE_USERNAME": "lab", "TWINE_PASSWORD": SECRET}):
            r = _publish(bundle, "--publish", url, env=env)
            assert r.returncode == 0, r.stderr
            assert SECRET not in r.stdout + r.stderr
        home = tmp_path / "home"
        home.mkdir()
        (home / ".netrc").write_text(f"machine 127.0.0.1 login lab password {SECRET}\n")
        os.chmod(home / ".netrc", 0o600)
        r = _publish(bundle, "--publish", url, env={"HOME": str(home)})
        assert r.returncode == 0, r.stderr
        assert "0 uploaded" in r.stdout and SECRET not in r.stdout + r.stderr
        wrong = _publish(bundle, "--publish", url.replace("http://", f"http://lab:{SECRET}x@"))
        assert SECRET not in wrong.stdout + wrong.stderr  # the URL is shown without its user part
        assert sorted(p.name for p in packages.iterdir()) == _wheels(bundle)


def test_publish_refuses_a_damaged_bundle_before_uploading(site: Site, tmp_path: Path) -> None:
    bundle = untar(site.full1, tmp_path / "target")
    (bundle / "wheels" / "bigdep-1.0-py3-none-any.whl").write_bytes(b"x")
    packages = tmp_path / "packages"
    packages.mkdir()
    with pypiserver(packages) as url:
        r = _publish(bundle, "--publish", url)
    assert r.returncode == 1 and "bigdep-1.0-py3-none-any.whl" in r.stderr
    assert not list(packages.iterdir())


def test_publish_dir_into_a_flat_folder_keeps_foreign_files(site: Site, tmp_path: Path) -> None:
    bundle = untar(site.full1, tmp_path / "target")
    folder = tmp_path / "flat"
    folder.mkdir()
    (folder / "labtool-3.0-py3-none-any.whl").write_bytes(b"ours")
    for _ in range(2):
        r = _publish(bundle, "--publish-dir", folder)
        assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted([*_wheels(bundle), "labtool-3.0-py3-none-any.whl"])
    assert (folder / "labtool-3.0-py3-none-any.whl").read_bytes() == b"ours"
    # a file of the same name with other bytes is an error naming it, and nothing is replaced
    other = untar(site.full2, tmp_path / "target")
    (folder / "words-0.6-py3-none-any.whl").write_bytes(b"impostor")
    r = _publish(other, "--publish-dir", folder)
    assert r.returncode == 1 and "words-0.6-py3-none-any.whl" in r.stderr
    assert (folder / "words-0.6-py3-none-any.whl").read_bytes() == b"impostor"
    # pypiserver serves the merged folder, and pip installs from it
    (folder / "words-0.6-py3-none-any.whl").unlink()
    with pypiserver(folder) as url:
        venv = tmp_path / "client"
        assert run([sys.executable, "-m", "venv", venv]).returncode == 0
        r = run([venv / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check", "--index-url",
                 url + "simple/", "greet"])
        assert r.returncode == 0, r.stderr


def test_publish_dir_into_a_pep503_tree_updates_pages_with_hashes(site: Site, tmp_path: Path) -> None:
    bundle = untar(site.full1, tmp_path / "target")
    tree = tmp_path / "tree"
    (tree / "simple" / "labtool").mkdir(parents=True)
    (tree / "simple" / "labtool" / "labtool-3.0-py3-none-any.whl").write_bytes(b"ours")
    (tree / "simple" / "labtool" / "index.html").write_text(
        '<html><body><a href="labtool-3.0-py3-none-any.whl#sha256=' + hashlib.sha256(b"ours").hexdigest()
        + '">labtool-3.0-py3-none-any.whl</a></body></html>\n')
    (tree / "simple" / "index.html").write_text('<html><body><a href="labtool/">labtool</a></body></html>\n')
    r = _publish(bundle, "--publish-dir", tree)
    assert r.returncode == 0, r.stderr
    root = (tree / "simple" / "index.html").read_text()
    assert all(f'href="{p}/"' in root for p in ("labtool", "greet", "words", "bigdep", "pip"))
    assert "labtool-3.0-py3-none-any.whl" in (tree / "simple" / "labtool" / "index.html").read_text()
    page = (tree / "simple" / "words" / "index.html").read_text()
    sha = _sha(bundle / "wheels" / "words-0.5-py3-none-any.whl")
    assert f'href="words-0.5-py3-none-any.whl#sha256={sha}"' in page
    second = untar(site.full2, tmp_path / "target")
    assert _publish(second, "--publish-dir", tree).returncode == 0
    page = (tree / "simple" / "words" / "index.html").read_text()
    assert "words-0.5-py3-none-any.whl" in page and "words-0.6-py3-none-any.whl" in page
    venv = tmp_path / "client"
    assert run([sys.executable, "-m", "venv", venv]).returncode == 0
    r = run([venv / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check",
             "--index-url", (tree / "simple").as_uri() + "/", "greet", "words==0.5"])
    assert r.returncode == 0, r.stderr
