#!/usr/bin/env bash
# Sets up the Python side: a virtual environment in .venv with pinned maturin, pyarrow, pandas,
# polars, numpy and pytest, then builds the `floe` package (pyarrow-bridge/, distribution floe-db)
# and installs it into that environment. Idempotent: packages already at their pins are left alone,
# and cargo rebuilds only what changed.
#
#   scripts/python-env.sh          # release build (the demo); then: .venv/bin/python -c "import floe"
#   scripts/python-env.sh --dev    # dev-profile build sharing target/ with cargo test (the test suite)
#
# FLOE_VENV overrides where the environment lives (default: .venv in the clone); FLOE_PANDAS the pandas
# version pinned (default 3.1.1; the test suite also runs under 2.3.3, the line ArcticDB's users are on).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

VENV="${FLOE_VENV:-$PWD/.venv}"
# Versions checked together on this machine (design/python.md, shared deps notes).
PINS=(maturin==1.16.0 pyarrow==26.0.1 "pandas==${FLOE_PANDAS:-3.1.1}" polars==2.1.0 numpy==2.4.6 pytest==9.2.0)

if [[ ! -x "$VENV/bin/python" ]]; then
    step "creating $VENV"
    python3 -m venv "$VENV"
fi
# pip's own check is quick when everything is already installed at the pinned versions.
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

if [[ "${1:-}" == "--dev" ]]; then
    # The dev profile in the workspace's target/ reuses what `cargo test` built: only the crates
    # that depend on pyo3 are rebuilt for the extension module's configuration.
    step "building and installing floe (maturin develop, dev profile)"
    profile=(); target="$PWD/target"
else
    # Release builds get their own target folder: their artifacts (release, pyo3 configured for an
    # extension module) are never shared with cargo's own builds, so this keeps both caches warm and
    # the two off each other's lock.
    step "building and installing floe (maturin develop --release)"
    profile=(--release); target="${FLOE_PY_TARGET:-$PWD/target/python}"
fi
# maturin develop needs the environment active (VIRTUAL_ENV) to know where to install.
VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" CARGO_TARGET_DIR="$target" \
    "$VENV/bin/maturin" develop "${profile[@]}" --locked --manifest-path pyarrow-bridge/Cargo.toml
"$VENV/bin/python" -c "import floe; print('floe', floe.__version__, 'installed in $VENV')"
