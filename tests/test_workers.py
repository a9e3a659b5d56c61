"""bundler/workers.py: the daemon pool behind the planner's page and metadata requests, and
``run_now``, by which the resolver runs the work it waits for itself instead of waiting behind
speculation queued ahead of it. Every piece of work runs once, whoever takes it."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from bundler.workers import DaemonPool


def test_run_now_runs_queued_work_on_the_callers_thread() -> None:
    pool = DaemonPool(1, "t")
    gate = threading.Event()
    blocker = pool.submit(gate.wait, 10)  # the only worker is busy
    queued = pool.submit(lambda: threading.current_thread().name)
    pool.run_now(queued)
    assert queued.done() and queued.result() == threading.current_thread().name
    gate.set()
    assert blocker.result(10) is True
    pool.shutdown()


def test_run_now_leaves_started_work_to_its_worker() -> None:
    pool = DaemonPool(1, "t")
    started, gate = threading.Event(), threading.Event()
    runs: list[str] = []

    def work() -> str:
        runs.append(threading.current_thread().name)
        started.set()
        gate.wait(10)
        return "done"

    fut = pool.submit(work)
    assert started.wait(10)
    pool.run_now(fut)  # running on the worker: nothing to do here
    assert not fut.done()
    gate.set()
    assert fut.result(10) == "done" and runs == ["t_1"]
    pool.shutdown()


def test_each_piece_of_work_runs_once_whoever_takes_it() -> None:
    pool = DaemonPool(4, "t")
    runs: Counter[int] = Counter()
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            runs[i] += 1
        time.sleep(random.random() / 1000)
        return i * i

    futures = [pool.submit(work, i) for i in range(300)]

    def steal(seed: int) -> None:
        rng = random.Random(seed)
        for fut in rng.sample(futures, len(futures)):
            pool.run_now(fut)

    stealers = [threading.Thread(target=steal, args=(s,)) for s in range(6)]
    for t in stealers:
        t.start()
    for t in stealers:
        t.join()
    assert [f.result(10) for f in futures] == [i * i for i in range(300)]
    assert set(runs.values()) == {1} and len(runs) == 300
    pool.shutdown()


def test_an_error_goes_to_the_future_whoever_runs_it() -> None:
    pool = DaemonPool(1, "t")
    gate = threading.Event()
    pool.submit(gate.wait, 10)
    fut = pool.submit(lambda: 1 / 0)
    pool.run_now(fut)
    with pytest.raises(ZeroDivisionError):
        fut.result()
    gate.set()
    pool.shutdown()


def test_shutdown_cancels_queued_work_and_run_now_then_does_nothing() -> None:
    pool = DaemonPool(1, "t")
    gate = threading.Event()
    blocker = pool.submit(gate.wait, 10)
    queued = pool.submit(lambda: pytest.fail("cancelled work must not run"))
    pool.shutdown()
    assert queued.cancelled()
    pool.run_now(queued)
    assert queued.cancelled()
    gate.set()
    assert blocker.result(10) is True
    with pytest.raises(RuntimeError):
        pool.submit(print)
