#!/usr/bin/env bash
# CPU of an idle forkscope engine (one `sleep` worker, headless) while the rest of the
# machine runs a fork-heavy loop outside its tree: N runs of /bin/true (default 3000).
# Sources in turn, round after round (R rounds, default 5): --track kernel (BPF filter),
# --track kernel with FORKSCOPE_NETLINK_NO_FILTER=1 (the filter left out), --track poll.
# Prints the median share of one core (utime+stime of the engine process over the loop).
# Usage: benches/track_idle_cpu.sh [N] [R]   (builds --release)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-3000}
R=${2:-5}
cargo build --release --quiet
BIN=$PWD/target/release/forkscope
OUT=$(mktemp)
MARK="7${RANDOM}.5"
trap 'rm -f "$OUT"' EXIT
HZ=$(getconf CLK_TCK)
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), forkscope $(git rev-parse --short HEAD)"

one() { # SOURCE [ENV...]: prints the engine's share of a core during the loop
  local source=$1; shift
  env "$@" "$BIN" run --headless --track "$source" -- sleep "$MARK" >"$OUT.events" 2>/dev/null &
  local guardian=$!
  local engine=""
  for _ in $(seq 1 200); do
    engine=$(grep -m1 '"kind":"session"' "$OUT.events" 2>/dev/null | sed 's/.*"pid":\([0-9]*\).*/\1/' || true)
    [ -n "$engine" ] && grep -q '"kind":"spawn"' "$OUT.events" && break
    sleep 0.05
  done
  local t0 c0 t1 c1
  c0=$(ticks "$engine"); t0=$(date +%s.%N)
  i=0; while [ $i -lt "$N" ]; do /bin/true; i=$((i+1)); done
  c1=$(ticks "$engine"); t1=$(date +%s.%N)
  kill -TERM "$guardian"; wait "$guardian" || true
  awk -v c=$((c1-c0)) -v hz="$HZ" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f\n", 100 * c / hz / (t1 - t0) }'
}

r=0
while [ $r -lt "$R" ]; do
  echo "kernel $(one kernel)" >>"$OUT"
  echo "kernel-unfiltered $(one kernel FORKSCOPE_NETLINK_NO_FILTER=1)" >>"$OUT"
  echo "poll $(one poll)" >>"$OUT"
  r=$((r + 1))
done
rm -f "$OUT.events"
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo "| source | engine CPU, % of one core (median of $R) | all runs |"
echo "|---|---|---|"
for s in kernel kernel-unfiltered poll; do
  printf '| %s | %s | %s |\n' "$s" "$(awk -v s=$s '$1 == s { print $2 }' "$OUT" | median)" "$(awk -v s=$s '$1 == s { printf "%s ", $2 }' "$OUT")"
done
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
