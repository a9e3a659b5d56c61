"""bundler/workers.py: the daemon pool behind the planner's page and metadata requests; its lane,
which runs the computing second stage of staged work; and ``run_now``/``wait``, by which the resolver
runs the work it waits for itself instead of waiting behind speculation queued ahead of it. Every
piece of work runs once, whoever takes it."""

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


@pytest.mark.parametrize("staged", [False, True], ids=["one stage", "two stages"])
def test_each_piece_of_work_runs_once_whoever_takes_it(staged: bool) -> None:
    """Workers, the lane and six threads that take work at random (``run_now``, or ``wait``, which
    also takes second stages): each job's last stage runs exactly once, and its result is right."""
    pool = DaemonPool(4, "t")
    runs: Counter[int] = Counter()
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            runs[i] += 1
        time.sleep(random.random() / 1000)
        return i * i

    if staged:
        futures = [pool.submit_staged(lambda i: (time.sleep(random.random() / 2000), i)[1], work, i) for i in range(300)]
    else:
        futures = [pool.submit(work, i) for i in range(300)]

    def steal(seed: int) -> None:
        rng = random.Random(seed)
        for fut in rng.sample(futures, len(futures)):
            if staged:
                pool.wait(fut)
            else:
                pool.run_now(fut)

    stealers = [threading.Thread(target=steal, args=(s,)) for s in range(6)]
    for t in stealers:
        t.start()
    for t in stealers:
        t.join(60)
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


# -- two stages: the first on a worker, the second on the lane or on the thread that waits -------


def test_a_second_stage_runs_on_the_lane_not_on_the_worker() -> None:
    pool = DaemonPool(2, "t")
    fut = pool.submit_staged(lambda x: (x, threading.current_thread().name, pool.on_lane()),
                             lambda v: (*v, threading.current_thread().name, pool.on_lane()), 3)
    assert fut.result(10) == (3, "t_1", False, "t_lane", True)
    assert not pool.on_lane()
    pool.shutdown()


def test_wait_takes_a_ready_second_stage_while_the_lane_is_busy() -> None:
    pool = DaemonPool(2, "t")
    gate, taken = threading.Event(), threading.Event()
    busy = pool.submit_staged(lambda: None, lambda _: (taken.set(), gate.wait(10))[1])
    assert taken.wait(10)  # the lane is held
    fut = pool.submit_staged(lambda: 2, lambda v: (v * 2, threading.current_thread().name, pool.on_lane()))
    start = time.monotonic()
    assert pool.wait(fut) == (4, threading.current_thread().name, False)  # taken by the waiter, not the lane
    assert time.monotonic() - start < 5 and not busy.done()  # not behind the lane's work
    gate.set()
    assert busy.result(10) is True
    pool.shutdown()


def test_wait_runs_both_stages_of_work_nobody_started() -> None:
    pool = DaemonPool(1, "t")
    gate = threading.Event()
    blocker = pool.submit(gate.wait, 10)
    here = threading.current_thread().name
    fut = pool.submit_staged(lambda: threading.current_thread().name, lambda first: (first, threading.current_thread().name))
    assert pool.wait(fut) == (here, here)
    gate.set()
    assert blocker.result(10) is True
    pool.shutdown()


@pytest.mark.parametrize("stage", ["first", "second"])
def test_an_error_in_either_stage_goes_to_the_future(stage: str) -> None:
    pool = DaemonPool(2, "t")
    first = (lambda: 1 / 0) if stage == "first" else (lambda: 1)
    fut = pool.submit_staged(first, lambda v: v / 0)
    with pytest.raises(ZeroDivisionError):
        pool.wait(fut)
    pool.shutdown()


def test_after_shutdown_a_waited_second_stage_still_runs_on_the_waiter() -> None:
    pool = DaemonPool(1, "t")
    gate = threading.Event()
    fut = pool.submit_staged(lambda: gate.wait(10), lambda v: (v, threading.current_thread().name))
    while not fut.running():
        time.sleep(0.001)
    pool.shutdown()  # the lane ends; the first stage is in flight
    gate.set()
    assert pool.wait(fut) == (True, threading.current_thread().name)
