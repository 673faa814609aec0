#!/usr/bin/env bash
# Output flood through the TUI: BYTES of LINE_LEN-byte lines written by `yes | head -c`, timed
# by the writer itself (the shell around `yes | head` stamps its start and end, so the time is
# how long the reader took to take everything in). Three readers, round after round:
#   cat       the same writer with its stdout piped to `cat > /dev/null` (the peer)
#   headless  `forkscope run --headless` with its JSON to /dev/null
#   tui       `forkscope run` in a 120x40 tmux terminal (every line into the scrollback,
#             the screen redrawn at most every 33 ms), quit with `q` `y` afterwards
# Usage: benches/tui_output.sh [BYTES=1000000000] [LINE_LEN=100] [ROUNDS=3]   (needs tmux)
set -euo pipefail
cd "$(dirname "$0")/.."
BYTES=${1:-1000000000}
LINE_LEN=${2:-100}
ROUNDS=${3:-3}
source benches/binary.sh
BIN=$FORKSCOPE
SOCK=forkscope-bench-$$
DIR=$(mktemp -d)
cleanup() { tmux -L "$SOCK" kill-server 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
LINE=$(head -c $((LINE_LEN - 1)) /dev/zero | tr '\0' x)
# The writer: prints nothing but its lines; leaves its own duration (ns) in $1.
WRITER="s=\$(date +%s%N); yes $LINE | head -c $BYTES; e=\$(date +%s%N); echo \$((e - s)) > \$0"

wait_for() { # FILE SECONDS: waits until FILE is not empty, bounded
  local tries=$(($2 * 20))
  for _ in $(seq 1 "$tries"); do
    [ -s "$1" ] && return 0
    sleep 0.05
  done
  echo "timed out waiting for $1" >&2
  return 1
}

one() { # READER ROUND: prints the writer's seconds
  local out="$DIR/$1.$2"
  case $1 in
    cat) sh -c "$WRITER" "$out" | cat > /dev/null ;;
    headless) "$BIN" run --headless -- sh -c "$WRITER" "$out" > /dev/null ;;
    tui)
      tmux -L "$SOCK" -f /dev/null new-session -d -s "tui$2" -x 120 -y 40 \
        "$BIN run -- sh -c '$WRITER' '$out'"
      wait_for "$out" 600
      # The session ended its worker; leave the TUI (quit, confirm), bounded.
      for _ in $(seq 1 100); do
        tmux -L "$SOCK" has-session -t "tui$2" 2>/dev/null || break
        tmux -L "$SOCK" send-keys -t "tui$2" q y
        sleep 0.1
      done
      ;;
  esac
  wait_for "$out" 600
  awk '{ printf "%.3f\n", $1 / 1e9 }' "$out"
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $BIN (checkout $(git rev-parse --short HEAD))"
echo "# $BYTES bytes of $LINE_LEN-byte lines, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
  for reader in cat headless tui; do
    echo "$reader $(one "$reader" "$round")"
  done
done | tee "$DIR/results"
awk '
  { t[$1] = t[$1] " " $2; n[$1]++ }
  END {
    for (r in t) {
      split(substr(t[r], 2), v, " "); m = n[r]
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
      med[r] = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
      printf "%-9s median %.3f s  (runs:%s)\n", r, med[r], t[r]
    }
    if (med["cat"] > 0) {
      printf "ratio headless/cat = %.2f\n", med["headless"] / med["cat"]
      printf "ratio tui/cat      = %.2f\n", med["tui"] / med["cat"]
    }
  }' "$DIR/results"
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
