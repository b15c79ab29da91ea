#!/usr/bin/env bash
# Create .venv and install wasmexport with everything its example and tests need.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

# build tools for the wheel test (which builds without isolation)
"${PIP[@]}" "setuptools>=69" wheel
# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
echo "setup: installing torch==2.13.0 (CPU)"
"${PIP[@]}" "torch==2.13.0"
echo "setup: installing wasmexport[test] (editable) and the Zig toolchain"
"${PIP[@]}" -e ".[test]"
# the browser host's test drives Chromium through playwright-core (npm)
if command -v npm >/dev/null 2>&1; then
    echo "setup: installing the browser host's test driver (npm ci)"
    npm ci --prefix abi_runtime/hosts/browser --no-audit --no-fund --silent
fi
echo "setup: done; use .venv/bin/python"
