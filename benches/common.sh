# Sourced by the benchmark scripts: the forkscope binary (benches/binary.sh: built at most
# once, or FORKSCOPE=PATH) and the C helpers (compiled when missing or older than their source).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source benches/binary.sh
HELPERS="$ROOT/target/bench-helpers"
mkdir -p "$HELPERS"
for helper in forkexec exitstamp; do
    if [ ! -x "$HELPERS/$helper" ] || [ "benches/$helper.c" -nt "$HELPERS/$helper" ]; then
        cc -O2 -Wall -o "$HELPERS/$helper" "benches/$helper.c"
    fi
done
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, $FORKSCOPE (checkout at $(git rev-parse --short HEAD))"
