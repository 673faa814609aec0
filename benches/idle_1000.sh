#!/usr/bin/env bash
# 1,000 idle workers for SECONDS (default 20; the issue asks 60): forkscope up --headless
# against supervisord numprocs=1000, CPU and RSS of the supervisors, and the metrics scrape
# latency (p50/p99) against the same bytes served by `python3 -m http.server`. supervisord
# comes from a venv under /tmp (not a project dependency).
# Usage: benches/idle_1000.sh [SECONDS] [ROUNDS]
source "$(dirname "$0")/common.sh"
VENV=/tmp/forkscope-bench-supervisor
if [ ! -x "$VENV/bin/supervisord" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet supervisor
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
python3 benches/idle_1000.py "$FORKSCOPE" "$VENV/bin/supervisord" "${1:-20}" "${2:-3}"
