"""bundler.lock: pylock.toml and requirements.txt out of a hand-built plan, and the lock read back."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import pytest
import tomli_w
from packaging.markers import Marker
from packaging.pylock import Pylock

from bundler.errors import BadInput, ResolutionImpossible
from bundler.index import IndexConfig, Link
from bundler.inputs import RequirementSet, read_requirements_file
from bundler.lock import from_pylock, lock_table, read_lock, render_lock, render_requirements, target_marker, to_pylock, write_lock
from bundler.model import BuildRecord
from bundler.plan import Pin, Plan, TargetPlan
from bundler.profile import profile_for_platform

T = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
INDEX_URL = "https://alice:s3cret@idx.example/simple/"
LINUX = profile_for_platform("x86_64-manylinux_2_28", "3.11", name="linux")
LINUX_OLD = profile_for_platform("x86_64-manylinux_2_17", "3.11", name="rhel7")
WINDOWS = profile_for_platform("x86_64-pc-windows-msvc", "3.11", name="win")
MAC = profile_for_platform("aarch64-apple-darwin", "3.12", name="mac")


def lock_dict(plan: Plan, **kw) -> dict:
    """The lock document as a plain dict, as it is written."""
    return tomllib.loads(render_lock(to_pylock(plan, **kw)))


def requirements_of(plan: Plan) -> str:
    return render_requirements(from_pylock(to_pylock(plan), origin="test", base=Path(".")))


def sha(name: str) -> str:
    import hashlib

    return hashlib.sha256(name.encode()).hexdigest()


def pin(name: str, version: str, filename: str | None = None, *, index: str = "pypi", **kw) -> Pin:
    filename = filename or f"{name}-{version}-py3-none-any.whl"
    link = Link(
        filename=filename,
        url=kw.pop("url", f"https://alice:s3cret@files.example/{filename}"),
        index=index,
        index_url=INDEX_URL,
        sha256=kw.pop("sha256", sha(filename)),
        size=kw.pop("size", 1000 + len(filename)),
        upload_time=kw.pop("upload_time", T),
    )
    return Pin(name=name, version=version, link=link, **kw)


def make_plan(*targets: tuple, requirements: tuple[str, ...] = ("requests",)) -> Plan:
    return Plan(
        targets=tuple(TargetPlan(profile=prof, pins=tuple(pins)) for prof, pins in targets),
        indexes=(IndexConfig(name="pypi", url=INDEX_URL),),
        requirements=requirements,
    )


ONE = make_plan(
    (LINUX, [pin("requests", "2.31.0"), pin("urllib3", "2.2.1")]),
)

TWO = make_plan(
    (LINUX, [pin("requests", "2.31.0"), pin("numpy", "1.26.4", "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl")]),
    (WINDOWS, [pin("requests", "2.31.0"), pin("numpy", "1.26.4", "numpy-1.26.4-cp311-cp311-win_amd64.whl"),
               pin("colorama", "0.4.6", "colorama-0.4.6-py2.py3-none-any.whl")]),
)


def packages(doc: dict) -> dict[str, dict]:
    return {p["name"]: p for p in doc["packages"]}


# ---------------------------------------------------------------------------------------------
# target_marker


@pytest.mark.parametrize(
    "profile, holds_on, fails_on",
    [
        (LINUX, LINUX, WINDOWS),
        (WINDOWS, WINDOWS, MAC),
        (MAC, MAC, LINUX),
        (LINUX, LINUX_OLD, profile_for_platform("x86_64-manylinux_2_28", "3.12")),
        (LINUX, LINUX, profile_for_platform("aarch64-manylinux_2_28", "3.11")),
    ],
)
def test_target_marker(profile, holds_on, fails_on) -> None:
    m = Marker(target_marker(profile))
    assert m.evaluate(dict(holds_on.markers))
    assert not m.evaluate(dict(fails_on.markers))


# ---------------------------------------------------------------------------------------------
# lock_dict / render_lock


@pytest.mark.parametrize("plan", [ONE, TWO], ids=["one-target", "two-targets"])
def test_lock_validates_with_packaging(plan: Plan) -> None:
    text = render_lock(to_pylock(plan, exclude_newer=T))
    lock = Pylock.from_dict(tomllib.loads(text))
    assert str(lock.lock_version) == "1.0"
    assert lock.created_by == "wheelhouse"
    names = sorted({p.name for tp in plan.targets for p in tp.pins})
    assert sorted(str(p.name) for p in lock.packages) == names
    for p in lock.packages:
        for w in p.wheels:
            assert w.hashes["sha256"] == sha(w.name)
            assert w.upload_time == T
            assert w.size == 1000 + len(w.name)
    tool = tomllib.loads(text)["tool"]["wheelhouse"]
    assert tool["exclude-newer"] == T


def _with_sdist_and_builds() -> Plan:
    sdist = pin("pkg", "1.0", "pkg-1.0.tar.gz")
    tools = (pin("setuptools", "70.0"), pin("wheel", "0.43.0"))
    plan = make_plan((LINUX, [pin("requests", "2.31.0"), sdist]), (WINDOWS, [pin("requests", "2.31.0"), sdist]))
    return dataclasses.replace(plan, builds=(BuildRecord(sdist=sdist.link.sha256 or "", filename="pkg-1.0.tar.gz",
                                                         requires=("setuptools", "wheel"), builder=tools,
                                                         targets={"linux": tools, "win": tools[:1]}),))


@pytest.mark.parametrize("plan, kw", [(ONE, {}), (TWO, {"exclude_newer": T, "title": "lab", "smoke": ("requests",)}),
                                      (_with_sdist_and_builds(), {"exclude_newer": T})],
                         ids=["one-target", "two-targets", "sdist-and-builds"])
def test_lock_table_is_packagings_to_dict(plan: Plan, kw: dict) -> None:
    """The table written (made without packaging's deep copies) is exactly ``Pylock.to_dict()``."""
    pylock = to_pylock(plan, **kw)
    table = lock_table(pylock)
    assert table == pylock.to_dict()
    assert tomllib.loads(render_lock(pylock)) == tomllib.loads(tomli_w.dumps(pylock.to_dict()))


def test_one_target_has_no_package_markers() -> None:
    doc = lock_dict(ONE)
    assert doc["environments"] == [target_marker(LINUX)]
    assert all("marker" not in p for p in doc["packages"])
    assert [p["name"] for p in doc["packages"]] == ["requests", "urllib3"]
    assert packages(doc)["requests"]["tool"]["wheelhouse"]["targets"] == {"linux": "requests-2.31.0-py3-none-any.whl"}


def test_markers_only_for_target_specific_packages() -> None:
    doc = lock_dict(TWO)
    pk = packages(doc)
    assert doc["environments"] == sorted([target_marker(LINUX), target_marker(WINDOWS)])
    assert "marker" not in pk["requests"]
    assert "marker" not in pk["numpy"]  # on every target, with a different wheel on each
    assert pk["colorama"]["marker"] == target_marker(WINDOWS)
    assert pk["numpy"]["tool"]["wheelhouse"]["targets"] == {
        "linux": "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl",
        "win": "numpy-1.26.4-cp311-cp311-win_amd64.whl",
    }
    assert [w["name"] for w in pk["numpy"]["wheels"]] == sorted(pk["numpy"]["tool"]["wheelhouse"]["targets"].values())
    # a wheel shared by both targets is listed once
    assert len(pk["requests"]["wheels"]) == 1


def test_marker_for_package_on_some_of_three_targets() -> None:
    plan = make_plan(
        (LINUX, [pin("a", "1.0")]),
        (WINDOWS, [pin("a", "1.0"), pin("b", "1.0")]),
        (MAC, [pin("a", "1.0"), pin("b", "1.0")]),
    )
    pk = packages(lock_dict(plan))
    assert "marker" not in pk["a"]
    m = pk["b"]["marker"]
    assert m == " or ".join(f"({x})" for x in sorted([target_marker(WINDOWS), target_marker(MAC)]))
    assert Marker(m).evaluate(dict(WINDOWS.markers)) and Marker(m).evaluate(dict(MAC.markers))
    assert not Marker(m).evaluate(dict(LINUX.markers))
    render_lock(to_pylock(plan))


def test_different_versions_on_distinguishable_targets() -> None:
    plan = make_plan((LINUX, [pin("numpy", "2.0.0")]), (MAC, [pin("numpy", "1.26.4")]))
    doc = lock_dict(plan)
    assert [(p["name"], p["version"], p["marker"]) for p in doc["packages"]] == [
        ("numpy", "1.26.4", target_marker(MAC)),
        ("numpy", "2.0.0", target_marker(LINUX)),
    ]


def test_alike_targets_needing_different_versions_are_impossible() -> None:
    assert target_marker(LINUX) == target_marker(LINUX_OLD)
    plan = make_plan((LINUX, [pin("numpy", "2.0.0")]), (LINUX_OLD, [pin("numpy", "1.26.4")]))
    with pytest.raises(ResolutionImpossible) as e:
        lock_dict(plan)
    msg = str(e.value)
    assert "linux" in msg and "rhel7" in msg and "numpy" in msg and "2.0.0" in msg and "1.26.4" in msg
    assert e.value.hint and "separate" in e.value.hint


def test_alike_targets_with_same_version_but_different_wheels_are_fine() -> None:
    plan = make_plan(
        (LINUX, [pin("numpy", "2.0.0", "numpy-2.0.0-cp311-cp311-manylinux_2_28_x86_64.whl")]),
        (LINUX_OLD, [pin("numpy", "2.0.0", "numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl")]),
    )
    doc = lock_dict(plan)
    assert doc["environments"] == [target_marker(LINUX)]
    assert len(doc["packages"][0]["wheels"]) == 2


def test_duplicate_target_names_made_unique() -> None:
    other = profile_for_platform("aarch64-manylinux_2_28", "3.11", name="linux")
    doc = lock_dict(make_plan((LINUX, [pin("a", "1")]), (other, [pin("a", "1")])))
    assert [t["name"] for t in doc["tool"]["wheelhouse"]["targets"]] == ["linux", "linux-2"]
    assert [t["profile"]["name"] for t in doc["tool"]["wheelhouse"]["targets"]] == ["linux", "linux-2"]


def test_credentials_redacted() -> None:
    text = render_lock(to_pylock(TWO)) + requirements_of(TWO)
    assert "s3cret" not in text and "alice" not in text
    doc = lock_dict(TWO)
    assert doc["packages"][0]["index"] == "https://idx.example/simple/"
    assert doc["packages"][0]["wheels"][0]["url"].startswith("https://files.example/")
    assert doc["tool"]["wheelhouse"]["indexes"] == [{"name": "pypi", "url": "https://idx.example/simple/", "kind": "index"}]


def test_direct_references_have_no_index() -> None:
    p = pin("local", "1.0", index="direct", url="https://files.example/local-1.0-py3-none-any.whl")
    doc = lock_dict(make_plan((LINUX, [p])))
    assert "index" not in doc["packages"][0]


@pytest.mark.parametrize("missing", ["size", "upload_time"])
def test_optional_wheel_fields(missing: str) -> None:
    doc = lock_dict(make_plan((LINUX, [pin("a", "1.0", **{missing: None})])))
    wheel = doc["packages"][0]["wheels"][0]
    assert {"size": "size", "upload_time": "upload-time"}[missing] not in wheel


def test_unhashed_file_refused() -> None:
    with pytest.raises(BadInput, match="has no sha256"):
        lock_dict(make_plan((LINUX, [pin("a", "1.0", sha256=None)])))


def test_render_lock_rejects_invalid_document() -> None:
    pylock = to_pylock(ONE)
    pkg = pylock.packages[0]
    broken = dataclasses.replace(pylock, packages=[dataclasses.replace(pkg, wheels=[dataclasses.replace(pkg.wheels[0], hashes={})])])
    with pytest.raises(RuntimeError, match="does not validate"):
        render_lock(broken)


# ---------------------------------------------------------------------------------------------
# requirements.txt


def test_render_requirements() -> None:
    text = requirements_of(TWO)
    lines = text.splitlines()
    assert lines[0] == "# generated by wheelhouse 0.1.0 for linux, win"
    assert "--only-binary :all:" in lines
    assert f"requests==2.31.0 \\\n    --hash=sha256:{sha('requests-2.31.0-py3-none-any.whl')}\n" in text
    numpy_hashes = sorted(sha(f"numpy-1.26.4-cp311-cp311-{p}.whl") for p in ("manylinux_2_17_x86_64", "win_amd64"))
    assert "numpy==1.26.4 \\\n" + "".join(f"    --hash=sha256:{h} \\\n" for h in numpy_hashes[:-1]) + f"    --hash=sha256:{numpy_hashes[-1]}\n" in text
    assert f"colorama==0.4.6 ; {target_marker(WINDOWS)} \\\n" in text


def test_requirements_read_back_by_our_own_parser(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text(requirements_of(TWO))
    rs = RequirementSet()
    read_requirements_file(path, rs)
    assert {r.name: str(r.specifier) for r in rs.requirements} == {"colorama": "==0.4.6", "numpy": "==1.26.4", "requests": "==2.31.0"}
    colorama = next(r for r in rs.requirements if r.name == "colorama")
    assert colorama.marker is not None and colorama.marker.evaluate(dict(WINDOWS.markers))
    assert not colorama.marker.evaluate(dict(LINUX.markers))
    assert len(rs.hashes["numpy"]) == 2


# ---------------------------------------------------------------------------------------------
# write_lock / read_lock


@pytest.mark.parametrize(
    "lock_name, req_name",
    [
        ("pylock.toml", "requirements.txt"),
        ("pylock.gpu.toml", "requirements.gpu.txt"),
        ("pylock.rhel8-py311.toml", "requirements.rhel8-py311.txt"),
        ("custom.toml", "requirements.txt"),
    ],
)
def test_write_lock_paths(tmp_path: Path, lock_name: str, req_name: str) -> None:
    out = tmp_path / "out" / lock_name
    lock_path, req_path = write_lock(TWO, out)
    assert lock_path == out and req_path == tmp_path / "out" / req_name
    assert lock_path.is_file() and req_path.is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted({lock_name, req_name})  # no temp files left
    Pylock.from_dict(tomllib.loads(lock_path.read_text()))
    assert req_path.read_text() == requirements_of(TWO)


def test_write_lock_replaces_and_failure_keeps_old(tmp_path: Path) -> None:
    out = tmp_path / "pylock.toml"
    write_lock(ONE, out)
    first = out.read_text()
    write_lock(TWO, out)
    second = out.read_text()
    assert first != second
    with pytest.raises(BadInput):
        write_lock(make_plan((LINUX, [pin("a", "1.0", sha256=None)])), out)
    assert out.read_text() == second  # nothing half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pylock.toml", "requirements.txt"]


def test_write_lock_os_error_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").mkdir()  # cannot be replaced by a file
    with pytest.raises(BadInput, match="cannot write"):
        write_lock(ONE, tmp_path / "pylock.toml")
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


@pytest.mark.parametrize("plan", [ONE, TWO], ids=["one-target", "two-targets"])
def test_read_lock_round_trip(tmp_path: Path, plan: Plan) -> None:
    lock_path, _ = write_lock(plan, tmp_path / "pylock.toml")
    lock = read_lock(lock_path)
    assert lock.profiles == tuple(t.profile for t in plan.targets)
    assert lock.requirements == plan.requirements
    for target in plan.targets:
        got = {(pkg.name, pkg.version, w.filename, w.sha256, w.size, w.upload_time, w.url)
               for pkg, w in lock.for_target(target.profile.name)}
        want = {(p.name, p.version, p.link.filename, p.link.sha256, p.link.size, p.link.upload_time,
                 p.link.url.replace("alice:s3cret@", "")) for p in target.pins}
        assert got == want
    assert lock.for_target("nonexistent") == []


def test_read_lock_markers_and_index(tmp_path: Path) -> None:
    lock = read_lock(write_lock(TWO, tmp_path / "pylock.toml")[0])
    pk = {p.name: p for p in lock.packages}
    assert pk["colorama"].marker == target_marker(WINDOWS)
    assert pk["requests"].marker is None
    assert pk["requests"].index == "https://idx.example/simple/"
    assert pk["colorama"].targets == {"win": "colorama-0.4.6-py2.py3-none-any.whl"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("not = [toml", "not valid TOML"),
        ('lock-version = "1.0"\ncreated-by = "x"\npackages = []\n', "was not written by wheelhouse"),
        ('lock-version = "9.0"\ncreated-by = "x"\n', "not a valid PEP 751 lock"),
        ('created-by = "x"\n', "not a valid PEP 751 lock"),
    ],
)
def test_read_lock_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text(text)
    with pytest.raises(BadInput, match=message):
        read_lock(path)


def test_read_lock_missing(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="cannot read lock"):
        read_lock(tmp_path / "pylock.toml")
