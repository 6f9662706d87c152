"""ArcticDB's ``arrow_string_format_default`` / ``arrow_string_format_per_column``: the Arrow type of the
string columns of a read to pyarrow or polars. Without either, strings come back as stored (a pandas
string column as ``large_string``, an Arrow ``string`` column as ``string``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import pyarrow as pa
import pyarrow.compute as pc

from ._convert import CODES_KEY
from .errors import InvalidInput


class ArrowOutputStringFormat:
    """How a read to pyarrow or polars returns string columns (ArcticDB's names)."""

    #: ``large_string`` (64-bit offsets).
    LARGE_STRING = "LARGE_STRING"
    #: ``string`` (32-bit offsets; a column of more than 2 GiB of text cannot be one). polars has no
    #: such type: it reads them as its own strings.
    SMALL_STRING = "SMALL_STRING"
    #: ``dictionary<int32, large_string>``: each distinct string once (polars: ``Categorical``). Read
    #: from the stored codes where every segment stores the column dictionary-coded, without making
    #: each row's string.
    CATEGORICAL = "CATEGORICAL"
    #: ArcticDB's other name for ``CATEGORICAL``.
    DICTIONARY_ENCODED = "DICTIONARY_ENCODED"


_TYPES = {
    ArrowOutputStringFormat.LARGE_STRING: pa.large_string(),
    ArrowOutputStringFormat.SMALL_STRING: pa.string(),
    ArrowOutputStringFormat.CATEGORICAL: pa.dictionary(pa.int32(), pa.large_string()),
    ArrowOutputStringFormat.DICTIONARY_ENCODED: pa.dictionary(pa.int32(), pa.large_string()),
}


def _parse(value: Any, what: str) -> str:
    """A format given as one of the class's names (any case) or an enum member with such a ``name``
    (ArcticDB's own ``ArrowOutputStringFormat``)."""
    name = getattr(value, "name", value)
    if isinstance(name, str) and name.upper() in _TYPES:
        return name.upper()
    raise InvalidInput(f"{what} {value!r} is not one of {', '.join(sorted(_TYPES))}")


@dataclass(frozen=True)
class StringFormats:
    """The string format asked for each column: ``per_column``'s, else ``default``'s, else as stored."""

    default: Optional[str]
    per_column: Dict[str, str]

    @staticmethod
    def parse(default: Any, per_column: Any) -> Optional["StringFormats"]:
        """None when neither is given (strings as stored)."""
        if default is None and not per_column:
            return None
        if per_column is not None and not isinstance(per_column, dict):
            raise InvalidInput(f"arrow_string_format_per_column must be a dict of column name to format, not {type(per_column).__name__}")
        columns = {str(k): _parse(v, f"arrow_string_format_per_column[{k!r}]") for k, v in (per_column or {}).items()}
        return StringFormats(None if default is None else _parse(default, "arrow_string_format_default"), columns)

    def of(self, column: str) -> Optional[str]:
        return self.per_column.get(column, self.default)

    def wants_categorical(self) -> bool:
        """Whether any column may be read as categorical (then the engine hands over its codes)."""
        dictionary = (ArrowOutputStringFormat.CATEGORICAL, ArrowOutputStringFormat.DICTIONARY_ENCODED)
        return self.default in dictionary or any(f in dictionary for f in self.per_column.values())

    def apply(self, table: pa.Table) -> pa.Table:
        """``table`` with its string columns in the formats asked, and every column the engine read as
        codes either kept as a dictionary (categorical) or decoded to plain strings."""
        for i, field in enumerate(table.schema):
            coded = bool(field.metadata and CODES_KEY in field.metadata)
            if not (coded or _is_string(field.type)):
                continue
            column = table.column(i)
            target = self.of(field.name)
            if target is None:
                if not coded:
                    continue
                target_type = field.type.value_type  # as stored
            else:
                target_type = _TYPES[target]
            if pa.types.is_dictionary(target_type) and not pa.types.is_dictionary(field.type):
                column = pc.dictionary_encode(column)
            try:
                column = column.cast(target_type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise InvalidInput(f"column {field.name!r} cannot be returned as {target}: {e}") from e
            table = table.set_column(i, pa.field(field.name, target_type, field.nullable), column)
        return table


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _is_string(t.value_type)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
