#!/bin/sh
# Install this wheelhouse bundle offline into a virtual environment.
#
#   sh install.sh [--venv DIR] [--python PATH] [--trust ALLOWED_SIGNERS] [--check-only] [--dry-run]
#                 [--installer pip|uv] [--no-compile] [--exact]
#
# Finds a Python 3.8+ (--python PATH, else python3, else python) and runs install.py, which
# sits next to this script, with the remaining arguments. Works from any directory. The venv is
# made next to the bundle directory (BUNDLE.venv) unless --venv DIR names one. --trust FILE checks
# bundle.json's signature (install.py, with ssh-keygen) before anything else of the bundle is read.

set -u

say_error() {
    printf 'install.sh: error: %s\n' "$1" >&2
}

case $0 in
    */*) dir=${0%/*} ;;
    *) dir=. ;;
esac
dir=$(CDPATH='' cd -- "$dir" && pwd -P) || {
    say_error "cannot find the bundle directory of $0"
    exit 1
}

# Take --python out of the arguments; keep everything else, in order.
python=
n=$#
while [ "$n" -gt 0 ]; do
    arg=$1
    shift
    n=$((n - 1))
    case $arg in
        --python)
            if [ "$n" -eq 0 ]; then
                say_error "--python needs a path"
                exit 2
            fi
            python=$1
            shift
            n=$((n - 1))
            ;;
        --python=*)
            python=${arg#--python=}
            ;;
        *)
            set -- "$@" "$arg"
            ;;
    esac
done

if [ -z "$python" ]; then
    for candidate in python3 python; do
        if command -v "$candidate" >/dev/null 2>&1; then
            python=$(command -v "$candidate")
            break
        fi
    done
    if [ -z "$python" ]; then
        say_error "no Python found (tried python3 and python); install Python 3.8 or newer, or give one with --python PATH"
        exit 1
    fi
elif ! command -v "$python" >/dev/null 2>&1; then
    say_error "--python $python: no such interpreter"
    exit 1
fi

# The floor of every target: capture_profile.MIN_TARGET_PYTHON (tests/test_parity.py checks this copy).
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)' >/dev/null 2>&1; then
    version=$("$python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null) || version="unknown (it does not run)"
    say_error "this bundle needs Python 3.8 or newer; $python is Python $version. Give another one with --python PATH"
    exit 1
fi

# -I: ignore PYTHON* variables and the user site; install.py loads its helpers by path.
exec "$python" -I "$dir/install.py" "$@"
