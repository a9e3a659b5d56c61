"""Human-readable views for the terminal: presets, a profile, a bundle's contents.

Everything shown from a file someone else wrote (a bundle's names, versions, smoke commands; a
profile's facts) goes through ``printable`` first, so an escape sequence in it cannot rewrite or
hide lines on the reader's terminal.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bundler.manifest import Manifest, printable
from bundler.profile import PRESETS, Profile
from bundler.progress import human


def _one_line(text: Any) -> str:
    return printable(str(text))  # newlines too: one record per line


def print_presets() -> None:
    """The named target presets, one per line."""
    width = max(len(n) for n in PRESETS)
    for name, (plat, ver, desc) in PRESETS.items():
        print(f"{name:<{width}}  {plat:<24} {ver:<8} {desc}")


def print_profile(prof: Profile, *, tags_only: bool = False, as_json: bool = False) -> None:
    """A profile's facts, markers and first tags (or every tag, or its JSON form)."""
    if tags_only:
        sys.stdout.write("".join(_one_line(t) + "\n" for t in prof.tags))
        return
    if as_json:
        print(json.dumps(prof.to_dict(), indent=2))
        return
    print(f"profile   {_one_line(prof.name)}")
    print(f"machine   {_one_line(prof.describe())}")
    for k, v in prof.facts.to_dict().items():
        print(f"  {k:<16} {_one_line(v)}")
    print("markers")
    for k, v in sorted(prof.markers.items()):
        print(f"  {k:<31} {_one_line(repr(v))}")
    print(f"tags      {len(prof.tags)} (best first; --tags lists them all)")
    for t in prof.tags[:8]:
        print(f"  {_one_line(t)}")


def print_bundle(m: Manifest, *, as_json: bool = False) -> None:
    """A bundle's targets, packages (with sizes and the targets they serve) and smoke commands."""
    if as_json:
        sys.stdout.write(m.to_json().decode())  # JSON escapes control characters itself
        return
    total = sum(size for size, _ in m.files.values())
    print(f"bundle   {_one_line(m.name)}  ({_one_line(m.tool)}, created {_one_line(m.created)}, {len(m.files)} files, {human(total)})")
    for t in m.targets:
        pip = f", installer pip {_one_line(t.pip.split('/')[-1].split('-')[1])}" if t.pip and t.pip.count("-") >= 1 else ""
        print(f"target   {_one_line(t.name)}: {_one_line(t.profile.describe())}{pip}")
    rows: dict[tuple[str, str], dict[str, int]] = {}
    for t in m.targets:
        for p in t.packages:
            rows.setdefault((_one_line(p.name), _one_line(p.version)), {})[t.name] = m.files.get(p.wheel, (0, ""))[0]
        for sd in t.sdists:  # built by install.sh on the target, from the carried sdist
            rows.setdefault((_one_line(sd.name), _one_line(sd.version) + " (sdist, built there)"), {})[t.name] = m.files.get(sd.sdist, (0, ""))[0]
    if rows:
        width = max(len(n) for n, _ in rows)
        vwidth = max(len(v) for _, v in rows)
        print(f"\n{'package':<{width}}  {'version':<{vwidth}}  {'size':>9}  targets")
        for (n, v), per in sorted(rows.items()):
            where = "all" if len(per) == len(m.targets) else ", ".join(_one_line(x) for x in sorted(per))
            print(f"{n:<{width}}  {v:<{vwidth}}  {human(max(per.values())):>9}  {where}")
    if m.smoke:
        print(f"\nsmoke    {'; '.join(_one_line(s) for s in m.smoke)}")
