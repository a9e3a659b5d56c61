"""The command line as users meet it: inputs never overwritten, odd terminals and pipes, hostile text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.hermetic import hermetic

UNREACHABLE = "http://127.0.0.1:9/simple/"  # nothing listens on port 9: a run that got this far would fail differently


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, "SSL_CERT_FILE")


def wheelhouse(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bundler", *map(str, argv)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


TARGET = ["--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11", "--no-cache", "--index-url", UNREACHABLE]


@pytest.mark.parametrize("case", ["requirements-file", "recipe", "lock-is-the-bundle", "build-over-recipe", "profile-file"])
def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path: Path, case: str) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("six\n")
    recipe = tmp_path / "r.toml"
    recipe.write_text('requirements = ["six"]\n[[targets]]\npython-platform = "x86_64-manylinux_2_28"\npython-version = "3.11"\n')
    lock = tmp_path / "pylock.toml"
    lock.write_text("lock-version = '1.0'\n")
    profile = tmp_path / "target.json"
    profile.write_text(wheelhouse("profile", "show", "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11",
                                  "--json", cwd=tmp_path).stdout)
    argv = {
        "requirements-file": ["lock", "-r", reqs, "-o", tmp_path / "pylock.toml", *TARGET],  # writes requirements.txt
        "recipe": ["lock", recipe, "-o", recipe, "--no-cache", "--index-url", UNREACHABLE],
        "lock-is-the-bundle": ["pack", lock, "-o", lock],
        "build-over-recipe": ["build", recipe, "-o", recipe, "--index-url", UNREACHABLE],
        "profile-file": ["lock", "six", "--profile", profile, "-o", tmp_path / "." / "target.json", "--no-cache",
                         "--index-url", UNREACHABLE],
    }[case]
    before = {p: p.read_bytes() for p in (reqs, recipe, lock, profile)}
    r = wheelhouse(*argv, cwd=tmp_path)
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr
    assert "also an input" in r.stderr and "never writes over what it reads" in r.stderr
    assert "cannot connect" not in r.stderr  # refused before any request
    assert {p: p.read_bytes() for p in before} == before


def test_output_through_a_symlink_to_an_input_is_refused(tmp_path: Path) -> None:
    reqs = tmp_path / "reqs.in"
    reqs.write_text("six\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "requirements.txt").symlink_to(reqs)
    r = wheelhouse("lock", "-r", reqs, "-o", tmp_path / "out" / "pylock.toml", *TARGET, cwd=tmp_path)
    assert r.returncode == 2 and "also an input" in r.stderr and reqs.read_text() == "six\n"


def test_a_closed_pipe_is_not_a_traceback(tmp_path: Path) -> None:
    cmd = (f"{sys.executable} -m bundler profile show --tags --python-platform x86_64-manylinux_2_28 "
           "--python-version 3.11 | head -1")
    r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.stdout.startswith("cp311-cp311-manylinux_2_28_x86_64")
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr


def test_hostile_text_is_escaped_and_an_ascii_terminal_is_fine(tmp_path: Path) -> None:
    shown = wheelhouse("profile", "show", "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11", "--json",
                       cwd=tmp_path).stdout
    doc = json.loads(shown)
    doc["facts"]["os"] = "linux\x1b[2J\x1b[1;1Hall clear, Débian"
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(doc))
    r = wheelhouse("profile", "show", path, cwd=tmp_path, env={"PYTHONIOENCODING": "ascii"})
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\\x1b[2J" in r.stdout and "D\\xe9bian" in r.stdout


@pytest.mark.parametrize("name", ["evil\nname", "a;b", "x" * 100, "../up"])
def test_a_target_name_outside_the_safe_alphabet_is_refused(tmp_path: Path, name: str) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('requirements = ["six"]\n[[targets]]\npython-platform = "x86_64-manylinux_2_28"\n'
                      f'python-version = "3.11"\nname = {json.dumps(name)}\n')
    r = wheelhouse("lock", recipe, "-o", tmp_path / "pylock.toml", "--no-cache", "--index-url", UNREACHABLE, cwd=tmp_path)
    assert r.returncode == 1 and "not a valid target name" in r.stderr and "Traceback" not in r.stderr


def test_requirements_may_follow_options(tmp_path: Path) -> None:
    """`lock numpy --python-version 3.11 scipy`: both requirements count (the unreachable index then fails)."""
    r = wheelhouse("lock", "numpy", "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11", "scipy",
                   "--no-cache", "--index-url", UNREACHABLE, "-o", tmp_path / "pylock.toml", cwd=tmp_path)
    assert r.returncode == 1 and "unrecognized arguments" not in r.stderr and "cannot connect" in r.stderr
    bad = wheelhouse("lock", "numpy", "--python-version", "3.11", "--bogus", cwd=tmp_path)
    assert bad.returncode == 2 and "unrecognized arguments: --bogus" in bad.stderr


@pytest.mark.parametrize("command", [["profile", "list"], ["profile", "show", "rhel8-py311"], ["inspect", "x"], ["verify", "x"],
                                     ["explain", "x"], ["fetch", "x"], ["pack", "x", "-o", "y"], ["lock"], ["build", "-o", "y"]])
def test_quiet_and_verbose_are_accepted_everywhere(tmp_path: Path, command: list[str]) -> None:
    for flag in ("-q", "-v"):
        r = wheelhouse(*command, flag, "--help", cwd=tmp_path)
        assert r.returncode == 0 and "--quiet" in r.stdout and "--verbose" in r.stdout


def test_a_bug_is_one_line_and_the_traceback_comes_on_request(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from bundler import cli

    def broken(args: object) -> int:
        raise RuntimeError("something wheelhouse did not expect")

    monkeypatch.setitem(cli.COMMANDS, "inspect", broken)
    monkeypatch.delenv("WHEELHOUSE_DEBUG", raising=False)
    assert cli.main(["inspect", "x.tar.zst"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["wheelhouse: error: unexpected RuntimeError: something wheelhouse did not expect "
                                        "(a bug; WHEELHOUSE_DEBUG=1 shows the traceback)"]
    monkeypatch.setenv("WHEELHOUSE_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.main(["inspect", "x.tar.zst"])


def test_the_quick_exit_waits_for_threads_runs_exit_handlers_flushes_and_keeps_the_status(tmp_path: Path) -> None:
    """``python -m bundler`` (and the ``wheelhouse`` script) end with ``os._exit``, after what the
    interpreter's own exit would do that matters: a thread that is not a daemon finishes, exit
    handlers run, buffered output is written; and the status is the command's."""
    probe = ("import atexit, pathlib, runpy, sys, threading, time\n"
             "out = pathlib.Path(sys.argv[1])\n"
             "atexit.register(lambda: (out / 'handler').write_text('ran'))\n"
             "threading.Thread(target=lambda: (time.sleep(0.3), (out / 'thread').write_text('done'))).start()\n"
             "sys.stdout.write('buffered, no newline; ')\n"
             "sys.argv = ['wheelhouse', *sys.argv[2:]]\n"
             "runpy.run_module('bundler', run_name='__main__')\n")
    r = subprocess.run([sys.executable, "-c", probe, str(tmp_path), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("buffered, no newline; wheelhouse ")
    assert (tmp_path / "handler").read_text() == "ran" and (tmp_path / "thread").read_text() == "done"
    assert wheelhouse("lock", "--no-such-option", cwd=tmp_path).returncode == 2
    failed = wheelhouse("lock", "six", *TARGET, "-o", tmp_path / "pylock.toml", cwd=tmp_path)
    assert failed.returncode == 1 and failed.stderr.startswith("wheelhouse: error: ")
