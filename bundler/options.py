"""The ``wheelhouse`` command line: flag groups shared by the commands, and the parser.

Flags follow pip's and uv's names wherever the meaning is the same (DESIGN.md, command-line contract).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bundler import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # exit 2 with our format, no usage dump noise
        self.print_usage(sys.stderr)
        print(f"wheelhouse: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _add_target_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("target (the machine that will install the result)")
    g.add_argument("--profile", action="append", default=[], metavar="NAME|FILE",
                   help="a profile captured on the target, a preset (see 'wheelhouse profile list'), or 'host' for the "
                        "Python running wheelhouse; repeatable")
    g.add_argument("--python-platform", metavar="PLAT",
                   help="uv-style platform, e.g. x86_64-manylinux_2_28, aarch64-apple-darwin, x86_64-pc-windows-msvc")
    g.add_argument("--python-version", metavar="X.Y[.Z]", help="target Python version (3.11 means 3.11.0)")


def _add_index_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("indexes (a project comes from the first index that has it; never mixed)")
    g.add_argument("-i", "--index-url", metavar="URL", help="the default index (default: pip's, else PyPI; 'pypi' names PyPI)")
    g.add_argument("--extra-index-url", action="append", default=[], metavar="URL", help="searched before the default index; repeatable")
    g.add_argument("-f", "--find-links", action="append", default=[], metavar="PATH|URL", help="a folder or flat HTML page of files; searched first")
    g.add_argument("--index", action="append", default=[], metavar="NAME=URL", help="a named index, for --pin; repeatable")
    g.add_argument("--pin", action="append", default=[], metavar="PATTERN=NAME",
                   help="projects matching PATTERN (glob) come only from index NAME, which serves nothing else")
    g.add_argument("--torch-backend", metavar="auto|cpu|cuXYZ",
                   help="take torch, torchvision, torchaudio, triton and nvidia-* only from the PyTorch index of this "
                        "backend; auto picks the newest CUDA the target profile's NVIDIA driver supports, else cpu")
    g.add_argument("--torch-index", metavar="URL",
                   help="a mirror of https://download.pytorch.org/whl to use for --torch-backend (or WHEELHOUSE_PYTORCH_INDEX)")
    g.add_argument("--cache-dir", metavar="DIR", help="cache for pages and metadata (default: ~/.cache/wheelhouse)")
    g.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    g.add_argument("--refresh", action="store_true",
                   help="revalidate every cached index page (default: reuse pages younger than 10 minutes)")
    g.add_argument("--offline", action="store_true",
                   help="no network: use cached pages and metadata whatever their age (and, for build, cached files); "
                        "fails naming the first thing the cache lacks")
    g.add_argument("--cert", metavar="FILE", help="CA bundle for TLS (default: SSL_CERT_FILE or the system's)")
    g.add_argument("--jobs", type=int, default=16, metavar="N", help="concurrent index requests (default 16)")


def _add_transfer_args(g: Any) -> None:
    g.add_argument("--limit-rate", metavar="RATE", help="cap the total rate over all transfers, e.g. 500K, 2M, 1G (bytes/s)")
    g.add_argument("--retries", type=int, default=5, metavar="N", help="retries per file after a failure (default 5)")
    g.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="give up on a connection that sends nothing for S seconds, then retry (default 30)")
    g.add_argument("--http2", action="store_true",
                   help="use HTTP/2 where offered: one multiplexed connection per host (default: one HTTP/1.1 connection "
                        "per transfer, faster where each connection is shaped)")


def _add_fetch_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("downloads")
    g.add_argument("--cache-dir", metavar="DIR", help="content-addressed cache shared by all locks (default: ~/.cache/wheelhouse)")
    g.add_argument("--jobs", type=int, default=8, metavar="N", help="concurrent transfers (default 8)")
    g.add_argument("--cert", metavar="FILE", help="CA bundle for TLS (default: SSL_CERT_FILE or the system's)")
    g.add_argument("--offline", action="store_true", help="no network: use only verified files in the cache, "
                                                          "failing on the first one missing")
    _add_transfer_args(g)


def _add_input_args(p: argparse.ArgumentParser) -> None:
    """What to resolve: shared by lock and build."""
    p.add_argument("inputs", nargs="*", metavar="RECIPE|REQ",
                   help="a recipe (*.toml) and/or requirement strings (default: recipes/default.toml)")
    p.add_argument("-r", "--requirement", action="append", default=[], metavar="FILE",
                   help="requirements file (pip syntax, --hash pins honoured)")
    p.add_argument("-c", "--constraint", action="append", default=[], metavar="FILE", help="constraints file")
    p.add_argument("--pre", action="store_true", help="allow pre-releases")
    p.add_argument("--only-binary", action="append", default=[], metavar=":all:|NAME[,NAME]",
                   help="never use an sdist of these projects (pip's meaning; :none: clears)")
    p.add_argument("--no-binary", action="append", default=[], metavar=":all:|NAME[,NAME]",
                   help="never use a wheel of these projects: build their sdists (pip's meaning; :none: clears)")
    p.add_argument("--exclude-newer", metavar="TIMESTAMP", help="ignore files uploaded after this time (RFC 3339 or YYYY-MM-DD)")
    p.add_argument("-U", "--upgrade", action="store_true",
                   help="ignore the pins of the existing output lock (by default they are kept where they still fit)")
    p.add_argument("-P", "--upgrade-package", action="append", default=[], metavar="NAME",
                   help="release the existing lock's pin of NAME only; repeatable")


def _add_pack_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="BUNDLE", help="the archive to write, e.g. bundle.tar.zst")
    p.add_argument("--format", choices=("tar.zst", "tar.gz", "tar"),
                   help="archive format (default: from the -o suffix, else tar.zst; tar.gz/tar for targets without zstd)")
    p.add_argument("--level", type=int, metavar="N", help="compression level (default: zstd 1, gzip 6; wheels are compressed already)")
    p.add_argument("--sign-key", metavar="KEY", help="sign bundle.json with this OpenSSH private key (ssh-keygen -Y sign, "
                   "namespace wheelhouse); the site checks it with install.sh --trust ALLOWED_SIGNERS")
    p.add_argument("--bytecode-python", action="append", default=[], metavar="PY",
                   help="a CPython of a target's version to pre-compile its bytecode with (default: python3.X on PATH, "
                   "pyenv or uv-managed ones); the target then only writes .pyc files; repeatable")
    p.add_argument("--no-bytecode", action="store_true", help="ship no bytecode: the target compiles it at install time")


def _with_parents(add_parser: Any, *parents: argparse.ArgumentParser) -> Any:
    """``add_parser`` that gives every subcommand the shared ``parents`` (the -q/-v flags)."""
    def add(*args: Any, **kwargs: Any) -> Any:
        return add_parser(*args, parents=[*parents, *kwargs.pop("parents", [])], **kwargs)
    return add


def main_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``wheelhouse`` command."""
    parser = _Parser(prog="wheelhouse", description="Resolve, lock, fetch and pack Python environments for air-gapped target machines.",
                     epilog="Exit status: 0 success, 1 failure explained on stderr, 2 usage error.")
    parser.add_argument("--version", action="version", version=f"wheelhouse {__version__}")
    # -q and -v mean the same on every command: -q leaves only errors (and a new bundle's sha256),
    # -v adds detail (every package locked, every file fetched or packed).
    verbosity = argparse.ArgumentParser(add_help=False)
    verbosity.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary; only errors")
    verbosity.add_argument("-v", "--verbose", action="store_true", help="more detail: every package and file")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.add_parser = _with_parents(sub.add_parser, verbosity)  # type: ignore[method-assign]

    prof = sub.add_parser("profile", help="capture, show and list target profiles")
    psub = prof.add_subparsers(dest="profile_command", metavar="ACTION", parser_class=_Parser)
    psub.add_parser = _with_parents(psub.add_parser, verbosity)  # type: ignore[method-assign]
    cap = psub.add_parser("capture", help="record this machine's Python as a profile (run it on the target)")
    cap.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    cap.add_argument("--name", help="profile name")
    show = psub.add_parser("show", help="print a profile: facts, markers, tags")
    show.add_argument("profile", nargs="?", metavar="PROFILE", help="preset name or profile file")
    show.add_argument("--python-platform", metavar="PLAT")
    show.add_argument("--python-version", metavar="X.Y[.Z]")
    show.add_argument("--tags", action="store_true", help="print only the tags, one per line, best first")
    show.add_argument("--json", action="store_true", help="print the profile as JSON")
    psub.add_parser("list", help="list the named presets")

    lock = sub.add_parser("lock", help="resolve for the target(s) and write pylock.toml + requirements.txt",
                          description="Resolve the complete dependency closure for each target and write a PEP 751 lock "
                                      "and a hashed requirements.txt beside it.")
    _add_input_args(lock)
    lock.add_argument("-o", "--output", default="pylock.toml", metavar="FILE", help="lock file to write (default: pylock.toml)")
    _add_target_args(lock)
    _add_index_args(lock)

    fetch = sub.add_parser("fetch", help="download every file a lock names into the cache, verified",
                           description="Download every file a lock names (all targets) into the content-addressed cache: "
                                       "concurrent, resumable (Range + If-Range), retried with backoff, rate-limited, and "
                                       "checked against the lock's sha256 and size before anything is kept.")
    fetch.add_argument("lock", metavar="LOCK", help="a pylock.toml written by 'wheelhouse lock'")
    fetch.add_argument("--dest", metavar="DIR", help="also place the verified files in DIR under their file names (as pip download -d)")
    _add_fetch_args(fetch)

    pk = sub.add_parser("pack", help="pack a lock and its fetched wheels into one reproducible bundle with an installer",
                        description="Check that every wheel of the lock is in the cache and hashes right and that every target's "
                                    "dependencies are met inside the bundle, then write one reproducible archive with "
                                    "install.sh/install.py, bundle.json, the lock, requirements.txt, SHA256SUMS, wheels/ and a "
                                    "static simple/ index.")
    pk.add_argument("lock", metavar="LOCK", help="a pylock.toml written by 'wheelhouse lock' (fetched with 'wheelhouse fetch')")
    _add_pack_args(pk)
    pk.add_argument("--cache-dir", metavar="DIR", help="the cache 'wheelhouse fetch' filled (default: ~/.cache/wheelhouse)")
    pk.add_argument("--since", metavar="OLD", help="write a delta bundle: only the files OLD (a bundle, its unpacked folder, "
                                                   "or a lock) lacks; install it with install.sh --with OLD_BUNDLE_DIR")

    bd = sub.add_parser("build", help="lock + fetch + pack in one run",
                        description="Resolve for the target(s), fetch every file verified, and pack the bundle. "
                                    "With no recipe or requirement, builds recipes/default.toml.")
    _add_input_args(bd)
    bd.add_argument("--lock-output", metavar="FILE", help="also keep the lock at FILE (requirements.txt beside it)")
    _add_pack_args(bd)
    _add_target_args(bd)
    _add_index_args(bd)
    _add_transfer_args(bd.add_argument_group("downloads"))

    ins = sub.add_parser("inspect", help="list a bundle's targets and packages")
    ins.add_argument("bundle", metavar="BUNDLE", help="a bundle archive or unpacked bundle directory")
    ins.add_argument("--json", action="store_true", help="print bundle.json")
    ver = sub.add_parser("verify", help="check every hash, the member set and completeness of a bundle (exit 1 on any problem)")
    ver.add_argument("bundle", metavar="BUNDLE", help="a bundle archive or unpacked bundle directory")
    ver.add_argument("--with", dest="with_bundle", metavar="OLD", help="for a delta bundle: the bundle it was made from")
    ver.add_argument("--trust", metavar="ALLOWED_SIGNERS", help="also require a signature over bundle.json by a key this "
                     "OpenSSH allowed_signers file lists (refused when unsigned, badly signed or signed by another key)")

    dif = sub.add_parser("diff", help="what changes between two bundles or locks (exit 1 when they differ)",
                         description="Print, per target, the packages added, removed and changed, license changes, and the "
                                     "bytes that will cross the gap. Exit 0 when the two are identical, 1 when they differ.")
    dif.add_argument("old", metavar="OLD", help="a bundle (archive or unpacked directory) or a lock")
    dif.add_argument("new", metavar="NEW", help="a bundle (archive or unpacked directory) or a lock")
    dif.add_argument("--json", action="store_true", help="print the differences as JSON, for tooling")

    exp = sub.add_parser("explain", help="why a project has (or lacks) a usable file for a target")
    exp.add_argument("package", metavar="PACKAGE")
    exp.add_argument("--pre", action="store_true", help="count pre-releases as usable")
    exp.add_argument("--exclude-newer", metavar="TIMESTAMP")
    _add_target_args(exp)
    _add_index_args(exp)
    return parser
