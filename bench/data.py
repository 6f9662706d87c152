"""Deterministic datasets for the benchmark (seeded numpy; the same bytes in every process).

Every generator returns a pandas DataFrame indexed by a sorted ``datetime64[ns]`` index named ``ts``.
``rows`` may exceed what a benchmark writes first: the tail feeds the append chunks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

START = np.datetime64("2020-01-01T00:00:00", "ns")


def wide_float(rows: int, seed: int = 1) -> pd.DataFrame:
    """10 float64 columns: f0..f4 random walks rounded to cents, f5..f9 N(0, 1); 1-minute index."""
    rng = np.random.default_rng(seed)
    cols = {}
    for i in range(5):
        walk = 100.0 + np.cumsum(rng.standard_normal(rows) * 0.05)
        cols[f"f{i}"] = np.round(walk, 2)
    for i in range(5, 10):
        cols[f"f{i}"] = rng.standard_normal(rows)
    index = pd.DatetimeIndex(START + np.arange(rows, dtype=np.int64) * np.int64(60_000_000_000), name="ts")
    return pd.DataFrame(cols, index=index)


def ticks(rows: int, seed: int = 2) -> pd.DataFrame:
    """Market ticks: jittered timestamps (~10 ms apart, strictly increasing), price in integer cents
    (random walk), integer sizes (round lots plus odd lots), a symbol from 500 tickers, a buy/sell flag."""
    rng = np.random.default_rng(seed)
    gaps = 1_000_000 + rng.exponential(9_000_000, rows).astype(np.int64)  # >= 1 ms apart
    index = pd.DatetimeIndex(START + np.cumsum(gaps), name="ts")
    price = 10_000 + np.cumsum(rng.integers(-2, 3, rows, dtype=np.int64))
    size = rng.geometric(0.3, rows).astype(np.int64) * 100 + (rng.random(rows) < 0.1) * rng.integers(1, 100, rows)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    names = set()
    while len(names) < 500:
        n = int(rng.integers(2, 6))
        names.add("".join(rng.choice(letters, n)))
    tickers = np.array(sorted(names), dtype=object)
    # Zipf-like popularity: a few symbols trade most, as in real feeds.
    weights = 1.0 / np.arange(1, 501)
    symbol = tickers[rng.choice(500, rows, p=weights / weights.sum())]
    side = rng.random(rows) < 0.5
    return pd.DataFrame({"price": price, "size": size, "symbol": symbol, "is_buy": side}, index=index)


def wide(rows: int, cols: int = 1000, seed: int = 3) -> pd.DataFrame:
    """``cols`` float64 columns c0..c{cols-1} of N(0, 1); 1-second index."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((rows, cols))
    index = pd.DatetimeIndex(START + np.arange(rows, dtype=np.int64) * np.int64(1_000_000_000), name="ts")
    return pd.DataFrame(values, columns=[f"c{i}" for i in range(cols)], index=index)


def tiny(seed: int) -> pd.DataFrame:
    """10 rows x 2 columns: one version or one symbol of the metadata benchmarks."""
    rng = np.random.default_rng(seed)
    index = pd.DatetimeIndex(START + np.arange(10, dtype=np.int64) * np.int64(1_000_000_000), name="ts")
    return pd.DataFrame({"a": rng.standard_normal(10), "b": np.arange(10, dtype=np.int64) + seed}, index=index)


def make(name: str, rows: int) -> pd.DataFrame:
    """The dataset called ``name`` ('wide-float', 'ticks', 'wide') with ``rows`` rows."""
    if name == "wide-float":
        return wide_float(rows)
    if name == "ticks":
        return ticks(rows)
    if name == "wide":
        return wide(rows)
    raise ValueError(f"unknown dataset {name!r}")


def logical_bytes(df: pd.DataFrame) -> int:
    """In-memory size as Arrow holds it: fixed-width columns at their width (bool = 1 byte), strings as
    utf8 bytes + 4-byte offsets, the index as one int64 column."""
    total = 8 * len(df)
    for name in df.columns:
        col = df[name]
        if col.dtype == object:
            total += int(col.str.len().sum()) + 4 * len(col)
        else:
            total += col.dtype.itemsize * len(col)
    return total
