#!/usr/bin/env bash
# Python stack of one process: forkscope (warm, cold) against `py-spy dump --pid`.
# Installs py-spy with pip (for this user) only if it is missing. Results: docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
user_scripts="$(python3 -c 'import site, os; print(os.path.join(site.getuserbase(), "bin"))')"
PY_SPY="$(command -v "$scripts/py-spy" || command -v "$user_scripts/py-spy" || true)"
if [ -z "$PY_SPY" ]; then
    python3 -m pip install --quiet py-spy
    PY_SPY="$(command -v "$scripts/py-spy" || command -v "$user_scripts/py-spy")"
fi
export PY_SPY
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
     "forkscope $(git rev-parse --short HEAD), $("$PY_SPY" --version), $(python3 --version)"
cargo bench --bench pystack -- --noplot 2>&1 | grep -E "^python_stack|time:"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
