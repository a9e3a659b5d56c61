"""Publish a verified bundle's wheels into a site index: ``install.sh --publish URL`` or ``--publish-dir DIR``.

Loaded by install.py only after the whole bundle was verified and this file's own bytes were checked
against bundle.json. Standard library only, CPython 3.8+. Each function takes the wheels as
``(path in bundle.json, file on disk, sha256)`` triples, already verified.

``publish_url``: the legacy upload API twine uses (a multipart POST with ``:action=file_upload``,
``protocol_version=1`` and the wheel as ``content``), which pypiserver, devpi and warehouse accept.
Before each upload the index's simple page of the project is read: a file already there with the
same sha256 is skipped (so publishing twice does no harm); one with another sha256 is an error.
Credentials come from ``WHEELHOUSE_PUBLISH_USER``/``WHEELHOUSE_PUBLISH_PASSWORD``, else
``TWINE_USERNAME``/``TWINE_PASSWORD``, else the user part of the URL, else ``~/.netrc``; they are
sent as HTTP basic authentication and never printed (nor is any URL with them).

``publish_dir``: merge into a directory index without removing anything. A flat folder (what
pypiserver serves) gets the files; a folder with a PEP 503 ``simple/`` tree gets each file next to
its project's ``simple/<project>/index.html``, whose links are kept and gain the new files with
their hashes (the root ``simple/index.html`` gains new projects). A file of the same name with
another sha256 is an error naming it, found before anything is written.
"""

import base64
import email.parser
import hashlib
import html
import html.parser
import netrc
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile

USER_VARS = (("WHEELHOUSE_PUBLISH_USER", "WHEELHOUSE_PUBLISH_PASSWORD"), ("TWINE_USERNAME", "TWINE_PASSWORD"))
TIMEOUT = 60
_CHUNK = 1 << 20


class PublishError(Exception):
    """A failure the user can act on; ``details`` are extra lines, ``hint`` what to do."""

    def __init__(self, message, details=(), hint=None):
        Exception.__init__(self, message)
        self.details = list(details)
        self.hint = hint


def canonical(name):
    """The PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_metadata(path):
    """(name, version, metadata_version) from the wheel's ``*.dist-info/METADATA``."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if re.match(r"^[^/]+\.dist-info/METADATA$", n)]
            if len(names) != 1:
                raise PublishError("%s has %d METADATA files, not one" % (os.path.basename(path), len(names)))
            text = zf.read(names[0]).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile) as e:
        raise PublishError("cannot read %s: %s" % (os.path.basename(path), e))
    meta = email.parser.HeaderParser().parsestr(text)
    if not meta.get("Name") or not meta.get("Version"):
        raise PublishError("%s: METADATA has no Name or Version" % os.path.basename(path))
    return meta["Name"], meta["Version"], meta.get("Metadata-Version") or "2.1"


def python_tag(filename):
    """The python tag of a wheel file name (``py3``, ``cp312``): the upload API's ``pyversion``."""
    parts = filename[:-4].split("-")
    return parts[-3] if len(parts) >= 5 else "py3"


class _Links(html.parser.HTMLParser):
    """The anchors of a simple page: [(href, attributes as a dict)]."""

    def __init__(self):
        html.parser.HTMLParser.__init__(self, convert_charrefs=True)
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            d = dict(attrs)
            if d.get("href"):
                self.links.append((d["href"], d))


def page_files(page, base_url):
    """{filename: (absolute url, sha256 or None)} of a PEP 503 project page."""
    parser = _Links()
    parser.feed(page)
    out = {}
    for href, _attrs in parser.links:
        url = urllib.parse.urljoin(base_url, href)
        parsed = urllib.parse.urlsplit(url)
        name = urllib.parse.unquote(parsed.path.rsplit("/", 1)[-1])
        frag = urllib.parse.parse_qs(parsed.fragment)
        out[name] = (urllib.parse.urlunsplit(parsed[:4] + ("",)), (frag.get("sha256") or [None])[0])
    return out


def shown_url(url):
    """``url`` without any user or password, for messages."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    if ":" in host:
        host = "[%s]" % host
    netloc = host + (":%d" % p.port if p.port else "")
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, p.query, ""))


def credentials(url, environ, netrc_file=None):
    """(user, password) for ``url``, or None; see the module docstring for the order."""
    for user_var, pass_var in USER_VARS:
        if environ.get(user_var) or environ.get(pass_var):
            return environ.get(user_var, ""), environ.get(pass_var, "")
    p = urllib.parse.urlsplit(url)
    if p.username is not None:
        return urllib.parse.unquote(p.username), urllib.parse.unquote(p.password or "")
    try:
        rc = netrc.netrc(netrc_file)
    except (OSError, netrc.NetrcParseError):  # no ~/.netrc, or one that does not parse: no credentials
        return None
    entry = rc.authenticators(p.hostname or "")
    if entry is None:
        return None
    return entry[0] or "", entry[2] or ""


class _Elsewhere(Exception):
    """The index redirected to another host (pypiserver sends unknown projects on to PyPI)."""


class _SameOrigin(urllib.request.HTTPRedirectHandler):
    """Follow redirects within the index's own origin only; the credentials never leave it, and
    another index's files are not taken for the site's."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if (old.scheme, old.hostname, old.port) != (new.scheme, new.hostname, new.port):
            raise _Elsewhere(shown_url(newurl))
        return urllib.request.HTTPRedirectHandler.redirect_request(self, req, fp, code, msg, headers, newurl)


def _open(request):
    # A site index is reached directly: proxies from the environment are for the internet.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _SameOrigin())
    return opener.open(request, timeout=TIMEOUT)


def _request(url, auth, data=None, headers=None):
    req = urllib.request.Request(shown_url(url), data=data, headers=dict(headers or {}))
    if auth is not None:
        token = base64.b64encode(("%s:%s" % auth).encode("utf-8")).decode("ascii")
        req.add_header("Authorization", "Basic " + token)
    return req


def _http_error(what, url, e):
    if isinstance(e, urllib.error.HTTPError):
        hint = None
        if e.code in (401, 403):
            hint = "give credentials in WHEELHOUSE_PUBLISH_USER and WHEELHOUSE_PUBLISH_PASSWORD, or in ~/.netrc"
        return PublishError("%s: %s answered HTTP %d %s" % (what, shown_url(url), e.code, e.reason), hint=hint)
    reason = getattr(e, "reason", None) or e
    return PublishError("%s: cannot reach %s: %s" % (what, shown_url(url), reason),
                        hint="check the URL, and that the index runs and is reachable from here")


def remote_files(index_url, project, auth):
    """The files the index lists for ``project`` ({} when it has no page for it)."""
    url = index_url.rstrip("/") + "/" + canonical(project) + "/"
    try:
        with _open(_request(url, auth, headers={"Accept": "text/html"})) as resp:
            page = resp.read().decode("utf-8", "replace")
            final = resp.geturl()
    except _Elsewhere:  # not on this index (pypiserver's fallback to PyPI): upload it
        return {}
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return {}
        raise _http_error("reading the index page of %s" % project, url, e)
    except (urllib.error.URLError, OSError) as e:
        raise _http_error("reading the index page of %s" % project, url, e)
    return page_files(page, final)


def remote_sha256(url, auth):
    """The sha256 of a file on the index whose page gives no hash: download and hash it."""
    digest = hashlib.sha256()
    try:
        with _open(_request(url, auth)) as resp:
            for block in iter(lambda: resp.read(_CHUNK), b""):
                digest.update(block)
    except _Elsewhere as e:
        raise PublishError("the index sends %s to another host (%s); cannot check its sha256" % (shown_url(url), e))
    except (urllib.error.URLError, OSError) as e:
        raise _http_error("reading a published file", url, e)
    return digest.hexdigest()


def _multipart(fields, filename, data):
    """A multipart/form-data body: the text ``fields``, then ``data`` as the file field ``content``."""
    boundary = "wheelhouse-" + uuid.uuid4().hex
    parts = []
    for key, value in fields:
        parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (boundary, key, value)).encode("utf-8"))
    quoted = filename.replace('"', "%22")
    parts.append(('--%s\r\nContent-Disposition: form-data; name="content"; filename="%s"\r\n'
                  "Content-Type: application/octet-stream\r\n\r\n" % (boundary, quoted)).encode("utf-8"))
    parts.append(data)
    parts.append(("\r\n--%s--\r\n" % boundary).encode("ascii"))
    return b"".join(parts), "multipart/form-data; boundary=" + boundary


def upload(url, path, sha256, auth):
    """POST one wheel to the upload API at ``url``; the bytes sent are checked against ``sha256``."""
    filename = os.path.basename(path)
    name, version, metadata_version = wheel_metadata(path)
    with open(path, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != sha256:  # the file changed since the bundle was verified
        raise PublishError("%s changed since it was verified; nothing more was uploaded" % filename)
    fields = [(":action", "file_upload"), ("protocol_version", "1"), ("name", name), ("version", version),
              ("filetype", "bdist_wheel"), ("pyversion", python_tag(filename)), ("metadata_version", metadata_version),
              ("sha256_digest", sha256), ("md5_digest", hashlib.md5(data).hexdigest())]  # noqa: S324 - an API field
    body, ctype = _multipart(fields, filename, data)
    req = _request(url, auth, data=body, headers={"Content-Type": ctype, "User-Agent": "wheelhouse-install/1"})
    try:
        with _open(req) as resp:
            resp.read()
    except (urllib.error.URLError, OSError) as e:
        raise _http_error("uploading %s" % filename, url, e)


def publish_url(wheels, url, environ, index_url=None, say=print, netrc_file=None):
    """Upload each of ``wheels`` the index at ``url`` lacks; returns a one-line summary."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise PublishError("--publish %s: not an http(s) URL" % shown_url(url))
    auth = credentials(url, environ, netrc_file)
    simple = index_url or url.rstrip("/") + "/simple/"
    uploaded = skipped = 0
    pages = {}
    for _rel, path, sha256 in wheels:
        filename = os.path.basename(path)
        project = wheel_metadata(path)[0]
        key = canonical(project)
        if key not in pages:
            pages[key] = remote_files(simple, project, auth)
        there = pages[key].get(filename)
        if there is not None:
            remote = there[1] or remote_sha256(there[0], auth)
            if remote != sha256:
                raise PublishError(
                    "%s is already on %s with sha256 %s, not the bundle's %s" % (filename, shown_url(simple), remote, sha256),
                    hint="a published file is never replaced: remove it from the index first if it is wrong")
            skipped += 1
            continue
        say("uploading %s" % filename)
        upload(url, path, sha256, auth)
        uploaded += 1
    return "published to %s: %d uploaded, %d already there with the same sha256" % (shown_url(url), uploaded, skipped)


# ---------------------------------------------------------------------------------------------
# a directory index


def _sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_verified(src, dest, sha256):
    """Copy ``src`` to ``dest`` through a temporary file, checked, then renamed into place."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix="." + os.path.basename(dest) + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as f:
            shutil.copyfileobj(f, out, _CHUNK)
        os.chmod(tmp, 0o644)
        if _sha256_file(tmp) != sha256:
            raise PublishError("%s changed while it was copied; nothing more was written" % os.path.basename(src))
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_HEAD = ('<!DOCTYPE html>\n<html>\n<head><meta name="pypi:repository-version" content="1.0"><title>%s</title></head>\n'
         "<body>\n")


def _anchor(href, text, attrs):
    extra = "".join(' %s="%s"' % (k, html.escape(v or "")) for k, v in sorted(attrs.items()) if k != "href")
    return '<a href="%s"%s>%s</a>\n' % (html.escape(href), extra, html.escape(text))


def _read_links(page_path):
    """The anchors of an existing page, as (href, text, attributes), in order."""
    if not os.path.isfile(page_path):
        return []

    class Parser(html.parser.HTMLParser):
        def __init__(self):
            html.parser.HTMLParser.__init__(self, convert_charrefs=True)
            self.out, self.current = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "a":
                self.current = [dict(attrs), ""]

        def handle_data(self, data):
            if self.current is not None:
                self.current[1] += data

        def handle_endtag(self, tag):
            if tag == "a" and self.current is not None:
                attrs, text = self.current
                self.out.append((attrs.get("href") or "", text, attrs))
                self.current = None

    with open(page_path, "r", encoding="utf-8", errors="replace") as f:
        parser = Parser()
        parser.feed(f.read())
    return parser.out


def _write_page(page_path, title, links):
    os.makedirs(os.path.dirname(page_path), exist_ok=True)
    text = _HEAD % html.escape(title) + "".join(_anchor(h, t, a) for h, t, a in links) + "</body>\n</html>\n"
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(page_path), prefix=".index.", suffix=".part")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, page_path)


def publish_dir(wheels, directory, say=print):
    """Merge ``wheels`` into the directory index ``directory``; returns a one-line summary."""
    if not os.path.isdir(directory):
        raise PublishError("--publish-dir %s: no such directory" % directory, hint="create it first (mkdir -p)")
    tree = os.path.isdir(os.path.join(directory, "simple"))
    plan = []
    clashes = []
    for _rel, path, sha256 in wheels:
        filename = os.path.basename(path)
        project = canonical(wheel_metadata(path)[0])
        dest = os.path.join(directory, "simple", project, filename) if tree else os.path.join(directory, filename)
        if os.path.lexists(dest):
            if os.path.islink(dest) or not os.path.isfile(dest):
                clashes.append("%s: there and not a regular file" % dest)
                continue
            there = _sha256_file(dest)
            if there != sha256:
                clashes.append("%s: sha256 %s there, %s in the bundle" % (dest, there, sha256))
                continue
            plan.append((project, filename, path, sha256, dest, False))
        else:
            plan.append((project, filename, path, sha256, dest, True))
    if clashes:
        raise PublishError("%d file(s) of the bundle are already in %s with other contents; nothing was written"
                           % (len(clashes), directory), clashes,
                           hint="a published file is never replaced: remove or rename the old one first if it is wrong")
    copied = 0
    for project, filename, path, sha256, dest, new in plan:
        if new:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            say("adding %s" % filename)
            _copy_verified(path, dest, sha256)
            copied += 1
    if tree:
        _update_pages(directory, plan)
    kind = "the PEP 503 tree" if tree else "the folder"
    return "published to %s %s: %d added, %d already there with the same sha256" % (kind, directory, copied, len(plan) - copied)


def _update_pages(directory, plan):
    """Add each file to its project's page (links already there kept) and new projects to the root page."""
    by_project = {}
    for project, filename, _path, sha256, _dest, _new in plan:
        by_project.setdefault(project, []).append((filename, sha256))
    for project, files in sorted(by_project.items()):
        page = os.path.join(directory, "simple", project, "index.html")
        links = _read_links(page)
        named = set(urllib.parse.unquote(urllib.parse.urlsplit(h).path.rsplit("/", 1)[-1]) for h, _t, _a in links)
        added = [(urllib.parse.quote(fn) + "#sha256=" + sha, fn, {}) for fn, sha in sorted(files) if fn not in named]
        if added or not os.path.isfile(page):
            _write_page(page, "Links for %s" % project, links + added)
    root = os.path.join(directory, "simple", "index.html")
    links = _read_links(root)
    named = set(canonical(urllib.parse.unquote(h).strip("/").rsplit("/", 1)[-1]) for h, _t, _a in links)
    added = [(p + "/", p, {}) for p in sorted(by_project) if p not in named]
    if added or not os.path.isfile(root):
        _write_page(root, "Simple index", links + added)
