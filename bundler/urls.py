"""URLs as they enter: userinfo (credentials) found however it was pasted, redacted, and kept in memory only.

Index URLs keep their userinfo in memory (httpx sends it as Basic auth); a direct reference's is
taken off where it enters (``remember_credentials``) and looked up again for the request. Whatever
is printed or stored goes through ``redact_url``.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

__all__ = ["credential_pieces", "credentials_for", "encode_userinfo", "redact_url", "remember_credentials", "split_userinfo"]


def redact_url(url: str) -> str:
    """The URL with any userinfo (user:password@) removed, safe to print or store.

    Tokens are often pasted unescaped, so the userinfo may hold a raw ``/``, ``?``, ``#``, ``@`` or
    ``:``; see ``_userinfo_end`` for where it is taken to end. Nothing else is changed.
    """
    prefix, rest = _split_authority(url)
    if prefix is None:
        return url
    at = _userinfo_end(rest)
    return url if at < 0 else prefix + rest[at + 1:]


_AUTHORITY_START = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*:)?//")
# A host that is plainly a host: an IP literal, a dotted name (IPv4 included) or localhost, and a port.
_REAL_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+\.?|localhost)(?::[0-9]{1,5})?", re.IGNORECASE)
# Anything that may follow a userinfo's '@': a registered name or IP literal, and a port.
_ANY_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(?::[0-9]{0,5})?")
_AUTHORITY_END = re.compile(r"[/?#]")
# Stricter, for an '@' past the authority: a dotted name must end in a label with a letter (so a
# version such as pkg@1.0 is not a host), or be a whole IPv4 address.
_PLAIN_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|(?:[0-9]{1,3}\.){3}[0-9]{1,3}|(?:[A-Za-z0-9_-]+\.)+[A-Za-z0-9_-]*[A-Za-z][A-Za-z0-9_-]*\.?"
                         r"|localhost)(?::[0-9]{1,5})?", re.IGNORECASE)


def _split_authority(url: str) -> tuple[str | None, str]:
    """``("scheme://", the rest)`` for a URL with an authority, else ``(None, url)``."""
    m = _AUTHORITY_START.match(url)
    if m is None:
        return None, url
    return url[:m.end()], url[m.end():]


def _userinfo_end(rest: str) -> int:
    """The index in ``rest`` (the URL after ``//``) of the ``@`` that ends the userinfo, or -1.

    By RFC 3986 the authority ends at the first ``/``, ``?`` or ``#`` and the userinfo at its last
    ``@``; that is the answer whenever the authority then names a plain host (so an ``@`` in a path,
    ``https://host.example/a@b/``, stays). When it does not (``user:to/ken@host`` splits into the
    "host" ``user`` with the port ``to``), the token held a raw ``/``, ``?`` or ``#``: the userinfo
    then runs to the last ``@`` that is followed by something shaped like a host. A plain host with
    no ``@`` at all may still be the front of a raw token (``deploy.bot:123/abc@host.example``): an
    ``@`` later on that is followed by a plainly real host (dotted, an IP, localhost) then ends the
    userinfo, so a path with ``@dotted.name`` in it is shown shorter than it is, never a token.
    """
    m = _AUTHORITY_END.search(rest)
    authority = rest[:m.start()] if m else rest
    at = authority.rfind("@")
    if not authority or _REAL_HOST.fullmatch(authority[at + 1:]):
        if at >= 0 or "@" not in rest:
            return at
        for i in range(len(rest) - 1, len(authority), -1):
            if rest[i] == "@":
                tail = rest[i + 1:]
                t = _AUTHORITY_END.search(tail)
                if _PLAIN_HOST.fullmatch(tail[:t.start()] if t else tail):
                    return i
        return -1
    for i in range(len(rest) - 1, at, -1):
        if rest[i] == "@":
            tail = rest[i + 1:]
            t = _AUTHORITY_END.search(tail)
            if _ANY_HOST.fullmatch(tail[:t.start()] if t else tail):
                return i
    return at


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """``(url without userinfo, (user, password) percent-decoded)``, or ``(url, None)`` without one."""
    prefix, rest = _split_authority(url)
    at = _userinfo_end(rest) if prefix is not None else -1
    if prefix is None or at < 0:
        return url, None
    user, _, password = rest[:at].partition(":")
    return prefix + rest[at + 1:], (unquote(user), unquote(password))


def credential_pieces(url: str) -> list[str]:
    """Every spelling of the userinfo of ``url`` and its parts (raw, decoded, re-encoded), longest
    first, for scrubbing from text that may quote the URL in any form (library error messages)."""
    prefix, rest = _split_authority(url)
    at = _userinfo_end(rest) if prefix is not None else -1
    if prefix is None or at < 0:
        return []
    raw = rest[:at]
    base = {raw, *raw.split(":", 1)}
    pieces = set(base)
    for p in base:
        pieces.update({unquote(p), quote(unquote(p), safe=""), quote(unquote(p))})
    # A parser that stopped at a raw '/', '?', '#' or ':' quotes only a fragment ("Invalid port: 'tok'").
    fragments = {f for p in pieces for f in re.split(r"[/?#@:]", p) if len(f) >= 2}
    return sorted({p for p in pieces if len(p) >= 2} | fragments, key=len, reverse=True)


def encode_userinfo(url: str) -> str:
    """``url`` with a raw ``/``, ``?``, ``#``, ``@`` or ``:`` in its password (or user) percent-encoded,
    so that an unescaped token still reaches the host it was meant for as Basic auth."""
    prefix, rest = _split_authority(url)
    at = _userinfo_end(rest) if prefix is not None else -1
    if prefix is None or at < 0:
        return url
    user, colon, password = rest[:at].partition(":")
    safe = "%!$&'()*+,;=~"
    return f"{prefix}{quote(user, safe=safe)}{colon}{quote(password, safe=safe)}@{rest[at + 1:]}"


_CREDENTIALS: dict[tuple[str, str, str, str], tuple[str, str]] = {}  # in memory only, never stored


def _credential_key(url: str) -> tuple[str, str, str, str]:
    parts = urlsplit(url.partition("#")[0])
    return parts.scheme.lower(), parts.netloc.lower(), unquote(parts.path), parts.query


def remember_credentials(url: str) -> str:
    """``url`` without its userinfo; the credentials are kept in this process's memory, for requests
    to exactly that URL (``credentials_for``), and never reach a lock, a bundle or a message."""
    clean, cred = split_userinfo(url)
    if cred is not None:
        _CREDENTIALS[_credential_key(clean)] = cred
    return clean


def credentials_for(url: str) -> tuple[str, str] | None:
    """The credentials ``remember_credentials`` took from ``url`` (compared without userinfo or fragment)."""
    if not _CREDENTIALS:
        return None
    return _CREDENTIALS.get(_credential_key(split_userinfo(url)[0]))
