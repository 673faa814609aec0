#!/usr/bin/env bash
# Start-up of `python3 -c pass` with forkscope's Python bootstrap against without, in turn.
#   benches/python_start.sh [RUNS=200]
source "$(dirname "$0")/common.sh"
PYTHON="$(python3 -c 'import sys; print(sys.executable)')"
python3 benches/driver.py python-start "$FORKSCOPE" "$PYTHON" \
  src/supervise/python_hooks/sitecustomize.py "${1:-200}"
