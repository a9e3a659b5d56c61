"""Core metadata of a wheel on a server, read with as few bytes as the server allows.

Three strategies, in pip's order: the PEP 658 ``.metadata`` file when the index advertises one
(hash-checked); else HTTP range reads of the zip's tail and central directory; else the whole
wheel, hash-checked against the index and handed to ``keep_wheel`` so the fetch stage never
downloads it again. All I/O goes through a ``get(url, headers)`` callable, so this module knows
nothing about clients, retries or caches.
"""

from __future__ import annotations

import hashlib
import io
from typing import Callable, Mapping, Protocol

from bundler.errors import HashMismatch, IndexUnavailable
from bundler.index import Link, project_of_filename, redact_url
from bundler.wheelmeta import BadMetadata, RangeFile, metadata_from_zip

TAIL = 64 * 1024  # one tail read covers the central directory of nearly every wheel


class Response(Protocol):
    """The part of an HTTP response these strategies read (``httpx.Response`` has it)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...


Get = Callable[[str, Mapping[str, str]], Response]


def remote_metadata(link: Link, get: Get, keep_wheel: Callable[[str, bytes], None]) -> bytes:
    """The METADATA bytes of the wheel at ``link``; ``keep_wheel(sha256, body)`` receives a whole
    wheel when one had to be downloaded (and its hash matched the index's)."""
    if link.metadata:
        return metadata_file(link, get, keep_wheel)
    return metadata_by_range(link, get, keep_wheel)


def metadata_file(link: Link, get: Get, keep_wheel: Callable[[str, bytes], None]) -> bytes:
    """PEP 658/714: the ``.metadata`` file next to the wheel, checked against its advertised hash."""
    url = link.url + ".metadata"
    r = get(url, {})
    if r.status_code != 200:
        return metadata_by_range(link, get, keep_wheel)  # advertised but missing: fall back like pip does
    data = r.content
    if link.metadata_sha256 and hashlib.sha256(data).hexdigest() != link.metadata_sha256:
        raise HashMismatch(f"the metadata file of {link.filename} ({redact_url(url)})", link.metadata_sha256,
                           hashlib.sha256(data).hexdigest())
    return data


def metadata_by_range(link: Link, get: Get, keep_wheel: Callable[[str, bytes], None]) -> bytes:
    """Range reads of the wheel's zip directory; the whole wheel when the server ignores ``Range``."""
    project = project_of_filename(link.filename)
    r = get(link.url, {"Range": f"bytes=-{TAIL}", "Accept-Encoding": "identity"})
    if r.status_code == 206:
        total = content_range_total(r.headers.get("Content-Range"))
        if total is not None:

            def fetch(start: int, end: int) -> bytes:
                rr = get(link.url, {"Range": f"bytes={start}-{end}", "Accept-Encoding": "identity"})
                if rr.status_code != 206:
                    raise OSError(f"range request answered HTTP {rr.status_code}")
                return rr.content

            try:
                return metadata_from_zip(RangeFile(total, r.content, fetch), project)
            except (BadMetadata, OSError):
                pass  # ranges that do not add up to a zip: read the whole wheel, which is hash-checked
    if r.status_code in (206, 416):
        r = get(link.url, {"Accept-Encoding": "identity"})
    if r.status_code != 200:
        raise IndexUnavailable(f"index {link.index} answered HTTP {r.status_code} for {redact_url(link.url)}")
    # The server ignored Range: the whole wheel is here; verify it and keep it for the fetch stage.
    body = r.content
    actual = hashlib.sha256(body).hexdigest()
    if link.sha256 and actual != link.sha256:
        raise HashMismatch(f"{link.filename} ({redact_url(link.url)})", link.sha256, actual)
    if link.sha256:
        keep_wheel(actual, body)
    return metadata_from_zip(io.BytesIO(body), project)


def content_range_total(value: str | None) -> int | None:
    """The full size from a ``Content-Range: bytes a-b/total`` header (None when absent or ``*``)."""
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None
