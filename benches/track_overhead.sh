#!/bin/sh
# Lifecycle tracking overhead: a shell loop running /bin/true N times (default 2000),
# untraced, under `forkscope run --headless --track kernel`, `--track poll`, and under
# `strace -f -e trace=none`. Prints the median wall time of R runs (default 5) and the
# ratio to untraced, as a Markdown table. Usage: benches/track_overhead.sh [N] [R]
# Needs a release build (cargo build --release) and strace.
set -eu
N=${1:-2000}
R=${2:-5}
cd "$(dirname "$0")/.."
BIN=./target/release/forkscope
[ -x "$BIN" ] || cargo build --release --quiet
LOOP="i=0; while [ \$i -lt $N ]; do /bin/true; i=\$((i+1)); done"

# Seconds (float) one command takes, its output discarded.
time_once() {
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

median() {
    sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

measure() {
    label=$1
    shift
    times=""
    r=0
    while [ $r -lt "$R" ]; do
        times="$times $(time_once "$@")"
        r=$((r + 1))
    done
    m=$(echo "$times" | tr ' ' '\n' | grep . | median)
    echo "$label $m"
}

{
    measure untraced sh -c "$LOOP"
    measure kernel "$BIN" run --headless --track kernel -- sh -c "$LOOP"
    measure poll "$BIN" run --headless --track poll -- sh -c "$LOOP"
    measure strace strace -f -e trace=none -o /dev/null sh -c "$LOOP"
} >/tmp/track_overhead.$$

base=$(awk '$1 == "untraced" { print $2 }' /tmp/track_overhead.$$)
echo "| source | median of $R runs (s) | vs untraced |"
echo "|---|---|---|"
while read -r label secs; do
    ratio=$(echo "$secs / $base" | bc -l)
    printf '| %s | %.3f | %.2fx |\n' "$label" "$secs" "$ratio"
done </tmp/track_overhead.$$
rm -f /tmp/track_overhead.$$
