#!/usr/bin/env bash
# The torch-free install, `pip install -e '.[import]'`, in .cache/venv-import (tests/test_import.py and
# `make import-venv`): rebuilt when pyproject.toml changes, else reused. Prints the venv's path and size.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${IMPORT_VENV:-.cache/venv-import}
python=${BASE_PYTHON:-$(.venv/bin/python -c 'import sys; print(sys.base_prefix)' 2>/dev/null)/bin/python3}
[ -x "$python" ] || python=python3
stamp=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  PYTHONWARNINGS="ignore:Editable installation" "$venv/bin/pip" install -q --disable-pip-version-check -e '.[import]' >&2
  echo "$stamp" >"$venv/.stamp"
fi
echo "$venv $(du -sm "$venv" | cut -f1) MB"
