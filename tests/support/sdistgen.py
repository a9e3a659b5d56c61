"""Real sdists for tests: a tiny in-tree stdlib build backend (``backend-path``), or setuptools
(a pure module, or a C extension that needs a compiler and the Python headers to build).

``make_sdist`` writes ``NAME-VERSION.tar.gz`` holding ``pyproject.toml``, a module, and a PKG-INFO
that is PEP 643 static (Metadata-Version 2.2) or not (2.1, or Requires-Dist listed as Dynamic). The
stdlib backend builds a pure wheel (or, with ``platform``, a wheel tagged for this machine) whose
bytes depend only on the source and ``SOURCE_DATE_EPOCH``; it logs each hook call to the file named
by ``WHEELHOUSE_TEST_BACKEND_LOG`` so tests can see whether a build ran.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Iterable

BACKEND = '''
import base64, hashlib, os, sys, sysconfig, time, zipfile

def _log(what):
    log = os.environ.get("WHEELHOUSE_TEST_BACKEND_LOG")
    if log:
        with open(log, "a") as f:
            f.write(what + "\\n")

def _meta():
    with open("PKG-INFO") as f:
        text = f.read()
    name = [l.split(": ", 1)[1] for l in text.splitlines() if l.startswith("Name: ")][0]
    version = [l.split(": ", 1)[1] for l in text.splitlines() if l.startswith("Version: ")][0]
    deps = open("deps.txt").read().split("\\n") if os.path.exists("deps.txt") else []
    body = "Metadata-Version: 2.1\\nName: %s\\nVersion: %s\\n" % (name, version)
    body += "".join("Requires-Dist: %s\\n" % d for d in deps if d)
    return name.replace("-", "_"), version, body

def _tag():
    if os.path.exists("PLATFORM"):
        return "py3-none-" + sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return "py3-none-any"

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _log("prepare_metadata_for_build_wheel")
    name, version, body = _meta()
    d = os.path.join(metadata_directory, "%s-%s.dist-info" % (name, version))
    os.makedirs(d)
    with open(os.path.join(d, "METADATA"), "w") as f:
        f.write(body)
    return os.path.basename(d)

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _log("build_wheel")
    name, version, body = _meta()
    stamp = time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")))[:6]
    tag = _tag()
    files = {"%s.py" % name: open("%s.py" % name, "rb").read(),
             "%s-%s.dist-info/METADATA" % (name, version): body.encode(),
             "%s-%s.dist-info/WHEEL" % (name, version): ("Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: %s\\nTag: %s\\n"
                                                         % ("true" if tag.endswith("any") else "false", tag)).encode()}
    record = "".join("%s,sha256=%s,%d\\n" % (n, base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=").decode(), len(b))
                     for n, b in files.items())
    files["%s-%s.dist-info/RECORD" % (name, version)] = (record + "%s-%s.dist-info/RECORD,,\\n" % (name, version)).encode()
    out = "%s-%s-%s.whl" % (name, version, tag)
    with zipfile.ZipFile(os.path.join(wheel_directory, out), "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in files.items():
            info = zipfile.ZipInfo(n, stamp)
            info.external_attr = 0o644 << 16
            z.writestr(info, b)
    return out
'''


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 315532800
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def pkg_info(name: str, version: str, requires_dist: Iterable[str], *, metadata_version: str = "2.2",
             dynamic: Iterable[str] = (), requires_python: str | None = None) -> str:
    """A PKG-INFO text."""
    text = f"Metadata-Version: {metadata_version}\nName: {name}\nVersion: {version}\n"
    text += "".join(f"Dynamic: {d}\n" for d in dynamic)
    if requires_python:
        text += f"Requires-Python: {requires_python}\n"
    return text + "".join(f"Requires-Dist: {r}\n" for r in requires_dist)


def make_sdist(dest: Path, name: str, version: str, *, requires_dist: Iterable[str] = (), static: bool = True,
               platform: bool = False, requires_python: str | None = None, build_requires: Iterable[str] = ()) -> Path:
    """An sdist built by the in-tree stdlib backend. With ``static`` its PKG-INFO is PEP 643 static;
    otherwise it says Metadata-Version 2.1 and lists only the name (the hook must be asked)."""
    deps = list(requires_dist)
    module = name.replace("-", "_")
    root = f"{module}-{version}"
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{root}.tar.gz"
    info = pkg_info(name, version, deps if static else (), metadata_version="2.2" if static else "2.1",
                    requires_python=requires_python)
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, f"{root}/PKG-INFO", info.encode())
        reqs = ", ".join(f'"{r}"' for r in build_requires)
        _add(tar, f"{root}/pyproject.toml", f'[build-system]\nrequires = [{reqs}]\nbuild-backend = "tinybackend"\nbackend-path = ["."]\n'.encode())
        _add(tar, f"{root}/tinybackend.py", BACKEND.encode())
        _add(tar, f"{root}/deps.txt", "\n".join(deps).encode())
        _add(tar, f"{root}/{module}.py", f"NAME = {name!r}\nVERSION = {version!r}\n".encode())
        if platform:
            _add(tar, f"{root}/PLATFORM", b"1\n")
    return path


def make_setuptools_sdist(dest: Path, name: str, version: str, *, requires: Iterable[str] = ("setuptools>=40.8.0",),
                          install_requires: Iterable[str] = ()) -> Path:
    """An sdist with a setup.py and no static metadata (Metadata-Version 2.1), built by setuptools."""
    module = name.replace("-", "_")
    setup = (f"from setuptools import setup\nsetup(name={name!r}, version={version!r}, py_modules=[{module!r}], "
             f"install_requires={list(install_requires)!r})\n")
    return _setup_py_sdist(dest, name, version, requires, setup, f"{module}.py", f"NAME = {name!r}\n")


C_SOURCE = """#include <Python.h>

static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "%s", NULL, -1, methods};
PyMODINIT_FUNC PyInit_%s(void) { return PyModule_Create(&module); }
"""


def make_c_extension_sdist(dest: Path, name: str, version: str, *, requires: Iterable[str] = ("setuptools>=61",)) -> Path:
    """An sdist of one C extension module ``name`` (``name.answer()`` returns 42), built by setuptools
    from a setup.py with ``ext_modules``; PKG-INFO is not static (Metadata-Version 2.1)."""
    module = name.replace("-", "_")
    setup = (f"from setuptools import Extension, setup\nsetup(name={name!r}, version={version!r}, "
             f"ext_modules=[Extension({module!r}, [{module + '.c'!r}])])\n")
    return _setup_py_sdist(dest, name, version, requires, setup, f"{module}.c", C_SOURCE % (module, module))


def _setup_py_sdist(dest: Path, name: str, version: str, requires: Iterable[str], setup: str, source: str, text: str) -> Path:
    """``dest/<module>-<version>.tar.gz``: PKG-INFO (Metadata-Version 2.1), a setuptools pyproject.toml
    with build ``requires``, the ``setup`` script and one ``source`` file holding ``text``."""
    root = f"{name.replace('-', '_')}-{version}"
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{root}.tar.gz"
    reqs = ", ".join(f'"{r}"' for r in requires)
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, f"{root}/PKG-INFO", pkg_info(name, version, (), metadata_version="2.1").encode())
        _add(tar, f"{root}/pyproject.toml", f'[build-system]\nrequires = [{reqs}]\nbuild-backend = "setuptools.build_meta"\n'.encode())
        _add(tar, f"{root}/setup.py", setup.encode())
        _add(tar, f"{root}/{source}", text.encode())
    return path


def real_wheel(project: str) -> Path | None:
    """The newest real ``project`` wheel (setuptools, wheel) already on this machine, never the network:
    a local package mirror under /opt, Debian's python-wheels, CPython's own test data and ensurepip
    in pyenv's Pythons. None when there is none."""
    import glob

    from packaging.version import InvalidVersion, Version

    from .pythons import pyenv_root

    root = str(pyenv_root())
    patterns = ["/opt/*/files/{p}-*-py3-none-any.whl", "/usr/share/python-wheels/{p}-*-py3-none-any.whl",
                root + "/versions/*/lib/python3*/test/{p}-*-py3-none-any.whl",
                root + "/versions/*/lib/python3*/test/wheeldata/{p}-*-py3-none-any.whl"]
    found = []
    for pattern in patterns:
        for hit in glob.glob(pattern.format(p=project)):
            try:
                found.append((Version(Path(hit).name.split("-")[1]), Path(hit)))
            except InvalidVersion:
                continue
    return max(found)[1] if found else None
