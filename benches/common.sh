# Sourced by the benchmark scripts: builds forkscope (release) and the C helpers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --release --quiet
FORKSCOPE="$ROOT/target/release/forkscope"
HELPERS="$ROOT/target/bench-helpers"
mkdir -p "$HELPERS"
cc -O2 -Wall -o "$HELPERS/forkexec" benches/forkexec.c
cc -O2 -Wall -o "$HELPERS/exitstamp" benches/exitstamp.c
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, forkscope $(git rev-parse --short HEAD)"
