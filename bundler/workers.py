"""A thread pool for speculative I/O that never holds up the interpreter's exit, and that lets the
thread waiting for a result take its work out of the queue.

``concurrent.futures.ThreadPoolExecutor`` joins its workers when the interpreter exits, so a lock
that is done still waits for a prefetch nobody needs (a range read of a wheel that has no metadata
file can take a third of a second). These workers are daemon threads: once ``shutdown`` has run,
work in flight is abandoned at exit. Whatever they write is published atomically
(``fsutil.atomic_write``), so an abandoned write leaves at most a temporary file, never a torn entry.

Work may come in two stages (``submit_staged``): the first on a worker (a request, which mostly
waits with the interpreter lock released), the second, which only computes (parsing a page,
ranking its files), on the pool's one *lane* thread. Computing on sixteen threads at once only
shares one interpreter lock sixteen ways, so the page the resolver waits for would be parsed at a
sixteenth of the speed, behind speculation; with one lane, the thread that waits (``wait``) takes
its own second stage the moment the first is done, whatever the lane is busy with.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

T = TypeVar("T")
S = TypeVar("S")
_Job = tuple[Callable[..., Any], tuple[Any, ...], Callable[[Any], Any] | None]  # first stage, its args, second stage


class DaemonPool:
    """``submit``/``shutdown`` as in ``ThreadPoolExecutor``, on at most ``workers`` daemon threads,
    started as work arrives while none is idle, plus one lane thread for second stages (see the
    module docstring). ``run_now`` and ``wait`` run queued work on the caller's thread."""

    def __init__(self, workers: int, name: str) -> None:
        self._max = max(1, workers)
        self._name = name
        self._queue: queue.SimpleQueue[Future[Any] | None] = queue.SimpleQueue()
        self._pending: dict[Future[Any], _Job] = {}  # queued, not started
        self._staged: dict[Future[Any], tuple[Callable[[Any], Any], Any]] = {}  # first stage done, second not started
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # notified when a second stage is queued or a waited future is done
        self._lane: queue.SimpleQueue[Future[Any] | None] | None = None
        self._lane_thread: threading.Thread | None = None
        self._threads = 0
        self._idle = 0
        self._shut = False

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on a worker; its result or exception goes to the returned future."""
        return self._submit((fn, args, None))

    def submit_staged(self, fetch: Callable[..., S], finish: Callable[[S], T], *args: Any) -> Future[T]:
        """Run ``fetch(*args)`` on a worker, then ``finish`` of its value on the lane (or on the
        thread that waits for it); the result of ``finish``, or the exception of either, goes to
        the returned future."""
        return self._submit((fetch, args, finish))

    def _submit(self, job: _Job) -> Future[Any]:
        fut: Future[Any] = Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot submit after shutdown")
            self._pending[fut] = job
            self._queue.put(fut)
            if self._idle == 0 and self._threads < self._max:
                self._threads += 1
                threading.Thread(target=self._work, name=f"{self._name}_{self._threads}", daemon=True).start()
            else:
                self._idle = max(0, self._idle - 1)  # that worker is taken: the next submit may start one
        return fut

    def run_now(self, fut: Future[Any]) -> None:
        """Run the work of ``fut`` on this thread if nobody has started it (the caller needs it
        now: speculation queued ahead of it may be long), or its second stage if that waits; else
        nothing (it runs, or ran, elsewhere)."""
        with self._lock:
            job = self._pending.pop(fut, None)
            staged = self._staged.pop(fut, None) if job is None else None
        if job is not None:
            self._run(fut, job, here=True)
        elif staged is not None:
            _finish(fut, *staged)

    def wait(self, fut: Future[T]) -> T:
        """The result of ``fut``; whatever of its work is not started when it is needed (the whole
        of it, or its second stage once the first is done) runs on this thread."""
        fut.add_done_callback(self._wake)
        while True:
            self.run_now(fut)
            with self._ready:
                while not fut.done() and fut not in self._staged:
                    self._ready.wait()
            if fut.done():
                return fut.result()

    def _wake(self, _fut: Future[Any]) -> None:
        with self._ready:
            self._ready.notify_all()

    def _work(self) -> None:
        while True:
            fut = self._queue.get()
            if fut is None:
                return
            with self._lock:
                job = self._pending.pop(fut, None)
            if job is not None:  # else taken by ``run_now``
                self._run(fut, job, here=False)
            del fut, job  # no reference to the last result while waiting
            with self._lock:
                self._idle += 1

    def _run(self, fut: Future[Any], job: _Job, *, here: bool) -> None:
        fn, args, finish = job
        if not fut.set_running_or_notify_cancel():
            return
        try:
            value = fn(*args)
        except BaseException as e:  # raised to whoever asks for the result
            fut.set_exception(e)
            return
        if finish is None:
            fut.set_result(value)
        elif here:
            _finish(fut, finish, value)
        else:
            with self._lock:
                self._staged[fut] = (finish, value)
                self._ready.notify_all()
                if not self._shut:  # after shutdown, only a waiter runs it
                    if self._lane is None:
                        self._lane = queue.SimpleQueue()
                        self._lane_thread = threading.Thread(target=self._lane_work, args=(self._lane,), name=f"{self._name}_lane",
                                                             daemon=True)
                        self._lane_thread.start()
                    self._lane.put(fut)

    def on_lane(self) -> bool:
        """Whether the calling thread is the lane: the second stage it runs is one nobody waited for
        when it was ready (a waiter takes its own)."""
        return threading.current_thread() is self._lane_thread

    def _lane_work(self, lane: queue.SimpleQueue[Future[Any] | None]) -> None:
        while True:
            fut = lane.get()
            if fut is None:
                return
            with self._lock:
                staged = self._staged.pop(fut, None)
            if staged is not None:  # else taken by a waiter
                _finish(fut, *staged)
            del fut, staged

    def shutdown(self) -> None:
        """Cancel the work not yet started and let the workers end; work in flight runs on unwaited
        (a second stage only if somebody waits for it)."""
        with self._lock:
            self._shut = True
            threads = self._threads
            if self._lane is not None:
                self._lane.put(None)
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


def _finish(fut: Future[Any], finish: Callable[[Any], Any], value: Any) -> None:
    try:
        fut.set_result(finish(value))
    except BaseException as e:  # raised to whoever asks for the result
        fut.set_exception(e)
