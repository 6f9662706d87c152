#!/usr/bin/env bash
# A local S3-speaking server (moto) on loopback, for the S3 backend's tests.
#
#   scripts/s3-server.sh install   # create .venv-s3 with moto[server] 5.2 (skipped when already there)
#   scripts/s3-server.sh start     # start on a free port; prints FLOE_S3_ENDPOINT=http://127.0.0.1:<port>
#   scripts/s3-server.sh endpoint  # prints the running server's FLOE_S3_ENDPOINT=... line
#   scripts/s3-server.sh stop      # stop the server started by `start`
#
# moto, not s3s-fs, and wrapped by scripts/moto_server_atomic.py: plain moto 5.2 checks If-Match /
# If-None-Match and stores in two unlocked steps, which lets two compare-and-swaps win under
# contention; the wrapper serializes writes so conditional puts are atomic as on real S3
# (design/backends.md#s3). Buckets are not created here: each test
# creates its own fresh bucket with an anonymous `PUT /<bucket>`, which moto accepts.
# State (port, pid, log) lives in $FLOE_S3_STATE (default .tools/s3-server), ignored by git.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${FLOE_S3_VENV:-$PWD/.venv-s3}"
STATE="${FLOE_S3_STATE:-$PWD/.tools/s3-server}"
MOTO_SPEC="moto[server]==5.2.*"

die() {
    echo "s3-server: $*" >&2
    exit 1
}

installed() {
    [[ -x "$VENV/bin/moto_server" ]] &&
        "$VENV/bin/python" -c 'import sys, moto; sys.exit(0 if moto.__version__.startswith("5.2.") else 1)' 2>/dev/null
}

cmd_install() {
    if installed; then
        echo "s3-server: moto already installed in $VENV"
        return
    fi
    echo "s3-server: installing $MOTO_SPEC into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$MOTO_SPEC"
    installed || die "moto did not install correctly into $VENV"
}

# The pid of the running server, or nothing. Checks the process really is our moto_server, so a
# stale pid file never makes us signal an unrelated process.
running_pid() {
    local pid
    [[ -f "$STATE/pid" ]] || return 0
    pid="$(cat "$STATE/pid")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q moto_server "/proc/$pid/cmdline" 2>/dev/null; then
        echo "$pid"
    fi
}

answers() {
    "$VENV/bin/python" - "$1" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=2).read()
EOF
}

cmd_start() {
    installed || die "moto is not installed; run: scripts/s3-server.sh install"
    if [[ -n "$(running_pid)" ]]; then
        echo "FLOE_S3_ENDPOINT=http://127.0.0.1:$(cat "$STATE/port")"
        return
    fi
    mkdir -p "$STATE"
    rm -f "$STATE/port" "$STATE/pid"
    # Port 0: the OS picks a free port, so there is no window in which another process can take
    # it; werkzeug logs the port it bound.
    # moto_server_atomic.py is moto_server with conditional writes made atomic (see that file).
    setsid "$VENV/bin/python" scripts/moto_server_atomic.py -H 127.0.0.1 -p 0 >"$STATE/log" 2>&1 </dev/null &
    local pid=$! port="" i
    echo "$pid" >"$STATE/pid"
    for i in $(seq 1 300); do
        port="$(sed -n 's#.*Running on http://127\.0\.0\.1:\([0-9][0-9]*\).*#\1#p' "$STATE/log" | head -n 1)"
        if [[ -n "$port" ]] && answers "$port"; then
            break
        fi
        # Plain liveness, not running_pid: until the exec, the child's command line is this script's.
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$STATE/log" >&2
            die "moto_server exited during start-up (log above)"
        fi
        port=""
        sleep 0.1
    done
    if [[ -z "$port" ]]; then
        cmd_stop >/dev/null
        die "moto_server did not answer within 30 s (log: $STATE/log)"
    fi
    echo "$port" >"$STATE/port"
    echo "FLOE_S3_ENDPOINT=http://127.0.0.1:$port"
}

cmd_endpoint() {
    [[ -n "$(running_pid)" ]] || die "no server running; run: scripts/s3-server.sh start"
    echo "FLOE_S3_ENDPOINT=http://127.0.0.1:$(cat "$STATE/port")"
}

cmd_stop() {
    local pid i
    pid="$(running_pid)"
    if [[ -n "$pid" ]]; then
        kill "$pid"
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        echo "s3-server: stopped (pid $pid)"
    else
        echo "s3-server: not running"
    fi
    rm -f "$STATE/pid" "$STATE/port"
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    endpoint) cmd_endpoint ;;
    stop) cmd_stop ;;
    *) die "usage: scripts/s3-server.sh install|start|endpoint|stop" ;;
esac
