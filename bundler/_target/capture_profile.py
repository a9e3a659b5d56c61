#!/usr/bin/env python3
"""Capture a wheelhouse target profile on the target machine itself.

Copy this single file to the (air-gapped) target machine and run it with the Python
interpreter the wheelhouse will be installed with:

    python capture-profile.py                  # print the profile JSON to stdout
    python capture-profile.py -o target.json   # write it to a file (atomically)
    python capture-profile.py -o target.json --name build-box-py311

Then bring the JSON file back and pass it to ``wheelhouse --profile target.json``.

The profile records:

* the exact, ordered list of wheel tags a current pip accepts on this interpreter, computed
  by a built-in copy of pip's tag logic. The bundle installs with the modern pip it carries,
  not with the pip this interpreter may have, so that is the list that matters; the bundle's
  install.py checks the machine with the same list. The list of this interpreter's own pip,
  when there is one, is only counted (``system-pip-tags-count``): an old pip accepts far
  fewer tags (pip 18.1 knows no manylinux2010 or PEP 600 tags) and would narrow the lock
  for nothing. One ordering choice differs from pip 26: a wheel built on the very machine
  (linux_<arch>) ranks after the manylinux tags, as uv ranks it (and older pips did). ``--tags-from`` records another source instead, for comparison;
* the PEP 508 marker environment of this interpreter;
* a few facts: Python version, OS, architecture, libc and its version, macOS version and
  the NVIDIA driver version when there is one. The host name is never recorded.

This file only uses the standard library and runs on CPython 3.6 and newer, but wheelhouse
supports targets from Python 3.8 (MIN_TARGET_PYTHON): the bundle's installer needs 3.8. On 3.6
and 3.7 the capture still runs and says so. It never touches the network and changes nothing on
the machine (except the ``-o`` file).

The builder (``bundler/``) imports its constants from here (the profile format, the Python
floor, the architecture aliases, the legacy manylinux names), so the two sides cannot drift.
"""

from __future__ import print_function

import sys

if sys.version_info[0] < 3:  # pragma: no cover - keep this file parseable by Python 2
    sys.stderr.write(
        "capture-profile.py needs Python 3.6 or newer (this is Python %s); "
        "wheelhouse targets need Python 3.8 or newer\n" % sys.version.split()[0]
    )
    sys.exit(2)

import argparse
import collections
import datetime
import glob
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sysconfig
import tempfile
import warnings

PROFILE_FORMAT = "wheelhouse-profile"
PROFILE_FORMAT_VERSION = 1
CAPTURE_VERSION = "1"

# The oldest Python a wheelhouse target may run, and why. install.py carries the same number
# for its own first-line check (it runs before it may load this file); tests/test_parity.py
# checks that the two agree.
MIN_TARGET_PYTHON = (3, 8)
TARGET_PYTHON_REASON = "the bundle's installer needs Python %d.%d or newer on the target" % MIN_TARGET_PYTHON

# Where the recorded tags come from. "builtin" is what a current pip accepts (the bundled pip
# installs); "auto" is this interpreter's own pip, else its packaging, else builtin.
DEFAULT_TAGS_METHOD = "builtin"
TAGS_METHODS = ("builtin", "auto", "pip", "pip-vendored", "packaging")


# ---------------------------------------------------------------------------------------
# Small helpers


def _run(argv, timeout=5.0, env=None):
    """Run ``argv``; return (returncode, stdout, stderr) as text, or None if it cannot run."""
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            timeout=timeout,
            env=env,
        )
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return proc.returncode, proc.stdout or "", proc.stderr or ""


def _read_text(path, limit=65536):
    try:
        with open(path, "r") as f:
            return f.read(limit)
    except (OSError, UnicodeDecodeError):
        return None


def _version_nodot(version):
    return "".join(str(v) for v in version)


def _normalize_string(string):
    return string.replace(".", "_").replace("-", "_").replace(" ", "_")


def _is_32bit():
    return struct.calcsize("P") == 4


# ---------------------------------------------------------------------------------------
# ELF inspection of the interpreter (musl detection, 32-bit ARM/x86 ABI checks)


def elf_info(path):
    """Return a dict with the ELF class, byte order, machine, flags and program interpreter.

    Returns None when ``path`` is not a readable ELF file.
    """
    try:
        with open(path, "rb") as f:
            ident = f.read(16)
            if len(ident) < 16 or ident[:4] != b"\x7fELF":
                return None
            elf_class = ident[4]
            data = ident[5]
            if elf_class not in (1, 2) or data not in (1, 2):
                return None
            e = "<" if data == 1 else ">"
            if elf_class == 1:
                hdr_fmt, ph_fmt = e + "HHIIIIIHHHHHH", e + "IIIIIIII"
            else:
                hdr_fmt, ph_fmt = e + "HHIQQQIHHHHHH", e + "IIQQQQQQ"
            raw = f.read(struct.calcsize(hdr_fmt))
            if len(raw) != struct.calcsize(hdr_fmt):
                return None
            hdr = struct.unpack(hdr_fmt, raw)
            machine, phoff, flags, phentsize, phnum = hdr[1], hdr[4], hdr[6], hdr[8], hdr[9]
            interpreter = None
            ph_size = struct.calcsize(ph_fmt)
            for i in range(phnum):
                f.seek(phoff + phentsize * i)
                raw = f.read(ph_size)
                if len(raw) != ph_size:
                    break
                ph = struct.unpack(ph_fmt, raw)
                if ph[0] != 3:  # PT_INTERP
                    continue
                offset, size = (ph[1], ph[4]) if elf_class == 1 else (ph[2], ph[5])
                f.seek(offset)
                interpreter = f.read(size).rstrip(b"\0").decode("utf-8", "replace")
                break
    except (OSError, struct.error, ValueError):
        return None
    return {"class": elf_class, "data": data, "machine": machine, "flags": flags, "interpreter": interpreter}


def parse_musl_loader_output(text):
    """Parse the banner the musl loader prints (``musl libc (x86_64)`` / ``Version 1.2.4``).

    Returns ``(major, minor, full_version_string)`` or None.
    """
    lines = [n for n in (n.strip() for n in text.splitlines()) if n]
    if len(lines) < 2 or lines[0][:4] != "musl":
        return None
    m = re.match(r"Version (\d+)\.(\d+)((?:\.\d+)*)", lines[1])
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), m.group(1) + "." + m.group(2) + m.group(3)


def _musl_from_loader(loader):
    out = _run([loader], timeout=5.0)
    if out is None:
        return None
    return parse_musl_loader_output(out[2]) or parse_musl_loader_output(out[1])


def musl_version():
    """(major, minor, full) of the musl libc this interpreter runs on, or None."""
    info = elf_info(sys.executable)
    if info is not None:
        ld = info["interpreter"]
        if ld is None or "musl" not in ld:
            return None
        return _musl_from_loader(ld)
    # Could not read the interpreter binary: look for the system musl loader instead.
    if _glibc_version_string() is not None:
        return None
    for loader in sorted(glob.glob("/lib/ld-musl-*.so.1")):
        found = _musl_from_loader(loader)
        if found:
            return found
    return None


# ---------------------------------------------------------------------------------------
# glibc


def _glibc_version_string():
    """The glibc version string ("2.36") this interpreter runs on, or None."""
    try:
        version_string = os.confstr("CS_GNU_LIBC_VERSION")
        if version_string:
            name, version = version_string.rsplit(None, 1)
            if name == "glibc":
                return version
    except (AttributeError, OSError, ValueError):
        pass
    try:
        import ctypes
    except ImportError:
        ctypes = None
    if ctypes is not None:
        try:
            process_namespace = ctypes.CDLL(None)
            gnu_get_libc_version = process_namespace.gnu_get_libc_version
        except (OSError, AttributeError, TypeError):
            gnu_get_libc_version = None
        if gnu_get_libc_version is not None:
            gnu_get_libc_version.restype = ctypes.c_char_p
            version = gnu_get_libc_version()
            if isinstance(version, bytes):
                version = version.decode("ascii", "replace")
            if version:
                return version
    try:
        lib, version = platform.libc_ver()
    except Exception:  # platform.libc_ver reads the executable; be defensive
        return None
    if lib == "glibc" and version:
        return version
    return None


def _parse_glibc_version(version_str):
    m = re.match(r"(\d+)\.(\d+)", version_str or "")
    if not m:
        return (-1, -1)
    return (int(m.group(1)), int(m.group(2)))


# ---------------------------------------------------------------------------------------
# NVIDIA driver


def parse_nvidia_proc_version(text):
    """Return the driver version from the text of ``/proc/driver/nvidia/version``, or None.

    The first line looks like one of::

        NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023
        NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  (...)
    """
    if not text:
        return None
    for line in text.splitlines():
        if "Kernel Module" not in line:
            continue
        m = re.search(r"Kernel Module\b.*?\s(\d+\.\d+(?:\.\d+)*)(?=\s|$)", line)
        if m:
            return m.group(1)
    m = re.search(r"NVRM version:.*?\s(\d+\.\d+(?:\.\d+)*)(?=\s|$)", text)
    return m.group(1) if m else None


def _clean_driver_version(text):
    text = (text or "").strip()
    return text if re.match(r"^\d+(\.\d+)+$", text) else None


def nvidia_driver_version():
    """The loaded NVIDIA kernel driver version, or None when there is none."""
    version = _clean_driver_version(_read_text("/sys/module/nvidia/version"))
    if version:
        return version
    version = parse_nvidia_proc_version(_read_text("/proc/driver/nvidia/version"))
    if version:
        return version
    smi = None
    try:
        smi = shutil.which("nvidia-smi")
    except Exception:
        smi = None
    if smi is None and os.path.exists("/usr/lib/wsl/lib/nvidia-smi"):
        smi = "/usr/lib/wsl/lib/nvidia-smi"
    if smi is None:
        return None
    out = _run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], timeout=10.0)
    if out is None or out[0] != 0:
        return None
    for line in out[1].splitlines():
        version = _clean_driver_version(line)
        if version:
            return version
    return None


# ---------------------------------------------------------------------------------------
# macOS


def macos_version():
    """The real macOS version as (major, minor), or None when not on macOS."""
    if sys.platform != "darwin":
        return None
    version_str = platform.mac_ver()[0]
    try:
        version = tuple(int(p) for p in version_str.split(".")[:2])
    except ValueError:
        return None
    if version == (10, 16):
        # Built against an old SDK: ask again without the compatibility shim.
        env = dict(os.environ)
        env["SYSTEM_VERSION_COMPAT"] = "0"
        out = _run([sys.executable, "-sS", "-c", "import platform; print(platform.mac_ver()[0])"], env=env)
        if out is not None and out[0] == 0:
            try:
                version = tuple(int(p) for p in out[1].strip().split(".")[:2])
            except ValueError:
                pass
    if len(version) == 1:
        version = (version[0], 0)
    return version


# ---------------------------------------------------------------------------------------
# Built-in copy of pip's tag logic (pip's get_supported() with its vendored packaging.tags).
# Used only when neither pip nor packaging is importable on the target.

INTERPRETER_SHORT_NAMES = {"python": "py", "cpython": "cp", "pypy": "pp", "ironpython": "ip", "jython": "jy"}

# The glibc version each legacy manylinux name stands for (PEP 513, 571, 599).
LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
_MANYLINUX_ARCHS = ("x86_64", "aarch64", "ppc64", "ppc64le", "s390x", "loongarch64", "riscv64")


def _interpreter_name():
    name = sys.implementation.name
    return INTERPRETER_SHORT_NAMES.get(name) or name


def _interpreter_version():
    version = sysconfig.get_config_var("py_version_nodot")
    if version:
        return str(version)
    return _version_nodot(sys.version_info[:2])


def _cpython_abis(py_version):
    from importlib.machinery import EXTENSION_SUFFIXES

    py_version = tuple(py_version)
    abis = []
    version = _version_nodot(py_version[:2])
    threading = debug = pymalloc = ucs4 = ""
    with_debug = sysconfig.get_config_var("Py_DEBUG")
    has_refcount = hasattr(sys, "gettotalrefcount")
    has_ext = "_d.pyd" in EXTENSION_SUFFIXES
    if with_debug or (with_debug is None and (has_refcount or has_ext)):
        debug = "d"
    if py_version >= (3, 13) and sysconfig.get_config_var("Py_GIL_DISABLED"):
        threading = "t"
    if py_version < (3, 8):
        with_pymalloc = sysconfig.get_config_var("WITH_PYMALLOC")
        if with_pymalloc or with_pymalloc is None:
            pymalloc = "m"
        if py_version < (3, 3):
            unicode_size = sysconfig.get_config_var("Py_UNICODE_SIZE")
            if unicode_size == 4 or (unicode_size is None and sys.maxunicode == 0x10FFFF):
                ucs4 = "u"
    elif debug:
        abis.append("cp%s%s" % (version, threading))
    abis.insert(0, "cp%s%s%s%s%s" % (version, threading, debug, pymalloc, ucs4))
    return abis


def _generic_abi():
    ext_suffix = sysconfig.get_config_var("EXT_SUFFIX")
    if not isinstance(ext_suffix, str) or not ext_suffix.startswith("."):
        return []
    parts = ext_suffix.split(".")
    if len(parts) < 3:
        return _cpython_abis(sys.version_info[:2])
    soabi = parts[1]
    if soabi.startswith("cpython"):
        abi = "cp" + soabi.split("-")[1]
    elif soabi.startswith("cp"):
        abi = soabi.split("-")[0]
    elif soabi.startswith("pypy"):
        abi = "-".join(soabi.split("-")[:2])
    elif soabi.startswith("graalpy"):
        abi = "-".join(soabi.split("-")[:3])
    elif soabi:
        abi = soabi
    else:
        return []
    return [_normalize_string(abi)]


def _mac_binary_formats(version, cpu_arch):
    formats = [cpu_arch]
    if cpu_arch == "x86_64":
        if version < (10, 4):
            return []
        formats.extend(["intel", "fat64", "fat32"])
    elif cpu_arch == "i386":
        if version < (10, 4):
            return []
        formats.extend(["intel", "fat32", "fat"])
    elif cpu_arch == "ppc64":
        if version > (10, 5) or version < (10, 4):
            return []
        formats.append("fat64")
    elif cpu_arch == "ppc":
        if version > (10, 6):
            return []
        formats.extend(["fat32", "fat"])
    if cpu_arch in ("arm64", "x86_64"):
        formats.append("universal2")
    if cpu_arch in ("x86_64", "i386", "ppc64", "ppc", "intel"):
        formats.append("universal")
    return formats


def mac_platforms(version, arch):
    """macOS platform tags, best first, for macOS ``version`` (major, minor) and ``arch``."""
    out = []
    if (10, 0) <= version < (11, 0):
        for minor in range(version[1], -1, -1):
            for fmt in _mac_binary_formats((10, minor), arch):
                out.append("macosx_10_%d_%s" % (minor, fmt))
    if version >= (11, 0):
        for major in range(version[0], 10, -1):
            for fmt in _mac_binary_formats((major, 0), arch):
                out.append("macosx_%d_0_%s" % (major, fmt))
        if arch == "x86_64":
            for minor in range(16, 3, -1):
                for fmt in _mac_binary_formats((10, minor), arch):
                    out.append("macosx_10_%d_%s" % (minor, fmt))
        else:
            for minor in range(16, 3, -1):
                out.append("macosx_10_%d_universal2" % minor)
    return out


def _manylinux_compatible(arch, version, sys_glibc):
    if sys_glibc < version:
        return False
    try:
        import _manylinux  # noqa: F401  (a distributor's override module, PEP 600)
    except ImportError:
        return True
    if hasattr(_manylinux, "manylinux_compatible"):
        result = _manylinux.manylinux_compatible(version[0], version[1], arch)
        if result is not None:
            return bool(result)
        return True
    if version == (2, 5) and hasattr(_manylinux, "manylinux1_compatible"):
        return bool(_manylinux.manylinux1_compatible)
    if version == (2, 12) and hasattr(_manylinux, "manylinux2010_compatible"):
        return bool(_manylinux.manylinux2010_compatible)
    if version == (2, 17) and hasattr(_manylinux, "manylinux2014_compatible"):
        return bool(_manylinux.manylinux2014_compatible)
    return True


def _have_compatible_abi(archs, info):
    if "armv7l" in archs:
        # hard-float ARM EABI v5
        return (
            info is not None
            and info["class"] == 1
            and info["data"] == 1
            and info["machine"] == 40
            and info["flags"] & 0xFF000000 == 0x05000000
            and info["flags"] & 0x00000400 == 0x00000400
        )
    if "i686" in archs:
        return info is not None and info["class"] == 1 and info["data"] == 1 and info["machine"] == 3
    return any(arch in _MANYLINUX_ARCHS for arch in archs)


def _manylinux_tags(archs, info):
    out = []
    if not _have_compatible_abi(archs, info):
        return out
    too_old = (2, 4) if set(archs) & set(["x86_64", "i686"]) else (2, 16)
    current = _parse_glibc_version(_glibc_version_string())
    max_list = [current]
    for major in range(current[0] - 1, 1, -1):
        max_list.append((major, 50))
    for arch in archs:
        for glibc_max in max_list:
            min_minor = too_old[1] if glibc_max[0] == too_old[0] else -1
            for minor in range(glibc_max[1], min_minor, -1):
                version = (glibc_max[0], minor)
                if _manylinux_compatible(arch, version, current):
                    out.append("manylinux_%d_%d_%s" % (version[0], version[1], arch))
                    legacy = LEGACY_MANYLINUX.get(version)
                    if legacy:
                        out.append("%s_%s" % (legacy, arch))
    return out


def _linux_platforms():
    linux = _normalize_string(sysconfig.get_platform())
    if not linux.startswith("linux_"):
        return [linux]
    if _is_32bit():
        if linux == "linux_x86_64":
            linux = "linux_i686"
        elif linux == "linux_aarch64":
            linux = "linux_armv8l"
    arch = linux.split("_", 1)[1]
    archs = {"armv8l": ["armv8l", "armv7l"]}.get(arch, [arch])
    info = elf_info(sys.executable)
    out = _manylinux_tags(archs, info)
    musl = musl_version()
    if musl is not None:
        for a in archs:
            for minor in range(musl[1], -1, -1):
                out.append("musllinux_%d_%d_%s" % (musl[0], minor, a))
    for a in archs:
        out.append("linux_%s" % a)
    return out


def builtin_platform_tags():
    system = platform.system()
    if system == "Darwin":
        version = macos_version() or (10, 0)
        cpu_arch = platform.mac_ver()[2]
        if _is_32bit():
            cpu_arch = "ppc" if cpu_arch.startswith("ppc") else "i386"
        return mac_platforms(version, cpu_arch)
    if system == "Linux":
        return _linux_platforms()
    return [_normalize_string(sysconfig.get_platform())]


def _py_interpreter_range(py_version):
    out = []
    if len(py_version) > 1:
        out.append("py%s" % _version_nodot(py_version[:2]))
    out.append("py%d" % py_version[0])
    if len(py_version) > 1:
        for minor in range(py_version[1] - 1, -1, -1):
            out.append("py%s" % _version_nodot((py_version[0], minor)))
    return out


def builtin_supported_tags():
    """The ordered tag list pip's ``get_supported()`` gives, reimplemented with the stdlib."""
    py_version = sys.version_info[:2]
    name = _interpreter_name()
    interpreter = name + _interpreter_version()
    platforms = builtin_platform_tags()
    tags = []
    if name == "cp":
        abis = _cpython_abis(py_version)
        for abi in abis:
            for plat in platforms:
                tags.append("%s-%s-%s" % (interpreter, abi, plat))
        threading = bool(re.match(r"cp\d+.*t", abis[0])) if abis else False
        use_abi3 = py_version >= (3, 2) and not threading
        if use_abi3:
            tags.extend("%s-abi3-%s" % (interpreter, plat) for plat in platforms)
        tags.extend("%s-none-%s" % (interpreter, plat) for plat in platforms)
        if use_abi3:
            for minor in range(py_version[1] - 1, 1, -1):
                older = "cp%s" % _version_nodot((py_version[0], minor))
                tags.extend("%s-abi3-%s" % (older, plat) for plat in platforms)
    else:
        abis = _generic_abi()
        if "none" not in abis:
            abis.append("none")
        for abi in abis:
            for plat in platforms:
                tags.append("%s-%s-%s" % (interpreter, abi, plat))
    for version in _py_interpreter_range(py_version):
        for plat in platforms:
            tags.append("%s-none-%s" % (version, plat))
    tags.append("%s-none-any" % interpreter)
    for version in _py_interpreter_range(py_version):
        tags.append("%s-none-any" % version)
    return [t.lower() for t in tags]


# ---------------------------------------------------------------------------------------
# Tags from pip / packaging


def _tag_str(tag):
    if isinstance(tag, tuple):  # pip < 20 returned (interpreter, abi, platform) tuples
        return "-".join(str(p) for p in tag)
    return str(tag)


def _pip_version():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pip
    except Exception:
        return None
    return str(getattr(pip, "__version__", "") or "") or None


def _tags_from_pip():
    """pip's own get_supported(); returns (tags, source) or None."""
    version = _pip_version()
    if version is None:
        return None
    candidates = (
        ("pip._internal.utils.compatibility_tags", ""),  # pip >= 20.0
        ("pip._internal.pep425tags", " (pep425tags)"),  # pip 10 - 19.3
        ("pip.pep425tags", " (pep425tags)"),  # pip < 10
    )
    for module_name, note in candidates:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = __import__(module_name, fromlist=["get_supported"])
                get_supported = getattr(module, "get_supported")
                tags = [_tag_str(t) for t in get_supported()]
        except Exception:
            continue
        if tags:
            return tags, "pip %s%s" % (version, note)
    return None


def _tags_from_tags_module(tags_module):
    """What pip's get_supported() computes, using a ``packaging.tags`` module."""
    name = tags_module.interpreter_name()
    interpreter = name + tags_module.interpreter_version()
    out = []
    if name == "cp":
        out.extend(tags_module.cpython_tags())
    else:
        out.extend(tags_module.generic_tags(interpreter=interpreter))
    out.extend(tags_module.compatible_tags(interpreter=interpreter))
    return [str(t) for t in out]


def _tags_from_pip_vendored():
    version = _pip_version()
    if version is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pip._vendor.packaging import tags as tags_module
            tags = _tags_from_tags_module(tags_module)
    except Exception:
        return None
    return (tags, "pip %s vendored packaging" % version) if tags else None


def _tags_from_packaging():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import packaging
            from packaging import tags as tags_module
            tags = _tags_from_tags_module(tags_module)
    except Exception:
        return None
    version = getattr(packaging, "__version__", "?")
    return (tags, "packaging %s" % version) if tags else None


def _tags_from_builtin():
    return builtin_supported_tags(), "builtin"


_TAG_SOURCES = {
    "pip": _tags_from_pip,
    "pip-vendored": _tags_from_pip_vendored,
    "packaging": _tags_from_packaging,
    "builtin": _tags_from_builtin,
}


def supported_tags(method=DEFAULT_TAGS_METHOD):
    """Return (ordered tag strings, description of where they came from)."""
    order = ("pip", "pip-vendored", "packaging", "builtin") if method == "auto" else (method,)
    for name in order:
        found = _TAG_SOURCES[name]()
        if found:
            return found
    raise RuntimeError("could not compute the supported tags with method %r" % method)


# ---------------------------------------------------------------------------------------
# Markers and facts


def format_full_version(info):
    version = "%d.%d.%d" % (info.major, info.minor, info.micro)
    kind = info.releaselevel
    if kind != "final":
        version += kind[0] + str(info.serial)
    return version


def marker_environment():
    """The PEP 508 marker environment of this interpreter (as packaging computes it)."""
    return collections.OrderedDict(
        [
            ("implementation_name", sys.implementation.name),
            ("implementation_version", format_full_version(sys.implementation.version)),
            ("os_name", os.name),
            ("platform_machine", platform.machine()),
            ("platform_python_implementation", platform.python_implementation()),
            ("platform_release", platform.release()),
            ("platform_system", platform.system()),
            ("platform_version", platform.version()),
            ("python_full_version", platform.python_version()),
            ("python_version", ".".join(platform.python_version_tuple()[:2])),
            ("sys_platform", sys.platform),
        ]
    )


# Machine and platform-tag spellings of one CPU architecture -> the name wheelhouse uses
# (uv's and manylinux's: x86_64, aarch64, i686).
ARCH_ALIASES = {
    "amd64": "x86_64",
    "x64": "x86_64",
    "x86_64": "x86_64",
    "arm64": "aarch64",
    "aarch64": "aarch64",
    "aarch64_be": "aarch64_be",
    "i386": "i686",
    "i486": "i686",
    "i586": "i686",
    "i686": "i686",
    "x86": "i686",
    "win32": "i686",
}


def normalize_arch(machine):
    """The wheelhouse name of an architecture (``AMD64`` -> ``x86_64``); "unknown" when empty."""
    m = (machine or "").strip().lower()
    return ARCH_ALIASES.get(m, m or "unknown")


_LIBC_TAG = re.compile(r"^(manylinux|musllinux)_(\d+)_(\d+)_(.+)$")
_LEGACY_TAG = re.compile(r"^(manylinux1|manylinux2010|manylinux2014)_(.+)$")
_MACOS_TAG = re.compile(r"^macosx_(\d+)_(\d+)_(.+)$")
_LEGACY_GLIBC = {name: version for version, name in LEGACY_MANYLINUX.items()}


def parse_platform_tag(plat):
    """Split a wheel platform tag into ``(kind, version, arch)``, or None for a kind not known here.

    kind is "glibc" (``manylinux_2_17_x86_64`` and the legacy ``manylinux2014_x86_64``), "musl"
    (``musllinux_1_2_aarch64``), "macos" (``macosx_11_0_arm64``; arch may be a multi-arch format
    such as universal2), "linux" (``linux_armv7l``) or "windows" (``win_amd64``, ``win32``, whose
    arch is given as i686). version is the (major, minor) of the libc or of macOS, None for
    linux and windows. arch is spelled as in the tag; compare it through normalize_arch.
    """
    plat = plat.lower()
    m = _LIBC_TAG.match(plat)
    if m:
        kind = "glibc" if m.group(1) == "manylinux" else "musl"
        return kind, (int(m.group(2)), int(m.group(3))), m.group(4)
    m = _LEGACY_TAG.match(plat)
    if m:
        return "glibc", _LEGACY_GLIBC[m.group(1)], m.group(2)
    m = _MACOS_TAG.match(plat)
    if m:
        return "macos", (int(m.group(1)), int(m.group(2))), m.group(3)
    if plat == "win32":
        return "windows", None, "i686"
    if plat.startswith("win_") and len(plat) > 4:
        return "windows", None, plat[4:]
    if plat.startswith("linux_") and len(plat) > 6:
        return "linux", None, plat[6:]
    return None


def target_os():
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform in ("win32", "cygwin"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return (platform.system() or sys.platform).lower()


def target_arch(os_name):
    """The architecture of this interpreter (a 32-bit Python on a 64-bit OS counts as 32-bit)."""
    if os_name == "windows":
        plat = sysconfig.get_platform().lower()  # win32, win-amd64, win-arm64, win-arm32
        if plat == "win32":
            return "i686"
        if plat.startswith("win-"):
            return normalize_arch(plat[4:])
    arch = normalize_arch(platform.machine())
    if _is_32bit():
        if arch == "x86_64":
            return "i686"
        if arch == "aarch64":
            return "armv8l"
    return arch


def libc_facts():
    """(libc, libc-version) on Linux: ("glibc", "2.36"), ("musl", "1.2") or (None, None)."""
    if not sys.platform.startswith("linux"):
        return None, None
    musl = musl_version()
    if musl is not None:
        return "musl", "%d.%d" % (musl[0], musl[1])
    glibc = _glibc_version_string()
    if glibc:
        major, minor = _parse_glibc_version(glibc)
        if major >= 0:
            return "glibc", "%d.%d" % (major, minor)
    return None, None


def _utc_now():
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def system_pip_tags():
    """This interpreter's own pip's tag list, or None when it has no pip (or an unusable one)."""
    found = _tags_from_pip()
    return found[0] if found else None


def below_target_floor(version_info=None):
    """A warning when this Python is older than wheelhouse supports on targets, else None."""
    version = tuple((version_info or sys.version_info)[:3])
    if version[:2] >= MIN_TARGET_PYTHON:
        return None
    return (
        "this is Python %d.%d.%d, below the Python versions wheelhouse supports on a target (%d.%d and newer): "
        "%s, so wheelhouse will refuse this profile. Capture again with a Python %d.%d or newer on this machine, "
        "and install the bundle with it (sh install.sh --python PATH)"
        % (version + MIN_TARGET_PYTHON + (TARGET_PYTHON_REASON,) + MIN_TARGET_PYTHON)
    )


def capture(name=None, tags_method=DEFAULT_TAGS_METHOD):
    """Build the profile dict for this interpreter.

    ``tags`` is the list of ``tags_method`` (by default the built-in copy of a current pip's
    logic, the list install.py checks against); this interpreter's own pip list is only counted.
    """
    tags, tags_source = supported_tags(tags_method)
    markers = marker_environment()
    os_name = target_os()
    arch = target_arch(os_name)
    libc, libc_version = libc_facts()
    mac = macos_version()

    facts = collections.OrderedDict()
    facts["implementation"] = sys.implementation.name
    facts["python-version"] = "%d.%d.%d" % sys.version_info[:3]
    facts["os"] = os_name
    facts["arch"] = arch
    if libc:
        facts["libc"] = libc
        facts["libc-version"] = libc_version
    if mac:
        facts["macos-version"] = "%d.%d" % mac
    driver = nvidia_driver_version()
    if driver:
        facts["nvidia-driver"] = driver
    facts["source"] = "capture"
    pip_version = _pip_version()
    if pip_version:
        facts["pip-version"] = pip_version
        own = system_pip_tags()
        if own is not None:
            facts["system-pip-tags-count"] = len(own)
    facts["tags-source"] = tags_source
    facts["captured-at"] = _utc_now()
    facts["capture-version"] = CAPTURE_VERSION

    if not name:
        impl = _interpreter_name()
        free_threaded = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
        name = "%s-%s-%s%d%d%s" % (os_name, arch, impl, sys.version_info[0], sys.version_info[1], free_threaded)

    profile = collections.OrderedDict()
    profile["format"] = PROFILE_FORMAT
    profile["format-version"] = PROFILE_FORMAT_VERSION
    profile["name"] = name
    profile["facts"] = facts
    profile["markers"] = markers
    profile["tags"] = tags
    return profile


def write_atomically(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same directory."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".capture-profile-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        try:
            os.chmod(tmp, 0o666 & ~umask)
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="capture-profile.py",
        description="Record this interpreter's wheel tags, PEP 508 markers and platform facts "
        "as a wheelhouse target profile (JSON).",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write the profile to FILE instead of stdout")
    parser.add_argument("--name", help="profile name (default: e.g. linux-x86_64-cp311)")
    parser.add_argument(
        "--tags-from",
        choices=TAGS_METHODS,
        default=DEFAULT_TAGS_METHOD,
        help="where the tag list comes from (default: builtin, what the modern pip the bundle installs with "
        "accepts; install.py checks the machine with the same list. auto = this interpreter's own pip, "
        "then packaging, then builtin: for comparison only)",
    )
    args = parser.parse_args(argv)
    floor = below_target_floor()
    if floor:
        print("capture-profile.py: warning: %s" % floor, file=sys.stderr)

    try:
        profile = capture(name=args.name, tags_method=args.tags_from)
    except RuntimeError as e:
        print("capture-profile.py: error: %s" % e, file=sys.stderr)
        return 1
    text = json.dumps(profile, indent=2) + "\n"
    if args.output and args.output != "-":
        try:
            write_atomically(args.output, text)
        except OSError as e:
            print("capture-profile.py: error: cannot write %s: %s" % (args.output, e.strerror or e), file=sys.stderr)
            return 1
        print(
            "wrote %s: %s, %d tags (from %s)" % (args.output, profile["name"], len(profile["tags"]), profile["facts"]["tags-source"]),
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    own = profile["facts"].get("system-pip-tags-count")
    if own is not None and own != len(profile["tags"]):
        print(
            "capture-profile.py: note: this Python's own pip %s accepts %d tags; the profile records the %d of "
            "the current pip the bundle installs with" % (profile["facts"]["pip-version"], own, len(profile["tags"])),
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
