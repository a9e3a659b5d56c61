"""Core metadata of a wheel on a server, read with as few bytes as the server allows.

Three strategies, in pip's order: the PEP 658 ``.metadata`` file when the index advertises one
(hash-checked); else HTTP range reads of the zip's tail and central directory, each read capped a
little above the bytes it asked for; else the whole wheel, streamed to disk, hash-checked against
the index and kept for the fetch stage (``whole()``, see ``findlinks.whole_wheel_metadata``). A
server that ignores ``Range`` and starts sending a whole big wheel is cut off at the cap and read
that way, so memory stays flat whatever the wheel's size. All I/O goes through the
``get(url, headers, limit)`` and ``whole()`` callables, so this module knows nothing about clients,
retries or caches.
"""

from __future__ import annotations

import hashlib
import io
from typing import Callable, Mapping, Protocol

from bundler.errors import HashMismatch, IndexUnavailable, ResponseTooLarge
from bundler.index import Link, project_of_filename, redact_url
from bundler.wheelmeta import BadMetadata, RangeFile, metadata_from_zip

TAIL = 64 * 1024  # one tail read covers the central directory of nearly every wheel
SLACK = 16 * 1024  # what a range read may bring beyond the bytes asked for (a server's own rounding)
MAX_METADATA_FILE = 16 << 20  # a .metadata file (PEP 658) larger than this is not one


class Response(Protocol):
    """The part of an HTTP response these strategies read (``httpx.Response`` has it)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...


Get = Callable[[str, Mapping[str, str], int], Response]  # ResponseTooLarge past the limit


def remote_metadata(link: Link, get: Get, whole: Callable[[], bytes]) -> bytes:
    """The METADATA bytes of the wheel at ``link``; ``whole()`` reads them from the whole wheel,
    downloaded (and kept) when neither a metadata file nor range reads serve."""
    if link.metadata:
        return metadata_file(link, get, whole)
    return metadata_by_range(link, get, whole)


def metadata_file(link: Link, get: Get, whole: Callable[[], bytes]) -> bytes:
    """PEP 658/714: the ``.metadata`` file next to the wheel, checked against its advertised hash."""
    url = link.url + ".metadata"
    r = get(url, {}, MAX_METADATA_FILE)
    if r.status_code == 404:
        return metadata_by_range(link, get, whole)  # advertised but missing: fall back like pip does
    if r.status_code != 200:
        raise IndexUnavailable(f"index {link.index} answered HTTP {r.status_code} for {redact_url(url)}")
    data = r.content
    if link.metadata_sha256 and hashlib.sha256(data).hexdigest() != link.metadata_sha256:
        raise HashMismatch(f"the metadata file of {link.filename} ({redact_url(url)})", link.metadata_sha256,
                           hashlib.sha256(data).hexdigest())
    return data


def metadata_by_range(link: Link, get: Get, whole: Callable[[], bytes]) -> bytes:
    """Range reads of the wheel's zip directory; the whole wheel when the server ignores ``Range``."""
    project = project_of_filename(link.filename)
    try:
        r = get(link.url, {"Range": f"bytes=-{TAIL}", "Accept-Encoding": "identity"}, TAIL + SLACK)
    except ResponseTooLarge:  # Range ignored, and a wheel bigger than the tail is on its way
        return whole()
    if r.status_code == 206:
        total = content_range_total(r.headers.get("Content-Range"))
        if total is not None:

            def fetch(start: int, end: int) -> bytes:
                rr = get(link.url, {"Range": f"bytes={start}-{end}", "Accept-Encoding": "identity"}, end - start + 1 + SLACK)
                if rr.status_code != 206:
                    raise OSError(f"range request answered HTTP {rr.status_code}")
                return rr.content

            try:
                return metadata_from_zip(RangeFile(total, r.content, fetch), project)
            except (BadMetadata, OSError, ResponseTooLarge):
                pass  # ranges that do not add up to a zip: read the whole wheel, which is hash-checked
    if r.status_code in (206, 416):
        return whole()
    if r.status_code != 200:
        raise IndexUnavailable(f"index {link.index} answered HTTP {r.status_code} for {redact_url(link.url)}")
    # The server ignored Range, and the wheel is no bigger than the tail: all of it is here.
    actual = hashlib.sha256(r.content).hexdigest()
    if link.sha256 and actual != link.sha256:
        raise HashMismatch(f"{link.filename} ({redact_url(link.url)})", link.sha256, actual)
    return metadata_from_zip(io.BytesIO(r.content), project)


def content_range_total(value: str | None) -> int | None:
    """The full size from a ``Content-Range: bytes a-b/total`` header (None when absent or ``*``)."""
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None
