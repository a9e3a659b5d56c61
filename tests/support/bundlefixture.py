"""Build unpacked bundle directories by hand, as ``wheelhouse pack`` lays them out.

For the installer tests: they need real, hash-consistent bundles without going through the
planner or the packer. bundle.json is written by the real writer (``bundler.manifest.Manifest``),
with each wheel's dependency data read from its METADATA as pack does, so the installer is tested
against the format the builder produces. ``pip_wheel_from_installed`` makes a bootstrap pip wheel
with no network by zipping an installed pip back into a wheel.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # bundler is imported where it is used
    from bundler.manifest import BundledPackage
    from bundler.profile import Profile

ROOT = Path(__file__).resolve().parents[2]
TARGET_DIR = ROOT / "bundler" / "_target"
SCRIPTS = ("install.sh", "install.py", "capture_profile.py")

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# Written by installers, not part of a wheel.
_INSTALL_ONLY = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def pip_wheel_from_installed(dest_dir: Path, site_packages: Path | None = None) -> Path:
    """Zip an installed ``pip/`` and its ``pip-*.dist-info`` into ``pip-<ver>-py3-none-any.whl``.

    ``site_packages`` defaults to the one holding the pip importable here. The RECORD is
    regenerated with sha256 entries; byte-compiled files and installer-only files are left out.
    """
    if site_packages is None:
        import pip

        site_packages = Path(pip.__file__).resolve().parent.parent
    infos = sorted(site_packages.glob("pip-*.dist-info"))
    if len(infos) != 1:
        raise RuntimeError(f"expected one pip-*.dist-info in {site_packages}, found {infos}")
    dist_info = infos[0]
    version = dist_info.name[len("pip-") : -len(".dist-info")]

    entries: list[tuple[str, bytes]] = []
    for base in (site_packages / "pip", dist_info):
        for path in sorted(base.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
                continue
            if path.parent == dist_info and path.name in _INSTALL_ONLY:
                continue
            entries.append((path.relative_to(site_packages).as_posix(), path.read_bytes()))
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for arcname, data in entries:
        writer.writerow([arcname, _record_hash(data), len(data)])
    writer.writerow([f"{dist_info.name}/RECORD", "", ""])
    entries.append((f"{dist_info.name}/RECORD", record.getvalue().encode()))

    dest_dir.mkdir(parents=True, exist_ok=True)
    wheel = dest_dir / f"pip-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for arcname, data in entries:
            info = zipfile.ZipInfo(arcname, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data, compresslevel=1)
    return wheel


def host_uv_platform() -> str:
    """The platform tag part uv's own wheel would carry on this host (``manylinux_2_17_x86_64.manylinux2014_x86_64``
    on glibc x86_64, as uv publishes it), else this interpreter's most specific platform."""
    from packaging.tags import sys_tags

    platforms = [t.platform for t in sys_tags() if t.platform != "any"]
    for plat in platforms:
        if plat.startswith("manylinux_2_17_"):
            return f"{plat}.manylinux2014_{plat[len('manylinux_2_17_'):]}"
    return platforms[0]


def uv_wheel_from_installed(dest_dir: Path, uv_bin: str | None = None) -> Path:
    """A valid ``uv-<ver>-py3-none-<host platform>.whl`` around the installed uv binary, laid out as
    uv publishes it (the binary under ``uv-<ver>.data/scripts/uv``), with a sha256 RECORD."""
    if uv_bin is None:
        import uv

        uv_bin = uv.find_uv_bin()
    out = subprocess.run([uv_bin, "--version"], capture_output=True, text=True, check=True).stdout
    version = out.split()[1]
    tag = f"py3-none-{host_uv_platform()}"
    info = f"uv-{version}.dist-info"
    meta = f"Metadata-Version: 2.4\nName: uv\nVersion: {version}\nRequires-Python: >=3.8\n"
    wheel_txt = f"Wheel-Version: 1.0\nGenerator: wheelhouse-tests\nRoot-Is-Purelib: false\nTag: {tag}\n"
    entries = [(f"uv-{version}.data/scripts/uv", Path(uv_bin).read_bytes(), 0o755),
               ("uv/__init__.py", b"", 0o644), (f"{info}/METADATA", meta.encode(), 0o644),
               (f"{info}/WHEEL", wheel_txt.encode(), 0o644)]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data, _ in entries) + f"{info}/RECORD,,\n"
    entries.append((f"{info}/RECORD", record.encode(), 0o644))
    dest_dir.mkdir(parents=True, exist_ok=True)
    wheel = dest_dir / f"uv-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for arcname, data, mode in entries:
            zi = zipfile.ZipInfo(arcname, date_time=_ZIP_EPOCH)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = (0o100000 | mode) << 16
            zf.writestr(zi, data, compresslevel=1)
    return wheel


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wheel_name_version(filename: str) -> tuple[str, str]:
    parts = filename[: -len(".whl")].split("-")
    return parts[0], parts[1]


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def file_entries(bundle: Path) -> dict[str, dict[str, Any]]:
    """``files`` of bundle.json: every file under ``bundle`` except bundle.json, sorted."""
    out = {}
    for path in sorted(bundle.rglob("*")):
        rel = path.relative_to(bundle).as_posix()
        if path.is_file() and rel != "bundle.json" and "__pycache__" not in path.parts:
            out[rel] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    return out


def rewrite_manifest(bundle: Path, **changes: Any) -> dict[str, Any]:
    """Update bundle.json: apply ``changes`` to its top level and recompute ``files``."""
    manifest_path = bundle / "bundle.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.update(changes)
    manifest["files"] = file_entries(bundle)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _bundled_package(wheel: Path) -> BundledPackage:
    """A package entry as pack makes it: name and version from the file name, dependencies from METADATA."""
    from bundler.manifest import BundledPackage
    from bundler.wheelmeta import metadata_from_zip, parse_metadata

    project, version = _wheel_name_version(wheel.name)
    with open(wheel, "rb") as f:
        meta = parse_metadata(metadata_from_zip(f, project))
    return BundledPackage(name=_normalize(project), version=version, wheel=f"wheels/{wheel.name}",
                          requires_dist=tuple(str(r) for r in meta.requires_dist), requires_python=meta.requires_python)


def write_bundle(
    bundle: Path,
    *,
    wheels: Sequence[Path],
    pip_wheel: Path,
    targets: Iterable[tuple[str, Profile | Mapping[str, Any]]],
    smoke: Sequence[str] = (),
    name: str = "default",
    pip_in_requirements: bool = False,
    uv_wheel: Path | None = None,
) -> dict[str, Any]:
    """Lay out an unpacked bundle at ``bundle`` and return its manifest.

    Every target (``(name, profile)``, a Profile or its dict) installs all of ``wheels``; all share
    one requirements.txt. The installer scripts are copied from ``bundler/_target``.
    """
    from bundler.manifest import BundledTarget, Manifest
    from bundler.profile import Profile

    bundle.mkdir(parents=True)
    for script in SCRIPTS:
        shutil.copy2(TARGET_DIR / script, bundle / script)
    (bundle / "install.sh").chmod(0o755)
    wheels_dir = bundle / "wheels"
    wheels_dir.mkdir()
    copied = [Path(shutil.copy2(w, wheels_dir / w.name)) for w in [*wheels, pip_wheel]]
    uv_copy = Path(shutil.copy2(uv_wheel, wheels_dir / uv_wheel.name)) if uv_wheel is not None else None
    *package_wheels, pip_copy = copied
    locked = package_wheels + ([pip_copy] if pip_in_requirements else [])

    lines = ["--only-binary :all:"]
    packages = [_bundled_package(wheel) for wheel in locked]
    for wheel, p in zip(locked, packages):
        lines.append(f"{p.name}=={p.version} \\")
        lines.append(f"    --hash=sha256:{sha256_file(wheel)}")
    (bundle / "requirements.txt").write_text("\n".join(lines) + "\n")

    pylock = ['lock-version = "1.0"', 'created-by = "wheelhouse-tests"', ""]
    for p in packages:
        pylock += ["[[packages]]", f'name = "{p.name}"', f'version = "{p.version}"', ""]
    (bundle / "pylock.toml").write_text("\n".join(pylock))

    simple = bundle / "simple"
    simple.mkdir()
    projects: dict[str, list[Path]] = {}
    for wheel in copied + ([uv_copy] if uv_copy is not None else []):
        projects.setdefault(_normalize(_wheel_name_version(wheel.name)[0]), []).append(wheel)
    root_links = "".join(f'<a href="{p}/">{p}</a>\n' for p in sorted(projects))
    (simple / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{root_links}</body></html>\n")
    for project, files in projects.items():
        (simple / project).mkdir()
        links = "".join(
            f'<a href="../../wheels/{html.escape(w.name)}#sha256={sha256_file(w)}">{html.escape(w.name)}</a>\n'
            for w in files
        )
        (simple / project / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")

    sums = [f"{sha256_file(p)}  {p.relative_to(bundle).as_posix()}" for p in sorted(bundle.rglob("*")) if p.is_file()]
    (bundle / "SHA256SUMS").write_text("\n".join(sums) + "\n")

    manifest = Manifest(
        name=name,
        tool="wheelhouse 0.1.0",
        lock_sha256=sha256_file(bundle / "pylock.toml"),
        created="2025-06-01T00:00:00Z",
        smoke=tuple(smoke),
        requirements=tuple(p.name for p in packages),
        targets=tuple(
            BundledTarget(
                name=target_name,
                profile=profile if isinstance(profile, Profile) else Profile.from_dict(profile, origin=target_name),
                pip=f"wheels/{pip_copy.name}",
                packages=tuple(packages),
                uv=f"wheels/{uv_copy.name}" if uv_copy is not None else None,
            )
            for target_name, profile in targets
        ),
        files={rel: (e["size"], e["sha256"]) for rel, e in file_entries(bundle).items()},
    )
    data = manifest.to_json()
    (bundle / "bundle.json").write_bytes(data)
    return json.loads(data)


def offline_prefix() -> list[str] | None:
    """A command prefix that runs its command with no network at all (``unshare -n``), or None."""
    for prefix in (["unshare", "-n"], ["unshare", "-r", "-n"]):
        try:
            if subprocess.run([*prefix, "true"], check=False, capture_output=True, timeout=10).returncode == 0:
                return prefix
        except (OSError, subprocess.SubprocessError):
            pass
    return None
