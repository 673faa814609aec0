#!/usr/bin/env bash
# Where the exit-to-event latency goes, stage by stage, from perf's scheduler and signal
# tracepoints (benches/exit_stages.py; needs root and perf). BUSY shell busy loops run meanwhile.
#   benches/exit_stages.sh [N=400] [STEP_MS=5] [BUSY=0]
source "$(dirname "$0")/common.sh"
loops=()
for _ in $(seq 1 "${3:-0}"); do sh -c 'while :; do :; done' & loops+=($!); done
trap '[ ${#loops[@]} -eq 0 ] || kill "${loops[@]}"' EXIT
python3 benches/exit_stages.py "$FORKSCOPE" "$HELPERS" "${1:-400}" "${2:-5}"
