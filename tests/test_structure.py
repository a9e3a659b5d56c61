"""The architecture as checks: which module may import which, who writes the blob store, module sizes.

DESIGN.md's flow (profile -> index/select -> plan -> lock -> cache -> fetch -> pack) holds at the
import level, counting imports inside functions too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bundler"


def _imports(module: Path) -> set[str]:
    """Every ``bundler.*`` module ``module`` imports, at top level, in functions or under TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bundler"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("bundler"))
    return found


def _uses(module: str, forbidden: str) -> bool:
    return any(name == forbidden or name.startswith(forbidden + ".") for name in _imports(PACKAGE / f"{module}.py"))


@pytest.mark.parametrize("module, forbidden", [
    ("plan", "bundler.diagnose"), ("plan", "bundler.gpu"), ("plan", "bundler.repository"), ("plan", "bundler.http"),
    ("pack", "bundler.fetch"), ("lock", "bundler.plan"), ("lock", "bundler.gpu"), ("lock", "bundler.httpcache"),
    ("fetch", "bundler.httpcache"), ("pack", "bundler.httpcache"), ("diagnose", "bundler.repository"),
    ("job", "bundler.plan"), ("profile", "bundler.cli"), ("profile", "bundler._target.capture_profile.capture"),
    ("job", "bundler._target"),
])
def test_no_import_against_the_flow(module: str, forbidden: str) -> None:
    assert not _uses(module, forbidden)


def test_readers_of_a_lock_load_no_resolver_and_no_gpu_policy() -> None:
    code = ("import sys, bundler.fetch, bundler.pack, bundler.lock, bundler.bundle; "
            "bad = sorted(m for m in sys.modules if m.startswith(('bundler.gpu', 'bundler.plan', 'resolvelib'))); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_only_the_cache_module_writes_the_blob_store() -> None:
    writers = sorted(p.name for p in PACKAGE.rglob("*.py") if '"blobs"' in p.read_text() or "'blobs'" in p.read_text())
    assert writers == ["cache.py"]


def test_modules_stay_readable_in_one_sitting() -> None:
    sizes = {p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")
             if p.parent.name != "_target"}
    assert {m: n for m, n in sizes.items() if n > 450} == {}
    assert sizes["cli.py"] <= 300


def test_test_and_script_helpers_live_in_one_package() -> None:
    """Shared test code is ``tests/support``; scripts import it (and each other) as packages, from the
    repository root, with no ``sys.path`` edits."""
    tests = PACKAGE.parent / "tests"
    assert sorted(p.name for p in tests.glob("*.py") if not p.name.startswith("test_")) == ["conftest.py"]
    for script in (PACKAGE.parent / "scripts").glob("*.py"):
        assert "sys.path" not in script.read_text(), script.name
    root = str(PACKAGE.parent)
    for name in ("bench_fetch", "bench_pack", "bench_plan"):
        r = subprocess.run([sys.executable, "-m", f"scripts.{name}", "--help"], cwd=root, capture_output=True, text=True)
        assert r.returncode == 0 and "usage" in r.stdout, r.stderr
