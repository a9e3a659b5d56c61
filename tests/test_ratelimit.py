"""The shared token bucket behind --limit-rate, driven by a fake clock (no real sleeping)."""

from __future__ import annotations

import threading

import pytest

from bundler.http import RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


@pytest.mark.parametrize("rate", [200_000, 2_000_000, 50_000_000])
@pytest.mark.parametrize("chunk", [1000, 16 * 1024, 256 * 1024])
def test_long_run_rate_is_exact(rate: int, chunk: int) -> None:
    t = FakeTime()
    limiter = RateLimiter(rate, clock=t.clock, sleep=t.sleep)
    total = rate * 10  # ten seconds' worth
    sent = 0
    start = t.now
    while sent < total:
        limiter.take(chunk)
        sent += chunk
    elapsed = t.now - start
    # Only the burst may run ahead of the rate.
    slack = 1e-6 * sent / rate  # float rounding over many takes
    assert sent / rate - limiter.burst_seconds - slack <= elapsed <= sent / rate + slack


def test_burst_is_small_and_idle_time_does_not_bank_more() -> None:
    t = FakeTime()
    limiter = RateLimiter(1_000_000, clock=t.clock, sleep=t.sleep)
    t.now += 3600  # an hour idle
    start = t.now
    for _ in range(100):
        limiter.take(10_000)  # 1 MB at 1 MB/s
    assert t.now - start >= 1.0 - limiter.burst_seconds - 1e-9
    assert limiter.burst_seconds <= 0.1


def test_threads_share_one_budget() -> None:
    t = FakeTime()
    limiter = RateLimiter(1_000_000, clock=t.clock, sleep=t.sleep)

    def worker() -> None:
        for _ in range(50):
            limiter.take(10_000)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # 2 MB went through one 1 MB/s bucket: the virtual schedule spans ~2 s, not ~0.5 s.
    assert limiter._free_at - 1000.0 == pytest.approx(2.0, abs=0.01)


def test_rejects_nonpositive_rate() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)
