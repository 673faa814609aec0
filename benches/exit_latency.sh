#!/usr/bin/env bash
# Exit-to-event latency: N workers (benches/exitstamp.c) each print a CLOCK_REALTIME stamp
# just before _exit(0), STEP_MS apart; the driver stamps the moment it reads the `exit`
# event. The floor is a C parent timing its own waitpid() returns the same way. BUSY shell
# busy loops run meanwhile (both sides), so the machine is loaded whatever else runs.
#   benches/exit_latency.sh [N=400] [STEP_MS=5] [RUNS=3] [BUSY=2]
source "$(dirname "$0")/common.sh"
python3 benches/driver.py latency "$FORKSCOPE" "$HELPERS" "${1:-400}" "${2:-5}" "${3:-3}" "${4:-2}"
