//! String columns read as codes: the keys of dictionary-coded segments (format.md 2.4.1) remapped into
//! one dictionary for the whole read, so a consumer that makes one object per distinct value (the
//! pandas conversion) never sees the materialized strings. See [`crate::ReadRequest::strings_as_codes`].

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, Int32Array, LargeStringArray, StringArray, StringViewArray};
use arrow_buffer::{Buffer, NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};

use super::output::OutputBuf;
use crate::error::{Error, Result};

/// Field metadata marking a column read as codes: its key is this, its value the column's stored type
/// (`utf8` or `large_utf8`). The field's type is `Dictionary(Int32, <that type>)`. The same mark on a
/// column given to a write stores it as that plain string column (`floe_formats::is_coded_strings`).
pub use floe_formats::CODES_METADATA_KEY;

/// Whether a column of type `dt` can be read as codes.
pub(crate) fn codable(dt: &DataType) -> bool {
    matches!(dt, DataType::Utf8 | DataType::LargeUtf8)
}

/// The distinct values of a read's pieces, in order of first appearance, and for each piece the map
/// from its segment's dictionary positions to positions in that one dictionary.
pub(crate) struct MergedDictionary<'a> {
    values: Vec<&'a str>,
    /// Per piece (in piece order): segment key -> merged key.
    pub remaps: Vec<Vec<u32>>,
}

impl<'a> MergedDictionary<'a> {
    /// Merges the segment dictionaries of a column's pieces (`Utf8` or `LargeUtf8` arrays).
    ///
    /// # Errors
    /// `CorruptData` for a dictionary of another type.
    pub(crate) fn new(dictionaries: &[&'a ArrayRef]) -> Result<Self> {
        let mut ids: HashMap<&'a str, u32> = HashMap::new();
        let mut values: Vec<&'a str> = Vec::new();
        let mut remaps = Vec::with_capacity(dictionaries.len());
        for d in dictionaries {
            let entries: Vec<&'a str> = match d.data_type() {
                DataType::Utf8 => d.as_string::<i32>().iter().map(Option::unwrap_or_default).collect(),
                DataType::LargeUtf8 => d.as_string::<i64>().iter().map(Option::unwrap_or_default).collect(),
                other => return Err(Error::corrupt(format!("a string column's dictionary holds {other}"))),
            };
            let remap = entries
                .into_iter()
                .map(|v| {
                    *ids.entry(v).or_insert_with(|| {
                        values.push(v);
                        u32::try_from(values.len() - 1).expect("a read holds fewer than 2^32 distinct values")
                    })
                })
                .collect();
            remaps.push(remap);
        }
        Ok(MergedDictionary { values, remaps })
    }

    /// The column as a dictionary array of `rows` rows: `keys` (merged, one little-endian `u32` per row)
    /// and `validity` over the merged values, in a field marked with [`CODES_METADATA_KEY`].
    ///
    /// # Errors
    /// `CorruptData` if a valid row's key is outside the dictionary (cannot happen for remapped keys).
    pub(crate) fn into_array(
        self,
        field: &Field,
        keys: Buffer,
        rows: usize,
        validity: Option<Buffer>,
    ) -> Result<(Field, ArrayRef)> {
        let keys = Int32Array::try_new(
            ScalarBuffer::new(keys, 0, rows),
            validity.map(|v| NullBuffer::new(arrow_buffer::BooleanBuffer::new(v, 0, rows))),
        )?;
        let (values, tag): (ArrayRef, &str) = match field.data_type() {
            DataType::LargeUtf8 => (Arc::new(LargeStringArray::from(self.values)), "large_utf8"),
            _ => (Arc::new(StringArray::from(self.values)), "utf8"),
        };
        let array = DictionaryArray::<Int32Type>::try_new(keys, values)?;
        let coded = Field::new(field.name(), array.data_type().clone(), field.is_nullable())
            .with_metadata(HashMap::from([(CODES_METADATA_KEY.to_owned(), tag.to_owned())]));
        Ok((coded, Arc::new(array)))
    }

    /// The column as a `Utf8View` array of `rows` rows whose merged keys are `keys` (one little-endian
    /// `u32` per row), with `validity`: each row's 16-byte view is its value's view in a view array of
    /// the distinct values, whose data buffers the column shares (no row's string is copied). A null row
    /// (key 0) gets value 0's view, or the empty string's if there are no values. The field keeps the
    /// name, nullability and metadata of `field`.
    ///
    /// # Errors
    /// `Internal` if `validity` does not have one bit per row.
    pub(crate) fn into_views(
        self,
        field: &Field,
        mut keys: OutputBuf,
        rows: usize,
        validity: Option<Buffer>,
    ) -> Result<(Field, ArrayRef)> {
        let distinct = StringViewArray::from_iter_values(self.values.iter());
        let mut views = OutputBuf::zeroed(rows * 16);
        if !distinct.is_empty() {
            let table: Vec<[u8; 16]> = distinct.views().iter().map(|v| v.to_le_bytes()).collect();
            for (view, key) in views.as_mut_slice().chunks_exact_mut(16).zip(keys.as_slice().chunks_exact(4)) {
                let k = u32::from_le_bytes(key.try_into().expect("chunks of 4 bytes")) as usize;
                // Remapped keys are below the dictionary's size; a stray one reads as the empty string.
                view.copy_from_slice(table.get(k).unwrap_or(&[0; 16]));
            }
        }
        drop(keys);
        let (_, data, _) = distinct.into_parts();
        let views = ScalarBuffer::<u128>::new(views.into_buffer(), 0, rows);
        let nulls = validity.map(|v| NullBuffer::new(arrow_buffer::BooleanBuffer::new(v, 0, rows)));
        if nulls.as_ref().is_some_and(|n| n.len() != views.len()) {
            return Err(Error::internal("a string view column's validity does not match its rows"));
        }
        // SAFETY: every view is a copy of a view of `distinct` (built from `&str`s, so valid UTF-8 and
        // in bounds of its data buffers, which are `data`, unchanged and in the same order) or all zero
        // (the empty string, inline), and `nulls`, if any, has one bit per view (checked above).
        let array = unsafe { StringViewArray::new_unchecked(views, data, nulls) };
        let viewed =
            Field::new(field.name(), DataType::Utf8View, field.is_nullable()).with_metadata(field.metadata().clone());
        Ok((viewed, Arc::new(array)))
    }
}

/// Rewrites a piece's segment keys into merged keys, in place; null rows (key 0, maybe of an empty
/// dictionary) get 0.
pub(crate) fn remap(keys: &mut [u32], remap: &[u32]) {
    for k in keys {
        *k = remap.get(*k as usize).copied().unwrap_or(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionaries_merge_in_order_of_first_appearance() {
        let a: ArrayRef = Arc::new(StringArray::from(vec!["x", "y"]));
        let b: ArrayRef = Arc::new(StringArray::from(vec!["y", "z", "x"]));
        let empty: ArrayRef = Arc::new(StringArray::from(Vec::<&str>::new()));
        let merged = MergedDictionary::new(&[&a, &empty, &b]).expect("merges");
        assert_eq!(merged.remaps, vec![vec![0, 1], vec![], vec![1, 2, 0]]);
        let mut keys = vec![2, 0, 1, 0];
        remap(&mut keys, &merged.remaps[2]);
        assert_eq!(keys, vec![0, 1, 2, 1]);
        let field = Field::new("s", DataType::Utf8, true);
        let (f, array) = merged
            .into_array(&field, Buffer::from_vec(vec![0u32, 1, 2, 0]), 4, Some(Buffer::from_vec(vec![0b0111u8])))
            .expect("array");
        assert_eq!(f.metadata().get(CODES_METADATA_KEY).map(String::as_str), Some("utf8"));
        let d = array.as_dictionary::<Int32Type>();
        assert_eq!(d.values().as_string::<i32>().iter().collect::<Vec<_>>(), vec![Some("x"), Some("y"), Some("z")]);
        assert!(d.is_null(3));
    }
}
