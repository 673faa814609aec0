#!/usr/bin/env bash
# CPU used over DURATION seconds by forkscope's TUI with the Sync view (`w`) open on 200
# waiting workers (benches/syncwait.c: one thread in sem_wait on a shared semaphore, one
# sleeping; a full sync scan every second), side by side with htop showing the same pids at
# the same 1 s refresh, each in its own 120x40 tmux terminal, at the same time.
# Usage: benches/tui_sync_idle_cpu.sh [DURATION=60] [WORKERS=200]   (needs tmux, htop, cc)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-60}
WORKERS=${2:-200}
source benches/binary.sh
BIN=$FORKSCOPE
HELPERS=$PWD/target/bench-helpers
mkdir -p "$HELPERS"
cc -O2 -Wall -o "$HELPERS/syncwait" benches/syncwait.c -lpthread
SEM="fs-bench-tui-$$"
SOCK=forkscope-bench-$$
REC=$(mktemp)
cleanup() {
  tmux -L "$SOCK" kill-server 2>/dev/null || true
  pkill -f "^$HELPERS/syncwait /$SEM\$" 2>/dev/null || true
  rm -f "$REC" "/dev/shm/sem.$SEM"
}
trap cleanup EXIT

ticks() { # utime+stime of a pid, in clock ticks
  awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), forkscope $(git rev-parse --short HEAD)"
tmux -L "$SOCK" -f /dev/null new-session -d -s fs -x 120 -y 40 "$BIN run -n $WORKERS --record $REC -- $HELPERS/syncwait /$SEM"
for _ in $(seq 1 200); do
  [ "$(grep -c '"kind":"spawn"' "$REC" 2>/dev/null || true)" -ge "$WORKERS" ] && break
  sleep 0.05
done
sleep 1
tmux -L "$SOCK" send-keys -t fs w
ENGINE=$(grep -m1 '"kind":"session"' "$REC" | sed 's/.*"pid":\([0-9]*\).*/\1/')
PIDS=$(grep '"kind":"spawn"' "$REC" | sed 's/.*"pid":\([0-9]*\).*/\1/' | paste -sd, -)
tmux -L "$SOCK" new-session -d -s htop -x 120 -y 40 "htop -d 10 -p $PIDS"
sleep 3
if ! tmux -L "$SOCK" capture-pane -p -t fs | grep -q "BARRIERS"; then
  echo "the Sync view did not open" >&2
  exit 1
fi
HTOP=$(pgrep -n -x htop)
F0=$(ticks "$ENGINE"); H0=$(ticks "$HTOP"); T0=$(date +%s.%N)
sleep "$DURATION"
F1=$(ticks "$ENGINE"); H1=$(ticks "$HTOP"); T1=$(date +%s.%N)
HZ=$(getconf CLK_TCK)
awk -v f=$((F1-F0)) -v h=$((H1-H0)) -v hz="$HZ" -v t0="$T0" -v t1="$T1" -v n="$WORKERS" 'BEGIN {
  secs = t1 - t0
  fc = f / hz; hc = h / hz
  printf "workers=%d seconds=%.1f (Sync view open)\n", n, secs
  printf "forkscope: %.2f s CPU = %.2f%% of one core\n", fc, 100 * fc / secs
  printf "htop:      %.2f s CPU = %.2f%% of one core\n", hc, 100 * hc / secs
  if (hc > 0) printf "ratio forkscope/htop = %.2f\n", fc / hc
}'
