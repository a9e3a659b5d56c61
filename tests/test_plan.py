"""Resolution: the resolver cases in-process against a fake index, and end to end through ``main``.

The resolver cases are data (``Case``/``W`` tables). Every case runs in-process through
``plan()`` against ``fakeindex.FakeIndex`` (the ``ProjectIndex`` protocol, no sockets); a
selection of them (``E2E_CASES``) also runs through ``main(["lock", ...])`` against the loopback
index server, reading the result back with ``bundler.lock.read_lock`` and the hashed
``requirements.txt``. The tests that need the request log or stderr are written out. Nothing here
talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import tomllib
import zlib
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from bundler.cli import main
from bundler.app import resolve
from bundler.job import build_job
from bundler.errors import BundlerError
from bundler.plan import Plan, plan
from bundler.profile import PRESETS, profile_for_platform
from support.fakeindex import FakeIndex
from support.hermetic import hermetic
from support.indexserver import IndexServer
from support.plancases import (CASES, CP311_2_17, LINUX, Case, W, lock, locked, publish, requirements_txt, sha256_of, stderr_of, versions,
                       wheels)
from support.wheelgen import make_wheel


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic(monkeypatch, tmp_path, "MACOSX_DEPLOYMENT_TARGET")




def plan_in_process(wheels: list[W], args: list[str], target: tuple[str, ...] = LINUX,
                    index_url: str = "https://main.example/simple/") -> tuple[Plan, FakeIndex]:
    """Plan ``args`` (requirements and ``--pre``) for ``target`` like ``wheelhouse lock`` would,
    but through ``plan()`` on a ``FakeIndex`` holding ``wheels`` (index "main" is the default index)."""
    flags = dict(zip(target[::2], target[1::2]))
    job = build_job(positional=[a for a in args if not a.startswith("--")], req_files=[], constraint_files=[], profile_specs=[],
                    platform=flags.get("--python-platform"), version=flags.get("--python-version"), index_url=index_url,
                    extra_index_urls=[], find_links=[], named=[], pins=[], pre="--pre" in args, exclude_newer=None)
    fake = FakeIndex(job.indexes)
    for w in wheels:
        fake.add_wheel("default" if w.index == "main" else w.index, w.name, w.version, tag=w.tag, requires_dist=list(w.deps),
                       requires_python=w.rp, page_requires_python=w.page_rp, provides_extra=list(w.extras), yanked=w.yanked)
    return resolve(job, fake, bootstrap=False), fake


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolution_case(case: Case) -> None:
    if case.expect is None:
        with pytest.raises(BundlerError) as err:
            plan_in_process(case.wheels, case.args, case.target)
        assert err.value.exit_code == 1
        return
    result, _ = plan_in_process(case.wheels, case.args, case.target)
    [target] = result.targets
    assert {p.name: p.version for p in target.pins} == case.expect
    for name, filename in case.files.items():
        assert next(p.link.filename for p in target.pins if p.name == name) == filename


# End to end through main(): one or two cases of each kind. Page attributes (yanked,
# requires-python, %2B in local versions) are parsed from both formats.
E2E_CASES = [c for c in CASES if c.id in {
    "local-matches-public-pin", "local-missing-exact", "yanked-skipped", "yanked-allowed-when-pinned", "yanked-only-range-fails",
    "pre-with-flag", "rp-page-excludes-x.y.0", "rp-page-admits-patch", "extra-requested", "markers-windows",
    "per-wheel-deps-aarch64", "tags-musl-not-manylinux", "backtrack-over-conflict"}]
HTML_CASES = [c for c in E2E_CASES if c.id.startswith(("local-matches", "yanked-skipped", "rp-page-excludes"))]


@pytest.mark.parametrize(
    ("case", "formats"),
    [pytest.param(c, ("json", "html"), id=c.id) for c in E2E_CASES] + [pytest.param(c, ("html",), id=f"html-{c.id}") for c in HTML_CASES],
)
def test_resolution_case_end_to_end(case: Case, formats: tuple[str, ...], index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, case.wheels, formats)
    rc = lock(tmp_path, index_server, *case.args, target=case.target, cache=zlib.crc32(case.id.encode()) % 2 == 0)
    if case.expect is None:
        assert rc == 1
        assert not (tmp_path / "pylock.toml").exists()
        return
    assert rc == 0
    lk = locked(tmp_path)
    assert versions(lk) == case.expect
    for name, filename in case.files.items():
        assert wheels(lk)[name] == filename
    reqs = requirements_txt(tmp_path / "requirements.txt")
    assert {n: v for n, (v, _, _) in reqs.items()} == case.expect
    for pkg, wheel in lk.for_target(lk.profiles[0].name):
        w = next(w for w in case.wheels if f"{w.name}-{w.version}-{w.tag}.whl" == wheel.filename)
        assert wheel.url == index_server.file_url(w.index, wheel.filename)  # percent-encoded: + is %2B
        assert wheel.sha256 == sha256_of(index_server, w.index, wheel.filename)
        assert reqs[pkg.name][2] == [wheel.sha256]


DIAGNOSED = [
    Case("unknown-project", [W("app", "1.0", deps=["missing-dep"])], ["app"], None),
    Case("no-file-for-target", [W("fastlib", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64"), W("fastlib", "1.9", tag="cp312-cp312-win_amd64"),
                                W("app", "1.0", deps=["fastlib>=1.9"])], ["app"], None),
    Case("conflict", [W("a", "1.0", deps=["c==1.0"]), W("b", "1.0", deps=["c==2.0"]), W("c", "1.0"), W("c", "2.0")], ["a", "b"], None),
    Case("no-version-matches", [W("torch", "2.3.0+cu121", tag=CP311_2_17)], ["torch==2.3.0+cpu"], None),
    Case("requires-python", [W("pkg", "2.0", rp=">=3.12")], ["pkg"], None),
]


@pytest.mark.parametrize("case", DIAGNOSED, ids=[c.id for c in DIAGNOSED])
def test_fake_index_failures_read_like_the_real_ones(case: Case, index_server: IndexServer, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The failure message is built from the ``ProjectIndex`` protocol alone: the same words against
    the fake index as through ``main`` against the loopback server with the same URLs."""
    with pytest.raises(BundlerError) as err:
        plan_in_process(case.wheels, case.args, index_url=index_server.index_url("main"))
    publish(index_server, case.wheels)
    capsys.readouterr()
    assert lock(tmp_path, index_server, *case.args, cache=False) == err.value.exit_code == 1
    expected = f"wheelhouse: error: {err.value.message}\n" + (f"hint: {err.value.hint}\n" if err.value.hint else "")
    assert stderr_of(capsys) == expected


# ---------------------------------------------------------------------------------------------
# requires-python known only from the wheel's METADATA (HTML index, no data-requires-python)


@pytest.mark.parametrize(("pyver", "expect"), [("3.11", "1.0"), ("3.11.4", "1.0"), ("3.11.5", "2.0"), ("3.11.7", "2.0")])
def test_requires_python_from_metadata_backtracks(index_server: IndexServer, tmp_path: Path, pyver: str, expect: str) -> None:
    index_server.add_index("html", formats=("html",), metadata_files=False)
    src = tmp_path / "src"
    index_server.add_file("html", make_wheel(src, "pkg", "1.0"))
    index_server.add_file("html", make_wheel(src, "pkg", "2.0", requires_python=">=3.11.5"))
    rc = lock(tmp_path, index_server, "pkg", index="html",
              target=("--python-platform", "x86_64-manylinux_2_28", "--python-version", pyver))
    assert rc == 0
    assert versions(locked(tmp_path)) == {"pkg": expect}
    # the page really did not say it: the planner had to read 2.0's METADATA
    assert any(r.path.endswith("/pkg-2.0-py3-none-any.whl") and r.range for r in index_server.requests)


def test_requires_python_from_metadata_of_a_dependency(index_server: IndexServer, tmp_path: Path) -> None:
    index_server.add_index("html", formats=("html",), metadata_files=False)
    src = tmp_path / "src"
    index_server.add_file("html", make_wheel(src, "app", "2.0", requires_dist=["lib"], requires_python=">=3.12"))
    index_server.add_file("html", make_wheel(src, "app", "1.0", requires_dist=["lib<2"]))
    index_server.add_file("html", make_wheel(src, "lib", "1.5"))
    index_server.add_file("html", make_wheel(src, "lib", "2.0", requires_python=">=3.11.5"))
    assert lock(tmp_path, index_server, "app", index="html", cache=False) == 0
    assert versions(locked(tmp_path)) == {"app": "1.0", "lib": "1.5"}


def test_requires_python_conflict_is_explained(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index_server.add_index("html", formats=("html",), metadata_files=False)
    index_server.add_file("html", make_wheel(tmp_path / "src", "pkg", "2.0", requires_python=">=3.12"))
    assert lock(tmp_path, index_server, "pkg", index="html") == 1
    err = stderr_of(capsys)
    assert "pkg 2.0 requires Python >=3.12" in err
    assert "3.11.0" in err
    assert "Traceback" not in err
    assert not (tmp_path / "pylock.toml").exists()


# ---------------------------------------------------------------------------------------------
# hash-pinned inputs and direct URLs


def test_hash_pinned_requirements_choose_the_matching_file(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("pkg", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64", deps=["lib"]), W("pkg", "1.0", deps=["lib"]),
                           W("lib", "1.0"), W("lib", "2.0")])
    pure = sha256_of(index_server, "main", "pkg-1.0-py3-none-any.whl")
    lib1 = sha256_of(index_server, "main", "lib-1.0-py3-none-any.whl")
    reqs = tmp_path / "requirements.txt.in"
    reqs.write_text(
        "#\n# This file is autogenerated by pip-compile with Python 3.11\n# by the following command:\n#\n"
        "#    pip-compile --generate-hashes requirements.in\n#\n"
        f"lib==1.0 \\\n    --hash=sha256:{lib1} \\\n    --hash=sha256:{'0' * 64}\n    # via pkg\n"
        f"pkg==1.0 \\\n    --hash=sha256:{pure}\n    # via -r requirements.in\n")
    assert lock(tmp_path, index_server, "-r", str(reqs)) == 0
    lk = locked(tmp_path)
    # the better-ranked cp311 wheel is not the one whose hash was pinned
    assert wheels(lk) == {"pkg": "pkg-1.0-py3-none-any.whl", "lib": "lib-1.0-py3-none-any.whl"}
    out = requirements_txt(tmp_path / "requirements.txt")
    assert out == {"lib": ("1.0", None, [lib1]), "pkg": ("1.0", None, [pure])}


def test_hash_pin_matching_no_file_fails(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("pkg", "1.0"), W("pkg", "1.1")])
    reqs = tmp_path / "req.txt"
    reqs.write_text(f"pkg==1.0 --hash=sha256:{'ab' * 32}\n")
    assert lock(tmp_path, index_server, "-r", str(reqs)) == 1
    err = stderr_of(capsys)
    assert "pkg" in err and "Traceback" not in err
    assert not (tmp_path / "pylock.toml").exists()
    assert not (tmp_path / "requirements.txt").exists()


def test_hash_pin_on_a_dependency_without_version(index_server: IndexServer, tmp_path: Path) -> None:
    """A --hash pin also picks among versions: the newest file whose hash is pinned wins."""
    publish(index_server, [W("app", "1.0", deps=["lib"]), W("lib", "1.0"), W("lib", "2.0")])
    lib1 = sha256_of(index_server, "main", "lib-1.0-py3-none-any.whl")
    app = sha256_of(index_server, "main", "app-1.0-py3-none-any.whl")
    reqs = tmp_path / "req.txt"
    reqs.write_text(f"app --hash=sha256:{app}\nlib --hash=sha256:{lib1}\n")
    assert lock(tmp_path, index_server, "-r", str(reqs), cache=False) == 0
    assert versions(locked(tmp_path)) == {"app": "1.0", "lib": "1.0"}


# ---------------------------------------------------------------------------------------------
# several targets in one lock


def test_multi_target_lock(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [
        W("app", "1.0", deps=["common", "winonly; sys_platform == 'win32'", "armonly; platform_machine == 'aarch64'"]),
        W("common", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64"),
        W("common", "1.0", tag="cp311-cp311-manylinux_2_17_aarch64"),
        W("common", "1.0", tag="cp311-cp311-win_amd64"),
        W("winonly", "1.0"), W("armonly", "1.0"),
        # the newest release has a wheel for Windows only: Linux targets stay on 1.0
        W("app", "2.0", tag="cp311-cp311-win_amd64", deps=["common", "winonly; sys_platform == 'win32'"]),
    ])
    arm = tmp_path / "arm.json"
    arm.write_text(json.dumps(profile_for_platform("aarch64-manylinux_2_28", "3.11.9", name="arm-box").to_dict()))
    assert "rhel8-py311" in PRESETS and "windows-py311" in PRESETS
    rc = lock(tmp_path, index_server, "app", "--profile", "rhel8-py311", "--profile", "windows-py311", "--profile", str(arm),
              target=())
    assert rc == 0
    with (tmp_path / "pylock.toml").open("rb") as f:
        data = tomllib.load(f)
    Pylock.from_dict(data)  # valid PEP 751
    assert len(data["environments"]) == 3
    lk = locked(tmp_path)
    assert [p.name for p in lk.profiles] == ["rhel8-py311", "windows-py311", "arm-box"]
    assert versions(lk, "rhel8-py311") == {"app": "1.0", "common": "1.0"}
    assert versions(lk, "windows-py311") == {"app": "2.0", "common": "1.0", "winonly": "1.0"}
    assert versions(lk, "arm-box") == {"app": "1.0", "common": "1.0", "armonly": "1.0"}
    assert wheels(lk, "rhel8-py311")["common"] == "common-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    assert wheels(lk, "windows-py311")["common"] == "common-1.0-cp311-cp311-win_amd64.whl"
    assert wheels(lk, "arm-box")["common"] == "common-1.0-cp311-cp311-manylinux_2_17_aarch64.whl"

    apps = [p for p in data["packages"] if p["name"] == "app"]
    assert sorted((p["version"], tuple(p["tool"]["wheelhouse"]["targets"])) for p in apps) == [
        ("1.0", ("arm-box", "rhel8-py311")), ("2.0", ("windows-py311",))]
    by_name = {p["name"]: p for p in data["packages"] if p["name"] != "app"}
    assert "marker" not in by_name["common"]
    assert by_name["common"]["tool"]["wheelhouse"]["targets"] == {
        "arm-box": "common-1.0-cp311-cp311-manylinux_2_17_aarch64.whl",
        "rhel8-py311": "common-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        "windows-py311": "common-1.0-cp311-cp311-win_amd64.whl",
    }
    assert len(by_name["common"]["wheels"]) == 3
    assert by_name["winonly"]["tool"]["wheelhouse"]["targets"] == {"windows-py311": "winonly-1.0-py3-none-any.whl"}
    assert by_name["armonly"]["tool"]["wheelhouse"]["targets"] == {"arm-box": "armonly-1.0-py3-none-any.whl"}

    # the per-package markers select exactly the targets that install the package
    from packaging.markers import Marker

    envs = {t.name: dict(t.markers) for t in lk.profiles}
    for pkg in [by_name["winonly"], by_name["armonly"], *apps]:
        marker = Marker(pkg["marker"])
        holds = {t for t, env in envs.items() if marker.evaluate(env)}
        assert holds == set(pkg["tool"]["wheelhouse"]["targets"])
    for env_marker in data["environments"]:
        assert sum(Marker(env_marker).evaluate(env) for env in envs.values()) == 1
    reqs = requirements_txt(tmp_path / "requirements.txt")
    assert reqs["winonly"][1] == by_name["winonly"]["marker"]
    assert len(reqs["common"][2]) == 3


def test_multi_target_per_wheel_dependencies(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [
        W("pkg", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64", deps=["x86dep"]),
        W("pkg", "1.0", tag="cp311-cp311-manylinux_2_17_aarch64", deps=["armdep"]),
        W("x86dep", "1.0"), W("armdep", "1.0"),
    ])
    x86 = tmp_path / "x86.json"
    arm = tmp_path / "arm.json"
    x86.write_text(json.dumps(profile_for_platform("x86_64-manylinux_2_28", "3.11", name="x86").to_dict()))
    arm.write_text(json.dumps(profile_for_platform("aarch64-manylinux_2_28", "3.11", name="arm").to_dict()))
    assert lock(tmp_path, index_server, "pkg", "--profile", str(x86), "--profile", str(arm), target=(), cache=False) == 0
    lk = locked(tmp_path)
    assert versions(lk, "x86") == {"pkg": "1.0", "x86dep": "1.0"}
    assert versions(lk, "arm") == {"pkg": "1.0", "armdep": "1.0"}


# ---------------------------------------------------------------------------------------------
# errors a user can cause


def test_no_compatible_wheel(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("fastlib", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64"),
                           W("fastlib", "1.9", tag="cp312-cp312-win_amd64"),
                           W("app", "1.0", deps=["fastlib>=1.9"])])
    assert lock(tmp_path, index_server, "app") == 1
    err = stderr_of(capsys)
    assert "Traceback" not in err
    assert "fastlib has no file usable on target x86_64-manylinux_2_28-cp311" in err
    assert re.search(r"2\.0\s+cp312\s+manylinux_2_17_x86_64", err), err
    assert re.search(r"1\.9\s+cp312\s+win_amd64", err), err
    assert "CPython 3.11.0" in err and "cp311" in err and "manylinux_2_28_x86_64" in err  # what the target needs
    assert not (tmp_path / "pylock.toml").exists()
    assert not (tmp_path / "requirements.txt").exists()


def test_explain_prints_near_misses(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("fastlib", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64"),
                           W("fastlib", "1.5", tag="cp311-cp311-manylinux_2_17_x86_64", rp=">=3.11.4")])
    rc = main(["explain", "fastlib", "--index-url", index_server.index_url("main"), "--cache-dir", str(tmp_path / "cache"), *LINUX])
    out = capsys.readouterr().out
    assert rc == 0  # the project exists; nothing usable is what the report says
    assert "usable: none" in out
    assert "near misses" in out
    assert "fastlib-2.0-cp312-cp312-manylinux_2_17_x86_64.whl: built for cp312-cp312; the target runs CPython 3.11.0" in out
    assert "fastlib-1.5-cp311-cp311-manylinux_2_17_x86_64.whl: requires Python >=3.11.4" in out
    assert out.index("fastlib-2.0") < out.index("fastlib-1.5")  # newest first

    capsys.readouterr()
    rc = main(["explain", "fastlib", "--index-url", index_server.index_url("main"), "--no-cache",
               "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11.4"])
    out = capsys.readouterr().out
    assert "usable: 1 versions, newest 1.5 via fastlib-1.5-cp311-cp311-manylinux_2_17_x86_64.whl" in out


def test_explain_unknown_project(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("lib", "1.0")])
    rc = main(["explain", "nope", "--index-url", index_server.index_url("main"), "--no-cache", *LINUX])
    assert rc == 1
    assert "no configured index has this project" in capsys.readouterr().out


def test_unsatisfiable_conflict(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("a", "1.0", deps=["c==1.0"]), W("b", "1.0", deps=["c==2.0"]), W("c", "1.0"), W("c", "2.0")])
    assert lock(tmp_path, index_server, "a", "b") == 1
    err = stderr_of(capsys)
    assert "a 1.0 requires c==1.0" in err
    assert "b 1.0 requires c==2.0" in err
    assert "Traceback" not in err
    assert not (tmp_path / "pylock.toml").exists()
    assert not (tmp_path / "requirements.txt").exists()


def test_unknown_project(index_server: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(index_server, [W("app", "1.0", deps=["missing-dep"])])
    assert lock(tmp_path, index_server, "app", cache=False) == 1
    err = stderr_of(capsys)
    assert "app 1.0 requires missing-dep" in err and "no index has a project named 'missing-dep'" in err
    assert not (tmp_path / "pylock.toml").exists()


def test_failed_lock_keeps_the_previous_lock(index_server: IndexServer, tmp_path: Path) -> None:
    publish(index_server, [W("lib", "1.0")])
    assert lock(tmp_path, index_server, "lib") == 0
    before = (tmp_path / "pylock.toml").read_bytes()
    assert lock(tmp_path, index_server, "lib>=2") == 1
    assert (tmp_path / "pylock.toml").read_bytes() == before


