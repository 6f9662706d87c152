#!/usr/bin/env bash
# Floe side by side with ArcticDB and Parquet (issue 6). Sets up .venv-bench (pinned arcticdb, pyarrow,
# pandas, polars, numpy, maturin; ArcticDB 6.28 needs pandas < 3, so this is not the project's .venv),
# builds floe into it in release mode, runs bench/harness.py and prints the tables (bench/report.py).
#
#   bench/run.sh            # full sizes (10M-row datasets, 10,000 versions/symbols, 1M-16M scaling): ~30-60 min
#   bench/run.sh --quick    # small sizes, under 2 minutes once the environment is built
#   bench/run.sh --only wide-float,meta      # some sections (wide-float, ticks, wide, meta, scaling)
#
# Results: scratch/bench/results-<mode>.json (every call) and .md (the tables); stores are made in
# scratch/bench/data and removed at the end. FLOE_BENCH_VENV overrides where the environment lives.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

VENV="${FLOE_BENCH_VENV:-$PWD/.venv-bench}"
PINS=(arcticdb==6.28.2 pyarrow==26.0.1 pandas==2.3.3 polars==2.1.0 numpy==2.4.6 maturin==1.16.0)

if [[ ! -x "$VENV/bin/python" ]]; then
    step "creating $VENV"
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "${PINS[@]}" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name) != want:
        sys.exit(1)
PY
    step "installing ${PINS[*]}"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
fi

step "building floe into $VENV (maturin develop --release)"
# The same target folder as scripts/python-env.sh, so an unchanged tree builds nothing.
VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" CARGO_TARGET_DIR="${FLOE_PY_TARGET:-$PWD/target/python}" \
    "$VENV/bin/maturin" develop --release --locked --manifest-path pyarrow-bridge/Cargo.toml >/dev/null
# The write targets' LMDB floor (bench/worker.py `lmdb_alone`): LMDB alone storing the same bytes.
PY_TARGET="${FLOE_PY_TARGET:-$PWD/target/python}"
CARGO_TARGET_DIR="$PY_TARGET" cargo build --quiet --release --locked -p floe-backends --example lmdb_floor
export FLOE_LMDB_FLOOR="$PY_TARGET/release/examples/lmdb_floor"

# FLOE_BENCH_NICE=-10 runs the benchmark at that priority (process and scheduler autogroup), as the
# anchors in shared/reference/baseline.md were measured; on a machine shared with builds, a benchmark at
# normal or lower priority measures mostly the other jobs.
if [[ -n "${FLOE_BENCH_NICE:-}" ]]; then
    renice -n "$FLOE_BENCH_NICE" -p $$ >/dev/null
    echo "$FLOE_BENCH_NICE" > /proc/self/autogroup 2>/dev/null || true
fi

mode=full
for arg in "$@"; do [[ "$arg" == "--quick" ]] && mode=quick; done
out="scratch/bench/results-$mode.json"
step "benchmark ($mode)"
"$VENV/bin/python" bench/harness.py --out "$out" "$@"
"$VENV/bin/python" bench/report.py "$out" > "${out%.json}.md"
step "tables: ${out%.json}.md"
cat "${out%.json}.md"
