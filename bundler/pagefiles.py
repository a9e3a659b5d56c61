"""The files of one index page as columns, with a ``Link`` made for a file only when it is asked for.

A big project's page lists tens of thousands of files (psycopg-binary, pydantic-core, torch), and a
target can use a few of them: making and checking a ``Link`` for every file was most of a cold lock's
CPU. A ``PageFiles`` holds the values a page gives for its files as lists, checked a column at a time
(``usual``: the types, one printable check over the joined URLs, one ``translate`` over the joined
digests, all in C), and makes the ``Link`` of file ``i`` on first use (``link``). The file-name grammar
(``index._is_distribution``) and the upload time are decided there, per file, so files that are not
distributions are skipped where they are met, as the page parsers skip them.

The selection asks only for the files of the tag sets a target accepts (``tag_groups``) and for the
non-wheels (``non_wheels``); anything else (the diagnostics, the tests) sees a ``Sequence[Link]`` of
every distribution on the page, made when first iterated.

A JSON page is parsed on first use (``load``): a warm re-lock whose rankings are remembered
(``choicememo``, which stores the chosen files as these columns and checks them with ``usual`` when
read back) does not parse the page at all.
"""

from __future__ import annotations

import threading
from itertools import repeat
from typing import Any, Callable, Iterator, Sequence, overload

from bundler.index import IndexConfig, Link, _is_distribution, _parse_time

FIELDS = ("filename", "url", "sha256", "requires_python", "yanked", "upload_time", "size", "metadata", "metadata_sha256")

_STR, _BOOL, _TEXT, _SIZE = {str}, {bool}, {str, type(None)}, {int, type(None)}
_HEX = b"0123456789abcdef"  # bytes.translate deletes these: what is left is not a digit
_MISSING = object()


def _digests(values: list[str | None]) -> bool:
    """Whether each value is None or 64 lower-case hex digits (decided in C: no regex, no call per value)."""
    digests = list(filter(None, values))
    if len(digests) != len(values) - values.count(None):  # an empty string
        return False
    joined = "".join(digests)
    return set(map(len, digests)) <= {64} and joined.isascii() and not joined.encode("ascii").translate(None, _HEX)


_PRINTABLE = bytes(range(0x20, 0x7F))  # bytes.translate deletes these: what is left is a control character


def _printable(text: str) -> bool:
    """``text.isprintable()``, decided for ASCII text by one ``bytes.translate`` (several times faster
    than ``isprintable`` on the megabytes of a big page's joined URLs)."""
    if text.isascii():  # a flag of the string: no scan
        return not text.encode("ascii").translate(None, _PRINTABLE)
    return text.isprintable()


def _types(values: list[Any]) -> set[type]:
    return set(map(type, values))


def tag_key(filename: str) -> str | None:
    """The lower-cased ``python-abi-platform`` part of a wheel filename (its compressed tag set),
    from the string alone; None when it is not a wheel name of at least five parts."""
    if not filename.endswith(".whl"):
        return None
    parts = filename[:-4].lower().rsplit("-", 3)
    if len(parts) < 4 or "-" not in parts[0]:
        return None
    return f"{parts[1]}-{parts[2]}-{parts[3]}"


def columns_of(links: Sequence[Link]) -> list[list[Any]]:
    """The columns of ``links``, one list of values per field of ``FIELDS`` (times in ISO format)."""
    if isinstance(links, PageFiles):
        return links.columns
    columns = [[getattr(k, f) for k in links] for f in FIELDS]
    columns[5] = [t.isoformat() if t is not None else None for t in columns[5]]
    return columns


def usual(columns: Any, *, remote: bool) -> bool:
    """Whether ``columns`` (one list of values per field of ``FIELDS``) hold only values of the usual
    kind: names printable, at most 255 characters, without spaces or path separators; URLs printable
    http(s) (or ``file:`` on a local page) without whitespace or fragment; digests 64 lower-case hex
    digits; texts printable; sizes non-negative integers. Checked a column at a time, mostly in C.
    Upload times are read when a file is used (``index._parse_time``: anything but an ISO time is
    no time), as the page parsers read them. TypeError when ``columns`` is not even a list of lists."""
    if type(columns) is not list or len(columns) != len(FIELDS) or any(type(c) is not list for c in columns):
        raise TypeError("not file columns")
    names, urls, shas, requires, yanked, uploaded, sizes, metadata, meta_shas = columns
    if len({len(c) for c in columns}) != 1:
        return False
    # the exact type of every value, counted in C: bool is not int here
    if not (_types(names) <= _STR and _types(urls) <= _STR and _types(metadata) <= _BOOL and _types(sizes) <= _SIZE
            and all(_types(c) <= _TEXT for c in (shas, requires, yanked, uploaded, meta_shas))):
        return False
    joined_names, joined_urls = "".join(names), "".join(urls)
    texts = "".join(filter(None, requires)) + "".join(filter(None, yanked))  # None (and "") add nothing
    schemes = ("http://", "https://") if remote else ("http://", "https://", "file:")
    return (all(names) and max(map(len, names), default=0) <= 255 and _printable(joined_names)
            and not any(c in joined_names for c in " /\\")
            and _printable(joined_urls) and " " not in joined_urls and "#" not in joined_urls
            and all(map(str.startswith, urls, repeat(schemes)))
            and _digests(shas) and _digests(meta_shas) and _printable(texts)
            and min(filter(None, sizes), default=0) >= 0)


class PageFiles(Sequence[Link]):
    """The files of one page (see the module docstring); thread-safe, never changed once made.

    ``key`` is the planner cache's key of exactly these files (``httpcache.links_key``), or None.
    """

    def __init__(self, index: IndexConfig, columns: list[list[Any]] | None = None, *, key: str | None = None,
                 load: Callable[[], PageFiles] | None = None, groups: dict[str, list[int]] | None = None) -> None:
        """``columns`` as ``usual`` accepts them (checked by the caller), or ``load`` to make them on
        first use (the files of the page, parsed): a page whose targets' rankings are remembered
        (``choicememo``) is then never parsed. An error ``load`` raises is raised to each use, and
        it is called again next time. ``groups``: the ``tag_groups`` of ``columns``, when known."""
        self.index = index
        self.key = key
        self._columns = columns
        self._load = load
        self._load_lock = threading.Lock()
        self._made: dict[int, Link | None] = {}
        self._all: list[Link] | None = None
        self._groups = groups

    @property
    def columns(self) -> list[list[Any]]:
        """One list of values per field of ``FIELDS``, one value per file of the page."""
        if self._columns is None:
            with self._load_lock:
                if self._columns is None:
                    assert self._load is not None
                    loaded = self._load()
                    self._groups = loaded._groups
                    self._columns = loaded.columns
                    self._load = None  # nor the page's bytes it holds
        return self._columns

    @property
    def count(self) -> int:
        """The files on the page, distributions or not: positions run from 0 to count - 1."""
        return len(self.columns[0])

    @classmethod
    def checked(cls, index: IndexConfig, columns: Any, *, remote: bool, key: str | None = None) -> PageFiles | None:
        """``PageFiles`` of ``columns`` when ``usual(columns, remote)``, else None (TypeError when
        ``columns`` is not even a list of lists)."""
        return cls(index, columns, key=key) if usual(columns, remote=remote) else None

    @classmethod
    def of_links(cls, index: IndexConfig, links: Sequence[Link], *, key: str | None = None) -> PageFiles:
        """The files of ``links`` (already checked where they entered, as ``Link``s)."""
        return cls(index, links.columns if isinstance(links, PageFiles) else columns_of(links), key=key)

    # -- one file at a time ------------------------------------------------------------------

    def link(self, i: int) -> Link | None:
        """The ``Link`` of file ``i`` (0 <= i < count), or None when its name is not a distribution's."""
        made = self._made.get(i, _MISSING)
        if made is not _MISSING:
            return made  # type: ignore[return-value]
        name = self.columns[0][i]
        link = None
        if _is_distribution(name):
            c = self.columns
            link = Link(filename=name, url=c[1][i], index=self.index.name, index_url=self.index.url, sha256=c[2][i],
                        requires_python=c[3][i], yanked=c[4][i], upload_time=_parse_time(c[5][i]), size=c[6][i],
                        metadata=c[7][i], metadata_sha256=c[8][i])
        return self._made.setdefault(i, link)  # one Link per file whichever thread made it first

    def tag_groups(self) -> dict[str, list[int]]:
        """The positions of the wheels, grouped by ``tag_key`` (a project's thousands of files share a
        few dozen tag sets), each group in page order."""
        groups = self._groups
        if groups is None:
            groups = {}
            for i, name in enumerate(self.columns[0]):
                key = tag_key(name)
                if key is not None:
                    groups.setdefault(key, []).append(i)
            self._groups = groups
        return groups

    def non_wheels(self) -> Iterator[Link]:
        """The distributions that are not wheels (sdists), in page order."""
        for i, name in enumerate(self.columns[0]):
            if not name.endswith(".whl"):
                link = self.link(i)
                if link is not None:
                    yield link

    # -- the Sequence of every distribution --------------------------------------------------

    def _links(self) -> list[Link]:
        every = self._all
        if every is None:
            every = self._all = [k for k in map(self.link, range(self.count)) if k is not None]
        return every

    def __len__(self) -> int:
        return len(self._links())

    def __bool__(self) -> bool:
        return any(self.link(i) is not None for i in range(self.count))

    @overload
    def __getitem__(self, i: int) -> Link: ...

    @overload
    def __getitem__(self, i: slice) -> list[Link]: ...

    def __getitem__(self, i: int | slice) -> Link | list[Link]:
        return self._links()[i]

    def __iter__(self) -> Iterator[Link]:
        return iter(self._links())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (PageFiles, list, tuple)):
            return self._links() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PageFiles({self.index.name!r}, {self.count} files)"
