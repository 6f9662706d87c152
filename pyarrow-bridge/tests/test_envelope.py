"""The metadata envelope: layout, raw blobs from other writers, damaged blobs."""

from __future__ import annotations

import struct

import pandas as pd
import pyarrow as pa
import pytest

import floe
from floe import _envelope


def test_layout_and_round_trip():
    blob = _envelope.encode({"kind": "arrow", "index_column": None}, {"a": 1}, True)
    magic, version, flags, header_len = struct.unpack_from("<6sBBI", blob)
    assert (magic, version, flags) == (b"FLOEPY", 1, 1)
    assert blob[12 : 12 + header_len] == b'{"kind":"arrow","index_column":null}'
    env = _envelope.decode(blob)
    assert env.norm == {"kind": "arrow", "index_column": None} and env.user == {"a": 1} and env.has_user
    empty = _envelope.decode(_envelope.encode(None, None, False))
    assert empty.norm is None and empty.user is None and not empty.has_user
    # None as metadata is stored as "no metadata"; a falsy value is kept.
    assert _envelope.decode(_envelope.encode(None, 0, True)).user == 0


def test_decoded_envelopes_are_shared_only_without_user_metadata(lib):
    """A blob without user metadata decodes to one shared, frozen envelope; one with user metadata
    decodes afresh each time, so a caller changing the object it got changes no later read's."""
    blob = _envelope.encode({"kind": "arrow", "index_column": None}, None, False)
    assert _envelope.decode(blob) is _envelope.decode(bytes(bytearray(blob)))
    with pytest.raises(AttributeError):
        _envelope.decode(blob).user = {}  # type: ignore[misc]
    with_user = _envelope.encode(None, {"a": [1]}, True)
    _envelope.decode(with_user).user["a"].append(2)
    assert _envelope.decode(with_user).user == {"a": [1]}
    # The same through a library: metadata read back and changed is not what the next read returns.
    lib.write("m", pd.DataFrame({"x": [1.0]}), metadata={"tags": ["a"]})
    lib.read("m").metadata["tags"].append("b")
    assert lib.read("m").metadata == {"tags": ["a"]}


def test_unknown_keys_are_ignored_and_bad_blobs_raise():
    blob = _envelope.encode({"kind": "arrow", "index_column": None, "future": [1, 2]}, None, False)
    assert _envelope.decode(blob).norm["future"] == [1, 2]
    with pytest.raises(floe.CorruptData, match="version 9"):
        _envelope.decode(b"FLOEPY" + bytes([9, 0]) + b"\x00" * 4)
    with pytest.raises(floe.CorruptData, match="overruns"):
        _envelope.decode(b"FLOEPY" + bytes([1, 0]) + struct.pack("<I", 100) + b"{}")
    with pytest.raises(floe.CorruptData, match="JSON"):
        _envelope.decode(b"FLOEPY" + bytes([1, 0]) + struct.pack("<I", 2) + b"{x")


def test_blob_from_another_writer_is_returned_raw(lib):
    """Metadata written without the envelope (e.g. by the Rust API) comes back as bytes, and the
    data as a plain frame."""
    t = pa.table({"ts": pa.array(pd.date_range("2024-01-01", periods=3, unit="ns")), "x": [1.0, 2.0, 3.0]})
    lib._lib.write("raw", t, "ts", b"\x00raw bytes", False)
    item = lib.read("raw")
    assert item.metadata == b"\x00raw bytes"
    assert list(item.data.columns) == ["ts", "x"] and isinstance(item.data.index, pd.RangeIndex)
    assert lib.read_metadata("raw").metadata == b"\x00raw bytes"
