//! String columns handed over as codes: a `Utf8` or `LargeUtf8` column given to the encoder as a
//! dictionary array (one key per row into its distinct values) whose field carries
//! [`CODES_METADATA_KEY`]. It is stored exactly as the plain column of the same strings would be
//! (`design/format.md` 2.4, decision D28), so the mark is a way of handing data over, not a type: a
//! reader sees a plain string column.
//!
//! Why: a converter that already knows each row's distinct value (the pandas conversion, whose object
//! columns hold the same few string objects millions of times) can pass the keys instead of copying
//! every row's bytes, and the encoder then remaps keys instead of hashing every row's string.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};

/// Field metadata marking a string column as codes: a field of type `Dictionary(<integer>, Utf8)` or
/// `Dictionary(<integer>, LargeUtf8)` with this key holds a plain string column of the dictionary's
/// value type. Its value names that type (`utf8` or `large_utf8`), as the engine sets it on a column it
/// reads as codes (the same mark in both directions); the encoder goes by the dictionary's value type.
pub const CODES_METADATA_KEY: &str = "floe.codes";

/// Whether `field` is a string column handed over as codes (see the module doc).
pub fn is_coded_strings(field: &Field) -> bool {
    matches!(field.data_type(), DataType::Dictionary(k, v)
        if k.is_dictionary_key_type() && matches!(**v, DataType::Utf8 | DataType::LargeUtf8))
        && field.metadata().contains_key(CODES_METADATA_KEY)
}

/// `field` as the store records it: a coded string column as a plain column of its dictionary's value
/// type (same name and nullability, the mark removed); any other field unchanged.
pub fn stored_field(field: &Field) -> Field {
    match field.data_type() {
        DataType::Dictionary(_, value) if is_coded_strings(field) => {
            let mut metadata = field.metadata().clone();
            metadata.remove(CODES_METADATA_KEY);
            Field::new(field.name(), (**value).clone(), field.is_nullable()).with_metadata(metadata)
        }
        _ => field.clone(),
    }
}

/// `schema` as the store records it ([`stored_field`] of every field); the same `Arc` when no field is
/// a coded string column.
pub fn stored_schema(schema: &SchemaRef) -> SchemaRef {
    if !schema.fields().iter().any(|f| is_coded_strings(f)) {
        return Arc::clone(schema);
    }
    let fields: Vec<Field> = schema.fields().iter().map(|f| stored_field(f)).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn coded(name: &str, value: DataType) -> Field {
        Field::new(name, DataType::Dictionary(Box::new(DataType::Int32), Box::new(value)), true)
            .with_metadata(HashMap::from([(CODES_METADATA_KEY.to_owned(), "utf8".to_owned())]))
    }

    #[test]
    fn a_coded_field_is_stored_as_its_value_type_without_the_mark() {
        let f = coded("s", DataType::LargeUtf8).with_metadata(HashMap::from([
            (CODES_METADATA_KEY.to_owned(), "large_utf8".to_owned()),
            ("other".to_owned(), "kept".to_owned()),
        ]));
        assert!(is_coded_strings(&f));
        let stored = stored_field(&f);
        assert_eq!(stored.data_type(), &DataType::LargeUtf8);
        assert_eq!(stored.metadata().get("other").map(String::as_str), Some("kept"));
        assert!(!stored.metadata().contains_key(CODES_METADATA_KEY));
    }

    #[test]
    fn only_marked_string_dictionaries_are_coded() {
        let categorical =
            Field::new("c", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), true);
        assert!(!is_coded_strings(&categorical), "an unmarked dictionary is a categorical");
        let marked_int = Field::new("i", DataType::Int64, true)
            .with_metadata(HashMap::from([(CODES_METADATA_KEY.to_owned(), "utf8".to_owned())]));
        assert!(!is_coded_strings(&marked_int));
        assert_eq!(stored_field(&marked_int), marked_int);
        let schema: SchemaRef = Arc::new(Schema::new(vec![categorical, marked_int]));
        assert!(Arc::ptr_eq(&stored_schema(&schema), &schema));
        let with_coded: SchemaRef = Arc::new(Schema::new(vec![coded("s", DataType::Utf8)]));
        assert_eq!(stored_schema(&with_coded).field(0).data_type(), &DataType::Utf8);
    }
}
