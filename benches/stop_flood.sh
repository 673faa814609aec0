#!/usr/bin/env bash
# Stopping during an output flood: the engine's peak memory and the time to the end when
# forkscope is stopped in the middle of a flood, and when an orphan that ignores SIGTERM
# floods its dead worker's pipe, against the same flood run to its end (the running phase).
#   benches/stop_flood.sh [LINE_LEN=100] [RUNS=3]
source "$(dirname "$0")/common.sh"
python3 benches/driver.py stopflood "$FORKSCOPE" "${1:-100}" "${2:-3}"
