#!/usr/bin/env bash
# The main job: for now, encodes a realistic 1M-row market-data table into a Floe segment, decodes it,
# checks the round trip and prints sizes and speeds. (Later issues turn this into the Python demo on
# LMDB.)   scripts/demo.sh [rows]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
step "building (release)"
cargo build --release --locked -p floe-formats --example roundtrip
step "encode / decode round trip"
target/release/examples/roundtrip "${1:-1000000}"
