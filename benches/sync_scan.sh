#!/usr/bin/env bash
# One full sync scan (and one cheap scan) of PROCS waiting processes x 2 threads, against a C
# loop reading the same /proc files. Usage: benches/sync_scan.sh [PROCS=200] [ROUNDS=9]
set -euo pipefail
cd "$(dirname "$0")/.."
HELPERS=$PWD/target/bench-helpers
mkdir -p "$HELPERS"
cc -O2 -Wall -o "$HELPERS/syncwait" benches/syncwait.c -lpthread
cc -O2 -Wall -o "$HELPERS/sync_floor" benches/sync_floor.c
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), forkscope $(git rev-parse --short HEAD)"
SYNCWAIT="$HELPERS/syncwait" SYNC_FLOOR="$HELPERS/sync_floor" PROCS=${1:-200} ROUNDS=${2:-9} \
  cargo bench --quiet --bench sync_scan
