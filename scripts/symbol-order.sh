#!/usr/bin/env bash
# Regenerates pyarrow-bridge/symbol-order.txt, the order the release link gives the extension module's
# functions (design/decisions.md D62), from what small calls run under callgrind: builds the release
# module into the Python environment (scripts/python-env.sh; FLOE_VENV picks another), then runs
# scripts/symbol_order.py. Needs valgrind. Rerun after upgrading Rust or a dependency (symbol names
# change with them): `python scripts/symbol_order.py check` says how many names still match.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

VENV="${FLOE_VENV:-$PWD/.venv}"
if ! command -v valgrind >/dev/null; then echo "valgrind is needed (Debian: apt-get install valgrind)" >&2; exit 1; fi
# Keep the environment's pandas: python-env.sh would otherwise install its own pin over it, and the
# benchmark's environment needs pandas 2 for ArcticDB.
if [[ -z "${FLOE_PANDAS:-}" && -x "$VENV/bin/python" ]]; then
    installed="$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("pandas"))' 2>/dev/null || true)"
    [[ -z "$installed" ]] || export FLOE_PANDAS="$installed"
fi
FLOE_VENV="$VENV" scripts/python-env.sh
step "profiling small calls under callgrind"
"$VENV/bin/python" scripts/symbol_order.py write
# The module as linked with the new order.
FLOE_VENV="$VENV" scripts/python-env.sh >/dev/null
"$VENV/bin/python" scripts/symbol_order.py check
