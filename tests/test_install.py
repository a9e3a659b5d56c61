"""The target-side installer (bundler/_target/install.sh + install.py), run for real.

Bundles are laid out by hand (tests/support/bundlefixture.py) with generated wheels and a bootstrap pip
wheel zipped from the installed pip. Installs run ``sh install.sh`` under ``unshare -n`` (no
network at all) with this suite's Python 3.11 and with a pyenv CPython 3.12, from another
directory than the bundle, with pip and proxy settings in the environment that must be ignored.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import py_compile
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.bundlefixture import (
    TARGET_DIR,
    offline_prefix,
    pip_wheel_from_installed,
    rewrite_manifest,
    write_bundle,
)
from support.pythons import pyenv_python
from support.wheelgen import make_wheel

from bundler._target import capture_profile as cap
from bundler._target import install as inst
from bundler.profile import profile_for_platform

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the installer tests build glibc Linux bundles for this machine",
)

ARCH = platform.machine()
PY311 = Path(sys.executable)


OFFLINE = offline_prefix()
needs_offline = pytest.mark.skipif(OFFLINE is None, reason="no network namespace: 'unshare -n true' fails here")

# Settings that would break or redirect the install if they reached pip or the smoke tests.
HOSTILE_ENV = {
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
    "PIP_FIND_LINKS": "/nonexistent",
    "PIP_TARGET": "/nonexistent/target",
    "PIP_USER": "1",
    "pip_no_deps": "0",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "All_Proxy": "socks5://127.0.0.1:9",
}


@pytest.fixture(scope="session")
def pip_wheel(tmp_path_factory) -> Path:
    return pip_wheel_from_installed(tmp_path_factory.mktemp("pip"))


def _package_wheels(dest: Path, py: str, extra: tuple[tuple[str, str], ...] = (), pure: bool = False) -> list[Path]:
    """alpha needs beta and gamma; beta is py2.py3; gamma is an abi3 manylinux wheel for ``py``
    (or ``py3-none-any`` when ``pure``)."""
    nodot = py.replace(".", "")
    gamma_tag = "py3-none-any" if pure else f"cp{nodot}-abi3-manylinux_2_17_{ARCH}.manylinux2014_{ARCH}"
    wheels = [
        make_wheel(dest, "alpha", "1.0", requires_dist=["beta>=2", "gamma"]),
        make_wheel(dest, "beta", "2.1", tag="py2.py3-none-any"),
        make_wheel(dest, "gamma", "0.3", tag=gamma_tag),
    ]
    wheels += [make_wheel(dest, name, "1.0", tag=tag) for name, tag in extra]
    return wheels


def make_bundle(
    tmp: Path,
    pip_wheel: Path,
    *,
    py: str = "3.11",
    where: str = "bundle/default",
    platform_name: str | None = None,
    extra_wheels: tuple[tuple[str, str], ...] = (),
    targets: tuple[tuple[str, str, str], ...] | None = None,
    smoke: tuple[str, ...] = ("import alpha, beta, gamma; print('smoke', alpha.__version__)",),
    pip_in_requirements: bool = False,
    pure: bool = False,
) -> Path:
    """A bundle directory at ``tmp/where``; ``targets`` is ((name, platform, python version), ...).

    With ``pure`` every wheel is ``py*-none-any``: only the profile's facts tie it to a platform.
    """
    if targets is None:
        targets = ((f"cp{py.replace('.', '')}-linux", platform_name or f"{ARCH}-manylinux_2_28", py),)
    wheels = _package_wheels(tmp / "src", py, extra_wheels, pure=pure)
    bundle = tmp / where
    write_bundle(
        bundle,
        wheels=wheels,
        pip_wheel=pip_wheel,
        targets=[(name, profile_for_platform(plat, version).to_dict()) for name, plat, version in targets],
        smoke=smoke,
        pip_in_requirements=pip_in_requirements,
    )
    return bundle


def run_install(
    bundle: Path,
    *args: str,
    python: Path | str | None = PY311,
    offline: bool = False,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``sh BUNDLE/install.sh --python PY ARGS`` from another directory than the bundle."""
    argv = ["sh", str(bundle / "install.sh"), *args]
    if python is not None:
        argv[2:2] = ["--python", str(python)]
    if offline:
        assert OFFLINE is not None
        argv = [*OFFLINE, *argv]
    full_env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PIP_")}
    full_env.update(env or {})
    return subprocess.run(
        argv, cwd=cwd or bundle.parent, env=full_env, capture_output=True, text=True, timeout=180, check=False
    )


def default_venv(bundle: Path) -> Path:
    """Where install.sh makes its venv without --venv: next to the bundle directory."""
    return bundle.parent / (bundle.name + ".venv")


def tree(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


def venv_run(venv: Path, code: str) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60, cwd=venv, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


# ---------------------------------------------------------------------------------------
# Offline installs


@pytest.fixture(scope="module")
def installed_311(tmp_path_factory, pip_wheel):
    """A bundle with a space in its path, installed offline once with Python 3.11 from elsewhere."""
    tmp = tmp_path_factory.mktemp("py311")
    if OFFLINE is None:
        pytest.skip("no network namespace: 'unshare -n true' fails here")
    bundle = make_bundle(tmp, pip_wheel, where="my bundles/default bundle")
    (tmp / "elsewhere").mkdir()
    # A module on PYTHONPATH that shadows alpha: the smoke test fails if PYTHONPATH leaks through.
    (tmp / "shadow").mkdir()
    (tmp / "shadow" / "alpha.py").write_text("raise ImportError('PYTHONPATH leaked into the smoke test')\n")
    (tmp / "pip.conf").write_text("[global]\nindex-url = http://127.0.0.1:9/simple\nno-index = false\n")
    env = {**HOSTILE_ENV, "PYTHONPATH": str(tmp / "shadow"), "PIP_CONFIG_FILE": str(tmp / "pip.conf")}
    result = run_install(bundle, offline=True, cwd=tmp / "elsewhere", env=env)
    return bundle, result, env


@needs_offline
def test_offline_install_py311(installed_311):
    bundle, result, _ = installed_311
    assert result.returncode == 0, result.stdout + result.stderr
    venv = default_venv(bundle)
    assert "Successfully installed alpha-1.0 beta-2.1 gamma-0.3" in result.stdout
    assert "smoke 1.0" in result.stdout
    assert f"installed bundle 'default' (target 'cp311-linux') into {venv}" in result.stdout
    assert "3 packages" in result.stdout
    assert "bin/activate" in result.stdout
    assert venv_run(venv, "import alpha, beta, gamma, sys; print(alpha.__version__, beta.__version__, gamma.__version__, sys.version_info[:2])") == (
        "1.0 2.1 0.3 (3, 11)\n"
    )
    # The venv got a working pip: the bundled one.
    assert venv_run(venv, "import pip; print(pip.__version__)").strip() == pip_version_of(bundle)
    # Nothing landed in the bundle: no venv, no __pycache__ next to install.py.
    assert not (bundle / "__pycache__").exists() and not (bundle / "venv").exists()


def pip_version_of(bundle: Path) -> str:
    (pip_whl,) = (bundle / "wheels").glob("pip-*.whl")
    return pip_whl.name.split("-")[1]


@needs_offline
def test_rerun_is_harmless(installed_311):
    bundle, first, env = installed_311
    assert first.returncode == 0, first.stderr
    venv = default_venv(bundle)
    before = (venv / "pyvenv.cfg").stat().st_mtime_ns
    # Without --venv, the venv found at the default place is not reused: refused before anything runs.
    refused = run_install(bundle, offline=True, cwd=bundle.parent, env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"install.sh: error: {venv} already exists" in refused.stderr
    assert f"install.sh --venv '{venv}'" in refused.stderr and f"rm -rf '{venv}'" in refused.stderr
    assert refused.stdout == ""
    # Named with --venv, it is reused.
    again = run_install(bundle, "--venv", str(venv), offline=True, cwd=bundle.parent, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"reusing the venv {venv}" in again.stdout
    assert "Requirement already satisfied: alpha==1.0" in again.stdout
    assert "Successfully installed" not in again.stdout
    assert (venv / "pyvenv.cfg").stat().st_mtime_ns == before
    # --check-only still passes: the venv is not inside the bundle directory.
    assert run_install(bundle, "--check-only").returncode == 0


@needs_offline
def test_smoke_failure_exits_1_and_keeps_the_venv(installed_311):
    bundle, first, env = installed_311
    assert first.returncode == 0, first.stderr
    manifest_path = bundle / "bundle.json"
    original = manifest_path.read_text()
    try:
        manifest = json.loads(original)
        manifest["smoke"] = ["import alpha", "import no_such_module_here"]
        manifest_path.write_text(json.dumps(manifest))
        result = run_install(bundle, "--venv", str(default_venv(bundle)), offline=True, env=env)
    finally:
        manifest_path.write_text(original)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()
    assert last[-1].startswith("install.sh: error: smoke test failed (exit status 1): import no_such_module_here")
    assert "left for inspection" in last[-1]
    assert "Traceback" in result.stderr  # the smoke command's own, not ours
    assert (default_venv(bundle) / "bin" / "python").exists()


@needs_offline
def test_offline_install_py312_into_venv_outside_the_bundle(tmp_path, pip_wheel):
    py312 = pyenv_python("3.12")
    if py312 is None:
        pytest.skip("no pyenv CPython 3.12")
    bundle = make_bundle(tmp_path, pip_wheel, py="3.12")
    venv = tmp_path / "venv 312"
    result = run_install(bundle, "--venv", str(venv), python=py312, offline=True, cwd=tmp_path, env=HOSTILE_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "target 'cp312-linux'" in result.stdout
    assert not (bundle / "venv").exists()
    assert venv_run(venv, "import alpha, gamma, sys; print(gamma.__version__, sys.version_info[:2])") == "0.3 (3, 12)\n"
    assert venv_run(venv, "import pip; print(pip.__version__)").strip() == pip_version_of(bundle)


@needs_offline
def test_failed_pip_install_leaves_no_venv(tmp_path, pip_wheel):
    bundle = make_bundle(tmp_path, pip_wheel)
    # A consistent bundle whose lock pins a hash no wheel has: pip refuses, hashes are required.
    req = bundle / "requirements.txt"
    text = req.read_text()
    req.write_text(re.sub(r"(beta==2\.1 \\\n    --hash=sha256:)[0-9a-f]{64}", r"\g<1>" + "0" * 64, text))
    rewrite_manifest(bundle)
    result = run_install(bundle, offline=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "install.sh: error: pip install failed (exit status 1)"
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in result.stderr
    assert not default_venv(bundle).exists()


# ---------------------------------------------------------------------------------------
# Refusals: nothing is created


def assert_refused(result, bundle: Path, before: list[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("install.sh: error: ")
    assert tree(bundle) == before
    return result.stderr


def test_refuses_another_python_version(tmp_path, pip_wheel):
    bundle = make_bundle(tmp_path, pip_wheel, py="3.12")
    before = tree(bundle)
    err = assert_refused(run_install(bundle), bundle, before)
    first = err.splitlines()[0]
    mine = platform.python_version()
    assert f"this bundle is for CPython 3.12 on Linux {ARCH} (glibc ≥ 2.28); this machine runs CPython {mine} on Linux {ARCH}" in first
    assert re.search(r"gamma-0\.3-cp312-abi3-\S+\.whl: built for cp312; this machine runs CPython 3\.11", err)
    assert "--python PATH" in err


@pytest.mark.parametrize(
    ("case", "extra", "plat", "expected"),
    [
        ("windows wheel", (("delta", "cp311-cp311-win_amd64"),), None,
         r"delta-1\.0-cp311-cp311-win_amd64\.whl: built for Windows \(win_amd64\); this machine runs Linux"),
        ("windows profile", (), "x86_64-pc-windows-msvc",
         r"this bundle is for CPython 3\.11 on Windows x86_64; this machine runs CPython 3\.11\.\d+ on Linux"),
        ("glibc too old", (("delta", f"cp311-cp311-manylinux_2_99_{ARCH}"),), None,
         r"delta-1\.0-\S+\.whl: needs glibc ≥ 2\.99; this machine has glibc \d+\.\d+"),
        ("other arch", (("delta", "cp311-cp311-manylinux_2_17_ppc64le.manylinux2014_ppc64le"),), None,
         rf"delta-1\.0-\S+\.whl: built for ppc64le; this machine is {ARCH}"),
    ],
)
def test_refuses_another_platform(tmp_path, pip_wheel, case, extra, plat, expected):
    bundle = make_bundle(tmp_path, pip_wheel, extra_wheels=extra, platform_name=plat)
    before = tree(bundle)
    err = assert_refused(run_install(bundle), bundle, before)
    assert re.search(expected, err), err


def test_picks_the_target_that_fits_among_several(tmp_path, pip_wheel):
    targets = (("cp312-linux", f"{ARCH}-manylinux_2_28", "3.12"), ("cp311-linux", f"{ARCH}-manylinux_2_17", "3.11"))
    bundle = make_bundle(tmp_path, pip_wheel, targets=targets)
    result = run_install(bundle, "--check-only")
    assert result.returncode == 0, result.stderr
    assert "target 'cp311-linux' fits this machine" in result.stdout

    py38 = pyenv_python("3.8")
    if py38 is not None:
        err = assert_refused(run_install(bundle, "--check-only", python=py38), bundle, tree(bundle))
        assert "none of this bundle's 2 targets fits this machine; the closest, 'cp311-linux'" in err
        assert "this machine runs CPython 3.8." in err


def _this_glibc() -> str:
    return ".".join(platform.libc_ver()[1].split(".")[:2])


def test_refuses_a_musl_bundle_of_pure_wheels_on_glibc(tmp_path, pip_wheel):
    # Every wheel would install (py3-none-any), but the bundle was resolved for a musl machine.
    bundle = make_bundle(tmp_path, pip_wheel, platform_name=f"{ARCH}-musllinux_1_2", pure=True)
    before = tree(bundle)
    err = assert_refused(run_install(bundle, "--check-only"), bundle, before)
    assert f"this bundle is for CPython 3.11 on Linux {ARCH} (musl ≥ 1.2); this machine runs CPython" in err
    assert f"the C library differs: this bundle is for Linux {ARCH} with musl 1.2; this machine has glibc {_this_glibc()}" in err
    assert "cannot install here" not in err  # the wheels themselves are fine


def test_pure_bundle_for_a_newer_glibc_installs_on_an_older_one(tmp_path, pip_wheel):
    # The profile says glibc 2.99, but no wheel needs more than this machine's glibc: the wheels decide.
    bundle = make_bundle(tmp_path, pip_wheel, platform_name=f"{ARCH}-manylinux_2_99", pure=True)
    result = run_install(bundle, "--check-only")
    assert result.returncode == 0, result.stderr
    assert "target 'cp311-linux' fits this machine" in result.stdout
    assert f"(glibc {_this_glibc()})" in result.stdout


def _append_marker_code(path: Path, marker: Path) -> None:
    with path.open("a") as f:
        f.write(f"\nopen({str(marker)!r}, 'w').write('x')\n")


def test_tampered_capture_profile_is_refused_before_it_runs(tmp_path, pip_wheel):
    bundle = make_bundle(tmp_path, pip_wheel)
    script = bundle / "capture_profile.py"
    expected = json.loads((bundle / "bundle.json").read_text())["files"]["capture_profile.py"]["sha256"]
    marker = tmp_path / "PWNED"
    _append_marker_code(script, marker)
    actual = hashlib.sha256(script.read_bytes()).hexdigest()
    before = tree(bundle)
    err = assert_refused(run_install(bundle, "--check-only"), bundle, before)
    assert not marker.exists(), "capture_profile.py ran before it was verified"
    first = err.splitlines()[0]
    assert first.startswith(f"install.sh: error: bundle verification failed: capture_profile.py: expected sha256 {expected}")
    assert f"found sha256 {actual}" in first
    assert "refusing to run it" in first


def test_capture_profile_missing_from_the_manifest_is_refused(tmp_path, pip_wheel):
    bundle = make_bundle(tmp_path, pip_wheel)
    marker = tmp_path / "PWNED"
    _append_marker_code(bundle / "capture_profile.py", marker)
    manifest = rewrite_manifest(bundle)  # consistent with the tampered file ...
    del manifest["files"]["capture_profile.py"]  # ... except that it is not listed
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    actual = hashlib.sha256((bundle / "capture_profile.py").read_bytes()).hexdigest()
    before = tree(bundle)
    err = assert_refused(run_install(bundle, "--check-only"), bundle, before)
    assert not marker.exists()
    assert f"capture_profile.py is not listed in bundle.json (found sha256 {actual}" in err


def test_bytecode_next_to_capture_profile_is_never_run(tmp_path, pip_wheel):
    # An unchecked-hash .pyc would be loaded whatever the source says, and verification does
    # not look into __pycache__: the installer must run the verified source, not bytecode.
    bundle = make_bundle(tmp_path, pip_wheel)
    script = bundle / "capture_profile.py"
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil_capture_profile.py"
    evil.write_text(script.read_text())
    _append_marker_code(evil, marker)
    pyc = Path(importlib.util.cache_from_source(str(script)))
    py_compile.compile(str(evil), cfile=str(pyc), dfile=str(script), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    result = run_install(bundle, "--check-only")
    assert result.returncode == 0, result.stderr
    assert not marker.exists(), "bytecode from the bundle's __pycache__ ran"


@pytest.mark.parametrize("via_python_option", [False, True], ids=["direct", "rerun-under---python"])
def test_direct_run_does_not_import_modules_from_the_bundle(tmp_path, pip_wheel, via_python_option):
    # Without install.sh (and its -I), the bundle directory would come first on sys.path.
    bundle = make_bundle(tmp_path, pip_wheel)
    marker = tmp_path / "PWNED"
    (bundle / "json.py").write_text(f"open({str(marker)!r}, 'w').write('x')\nraise ImportError('shadowed')\n")
    argv = [sys.executable, str(bundle / "install.py"), "--check-only"]
    if via_python_option:
        argv[2:2] = ["--python", sys.executable]
    result = subprocess.run(argv, cwd=bundle, capture_output=True, text=True, timeout=120, check=False)
    assert not marker.exists(), "json.py from the bundle directory was imported"
    assert result.returncode == 1, result.stdout + result.stderr
    assert "bundle verification failed: json.py: unexpected file (not listed in bundle.json)" in result.stderr


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_flipped_byte_in_a_wheel_is_refused(tmp_path, pip_wheel):
    bundle = make_bundle(tmp_path, pip_wheel)
    wheel = next((bundle / "wheels").glob("beta-*.whl"))
    expected = json.loads((bundle / "bundle.json").read_text())["files"][f"wheels/{wheel.name}"]["sha256"]
    flip_byte(wheel)
    actual = hashlib.sha256(wheel.read_bytes()).hexdigest()
    before = tree(bundle)
    err = assert_refused(run_install(bundle), bundle, before)
    assert f"bundle verification failed: wheels/{wheel.name}: expected sha256 {expected}" in err
    assert f"found sha256 {actual}" in err
    assert not (bundle / "venv").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("extra", "wheels/evil-6.6-py3-none-any.whl: unexpected file (not listed in bundle.json)"),
        ("missing", "simple/beta/index.html: missing (bundle.json lists it)"),
        ("both", "bundle verification failed: 2 problems"),
    ],
)
def test_extra_or_missing_file_is_refused(tmp_path, pip_wheel, change, message):
    bundle = make_bundle(tmp_path, pip_wheel)
    if change in ("extra", "both"):
        make_wheel(bundle / "wheels", "evil", "6.6")
    if change in ("missing", "both"):
        (bundle / "simple" / "beta" / "index.html").unlink()
    before = tree(bundle)
    err = assert_refused(run_install(bundle), bundle, before)
    assert message in err


def test_check_only_and_dry_run_create_nothing(tmp_path, pip_wheel):
    bundle = make_bundle(tmp_path, pip_wheel)
    before = tree(bundle)
    checked = run_install(bundle, "--check-only")
    assert checked.returncode == 0, checked.stderr
    assert "verified 15 files" in checked.stdout
    assert "check passed" in checked.stdout
    assert tree(bundle) == before

    dry = run_install(bundle, "--dry-run", "--venv", str(tmp_path / "v"))
    assert dry.returncode == 0, dry.stderr
    assert tree(bundle) == before
    assert not (tmp_path / "v").exists()
    lines = dry.stdout.splitlines()
    pip = f"{tmp_path / 'v' / 'bin' / 'python'} {bundle / 'wheels' / ('pip-' + pip_version_of(bundle) + '-py3-none-any.whl')}/pip"
    assert f"  {PY311} -m venv --without-pip {tmp_path / 'v'}" in lines
    assert (
        f"  {pip} install --no-index --find-links {bundle / 'wheels'} --require-hashes --only-binary :all: "
        f"--no-cache-dir --disable-pip-version-check --no-input -r {bundle / 'requirements.txt'}"
    ) in lines
    assert any(line.startswith(f"  {pip} install --no-index --no-deps ") for line in lines)
    assert f"  {pip} check --disable-pip-version-check" in lines
    assert any(line.startswith(f"  {tmp_path / 'v' / 'bin' / 'python'} -c 'import alpha") for line in lines)


def test_dry_run_with_pip_locked_does_not_install_pip_twice(tmp_path, pip_wheel):
    bundle = make_bundle(tmp_path, pip_wheel, pip_in_requirements=True)
    dry = run_install(bundle, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "--no-deps" not in dry.stdout
    assert " check --disable-pip-version-check" in dry.stdout


def test_refuses_a_venv_of_another_python(tmp_path, pip_wheel):
    bundle = make_bundle(tmp_path, pip_wheel)
    venv = tmp_path / "old venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.10.4\n")
    (venv / "bin" / "python").write_text("")
    result = run_install(bundle, "--venv", str(venv))
    assert result.returncode == 1
    assert f"install.sh: error: {venv} is a venv for Python 3.10; this installer runs Python 3.11" in result.stderr
    assert sorted(p.name for p in venv.iterdir()) == ["bin", "pyvenv.cfg"]

    (venv / "pyvenv.cfg").unlink()
    result = run_install(bundle, "--venv", str(venv))
    assert result.returncode == 1
    assert "exists and is not a virtual environment" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bogus",), "unrecognized arguments: --bogus"),
        (("--check-only", "--dry-run"), "not allowed with argument"),
        (("--venv",), "expected one argument"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, pip_wheel, args, message):
    bundle = make_bundle(tmp_path, pip_wheel)
    result = run_install(bundle, *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_python_option_without_value_exits_2(tmp_path):
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "install.sh").write_bytes((TARGET_DIR / "install.sh").read_bytes())
    result = run_install(bundle, "--python", python=None)
    assert result.returncode == 2
    assert "--python needs a path" in result.stderr


def test_refuses_without_a_valid_manifest(tmp_path, pip_wheel):
    bundle = make_bundle(tmp_path, pip_wheel)
    manifest = json.loads((bundle / "bundle.json").read_text())
    (bundle / "bundle.json").write_text(json.dumps({**manifest, "format-version": 2}))
    result = run_install(bundle, "--check-only")
    assert result.returncode == 1
    assert "bundle.json has format-version 2; this installer understands 1" in result.stderr

    (bundle / "bundle.json").unlink()
    result = run_install(bundle, "--check-only")
    assert result.returncode == 1
    assert "has no bundle.json: this is not an unpacked wheelhouse bundle" in result.stderr


@pytest.mark.parametrize("minor", ["3.6", "3.7"])
def test_install_sh_refuses_old_python(tmp_path, pip_wheel, minor):
    old = pyenv_python(minor)
    if old is None:
        pytest.skip(f"no pyenv CPython {minor}")
    bundle = make_bundle(tmp_path, pip_wheel)
    result = run_install(bundle, python=old)
    assert result.returncode == 1
    assert f"this bundle needs Python 3.8 or newer; {old} is Python {minor}." in result.stderr
    # install.py run directly says the same kind of thing instead of a syntax error.
    direct = subprocess.run([str(old), str(bundle / "install.py")], capture_output=True, text=True, check=False)
    assert direct.returncode == 1
    assert "this installer needs Python 3.8 or newer" in direct.stderr


@pytest.mark.parametrize("minor", ["3.8", "3.9", "3.10", "3.12", "3.13"])
def test_scripts_compile_on_every_supported_python(minor):
    python = pyenv_python(minor)
    if python is None:
        pytest.skip(f"no pyenv CPython {minor}")
    code = "import sys\nfor p in sys.argv[1:]:\n    compile(open(p, encoding='utf-8').read(), p, 'exec')\n"
    paths = [str(TARGET_DIR / "install.py"), str(TARGET_DIR / "capture_profile.py")]
    result = subprocess.run([str(python), "-c", code, *paths], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_check_only_on_python_38(tmp_path, pip_wheel):
    py38 = pyenv_python("3.8")
    if py38 is None:
        pytest.skip("no pyenv CPython 3.8")
    bundle = make_bundle(tmp_path, pip_wheel, py="3.8")
    before = tree(bundle)
    result = run_install(bundle, "--check-only", python=py38)
    assert result.returncode == 0, result.stderr
    assert "target 'cp38-linux' fits this machine (CPython 3.8." in result.stdout
    assert tree(bundle) == before


# ---------------------------------------------------------------------------------------
# The pure parts of install.py


def machine(**kw) -> inst.Machine:
    values = {
        "implementation": "cpython", "python_version": (3, 11, 4), "os": "linux", "arch": "x86_64",
        "libc": "glibc", "libc_version": "2.17", "macos_version": None,
        "tags": ["cp311-cp311-manylinux_2_17_x86_64", "cp311-abi3-manylinux_2_17_x86_64", "py3-none-any"],
    }
    values.update(kw)
    return inst.Machine(**values)


@pytest.mark.parametrize(
    ("filename", "tags"),
    [
        ("six-1.16.0-py2.py3-none-any.whl", {"py2-none-any", "py3-none-any"}),
        ("x-1.0-1build-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
         {"cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-manylinux2014_x86_64"}),
        ("X-1.0-CP311-abi3-Win_AMD64.whl", {"cp311-abi3-win_amd64"}),
    ],
)
def test_parse_wheel_filename(filename, tags):
    assert inst.parse_wheel_filename(filename)[2] == tags


@pytest.mark.parametrize(
    ("filename", "m", "problem"),
    [
        ("a-1-py3-none-any.whl", machine(), None),
        ("a-1-cp311-cp311-manylinux_2_28_x86_64.whl", machine(), "needs glibc ≥ 2.28; this machine has glibc 2.17"),
        ("a-1-cp311-cp311-manylinux_2_28_x86_64.manylinux_2_17_aarch64.whl", machine(),
         "needs glibc ≥ 2.28; this machine has glibc 2.17"),
        ("a-1-cp311-cp311-musllinux_1_2_x86_64.whl", machine(), "built for musl; this machine uses glibc"),
        ("a-1-cp311-cp311-manylinux2014_aarch64.whl", machine(), "built for aarch64; this machine is x86_64"),
        ("a-1-cp311-cp311-macosx_11_0_arm64.whl", machine(), "built for macOS ≥ 11.0; this machine runs Linux"),
        ("a-1-cp312-cp312-manylinux_2_17_x86_64.whl", machine(), "built for cp312; this machine runs CPython 3.11"),
        ("a-1-cp311-cp311d-manylinux_2_17_x86_64.whl", machine(), "built for the cp311d ABI; CPython 3.11 does not accept it"),
        ("a-1-cp311-cp311-win_amd64.whl", machine(), "built for Windows (win_amd64); this machine runs Linux"),
        ("a-1-cp311-cp311-linux_armv7l.whl", machine(), "built for armv7l; this machine is x86_64"),
        ("a-1-cp311-cp311-manylinux1_x86_64.whl", machine(), "manylinux1_x86_64 is not accepted by this interpreter"),
        ("a-1-cp311-cp311-manylinux2014_x86_64.whl", machine(libc_version="2.12"), "needs glibc ≥ 2.17; this machine has glibc 2.12"),
        ("a-1-cp311-cp311-macosx_11_0_arm64.whl", machine(os="macos", arch="aarch64", libc=None, libc_version=None,
                                                        macos_version="10.15"), "needs macOS ≥ 11.0; this machine has macOS 10.15"),
        ("a-1-cp311-cp311-macosx_11_0_x86_64.whl", machine(os="macos", arch="aarch64", libc=None, libc_version=None,
                                                         macos_version="14.0"), "built for x86_64; this machine is aarch64"),
    ],
)
def test_wheel_problem(filename, m, problem):
    got = inst.wheel_problem(filename, m, cap)
    assert (got.replace(">=", "≥") if got else got) == problem


def test_describe_target_and_machine():
    profile = profile_for_platform("x86_64-manylinux_2_28", "3.12").to_dict()
    geq = inst._geq()
    assert inst.describe_target(inst.target_info(profile)) == f"CPython 3.12 on Linux x86_64 (glibc {geq} 2.28)"
    assert inst.describe_machine(machine()) == "CPython 3.11.4 on Linux x86_64 (glibc 2.17)"
    mac = profile_for_platform("aarch64-apple-darwin", "3.12").to_dict()
    assert inst.describe_target(inst.target_info(mac)) == f"CPython 3.12 on macOS aarch64 (macOS {geq} 13.0)"


def test_child_env_is_scrubbed():
    env = inst.child_env({**HOSTILE_ENV, "PATH": "/bin", "PIP_CONFIG_FILE": "/etc/evil.conf", "PYTHONPATH": "/x", "LANG": "C.UTF-8"})
    assert env == {"PATH": "/bin", "LANG": "C.UTF-8", "PIP_CONFIG_FILE": os.devnull, "PYTHONNOUSERSITE": "1"}


def test_manifest_paths_must_stay_inside_the_bundle(tmp_path):
    for bad in ["/etc/passwd", "../x", "a/../b", "a//b", "a\\b", "C:/x", "bundle.json"]:
        (tmp_path / "bundle.json").write_text(json.dumps({
            "format": "wheelhouse-bundle", "format-version": 1, "files": {bad: {"size": 1, "sha256": "0" * 64}},
            "targets": [],
        }))
        with pytest.raises(inst.InstallError, match="refusing the path"):
            inst.load_manifest(str(tmp_path))


def test_strip_python_option():
    assert inst._strip_python_option(["--python", "/p", "--dry-run", "--python=/q", "--venv", "v"]) == ["--dry-run", "--venv", "v"]


class FakeCapture:
    def __init__(self, driver):
        self.driver = driver

    def nvidia_driver_version(self):
        return self.driver


@pytest.mark.parametrize(
    ("wanted", "here", "warning"),
    [
        (None, None, None),
        ("535.104.05", "550.54.14", None),
        ("535.104.05", None, "none was found here"),
        ("535.104.05", "470.1", "this machine has 470.1, which may be too old"),
    ],
)
def test_nvidia_driver_warning(wanted, here, warning):
    facts = {"nvidia-driver": wanted} if wanted else {}
    check = inst.TargetCheck({"profile": {"facts": facts}}, None, [], [])
    got = inst.nvidia_warning(check, FakeCapture(here))
    assert (got is None) if warning is None else (warning in got)


def _target(platform_name: str, py: str = "3.11", wheels: tuple[str, ...] = ("beta-2.1-py2.py3-none-any.whl",)) -> dict:
    return {
        "name": platform_name,
        "profile": profile_for_platform(platform_name, py).to_dict(),
        "requirements": "requirements.txt",
        "pip": "wheels/pip-24.0-py3-none-any.whl",
        "packages": [{"name": w.split("-")[0], "wheel": "wheels/" + w} for w in wheels],
    }


MUSL_MACHINE = {
    "libc": "musl", "libc_version": "1.2",
    "tags": ["cp311-cp311-musllinux_1_2_x86_64", "cp311-abi3-musllinux_1_2_x86_64", "py3-none-any"],
}


@pytest.mark.parametrize(
    ("platform_name", "here", "sentence"),
    [
        ("x86_64-musllinux_1_2", {}, "is for Linux x86_64 with musl 1.2; this machine has glibc 2.17"),
        ("x86_64-manylinux_2_28", MUSL_MACHINE, "is for Linux x86_64 with glibc 2.28; this machine has musl 1.2"),
    ],
    ids=["musl target, glibc machine", "glibc target, musl machine"],
)
def test_libc_family_must_match_even_for_pure_wheels(platform_name, here, sentence):
    m = machine(**here)
    target = _target(platform_name)
    check = inst.check_target(target, m, cap)
    assert check.differences == ["libc"]
    assert check.bad_wheels == []  # every wheel is pure: only the libc family rules it out
    assert inst.libc_mismatch(check.info, m) == sentence
    with pytest.raises(inst.InstallError) as e:
        inst.choose_target({"targets": [target]}, m, cap)
    assert "the C library differs: this bundle " + sentence in e.value.details
    with pytest.raises(inst.InstallError) as e:
        inst.choose_target({"targets": [target, dict(target, name="other")]}, m, cap)
    assert "the C library differs: that target " + sentence in e.value.details


def test_pure_wheels_decide_the_glibc_version():
    # The profile says glibc >= 2.39; this machine has 2.17, and every wheel is pure: it fits.
    target = _target("x86_64-manylinux_2_39")
    assert inst.choose_target({"targets": [target]}, machine(libc_version="2.17"), cap).target is target
    # A wheel that needs the newer glibc is what refuses it.
    strict = _target("x86_64-manylinux_2_39", wheels=("delta-1.0-cp311-cp311-manylinux_2_39_x86_64.whl",))
    check = inst.check_target(strict, machine(libc_version="2.17"), cap)
    assert check.differences == []
    assert [os.path.basename(w) for w, _ in check.bad_wheels] == ["delta-1.0-cp311-cp311-manylinux_2_39_x86_64.whl"]


@pytest.mark.parametrize(
    ("platform_name", "here"),
    [
        ("x86_64-musllinux_1_2", {"libc": None, "libc_version": None}),  # libc unknown here: the wheels decide
        ("x86_64-manylinux_2_28", {"os": "macos", "libc": None, "libc_version": None, "macos_version": "14.0"}),
        ("x86_64-pc-windows-msvc", {}),
    ],
)
def test_libc_is_compared_only_between_known_linux_libcs(platform_name, here):
    m = machine(**here)
    info = inst.target_info(_target(platform_name)["profile"])
    assert inst.libc_mismatch(info, m) is None
    assert "libc" not in inst.check_target(_target(platform_name), m, cap).differences


def test_capture_module_is_checked_before_it_runs(tmp_path):
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').write('x')\nVALUE = 42\n".encode()
    (tmp_path / "capture_profile.py").write_bytes(code)
    entry = {"size": len(code), "sha256": hashlib.sha256(code).hexdigest()}
    for files, message in [
        ({}, "capture_profile.py is not listed in bundle.json"),
        ({"capture_profile.py": dict(entry, sha256="0" * 64)}, "capture_profile.py: expected sha256 " + "0" * 64),
        ({"capture_profile.py": dict(entry, size=len(code) - 1)}, f"found sha256 {entry['sha256']} ({len(code)} bytes)"),
    ]:
        with pytest.raises(inst.InstallError, match=re.escape(message)):
            inst.load_capture_module(str(tmp_path), files)
        assert not marker.exists()
    module = inst.load_capture_module(str(tmp_path), {"capture_profile.py": entry})
    assert module.VALUE == 42 and marker.exists()
    assert module.__file__ == str(tmp_path / "capture_profile.py")
