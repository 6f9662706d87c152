#!/usr/bin/env bash
# Runs every test Floe has: formatting, lints, the Rust test suite, the fuzz smoke run and the
# S3 conformance run against a real S3-speaking server on loopback. This is what .ci/run calls.
#
#   scripts/test.sh            # everything
#   FLOE_FUZZ_SECONDS=60 scripts/test.sh   # longer fuzz smoke runs (default 10 s per target)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (workspace)"
cargo test --workspace --locked

step "fuzz targets: build and smoke-run"
scripts/fuzz.sh smoke

step "all tests passed"
