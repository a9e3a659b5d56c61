"""bundler.index: PEP 503 / PEP 691 page parsing, Content-Type dispatch, index claims and URL helpers."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from bundler.errors import IndexUnavailable
from bundler.pagefiles import columns_of, usual
from bundler.index import (
    JSON_TYPE,
    PYPI_SIMPLE,
    IndexConfig,
    Link,
    normalize_index_url,
    parse_html_page,
    parse_json_page,
    parse_page,
    project_url,
    redact_url,
)

IX = IndexConfig(name="test", url="https://idx.example/simple/")
PAGE = "https://idx.example/simple/pkg/"
H1 = "a" * 64
H2 = "B" * 64


def html(*anchors: str, head: str = "") -> bytes:
    body = "\n".join(anchors)
    return f"<!DOCTYPE html><html><head>{head}<title>Links</title></head><body>{body}</body></html>".encode()


def one(links: list[Link]) -> Link:
    assert len(links) == 1, links
    return links[0]


# ---------------------------------------------------------------------------------------------
# HTML (PEP 503)


@pytest.mark.parametrize(
    "href, page, head, url",
    [
        ("pkg-1.0-py3-none-any.whl", PAGE, "", "https://idx.example/simple/pkg/pkg-1.0-py3-none-any.whl"),
        ("../../files/pkg-1.0-py3-none-any.whl", PAGE, "", "https://idx.example/files/pkg-1.0-py3-none-any.whl"),
        ("/packages/pkg-1.0-py3-none-any.whl", PAGE, "", "https://idx.example/packages/pkg-1.0-py3-none-any.whl"),
        ("https://cdn.example/p/pkg-1.0-py3-none-any.whl", PAGE, "", "https://cdn.example/p/pkg-1.0-py3-none-any.whl"),
        ("//cdn.example/p/pkg-1.0-py3-none-any.whl", PAGE, "", "https://cdn.example/p/pkg-1.0-py3-none-any.whl"),
        # <base href> changes where relative links point
        ("pkg-1.0-py3-none-any.whl", PAGE, '<base href="https://mirror.example/store/">',
         "https://mirror.example/store/pkg-1.0-py3-none-any.whl"),
        ("pkg-1.0-py3-none-any.whl", PAGE, '<base href="../../store/">', "https://idx.example/store/pkg-1.0-py3-none-any.whl"),
        ("/abs/pkg-1.0-py3-none-any.whl", PAGE, '<base href="https://mirror.example/store/">',
         "https://mirror.example/abs/pkg-1.0-py3-none-any.whl"),
        # a page without a trailing slash resolves against its parent
        ("pkg-1.0-py3-none-any.whl", "https://idx.example/simple/pkg", "", "https://idx.example/simple/pkg-1.0-py3-none-any.whl"),
        # file: find-links pages
        ("pkg-1.0-py3-none-any.whl", "file:///srv/wheels/index.html", "", "file:///srv/wheels/pkg-1.0-py3-none-any.whl"),
    ],
)
def test_html_urls(href: str, page: str, head: str, url: str) -> None:
    link = one(parse_html_page(html(f'<a href="{href}">x</a>', head=head), page, IX))
    assert link.url == url
    assert link.filename == "pkg-1.0-py3-none-any.whl"
    assert link.index == "test" and link.index_url == IX.url


def test_html_first_base_wins() -> None:
    body = html('<a href="pkg-1.0-py3-none-any.whl">x</a>', head='<base href="https://one.example/"><base href="https://two.example/">')
    assert one(parse_html_page(body, PAGE, IX)).url == "https://one.example/pkg-1.0-py3-none-any.whl"


@pytest.mark.parametrize(
    "href, filename, url",
    [
        ("torch-2.3.0%2Bcu121-cp311-cp311-linux_x86_64.whl", "torch-2.3.0+cu121-cp311-cp311-linux_x86_64.whl",
         "https://idx.example/simple/pkg/torch-2.3.0%2Bcu121-cp311-cp311-linux_x86_64.whl"),
        ("torch-2.3.0%2bcu121-cp311-cp311-linux_x86_64.whl", "torch-2.3.0+cu121-cp311-cp311-linux_x86_64.whl",
         "https://idx.example/simple/pkg/torch-2.3.0%2bcu121-cp311-cp311-linux_x86_64.whl"),
        ("torch-2.3.0+cu121-cp311-cp311-linux_x86_64.whl", "torch-2.3.0+cu121-cp311-cp311-linux_x86_64.whl",
         "https://idx.example/simple/pkg/torch-2.3.0+cu121-cp311-cp311-linux_x86_64.whl"),
        ("pkg-1.0-py3-none-any.whl?token=x", "pkg-1.0-py3-none-any.whl", "https://idx.example/simple/pkg/pkg-1.0-py3-none-any.whl?token=x"),
    ],
)
def test_html_percent_encoded_filenames(href: str, filename: str, url: str) -> None:
    link = one(parse_html_page(html(f'<a href="{href}">x</a>'), PAGE, IX))
    assert link.filename == filename
    assert link.url == url  # the URL itself is sent as the index wrote it


@pytest.mark.parametrize(
    "fragment, sha",
    [
        ("", None),
        (f"#sha256={H1}", H1),
        (f"#sha256={H2}", H2.lower()),
        ("#md5=0123456789abcdef0123456789abcdef", None),
    ],
)
def test_html_sha256_fragment(fragment: str, sha: str | None) -> None:
    link = one(parse_html_page(html(f'<a href="/f/pkg-1.0-py3-none-any.whl{fragment}">x</a>'), PAGE, IX))
    assert link.sha256 == sha
    assert "#" not in link.url


@pytest.mark.parametrize(
    "attrs, field, value",
    [
        ('data-requires-python="&gt;=3.8"', "requires_python", ">=3.8"),
        ('data-requires-python="&gt;=3.8,&lt;4"', "requires_python", ">=3.8,<4"),
        ('data-requires-python="&gt;=3.6, !=3.7.*"', "requires_python", ">=3.6, !=3.7.*"),
        ('data-requires-python=""', "requires_python", None),
        ("", "requires_python", None),
        ('data-yanked=""', "yanked", ""),
        ("data-yanked", "yanked", ""),
        ('data-yanked="broken &amp; bad"', "yanked", "broken & bad"),
        ("", "yanked", None),
        ('data-upload-time="2024-01-02T03:04:05Z"', "upload_time", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ('data-upload-time="garbage"', "upload_time", None),
    ],
)
def test_html_attributes(attrs: str, field: str, value) -> None:
    link = one(parse_html_page(html(f'<a href="pkg-1.0-py3-none-any.whl" {attrs}>x</a>'), PAGE, IX))
    assert getattr(link, field) == value


@pytest.mark.parametrize(
    "attrs, has, sha",
    [
        ("", False, None),
        ('data-core-metadata="true"', True, None),
        ('data-core-metadata=""', True, None),
        ("data-core-metadata", False, None),  # valueless: treated as absent, as pip does (safe: falls back to the wheel)
        ('data-core-metadata="false"', False, None),
        (f'data-core-metadata="sha256={H1}"', True, H1),
        (f'data-core-metadata="sha256={H2}"', True, H2.lower()),
        ('data-dist-info-metadata="true"', True, None),
        (f'data-dist-info-metadata="sha256={H1}"', True, H1),
        # the PEP 714 name wins over the PEP 658 one
        (f'data-core-metadata="sha256={H1}" data-dist-info-metadata="sha256={"c" * 64}"', True, H1),
    ],
)
def test_html_core_metadata(attrs: str, has: bool, sha: str | None) -> None:
    link = one(parse_html_page(html(f'<a href="pkg-1.0-py3-none-any.whl" {attrs}>x</a>'), PAGE, IX))
    assert (link.metadata, link.metadata_sha256) == (has, sha)


def test_html_skips_non_distributions() -> None:
    body = html(
        '<a href="pkg-1.0-py3-none-any.whl">ok</a>',
        '<a href="pkg-1.0.tar.gz">sdist</a>',
        '<a href="pkg-1.0.zip">zip</a>',
        '<a href="pkg-1.0.tar.bz2">bz2</a>',
        '<a href="pkg-1.0.tgz">tgz</a>',
        '<a href="pkg-1.0-py3-none-any.whl.metadata">metadata</a>',
        '<a href="../">parent</a>',
        '<a href="https://example.com/">home</a>',
        "<a>no href</a>",
        '<a href="">empty</a>',
    )
    assert [lk.filename for lk in parse_html_page(body, PAGE, IX)] == [
        "pkg-1.0-py3-none-any.whl", "pkg-1.0.tar.gz", "pkg-1.0.zip", "pkg-1.0.tar.bz2", "pkg-1.0.tgz",
    ]


def test_html_latin1_and_sloppy_markup() -> None:
    body = b'<html><body><a href="pkg-1.0-py3-none-any.whl">caf\xe9</a><a href=pkg-2.0-py3-none-any.whl>unquoted<br></body>'
    assert [lk.filename for lk in parse_html_page(body, PAGE, IX)] == ["pkg-1.0-py3-none-any.whl", "pkg-2.0-py3-none-any.whl"]


def test_html_no_size_field() -> None:
    link = one(parse_html_page(html('<a href="pkg-1.0-py3-none-any.whl">x</a>'), PAGE, IX))
    assert link.size is None and link.flat is False


# ---------------------------------------------------------------------------------------------
# JSON (PEP 691)


def jpage(*files: dict, meta: dict | None = None) -> bytes:
    return json.dumps({"meta": meta or {"api-version": "1.1"}, "name": "pkg", "files": list(files)}).encode()


def jfile(**kw) -> dict:
    d = {"filename": "pkg-1.0-py3-none-any.whl", "url": "pkg-1.0-py3-none-any.whl", "hashes": {"sha256": H1}}
    d.update({k.replace("_", "-"): v for k, v in kw.items()})
    return d


@pytest.mark.parametrize(
    "url, page, expected",
    [
        ("pkg-1.0-py3-none-any.whl", PAGE, "https://idx.example/simple/pkg/pkg-1.0-py3-none-any.whl"),
        ("../../files/pkg-1.0-py3-none-any.whl", PAGE, "https://idx.example/files/pkg-1.0-py3-none-any.whl"),
        ("/files/pkg-1.0-py3-none-any.whl", PAGE, "https://idx.example/files/pkg-1.0-py3-none-any.whl"),
        ("https://files.example/a/pkg-1.0-py3-none-any.whl", PAGE, "https://files.example/a/pkg-1.0-py3-none-any.whl"),
    ],
)
def test_json_urls(url: str, page: str, expected: str) -> None:
    assert one(parse_json_page(jpage(jfile(url=url)), page, IX)).url == expected


def test_json_full_entry() -> None:
    f = jfile(
        url="https://files.example/pkg-1.0-py3-none-any.whl",
        hashes={"sha256": H2, "md5": "0" * 32},
        requires_python=">=3.8",
        yanked="bad release",
        upload_time="2024-05-06T07:08:09.123456Z",
        size=12345,
        core_metadata={"sha256": H1},
    )
    link = one(parse_json_page(jpage(f), PAGE, IX))
    assert link == Link(
        filename="pkg-1.0-py3-none-any.whl",
        url="https://files.example/pkg-1.0-py3-none-any.whl",
        index="test",
        index_url=IX.url,
        sha256=H2.lower(),
        requires_python=">=3.8",
        yanked="bad release",
        upload_time=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc),
        size=12345,
        metadata=True,
        metadata_sha256=H1,
    )


@pytest.mark.parametrize(
    "changes, field, value",
    [
        ({"yanked": False}, "yanked", None),
        ({"yanked": True}, "yanked", ""),
        ({"yanked": "reason"}, "yanked", "reason"),
        ({}, "yanked", None),
        ({"yanked": None}, "yanked", None),
        ({"requires_python": None}, "requires_python", None),
        ({"requires_python": ""}, "requires_python", None),
        ({"upload_time": "2024-05-06T07:08:09Z"}, "upload_time", datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)),
        ({"upload_time": "2024-05-06T07:08:09+02:00"}, "upload_time", datetime(2024, 5, 6, 5, 8, 9, tzinfo=timezone.utc)),
        ({"upload_time": "2024-05-06T07:08:09"}, "upload_time", datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)),
        ({"upload_time": "yesterday"}, "upload_time", None),
        ({"upload_time": 1700000000}, "upload_time", None),
        ({}, "upload_time", None),
        ({"size": 10}, "size", 10),
        ({"size": "10"}, "size", None),
        ({}, "size", None),
        ({"hashes": {}}, "sha256", None),
        ({"hashes": {"sha512": "f" * 128}}, "sha256", None),
        ({"hashes": {}, "url": f"pkg-1.0-py3-none-any.whl#sha256={H1}"}, "sha256", H1),
        ({"url": f"pkg-1.0-py3-none-any.whl#sha256={'c' * 64}"}, "sha256", H1),  # hashes dict wins
        ({"hashes": "nonsense"}, "sha256", None),
    ],
)
def test_json_fields(changes: dict, field: str, value) -> None:
    assert getattr(one(parse_json_page(jpage(jfile(**changes)), PAGE, IX)), field) == value


@pytest.mark.parametrize(
    "key, value, has, sha",
    [
        ("core-metadata", True, True, None),
        ("core-metadata", False, False, None),
        ("core-metadata", {"sha256": H2}, True, H2.lower()),
        ("core-metadata", {}, True, None),
        ("dist-info-metadata", True, True, None),
        ("dist-info-metadata", {"sha256": H1}, True, H1),
        ("dist-info-metadata", False, False, None),
        (None, None, False, None),
    ],
)
def test_json_core_metadata(key: str | None, value, has: bool, sha: str | None) -> None:
    f = jfile()
    if key:
        f[key] = value
    link = one(parse_json_page(jpage(f), PAGE, IX))
    assert (link.metadata, link.metadata_sha256) == (has, sha)


def test_json_core_metadata_preferred_over_dist_info_metadata() -> None:
    f = jfile()
    f["core-metadata"] = {"sha256": H1}
    f["dist-info-metadata"] = {"sha256": "c" * 64}
    assert one(parse_json_page(jpage(f), PAGE, IX)).metadata_sha256 == H1


def test_json_filename_falls_back_to_url() -> None:
    f = jfile(url="torch-2.3.0%2Bcu121-cp311-cp311-linux_x86_64.whl")
    del f["filename"]
    assert one(parse_json_page(jpage(f), PAGE, IX)).filename == "torch-2.3.0+cu121-cp311-cp311-linux_x86_64.whl"


def test_json_skips_bad_entries() -> None:
    body = jpage(jfile(), {"filename": "x.whl"}, "string", {"url": 5}, jfile(filename="pkg-2.0-py3-none-any.whl", url="pkg-2.0-py3-none-any.whl"))
    assert [lk.filename for lk in parse_json_page(body, PAGE, IX)] == ["pkg-1.0-py3-none-any.whl", "pkg-2.0-py3-none-any.whl"]


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{not json", "broken JSON page"),
        (b"", "broken JSON page"),
        (b"\xff\xfe\x00garbage", "broken JSON page"),
        (b"[]", "without a 'files' list"),
        (b'{"files": {}}', "without a 'files' list"),
        (b'{"meta": {}}', "without a 'files' list"),
    ],
)
def test_json_broken(body: bytes, message: str) -> None:
    with pytest.raises(IndexUnavailable) as e:
        parse_json_page(body, PAGE, IX)
    assert message in str(e.value) and "index test" in str(e.value)


def test_json_errors_redact_credentials() -> None:
    with pytest.raises(IndexUnavailable) as e:
        parse_json_page(b"nope", "https://alice:s3cret@idx.example/simple/pkg/", IX)
    assert "s3cret" not in str(e.value) and "alice" not in str(e.value)
    assert "https://idx.example/simple/pkg/" in str(e.value)


# ---------------------------------------------------------------------------------------------
# parse_page: the Content-Type decides


JSON_BODY = jpage(jfile())
HTML_BODY = html('<a href="pkg-1.0-py3-none-any.whl#sha256=' + H1 + '">x</a>')


@pytest.mark.parametrize(
    "ctype, body",
    [
        (JSON_TYPE, JSON_BODY),
        (f"{JSON_TYPE}; charset=utf-8", JSON_BODY),
        ("Application/Vnd.PyPI.Simple.v1+JSON", JSON_BODY),
        ("application/json", JSON_BODY),
        ("text/html", HTML_BODY),
        ("text/html; charset=utf-8", HTML_BODY),
        ("TEXT/HTML", HTML_BODY),
        ("application/vnd.pypi.simple.v1+html", HTML_BODY),
        ("application/xhtml+xml", HTML_BODY),
        ("", HTML_BODY),
    ],
)
def test_parse_page_dispatch(ctype: str, body: bytes) -> None:
    link = one(parse_page(body, ctype, PAGE, IX))
    assert link.filename == "pkg-1.0-py3-none-any.whl" and link.sha256 == H1


def test_json_type_wins_over_what_was_asked() -> None:
    """A server answering an HTML request with JSON is parsed as JSON (an HTML parse would find nothing)."""
    assert one(parse_page(JSON_BODY, JSON_TYPE, PAGE, IX)).size is None
    assert parse_html_page(JSON_BODY, PAGE, IX) == []


@pytest.mark.parametrize("ctype", ["application/octet-stream", "text/plain", "image/png", "application/zip", "garbage"])
def test_parse_page_rejects_other_types(ctype: str) -> None:
    with pytest.raises(IndexUnavailable) as e:
        parse_page(HTML_BODY, ctype, "https://u:p@idx.example/simple/pkg/", IX)
    assert repr(ctype) in str(e.value)
    assert "u:p@" not in str(e.value)
    assert e.value.hint and "simple" in e.value.hint


def test_parse_page_broken_json() -> None:
    with pytest.raises(IndexUnavailable, match="broken JSON"):
        parse_page(b"<html>not json</html>", JSON_TYPE, PAGE, IX)


# ---------------------------------------------------------------------------------------------
# IndexConfig


@pytest.mark.parametrize(
    "patterns, project, claimed",
    [
        (("nvidia-*",), "nvidia_cudnn_cu12", True),
        (("nvidia-*",), "nvidia-cublas-cu12", True),
        (("nvidia-*",), "NVIDIA.nccl.cu12", True),
        (("nvidia-*",), "nvidia", False),
        (("nvidia_*",), "nvidia-cudnn-cu12", True),
        (("NVIDIA-*",), "nvidia_cudnn_cu12", True),
        (("torch",), "Torch", True),
        (("Torch",), "torch", True),
        (("torch",), "torchvision", False),
        (("torch*",), "torchvision", True),
        (("torch", "torchvision"), "torchaudio", False),
        (("zope.interface",), "zope-interface", True),
        (("zope-interface",), "Zope_Interface", True),
        (("triton",), "pytorch-triton", False),
        (("py?",), "pyz", True),
        (("py?",), "pyzz", False),
        ((" torch ",), "torch", True),
        ((), "torch", False),
        (None, "torch", False),
    ],
)
def test_claims(patterns, project: str, claimed: bool) -> None:
    ix = IndexConfig(name="x", url="https://x.example/simple/", packages=patterns)
    assert ix.claims(project) is claimed
    assert ix.explicit is (patterns is not None)


def test_index_config_to_dict_redacts() -> None:
    ix = IndexConfig(name="corp", url="https://bob:hunter2@corp.example/simple/", packages=("corp-*",))
    assert ix.to_dict() == {"name": "corp", "url": "https://corp.example/simple/", "kind": "index", "packages": ["corp-*"]}
    assert "packages" not in IndexConfig(name="pypi", url=PYPI_SIMPLE).to_dict()


# ---------------------------------------------------------------------------------------------
# URL helpers


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://user:password@corp.example/simple/", "https://corp.example/simple/"),
        ("https://token@corp.example/simple/", "https://corp.example/simple/"),
        ("https://user:p%40ss@corp.example:8443/simple/pkg/?x=1#sha256=ab", "https://corp.example:8443/simple/pkg/?x=1#sha256=ab"),
        ("https://__token__:pypi-abc@upload.example/", "https://upload.example/"),
        ("https://corp.example/simple/", "https://corp.example/simple/"),
        ("https://corp.example/a@b/", "https://corp.example/a@b/"),  # an @ in the path is not userinfo
        ("file:///srv/wheels/", "file:///srv/wheels/"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "url, expected",
    [
        ("pypi", PYPI_SIMPLE),
        ("PyPI", PYPI_SIMPLE),
        (" pypi ", PYPI_SIMPLE),
        ("pypi.org", PYPI_SIMPLE),
        ("https://download.pytorch.org/whl/cu121", "https://download.pytorch.org/whl/cu121/"),
        ("https://corp.example/simple/", "https://corp.example/simple/"),
        ("http://localhost:8080/simple ", "http://localhost:8080/simple/"),
        ("file:///srv/wheels", "file:///srv/wheels"),
        ("/srv/wheels", "/srv/wheels"),
    ],
)
def test_normalize_index_url(url: str, expected: str) -> None:
    assert normalize_index_url(url) == expected
    assert PYPI_SIMPLE == "https://pypi.org/simple/"


@pytest.mark.parametrize(
    "index_url, project, expected",
    [
        ("https://pypi.org/simple/", "Foo_Bar", "https://pypi.org/simple/foo-bar/"),
        ("https://download.pytorch.org/whl/cu121", "torch", "https://download.pytorch.org/whl/cu121/torch/"),
        ("https://x.example/simple/", "zope.interface", "https://x.example/simple/zope-interface/"),
    ],
)
def test_project_url(index_url: str, project: str, expected: str) -> None:
    assert project_url(index_url, project) == expected


# ---------------------------------------------------------------------------------------------
# The HTML scanner against html.parser, and its linear time on hostile pages


def _reference_anchors(text: str) -> list[dict[str, str | None]]:
    """What ``html.parser`` sees: every <a> start tag's attributes (the first of a repeated name wins)."""
    from html.parser import HTMLParser

    found: list[dict[str, str | None]] = []

    class P(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "a":
                d: dict[str, str | None] = {}
                for k, v in attrs:
                    d.setdefault(k, v)
                found.append(d)

        handle_startendtag = handle_starttag

    p = P(convert_charrefs=True)
    p.feed(text)
    p.close()
    return found


def test_quoted_greater_than_keeps_the_requires_python_bound() -> None:
    page = b'<a href="f-1.0-py3-none-any.whl" data-requires-python=">=3.12">f</a>'
    (link,) = parse_html_page(page, "https://idx.example/simple/f/", IX)
    assert link.requires_python == ">=3.12"


def test_links_inside_comments_are_ignored() -> None:
    page = (b'<!-- <a href="evil-1.0-py3-none-any.whl">old</a> -->'
            b'<a href="good-1.0-py3-none-any.whl">good</a><!-- unterminated <a href="x-1.0.tar.gz">')
    assert [link.filename for link in parse_html_page(page, "https://idx.example/simple/", IX)] == ["good-1.0-py3-none-any.whl"]


from hypothesis import given, settings  # noqa: E402 - only this section fuzzes
from hypothesis import strategies as st  # noqa: E402

_values = st.text(alphabet=st.sampled_from(list("ab<>=/ !\"'-&;#.")), max_size=12)


@st.composite
def _pages(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["a", "comment", "text"]))
        if kind == "a":
            quote = draw(st.sampled_from(['"', "'"]))
            value = draw(_values).replace(quote, "")
            rp = draw(_values).replace(quote, "")
            parts.append(f"<a href={quote}{value}{quote} data-requires-python={quote}{rp}{quote}>x</a>")
        elif kind == "comment":
            parts.append(f"<!-- {draw(_values).replace('--', '')} -->")
        else:
            parts.append(draw(_values).replace("<", " "))
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(_pages())
def test_scanner_agrees_with_html_parser(page: str) -> None:
    from bundler.index import _anchors

    assert _anchors(page)[1] == _reference_anchors(page)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("unit", ["<a ", '<a x="', "<!--", "<a x=y ", "<a " + "b" * 50])
def test_hostile_pages_parse_in_linear_time(unit: str) -> None:
    """2 MB of an unfinished tag: a quadratic scan takes hours here; a linear one milliseconds."""
    page = (unit * (2_000_000 // len(unit))).encode()
    assert parse_html_page(page, "https://idx.example/simple/", IX) == []


# ---------------------------------------------------------------------------------------------
# Hostile pages: every value is checked where it enters


@pytest.mark.parametrize("entry, message", [
    (jfile(hashes={"sha256": "0" * 64 + "\n--index-url https://evil.example/"}), "malformed sha256"),
    (jfile(hashes={"sha256": ["a" * 64]}), "malformed sha256"),
    (jfile(hashes={"sha256": "z" * 64}), "malformed sha256"),
    (jfile(url="file:///etc/passwd#/pkg-1.0-py3-none-any.whl", filename="pkg-1.0-py3-none-any.whl"), "only http"),
    (jfile(url="file:///tmp/fifo/pkg-1.0-py3-none-any.whl"), "only http"),
    (jfile(url="https://files.example/pkg-1.0-py3-none-any.whl\n-r /etc/shadow"), "malformed URL"),
    (jfile(**{"core-metadata": {"sha256": "x\ny"}}), "core-metadata sha256"),
])
def test_json_hostile_entries_are_errors(entry: dict, message: str) -> None:
    with pytest.raises(IndexUnavailable, match=message) as e:
        parse_json_page(jpage(entry), PAGE, IX)
    assert "index test" in str(e.value) and "\n--index-url" not in str(e.value)


@pytest.mark.parametrize("filename", ["../../pkg-1.0-py3-none-any.whl", "pkg-1.0-py3-none-any.whl\n", "a/b-1.0.tar.gz",
                                      "pkg 1.0.tar.gz", "pkg-1.0-py3-none-any.whl;rm", "x" * 300 + "-1.0.tar.gz"])
def test_json_filenames_outside_the_grammar_are_skipped(filename: str) -> None:
    assert parse_json_page(jpage(jfile(filename=filename)), PAGE, IX) == []


def test_html_percent_encoded_slash_is_not_a_filename() -> None:
    assert parse_html_page(html('<a href="..%2F..%2Fpkg-1.0-py3-none-any.whl">x</a>'), PAGE, IX) == []


def test_remote_html_page_may_not_link_local_files() -> None:
    with pytest.raises(IndexUnavailable, match="only http"):
        parse_html_page(html('<a href="file:///home/me/secret/pkg-1.0-py3-none-any.whl">x</a>'), PAGE, IX)


def test_local_find_links_page_may_link_local_files() -> None:
    page = "file:///srv/wheels/index.html"
    (link,) = parse_html_page(html('<a href="pkg-1.0-py3-none-any.whl">x</a>'), page, IX)
    assert link.url == "file:///srv/wheels/pkg-1.0-py3-none-any.whl"


@pytest.mark.parametrize("changes", [{"size": True}, {"size": -5}, {"size": "12"}, {"upload-time": 7}, {"yanked": 3},
                                     {"requires-python": ["x"]}, {"hashes": "sha256"}, {"core-metadata": [1]}])
def test_json_fields_of_the_wrong_type_are_ignored_not_tracebacks(changes: dict) -> None:
    parse_json_page(jpage(jfile(**changes)), PAGE, IX)


def test_control_characters_in_printed_fields_are_escaped() -> None:
    link = one(parse_json_page(jpage(jfile(yanked="\x1b[2Jgone", **{"requires-python": ">=3\x1b[8m"})), PAGE, IX))
    assert "\x1b" not in link.yanked and "\x1b" not in link.requires_python


def test_deeply_nested_json_is_an_error() -> None:
    with pytest.raises(IndexUnavailable, match="nested too deeply|broken JSON"):
        parse_json_page(b'{"files": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", PAGE, IX)


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["files", "url", "filename", "hashes", "sha256", "yanked", "size", "upload-time",
                                         "requires-python", "core-metadata", "dist-info-metadata", "meta"]), inner, max_size=5),
                    max_leaves=30))
def test_fuzz_json_pages_give_links_or_our_error(doc: object) -> None:
    try:
        links = parse_json_page(json.dumps(doc).encode(), PAGE, IX)
    except IndexUnavailable:
        return
    assert all(isinstance(link, Link) for link in links)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(alphabet=st.sampled_from(list('<a href="x-1.0.tar.gz#sha256=>\'/ -!=')), max_size=200).map(str.encode))
def test_fuzz_html_pages_give_links_or_our_error(body: bytes) -> None:
    try:
        parse_html_page(body, PAGE, IX)
    except IndexUnavailable:
        pass


# ---------------------------------------------------------------------------------------------
# redaction of awkward credentials (issue 10, class 7)

from urllib.parse import quote, unquote  # noqa: E402

from bundler.urls import credential_pieces, encode_userinfo, split_userinfo  # noqa: E402

AWKWARD = ["a/b", "a#b", "a?b", "p@ss", "x%2Fy", "to:ken", "a/b?c#d@e"]


@pytest.mark.parametrize("token", AWKWARD)
@pytest.mark.parametrize("user", ["user", "__token__", None])
@pytest.mark.parametrize("rest", ["corp.example/simple/pkg/", "127.0.0.1:8080/f/pkg-1.0-py3-none-any.whl#sha256=ab",
                                  "corp.example", "[::1]:3141/root/+simple/?x=1"])
def test_redact_url_awkward_tokens(token: str, user: str | None, rest: str) -> None:
    url = f"https://{user + ':' if user else ''}{token}@{rest}"
    assert redact_url(url) == f"https://{rest}"
    clean, cred = split_userinfo(url)
    assert clean == f"https://{rest}"
    assert cred == ((user, unquote(token)) if user else (unquote(token).partition(":")[0], unquote(token).partition(":")[2]))


@pytest.mark.parametrize("url", ["https://corp.example/a@b/x.whl", "https://corp.example:8443/files/pkg@1.0/x.whl",
                                 "http://localhost/@scope/x/", "file:///srv/a@b/x.whl", "/srv/a@b/x.whl"])
def test_redact_url_leaves_an_at_in_the_path(url: str) -> None:
    assert redact_url(url) == url
    assert split_userinfo(url) == (url, None)


def test_encode_userinfo_makes_a_raw_token_usable() -> None:
    assert encode_userinfo("https://user:a/b?c#d@corp.example/simple/") == "https://user:a%2Fb%3Fc%23d@corp.example/simple/"
    assert encode_userinfo("https://user:x%2Fy@corp.example/") == "https://user:x%2Fy@corp.example/"  # already encoded
    assert normalize_index_url("https://__token__:a/b@corp.example/simple") == "https://__token__:a%2Fb@corp.example/simple/"


def test_credential_pieces_cover_every_spelling() -> None:
    pieces = credential_pieces("https://user:tok/en@corp.example/")
    for spelling in ("tok/en", "tok%2Fen", "user:tok/en", "tok", "en"):
        assert spelling in pieces
    assert credential_pieces("https://corp.example/a@b/") == []


_USER = st.text(alphabet=st.sampled_from(list("abcXYZ019_-.~")), min_size=1, max_size=10)
_SECRET = st.text(alphabet=st.sampled_from(list("abcXYZ019/#?@:%!$&'()*+,;=-._~ ")), min_size=1, max_size=16)
_HOST = st.sampled_from(["corp.example", "127.0.0.1:8080", "localhost", "[::1]", "files.corp.example:443"])
_PATH = st.sampled_from(["", "/", "/simple/", "/f/pkg-1.0-py3-none-any.whl", "/a@b/c", "/x?y=1#sha256=00", "?q", "#frag"])


@settings(max_examples=400, deadline=None)
@given(user=_USER, password=_SECRET, host=_HOST, path=_PATH, encode=st.booleans())
def test_redact_url_never_shows_the_password(user: str, password: str, host: str, path: str, encode: bool) -> None:
    """For any password, pasted raw or percent-encoded, the redacted URL does not contain it; the
    host and path survive (an '@' in the path after a raw token may take part of the path with it)."""
    from hypothesis import assume
    shown = quote(password, safe="") if encode else password
    assume(password not in f"https://{host}{path}" and shown not in f"https://{host}{path}")
    url = f"https://{user}:{shown}@{host}{path}"
    out = redact_url(url)
    assert shown not in out and (len(password) < 2 or password not in out)
    if encode or "@" not in path:  # a raw token and an '@' in the path: more is hidden, never less
        assert out == f"https://{host}{path}"


@settings(max_examples=200, deadline=None)
@given(token=_SECRET, host=_HOST, path=_PATH)
def test_redact_url_never_shows_an_encoded_bare_token(token: str, host: str, path: str) -> None:
    shown = quote(token, safe="")
    url = f"https://{shown}@{host}{path}"
    assert redact_url(url) == f"https://{host}{path}"


# ---------------------------------------------------------------------------------------------
# pagefiles.usual: the batch check of a page's files (and of those a choice record holds)


def _plausible_one(k: Link, remote: bool) -> bool:
    """The same checks, one link at a time and in the plainest spelling (the name's grammar is
    checked when a file is used, as for a page's files)."""
    import re

    return (0 < len(k.filename) <= 255 and k.filename.isprintable() and not any(c in k.filename for c in " /\\")
            and k.url.startswith(("http://", "https://") if remote else ("http://", "https://", "file:"))
            and k.url.isprintable() and " " not in k.url and "#" not in k.url
            and all(h is None or re.fullmatch(r"[0-9a-f]{64}", h) is not None for h in (k.sha256, k.metadata_sha256))
            and all(t is None or t.isprintable() for t in (k.requires_python, k.yanked)))


_ODD = st.sampled_from(["", " ", "\t", "\n", "\x00", "\x1f", "\x7f", "\x85", "\xa0", "\u2028", "\u3000", "\u200b", "é", "/", "a"])


@st.composite
def _record_links(draw: st.DrawFn) -> Link:
    name = draw(st.sampled_from(["pkg-1.0-py3-none-any.whl", "pkg-1.0.tar.gz", "pkg-1.0.exe", "a" * 252 + ".whl", "a" * 260 + ".whl"]))
    url = draw(st.sampled_from(["https://f.example/", "http://f.example/", "file:///w/", "ftp://f.example/", "javascript:"]))
    return Link(filename=name[: draw(st.integers(1, 300))] + draw(_ODD) if draw(st.integers(0, 5)) == 0 else name,
                url=url + draw(_ODD) + "x.whl" + draw(_ODD), index="i", index_url="https://i.example/",
                sha256=draw(st.sampled_from([None, "a" * 64, "A" * 64, "a" * 63, "a" * 64 + "\n" + "a" * 64])),
                metadata_sha256=draw(st.sampled_from([None, "b" * 64, "g" * 64])),
                requires_python=draw(st.sampled_from([None, ">=3.8", ">=3\x1b"])), yanked=draw(st.sampled_from([None, "", "bad\x9b"])))


@settings(max_examples=500, deadline=None)
@given(links=st.lists(_record_links(), max_size=4), remote=st.booleans())
def test_usual_columns_is_the_per_link_check(links: list[Link], remote: bool) -> None:
    assert usual(columns_of(links), remote=remote) == all(_plausible_one(k, remote) for k in links)


_PART = st.sampled_from(["pkg", "Pkg_x", "a__b", "", "1.0", "1.0rc1", "1!2.0+local.1", "x.y", "1_a", "cp311", "py2.py3",
                         "none", "abi3", "any", "manylinux_2_17_x86_64.manylinux2014_x86_64", "3cp", "py3.", "é", "1", "2abc"])


@settings(max_examples=1000, deadline=None)
@given(parts=st.lists(_PART, min_size=3, max_size=7))
def test_wheel_name_check_part_by_part_is_packagings(parts: list[str]) -> None:
    """``_is_wheel_name`` asks packaging about each part once and remembers; the answers are its own."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    from bundler.index import _is_wheel_name

    filename = "-".join(parts) + ".whl"
    try:
        parse_wheel_filename(filename)
        expected = True
    except InvalidWheelFilename:
        expected = False
    assert _is_wheel_name(filename) == expected
