#!/usr/bin/env bash
# Runs the reliability harnesses of issue 7 (design/reliability.md) on LMDB and on S3 (moto on loopback)
# and prints their figures. The short versions also run in `cargo test --workspace` (scripts/test.sh),
# there without S3 unless FLOE_S3_ENDPOINT is set.
#
#   scripts/reliability.sh          # short versions, LMDB and S3, with figures (a few minutes)
#   scripts/reliability.sh --full   # the long runs: 8 x 1,000 appends, 300 + 200 kills, 400 flips,
#                                   # 60 s of load, and the engine fuzz target for FLOE_FUZZ_ENGINE_SECS
#                                   # (default 600); an hour or more on 2 cores
#   FLOE_RELIABILITY_NO_S3=1 scripts/reliability.sh   # LMDB only
#
# The output also goes to scratch/reliability-<mode>-<time>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

mode=short
if [[ "${1:-}" == "--full" ]]; then
    mode=full
elif [[ -n "${1:-}" ]]; then
    echo "usage: $0 [--full]" >&2
    exit 2
fi
mkdir -p scratch
log="scratch/reliability-$mode-$(date +%Y%m%d-%H%M%S).log"
exec > >(tee "$log") 2>&1

# The S3 variants need the loopback server. This script keeps its own (own state folder), so that a
# server other tests start and stop is never pulled from under a long run; it is stopped at the end.
export FLOE_S3_STATE="${FLOE_S3_STATE:-$PWD/.tools/s3-server-reliability}"
started_s3=""
stop_s3() { if [[ -n "$started_s3" ]]; then scripts/s3-server.sh stop; fi; }
trap stop_s3 EXIT
if [[ "${FLOE_RELIABILITY_NO_S3:-0}" != 1 ]]; then
    if ! scripts/s3-server.sh endpoint >/dev/null 2>&1; then
        scripts/s3-server.sh install
        scripts/s3-server.sh start >/dev/null
        started_s3=1
    fi
    FLOE_S3_ENDPOINT="$(scripts/s3-server.sh endpoint | sed 's/^FLOE_S3_ENDPOINT=//')"
    export FLOE_S3_ENDPOINT
    step "S3 server at $FLOE_S3_ENDPOINT"
fi

tests=(--test reliability_writers --test reliability_crash --test reliability_corruption --test reliability_load)
if [[ $mode == full ]]; then
    export FLOE_FULL=1
    # Release build: the figures are meant to say what the engine does, not what a debug build does.
    step "reliability harnesses, full (release build; one test at a time so they do not share the cores)"
    cargo test --release --locked -p floe-tests "${tests[@]}" -- --nocapture --test-threads 1
    step "vacuum unit tests"
    cargo test --release --locked -p floe-engine --lib vacuum
    secs="${FLOE_FUZZ_ENGINE_SECS:-600}"
    step "engine model fuzzing for ${secs}s"
    # A finding makes the run fail (pipefail); the tail shows libFuzzer's summary or the failing input.
    scripts/fuzz.sh run engine_ops "$secs" 2>&1 | tail -n 30
else
    step "reliability harnesses, short"
    cargo test --locked -p floe-tests "${tests[@]}" -- --nocapture --test-threads 1
fi
step "figures"
grep -h '^\[reliability\]\|\] \[reliability\]' "$log" | sed 's/^.*\[reliability\]/[reliability]/' || true
step "reliability $mode run passed (log: $log)"
