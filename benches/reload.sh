#!/usr/bin/env bash
# Reload of a 100-pool file: the time from SIGHUP until the new state runs, for a reload
# that changes every pool's command (100 workers stop and start again) and one that adds
# 100 pools; against the floor of the same run: the cold start of the same 100 pools
# (session event to the 100th spawn).
#   benches/reload.sh [POOLS=100] [RUNS=5]
source "$(dirname "$0")/common.sh"
python3 benches/reload.py "$FORKSCOPE" "${1:-100}" "${2:-5}"
