"""A thread pool for speculative I/O that never holds up the interpreter's exit.

``concurrent.futures.ThreadPoolExecutor`` joins its workers when the interpreter exits, so a lock
that is done still waits for a prefetch nobody needs (a range read of a wheel that has no metadata
file can take a third of a second). These workers are daemon threads: once ``shutdown`` has run,
work in flight is abandoned at exit. Whatever they write is published atomically
(``fsutil.atomic_write``), so an abandoned write leaves at most a temporary file, never a torn entry.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class DaemonPool:
    """``submit``/``shutdown`` as in ``ThreadPoolExecutor``, on at most ``workers`` daemon threads,
    started as work arrives while none is idle; ``run_now`` runs queued work on the caller's thread."""

    def __init__(self, workers: int, name: str) -> None:
        self._max = max(1, workers)
        self._name = name
        self._queue: queue.SimpleQueue[Future[Any] | None] = queue.SimpleQueue()
        self._pending: dict[Future[Any], tuple[Callable[..., Any], tuple[Any, ...]]] = {}  # queued, not started
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._shut = False

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on a worker; its result or exception goes to the returned future."""
        fut: Future[T] = Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot submit after shutdown")
            self._pending[fut] = (fn, args)
            self._queue.put(fut)
            if self._idle == 0 and self._threads < self._max:
                self._threads += 1
                threading.Thread(target=self._work, name=f"{self._name}_{self._threads}", daemon=True).start()
            else:
                self._idle = max(0, self._idle - 1)  # that worker is taken: the next submit may start one
        return fut

    def run_now(self, fut: Future[Any]) -> None:
        """Run the work of ``fut`` on this thread if no worker has started it (the caller needs it
        now: speculation queued ahead of it may be long); else nothing (it runs, or ran, on a worker)."""
        with self._lock:
            work = self._pending.pop(fut, None)
        if work is not None:
            _run(fut, *work)

    def _work(self) -> None:
        while True:
            fut = self._queue.get()
            if fut is None:
                return
            with self._lock:
                work = self._pending.pop(fut, None)
            if work is not None:  # else taken by ``run_now``
                _run(fut, *work)
            del fut, work  # no reference to the last result while waiting
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        """Cancel the work not yet started and let the workers end; work in flight runs on unwaited."""
        with self._lock:
            self._shut = True
            threads = self._threads
        while True:
            try:
                fut = self._queue.get_nowait()
            except queue.Empty:
                break
            if fut is not None:
                with self._lock:
                    self._pending.pop(fut, None)
                fut.cancel()
        for _ in range(threads):
            self._queue.put(None)


def _run(fut: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    if fut.set_running_or_notify_cancel():
        try:
            fut.set_result(fn(*args))
        except BaseException as e:  # raised to whoever asks for the result
            fut.set_exception(e)
