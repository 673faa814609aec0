#!/usr/bin/env bash
# One /proc sample of N processes: forkscope's sampler (a kept-open /proc/PID/stat per
# process, one pread) against a C loop of open+read+close of the same files, plus the old
# per-sample open+read+close reader and sysinfo as peers. Rounds alternate between them.
# Usage: benches/proc_sample.sh [COUNTS="100 1000 10000"] [ROUNDS=9]
set -euo pipefail
cd "$(dirname "$0")/.."
HELPERS=$PWD/target/bench-helpers
mkdir -p "$HELPERS"
cc -O2 -Wall -o "$HELPERS/stat_floor" benches/stat_floor.c
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), forkscope $(git rev-parse --short HEAD)"
STAT_FLOOR="$HELPERS/stat_floor" COUNTS=${1:-"100 1000 10000"} ROUNDS=${2:-9} \
  cargo bench --quiet --bench proc_sample
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
