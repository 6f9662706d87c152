"""Fixtures: every test that takes ``store`` or ``lib`` runs on each backend: ``mem://``, LMDB in a
temporary folder, and S3 against the loopback server whose URL is in ``FLOE_S3_ENDPOINT``
(``scripts/s3-server.sh start`` prints it; without it the S3 cases are skipped)."""

from __future__ import annotations

import itertools
import os
import time
import urllib.request
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest

import floe

_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


@pytest.fixture(scope="session")
def s3_bucket_uri():
    """One fresh bucket per test session on the loopback S3 server (moto accepts an anonymous
    ``PUT /<bucket>``), as a Floe URI."""
    endpoint = os.environ.get("FLOE_S3_ENDPOINT")
    if not endpoint:
        pytest.skip("FLOE_S3_ENDPOINT is not set (scripts/s3-server.sh start)")
    url = urlparse(endpoint)
    bucket = f"floe-py-{os.getpid()}-{time.time_ns() % 10**9}"
    req = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT", data=b"")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200, f"creating bucket {bucket}: HTTP {r.status}"
    return f"s3://{url.hostname}:{bucket}?port={url.port}&https=false&access=testing&secret=testing"


@pytest.fixture(params=["mem", "lmdb", "s3"])
def store_uri(request, tmp_path):
    if request.param == "mem":
        return "mem://"
    if request.param == "lmdb":
        return f"lmdb://{tmp_path}/floe"
    base = request.getfixturevalue("s3_bucket_uri")
    return f"{base}&path_prefix={unique('t')}"


@pytest.fixture
def store(store_uri):
    return floe.Store(store_uri)


@pytest.fixture
def lib(store):
    return store.create_library(unique("lib"))


@pytest.fixture
def small_lib(store):
    """A library with small segments, so reads and appends cross segment boundaries."""
    return store.create_library(unique("small"), floe.LibraryOptions(rows_per_segment=7, columns_per_segment=3))


def ts_frame(n: int = 20, start: str = "2024-01-01", freq: str = "1h", seed: int = 0, tz=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=n, freq=freq, tz=tz, name="time", unit="ns")
    return pd.DataFrame(
        {
            "price": rng.normal(100, 5, n),
            "size": rng.integers(1, 1000, n, dtype=np.int64),
            "venue": pd.array(rng.choice(["XNAS", "XNYS", "BATS"], n), dtype="str"),
        },
        index=idx,
    )


def assert_frame_equal(a, b, **kw):
    """Exact comparison (dtypes included); DatetimeIndex.freq is not stored."""
    pd.testing.assert_frame_equal(a, b, check_freq=False, **kw)
