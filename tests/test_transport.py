"""bundler.transport: what both HTTP clients share (trust, credentials, retries, messages), without either."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bundler.errors import BadInput
from bundler.transport import Again, Credentials, Trust, describe_failure, with_retries
from bundler.urls import remember_credentials


def test_a_preloaded_trust_gives_the_context_it_loaded() -> None:
    trust = Trust().preload()
    deadline = time.monotonic() + 10
    while trust._context is None and time.monotonic() < deadline:  # loaded on its own thread
        time.sleep(0.01)
    loaded = trust._context
    assert loaded is not None and trust.context is loaded and trust.context is trust.context


def test_a_bundle_that_cannot_load_fails_where_it_is_used_not_in_the_preload(tmp_path: Path) -> None:
    trust = Trust(str(tmp_path / "missing.pem")).preload()
    time.sleep(0.2)
    with pytest.raises(BadInput, match="cannot load the CA bundle .*missing.pem \\(--cert\\)"):
        trust.context


def test_credentials_come_from_the_url_then_remembered_then_netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine idx.example login n password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    creds = Credentials()

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    assert creds.authorization("https://idx.example/simple/", ("u", "p"), "idx.example") == basic("u", "p")
    clean = remember_credentials("https://r:tok@idx.example/only/x.whl")
    assert creds.authorization(clean, None, "idx.example") == basic("r", "tok")
    assert creds.authorization("https://idx.example/simple/", None, "idx.example") == basic("n", "from-netrc")
    assert creds.authorization("https://other.example/simple/", None, "other.example") is None


def test_describe_failure_names_no_credential() -> None:
    url = "https://user:s3cr%2Fet@idx.example/simple/x/"
    for kind in ("connect", "timeout", "ReadError"):
        text = describe_failure(kind, f"failed for {url} (s3cr/et)", url)
        assert "s3cr" not in text and "idx.example" in text
    assert describe_failure("timeout", "", url) == "timed out talking to https://idx.example/simple/x/"


def test_with_retries_retries_only_what_it_is_told_is_transient() -> None:
    calls: list[bool] = []

    def flaky(may_retry: bool) -> str:
        calls.append(may_retry)
        if len(calls) < 3:
            raise ConnectionError("reset")
        return "ok"

    assert with_retries(flaky, 3, lambda s: None, (ConnectionError,)) == "ok" and calls == [True, True, True]
    with pytest.raises(ValueError):
        with_retries(lambda may_retry: (_ for _ in ()).throw(ValueError("no")), 3, lambda s: None, (ConnectionError,))
    answers = iter([Again(0.0), Again(None), "done"])

    def busy(may_retry: bool) -> str:
        a = next(answers)
        if isinstance(a, Again):
            raise a
        return a

    slept: list[float] = []
    assert with_retries(busy, 3, slept.append, (ConnectionError,)) == "done" and slept[0] == 0.0 and len(slept) == 2


def test_transport_imports_no_http_client() -> None:
    code = "import sys, bundler.transport, bundler.http1; print('httpx' in sys.modules, 'h11' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_preload_is_waited_for_at_exit() -> None:
    """A daemon thread still inside OpenSSL when the interpreter exits (a run that fails at once on a
    bad argument) crashed the process now and then (SIGSEGV from OpenSSL's exit handlers)."""
    import threading

    Trust().preload()
    loaders = [t for t in threading.enumerate() if t.name == "wheelhouse-trust"]
    assert loaders and not any(t.daemon for t in loaders)
    for t in loaders:
        t.join(10)


def test_a_run_that_fails_at_once_exits_cleanly_every_time(tmp_path: Path) -> None:
    """The exit right after the preload started: one status, never a signal."""
    import os

    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    for _ in range(15):
        r = subprocess.run([sys.executable, "-m", "bundler", "lock", "good", "--python-platform", "x86_64-manylinux_2_28",
                            "--python-version", "3.11", "--index-url", "https://user:s3cret@[bad/simple/",
                            "-o", str(tmp_path / "pylock.toml"), "--cache-dir", str(tmp_path / "c")],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 1 and "s3cret" not in r.stderr, r.stderr
