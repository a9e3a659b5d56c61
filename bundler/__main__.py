"""``python -m bundler`` and the ``wheelhouse`` command: ``cli.main``, then a quick exit (``run``)."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

from bundler.cli import main


def run() -> NoReturn:
    """Run ``main`` on the command line and end the process with its status.

    A finished run leaves its memory to the operating system: the interpreter's own teardown would
    free what a lock still holds object by object (70-90 ms after a cold lock, a tenth of its time),
    as mypy's ``hard_exit`` avoids too. What that teardown does that matters is done first: waiting
    for the threads that are not daemons, the exit handlers (temporary folders' finalizers among
    them), and the flush of stdout and stderr. An interpreter without CPython's exit handlers runs
    the ordinary exit."""
    code = main()
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None:
        sys.exit(code)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that left, or a closed stream
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
