#!/usr/bin/env bash
# Output: a worker writing BYTES of LINE_LEN-byte lines, under `forkscope run --headless`
# with stdout to /dev/null, against the same command writing straight to /dev/null.
#   benches/output.sh [BYTES=1000000000] [LINE_LEN=100] [RUNS=3]
source "$(dirname "$0")/common.sh"
python3 benches/driver.py output "$FORKSCOPE" "${1:-1000000000}" "${2:-100}" "${3:-3}"
