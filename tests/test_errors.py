"""Bad input never ends in a traceback: a table of ways to get ``wheelhouse lock`` wrong.

Every case runs the real command (``python -m bundler``) against the loopback index of
``tests/support/indexserver.py`` and checks the command-line contract of DESIGN.md: exit status 1 (or 2
for a malformed command line), a message on stderr that names the culprit (the bad string, file,
project, URL or key), no "Traceback", and nothing written at the output path.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.indexserver import IndexServer, Request, Response

from bundler.cli import main as cli_main

TARGET = ["--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11"]


@dataclass
class Ctx:
    """What a case builds its command line from."""

    tmp: Path
    server: IndexServer
    out: Path  # the -o path every case uses unless it is about -o itself

    @property
    def index(self) -> str:
        return self.server.index_url("main")

    def common(self) -> list[str]:
        return [*TARGET, "--index-url", self.index, "--no-cache", "-o", str(self.out)]

    def write(self, name: str, text: str | bytes) -> Path:
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text, encoding="utf-8")
        return p


Build = Callable[[Ctx], tuple[list[str], list[str]]]  # -> (argv after "lock", culprits stderr must name)


@dataclass(frozen=True)
class Case:
    id: str
    build: Build
    codes: frozenset[int] = frozenset({1})
    max_seconds: float = 5.0
    absent: tuple[str, ...] = ()  # must not appear on stderr (credentials)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _profile(**over: object) -> str:
    doc: dict[str, object] = {
        "format": "wheelhouse-profile",
        "format-version": 1,
        "name": "cluster",
        "facts": {"python-version": "3.11.4"},
        "markers": {
            "implementation_name": "cpython", "implementation_version": "3.11.4", "os_name": "posix",
            "platform_machine": "x86_64", "platform_python_implementation": "CPython", "platform_release": "",
            "platform_system": "Linux", "platform_version": "", "python_full_version": "3.11.4",
            "python_version": "3.11", "sys_platform": "linux",
        },
        "tags": ["cp311-cp311-manylinux_2_28_x86_64", "py3-none-any"],
    }
    for k, v in over.items():
        if v is None:
            doc.pop(k, None)
        else:
            doc[k] = v
    return json.dumps(doc)


# -- fault hooks (run in the test process; the server thread calls them) ------------------------

def _fault_on(part: str, resp: Response) -> Callable[[Request], Response | None]:
    return lambda req: resp if part in req.path else None


def _garbage_type(c: Ctx) -> tuple[list[str], list[str]]:
    c.server.set_fault(_fault_on("/simple/good/", Response(200, {"Content-Type": "application/octet-stream"}, b"\x00\x01PK")))
    return ["good", *c.common()], ["application/octet-stream", c.index + "good/"]


def _broken_json(c: Ctx) -> tuple[list[str], list[str]]:
    c.server.set_fault(_fault_on("/simple/good/", Response(200, {"Content-Type": "application/vnd.pypi.simple.v1+json"},
                                                           b'{"meta": {"api-version": "1.1"}, "files": [')))
    return ["good", *c.common()], ["JSON", c.index + "good/"]


def _http_500(retry_after: str | None) -> Build:
    def build(c: Ctx) -> tuple[list[str], list[str]]:
        headers = {"Content-Type": "text/plain"}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        c.server.set_fault(_fault_on("/simple/good/", Response(500, headers, b"boom\n")))
        return ["good", *c.common()], ["HTTP 500", c.index + "good/"]
    return build


def _metadata_mismatch(c: Ctx) -> tuple[list[str], list[str]]:
    evil = b"Metadata-Version: 2.1\nName: good\nVersion: 1.0\nRequires-Dist: evil\n"
    c.server.set_fault(_fault_on("good-1.0-py3-none-any.whl.metadata", Response(200, {"Content-Type": "application/octet-stream"}, evil)))
    return ["good", *c.common()], ["good-1.0-py3-none-any.whl", "hash mismatch"]


def _direct_garbage(cache: bool) -> Build:
    def build(c: Ctx) -> tuple[list[str], list[str]]:
        name = "fake-1.0-py3-none-any.whl"
        c.server.set_fault(_fault_on(name, Response(200, {"Content-Type": "application/octet-stream"}, b"<html>not a zip</html>")))
        caching = ["--cache-dir", str(c.tmp / "cache")] if cache else ["--no-cache"]
        return [f"fake @ {c.server.file_url('main', name)}", *TARGET, "--index-url", c.index, *caching, "-o", str(c.out)], [name]
    return build


def _recipe(body: str, name: str = "recipe.toml") -> Build:
    def build(c: Ctx) -> tuple[list[str], list[str]]:
        path = c.write(name, body.replace("INDEX", c.index))
        return [str(path), "--no-cache", "-o", str(c.out)], [name]
    return build


def _with(build: Build, *extra: str) -> Build:
    def wrapped(c: Ctx) -> tuple[list[str], list[str]]:
        argv, culprits = build(c)
        return argv, [*culprits, *extra]
    return wrapped


CASES: list[Case] = [
    Case("bad-specifier", lambda c: (["numpy>>1", *c.common()], ["numpy>>1"])),
    Case("unknown-project", lambda c: (["no-such-project", *c.common()], ["no-such-project"])),
    Case("unsatisfiable", lambda c: (["alpha", *c.common()], ["beta>=2"])),
    Case("unsatisfiable-pins", lambda c: (["good==1.0", "good==2.0", *c.common()], ["good"])),
    Case("no-compatible-wheel", lambda c: (["winonly", *c.common()], ["winonly", "win_amd64"])),
    Case("requires-python-excludes-target", lambda c: (["newpy", *c.common()], ["newpy", "Python 3.11"])),
    Case("unknown-platform", lambda c: (["good", "--python-platform", "sparc-sun-solaris", "--python-version", "3.11",
                                         "--index-url", c.index, "-o", str(c.out)], ["sparc-sun-solaris"])),
    Case("bad-python-version-3.x", lambda c: (["good", "--python-platform", "linux", "--python-version", "3.x",
                                               "--index-url", c.index, "-o", str(c.out)], ["3.x"])),
    Case("bad-python-version-2.7", lambda c: (["good", "--python-platform", "linux", "--python-version", "2.7",
                                               "--index-url", c.index, "-o", str(c.out)], ["2.7"])),
    Case("platform-without-version", lambda c: (["good", "--python-platform", "linux", "--index-url", c.index, "-o", str(c.out)],
                                                ["--python-version"]), frozenset({2})),
    Case("unknown-flag", lambda c: (["good", "--frobnicate", *c.common()], ["--frobnicate"]), frozenset({2})),
    Case("nothing-to-lock", lambda c: (["-r", str(c.write("empty.txt", "# nothing\n")), *c.common()], ["nothing to lock"]),
         frozenset({2})),
    Case("no-target", lambda c: (["good", "--index-url", c.index, "-o", str(c.out)], ["no target"]), frozenset({2})),
    Case("missing-requirements-file", lambda c: (["-r", "missing-reqs.txt", *c.common()], ["missing-reqs.txt"])),
    Case("missing-constraints-file", lambda c: (["good", "-c", "missing-cons.txt", *c.common()], ["missing-cons.txt"])),
    Case("requirements-garbage-line", lambda c: (["-r", str(c.write("reqs.txt", "good\nthis is ( not a requirement\n")), *c.common()],
                                                 ["reqs.txt:2", "this is ( not a requirement"])),
    Case("requirements-unknown-option", lambda c: (["-r", str(c.write("opts.txt", "--frobnicate\ngood\n")), *c.common()],
                                                   ["opts.txt:1", "--frobnicate"])),
    Case("requirements-not-utf8", lambda c: (["-r", str(c.write("latin.txt", b"g\xf6\xf6d\n")), *c.common()], ["latin.txt"])),
    Case("hash-pin-mismatch", lambda c: (["-r", str(c.write("pinned.txt", "good==1.0 --hash=sha256:" + "0" * 64 + "\n")), *c.common()],
                                         ["good", "0" * 64, "--hash"])),
    Case("missing-recipe", lambda c: (["no-such-recipe.toml", "--no-cache", "-o", str(c.out)], ["no-such-recipe.toml"])),
    Case("recipe-invalid-toml", _recipe('requirements = ["good"\n[[targets]\n', "broken.toml")),
    Case("recipe-unknown-key", _with(_recipe('requirements = ["good"]\ncolour = "blue"\n'
                                             '[[targets]]\npython-platform = "linux"\npython-version = "3.11"\n'), "colour")),
    Case("recipe-target-unknown-key", _with(_recipe('requirements = ["good"]\n'
                                                    '[[targets]]\npython-platform = "linux"\npython-version = "3.11"\nglibc = "2.28"\n'),
                                            "glibc")),
    Case("recipe-target-platform-without-version", _with(_recipe('requirements = ["good"]\n[[targets]]\npython-platform = "linux"\n'),
                                                         "python-version")),
    Case("recipe-wrong-type", _with(_recipe('requirements = "good"\n[[targets]]\npython-platform = "linux"\npython-version = "3.11"\n'),
                                    "requirements")),
    Case("recipe-missing-profile-file", lambda c: ([str(c.write("recipe.toml", 'requirements = ["good"]\n[[targets]]\n'
                                                                             'profile = "profiles/gone.json"\n')), "--no-cache", "-o",
                                                    str(c.out)], ["profiles/gone.json"])),
    Case("unreachable-index", lambda c: (["good", *TARGET, "--index-url", (u := f"http://127.0.0.1:{_closed_port()}/simple/"),
                                          "--no-cache", "-o", str(c.out)], [u])),
    Case("index-url-malformed", lambda c: (["good", *TARGET, "--index-url", "https://user:s3cret@[bad/simple/", "-o", str(c.out)],
                                           ["[bad/simple/"]), absent=("s3cret",)),
    Case("index-url-bad-port", lambda c: (["good", *TARGET, "--index-url", "http://127.0.0.1:99999/simple/", "-o", str(c.out)],
                                          ["127.0.0.1:99999"])),
    Case("find-links-missing-dir", lambda c: (["good", *c.common(), "-f", "no-such-wheels"], ["no-such-wheels"])),
    Case("ca-bundle-missing", lambda c: (["good", *c.common(), "--cert", "missing-ca.pem"], ["missing-ca.pem"])),
    Case("ca-bundle-garbage", lambda c: (["good", *c.common(), "--cert", str(c.write("garbage-ca.pem", "not a certificate\n"))],
                                         ["garbage-ca.pem"])),
    Case("garbage-index-page-content-type", _garbage_type),
    Case("garbage-index-page-broken-json", _broken_json),
    Case("index-http-500-retry-after-0", _http_500("0")),
    Case("index-http-500-backoff", _http_500(None)),
    Case("metadata-hash-mismatch", _metadata_mismatch),
    Case("direct-url-404", lambda c: ([f"good @ {(u := c.server.file_url('main', 'good-9.9-py3-none-any.whl'))}", *c.common()], [u])),
    Case("direct-url-not-a-zip", _direct_garbage(cache=False)),
    Case("direct-url-not-a-zip-cached", _direct_garbage(cache=True)),
    Case("broken-profile-json", lambda c: (["good", "--profile", str(c.write("cluster.json", "{not json")), "--index-url", c.index,
                                            "-o", str(c.out)], ["cluster.json"])),
    Case("profile-missing-tags", lambda c: (["good", "--profile", str(c.write("notags.json", _profile(tags=None))), "--index-url", c.index,
                                             "-o", str(c.out)], ["notags.json", "tags"])),
    Case("profile-bad-python-full-version", lambda c: (["good", "--profile", str(c.write("badver.json", _profile(
        markers={**json.loads(_profile())["markers"], "python_full_version": "three.eleven"}))), "--index-url", c.index, "--no-cache",
        "-o", str(c.out)], ["badver.json", "three.eleven"])),
    Case("profile-not-a-profile", lambda c: (["good", "--profile", str(c.write("other.json", "[1, 2]")), "--index-url", c.index,
                                              "-o", str(c.out)], ["other.json"])),
    Case("unknown-preset", lambda c: (["good", "--profile", "no-such-preset", "--index-url", c.index, "-o", str(c.out)], ["no-such-preset"])),
    Case("output-dir-missing", lambda c: (["good", *TARGET, "--index-url", c.index, "--no-cache", "-o", "/nonexistent-dir/pylock.toml"],
                                          ["/nonexistent-dir"])),
    Case("output-under-a-file", lambda c: (["good", *TARGET, "--index-url", c.index, "--no-cache", "-o",
                                            str(c.write("somefile", "x") / "pylock.toml")], ["somefile"])),
    Case("output-is-a-directory", lambda c: (["good", *TARGET, "--index-url", c.index, "--no-cache", "-o", str(c.out.parent)],
                                             [str(c.out.parent)]), frozenset({2})),
    Case("requirements-txt-is-a-directory", lambda c: ((c.out.parent / "requirements.txt").mkdir(), (["good", *c.common()],
                                                       ["requirements.txt"]))[1]),
    Case("cache-dir-is-a-file", lambda c: (["good", *TARGET, "--index-url", c.index, "--cache-dir", str(c.write("cachefile", "x")),
                                            "-o", str(c.out)], ["cachefile"])),
    Case("pin-undefined-index", lambda c: (["good", *c.common(), "--pin", "good=nope"], ["nope"]), frozenset({2})),
    Case("index-without-name", lambda c: (["good", *c.common(), "--index", "justaurl"], ["justaurl"]), frozenset({2})),
    Case("bad-exclude-newer", lambda c: (["good", *c.common(), "--exclude-newer", "yesterday"], ["yesterday"])),
    Case("jobs-zero", lambda c: (["good", *c.common(), "--jobs", "0"], ["--jobs"]), frozenset({2})),
    Case("jobs-not-a-number", lambda c: (["good", *c.common(), "--jobs", "many"], ["many"]), frozenset({2})),
]


@pytest.fixture
def ctx(tmp_path: Path, index_server: IndexServer) -> Ctx:
    s = index_server
    s.add_index("main")
    s.add_wheel("main", "good", "1.0")
    s.add_wheel("main", "alpha", "1.0", requires_dist=["beta>=2"])
    s.add_wheel("main", "beta", "1.0")
    s.add_wheel("main", "winonly", "1.0", tag="cp311-cp311-win_amd64")
    s.add_wheel("main", "newpy", "1.0", requires_python=">=3.13")
    (tmp_path / "out").mkdir()
    return Ctx(tmp=tmp_path, server=s, out=tmp_path / "out" / "pylock.toml")


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "WHEELHOUSE_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, WHEELHOUSE_CACHE_DIR=str(tmp / "default-cache"), NETRC=os.devnull,
               # nothing here may leave loopback: a dead proxy makes any stray request to PyPI fail at once
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", ALL_PROXY="http://127.0.0.1:9",
               NO_PROXY="127.0.0.1,localhost")
    for k in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        env.pop(k, None)
    return env


def _left_behind(tmp: Path) -> list[Path]:
    """Lock outputs or temp files anywhere under the test's directory (the index only holds wheels)."""
    return sorted(p for p in tmp.rglob("*") if p.is_file() and (
        p.name.startswith(("pylock", "requirements")) and p.suffix in (".toml", ".txt") or p.name.endswith(".tmp")))


def _check(code: int, err: str, case: Case, culprits: list[str], tmp: Path) -> None:
    assert "Traceback" not in err, err
    assert code in case.codes, f"exit {code}, expected {sorted(case.codes)}\n{err}"
    assert "wheelhouse: error:" in err, err
    for culprit in culprits:
        assert culprit in err, f"stderr does not name {culprit!r}:\n{err}"
    for secret in case.absent:
        assert secret not in err, err
    assert _left_behind(tmp) == [], f"left behind: {_left_behind(tmp)}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_subprocess(case: Case, ctx: Ctx) -> None:
    argv, culprits = case.build(ctx)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "bundler", "lock", *argv], cwd=ctx.tmp, env=_env(ctx.tmp),
                          capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    _check(proc.returncode, proc.stderr, case, culprits, ctx.tmp)
    assert took < case.max_seconds, f"took {took:.1f}s"


IN_PROCESS = {"bad-specifier", "unknown-project", "unknown-platform", "platform-without-version", "unknown-flag",
              "missing-requirements-file", "recipe-unknown-key", "garbage-index-page-content-type", "metadata-hash-mismatch",
              "hash-pin-mismatch", "output-under-a-file", "jobs-zero"}


@pytest.mark.parametrize("case", [c for c in CASES if c.id in IN_PROCESS], ids=lambda c: c.id)
def test_bad_input_in_process(case: Case, ctx: Ctx, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in _env(ctx.tmp).items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(ctx.tmp)
    argv, culprits = case.build(ctx)
    code = cli_main(["lock", *argv])
    _check(code, capsys.readouterr().err, case, culprits, ctx.tmp)


def test_failed_lock_keeps_the_previous_lock(ctx: Ctx) -> None:
    """A lock that fails leaves the lock of an earlier success untouched, and no temp files."""
    env = _env(ctx.tmp)
    ok = subprocess.run([sys.executable, "-m", "bundler", "lock", "good", *ctx.common()], cwd=ctx.tmp, env=env,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    req = ctx.out.with_name("requirements.txt")
    before = (ctx.out.read_bytes(), req.read_bytes())
    assert b"good" in before[0] and b"--hash=sha256:" in before[1]
    stat_before = (ctx.out.stat().st_mtime_ns, req.stat().st_mtime_ns)

    failures = [
        ["alpha", *ctx.common()],  # unsatisfiable
        ["no-such-project", *ctx.common()],
        ["good", *ctx.common(), "--exclude-newer", "yesterday"],
    ]
    for argv in failures:
        proc = subprocess.run([sys.executable, "-m", "bundler", "lock", *argv], cwd=ctx.tmp, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert (ctx.out.read_bytes(), req.read_bytes()) == before
        assert (ctx.out.stat().st_mtime_ns, req.stat().st_mtime_ns) == stat_before
        assert sorted(p.name for p in ctx.out.parent.iterdir()) == ["pylock.toml", "requirements.txt"]


def test_failed_write_keeps_the_previous_lock(ctx: Ctx, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """When requirements.txt cannot be written after pylock.toml was, the old pylock.toml comes back."""
    for k, v in _env(ctx.tmp).items():
        monkeypatch.setenv(k, v)
    assert cli_main(["lock", "good", *ctx.common()]) == 0
    old = ctx.out.read_bytes()
    req = ctx.out.with_name("requirements.txt")
    req.unlink()
    req.mkdir()  # the requirements file cannot be replaced now
    capsys.readouterr()
    assert cli_main(["lock", "good", "beta", *ctx.common()]) == 1
    err = capsys.readouterr().err
    assert "requirements.txt" in err and "Traceback" not in err, err
    assert ctx.out.read_bytes() == old
    assert sorted(p.name for p in ctx.out.parent.iterdir()) == ["pylock.toml", "requirements.txt"]


def test_persistent_http_500_is_retried_then_reported(ctx: Ctx, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A 5xx is retried (Retry-After: 0 honoured, so no sleep), then reported with exit 1."""
    for k, v in _env(ctx.tmp).items():
        monkeypatch.setenv(k, v)
    argv, _ = _http_500("0")(ctx)
    started = time.monotonic()
    assert cli_main(["lock", *argv]) == 1
    assert time.monotonic() - started < 2
    hits = [r for r in ctx.server.requests if r.path.endswith("/simple/good/")]
    assert len(hits) == 4  # the first try and 3 retries
    assert "HTTP 500" in capsys.readouterr().err
