#!/usr/bin/env bash
# CPU used over DURATION seconds by forkscope's TUI showing 200 idle workers (default 1 s
# refresh), side by side with htop showing the same 200 processes at the same 1 s refresh.
# Both run in their own tmux terminal (120x40) at the same time.
# Usage: benches/tui_idle_cpu.sh [DURATION] [WORKERS]   (needs tmux, htop; builds --release)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-60}
WORKERS=${2:-200}
source benches/binary.sh
BIN=$FORKSCOPE
SOCK=forkscope-bench-$$
MARK="4${RANDOM}.5"
cleanup() { tmux -L "$SOCK" kill-server 2>/dev/null || true; pkill -f "^sleep $MARK" 2>/dev/null || true; }
trap cleanup EXIT

ticks() { # utime+stime of a pid, in clock ticks
  awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# No --record: a recording adds its shared-memory watcher, which a plain session does not run.
tmux -L "$SOCK" -f /dev/null new-session -d -s fs -x 120 -y 40 "$BIN run -n $WORKERS -- sleep $MARK"
for _ in $(seq 1 200); do
  [ "$(pgrep -f -x "sleep $MARK" | wc -l)" -ge "$WORKERS" ] && break
  sleep 0.05
done
PIDS=$(pgrep -f -x "sleep $MARK" | paste -sd, -)
ENGINE=$(awk '{ sub(/.*\) /, ""); print $2 }' "/proc/${PIDS%%,*}/stat")
tmux -L "$SOCK" new-session -d -s htop -x 120 -y 40 "htop -d 10 -p $PIDS"
sleep 2
HTOP=$(pgrep -n -x htop)
F0=$(ticks "$ENGINE"); H0=$(ticks "$HTOP"); T0=$(date +%s.%N)
sleep "$DURATION"
F1=$(ticks "$ENGINE"); H1=$(ticks "$HTOP"); T1=$(date +%s.%N)
HZ=$(getconf CLK_TCK)
awk -v f=$((F1-F0)) -v h=$((H1-H0)) -v hz="$HZ" -v t0="$T0" -v t1="$T1" -v n="$WORKERS" 'BEGIN {
  secs = t1 - t0
  fc = f / hz; hc = h / hz
  printf "workers=%d seconds=%.1f\n", n, secs
  printf "forkscope: %.2f s CPU = %.2f%% of one core\n", fc, 100 * fc / secs
  printf "htop:      %.2f s CPU = %.2f%% of one core\n", hc, 100 * hc / secs
  if (hc > 0) printf "ratio forkscope/htop = %.2f\n", fc / hc
}'
