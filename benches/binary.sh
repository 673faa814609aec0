# Sourced by the benchmark scripts: sets FORKSCOPE to the binary to measure, building at most
# once. FORKSCOPE=/path/to/forkscope in the environment is used as given (never built);
# otherwise target/release/forkscope is built only when it is missing or older than a source.
if [ -z "${FORKSCOPE:-}" ]; then
    FORKSCOPE="$PWD/target/release/forkscope"
    if [ ! -x "$FORKSCOPE" ] ||
        [ -n "$(find src Cargo.toml Cargo.lock -newer "$FORKSCOPE" -print -quit)" ]; then
        cargo build --release --quiet
    fi
fi
[ -x "$FORKSCOPE" ] || { echo "no forkscope binary at $FORKSCOPE" >&2; exit 2; }
