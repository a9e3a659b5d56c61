"""Compile the Python files of one wheel to bytecode, for ``bundler.bytecode`` (stdlib only).

Run by the builder under an interpreter of the *target's* Python version (the same bytecode magic
number), one process per wheel so the output depends only on the wheel and the interpreter::

    python -I -W ignore bytecode_worker.py WHEEL OUTPUT.zip

OUTPUT.zip holds, for every ``.py`` file the wheel installs into site-packages (its root, or its
``*.data/purelib`` and ``*.data/platlib`` folders), an entry named by the file's path relative to
site-packages whose bytes are ``marshal.dumps`` of the compiled module: a .pyc without its
16-byte header, which the target writes from the installed source's own mtime and size. Entries are
sorted, stored uncompressed (the bundle is compressed as a whole) and dated 1980-01-01, so the file
is reproducible. Files that do not compile (templates, code for other Pythons) are left out, as pip
leaves them out; the target then skips them too. Prints the interpreter's magic number in hex.
"""

import importlib.util
import io
import marshal
import sys
import warnings
import zipfile


def install_path(member):
    """The path relative to site-packages a wheel member is installed at, or None (scripts, data)."""
    parts = member.split("/")
    if parts[0].endswith(".data"):
        if len(parts) > 2 and parts[1] in ("purelib", "platlib"):
            return "/".join(parts[2:])
        return None
    return member


def compile_wheel(wheel, output):
    """Write OUTPUT (see the module docstring) for WHEEL."""
    warnings.simplefilter("ignore")  # SyntaxWarning and DeprecationWarning from third-party code
    buf = io.BytesIO()
    with zipfile.ZipFile(wheel) as zin, zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zout:
        for name in sorted(n for n in zin.namelist() if n.endswith(".py")):
            path = install_path(name)
            if path is None or ".." in path.split("/") or path.startswith("/"):
                continue
            try:
                code = compile(zin.read(name), path, "exec", dont_inherit=True)
            except (SyntaxError, ValueError, UnicodeDecodeError, OverflowError, MemoryError, RecursionError):
                continue
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zout.writestr(info, marshal.dumps(code))
    with open(output, "wb") as f:
        f.write(buf.getvalue())
    print(importlib.util.MAGIC_NUMBER.hex())


if __name__ == "__main__":
    compile_wheel(sys.argv[1], sys.argv[2])
