"""The engine's worker threads (design/decisions.md D58), seen from Python in a fresh child process:
opening a store and a library starts no thread (so a process may still fork, as before), a forked
child writes and reads with a pool of its own, and the first large read starts one worker per allowed
CPU, each pinned to its CPU and named `floe-worker-N`, unless `FLOE_PIN_THREADS=0`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread names and affinity from /proc")

_CHILD = r"""
import json, os, sys
import numpy as np, pandas as pd
import floe

def workers():
    found = {}
    for tid in os.listdir("/proc/self/task"):
        base = f"/proc/self/task/{tid}"
        with open(f"{base}/comm") as f:
            name = f.read().strip()
        if name.startswith("floe-worker-"):
            found[name] = sorted(os.sched_getaffinity(int(tid)))
    return found

lib = floe.Store(f"lmdb://{sys.argv[1]}").get_library("pool", create_if_missing=True)
df = pd.DataFrame({"x": np.arange(2_000_000, dtype="f8"), "y": np.arange(2_000_000)},
                  index=pd.date_range("2024-01-01", periods=2_000_000, freq="s", name="t"))
opened = workers()
pid = os.fork()
if pid == 0:
    lib.write("child", df)
    ok = lib.read("child").data.equals(df)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
lib.write("s", df)
same = lib.read("s").data.equals(df)
print(json.dumps({"opened": opened, "child": os.waitstatus_to_exitcode(status), "same": same,
                  "after": workers(), "allowed": sorted(os.sched_getaffinity(0)), "cpus": os.cpu_count()}))
"""


def _quota_cpus() -> float:
    """The CPUs a cgroup v2 quota allows (`cpu.max`), or infinity without one."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()
    except (OSError, ValueError):
        return float("inf")
    return float("inf") if quota == "max" else int(quota) / int(period)


def _run(tmp_path, pin: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("FLOE_PIN_THREADS", "RAYON_NUM_THREADS")}
    if pin is not None:
        env["FLOE_PIN_THREADS"] = pin
    child = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "store")], capture_output=True, text=True, timeout=300, env=env)
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_workers_start_at_the_first_large_step_pinned_one_per_cpu(tmp_path):
    out = _run(tmp_path, None)
    assert out["opened"] == {}, "opening a store or a library starts no worker"
    assert out["child"] == 0, "a child forked after opening writes and reads exactly"
    assert out["same"]
    allowed = out["allowed"]
    if len(allowed) < 2 or _quota_cpus() < len(allowed):
        pytest.skip("one CPU, or a CPU quota below the affinity mask: nothing is pinned here")
    assert out["after"] == {f"floe-worker-{i}": [cpu] for i, cpu in enumerate(allowed)}


def test_pinning_can_be_switched_off(tmp_path):
    out = _run(tmp_path, "0")
    assert out["child"] == 0 and out["same"]
    assert out["after"] == {}, "rayon's own pool: unnamed, unpinned workers"
