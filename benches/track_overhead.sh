#!/bin/sh
# Lifecycle tracking overhead: a shell loop running /bin/true N times (default 2000),
# untraced, under `forkscope run --headless --track kernel`, `--track poll`,
# `--track ptrace`, and under `strace -f -e trace=none`. The sources are run in turn, round
# after round (R rounds, default 5), so machine noise hits all of them alike; prints the
# median wall time of each and its ratio to untraced, as a Markdown table.
# Usage: benches/track_overhead.sh [N] [R]. Needs strace and bc; builds --release if needed.
set -eu
N=${1:-2000}
R=${2:-5}
cd "$(dirname "$0")/.."
. benches/binary.sh
BIN=$FORKSCOPE
LOOP="i=0; while [ \$i -lt $N ]; do /bin/true; i=\$((i+1)); done"
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

# Seconds (float) one command takes, its output discarded.
time_once() {
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

run_source() {
    case $1 in
        untraced) time_once sh -c "$LOOP" ;;
        kernel | poll | ptrace) time_once "$BIN" run --headless --track "$1" -- sh -c "$LOOP" ;;
        strace) time_once strace -f -e trace=none -o /dev/null sh -c "$LOOP" ;;
    esac
}

SOURCES="untraced kernel poll ptrace strace"
r=0
while [ $r -lt "$R" ]; do
    for source in $SOURCES; do
        echo "$source $(run_source "$source")" >>"$OUT"
    done
    r=$((r + 1))
done

median() {
    sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

base=$(awk '$1 == "untraced" { print $2 }' "$OUT" | median)
echo "| source | median of $R runs (s) | vs untraced |"
echo "|---|---|---|"
for source in $SOURCES; do
    secs=$(awk -v s="$source" '$1 == s { print $2 }' "$OUT" | median)
    ratio=$(echo "$secs / $base" | bc -l)
    printf '| %s | %.3f | %.2fx |\n' "$source" "$secs" "$ratio"
done
