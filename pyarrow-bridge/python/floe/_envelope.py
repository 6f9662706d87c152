"""The user-metadata envelope: what Floe's Python layer stores in a version's metadata blob.

The engine keeps one opaque metadata blob per version. The Python layer stores in it both the user's
metadata (any picklable object) and what it needs to give a pandas frame back exactly as it was
written (index kind and names, column names that were not strings, pandas dtypes, Series vs frame).
Layout (all integers little-endian; design/python.md has the full description)::

    offset  size  field
    0       6     magic b"FLOEPY"
    6       1     envelope version (1)
    7       1     flags: bit 0 = user metadata present
    8       4     header length H (u32)
    12      H     header: UTF-8 JSON object (the normalization record, or null)
    12+H    ...   user metadata: pickle (protocol 4), present iff flag bit 0

Readers ignore JSON keys they do not know, so fields can be added without a version change; the
version byte changes only if the layout above changes. A blob without the magic was not written by
this layer (e.g. by the Rust API): it is handed to the user as raw ``bytes``.
"""

from __future__ import annotations

import functools
import json
import pickle
import struct
from dataclasses import dataclass
from typing import Any, Optional

from .errors import CorruptData, InvalidInput

MAGIC = b"FLOEPY"
VERSION = 1
_FIXED = struct.Struct("<6sBBI")
_HAS_USER = 0x01
# Protocol 4 is readable by every Python this package supports (>= 3.10).
PICKLE_PROTOCOL = 4


@dataclass(frozen=True)
class Envelope:
    """A decoded metadata blob: the normalization record (or None) and the user's metadata. Envelopes
    without user metadata are shared between the reads of the same blob (``decode``), hence frozen."""

    norm: Optional[dict]
    user: Any = None
    has_user: bool = False


def encode(norm: Optional[dict], user: Any, has_user: bool) -> bytes:
    """The blob for ``norm`` and, when ``has_user``, the pickled ``user`` metadata.

    Raises InvalidInput (before anything is written) if the metadata cannot be pickled.
    """
    header = json.dumps(norm, separators=(",", ":"), allow_nan=False).encode()
    body = b""
    if has_user:
        try:
            body = pickle.dumps(user, protocol=PICKLE_PROTOCOL)
        except Exception as e:  # pickle raises many types (PicklingError, TypeError, AttributeError)
            raise InvalidInput(f"metadata of type {type(user).__name__} cannot be pickled: {e}") from e
    flags = _HAS_USER if has_user else 0
    return _FIXED.pack(MAGIC, VERSION, flags, len(header)) + header + body


@functools.lru_cache(maxsize=256)
def _normalization_record(header: bytes) -> Any:
    """The JSON header, parsed once per distinct header: a read decodes its version's envelope up to
    twice, and a 1,000-column frame's record (its dtypes) took ~150 us to parse each time. The record
    is shared between the reads of that header, so nothing may modify it (nothing does: reads only look
    things up in it, writes encode it)."""
    return json.loads(header)


# Envelopes without user metadata by blob: most reads decode a blob seen before (every version of a
# symbol written from frames of one shape has the same one), and a hit is one dict lookup where the
# decode took ~30 us with cold caches (a read of a 10-row version takes ~250 us so). Bounded by
# forgetting everything when full: most blobs are a few hundred bytes, but a 1,000-column frame's
# (its dtypes) are tens of KB, and a long-lived process may see many shapes.
_DECODED: dict[bytes, "Envelope"] = {}
_DECODED_MAX = 64


def decode(blob: Optional[bytes]) -> Envelope:
    """Decodes a blob; raw bytes (no magic) come back as the user metadata unchanged."""
    if blob is None:
        return _NO_ENVELOPE
    env = _DECODED.get(blob)
    if env is not None:
        return env
    env = _decode(blob)
    if not env.has_user:
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        _DECODED[blob] = env
    return env


def _decode(blob: bytes) -> Envelope:
    """``decode`` without the cache."""
    if len(blob) < _FIXED.size or not blob.startswith(MAGIC):
        return Envelope(None, bytes(blob), True)
    _, version, flags, header_len = _FIXED.unpack_from(blob)
    if version != VERSION:
        raise CorruptData(f"metadata envelope version {version} is not supported (this floe reads {VERSION})")
    end = _FIXED.size + header_len
    if end > len(blob):
        raise CorruptData(f"metadata envelope header of {header_len} bytes overruns the {len(blob)}-byte blob")
    try:
        norm = _normalization_record(bytes(blob[_FIXED.size:end]))
    except ValueError as e:
        raise CorruptData(f"metadata envelope header is not valid JSON: {e}") from e
    if not flags & _HAS_USER:
        return Envelope(norm)
    return Envelope(norm, pickle.loads(blob[end:]), True)


_NO_ENVELOPE = Envelope(None)
