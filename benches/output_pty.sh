#!/usr/bin/env bash
# Output through `--pty` against through forkscope's pipes, in turn in the same run.
#   benches/output_pty.sh [BYTES=1000000000] [LINE_LEN=100] [RUNS=3]
source "$(dirname "$0")/common.sh"
python3 benches/driver.py output-pty "$FORKSCOPE" "${1:-1000000000}" "${2:-100}" "${3:-3}"
