#!/usr/bin/env python3
"""Install this wheelhouse bundle into a virtual environment, without any network.

Run it through ``install.sh`` in the unpacked bundle directory (or directly with Python 3.8+)::

    sh install.sh [--venv DIR] [--python PATH] [--with OLD_BUNDLE_DIR] [--trust ALLOWED_SIGNERS] [--check-only] [--dry-run]
                  [--installer pip|uv] [--no-compile] [--exact]
    sh install.sh --publish URL | --publish-dir DIR      (upload the wheels to a site index; no venv)

In order, and stopping at the first failure (exit status 1, one reason on stderr):

0. with ``--trust ALLOWED_SIGNERS`` (an OpenSSH allowed_signers file), check ``bundle.json.sig``,
   an SSH signature over ``bundle.json``, with ``ssh-keygen -Y verify`` before anything else is read
   or run: an unsigned bundle, a bad signature and a signer the file does not list are refused,
   each by name. Without it, say that the bundle is not authenticated and go on;
1. check that this machine is one the bundle was made for: same Python implementation and
   version, same OS and CPU, on Linux the same C library family (glibc or musl), and every
   wheel of the target supported by this interpreter's tags (they decide the libc version);
   the bundle's ``capture_profile.py``, whose helpers describe this machine, is checked
   against ``bundle.json`` before it runs, and nothing else from the bundle runs before step 2;
2. verify every file of the bundle against ``bundle.json`` (size and sha256), and that no file
   is missing or extra (only ``__pycache__`` folders are no part of a bundle; a venv inside the
   bundle directory is extra unless it is the one named with ``--venv``);
3. make a venv (``python -m venv --without-pip``), by default ``<bundle-dir>.venv`` next to the
   bundle directory; a venv that already exists is reused (same Python version) only when named
   with ``--venv``: one found at the default place was not chosen by anyone and is refused;
4. install with the bundled uv when the bundle has a uv wheel that runs here (its sha256 checked
   again as the binary is taken out of the wheel into a temporary folder):
   ``uv pip install --offline --no-index --find-links wheels --require-hashes --no-build -r requirements.txt``,
   else (and always for a target that builds sdists, below) with the bundled pip, run straight from its wheel:
   ``pip install --no-index --find-links wheels --require-hashes --only-binary :all: -r requirements.txt``
   (``--installer pip|uv`` chooses), in an environment scrubbed of pip and uv settings and proxies,
   then install that pip into the venv. Both leave the same files (RECORD apart from INSTALLER,
   REQUESTED and uv's uv_cache.json): neither byte-compiles, and then ``compileall`` compiles
   site-packages on every core (``--no-compile`` skips it). A venv made here holds exactly the
   locked set plus pip (kept so the venv can be managed as people expect). In a reused venv,
   packages outside the lock are listed in a warning; ``--exact`` uninstalls them first (as
   ``pip-sync``/``uv pip sync`` do, pip itself kept), and the install moves the rest to the
   locked versions;
5. run ``pip check`` (``uv pip check`` with uv) and the bundle's smoke commands.

Sdists built here: a target's ``sdists`` in bundle.json are packages whose wheel the builder could
not make for this machine (it built one for its own platform only, or could not build at all).
The bundle carries each sdist and its build requirements resolved for this target, all verified in
step 2 with everything else. After step 2 (and under ``--check-only``) install.sh lists them and
checks for a C compiler (``CC``, else cc, gcc or clang on PATH) and this Python's headers
(``Python.h`` in ``sysconfig.get_paths()["include"]``), and stops before step 3 when either is
missing. Such a target always installs with the bundled pip, never uv: one installer to build with
keeps one behaviour to prove, and pip's handling is what the sites that build from source know.
pip runs as in step 4 with ``--only-binary :all: --no-binary NAME,...``, so it builds exactly
those sdists and nothing else, each in an isolated build environment that inherits ``--no-index``
and the ``--find-links`` folders, so its build requirements come only from the bundle's verified
wheels (pinned to the locked versions with ``--build-constraint`` when the bundled pip has it,
25.3 and newer); ``--require-hashes`` admits only the locked sdist. pip's temporary folders and
any cache (``TMPDIR``, ``PIP_CACHE_DIR``) lie in a temporary folder removed afterwards.

A delta bundle (``wheelhouse pack --since``) carries only the files its base bundle lacks; its
``bundle.json`` lists the full set and names the rest in ``base.files``. ``--with OLD_BUNDLE_DIR``
takes those from the old bundle's unpacked directory, each checked against this bundle.json's
size and sha256 (whatever else lies there is not looked at), and pip finds wheels in both.

``--publish``/``--publish-dir`` verify the bundle as in step 2 and hand its wheels to the
bundle's ``publish.py`` (checked against bundle.json before it is loaded, as capture_profile.py
is); the machine check and steps 3-5 are skipped.

Nothing is created before steps 1 and 2 pass. ``--check-only`` stops after them; ``--dry-run``
also prints the commands it would run. Set ``WHEELHOUSE_DEBUG=1`` for a traceback on errors.

Standard library only; runs on CPython 3.8 and newer, and stays parseable by older Pythons so
that they get a clear message rather than a syntax error.
"""

from __future__ import print_function

import sys

# The same floor as capture_profile.MIN_TARGET_PYTHON (the builder's source of truth; this check
# runs before that file may be loaded, so the number is repeated here and tests/test_parity.py
# checks that they agree).
MIN_PYTHON = (3, 8)

if sys.version_info[:2] < MIN_PYTHON:  # pragma: no cover - exercised with old pyenv Pythons
    sys.stderr.write(
        "install.py: error: this installer needs Python %d.%d or newer; %s is Python %s. "
        "Give another interpreter with: sh install.sh --python PATH\n"
        % (MIN_PYTHON + (sys.executable or "this interpreter", sys.version.split()[0]))
    )
    sys.exit(1)

import os

if __name__ == "__main__":
    # Run as a script, this file's directory (the bundle) comes first on sys.path, so a stray
    # json.py there would run before any verification. install.sh passes -I, which leaves it
    # out; drop it here as well for direct runs and for the re-run under --python.
    _HERE = os.path.dirname(os.path.realpath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != _HERE]

import argparse
import collections
import hashlib
import importlib.util
import json
import pathlib
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import traceback
import unicodedata
import zipfile

# The builder imports these (bundler/manifest.py, bundler/bundle.py): they are defined only here.
BUNDLE_FORMAT = "wheelhouse-bundle"
BUNDLE_FORMAT_VERSION = 1
MANIFEST = "bundle.json"
# The one file besides bundle.json that bundle.json does not list: an OpenSSH signature over its
# bytes (``wheelhouse pack --sign-key``), checked with ``--trust ALLOWED_SIGNERS`` before anything else.
SIGNATURE = MANIFEST + ".sig"
SIGNING_NAMESPACE = "wheelhouse"
MAX_SIGNATURE = 64 << 10  # an SSH signature is a few hundred bytes; RSA 16384 stays under 4 KiB
CAPTURE_MODULE = "capture_profile.py"
PUBLISH_MODULE = "publish.py"
# The default venv sits next to the bundle directory (``hpc/`` -> ``hpc.venv/``), never inside it:
# everything inside is checked against bundle.json and a venv is no part of a bundle.
DEFAULT_VENV_SUFFIX = ".venv"
# bundle.json is read whole: 2,000 wheels for two targets make about 2 MB, and a hostile 8 MiB
# document of empty lists still parses in under 300 MB.
MAX_MANIFEST = 8 << 20
_MAX_INT_DIGITS = 30  # the largest number bundle.json holds is a file size
PROG = "install.sh"
DEBUG_ENV = "WHEELHOUSE_DEBUG"

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
# A stray PYTHONPATH/PYTHONHOME would leak foreign packages into pip and the smoke tests.
_PYTHON_VARS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE")
_MAX_LISTED = 12
VERIFY_HINT = (
    "the bundle is damaged or was changed after packing; copy it again from the source and re-check it with "
    "'sha256sum -c SHA256SUMS'"
)


# Characters that must never reach a terminal raw: C0 and C1 controls (ESC among them), DEL, and
# the Unicode format and separator characters that reorder or break lines (bidi overrides, U+2028).
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _unsafe(ch):
    code = ord(ch)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return True
    return code > 0x9F and unicodedata.category(ch) in ("Cf", "Zl", "Zp", "Cs")


def _escape(ch):
    if ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    code = ord(ch)
    return "\\x%02x" % code if code <= 0xFF else "\\u%04x" % code if code <= 0xFFFF else "\\U%08x" % code


def printable(text):
    """``text`` with every control character (newlines and ESC included) escaped, e.g. ``\\x1b``.

    Everything this installer and ``wheelhouse inspect``/``verify`` print from a bundle passes
    through it, so a name or smoke command in bundle.json cannot move the cursor, recolour, hide
    or fake lines on a terminal.
    """
    text = text if isinstance(text, str) else str(text)
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)


def _terminal_safe(text):
    """Like ``printable`` but keeps the line breaks this installer writes itself."""
    return "\n".join(printable(line) for line in text.split("\n"))


class InstallError(Exception):
    """A failure the user can act on: a one-line reason, optional detail lines and a hint."""

    def __init__(self, message, details=(), hint=None):
        Exception.__init__(self, message)
        self.message = message
        self.details = list(details)
        self.hint = hint

    def __str__(self):
        return self.message

    def report(self):
        lines = [self.message]
        shown = self.details[:_MAX_LISTED]
        lines.extend("  " + d for d in shown)
        if len(self.details) > len(shown):
            lines.append("  ... and %d more" % (len(self.details) - len(shown)))
        if self.hint:
            lines.append("hint: " + self.hint)
        return "\n".join(lines)


def _geq():
    """The greater-or-equal sign when stderr can show it, else ">="."""
    encoding = getattr(sys.stderr, "encoding", None) or "ascii"
    try:
        "\u2265".encode(encoding)
    except (UnicodeError, LookupError):
        return ">="
    return "\u2265"


# ---------------------------------------------------------------------------------------
# bundle.json


def _is_safe_relpath(path):
    if not isinstance(path, str) or not path or "\\" in path or "\0" in path:
        return False
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def _bounded_int(text):
    # Python 3.8 converts a long digit string in quadratic time; no field needs more than a size.
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError("a number with %d digits" % len(text))
    return int(text)


def _no_constant(name):
    raise ValueError("%s is not JSON" % name)


def parse_json(data):
    """Parse bundle.json bytes; ValueError (with a short reason) for anything but plain UTF-8 JSON.

    Bounded for hostile input: long numbers and NaN/Infinity are refused, and nesting deeper than
    the interpreter's recursion limit is a ValueError, not a RecursionError.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError("not UTF-8 text (%s)" % e.reason)
    try:
        return json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply")


def read_manifest_bytes(bundle_dir):
    """The bytes of ``bundle.json`` (at most MAX_MANIFEST); InstallError when missing or too large."""
    path = os.path.join(bundle_dir, MANIFEST)
    if not os.path.isfile(path):
        raise InstallError(
            "%s has no %s: this is not an unpacked wheelhouse bundle" % (printable(bundle_dir), MANIFEST),
            hint="unpack the whole archive (tar -xf BUNDLE) and run install.sh from the directory it creates",
        )
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MANIFEST + 1)
    except OSError as e:
        raise InstallError("cannot read %s: %s" % (MANIFEST, e.strerror or e))
    if len(data) > MAX_MANIFEST:
        raise InstallError("%s is larger than %d MiB, more than any bundle manifest needs" % (MANIFEST, MAX_MANIFEST >> 20),
                           hint=VERIFY_HINT)
    return data


def load_manifest(bundle_dir, data=None):
    """Read and check ``bundle.json`` (or ``data``, its bytes as already read and authenticated);
    returns the dict.  Raises InstallError when unusable."""
    if data is None:
        data = read_manifest_bytes(bundle_dir)
    try:
        doc = parse_json(data)
    except ValueError as e:
        raise InstallError("cannot read %s: %s" % (MANIFEST, printable(str(e)[:200])), hint=VERIFY_HINT)
    return check_manifest(doc)


def _is_str_list(value):
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# The alphabets the builder enforces where these values enter (bundler/validate.py): a manifest
# whose names would need escaping on a command line or a terminal is refused, not installed.
_PROJECT_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,198}[A-Za-z0-9])?$")
_TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,79}$")
_WHEEL_BASENAME = re.compile(r"^[A-Za-z0-9._+!-]{1,250}\.whl$")
_SDIST_BASENAME = re.compile(r"^([A-Za-z0-9._+!-]{1,250})\.(?:tar\.gz|zip)$")
# PEP 440 (the regex the packaging library publishes as VERSION_PATTERN), anchored.
_VERSION = re.compile(
    r"""^\s*v?(?:(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*"""
    r"""(?:[-_\.]?(?:alpha|a|beta|b|preview|pre|c|rc)[-_\.]?[0-9]*)?"""
    r"""(?:-[0-9]+|[-_\.]?(?:post|rev|r)[-_\.]?[0-9]*)?"""
    r"""(?:[-_\.]?dev[-_\.]?[0-9]*)?)(?:\+[a-z0-9]+(?:[-_\.][a-z0-9]+)*)?\s*$""",
    re.IGNORECASE,
)


def _show(value):
    """A short rendering of a refused value: repr (so control characters are escaped), at most 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_manifest(data):
    """Check the parsed ``bundle.json``; returns it, or raises InstallError naming the first flaw.

    The builder's reader (``bundler.manifest.Manifest.from_json``) runs this same check, so a
    manifest one side refuses the other refuses too (tests/test_parity.py). Every value later
    used or printed is checked for its type here, and names, versions and wheel paths for their
    grammar, so nothing below meets a surprise.
    """
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise InstallError('%s is not a wheelhouse bundle manifest (no "format": "%s")' % (MANIFEST, BUNDLE_FORMAT))
    version = data.get("format-version")
    if not _is_int(version) or version != BUNDLE_FORMAT_VERSION:
        raise InstallError(
            "%s has format-version %s; this installer understands %d" % (MANIFEST, _show(version), BUNDLE_FORMAT_VERSION),
            hint="use the install.sh shipped in the same bundle as this bundle.json",
        )

    files = data.get("files")
    if not isinstance(files, dict) or not files:
        raise InstallError("%s: 'files' must be a non-empty object" % MANIFEST)
    for rel, entry in files.items():
        if not _is_safe_relpath(rel) or rel == MANIFEST:
            raise InstallError("%s: files: refusing the path %s" % (MANIFEST, _show(rel)))
        if (
            not isinstance(entry, dict)
            or not _is_int(entry.get("size"))
            or entry["size"] < 0
            or not isinstance(entry.get("sha256"), str)
            or not re.match(r"^[0-9a-f]{64}$", entry["sha256"])
        ):
            raise InstallError("%s: files[%s] needs an integer 'size' and a lowercase hex 'sha256'" % (MANIFEST, _show(rel)))

    base = data.get("base")
    if base is not None:
        if (not isinstance(base, dict) or not isinstance(base.get("name"), str)
                or not isinstance(base.get("lock-sha256"), str) or not _is_str_list(base.get("files"))):
            raise InstallError("%s: 'base' needs a 'name', a 'lock-sha256' and a list of 'files'" % MANIFEST)
        for rel in base["files"]:
            if rel not in files or not rel.startswith(("wheels/", "bytecode/")):
                raise InstallError("%s: base.files: %s is not one of the bundle's wheels" % (MANIFEST, _show(rel)))

    targets = data.get("targets")
    if not isinstance(targets, list) or not targets:
        raise InstallError("%s: 'targets' must be a non-empty list" % MANIFEST)
    for i, target in enumerate(targets):
        where = "%s: targets[%d]" % (MANIFEST, i)
        if not isinstance(target, dict) or not isinstance(target.get("name"), str):
            raise InstallError("%s needs a 'name'" % where)
        if not _TARGET_NAME.match(target["name"]):
            raise InstallError("%s.name %s is not a target name (letters, digits, '._+-')" % (where, _show(target["name"])))
        _check_profile(target.get("profile"), where + ".profile")
        packages = target.get("packages")
        if not isinstance(packages, list):
            raise InstallError("%s.packages must be a list" % where)
        refs = [("requirements", target.get("requirements")), ("pip", target.get("pip"))]
        if target.get("uv") is not None:  # the fast installer, when the lock had one for this target
            refs.append(("uv", target.get("uv")))
        for j, package in enumerate(packages):
            _check_package(package, "%s.packages[%d]" % (where, j))
            refs.append(("packages[%d].wheel" % j, package.get("wheel")))
        refs.extend(_check_sdists(target.get("sdists", []), where, files, packages))
        for field, rel in refs:
            if not isinstance(rel, str) or rel not in files:
                raise InstallError("%s.%s refers to %s, which is not among the bundle's files" % (where, field, _show(rel)))
        for field, rel in refs[1:]:
            if not _WHEEL_BASENAME.match(rel.rsplit("/", 1)[-1]):
                raise InstallError("%s.%s is not a wheel: %s" % (where, field, _show(rel)))
        _check_bytecode(target.get("bytecode"), files, set(rel for _, rel in refs[1:]), where + ".bytecode")
    for key in ("name", "tool", "lock-sha256", "created"):
        if not isinstance(data.get(key), str):
            raise InstallError("%s: %r must be a string" % (MANIFEST, key))
    for key in ("smoke", "requirements"):
        if not _is_str_list(data.get(key, [])):
            raise InstallError("%s: %r must be a list of strings" % (MANIFEST, key))
    return data


def _check_bytecode(bytecode, files, wheels, where):
    """A target's optional pre-compiled bytecode: {"magic": 8 hex digits, "files": {wheel: archive}},
    every wheel one of the target's and every archive one of the bundle's files under bytecode/."""
    if bytecode is None:
        return
    if (not isinstance(bytecode, dict) or not isinstance(bytecode.get("magic"), str)
            or not re.match(r"^[0-9a-f]{8}$", bytecode["magic"]) or not isinstance(bytecode.get("files"), dict)):
        raise InstallError("%s needs a 'magic' (8 hex digits) and a 'files' object" % where)
    for wheel, archive in bytecode["files"].items():
        if wheel not in wheels or not isinstance(archive, str) or archive not in files or not archive.startswith("bytecode/"):
            raise InstallError("%s.files: %s -> %s is not a wheel of the target and a bytecode file of the bundle"
                               % (where, _show(wheel), _show(archive)))


def _check_package(package, at):
    """The fields of a package entry (``packages``, ``sdists``, ``build-packages``) but its file."""
    if not isinstance(package, dict) or not isinstance(package.get("name"), str):
        raise InstallError("%s needs a 'name'" % at)
    if not _PROJECT_NAME.match(package["name"]):
        raise InstallError("%s.name %s is not a project name" % (at, _show(package["name"])))
    if not isinstance(package.get("version"), str):
        raise InstallError("%s needs a 'version'" % at)
    if len(package["version"]) > 200 or not _VERSION.match(package["version"]) or package["version"].strip() != package["version"]:
        raise InstallError("%s.version %s is not a PEP 440 version" % (at, _show(package["version"])))
    if not _is_str_list(package.get("requires-dist", [])):
        raise InstallError("%s.requires-dist must be a list of strings" % at)
    if not isinstance(package.get("requires-python", ""), (str, type(None))):
        raise InstallError("%s.requires-python must be a string" % at)


def _check_sdists(sdists, where, files, packages):
    """Check a target's ``sdists`` (built here by pip); returns the (field, path) of every wheel they
    name, for the caller's checks that each is one of the bundle's files and a wheel.

    Each sdist is a file of ``files`` directly in ``wheels/`` (where pip finds it), an sdist file
    name that starts with the project's name, for a project no wheel of the target installs."""
    if not isinstance(sdists, list):
        raise InstallError("%s.sdists must be a list" % where)
    refs = []
    installed = set(canonical(p["name"]) for p in packages)
    for j, sdist in enumerate(sdists):
        at = "%s.sdists[%d]" % (where, j)
        _check_package(sdist, at)
        name = canonical(sdist["name"])
        if name in installed:
            raise InstallError("%s: %s appears twice in the target (a wheel and a sdist to build)" % (at, _show(sdist["name"])))
        installed.add(name)
        rel = sdist.get("sdist")
        base = rel[len("wheels/"):] if isinstance(rel, str) and rel.startswith("wheels/") else ""
        stem = _SDIST_BASENAME.match(base)
        if rel not in files or not stem or not canonical(stem.group(1)).startswith(name + "-"):
            raise InstallError("%s.sdist %s is not a source distribution of %s among the bundle's wheels/"
                               % (at, _show(rel), _show(sdist["name"])))
        if not _is_str_list(sdist.get("build-requires", [])) or not isinstance(sdist.get("reason", ""), str):
            raise InstallError("%s: 'build-requires' must be a list of strings and 'reason' a string" % at)
        build = sdist.get("build-packages", [])
        if not isinstance(build, list):
            raise InstallError("%s.build-packages must be a list" % at)
        for k, package in enumerate(build):
            _check_package(package, "%s.build-packages[%d]" % (at, k))
            refs.append(("sdists[%d].build-packages[%d].wheel" % (j, k), package.get("wheel")))
    return refs


def _check_profile(profile, where):
    """The parts of a target profile this installer reads: ``facts`` and ``markers``, objects of strings."""
    if not isinstance(profile, dict):
        raise InstallError("%s must be an object" % where)
    for key in ("facts", "markers"):
        value = profile.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise InstallError("%s.%s must be an object" % (where, key))
        for k, v in value.items():
            if v is not None and not isinstance(v, (str, int, float)):  # facts are str()-ed, as the builder does
                raise InstallError("%s.%s[%s] must be a string" % (where, key, _show(k)))


# ---------------------------------------------------------------------------------------
# This machine, the bundle's targets, and wheel tags

Machine = collections.namedtuple(
    "Machine", "implementation python_version os arch libc libc_version macos_version tags"
)
Machine.__doc__ = """What this interpreter is: python_version is (major, minor, micro); tags a list, best first."""


def load_capture_module(bundle_dir, files, module_name=CAPTURE_MODULE):
    """Import the bundle's ``capture_profile.py`` (the same code that captures target profiles),
    or another of its stdlib-only helpers named by ``module_name`` (``publish.py``).

    This runs before the whole bundle is verified, so the file is checked first against its
    entry in ``files`` (bundle.json): refused when it is not listed or its size or sha256
    differ. The very bytes that were checked are compiled and run, never a ``__pycache__``
    file next to it (verification does not look into those).
    """
    path = os.path.join(bundle_dir, module_name)
    if not os.path.lexists(path):
        raise InstallError("the bundle is incomplete: %s is missing from %s" % (module_name, bundle_dir))
    if os.path.islink(path) or not os.path.isfile(path):
        raise InstallError("bundle verification failed: %s: not a regular file" % module_name, hint=VERIFY_HINT)
    expected = files.get(module_name)
    try:
        with open(path, "rb") as f:
            # Keep the first bytes, as many as bundle.json allows, to run; hash the whole file.
            data = f.read(expected["size"] + 1 if expected else 0)
            digest = hashlib.sha256(data)
            size = len(data)
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    except OSError as e:
        raise InstallError("cannot read %s: %s" % (path, e.strerror or e))
    actual = digest.hexdigest()
    if expected is None:
        raise InstallError(
            "bundle verification failed: %s is not listed in bundle.json (found sha256 %s, %d bytes); refusing to run it"
            % (module_name, actual, size),
            hint=VERIFY_HINT,
        )
    if size != expected["size"] or actual != expected["sha256"]:
        raise InstallError(
            "bundle verification failed: %s: expected sha256 %s (%d bytes), found sha256 %s (%d bytes); refusing to run it"
            % (module_name, expected["sha256"], expected["size"], actual, size),
            hint=VERIFY_HINT,
        )
    # size == expected size, so data holds the whole file: exactly the bytes just hashed.
    spec = importlib.util.spec_from_loader("wheelhouse_" + module_name[:-3], loader=None, origin=path)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = path
    exec(compile(data, path, "exec", dont_inherit=True), module.__dict__)  # noqa: S102 - the bytes verified above
    return module


def this_machine(capture):
    """Describe the running interpreter with the helpers of capture_profile.py."""
    # The tag source capture_profile.py records by default: the built-in copy of current pip's
    # logic, which is what installs here (the bundled pip runs from its wheel); an old pip that
    # happens to be importable could reject newer tags.
    tags, _source = capture.supported_tags(capture.DEFAULT_TAGS_METHOD)
    os_name = capture.target_os()
    libc, libc_version = capture.libc_facts()
    mac = capture.macos_version()
    return Machine(
        implementation=sys.implementation.name,
        python_version=tuple(sys.version_info[:3]),
        os=os_name,
        arch=capture.target_arch(os_name),
        libc=libc,
        libc_version=libc_version,
        macos_version="%d.%d" % tuple(mac) if mac else None,
        tags=[t.lower() for t in tags],
    )


def parse_wheel_filename(filename):
    """Return (name, version, set of single tags) of a wheel file name; compressed sets expanded."""
    base = os.path.basename(filename)
    if not base.endswith(".whl"):
        raise InstallError("not a wheel file name: %s" % base)
    parts = base[: -len(".whl")].split("-")
    if len(parts) not in (5, 6) or not all(parts):
        raise InstallError("malformed wheel file name: %s" % base)
    interpreters, abis, platforms = (p.lower().split(".") for p in parts[-3:])
    tags = {"%s-%s-%s" % (i, a, p) for i in interpreters for a in abis for p in platforms}
    return parts[0], parts[1], tags


def _version_tuple(text):
    out = []
    for part in (text or "").split("."):
        m = re.match(r"\d{1,9}", part)  # bounded: a hostile version string never makes a huge int
        if not m:
            break
        out.append(int(m.group(0)))
    return tuple(out)


def _fact(facts, key):
    """A profile fact as text, escaped with ``printable``: facts are compared and printed, never run."""
    value = facts.get(key)
    if value is None:
        value = facts.get(key.replace("-", "_"))
    return None if value is None else printable(str(value))


TargetInfo = collections.namedtuple("TargetInfo", "implementation python os arch libc libc_version macos_version")


def target_info(profile):
    """The facts of a target profile that matter here, with fallbacks to its markers."""
    facts = profile.get("facts") or {}
    markers = profile.get("markers") or {}
    impl = _fact(facts, "implementation") or _fact(markers, "implementation_name")
    version = _fact(facts, "python-version") or _fact(markers, "python_full_version") or _fact(markers, "python_version")
    return TargetInfo(
        implementation=(impl or "").lower() or None,
        python=_version_tuple(version)[:2] or None,
        os=_fact(facts, "os"),
        arch=_fact(facts, "arch"),
        libc=_fact(facts, "libc"),
        libc_version=_fact(facts, "libc-version"),
        macos_version=_fact(facts, "macos-version"),
    )


_IMPL_NAMES = {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalPy"}
_OS_NAMES = {"linux": "Linux", "macos": "macOS", "windows": "Windows"}


def _impl_name(impl):
    return _IMPL_NAMES.get(impl or "", impl or "Python")


def _os_name(os_name):
    return _OS_NAMES.get(os_name or "", os_name or "an unknown OS")


def describe_target(info):
    """``CPython 3.12 on Linux x86_64 (glibc >= 2.28)``, with a real greater-or-equal sign."""
    version = ".".join(str(v) for v in info.python) if info.python else "?"
    text = "%s %s on %s %s" % (_impl_name(info.implementation), version, _os_name(info.os), info.arch or "?")
    if info.libc and info.libc_version:
        text += " (%s %s %s)" % (info.libc, _geq(), info.libc_version)
    elif info.macos_version:
        text += " (macOS %s %s)" % (_geq(), info.macos_version)
    return text


def describe_machine(machine):
    """``CPython 3.11.9 on Linux x86_64 (glibc 2.35)``."""
    text = "%s %s on %s %s" % (
        _impl_name(machine.implementation),
        ".".join(str(v) for v in machine.python_version),
        _os_name(machine.os),
        machine.arch,
    )
    if machine.libc and machine.libc_version:
        text += " (%s %s)" % (machine.libc, machine.libc_version)
    elif machine.macos_version:
        text += " (macOS %s)" % machine.macos_version
    return text


def _platform_problem(plat, machine, capture):
    """Why this machine rejects platform tag ``plat``: (closeness rank, text); lower is closer."""
    geq = _geq()

    def same_arch(arch):
        return capture.normalize_arch(arch) == capture.normalize_arch(machine.arch)

    kind, need, arch = capture.parse_platform_tag(plat) or (None, None, None)
    if kind in ("glibc", "musl"):
        if machine.os != "linux":
            return 3, "built for Linux (%s %s %d.%d); this machine runs %s" % (kind, geq, need[0], need[1], _os_name(machine.os))
        if not same_arch(arch):
            return 2, "built for %s; this machine is %s" % (arch, machine.arch)
        if machine.libc != kind:
            return 1, "built for %s; this machine uses %s" % (kind, machine.libc or "an unknown libc")
        if _version_tuple(machine.libc_version) < need:
            return 0, "needs %s %s %d.%d; this machine has %s %s" % (kind, geq, need[0], need[1], kind, machine.libc_version)
        return 0, "%s is not accepted by this interpreter" % plat
    if kind == "macos":
        if machine.os != "macos":
            return 3, "built for macOS %s %d.%d; this machine runs %s" % (geq, need[0], need[1], _os_name(machine.os))
        if arch not in ("universal2", "universal", "intel") and not same_arch(arch):
            return 2, "built for %s; this machine is %s" % (arch, machine.arch)
        return 0, "needs macOS %s %d.%d; this machine has macOS %s" % (geq, need[0], need[1], machine.macos_version)
    if kind == "windows":
        if machine.os != "windows":
            return 3, "built for Windows (%s); this machine runs %s" % (plat, _os_name(machine.os))
        return 2, "built for %s; this machine is %s" % (arch, machine.arch)
    if kind == "linux":
        if machine.os != "linux":
            return 3, "built for Linux (%s); this machine runs %s" % (plat, _os_name(machine.os))
        return 2, "built for %s; this machine is %s" % (arch, machine.arch)
    return 3, "built for platform %s" % plat


def wheel_problem(filename, machine, capture):
    """None when ``machine`` accepts the wheel, else a short reason it does not.

    ``capture`` is the bundle's capture_profile module, whose platform-tag and architecture
    helpers are shared with the builder.
    """
    _name, _version, tags = parse_wheel_filename(filename)
    supported = set(machine.tags)
    if tags & supported:
        return None
    machine_plats = {t.split("-")[2] for t in supported}
    plats = sorted({t.split("-")[2] for t in tags})
    if not any(p in machine_plats for p in plats):
        return min(_platform_problem(p, machine, capture) for p in plats)[1]
    interpreters = sorted({t.split("-")[0] for t in tags})
    machine_interpreters = {t.split("-")[0] for t in supported}
    here = "%s %s" % (_impl_name(machine.implementation), "%d.%d" % machine.python_version[:2])
    if not any(i in machine_interpreters for i in interpreters):
        return "built for %s; this machine runs %s" % (".".join(interpreters), here)
    abis = sorted({t.split("-")[1] for t in tags})
    return "built for the %s ABI; %s does not accept it" % (".".join(abis), here)


TargetCheck = collections.namedtuple("TargetCheck", "target info differences bad_wheels")


def target_wheels(target):
    """The wheels a target installs: its packages, the build requirements of the sdists it builds,
    and its bootstrap pip."""
    wheels = [p["wheel"] for p in target["packages"]]
    for sdist in target.get("sdists", []):
        wheels.extend(p["wheel"] for p in sdist.get("build-packages", []) if p["wheel"] not in wheels)
    if target["pip"] not in wheels:
        wheels.append(target["pip"])
    return wheels


def _libc_text(libc, version):
    return "%s %s" % (libc, version) if version else libc


def libc_mismatch(info, machine):
    """On Linux, a sentence when the target's C library family (glibc, musl) is not this machine's.

    Only the family is compared: the wheels' tags decide which libc version is new enough (a
    target with glibc 2.39 whose wheels are all pure installs on glibc 2.17). None when they
    match, when either side is not Linux, or when either libc is unknown.
    """
    if machine.os != "linux" or (info.os or "linux").lower() != "linux":
        return None
    if not info.libc or not machine.libc or info.libc.lower() == machine.libc.lower():
        return None
    return "is for Linux %s with %s; this machine has %s" % (
        info.arch or machine.arch,
        _libc_text(info.libc, info.libc_version),
        _libc_text(machine.libc, machine.libc_version),
    )


def check_target(target, machine, capture):
    """Compare one target with this machine: what differs, and which wheels cannot install here."""
    info = target_info(target["profile"])
    differences = []
    if info.implementation and info.implementation != machine.implementation:
        differences.append("implementation")
    if info.python and tuple(info.python) != tuple(machine.python_version[:2]):
        differences.append("python")
    if info.os and info.os.lower() != machine.os:
        differences.append("os")
    if info.arch and capture.normalize_arch(info.arch) != capture.normalize_arch(machine.arch):
        differences.append("arch")
    if libc_mismatch(info, machine):
        differences.append("libc")
    bad = []
    for rel in target_wheels(target):
        problem = wheel_problem(rel, machine, capture)
        if problem:
            bad.append((rel, problem))
    return TargetCheck(target, info, differences, bad)


def choose_target(manifest, machine, capture):
    """The first target this machine fits; raises InstallError naming what differs otherwise."""
    checks = [check_target(t, machine, capture) for t in manifest["targets"]]
    for check in checks:
        if not check.differences and not check.bad_wheels:
            return check
    def distance(c):
        minors = abs(c.info.python[1] - machine.python_version[1]) if c.info.python and len(c.info.python) > 1 else 99
        return (len(c.differences), len(c.bad_wheels), minors)

    closest = min(checks, key=distance)
    this = describe_machine(machine)
    if len(checks) == 1:
        message = "this bundle is for %s; this machine runs %s" % (describe_target(closest.info), this)
    else:
        message = "none of this bundle's %d targets fits this machine; the closest, %r, is for %s; this machine runs %s" % (
            len(checks),
            closest.target["name"],
            describe_target(closest.info),
            this,
        )
    details = []
    libc = libc_mismatch(closest.info, machine)
    if libc:
        details.append("the C library differs: %s %s" % ("this bundle" if len(checks) == 1 else "that target", libc))
    if closest.bad_wheels:
        details.append("%d of its wheels cannot install here:" % len(closest.bad_wheels))
        details.extend("  %s: %s" % (os.path.basename(rel), why) for rel, why in closest.bad_wheels)
    raise InstallError(
        message,
        details,
        hint="run install.sh with a matching interpreter (--python PATH), or build a bundle for this machine: "
        "run 'python3 capture_profile.py -o this-machine.json' here and give that file to "
        "'wheelhouse build --profile' on the connected machine",
    )


def nvidia_warning(check, capture):
    """A warning when the target had an NVIDIA driver and this machine has none or an older one."""
    want = _fact(check.target["profile"].get("facts") or {}, "nvidia-driver")
    if not want:
        return None
    have = capture.nvidia_driver_version()
    if have is None:
        return "the bundle was made for a machine with NVIDIA driver %s; none was found here, so GPU code may not run" % want
    if _version_tuple(have) < _version_tuple(want):
        return "the bundle was made for NVIDIA driver %s; this machine has %s, which may be too old for its CUDA wheels" % (want, have)
    return None


# ---------------------------------------------------------------------------------------
# File verification


def sha256_of(path, chunk=1 << 20):
    """(sha256 hex, size) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _same_path(a, b):
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def not_in_bundle(rel_dir):
    """Whether the directory ``rel_dir`` (POSIX, relative to the unpacked bundle) is no part of it.

    Only byte-code caches (``__pycache__``, at any depth) are: Python may write them next to
    any module it imports, and nothing here runs from them. Everything else under the bundle
    directory, a venv included, must be listed in bundle.json. This installer and the builder's
    ``wheelhouse verify DIR`` use this one rule (tests/test_parity.py).
    """
    return rel_dir.rsplit("/", 1)[-1] == "__pycache__"


def files_on_disk(bundle_dir, skip_dirs=()):
    """Relative POSIX paths of every file (and link) under ``bundle_dir``, but the two files
    bundle.json cannot list: itself and ``bundle.json.sig`` (at the top only).

    The directories ``not_in_bundle`` names and those in ``skip_dirs`` (the venv this run makes
    or was told to reuse, when it lies inside the bundle) are not looked into.
    """
    found = set()
    errors = []

    def onerror(e):
        errors.append(e)

    for root, dirs, names in os.walk(bundle_dir, onerror=onerror):
        rel_root = os.path.relpath(root, bundle_dir)
        prefix = "" if rel_root == os.curdir else rel_root.replace(os.sep, "/") + "/"
        kept = []
        for d in dirs:
            full = os.path.join(root, d)
            if not_in_bundle(prefix + d) or any(_same_path(full, sd) for sd in skip_dirs):
                continue
            if os.path.islink(full):
                found.add(prefix + d)  # never followed: reported as an extra file
                continue
            kept.append(d)
        dirs[:] = kept
        for n in names:
            if prefix or n not in (MANIFEST, SIGNATURE):
                found.add(prefix + n)
    if errors:
        e = errors[0]
        raise InstallError("cannot read the bundle directory %s: %s" % (printable(getattr(e, "filename", bundle_dir)), e.strerror or e))
    return found


def unlisted_groups(unlisted, listed):
    """Group unlisted paths: [(path, count, is_venv)], sorted; ``count`` is None for a single file.

    A venv or a copied tree inside the bundle directory is thousands of files: it is named once,
    as its outermost directory that holds nothing ``listed``, with its file count; ``is_venv`` when
    that directory holds a ``pyvenv.cfg``. Pure, so the builder's verify reports alike.
    """
    listed_dirs = set()
    for rel in listed:
        parts = rel.split("/")
        listed_dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    groups = collections.OrderedDict()
    for rel in sorted(unlisted):
        parts = rel.split("/")
        top = next(("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) not in listed_dirs), None)
        groups.setdefault(top or rel, []).append(rel)
    out = []
    for key, members in groups.items():
        if len(members) == 1:
            out.append((members[0], None, False))
        else:
            out.append((key, len(members), key + "/pyvenv.cfg" in unlisted))
    return out


def describe_unlisted(path, count, is_venv, single):
    """One problem line for an item of ``unlisted_groups``; ``single`` is the phrase for one file."""
    if count is None:
        return "%s%s" % (printable(path), single)
    if is_venv:
        return (
            "%s/: a virtual environment inside the bundle directory (%d files, not listed in bundle.json); "
            "it is no part of the bundle and never used unless named with --venv" % (printable(path), count)
        )
    return "%s/: unexpected directory (%d files, not listed in bundle.json)" % (printable(path), count)


def verify_files(bundle_dir, files, skip_dirs=()):
    """Check sizes and sha256 of every listed file, and that nothing is missing or extra."""
    present = files_on_disk(bundle_dir, skip_dirs)
    problems = []
    for rel in sorted(set(files) - present):
        problems.append("%s: missing (bundle.json lists it)" % printable(rel))
    problems.extend(describe_unlisted(p, n, v, ": unexpected file (not listed in bundle.json)")
                    for p, n, v in unlisted_groups(present - set(files), files))
    for rel in sorted(set(files) & present):
        path = os.path.join(bundle_dir, *rel.split("/"))
        expected = files[rel]
        if os.path.islink(path) or not os.path.isfile(path):
            problems.append("%s: not a regular file" % printable(rel))
            continue
        try:
            actual, size = sha256_of(path)
        except OSError as e:
            problems.append("%s: cannot read: %s" % (printable(rel), e.strerror or e))
            continue
        if actual != expected["sha256"] or size != expected["size"]:
            problems.append(
                "%s: expected sha256 %s (%d bytes), found sha256 %s (%d bytes)"
                % (printable(rel), expected["sha256"], expected["size"], actual, size)
            )
    if not problems:
        return len(files)
    if len(problems) == 1:
        raise InstallError("bundle verification failed: " + problems[0], hint=VERIFY_HINT)
    raise InstallError("bundle verification failed: %d problems" % len(problems), problems, hint=VERIFY_HINT)


def base_files(manifest):
    """The paths a delta bundle expects from its base bundle (empty for a full bundle)."""
    base = manifest.get("base")
    return list(base["files"]) if base else []


def carried_files(manifest):
    """The ``files`` entries the bundle directory itself must hold: all but a delta's base files."""
    skip = set(base_files(manifest))
    return dict((rel, v) for rel, v in manifest["files"].items() if rel not in skip)


def verify_base_files(with_dir, files, wanted):
    """Check each of ``wanted`` in the old bundle directory ``with_dir`` against ``files`` (the new
    bundle.json): a regular file with the listed size and sha256. Other files there are not read."""
    if not os.path.isdir(with_dir):
        raise InstallError("--with %s: no such directory" % printable(with_dir),
                           hint="give the unpacked directory of the bundle this delta was made from")
    problems = []
    for rel in sorted(wanted):
        path = os.path.join(with_dir, *rel.split("/"))
        expected = files[rel]
        if os.path.islink(path) or not os.path.isfile(path):
            problems.append("%s: %s" % (printable(rel), "not a regular file" if os.path.lexists(path) else "missing"))
            continue
        try:
            actual, size = sha256_of(path)
        except OSError as e:
            problems.append("%s: cannot read: %s" % (printable(rel), e.strerror or e))
            continue
        if actual != expected["sha256"] or size != expected["size"]:
            problems.append("%s: expected sha256 %s (%d bytes), found sha256 %s (%d bytes)"
                            % (printable(rel), expected["sha256"], expected["size"], actual, size))
    if problems:
        raise InstallError(
            "the base bundle %s does not hold what this delta needs: %d problem(s)" % (printable(with_dir), len(problems)),
            problems, hint="give --with the unpacked directory of the bundle this delta was made from, unchanged")
    return len(wanted)


def verify_bundle(bundle_dir, manifest, with_dir, skip_dirs=()):
    """Verify the whole set: the bundle's own files, and a delta's base files in ``with_dir``.

    Returns ``{path in bundle.json: file on disk}`` for every file of the set, and the count checked.
    """
    base = base_files(manifest)
    if base and not with_dir:
        b = manifest["base"]
        raise InstallError(
            "this is a delta bundle: %d of its files are expected from the bundle %s (lock sha256 %s...)"
            % (len(base), printable(b["name"]), printable(b["lock-sha256"][:12])),
            hint="run it with --with OLD_BUNDLE_DIR, the unpacked directory of that bundle")
    count = verify_files(bundle_dir, carried_files(manifest), skip_dirs)
    if base:
        count += verify_base_files(with_dir, manifest["files"], base)
    paths = dict((rel, os.path.join(bundle_dir, *rel.split("/"))) for rel in manifest["files"])
    paths.update((rel, os.path.join(with_dir, *rel.split("/"))) for rel in base)
    return paths, count


# ---------------------------------------------------------------------------------------
# Sdists built on this machine

# pip learned --build-constraint (pins for isolated build environments only) in 25.3.
_BUILD_CONSTRAINT_PIP = (25, 3)
_BUILD_TOOLS_HINT = (
    "install a C compiler and the Python development headers for this Python (Debian/Ubuntu: apt-get install gcc "
    "python3-dev; Fedora/RHEL: dnf install gcc python3-devel), or name a compiler with CC=...; then run install.sh again"
)


def find_compiler(environ):
    """(path, how it was found) of the C compiler a build would use: ``CC`` (its first word) when
    set, else cc, gcc or clang on PATH; (None, what was looked for) when there is none."""
    path = environ.get("PATH", os.defpath)
    cc = environ.get("CC", "").strip()
    if cc:
        try:
            first = shlex.split(cc)[0]
        except (ValueError, IndexError):
            first = cc
        found = shutil.which(first, path=path)
        return (found, "CC=%s" % cc) if found else (None, "CC=%s, which is not an executable on PATH" % cc)
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name, path=path)
        if found:
            return found, name
    return None, "no cc, gcc or clang on PATH, and CC is not set"


def python_headers():
    """(path of this interpreter's Python.h or None, the folder it should be in)."""
    import sysconfig

    include = sysconfig.get_paths().get("include") or ""
    header = os.path.join(include, "Python.h")
    return (header if include and os.path.isfile(header) else None), include


def describe_sdists(target):
    """Lines naming each sdist this target builds and the wheels its build uses."""
    lines = []
    for sdist in target.get("sdists", []):
        reqs = ", ".join("%s %s" % (p["name"], p["version"]) for p in sdist.get("build-packages", [])) or "none"
        why = (" (%s)" % printable(sdist["reason"])) if sdist.get("reason") else ""  # free text: one line, escaped
        lines.append("  %s %s from %s%s; build requirements: %s" % (
            sdist["name"], sdist["version"], sdist["sdist"].rsplit("/", 1)[-1], why, reqs))
    return lines


def check_build_tools(target, environ):
    """Say which sdists this machine builds and whether a C compiler and the Python headers are
    here; InstallError (before anything is installed) when either is missing."""
    sdists = target.get("sdists", [])
    if not sdists:
        return
    _say("this machine builds %d package(s) from source, offline, from the bundle's files:" % len(sdists))
    for line in describe_sdists(target):
        _say(line)
    if os.name == "nt":  # the build backend finds MSVC itself; there is no cc to look for
        _say("  C compiler and Python headers: not checked on Windows")
        return
    compiler, how = find_compiler(environ)
    header, include = python_headers()
    _say("  C compiler: %s" % ("%s (%s)" % (compiler, how) if compiler else "missing: " + how))
    _say("  Python headers: %s" % (header or "missing: no Python.h in %s" % (include or "this Python's include folder")))
    missing = ([] if compiler else ["a C compiler (%s)" % how]) + (
        [] if header else ["the Python headers (no Python.h in %s)" % (include or "this Python's include folder")])
    if missing:
        raise InstallError("cannot build %s here: %s; nothing was installed" % (
            ", ".join("%s %s" % (s["name"], s["version"]) for s in sdists), " and ".join(missing)), hint=_BUILD_TOOLS_HINT)


def build_constraints(target):
    """``name==version`` lines pinning the build requirements of this target's sdists, for pip's
    ``--build-constraint``; None when the bundled pip predates it. A name locked at two versions
    (two sdists that need different ones) is left to each build's own requirements."""
    pip_version = _version_tuple(target["pip"].rsplit("/", 1)[-1].split("-")[1])
    if pip_version < _BUILD_CONSTRAINT_PIP:
        return None
    versions = {}
    for sdist in target.get("sdists", []):
        for p in sdist.get("build-packages", []):
            versions.setdefault(canonical(p["name"]), set()).add(p["version"])
    return "".join("%s==%s\n" % (name, next(iter(v))) for name, v in sorted(versions.items()) if len(v) == 1)


def build_setup(target, paths, base, tmp):
    """For a target that builds sdists: (keyword arguments for ``plan_commands``, variables for pip's
    environment) that keep the build inside ``tmp`` (pip's temporary folders and any cache) and its
    build requirements to the verified files. ``tmp`` None (a dry run) only names the paths."""
    if not target.get("sdists"):
        return {}, {}
    where = tmp or "$BUILD_TMP"
    kwargs = {}
    pins = build_constraints(target)
    if pins:
        kwargs["build_constraint"] = os.path.join(where, "build-constraints.txt")
        if tmp:
            with open(kwargs["build_constraint"], "w") as f:
                f.write(pins)
    if base:
        kwargs["base_links"] = os.path.join(where, "base-wheels")
        if tmp:
            link_base_files(paths, base, kwargs["base_links"])
    env = {"TMPDIR": os.path.join(where, "tmp"), "PIP_CACHE_DIR": os.path.join(where, "cache")}
    if tmp:
        os.mkdir(env["TMPDIR"])
    return kwargs, env


def link_base_files(paths, base, dest):
    """A folder of links to a delta's verified base files, for pip's --find-links when it builds:
    an isolated build environment takes what it finds there without hash checks."""
    os.mkdir(dest)
    for rel in base:
        if rel.startswith("wheels/"):
            os.symlink(os.path.abspath(paths[rel]), os.path.join(dest, rel.rsplit("/", 1)[-1]))
    return dest


# ---------------------------------------------------------------------------------------
# Signature (--trust): the same ssh-keygen commands as the builder's bundler/signing.py


def _ssh_keygen():
    tool = shutil.which("ssh-keygen")
    if tool is None:
        raise InstallError(
            "--trust needs ssh-keygen (OpenSSH 8.2 or newer) to check the bundle's signature, and there is none "
            "on PATH; nothing was installed",
            hint="install the OpenSSH client, or check the bundle on a machine that has it "
            "(wheelhouse verify BUNDLE --trust ALLOWED_SIGNERS)")
    return tool


def check_signature(data, signature, allowed_signers):
    """The principal of ``allowed_signers`` whose key signed ``data`` (bundle.json's bytes) with
    ``signature``; InstallError naming why not: a bad signature, or an unknown signer."""
    tool = _ssh_keygen()
    bad = InstallError("the signature does not match bundle.json (bad signature); nothing was installed",
                       hint="the bundle was changed after it was signed: do not install it")
    tmp = tempfile.mkdtemp(prefix="wheelhouse-verify-")
    try:
        sig = os.path.join(tmp, SIGNATURE)
        with open(sig, "wb") as f:
            f.write(signature)

        def keygen(args, stdin):
            return subprocess.run([tool, "-Y"] + args + ["-s", sig], input=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=60)

        found = keygen(["find-principals", "-f", allowed_signers], None)
        principals = [p for p in found.stdout.decode("utf-8", "replace").split() if p]
        if found.returncode != 0 or not principals:
            # No listed key made it: a signature that holds for some key is an unknown signer.
            if keygen(["check-novalidate", "-n", SIGNING_NAMESPACE], data).returncode != 0:
                raise bad
            raise InstallError(
                "the bundle is signed by a key that %s does not list (unknown signer); nothing was installed"
                % printable(allowed_signers),
                hint="add the signer's public key to the allowed_signers file if you trust it")
        for principal in principals:
            if keygen(["verify", "-f", allowed_signers, "-I", principal, "-n", SIGNING_NAMESPACE], data).returncode == 0:
                return principal
        raise bad
    except (OSError, subprocess.SubprocessError) as e:
        raise InstallError("cannot run ssh-keygen to check the signature: %s; nothing was installed" % printable(str(e)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def authenticate(bundle_dir, trust):
    """bundle.json's bytes, authenticated against the allowed_signers file ``trust`` when given,
    before anything else of the bundle is read or run. Without ``trust``, the bytes as they are
    (the caller says the bundle is not authenticated: ``unauthenticated``)."""
    data = read_manifest_bytes(bundle_dir)
    sig_path = os.path.join(bundle_dir, SIGNATURE)
    if trust is None:
        return data
    if not os.path.isfile(trust):
        raise InstallError("--trust %s: no such allowed_signers file" % printable(trust),
                           hint="give the OpenSSH allowed_signers file that lists the keys your site trusts")
    if not os.path.lexists(sig_path):
        raise InstallError("the bundle is not signed (no %s), and --trust requires a signature (unsigned); "
                           "nothing was installed" % SIGNATURE,
                           hint="ask for a bundle signed with 'wheelhouse pack --sign-key KEY'")
    try:
        if os.path.islink(sig_path) or not os.path.isfile(sig_path):
            raise OSError("not a regular file")
        with open(sig_path, "rb") as f:
            signature = f.read(MAX_SIGNATURE + 1)
    except OSError as e:
        raise InstallError("cannot read %s (bad signature): %s; nothing was installed" % (SIGNATURE, e.strerror or e))
    if len(signature) > MAX_SIGNATURE:
        raise InstallError("%s has more than %d bytes, more than any SSH signature (bad signature); nothing was installed"
                           % (SIGNATURE, MAX_SIGNATURE), hint="do not install it")
    principal = check_signature(data, signature, os.path.abspath(trust))
    _say("bundle.json is signed by %s, whom %s lists" % (printable(principal), printable(trust)))
    return data


def unauthenticated(bundle_dir):
    """The note printed when no --trust was given."""
    signed = os.path.lexists(os.path.join(bundle_dir, SIGNATURE))
    return "note: the bundle is not authenticated (%s; --trust ALLOWED_SIGNERS checks who made it)" % (
        "it is signed, but the signature was not checked" if signed else "it is not signed")


# ---------------------------------------------------------------------------------------
# Virtual environment and commands


def venv_python(venv):
    if os.name == "nt":
        return os.path.join(venv, "Scripts", "python.exe")
    return os.path.join(venv, "bin", "python")


def read_pyvenv_cfg(venv):
    """The key/value pairs of ``venv/pyvenv.cfg``, or None when there is none."""
    path = os.path.join(venv, "pyvenv.cfg")
    try:
        with open(path, "r") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    out = {}
    for line in text.splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            out[key.strip().lower()] = value.strip()
    return out


def existing_venv(venv):
    """None when a new venv can be made at ``venv``; else the (major, minor) of the venv there.

    Raises InstallError when the path is taken by something that is not a venv.
    """
    if not os.path.lexists(venv):
        return None
    if not os.path.isdir(venv):
        raise InstallError("%s exists and is not a directory" % venv, hint="choose another place with --venv DIR")
    cfg = read_pyvenv_cfg(venv)
    if cfg is None:
        if os.listdir(venv):
            raise InstallError(
                "%s exists and is not a virtual environment (no pyvenv.cfg)" % venv,
                hint="remove it or choose another place with --venv DIR",
            )
        return None
    version = _version_tuple(cfg.get("version") or cfg.get("version_info"))[:2]
    if len(version) != 2:
        raise InstallError("%s/pyvenv.cfg does not say which Python the venv uses" % venv, hint="remove the venv or choose another --venv DIR")
    if version != tuple(sys.version_info[:2]):
        raise InstallError(
            "%s is a venv for Python %d.%d; this installer runs Python %d.%d" % ((venv,) + version + tuple(sys.version_info[:2])),
            hint="remove it, choose another place with --venv DIR, or run install.sh --python with a Python %d.%d" % version,
        )
    if not os.path.exists(venv_python(venv)):
        raise InstallError("%s is a broken venv: %s is missing" % (venv, venv_python(venv)), hint="remove it and run install.sh again")
    return version


_VENV_PROBE = "import sys; print('%s %d.%d' % (sys.implementation.cache_tag, sys.version_info[0], sys.version_info[1]))"


def child_env(environ):
    """The environment for pip, uv and the smoke tests: no pip or uv settings, no proxies, no user site."""
    env = {}
    for key, value in environ.items():
        upper = key.upper()
        if upper.startswith(("PIP_", "UV_")) or upper in _PROXY_VARS or upper in _PYTHON_VARS:
            continue
        env[key] = value
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PYTHONNOUSERSITE"] = "1"
    return env


Plan = collections.namedtuple("Plan", "make_venv install install_pip check smoke compile installer uninstall")

# Run by the venv's python: writes the .pyc files of the bundle's pre-compiled bytecode, then
# byte-compiles the rest of site-packages on every core (see byte_compile).
_COMPILE = "import sys; sys.path.insert(0, sys.argv[1]); import install; install.byte_compile(sys.argv[2], sys.argv[3:])"


def byte_compile(magic, archives):
    """Byte-compile the running interpreter's site-packages, as pip would one file at a time.

    First, when ``magic`` is this interpreter's bytecode magic number, the pre-compiled bodies in
    ``archives`` (bundler.bytecode: entry = path relative to site-packages, bytes = the marshalled
    module) become .pyc files with the header ``compileall`` writes, from the installed source's
    own mtime and size. Then ``compileall`` on every core compiles whatever is not up to date,
    skipping (as pip does) files that do not compile, so only a crash of the compiler fails it.
    """
    import compileall
    import importlib.util
    import sysconfig

    dirs = sorted(set([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]))
    if archives and importlib.util.MAGIC_NUMBER.hex() == magic:
        for archive in archives:
            write_pycs(archive, dirs)
    for d in dirs:
        compileall.compile_dir(d, quiet=2, workers=0)


def write_pycs(archive, dirs):
    """Write the .pyc of every module in the bytecode ``archive`` whose source is installed in one of
    ``dirs``; entries that are not plain relative ``.py`` paths are ignored."""
    import importlib.util
    import struct
    import zipfile

    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename
            if not name.endswith(".py") or not _is_safe_relpath(name) or "\\" in name:
                continue
            for d in dirs:
                source = os.path.join(d, *name.split("/"))
                try:
                    st = os.lstat(source)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    header = importlib.util.MAGIC_NUMBER + struct.pack("<III", 0, int(st.st_mtime) & 0xFFFFFFFF,
                                                                       st.st_size & 0xFFFFFFFF)
                    _write_pyc(importlib.util.cache_from_source(source), header + zf.read(info), st.st_mode & 0o666)
                break


def _write_pyc(path, data, mode):
    """Write ``path`` atomically, as py_compile does (with importlib's own writer), never into a
    ``__pycache__`` that is a link or not a folder."""
    from importlib._bootstrap_external import _write_atomic

    folder = os.path.dirname(path)
    try:
        os.mkdir(folder)
    except FileExistsError:
        if os.path.islink(folder) or not os.path.isdir(folder):
            return
    _write_atomic(path, data, mode or 0o644)


# The distributions in the venv's site-packages, as [name, version] pairs.
_LIST_DISTS = (
    "import importlib.metadata as m, json, sysconfig\n"
    "dirs = sorted({sysconfig.get_path('purelib'), sysconfig.get_path('platlib')})\n"
    "print(json.dumps(sorted([d.metadata['Name'], d.version] for d in m.distributions(path=dirs) if d.metadata['Name'])))\n"
)
# uv without its config files, user cache or network: every file comes from the bundle. Its cache is
# a folder inside the venv (UV_CACHE_NAME), so the unpacked files are hard-linked into site-packages
# on the same filesystem instead of copied; the folder is removed right after the install.
UV_CACHE_NAME = ".wheelhouse-uv-cache"


def _uv_offline(venv):
    return ["--offline", "--no-index", "--no-config", "--cache-dir", os.path.join(venv, UV_CACHE_NAME), "--link-mode", "hardlink"]


def shipped_bytecode(bundle_dir, with_dir, manifest, target):
    """(magic, [archive path]) of the bytecode the builder compiled for ``target``, or None."""
    bc = target.get("bytecode")
    if not bc:
        return None
    base = set(base_files(manifest))
    return bc["magic"], [os.path.join(with_dir if rel in base and with_dir else bundle_dir, *rel.split("/"))
                         for _, rel in sorted(bc["files"].items())]


def plan_commands(bundle_dir, target, venv, smoke, reuse, with_dir=None, from_base=(), installer="pip", uv=None,
                  compile=True, extras=(), bytecode=None, base_links=None, build_constraint=None):
    """The exact argv lists to run, as a Plan. With ``with_dir`` (a delta's base bundle), the
    installer also finds wheels there, and the bootstrap pip comes from there when it is one of
    ``from_base``. ``installer`` "uv" runs the uv binary at ``uv`` (extracted from the bundle's
    verified uv wheel); "pip" runs the bundled pip straight from its wheel. Both install without
    byte-compiling (pip through PIP_COMPILE=0 in its environment), so both leave the same files,
    and ``compile`` compiles afterwards on every core, writing first the .pyc files of ``bytecode``
    ((magic, [archive paths]), compiled by the builder) when that magic is the target's.
    ``extras`` (distributions outside the lock, for --exact) are uninstalled first.

    The target's ``sdists`` are built by pip (never uv): ``--only-binary :all: --no-binary NAME,...``
    lets it build exactly those, in isolated build environments that inherit ``--no-index`` and the
    ``--find-links`` folders, with ``build_constraint`` (a file of ``name==version`` pins) passed as
    ``--build-constraint``. ``base_links`` replaces the delta's ``with_dir/wheels`` there: a folder
    of links to the base files just verified, so a build requirement cannot come from an unchecked file."""
    py = venv_python(venv)
    pip_home = with_dir if with_dir and target["pip"] in from_base else bundle_dir
    pip_wheel = os.path.join(pip_home, *target["pip"].split("/"))
    pip = [py, os.path.join(pip_wheel, "pip")]
    quiet = ["--no-cache-dir", "--disable-pip-version-check", "--no-input"]
    requirements = os.path.join(bundle_dir, *target["requirements"].split("/"))
    links = ["--find-links", os.path.join(bundle_dir, "wheels")] + (["--find-links", base_links or os.path.join(with_dir, "wheels")] if with_dir else [])
    sdists = sorted(canonical(s["name"]) for s in target.get("sdists", []))
    names = {re.sub(r"[-_.]+", "-", p["name"]).lower() for p in target["packages"]}
    # pip by name and version from the folder holding its (verified) wheel, not by path: an install
    # from a path or URL leaves a direct_url.json, and pip and uv write different ones.
    pip_pin = ["--find-links", os.path.dirname(pip_wheel), "pip==" + target["pip"].rsplit("/", 1)[-1].split("-")[1]]
    if installer == "uv" and sdists:
        raise InstallError("internal: uv was chosen for a target that builds sdists")
    if installer == "uv":
        # uv takes a plain --find-links path up to a ';' or ' #' (a requirements-file comment); a
        # file: URL, percent-encoded, is read whole.
        links = [a if a == "--find-links" else pathlib.Path(a).as_uri() for a in links]
        pip_pin = ["--find-links", pathlib.Path(pip_pin[1]).as_uri(), pip_pin[2]]
        install = [uv, "pip", "install"] + _uv_offline(venv) + links + ["--require-hashes", "--no-build", "--python", py, "-r", requirements]
        install_pip = None if "pip" in names else [uv, "pip", "install"] + _uv_offline(venv) + ["--no-deps", "--no-build", "--python", py] + pip_pin
        check = [uv, "pip", "check", "--offline", "--no-config", "--no-cache", "--python", py]
        uninstall = [uv, "pip", "uninstall", "--offline", "--no-config", "--no-cache", "--python", py] + list(extras)
    else:
        build = (["--no-binary", ",".join(sdists)] if sdists else []) + (["--build-constraint", build_constraint] if build_constraint else [])
        install = pip + ["install", "--no-index"] + links + ["--require-hashes", "--only-binary", ":all:"] + build + quiet + ["-r", requirements]
        install_pip = None if "pip" in names else pip + ["install", "--no-index", "--no-deps", "--only-binary", ":all:"] + quiet + pip_pin
        check = pip + ["check", "--disable-pip-version-check"]
        uninstall = pip + ["uninstall", "--yes", "--disable-pip-version-check"] + list(extras)
    return Plan(
        make_venv=None if reuse else [sys.executable, "-m", "venv", "--without-pip", venv],
        install=install,
        install_pip=install_pip,
        check=check,
        smoke=[[py, "-c", cmd] for cmd in smoke],
        compile=[py, "-I", "-B", "-c", _COMPILE, bundle_dir, bytecode[0] if bytecode else "-"]
        + (list(bytecode[1]) if bytecode else []) if compile else None,
        installer=installer,
        uninstall=uninstall if extras else None,
    )


# ---------------------------------------------------------------------------------------
# The fast installer (uv), and exactly the locked set


_UV_SCRIPT = re.compile(r"^[^/]+\.data/scripts/(uv|uv\.exe)$")
_MAX_UV = 512 << 20  # the uv binary is some 40 MB; anything far larger is not one


def choose_installer(requested, target, machine, capture):
    """"uv" when the bundle has a uv wheel for ``target`` that runs here (or ``requested`` says so),
    else "pip"; InstallError when ``--installer uv`` cannot be honoured. A target that builds sdists
    installs with pip (see the module docstring)."""
    uv_rel = target.get("uv")
    if requested == "pip":
        return "pip"
    if target.get("sdists"):
        if requested == "uv":
            raise InstallError("--installer uv: this bundle builds %s from source here, which install.sh does with the bundled pip "
                               "only" % printable(", ".join(s["name"] for s in target["sdists"])),
                               hint="run install.sh without --installer, or with --installer pip")
        return "pip"
    problem = wheel_problem(uv_rel.rsplit("/", 1)[-1], machine, capture) if uv_rel else "the bundle has no uv wheel for this target"
    if problem is None:
        return "uv"
    if requested == "uv":
        raise InstallError("--installer uv: %s" % printable(problem), hint="run install.sh --installer pip, which every bundle supports")
    return "pip"


def extract_uv(wheel_path, sha256, dest_dir):
    """Read the uv wheel once, check its sha256 against bundle.json's, and write the uv binary it
    holds (``*.data/scripts/uv``) into ``dest_dir``; returns the binary's path. The bytes checked
    are the bytes extracted, so nothing swapped in after verification runs."""
    try:
        with open(wheel_path, "rb") as f:
            data = f.read(_MAX_UV + 1)
    except OSError as e:
        raise InstallError("cannot read %s: %s" % (printable(wheel_path), e.strerror or e), hint=VERIFY_HINT)
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise InstallError("%s has sha256 %s, bundle.json says %s" % (printable(wheel_path), actual, sha256), hint=VERIFY_HINT)
    want = "uv.exe" if os.name == "nt" else "uv"
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [i for i in zf.infolist() if _UV_SCRIPT.match(i.filename) and i.filename.endswith("/" + want)]
            if len(members) != 1 or members[0].file_size > _MAX_UV:
                raise InstallError("%s holds no single %s binary under *.data/scripts/" % (printable(wheel_path), want),
                                   hint="run install.sh --installer pip")
            binary = zf.read(members[0])
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise InstallError("%s is not a readable wheel: %s" % (printable(wheel_path), e), hint="run install.sh --installer pip")
    path = os.path.join(dest_dir, want)
    with open(path, "wb") as f:
        f.write(binary)
    os.chmod(path, 0o755)
    return path


def canonical(name):
    """A project name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions(venv, env):
    """``{canonical name: (name, version)}`` of what the venv's site-packages hold."""
    try:
        out = subprocess.check_output([venv_python(venv), "-I", "-c", _LIST_DISTS], env=env, stdin=subprocess.DEVNULL,
                                      universal_newlines=True)
        pairs = json.loads(out)
    except (OSError, subprocess.CalledProcessError, ValueError) as e:
        raise InstallError("cannot list the packages in the venv %s: %s" % (printable(venv), getattr(e, "strerror", None) or e))
    return dict((canonical(n), (n, v)) for n, v in pairs)


def outside_lock(installed, target):
    """The installed distributions the lock does not name, sorted; pip is kept (install.sh puts it
    in every venv it makes, as ``python -m venv`` does), as pip-sync keeps it."""
    locked = set(canonical(p["name"]) for p in target["packages"]) | {"pip"}
    return sorted(nv for key, nv in installed.items() if key not in locked)


def quote(argv):
    """A shell rendering of ``argv`` for display, control characters escaped."""
    return " ".join(shlex.quote(printable(a)) for a in argv)


def call(argv, env, cwd=None):
    """Run a child with inherited stdout/stderr and return its exit status."""
    try:
        return subprocess.call(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    except OSError as e:
        raise InstallError("cannot run %s: %s" % (argv[0], e.strerror or e))


def run(argv, env, what, hint=None):
    """Run a child; InstallError naming ``what`` when it fails."""
    code = call(argv, env)
    if code != 0:
        raise InstallError("%s failed (exit status %d)" % (what, code), hint=hint)


def probe_venv(venv, env):
    """Ask the venv's interpreter what it is; InstallError unless it matches this Python."""
    py = venv_python(venv)
    try:
        out = subprocess.check_output([py, "-c", _VENV_PROBE], env=env, stdin=subprocess.DEVNULL, universal_newlines=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise InstallError("the venv at %s does not work: %s" % (venv, getattr(e, "strerror", None) or e), hint="remove it and run install.sh again")
    want = "%s %d.%d" % (sys.implementation.cache_tag, sys.version_info[0], sys.version_info[1])
    if out.strip() != want:
        raise InstallError(
            "the venv at %s runs %s; this installer runs %s" % (venv, out.strip(), want),
            hint="remove it or choose another place with --venv DIR",
        )


# ---------------------------------------------------------------------------------------
# Command line


def main_parser():
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Install this wheelhouse bundle into a virtual environment, offline: check the machine, "
        "verify every file, make or reuse a venv, pip install the locked wheels, run pip check and the smoke tests.",
    )
    parser.add_argument(
        "--venv", metavar="DIR",
        help="the virtual environment to make, or to reuse when it exists (default: a new one next to the bundle "
        "directory, BUNDLE.venv; an existing one there is not reused unless named here)",
    )
    parser.add_argument("--python", metavar="PATH", help="the Python to install for (default: the one running this script)")
    parser.add_argument("--trust", metavar="ALLOWED_SIGNERS",
                        help="check bundle.json's signature (bundle.json.sig) against this OpenSSH allowed_signers file "
                        "before anything else; refuse an unsigned bundle, a bad signature or an unlisted signer")
    parser.add_argument("--installer", choices=("pip", "uv"),
                        help="install with the bundled uv (the default when the bundle has a uv wheel for this machine) or "
                        "the bundled pip; both leave the same files")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not byte-compile the installed packages (by default they are compiled on every core)")
    parser.add_argument("--exact", action="store_true",
                        help="in a reused venv, uninstall the packages the lock does not name (as pip-sync and uv pip sync "
                        "do; pip itself stays)")
    parser.add_argument("--with", dest="with_dir", metavar="OLD_BUNDLE_DIR",
                        help="for a delta bundle: the unpacked bundle it was made from, which holds the files it lacks")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check-only", action="store_true", help="check the machine and verify the files, then stop")
    mode.add_argument("--dry-run", action="store_true", help="check and verify, then print the commands it would run")
    mode.add_argument("--publish", metavar="URL",
                      help="upload every wheel of the bundle to a site index through its upload API (as twine does), "
                      "skipping those already there; credentials from WHEELHOUSE_PUBLISH_USER/_PASSWORD, "
                      "TWINE_USERNAME/_PASSWORD or ~/.netrc. No venv is made")
    mode.add_argument("--publish-dir", metavar="DIR",
                      help="copy every wheel into a directory index (a flat pypiserver folder, or a PEP 503 tree with "
                      "simple/), keeping what is there. No venv is made")
    parser.add_argument("--publish-index", metavar="URL",
                        help="with --publish: the simple index to look for files already published (default: URL/simple/)")
    return parser


def _strip_python_option(argv):
    out = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--python":
            skip = True
        elif not a.startswith("--python="):
            out.append(a)
    return out


def _say(text=""):
    print(_terminal_safe(text))
    sys.stdout.flush()


def default_venv(bundle_dir):
    """Where the venv goes without --venv: next to the bundle directory, ``<bundle-dir>.venv``."""
    return os.path.normpath(bundle_dir) + DEFAULT_VENV_SUFFIX


def refuse_unchosen_venv(venv):
    """Refuse to reuse a venv found at the default place: nobody chose it, and its python and
    its site-packages ``.pth`` files run code no bundle.json lists. Only ``--venv`` reuses."""
    if os.path.lexists(venv):
        shown = printable(venv)
        raise InstallError(
            "%s already exists; install.sh makes a new venv there and does not reuse one it did not make "
            "in this run (its python and .pth files would run unchecked)" % shown,
            hint="to install afresh, remove it (rm -rf %s) and run install.sh again; to reuse it deliberately, "
            "run install.sh --venv %s" % (shlex.quote(shown), shlex.quote(shown)),
        )


def publish(args, bundle_dir, with_dir, environ, manifest_bytes=None):
    """``--publish URL`` / ``--publish-dir DIR``: verify the bundle, then hand every wheel of the set to
    the bundle's ``publish.py`` (hash-checked before it is loaded). No machine check, no venv."""
    if args.venv:
        raise InstallError("--venv makes no sense with --publish or --publish-dir: publishing creates no venv")
    manifest = load_manifest(bundle_dir, manifest_bytes)
    paths, count = verify_bundle(bundle_dir, manifest, with_dir)
    _say("verified %d files (size and sha256)" % count)
    module = load_capture_module(bundle_dir, manifest["files"], PUBLISH_MODULE)
    wheels = [(rel, paths[rel], manifest["files"][rel]["sha256"]) for rel in sorted(manifest["files"])
              if rel.startswith("wheels/") and rel.endswith(".whl")]
    try:
        if args.publish:
            summary = module.publish_url(wheels, args.publish, environ, index_url=args.publish_index, say=_say)
        else:
            summary = module.publish_dir(wheels, os.path.abspath(args.publish_dir), say=_say)
    except module.PublishError as e:
        raise InstallError(str(e), getattr(e, "details", None) or (), hint=getattr(e, "hint", None))
    _say(summary)
    return 0


def install(args, bundle_dir, environ):
    """Everything after argument parsing; returns the exit status or raises InstallError."""
    sys.dont_write_bytecode = True  # importing capture_profile must not add __pycache__ to the bundle
    # --trust: the signature over bundle.json is checked before anything else is read or run, and
    # the very bytes checked are the manifest used from here on.
    manifest_bytes = authenticate(bundle_dir, args.trust)
    with_dir = os.path.abspath(args.with_dir) if args.with_dir else None
    if with_dir and _same_path(with_dir, bundle_dir):
        raise InstallError("--with names this bundle's own directory", hint="give the unpacked directory of the older bundle")
    if args.publish or args.publish_dir:
        if not args.trust:
            _say(unauthenticated(bundle_dir))
        return publish(args, bundle_dir, with_dir, environ, manifest_bytes)
    venv = os.path.abspath(args.venv) if args.venv else default_venv(bundle_dir)
    if not args.venv and not args.check_only:
        refuse_unchosen_venv(venv)  # before anything runs
    if not args.trust:
        _say(unauthenticated(bundle_dir))
    manifest = load_manifest(bundle_dir, manifest_bytes)
    capture = load_capture_module(bundle_dir, manifest["files"])  # checked against bundle.json first
    machine = this_machine(capture)
    check = choose_target(manifest, machine, capture)
    target = check.target
    name = manifest.get("name") or os.path.basename(bundle_dir)
    _say("bundle %r: target %r fits this machine (%s)" % (name, target["name"], describe_machine(machine)))
    warning = nvidia_warning(check, capture)
    if warning:
        print("%s: warning: %s" % (PROG, _terminal_safe(warning)), file=sys.stderr)

    if _same_path(venv, bundle_dir):
        raise InstallError("the venv cannot be the bundle directory itself", hint="choose another place with --venv DIR")
    # Inside the bundle directory, only the venv of this run (new, or named with --venv) is not
    # checked against bundle.json; the default one lies outside it.
    _paths, count = verify_bundle(bundle_dir, manifest, with_dir, skip_dirs=[venv])
    if with_dir and not base_files(manifest):
        _say("note: this bundle carries all its files; --with %s is not needed" % printable(with_dir))
        with_dir = None
    _say("verified %d files (size and sha256)%s" % (count, " with the base bundle %s" % printable(with_dir) if with_dir else ""))
    check_build_tools(target, environ)  # what builds here, and whether it can: before anything is made
    if args.check_only:
        _say("check passed: this bundle can be installed here")
        return 0

    reuse = existing_venv(venv) is not None
    installer = choose_installer(args.installer, target, machine, capture)
    uv_rel = target.get("uv")
    if target.get("sdists") and uv_rel and not args.installer:
        _say("note: the bundled pip installs this target, as it builds packages from source (uv is used for bundles that build nothing)")
    tmp = None
    try:
        if not args.dry_run and (installer == "uv" or target.get("sdists")):
            tmp = tempfile.mkdtemp(prefix="wheelhouse-install-")
        if installer == "uv" and not args.dry_run:
            uv = extract_uv(_paths[uv_rel], manifest["files"][uv_rel]["sha256"], tmp)
        else:
            uv = os.path.join("$UV_FROM_WHEEL", "uv")  # shown by --dry-run only: the binary is extracted at install time
        build = build_setup(target, _paths, base_files(manifest) if with_dir else (), tmp)
        return _install_with(args, bundle_dir, venv, manifest, target, name, reuse, with_dir, installer, uv, environ, build)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _install_with(args, bundle_dir, venv, manifest, target, name, reuse, with_dir, installer, uv, environ, build=({}, {})):
    """Steps 3-5 with the chosen installer; see the module docstring. ``build`` is ``build_setup``'s
    answer for a target that builds sdists."""
    env = child_env(environ)
    # pip compiles one file at a time; the compile step below does it on every core, for both
    # installers, so that pip and uv leave the same files.
    env["PIP_COMPILE"] = "0"  # --compile off (PIP_NO_COMPILE=1 would turn the store_false option on)
    extras = []
    if reuse and not args.dry_run:  # a dry run runs nothing, the venv's python included
        probe_venv(venv, env)
        extras = outside_lock(installed_distributions(venv, env), target)
    plan = plan_commands(bundle_dir, target, venv, manifest.get("smoke", []), reuse, with_dir, base_files(manifest),
                         installer=installer, uv=uv, compile=not args.no_compile,
                         extras=[n for n, _ in extras] if args.exact else (), bytecode=shipped_bytecode(bundle_dir, with_dir, manifest, target),
                         **build[0])
    if extras and not args.exact:
        print("%s: warning: the venv %s holds %d package(s) the lock does not name: %s (install.sh --exact removes them)"
              % (PROG, printable(venv), len(extras), printable(", ".join("%s %s" % nv for nv in extras))), file=sys.stderr)
    what = "uv" if installer == "uv" else "pip"
    if args.dry_run:
        _say("dry run: would run these commands (with PIP_*, UV_* and proxy variables removed, PIP_CONFIG_FILE=%s, "
             "PIP_COMPILE=0, PYTHONNOUSERSITE=1%s%s):" % (os.devnull, "; $UV_FROM_WHEEL is the bundled uv wheel, verified and unpacked"
                                         if installer == "uv" else "", "; TMPDIR and PIP_CACHE_DIR in $BUILD_TMP, a temporary "
                                         "folder removed afterwards" if build[1] else ""))
        if reuse:
            _say("  # reuse the existing venv %s" % venv)
        steps = [plan.make_venv, plan.uninstall, plan.install, plan.install_pip, plan.compile, plan.check] + plan.smoke
        for argv in steps:
            if argv:
                _say("  " + quote(argv))
        return 0

    fresh = not os.path.exists(venv)
    emptied = not reuse and not fresh  # an empty directory given as --venv
    try:
        if reuse:
            _say("reusing the venv %s" % venv)
        else:
            _say("creating the venv %s" % venv)
            run(plan.make_venv, env, "creating the venv %s" % venv, hint="see the error above; --venv DIR puts the venv elsewhere")
        if plan.uninstall:
            _say("removing %d package(s) the lock does not name (--exact): %s" % (len(extras), ", ".join("%s %s" % nv for nv in extras)))
            run(plan.uninstall, env, "%s uninstall" % what)
        built = len(target.get("sdists", []))
        _say("installing %d packages with the bundled %s (no index, hashes required%s)" % (
            len(target["packages"]) + built, what, "; %d built from source here" % built if built else ""))
        try:
            run(plan.install, dict(env, **build[1]), "%s install" % what)  # a build's temporary files in ours
            if plan.install_pip:
                run(plan.install_pip, env, "installing pip into the venv")
        finally:
            shutil.rmtree(os.path.join(venv, UV_CACHE_NAME), ignore_errors=True)
    except BaseException:
        # A venv made by this run that does not hold the full set is worse than none.
        if not reuse:
            shutil.rmtree(venv, ignore_errors=True)
            if emptied:
                os.mkdir(venv)
        raise

    kept = "; the venv at %s is left for inspection" % printable(venv)
    if plan.compile:
        _say("byte-compiling the installed packages (all cores; --no-compile skips this)")
        run(plan.compile, env, "byte-compiling the venv%s" % kept)
    code = call(plan.check, env)
    if code != 0:
        raise InstallError(
            "%s check failed (exit status %d)%s" % ("uv pip" if installer == "uv" else "pip", code, kept),
            hint="the installed packages have missing or conflicting dependencies (see the output above)",
        )
    for argv in plan.smoke:
        _say("smoke test: %s" % printable(argv[-1]))
        code = call(argv, env, cwd=venv)
        if code != 0:
            raise InstallError("smoke test failed (exit status %d): %s%s" % (code, printable(argv[-1]), kept))

    activate = os.path.join(venv, "Scripts", "activate") if os.name == "nt" else os.path.join(venv, "bin", "activate")
    done = ["%d packages" % (len(target["packages"]) + len(target.get("sdists", []))), "%s check passed" % ("uv pip" if installer == "uv" else "pip")]
    if plan.smoke:
        done.append("%d smoke test(s) passed" % len(plan.smoke))
    _say("")
    _say("installed bundle %r (target %r) into %s" % (name, target["name"], printable(venv)))
    _say("  " + ", ".join(done))
    _say("  activate with:  . %s" % shlex.quote(activate))
    _say("  or run:         %s" % shlex.quote(venv_python(venv)))
    return 0


def main(argv=None):
    """Parse ``argv``, install, and map every failure to a message and an exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):
        # A name outside the terminal's charset (an ASCII or Latin-1 locale) is escaped, not a crash.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = main_parser().parse_args(argv)  # exits 2 on bad arguments
    debug = bool(os.environ.get(DEBUG_ENV))
    try:
        if args.python:
            # Run again under the requested interpreter (install.sh has already done this itself).
            python = shutil.which(args.python) or args.python
            try:
                return subprocess.call([python, "-E", "-s", os.path.abspath(__file__)] + _strip_python_option(argv))
            except OSError as e:
                raise InstallError("cannot run %s: %s" % (args.python, e.strerror or e))
        bundle_dir = os.path.dirname(os.path.abspath(__file__))
        return install(args, bundle_dir, os.environ)
    except InstallError as e:
        if debug:
            traceback.print_exc()
        print("%s: error: %s" % (PROG, _terminal_safe(e.report())), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("%s: interrupted" % PROG, file=sys.stderr)
        return 130
    except Exception as e:  # anything else is a bug, but the user still gets one line
        if debug:
            traceback.print_exc()
        print(
            "%s: error: unexpected %s: %s (set %s=1 for a traceback)" % (PROG, type(e).__name__, printable(e), DEBUG_ENV),
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
