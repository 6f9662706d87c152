//! pandas object columns of strings to Arrow string arrays, for writes (D26), or to codes into their
//! distinct strings (D28), and back, for reads (D27).
//!
//! pyarrow converts an object column at ~45 ns a row on the calling thread, holding the GIL: 0.45 s of a
//! 10M-row `ticks` write from pandas, which takes 0.24 s from pyarrow input. Here one pass over the
//! column's object pointers copies each string's UTF-8 into the array being built; the UTF-8 of an
//! object seen recently comes from a small cache keyed by the object's address, because a pandas column
//! of few distinct values (tickers, venues, flags) holds the same few objects millions of times.
//!
//! The result is exactly what `pa.array(column, from_pandas=True)` gives (or with `type=string` /
//! `large_string`) for the columns it accepts: every element a `str` (subclasses included) or a
//! missing value (`None`, a float NaN, `pd.NA`). Anything else (bytes, numbers, lone surrogates, a
//! column with no string at all or no rows, more than 2 GiB of characters in a `string` array)
//! returns `None`, and the caller falls back to pyarrow, which then decides the type or raises its
//! own error.

use std::sync::Arc;

use arrow_array::{ArrayRef, LargeStringArray, OffsetSizeTrait, StringArray};
use arrow_buffer::{NullBuffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3_arrow::PyArray;

/// Entries of the address cache (a power of two). A column of up to a few thousand distinct objects
/// hits almost always; one of all-distinct objects misses every row and costs one classification per
/// row, as pyarrow does.
const CACHE_ENTRIES: usize = 4096;

/// The UTF-8 of strings up to this many bytes is kept in the cache itself and copied as one fixed-size
/// write (a variable-length `memcpy` of a few bytes costs more than the rest of a row's work).
const SHORT: usize = 16;

/// [`AddressCache::kinds`] of a string longer than [`SHORT`] bytes (its UTF-8 is in `longs`).
const LONG: u32 = u32::MAX - 1;
/// [`AddressCache::kinds`] of a missing value (null in Arrow).
const MISSING: u32 = u32::MAX;

/// What the objects at recently seen addresses are, direct-mapped by address. Kept as parallel arrays
/// so that a hit reads 8 bytes of `addresses` (32 KiB in all), 4 of `kinds` and the 16 of `shorts`.
struct AddressCache {
    /// The object address each slot describes; 0 (never an object) when empty.
    addresses: Vec<usize>,
    /// The string's length in bytes (at most [`SHORT`]), [`LONG`] or [`MISSING`].
    kinds: Vec<u32>,
    /// A short string's UTF-8, zero-padded.
    shorts: Vec<[u8; SHORT]>,
    /// A long string's UTF-8, owned by the object (CPython caches it in the string object, so it lives
    /// as long as the object does).
    longs: Vec<(*const u8, usize)>,
}

impl AddressCache {
    fn new() -> Self {
        AddressCache {
            addresses: vec![0; CACHE_ENTRIES],
            kinds: vec![MISSING; CACHE_ENTRIES],
            shorts: vec![[0; SHORT]; CACHE_ENTRIES],
            longs: vec![(std::ptr::null(), 0); CACHE_ENTRIES],
        }
    }

    /// The slot of an object address: pymalloc places small objects 16-byte aligned, a few dozen
    /// bytes apart, in 16 KiB pools.
    #[inline(always)]
    fn slot(address: usize) -> usize {
        (address >> 4 ^ address >> 16) & (CACHE_ENTRIES - 1)
    }
}

/// The string array of a one-dimensional numpy object array `values`, or `None` when the column is not
/// made of strings and missing values only (the caller then asks pyarrow). `na` is `pandas.NA` (also
/// a missing value); `large` picks `large_string` over `string`.
///
/// # Errors
/// Only if `values` is not what the Python layer passes (an exact `numpy.ndarray` of dtype object,
/// one-dimensional) or building the Arrow array fails.
#[pyfunction]
pub fn strings_from_objects(
    py: Python<'_>,
    values: &Bound<'_, PyAny>,
    na: &Bound<'_, PyAny>,
    large: bool,
) -> PyResult<Option<PyArray>> {
    let column = ObjectColumn::of(py, values)?;
    // SAFETY (both): `build`'s offsets start at 0, never decrease and end at the data's length, and
    // each string between them is the UTF-8 CPython produced for one string object (valid UTF-8 on its
    // own, so also at every boundary); arrow's checks would re-validate 10M offsets and all the bytes.
    let array = if large {
        build::<i64>(py, &column, na.as_ptr())?
            .map(|(o, d, n)| Arc::new(unsafe { LargeStringArray::new_unchecked(o, d.into(), n) }) as ArrayRef)
    } else {
        build::<i32>(py, &column, na.as_ptr())?
            .map(|(o, d, n)| Arc::new(unsafe { StringArray::new_unchecked(o, d.into(), n) }) as ArrayRef)
    };
    let Some(array) = array else { return Ok(None) };
    hand_over(array, Field::new("", if large { DataType::LargeUtf8 } else { DataType::Utf8 }, true)).map(Some)
}

/// `array` as the Arrow array producer Python receives.
fn hand_over(array: ArrayRef, field: Field) -> PyResult<PyArray> {
    PyArray::try_new(array, Arc::new(field)).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

/// The element pointers of a numpy object array, read through numpy's array interface.
///
/// Invariant: `address + i * stride` for `i < len` is an element of the array held by `_owner`, a
/// `PyObject*` (numpy keeps object arrays filled with valid references).
struct ObjectColumn<'py> {
    _owner: Bound<'py, PyAny>,
    address: usize,
    len: usize,
    stride: isize,
}

impl<'py> ObjectColumn<'py> {
    /// Checks that `values` is an exact `numpy.ndarray` (a subclass could report another array's
    /// interface) of one dimension and dtype object, and reads its address, length and stride.
    fn of(py: Python<'py>, values: &Bound<'py, PyAny>) -> PyResult<Self> {
        let ndarray = py.import("numpy")?.getattr("ndarray")?;
        if !values.get_type().is(&ndarray) {
            return Err(pyo3::exceptions::PyTypeError::new_err("expected a numpy.ndarray (not a subclass)"));
        }
        let interface = values.getattr("__array_interface__")?;
        let interface = interface.cast::<PyDict>()?;
        let item = |key: &str| {
            interface
                .get_item(key)?
                .ok_or_else(|| pyo3::exceptions::PyValueError::new_err(format!("no {key} in the array interface")))
        };
        if item("typestr")?.extract::<String>()? != "|O" {
            return Err(pyo3::exceptions::PyTypeError::new_err("expected an array of dtype object"));
        }
        let shape = item("shape")?;
        let shape = shape.cast::<PyTuple>()?;
        if shape.len() != 1 {
            return Err(pyo3::exceptions::PyValueError::new_err("expected a one-dimensional array"));
        }
        let len: usize = shape.get_item(0)?.extract()?;
        let (address, _read_only): (usize, bool) = item("data")?.extract()?;
        let strides = item("strides")?;
        let stride: isize = if strides.is_none() {
            std::mem::size_of::<*mut ffi::PyObject>() as isize
        } else {
            strides.cast::<PyTuple>()?.get_item(0)?.extract()?
        };
        Ok(ObjectColumn { _owner: values.clone(), address, len, stride })
    }

    /// The `i`th element.
    ///
    /// # Safety
    /// `i < self.len`, and the GIL held since `of` without running Python code that could change the
    /// array (no other thread can then replace an element and free the object it referred to).
    unsafe fn get(&self, i: usize) -> *mut ffi::PyObject {
        let at =
            (self.address as isize).wrapping_add(self.stride.wrapping_mul(i as isize)) as *const *mut ffi::PyObject;
        // SAFETY: by the type's invariant and the caller's `i < len`, `at` is an element of the array.
        unsafe { at.read_unaligned() }
    }
}

/// A string array's parts: offsets, character data, validity.
type StringParts<O> = (OffsetBuffer<O>, Vec<u8>, Option<NullBuffer>);

/// The parts of the column's string array, or `None` (see the module doc).
fn build<O: OffsetSizeTrait>(
    py: Python<'_>,
    column: &ObjectColumn<'_>,
    na: *mut ffi::PyObject,
) -> PyResult<Option<StringParts<O>>> {
    let mut offsets: Vec<O> = Vec::with_capacity(column.len + 1);
    offsets.push(O::zero());
    let mut data: Vec<u8> = Vec::new();
    let mut nulls = NullBufferBuilder::new(column.len);
    let mut cache = AddressCache::new();
    let mut any_text = false;
    for i in 0..column.len {
        // SAFETY: `i < len`, and nothing in this loop runs Python code (classification only reads the
        // objects and asks CPython for the UTF-8 it caches in them).
        let object = unsafe { column.get(i) };
        let address = object as usize;
        let slot = AddressCache::slot(address);
        if address == 0 || cache.addresses[slot] != address {
            if !classify(py, object, na, &mut cache, slot) {
                return Ok(None);
            }
            cache.addresses[slot] = address;
        }
        match cache.kinds[slot] {
            MISSING => nulls.append_null(),
            LONG => {
                let (utf8, len) = cache.longs[slot];
                // SAFETY: `utf8` points at `len` bytes owned by a string object the array keeps alive.
                data.extend_from_slice(unsafe { std::slice::from_raw_parts(utf8, len) });
                nulls.append_non_null();
                any_text = true;
            }
            len => {
                data.reserve(SHORT);
                // SAFETY: `reserve` made room for `SHORT` more bytes; the first `len` (<= SHORT) of them
                // are the string, the rest padding left outside the vector's length.
                unsafe {
                    data.as_mut_ptr().add(data.len()).cast::<[u8; SHORT]>().write_unaligned(cache.shorts[slot]);
                    data.set_len(data.len() + len as usize);
                }
                nulls.append_non_null();
                any_text = true;
            }
        }
        let Some(end) = O::from_usize(data.len()) else { return Ok(None) };
        offsets.push(end);
    }
    if !any_text {
        return Ok(None); // pyarrow infers the null type for a column of only missing values, or none
    }
    // SAFETY: `offsets` starts at 0 and each row's end is the data's length after it: non-decreasing.
    let offsets = unsafe { OffsetBuffer::new_unchecked(ScalarBuffer::from(offsets)) };
    Ok(Some((offsets, data, nulls.finish())))
}

/// What an element of an object column is, for the string conversions.
enum Element<'a> {
    /// A missing value: NULL, `None`, `na` or a float NaN.
    Missing,
    /// A string, as its UTF-8 (cached by CPython in the object, so alive as long as the object).
    Text(&'a [u8]),
}

/// What `object` is; `None` for anything but a string or a missing value (and for a string with lone
/// surrogates, which has no UTF-8: pyarrow then raises its own error).
///
/// # Safety
/// `object` is NULL or a live reference held by the column for as long as the returned bytes are
/// used, and the GIL is held.
unsafe fn classify_element<'a>(
    py: Python<'_>,
    object: *mut ffi::PyObject,
    na: *mut ffi::PyObject,
) -> Option<Element<'a>> {
    // numpy treats a NULL element of an object array as None.
    if object.is_null() || object == na {
        return Some(Element::Missing);
    }
    // SAFETY: `object` is a live reference held by the array, and the GIL is held.
    unsafe {
        if object == ffi::Py_None() {
            return Some(Element::Missing);
        }
        if ffi::PyUnicode_Check(object) != 0 {
            let mut len: ffi::Py_ssize_t = 0;
            let utf8 = ffi::PyUnicode_AsUTF8AndSize(object, &mut len);
            if utf8.is_null() {
                drop(PyErr::take(py)); // lone surrogates: the fallback raises pyarrow's own error
                return None;
            }
            let len = usize::try_from(len).ok()?;
            return Some(Element::Text(std::slice::from_raw_parts(utf8.cast::<u8>(), len)));
        }
        if ffi::PyFloat_Check(object) != 0 && ffi::PyFloat_AsDouble(object).is_nan() {
            return Some(Element::Missing);
        }
    }
    None
}

/// Records what `object` is in `cache`'s `slot`; false for anything but a string or a missing value.
fn classify(
    py: Python<'_>,
    object: *mut ffi::PyObject,
    na: *mut ffi::PyObject,
    cache: &mut AddressCache,
    slot: usize,
) -> bool {
    // SAFETY: `object` is an element of the column being converted (held by it), and the GIL is held.
    match unsafe { classify_element(py, object, na) } {
        None => false,
        Some(Element::Missing) => {
            cache.kinds[slot] = MISSING;
            true
        }
        Some(Element::Text(utf8)) => {
            let len = utf8.len();
            if len <= SHORT {
                let mut bytes = [0u8; SHORT];
                bytes[..len].copy_from_slice(utf8);
                cache.shorts[slot] = bytes;
                cache.kinds[slot] = len as u32;
            } else {
                cache.longs[slot] = (utf8.as_ptr(), len);
                cache.kinds[slot] = LONG;
            }
            true
        }
    }
}

/// A write of a string column from pandas as codes (decision D28): the dictionary array of a
/// one-dimensional numpy object array `values` (`Int32` keys, one per row, into the distinct strings in
/// order of first appearance; null keys for missing values), or `None` when the column is not made of
/// strings and missing values only (as [`strings_from_objects`]), or has more than `max_distinct`
/// distinct strings, or its first 1,024 strings are nearly all distinct (the plain strings are then the
/// better form, and the caller converts the column with [`strings_from_objects`]). Strings are equal
/// by content, whatever objects hold them.
///
/// A row whose object was seen recently costs one look at the address cache; the engine then stores the
/// column as the plain string column, remapping keys instead of hashing every row's string
/// (`floe_formats::CODES_METADATA_KEY`).
///
/// # Errors
/// As [`strings_from_objects`].
#[pyfunction]
pub fn codes_from_objects(
    py: Python<'_>,
    values: &Bound<'_, PyAny>,
    na: &Bound<'_, PyAny>,
    large: bool,
    max_distinct: usize,
) -> PyResult<Option<PyArray>> {
    use arrow_array::types::Int32Type;
    use arrow_array::{DictionaryArray, Int32Array};

    let column = ObjectColumn::of(py, values)?;
    let Some((keys, nulls, ends, data)) = codes(py, &column, na.as_ptr(), max_distinct) else { return Ok(None) };
    let value_type = if large { DataType::LargeUtf8 } else { DataType::Utf8 };
    // SAFETY (both string arrays): `ends` start at 0 (implied), never decrease and end at the data's
    // length; each entry is the UTF-8 CPython produced for one string object.
    let dictionary: ArrayRef = if large {
        let offsets = std::iter::once(0i64).chain(ends.iter().map(|&e| e as i64)).collect::<Vec<_>>();
        let offsets = unsafe { OffsetBuffer::new_unchecked(ScalarBuffer::from(offsets)) };
        Arc::new(unsafe { LargeStringArray::new_unchecked(offsets, data.into(), None) })
    } else {
        let Ok(offsets) =
            std::iter::once(Ok(0i32)).chain(ends.iter().map(|&e| i32::try_from(e))).collect::<Result<Vec<_>, _>>()
        else {
            return Ok(None); // over 2 GiB of distinct strings: pyarrow's conversion decides
        };
        let offsets = unsafe { OffsetBuffer::new_unchecked(ScalarBuffer::from(offsets)) };
        Arc::new(unsafe { StringArray::new_unchecked(offsets, data.into(), None) })
    };
    let keys = Int32Array::new(ScalarBuffer::from(keys), nulls);
    // SAFETY: every key is below the dictionary's length (an index into `ends`, assigned in order), and
    // null rows hold 0.
    let array = unsafe { DictionaryArray::<Int32Type>::new_unchecked(keys, dictionary) };
    let field = Field::new("", DataType::Dictionary(Box::new(DataType::Int32), Box::new(value_type)), true);
    hand_over(Arc::new(array), field).map(Some)
}

/// A column's codes: keys, validity, the end offset of each distinct string, their UTF-8.
type CodeParts = (Vec<i32>, Option<NullBuffer>, Vec<usize>, Vec<u8>);

/// The parts of [`codes_from_objects`]' array, or `None` (see there).
fn codes(py: Python<'_>, column: &ObjectColumn<'_>, na: *mut ffi::PyObject, max_distinct: usize) -> Option<CodeParts> {
    /// Checks only within the first strings, as the encoder's dictionary rule does.
    const PROBE_ROWS: usize = 1024;
    const PROBE_MAX_DISTINCT: usize = 1000;
    let mut addresses = vec![0usize; CACHE_ENTRIES];
    // The code of the object at each cached address; `MISSING` for a missing value.
    let mut cached = vec![MISSING; CACHE_ENTRIES];
    let mut by_content: std::collections::HashMap<&[u8], u32, xxhash_rust::xxh3::Xxh3DefaultBuilder> =
        std::collections::HashMap::default();
    let mut keys: Vec<i32> = Vec::with_capacity(column.len);
    let mut nulls = NullBufferBuilder::new(column.len);
    let (mut ends, mut data): (Vec<usize>, Vec<u8>) = (Vec::new(), Vec::new());
    let mut texts = 0usize;
    for i in 0..column.len {
        // SAFETY: `i < len`, and nothing in this loop runs Python code.
        let object = unsafe { column.get(i) };
        let address = object as usize;
        let slot = AddressCache::slot(address);
        if address == 0 || addresses[slot] != address {
            // SAFETY: an element of the column, which holds it for this whole function; GIL held.
            cached[slot] = match unsafe { classify_element(py, object, na) }? {
                Element::Missing => MISSING,
                Element::Text(utf8) => match by_content.get(utf8) {
                    Some(&code) => code,
                    None => {
                        if ends.len() >= max_distinct {
                            return None;
                        }
                        let code = u32::try_from(ends.len()).ok().filter(|&c| c < MISSING)?;
                        data.extend_from_slice(utf8);
                        ends.push(data.len());
                        by_content.insert(utf8, code);
                        code
                    }
                },
            };
            addresses[slot] = address;
        }
        match cached[slot] {
            MISSING => {
                keys.push(0);
                nulls.append_null();
            }
            code => {
                keys.push(i32::try_from(code).ok()?);
                nulls.append_non_null();
                texts += 1;
                if texts == PROBE_ROWS && ends.len() > PROBE_MAX_DISTINCT {
                    return None;
                }
            }
        }
    }
    if texts == 0 {
        return None; // pyarrow infers the null type for a column of only missing values, or none
    }
    Some((keys, nulls.finish(), ends, data))
}

/// The object array `uniques[codes[i]]` (one new reference per row; `None` for a null row), for a
/// read to pandas of a string column the engine returned as codes over its distinct values
/// (`codes`: a dictionary array with `Int32` keys; `uniques`: its dictionary as a numpy object array).
///
/// numpy's `take` does the same in ~5 ns a row after `np.empty` filled the output with `None` (both
/// on the calling thread); here the output array comes from numpy's C API, which zero-fills object
/// arrays (no `None` to release), and each row is one reference count and one store.
///
/// # Errors
/// `ValueError` if `codes` does not have `Int32` keys or a code is outside `uniques`; `TypeError` as
/// [`strings_from_objects`] for `uniques`.
#[pyfunction]
pub fn objects_from_codes<'py>(
    py: Python<'py>,
    codes: PyArray,
    uniques: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, numpy::PyArray1<Py<PyAny>>>> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    use numpy::prelude::*;

    let (array, _) = codes.into_inner();
    let Some(dictionary) = array.as_dictionary_opt::<Int32Type>() else {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "objects_from_codes takes a dictionary array with int32 keys, not {}",
            array.data_type()
        )));
    };
    let keys = dictionary.keys();
    let distinct = ObjectColumn::of(py, uniques)?;
    // SAFETY (the reads of `distinct`): `k < distinct.len`, the GIL is held and no Python code runs
    // in this function after `ObjectColumn::of`.
    let objects: Vec<*mut ffi::PyObject> = (0..distinct.len).map(|k| unsafe { distinct.get(k) }).collect();
    if objects.iter().any(|o| o.is_null()) {
        return Err(pyo3::exceptions::PyValueError::new_err("objects_from_codes: a distinct value is NULL"));
    }
    let n = keys.len();
    // SAFETY: an object array of `n` elements, zero-filled by numpy; every element is written below
    // (a new reference) before the array is returned, and nothing reads it before.
    let out = unsafe { numpy::PyArray1::<Py<PyAny>>::new(py, [n], false) };
    let slots = out.data().cast::<*mut ffi::PyObject>();
    // SAFETY: `ffi::Py_None()` is always a valid object while the GIL is held.
    let none = unsafe { ffi::Py_None() };
    let values = keys.values();
    let nulls = keys.nulls();
    for (i, &code) in values.iter().enumerate() {
        let object = if nulls.is_some_and(|v| v.is_null(i)) {
            none
        } else {
            let Some(&object) = usize::try_from(code).ok().and_then(|k| objects.get(k)) else {
                // Rows before `i` hold references: fill the rest with None so the array is whole, and
                // let it be dropped (releasing them) with the error.
                for j in i..n {
                    // SAFETY: as below.
                    unsafe {
                        ffi::Py_INCREF(none);
                        slots.add(j).write(none);
                    }
                }
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "objects_from_codes: row {i} has code {code} for {} distinct values",
                    objects.len()
                )));
            };
            object
        };
        // SAFETY: `i < n` is inside the array; `object` is alive (held by `uniques` or None), and the
        // slot takes the new reference.
        unsafe {
            ffi::Py_INCREF(object);
            slots.add(i).write(object);
        }
    }
    Ok(out)
}
