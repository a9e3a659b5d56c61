"""What a project page's answer means: its files, and whether it is a simple-API page at all.

An index that answers 200 with something other than a project page (a login form reached through a
redirect, say) must not be taken for "no such project", or the next index would supply a look-alike:
``check_page`` refuses it. ``project_page`` gives a page's files as the planner reads them.
"""

from __future__ import annotations

import re
from typing import Sequence
from urllib.parse import urlsplit

from bundler.errors import IndexUnavailable
from bundler.httpcache import links_key
from bundler.index import IndexConfig, Link, is_json_type, parse_page, redact_url
from bundler.pagefiles import PageFiles
from bundler.pageworker import PageWorker


def project_page(index: IndexConfig, body: bytes, ctype: str, asked: str, final_url: str, digest: str | None,
                 helper: PageWorker | None = None) -> Sequence[Link]:
    """The files of the page ``asked`` for (it ended at ``final_url``; ``digest`` is its body's
    sha256), checked by ``check_page``. A JSON page is parsed when its files are first needed (by
    ``helper`` when it can take it), so a page whose targets' rankings are remembered (``choicememo``,
    by the page's ``links_key``) is not parsed at all; an HTML page is parsed here, since the check
    needs to know whether it lists files."""
    key = links_key(body, ctype, final_url, index, body_sha256=digest)
    if is_json_type(ctype):
        def load() -> PageFiles:
            parsed = helper.parse(body, final_url, index) if helper is not None else None
            return parsed if parsed is not None else PageFiles.of_links(index, parse_page(body, ctype, final_url, index))

        links: Sequence[Link] = PageFiles(index, key=key, load=load)
    else:
        links = PageFiles.of_links(index, parse_page(body, ctype, final_url, index), key=key)
    check_page(index, body, ctype, asked, final_url, links)
    return links


# What a project page that is not one looks like: a login form (e.g. an internal index's SSO page
# reached through a redirect). Bounded so a page full of "<input" stays linear.
_PASSWORD = re.compile(rb"<input\b[^>]{0,500}?type\s*=\s*[\"']?password", re.IGNORECASE)
_FORM = re.compile(rb"<form\b", re.IGNORECASE)


def check_page(index: IndexConfig, body: bytes, ctype: str, asked: str, final: str, files: Sequence[Link]) -> None:
    """Refuse a 200 answer that is not a simple-API page: taking it for "no such project" would let
    the next index supply a look-alike.

    Only a 404/410 means "no such project": anything else that answers must be a real page (PEP 691
    JSON is checked by its parser). An HTML page with a password field is a login page; one without
    any file is accepted as "present, no files" only if it looks like PEP 503: no form, and not
    reached by a redirect to another path (``/login?next=...``).
    """
    if "json" in ctype.lower() or (files and not _PASSWORD.search(body)):
        return
    if _PASSWORD.search(body):
        why = "a login page (it has a password field)"
    elif _FORM.search(body):
        why = "a page with a form and no files"
    elif urlsplit(final).path.rstrip("/") != urlsplit(asked).path.rstrip("/"):
        why = "a page without files at another path (redirected)"
    else:
        return
    raise IndexUnavailable(f"index {index.name} answered {redact_url(asked)} with {why}, ended at {redact_url(final)}",
                           hint="the index needs credentials or is misconfigured; nothing is taken from "
                                "another index in its place")
