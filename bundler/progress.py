"""Progress on stderr for the long steps: a tqdm bar on a terminal, a line every few seconds when
piped, nothing with ``-q``. These are the reporters the stages call (``plan``'s per-pin callback and
``fetch.Reporter``); the stages themselves never print."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any


def err(text: str) -> None:
    """One line on stderr."""
    print(text, file=sys.stderr)


def human(n: float) -> str:
    """A byte count as people read it: 950 B, 1.2 MB, 3.4 GB (powers of 1000)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class ResolveProgress:
    """A spinner-style count of pinned packages on a terminal; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=None, unit=" pins", desc="resolving", file=sys.stderr, leave=False, dynamic_ncols=True)

    def __call__(self, candidate: Any) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{candidate.name} {candidate.version}", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class FetchProgress:
    """A byte bar with the files in flight on a terminal, a line every few seconds otherwise, or nothing."""

    def __init__(self, quiet: bool, interval: float = 5.0) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.bar: Any = None
        self.lock = threading.Lock()
        self.inflight: dict[str, None] = {}
        self.done = self.total = self.files = 0
        self.interval = interval
        self.last = self.t0 = time.monotonic()

    def start(self, files: int, total_bytes: int) -> None:
        self.files, self.total = files, total_bytes
        self.t0 = self.last = time.monotonic()
        if self.quiet or not files:
            return
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total_bytes or None, unit="B", unit_scale=True, desc=f"fetching {files} files",
                            file=sys.stderr, leave=False, dynamic_ncols=True)
        else:
            err(f"fetching {files} files" + (f", {human(total_bytes)}" if total_bytes else ""))

    def file_start(self, spec: Any, offset: int) -> None:
        with self.lock:
            self.inflight[spec.filename] = None
            self._postfix()

    def file_end(self, spec: Any) -> None:
        with self.lock:
            self.inflight.pop(spec.filename, None)
            self._postfix()

    def _postfix(self) -> None:
        if self.bar is not None:
            names = list(self.inflight)
            self.bar.set_postfix_str(", ".join(n.split("-")[0] for n in names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else ""),
                                     refresh=False)

    def advance(self, nbytes: int) -> None:
        with self.lock:
            self.done += nbytes
            if self.bar is not None:
                self.bar.update(nbytes)
            elif not self.quiet and time.monotonic() - self.last >= self.interval:
                self.last = time.monotonic()
                rate = self.done / max(self.last - self.t0, 1e-9)
                of = f" of {human(self.total)}" if self.total else ""
                err(f"  {human(self.done)}{of} at {human(rate)}/s, {len(self.inflight)} files in flight")

    def retry(self, spec: Any, reason: str, delay: float) -> None:
        if self.quiet:
            return
        line = f"retrying {spec.filename} in {delay:.1f}s: {reason}"
        with self.lock:
            if self.bar is not None:
                self.bar.write(line, file=sys.stderr)
            else:
                err(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class PackProgress:
    """``progress(done, total)`` for pack: a byte bar on a terminal, a line every few seconds when
    piped (a big bundle at a high --level takes a while), nothing with ``-q``."""

    def __init__(self, quiet: bool, interval: float = 5.0, *, tty: bool | None = None) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.bar: Any = None
        self.interval = interval
        self.t0 = self.last = time.monotonic()
        self.started = False

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if not self.started:
            self.started = True
            self.t0 = self.last = time.monotonic()
            if self.tty:
                from tqdm import tqdm

                self.bar = tqdm(total=total or None, unit="B", unit_scale=True, desc="packing", file=sys.stderr,
                                leave=False, dynamic_ncols=True)
            else:
                err(f"packing {human(total)}")
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        elif time.monotonic() - self.last >= self.interval:
            self.last = time.monotonic()
            rate = done / max(self.last - self.t0, 1e-9)
            err(f"  packed {human(done)} of {human(total)} at {human(rate)}/s")

    def note(self, text: str) -> None:
        """A line about a slow step before the archive is written (nothing with ``-q``)."""
        if not self.quiet:
            err(text)

    def __enter__(self) -> PackProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
