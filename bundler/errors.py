"""The exception tree. Every error a user can cause is a ``BundlerError``.

BundlerError             exit 1, message on stderr, never a traceback
 ├── BadInput            a file, flag value or recipe the user gave is wrong
 │    └── UsageError     exit 2: the command line itself is wrong
 ├── IndexUnavailable    an index could not be read (unreachable, garbage page)
 ├── NoCompatibleFile    a project has files, but none for the target
 ├── ResolutionImpossible the requirements cannot all hold at once
 ├── HashMismatch        bytes did not match the hash they were promised to have
 ├── DownloadFailed      a transfer failed after all retries
 ├── Incomplete          a bundle would not install its locked set from its own files
 └── BadBundle           a bundle's bytes or structure do not match its manifest
"""

from __future__ import annotations

import signal
from typing import Any, Mapping


class BundlerError(Exception):
    """Root of all errors wheelhouse reports to the user (exit status 1)."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class BadInput(BundlerError):
    """A file, flag value or recipe the user supplied is invalid."""


class UsageError(BadInput):
    """The command line is malformed (exit status 2)."""

    exit_code = 2


class IndexUnavailable(BundlerError):
    """An index or find-links location could not be read or parsed."""


class ResponseTooLarge(IndexUnavailable):
    """A response body passed the size its reader allowed (a server ignoring ``Range`` sends a whole file)."""


class NoCompatibleFile(BundlerError):
    """A project exists but has no file usable on the target."""


class ResolutionImpossible(BundlerError):
    """The requirements cannot be satisfied together.

    When the resolver raises it, it carries resolvelib's ``causes`` and the ``target`` profile,
    ``policy`` and ``hashes`` it resolved with, so that ``bundler.diagnose`` can tell the story
    afterwards (as resolvelib's own exception carries its causes). ``side_causes`` are requirements
    nothing could satisfy, whose parents the planner set aside to reach the real conflict.
    """

    def __init__(self, message: str, *, hint: str | None = None, causes: tuple[Any, ...] = (), target: Any = None,
                 policy: Any = None, hashes: Mapping[str, frozenset[str]] | None = None,
                 side_causes: tuple[Any, ...] = ()) -> None:
        super().__init__(message, hint=hint)
        self.causes = causes
        self.side_causes = side_causes
        self.target = target
        self.policy = policy
        self.hashes = hashes or {}


class HashMismatch(BundlerError):
    """Downloaded bytes do not match the expected sha256."""

    def __init__(self, what: str, expected: str, actual: str, *, hint: str | None = None) -> None:
        super().__init__(f"hash mismatch for {what}: expected sha256 {expected}, got {actual}", hint=hint)
        self.what = what
        self.expected = expected
        self.actual = actual


class DownloadFailed(BundlerError):
    """A transfer failed after every retry."""


class Incomplete(BundlerError):
    """A bundle would not install its locked set on a target from its own files."""


class BadBundle(BundlerError):
    """A bundle whose bytes or structure do not match its manifest."""


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so every cleanup (temporary files, partial bundles) runs."""


def on_sigterm() -> Any:
    """Turn SIGTERM into ``Terminated`` (main thread only); return the previous handler."""
    def handler(signum: int, frame: Any) -> None:
        raise Terminated()
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (main() called from a test's worker): leave signals alone
        return None
