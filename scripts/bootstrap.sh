#!/bin/sh
# Creates .venv with ocptask and its test extras. On a fresh Debian machine (as root) it first
# installs what is missing: a Python >= 3.11 with venv support.
set -eu
cd "$(dirname "$0")/.."

python_ok() {
    command -v "$1" >/dev/null 2>&1 &&
    "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

PY=""
for candidate in python3 python3.13 python3.12 python3.11; do
    if python_ok "$candidate"; then PY="$candidate"; break; fi
done
if [ -z "$PY" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bootstrap: need Python >= 3.11 with venv; run as root to install it with apt-get" >&2
        exit 1
    fi
    echo "bootstrap: installing python3 and python3-venv with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3 python3-venv python3-pip >/dev/null
    PY=python3
    python_ok "$PY" || { echo "bootstrap: $PY is older than 3.11" >&2; exit 1; }
fi

STAMP=.venv/.ocptask-installed
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
    touch "$STAMP"
fi

# Graphviz's dot draws DAG pictures as SVG/PNG (``ocptask task graph``).
if ! command -v dot >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "bootstrap: installing graphviz with apt-get" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            graphviz >/dev/null
    else
        echo "bootstrap: graphviz (dot) is missing: task graph --format svg|png needs it" >&2
    fi
fi
