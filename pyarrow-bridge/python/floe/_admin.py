"""``Library.admin_tools()``: what a library stores, by kind of object and by symbol (ArcticDB's
``AdminTools``). Everything stored counts, whether a version still reaches it or not (objects a delete
left behind for ``vacuum`` too): it is what the storage holds and bills."""

from __future__ import annotations

from typing import Dict, Iterable, Tuple

from . import _floe
from ._types import SYMBOL_KEY_TYPES, KeyType, Size


def _totals(rows: Iterable[Tuple[str, str, int, int]], kinds: Iterable[KeyType]) -> Dict[KeyType, Size]:
    """Sizes of ``kinds`` (every one present, zero when nothing is stored) summed over ``rows``."""
    counts = {k: [0, 0] for k in kinds}
    for name, _, count, nbytes in rows:
        kind = KeyType(name)
        if kind in counts:
            counts[kind][0] += nbytes
            counts[kind][1] += count
    return {k: Size(b, c) for k, (b, c) in counts.items()}


class AdminTools:
    """Storage accounting of one library. Each call lists the library's keys and asks the backend
    for sizes only: LMDB reads its pages in place, S3 answers one HEAD request per object; nothing is
    downloaded. On S3 a library of many objects takes many requests (run it off the hot path)."""

    def __init__(self, lib: _floe.Library) -> None:
        self._lib = lib

    def get_sizes(self) -> Dict[KeyType, Size]:
        """Objects and bytes of every kind the library stores (every :class:`KeyType`, zero when none)."""
        return _totals(self._lib.stored_sizes(None), KeyType)

    def get_sizes_by_symbol(self) -> Dict[str, Dict[KeyType, Size]]:
        """For every symbol with objects in storage (deleted ones whose objects remain too), the
        objects and bytes of each kind that belongs to a symbol."""
        by_symbol: Dict[str, list] = {}
        for row in self._lib.stored_sizes(None):
            if KeyType(row[0]) in SYMBOL_KEY_TYPES:
                by_symbol.setdefault(row[1], []).append(row)
        return {s: _totals(rows, SYMBOL_KEY_TYPES) for s, rows in sorted(by_symbol.items())}

    def get_sizes_for_symbol(self, symbol: str) -> Dict[KeyType, Size]:
        """Objects and bytes of each kind that belongs to ``symbol`` (zero for a symbol with none)."""
        return _totals(self._lib.stored_sizes(symbol), SYMBOL_KEY_TYPES)
