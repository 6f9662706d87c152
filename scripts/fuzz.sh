#!/usr/bin/env bash
# Builds and runs the cargo-fuzz targets in fuzz/.
#
#   scripts/fuzz.sh smoke            # build every target, run each for FLOE_FUZZ_SECONDS (default 10)
#   scripts/fuzz.sh run TARGET SECS  # run one target for SECS seconds (long runs: 600 and up)
#
# On stable Rust the targets run without a sanitizer (`-s none`); when a nightly toolchain is
# installed, `FLOE_FUZZ_ASAN=1` runs them under AddressSanitizer instead.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    step "installing cargo-fuzz 0.13.2 into $FLOE_TOOLS"
    cargo install cargo-fuzz --version 0.13.2 --locked --root "$FLOE_TOOLS"
fi

# fuzz_run TARGET ARGS...: `cargo fuzz run` with the sanitizer choice placed before the libFuzzer args.
fuzz_run() {
    local t="$1"
    shift
    mkdir -p "fuzz/corpus/$t"
    # Seed segment decoding with the checked-in golden segments so coverage starts past the header.
    if [ "$t" = segment_decode ]; then cp formats/tests/golden/*.seg "fuzz/corpus/$t/"; fi
    # The engine target needs the engine's dependencies, which the decoder targets do without.
    local features=()
    if [ "$t" = engine_ops ]; then features=(--features engine); fi
    if [ "${FLOE_FUZZ_ASAN:-0}" = 1 ] && rustup toolchain list | grep -q '^nightly'; then
        cargo +nightly fuzz run "${features[@]}" "$t" "fuzz/corpus/$t" -- -rss_limit_mb=2048 "$@"
    else
        cargo fuzz run -s none "${features[@]}" "$t" "fuzz/corpus/$t" -- -rss_limit_mb=2048 "$@"
    fi
}

targets=$(cd fuzz && cargo fuzz list)
case "${1:-smoke}" in
smoke)
    secs="${FLOE_FUZZ_SECONDS:-10}"
    for t in $targets; do
        step "fuzz $t for ${secs}s"
        fuzz_run "$t" -max_total_time="$secs" 2>&1 | tail -n 2
    done
    ;;
run)
    fuzz_run "$2" -max_total_time="${3:-600}"
    ;;
*)
    echo "usage: $0 smoke | run TARGET SECONDS" >&2
    exit 2
    ;;
esac
