#!/usr/bin/env bash
# The main job: sets up the Python environment (.venv, floe built in release mode), then runs the demo
# on the embedded default, LMDB in a local folder: writes a realistic 10-million-row quote series from
# pandas, appends to it, reads it back (pandas and zero-copy pyarrow), reads a date range and a column
# subset, lists versions and reads the old version, printing one timed line per step.
#
#   scripts/demo.sh [rows]        # default 10000000; data in scratch/demo-lmdb (recreated)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

step "python environment and the floe package"
scripts/python-env.sh
step "demo: ${1:-10000000} rows on LMDB in scratch/demo-lmdb"
.venv/bin/python pyarrow-bridge/examples/demo.py --rows "${1:-10000000}" --path scratch/demo-lmdb
