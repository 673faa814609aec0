#!/usr/bin/env bash
# Spawn: time to start a pool of N `sleep 60` workers under forkscope, against a plain
# fork+exec loop (benches/forkexec.c) and supervisord (pip install supervisor).
#   benches/spawn.sh [N=500] [RUNS=3]
source "$(dirname "$0")/common.sh"
python3 benches/driver.py spawn "$FORKSCOPE" "$HELPERS" "${1:-500}" "${2:-3}"
