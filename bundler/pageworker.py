"""A helper process that reads big JSON index pages, so that the planner's own interpreter lock is free.

A cold lock reads tens of megabytes of PEP 691 pages (pydantic-core's alone is 7 MB and 15,000
files); ``json.loads`` and the column checks of ``bundler.jsonpage`` were a third of the planner's CPU,
all of it under the one interpreter lock that the resolver, the downloads and the ranking share. A
``PageWorker`` hands such a page to a second Python process (``serve``, in an isolated interpreter
given this process's module path), which parses it with the same code and sends back the checked
columns and tag groups in ``marshal`` form: reading those back costs a tenth of the parse.

It never delays a page: the helper takes one page at a time, and a page that finds it busy, not
started yet, or gone is parsed here as before (``parse`` returns None). A page the helper cannot
parse is parsed here too, so its error is raised exactly as it always was. The helper reads only
what this process sends it, writes nothing to disk, and ends when its input closes (this process
closing the repository, or exiting).
"""

from __future__ import annotations

import dataclasses
import marshal
import struct
import subprocess
import sys
import threading
from typing import IO, Any

from bundler.index import IndexConfig
from bundler.pagefiles import FIELDS, PageFiles

SMALLEST = 256 << 10  # smaller pages parse here faster than they travel
_LEN = struct.Struct("<Q")
_READY = b"R"
# Isolated (-I: no current folder, no PYTHON* variables), with this process's module path: the
# helper runs this very wheelhouse, never a ``bundler`` folder where the command happens to be run.
_MAIN = ("import sys; sys.path[:] = sys.argv[1:]; "
         "from bundler.pageworker import serve; serve(sys.stdin.buffer, sys.stdout.buffer)")


class PageWorker:
    """One helper process, started on first use (thread-safe; ``close`` when done)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held by the one page being parsed by the helper
        self._starting = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._dead = False

    def start(self) -> None:
        """Start the helper (it loads its modules while the first pages are on their way)."""
        if self._proc is not None or self._dead:  # every request asks: no lock once started
            return
        with self._starting:
            if self._proc is not None or self._dead:
                return
            if not sys.executable:  # an embedded interpreter: no Python to start
                self._dead = True
                return
            try:
                self._proc = subprocess.Popen([sys.executable, "-I", "-c", _MAIN, *sys.path], stdin=subprocess.PIPE,
                                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            except OSError:
                self._dead = True
                return
        threading.Thread(target=self._wait_ready, name="wheelhouse-pageworker", daemon=True).start()

    def _wait_ready(self) -> None:
        """Mark the helper ready once it says so, then reap it when it ends (on its own thread)."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        try:
            if proc.stdout.read(1) == _READY:
                self._ready.set()
        except (OSError, ValueError):
            pass
        if not self._ready.is_set():
            self._dead = True
        proc.wait()

    def parse(self, body: bytes, page_url: str, index: IndexConfig) -> PageFiles | None:
        """The files of a JSON page, parsed by the helper; None when it is busy, not ready, gone, or
        could not parse the page (the caller then parses it itself)."""
        if len(body) < SMALLEST or self._dead or not self._ready.is_set() or not self._lock.acquire(blocking=False):
            return None
        try:
            proc = self._proc
            if self._dead or proc is None or proc.stdin is None or proc.stdout is None:
                return None
            try:
                _send(proc.stdin, (page_url, {f.name: getattr(index, f.name) for f in dataclasses.fields(index)}, body))
                answer = _receive(proc.stdout)
            except (OSError, ValueError, EOFError, TypeError):
                self._dead = True
                return None
        finally:
            self._lock.release()
        if not (isinstance(answer, tuple) and len(answer) == 3 and answer[0] == "ok"):
            return None
        _, columns, groups = answer
        # Checked by the helper with this same code (``usual``, or file by file); only their shape here.
        if not (type(columns) is list and len(columns) == len(FIELDS) and all(type(c) is list for c in columns)
                and len({len(c) for c in columns}) == 1 and type(groups) is dict):
            return None
        return PageFiles(index, columns, groups=groups)

    def close(self) -> None:
        """End the helper: its input closes, and it exits after the page it may be reading (this
        process does not wait; the thread that watched it start collects it)."""
        self._dead = True
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            try:
                proc.stdin.close()
            except (OSError, ValueError):
                pass


def _send(out: IO[bytes], value: Any) -> None:
    data = marshal.dumps(value)
    out.write(_LEN.pack(len(data)))
    out.write(data)
    out.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(_LEN.size)
    if len(head) != _LEN.size:
        raise EOFError("the page helper ended")
    (size,) = _LEN.unpack(head)
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the page helper ended")
    return marshal.loads(data)


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """The helper's loop: a page in, its columns and tag groups (or "error") out, until input ends."""
    from bundler.jsonpage import parse_json_page

    out.write(_READY)
    out.flush()
    while True:
        try:
            page_url, index, body = _receive(inp)
        except EOFError:
            return
        try:
            files = parse_json_page(body, page_url, IndexConfig(**index))
            answer: Any = ("ok", files.columns, files.tag_groups())
        except Exception:  # the caller parses the page itself, and raises its error as ever
            answer = ("error", None, None)
        _send(out, answer)
