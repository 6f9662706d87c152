//! The read pipeline: fetch the chosen segments concurrently, then verify and decode them in parallel,
//! each column of each segment straight into its place in preallocated output buffers.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, make_array, new_null_array};
use arrow_buffer::{Buffer, bit_mask};
use arrow_data::ArrayData;
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use floe_backends::Storage;
use floe_formats::segment::{BitsOut, ColumnInfo, ColumnOut, ValuesOut};
use floe_formats::{AtomKey, KeyType, SegmentLayout, SegmentReader};

use crate::lru::LayoutCache;
use rayon::prelude::*;

use super::codes::{self, codable};
use super::output::OutputBuf;
use crate::error::{Error, Result};
use crate::index::{IndexEntry, TableIndex};
use crate::sync::{Mutex, lock};

/// One output column's pieces: which segment column fills which rows. `seg` is `None` where no
/// segment of the slice holds the column (added later under dynamic schema): those rows are null.
struct Piece {
    seg: Option<usize>,
    col: usize,
    /// The window: rows `skip .. skip + rows` of the segment (an entry may cover part of its segment,
    /// and a read part of an entry).
    skip: usize,
    rows: usize,
    /// Whether the window is the whole segment (known once the segment's header is read).
    whole: bool,
    row_off: usize,
}

/// Rows `skip .. skip + rows` of one row slice (the entries sharing one row range; counted from the
/// slice's first row, not its segments'); a read decodes only those rows' blocks of fixed-width and
/// boolean columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window<'i> {
    pub entries: &'i [IndexEntry],
    pub skip: usize,
    pub rows: usize,
}

impl<'i> Window<'i> {
    /// The whole slice.
    ///
    /// # Errors
    /// `CorruptData` for a row count that does not fit in memory.
    pub fn whole(entries: &'i [IndexEntry]) -> Result<Self> {
        Ok(Window { entries, skip: 0, rows: slice_rows(entries)? })
    }
}

/// Rows of a row slice.
pub(crate) fn slice_rows(entries: &[IndexEntry]) -> Result<usize> {
    usize::try_from(entries[0].rows()).map_err(|_| Error::corrupt("row count too large"))
}

/// A segment's row count and the sizes of the columns a read needs from it (with the dictionary of
/// those to be read as codes).
type SegmentSizes = (usize, ColumnSizes);

/// Per needed column of a segment: its position, sizes, and dictionary when read as codes.
type ColumnSizes = Vec<(usize, ColumnInfo, Option<ArrayRef>)>;

enum Layout {
    Fixed(usize),
    Bits,
    Var {
        offset_width: usize,
    },
    Dictionary,
    /// A string column read as codes into one merged dictionary (`codes::MergedDictionary`).
    Codes,
    /// Decoded per piece, cast and concatenated: for columns whose type or presence changed across
    /// segments (dynamic schema).
    Assembled,
}

fn layout(dt: &DataType) -> Result<Layout> {
    Ok(match dt {
        DataType::Boolean => Layout::Bits,
        DataType::Utf8 | DataType::Binary => Layout::Var { offset_width: 4 },
        DataType::LargeUtf8 | DataType::LargeBinary => Layout::Var { offset_width: 8 },
        DataType::Dictionary(_, _) => Layout::Dictionary,
        other => Layout::Fixed(
            other.primitive_width().ok_or_else(|| Error::internal(format!("no read layout for type {other}")))?,
        ),
    })
}

enum Dest<'o> {
    Fixed(&'o mut [u8]),
    Bits,
    Var {
        ends: &'o mut [u8],
        data: &'o mut [u8],
        base: u64,
    },
    /// Keys of a dictionary-coded string column, and the map from its segment's keys to merged ones.
    Codes {
        keys: &'o mut [u32],
        remap: &'o [u32],
    },
}

struct Task<'o> {
    /// The segment's key, for error messages.
    key: &'o AtomKey,
    out_col: usize,
    piece: usize,
    seg: usize,
    col: usize,
    skip: usize,
    rows: usize,
    whole: bool,
    want_validity: bool,
    dest: Dest<'o>,
}

/// Bits produced by a task, merged into the column bitmaps after the parallel phase.
struct TaskBits {
    out_col: usize,
    piece: usize,
    validity: Option<Vec<u8>>,
    values: Option<Vec<u8>>,
}

impl Task<'_> {
    fn run(self, reader: &SegmentReader<'_>) -> Result<TaskBits> {
        let bitmap_len = self.rows.div_ceil(8);
        let mut validity = self.want_validity.then(|| vec![0u8; bitmap_len]);
        let mut value_bits = matches!(self.dest, Dest::Bits).then(|| vec![0u8; bitmap_len]);
        if let Dest::Codes { keys, remap } = self.dest {
            let out = validity.as_mut().map(|v| BitsOut { bytes: v, bit_offset: 0 });
            reader
                .decode_codes_into(self.col, self.skip..self.skip + self.rows, keys, out)
                .map_err(|e| in_segment(e, self.key))?;
            codes::remap(keys, remap);
            return Ok(TaskBits { out_col: self.out_col, piece: self.piece, validity, values: None });
        }
        let values = match self.dest {
            Dest::Fixed(d) => ValuesOut::Fixed(d),
            Dest::Var { ends, data, base } => ValuesOut::Var { ends, data, base },
            Dest::Bits => ValuesOut::Bits(BitsOut {
                bytes: value_bits.as_mut().expect("allocated for bit columns").as_mut_slice(),
                bit_offset: 0,
            }),
            Dest::Codes { .. } => unreachable!("handled above"),
        };
        let out = ColumnOut { validity: validity.as_mut().map(|v| BitsOut { bytes: v, bit_offset: 0 }), values };
        let decoded = if self.whole {
            reader.decode_column_into(self.col, out)
        } else {
            reader.decode_column_rows_into(self.col, self.skip..self.skip + self.rows, out)
        };
        decoded.map_err(|e| in_segment(e, self.key))?;
        Ok(TaskBits { out_col: self.out_col, piece: self.piece, validity, values: value_bits })
    }
}

/// Fetches the segments holding `columns` (schema positions) of the row slices `slices` and decodes
/// them into one record batch covering exactly those slices' rows.
///
/// # Errors
/// Storage errors (a missing segment is `NotFound`), `CorruptData` when a segment fails verification.
pub(crate) fn read_slices(
    storage: &dyn Storage,
    layouts: &LayoutCache,
    index: &TableIndex,
    slices: &[&[IndexEntry]],
    columns: &[usize],
) -> Result<RecordBatch> {
    let windows: Vec<Window<'_>> = slices.iter().map(|s| Window::whole(s)).collect::<Result<_>>()?;
    Ok(read_windows(storage, layouts, index, &windows, columns, ReadShape::default(), &[])?.0)
}

/// A segment fetched before the read that needs it (from a backend that does not lend its pages): a
/// date range's boundary slices are fetched to find the range's rows, and their data read takes the
/// same bytes instead of fetching them again.
pub(crate) type Prefetched = (AtomKey, Bytes);

/// The segments holding the index column of the row slices `slices` (the first entry of each), fetched
/// in one batch, for [`find_date_bounds`] and then the read; nothing on a backend that lends its pages
/// (its visits cost no request).
///
/// # Errors
/// Storage errors, naming the segment.
pub(crate) fn prefetch_index_segments(storage: &dyn Storage, slices: &[&[IndexEntry]]) -> Result<Vec<Prefetched>> {
    if storage.lends_pages() {
        return Ok(Vec::new());
    }
    let keys: Vec<AtomKey> = slices.iter().filter_map(|s| s.first().map(|e| e.key.clone())).collect();
    storage
        .get_batch(&keys)
        .into_iter()
        .zip(keys)
        .map(|(r, k)| r.map(|b| (k.clone(), b)).map_err(|e| in_segment(e, &k)))
        .collect()
}

/// Where a date range starts and ends inside the row slice `slice` of a timestamp-indexed table:
/// the first row whose timestamp is at or after `start`, and the end of the rows at or before `end`,
/// both counted from the slice's first row; each bound only if given. The slice's index column is
/// searched block by block (`SegmentReader::partition_point_i64`), first where its timestamps would
/// put the bound if they were evenly spaced between the slice's first and last: a short date range
/// verifies and decodes a block or two of the index instead of the whole column (800 KB of fresh
/// memory for a 100,000-row slice).
///
/// # Errors
/// As [`read_slices`]; `CorruptData` if the segment has fewer rows than its index entry says.
pub(crate) fn find_date_bounds(
    storage: &dyn Storage,
    layouts: &LayoutCache,
    slice: &[IndexEntry],
    start: Option<i64>,
    end: Option<i64>,
    prefetched: &[Prefetched],
) -> Result<(Option<usize>, Option<usize>)> {
    let entry = &slice[0];
    let rows = slice_rows(slice)?;
    if rows == 0 {
        return Ok((start.map(|_| 0), end.map(|_| 0)));
    }
    let off = usize::try_from(entry.seg_row_offset).map_err(|_| Error::corrupt("row offset too large"))?;
    let keys = [entry.key.clone()];
    let found: Mutex<(Option<usize>, Option<usize>)> = Mutex::new((None, None));
    Source::fetch(storage, &keys, prefetched)?.visit(storage, &keys, true, &|_, bytes| {
        let key = &keys[0];
        verify_object(key, bytes)?;
        let reader = reader_of(layouts, key, bytes)?;
        if off.checked_add(rows).is_none_or(|end| end > reader.num_rows()) {
            return Err(Error::corrupt(format!(
                "index entry of {key}: rows {off}..{} of a {}-row segment",
                off.saturating_add(rows),
                reader.num_rows()
            )));
        }
        // The row `v` would be at if the slice's timestamps were evenly spaced.
        let (first, last) = (i128::from(entry.index_start), i128::from(entry.index_end));
        let hint = |v: i64| {
            let span = last - first;
            let at = if span > 0 { (i128::from(v) - first).clamp(0, span) * (rows as i128 - 1) / span } else { 0 };
            off + usize::try_from(at).unwrap_or(0)
        };
        let search = |v: i64, inclusive: bool| -> Result<usize> {
            let row = reader.partition_point_i64(0, v, inclusive, hint(v)).map_err(|e| in_segment(e, key))?;
            Ok(row.clamp(off, off + rows) - off)
        };
        let bounds = (start.map(|a| search(a, false)).transpose()?, end.map(|b| search(b, true)).transpose()?);
        *lock(&found) = bounds;
        Ok(())
    })?;
    Ok(found.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// How a read lays out its output beyond the plain Arrow form.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReadShape {
    /// String columns stored dictionary-coded come back as codes (`codes::CODES_METADATA_KEY`).
    pub codes: bool,
    /// ... and then as string views gathered from the codes' dictionary (needs `codes`).
    pub views: bool,
    /// Null-free columns of one fixed-width type share one allocation, column after column
    /// ([`ColumnBlock`]).
    pub blocks: bool,
}

/// Columns of one fixed-width type decoded into one allocation, column after column: each column's
/// values buffer is a slice of `buffer` (the whole allocation, unsliced), so a consumer that takes
/// the columns out of the batch can own the allocation as a two-dimensional array (one column per
/// row: a pandas block).
#[derive(Debug, Clone)]
pub struct ColumnBlock {
    /// The columns' positions in the read's batch, in the order they lie in `buffer`.
    pub columns: Vec<usize>,
    /// The whole allocation: `columns.len()` columns of the batch's row count each.
    pub buffer: Buffer,
}

/// Reads of at least this many bytes (rows x columns x 8, an estimate) run on a rayon worker
/// (design/decisions.md D40).
const IN_POOL_BYTES: usize = 8 << 20;

/// Reads producing at most this many bytes (rows x columns x 8, an estimate), from segments whose
/// columns it decodes hold at most as many, run on the calling thread from start to end: their outputs
/// come from the allocator, and each hand-off to the rayon pool and back costs more than it saves
/// (tens of microseconds, hundreds after the workers have gone to sleep; design/pipeline.md, "Small
/// reads stay on the calling thread").
const ON_CALLER_BYTES: usize = 2 << 20;

/// Like [`read_slices`], but only the rows of each window: blocks of fixed-width and boolean columns
/// outside them are neither verified nor decoded; a partial window of a variable-length column is
/// decoded in the sizing pass (its bytes are unknown until then: of a dictionary-coded column only its
/// keys and the dictionary are read) and copied into place, so the column is still one allocation. `shape` asks for codes and column blocks; the blocks made are returned
/// with the batch.
///
/// # Errors
/// As [`read_slices`].
pub(crate) fn read_windows(
    storage: &dyn Storage,
    layouts: &LayoutCache,
    index: &TableIndex,
    windows: &[Window<'_>],
    columns: &[usize],
    shape: ReadShape,
    prefetched: &[Prefetched],
) -> Result<(RecordBatch, Vec<ColumnBlock>)> {
    // Every parallel step of a read (visits, prefaults, decoding) happens below this point.
    super::pool::ensure_thread_pool();
    // A large read runs on a rayon worker from the start: each parallel step (the visits, each
    // output's prefault, the decode tasks) is then a fork inside the pool, not a handover from this
    // thread and back (the caller parks, a worker wakes: ~20-40 µs each on this VM, and a read has
    // one per output buffer). Only reads whose outputs are mappings of their own: smaller ones would
    // take their buffers from a worker's malloc arena instead of this thread's, which measured slower.
    let rows: usize = windows.iter().map(|w| w.rows).sum();
    if rayon::current_thread_index().is_none() && rows.saturating_mul(columns.len()).saturating_mul(8) >= IN_POOL_BYTES
    {
        // On the worker this call takes the path below.
        return rayon::scope(|_| read_windows(storage, layouts, index, windows, columns, shape, prefetched));
    }
    let codes = shape.codes;
    let index_pos = index.index_pos();
    let data_cols: Vec<usize> = crate::table::data_columns(&index.schema, index_pos);
    // Schema position -> position among the data columns (a lookup per column and window).
    let mut data_pos: Vec<Option<usize>> = vec![None; index.schema.fields().len()];
    for (d, &c) in data_cols.iter().enumerate() {
        if let Some(slot) = data_pos.get_mut(c) {
            *slot = Some(d);
        }
    }
    // Map each output column to (entry, column within that entry's segment) per slice.
    let mut keys: Vec<AtomKey> = Vec::new();
    let mut key_pos: HashMap<&AtomKey, usize> = HashMap::new();
    let mut pieces: Vec<Vec<Piece>> = columns.iter().map(|_| Vec::new()).collect();
    let mut row_off = 0usize;
    for w in windows {
        let (slice, rows) = (w.entries, w.rows);
        if w.skip + rows > slice_rows(slice)? {
            return Err(Error::internal("a read window past its slice's rows"));
        }
        if rows == 0 {
            continue;
        }
        // The segment number of each of the slice's entries, looked up once per entry, not per column.
        let mut entry_seg: Vec<Option<usize>> = vec![None; slice.len()];
        for (oc, &c) in columns.iter().enumerate() {
            let found = if Some(c) == index_pos {
                Some((0, 0))
            } else {
                let d = data_pos.get(c).copied().flatten().ok_or_else(|| Error::internal("unknown column"))?;
                let d32 = u32::try_from(d).map_err(|_| Error::internal("column position"))?;
                slice
                    .iter()
                    .position(|e| e.col_start <= d32 && d32 < e.col_end)
                    .map(|at| (at, usize::from(index_pos.is_some()) + (d - slice[at].col_start as usize)))
            };
            let (seg, col, skip) = match found {
                Some((at, col)) => {
                    let entry = &slice[at];
                    let seg = *entry_seg[at].get_or_insert_with(|| {
                        *key_pos.entry(&entry.key).or_insert_with(|| {
                            keys.push(entry.key.clone());
                            keys.len() - 1
                        })
                    });
                    let skip = usize::try_from(entry.seg_row_offset)
                        .ok()
                        .and_then(|o| o.checked_add(w.skip)?.checked_add(rows).map(|_| o + w.skip))
                        .ok_or_else(|| Error::corrupt(format!("index entry of {}: row offset too large", entry.key)))?;
                    (Some(seg), col, skip)
                }
                None => (None, 0, w.skip),
            };
            pieces[oc].push(Piece { seg, col, skip, rows, whole: false, row_off });
        }
        row_off += rows;
    }
    let total_rows = row_off;
    // The index schema's own fields, shared (a `wide` read would otherwise copy 1,000 names).
    let fields: Vec<Arc<Field>> = columns.iter().map(|&c| Arc::clone(&index.schema.fields()[c])).collect();
    let schema = Arc::new(Schema::new(fields.clone()));
    if total_rows == 0 {
        return Ok((RecordBatch::new_empty(schema), Vec::new()));
    }

    let source = Source::fetch(storage, &keys, prefetched)?;
    // Pass 1: verify every segment and learn the sizes of the columns needed from it.
    let mut needed: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
    for p in pieces.iter().flatten() {
        if let Some(seg) = p.seg {
            needed[seg].push(p.col);
        }
    }
    let infos: Vec<Mutex<SegmentSizes>> = keys.iter().map(|_| Mutex::new((0, Vec::new()))).collect();
    // Windows of variable-length columns that cut their segment: their bytes are unknown until decoded,
    // so pass 1 decodes them (at most the two ends of each column), and pass 2 copies them in place.
    let mut var_pieces: Vec<Vec<(usize, usize)>> = vec![Vec::new(); keys.len()];
    for (oc, column_pieces) in pieces.iter().enumerate() {
        if matches!(layout(fields[oc].data_type())?, Layout::Var { .. }) {
            for (pi, p) in column_pieces.iter().enumerate() {
                if let Some(seg) = p.seg {
                    var_pieces[seg].push((oc, pi));
                }
            }
        }
    }
    let windows_decoded: Mutex<HashMap<(usize, usize), ArrayRef>> = Mutex::new(HashMap::new());
    // Pass 2 reuses each segment's parsed descriptor (a `wide` segment's names 635 blocks).
    let parsed: Vec<Mutex<Option<SegmentLayout>>> = keys.iter().map(|_| Mutex::new(None)).collect();
    // Pass 1 reads descriptors and the ends of variable-length windows: little work for a small read.
    let on_caller = rows.saturating_mul(columns.len()).saturating_mul(8) <= ON_CALLER_BYTES;
    source.visit(storage, &keys, on_caller, &|seg, bytes| {
        verify_object(&keys[seg], bytes)?;
        let reader = reader_of(layouts, &keys[seg], bytes)?;
        *lock(&parsed[seg]) = Some(reader.layout());
        let mut out = Vec::with_capacity(needed[seg].len());
        for &c in &needed[seg] {
            let info = reader.column_info(c).map_err(|e| in_segment(e, &keys[seg]))?;
            // Dictionaries are small (at most half the segment's rows, usually far fewer).
            let dictionary = (codes && info.dictionary_coded && codes::codable(info.field.data_type()))
                .then(|| reader.decode_coded_dictionary(c))
                .transpose()
                .map_err(|e| in_segment(e, &keys[seg]))?;
            out.push((c, info, dictionary));
        }
        for &(oc, pi) in &var_pieces[seg] {
            let p = &pieces[oc][pi];
            // A column read as codes decodes only keys (below), never the window's strings.
            let as_codes = out.iter().any(|(c, info, d)| *c == p.col && info.dictionary_coded && d.is_some());
            let partial = p.skip + p.rows <= reader.num_rows() && !(p.skip == 0 && p.rows == reader.num_rows());
            if partial && !as_codes {
                let a =
                    reader.decode_column_rows(p.col, p.skip..p.skip + p.rows).map_err(|e| in_segment(e, &keys[seg]))?;
                lock(&windows_decoded).insert((oc, pi), a);
            }
        }
        *lock(&infos[seg]) = (reader.num_rows(), out);
        Ok(())
    })?;
    let windows_decoded = windows_decoded.into_inner().unwrap_or_else(|p| p.into_inner());
    let (seg_rows, infos): (Vec<usize>, Vec<ColumnSizes>) =
        infos.into_iter().map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner())).unzip();
    for p in pieces.iter_mut().flatten() {
        if let Some(seg) = p.seg {
            if p.skip + p.rows > seg_rows[seg] {
                return Err(Error::corrupt(format!(
                    "the index names rows {}..{} of segment {}, which has {} rows",
                    p.skip,
                    p.skip + p.rows,
                    keys[seg],
                    seg_rows[seg]
                )));
            }
            p.whole = p.skip == 0 && p.rows == seg_rows[seg];
        }
    }
    let info = |seg: usize, col: usize| -> Result<&ColumnInfo> {
        infos[seg]
            .iter()
            .find(|(c, _, _)| *c == col)
            .map(|(_, i, _)| i)
            .ok_or_else(|| Error::internal(format!("no size for column {col} of segment {}", keys[seg])))
    };

    // Size and allocate every output buffer, then cut it into one disjoint piece per task.
    let mut value_bufs: Vec<OutputBuf> = Vec::with_capacity(columns.len());
    let mut offset_bufs: Vec<Option<OutputBuf>> = Vec::with_capacity(columns.len());
    let mut code_bufs: Vec<Option<OutputBuf>> = Vec::with_capacity(columns.len());
    let mut merged: std::collections::HashMap<usize, codes::MergedDictionary<'_>> = std::collections::HashMap::new();
    let mut want_validity = Vec::with_capacity(columns.len());
    let mut layouts = Vec::with_capacity(columns.len());
    for (oc, field) in fields.iter().enumerate() {
        let mut lay = layout(field.data_type())?;
        if codes && codable(field.data_type()) {
            // Codes only if every piece's segment stores the column dictionary-coded, as this type.
            let dictionaries: Option<Vec<&ArrayRef>> = pieces[oc]
                .iter()
                .map(|p| {
                    let seg = p.seg?;
                    let (_, info, d) = infos[seg].iter().find(|(c, _, _)| *c == p.col)?;
                    (info.field.data_type() == field.data_type()).then_some(d.as_ref()).flatten()
                })
                .collect();
            if let Some(dictionaries) = dictionaries {
                merged.insert(oc, codes::MergedDictionary::new(&dictionaries)?);
                lay = Layout::Codes;
            }
        }
        let mut has_nulls = false;
        let mut data_len = 0u64;
        for (pi, p) in pieces[oc].iter().enumerate() {
            let Some(seg) = p.seg else {
                lay = Layout::Assembled;
                continue;
            };
            let info = info(seg, p.col)?;
            if info.field.data_type() != field.data_type() {
                if crate::table::widen(info.field.data_type(), field.data_type()).as_ref() != Some(field.data_type()) {
                    return Err(Error::corrupt(format!(
                        "segment {} stores column {:?} as {}, which does not widen to the {} the index says",
                        keys[seg],
                        field.name(),
                        info.field.data_type(),
                        field.data_type()
                    )));
                }
                lay = Layout::Assembled;
            }
            has_nulls |= info.has_nulls;
            let window = windows_decoded.get(&(oc, pi)).filter(|_| !p.whole);
            data_len += match window {
                Some(a) => var_window(a)?.1.len() as u64,
                None => info.data_len,
            };
            if matches!(lay, Layout::Codes) {
                continue;
            }
            if !p.whole && window.is_none() && matches!(lay, Layout::Var { .. }) {
                // A window's share of the data is unknown before its offsets are decoded.
                lay = Layout::Assembled;
            }
        }
        let (values, offsets) = match lay {
            // Allocated below, once blocks are chosen (a column in a block has no buffer of its own).
            Layout::Fixed(_) => (OutputBuf::default(), None),
            Layout::Bits => (OutputBuf::zeroed_unpopulated(total_rows.div_ceil(8)), None),
            Layout::Var { offset_width } => {
                if offset_width == 4 && data_len > i32::MAX as u64 {
                    return Err(Error::invalid(format!(
                        "column {:?} holds {data_len} bytes in the requested rows, more than a 32-bit-offset \
                         array can; read fewer rows or store it as a large string",
                        field.name()
                    )));
                }
                let len = usize::try_from(data_len).map_err(|_| Error::invalid("column too large for memory"))?;
                (
                    OutputBuf::zeroed_unpopulated(len),
                    Some(OutputBuf::zeroed_unpopulated((total_rows + 1) * offset_width)),
                )
            }
            Layout::Dictionary | Layout::Assembled | Layout::Codes => (OutputBuf::default(), None),
        };
        code_bufs.push(matches!(lay, Layout::Codes).then(|| OutputBuf::zeroed_unpopulated(total_rows * 4)));
        value_bufs.push(values);
        offset_bufs.push(offsets);
        want_validity.push(has_nulls);
        layouts.push(lay);
    }

    // Column blocks: the null-free columns of each fixed-width type, two or more, in one allocation.
    // Asked for (pandas), every such column joins; otherwise only columns too small for a mapping of
    // their own, and only where together they get one with huge pages (D35): a read of many short
    // columns (`wide`, 1,000 columns of 80 KB) then faults once per 2 MiB instead of once per 4 KiB
    // (D34). Without huge pages (the default under a reporting balloon, D35) such columns share
    // allocator blocks of at most 4 MiB instead (D54): one `malloc` per block rather than per column
    // (whose chunk header faults in a fresh page each, ~2 µs apiece here), and blocks the allocator
    // hands back warm to a loop of reads. Unasked blocks are not reported: the batch's columns are
    // slices of them and hold them alive.
    let mut blocks: Vec<(Vec<usize>, OutputBuf)> = Vec::new();
    let mut groups: Vec<(&DataType, usize, Vec<usize>)> = Vec::new();
    // With `FLOE_HUGE_PAGES=0` no unasked block is made: none is looked for.
    let heap_blocks = !shape.blocks && OutputBuf::heap_blocks();
    if shape.blocks || super::output::output_huge_pages() || heap_blocks {
        for (oc, lay) in layouts.iter().enumerate() {
            if let (Layout::Fixed(w), false) = (lay, want_validity[oc]) {
                if !shape.blocks && OutputBuf::own_mapping(total_rows * w) {
                    continue;
                }
                let dt = fields[oc].data_type();
                match groups.iter_mut().find(|(t, _, _)| *t == dt) {
                    Some((_, _, cols)) => cols.push(oc),
                    None => groups.push((dt, *w, vec![oc])),
                }
            }
        }
    }
    groups.retain(|(_, _, cols)| cols.len() > 1);
    let grouped: usize = groups.iter().map(|(_, w, cols)| total_rows * w * cols.len()).sum();
    let heap_blocks = heap_blocks && grouped <= super::output::HEAP_BLOCKS_READ_MAX;
    for (_, w, cols) in groups {
        let len = total_rows * w * cols.len();
        if shape.blocks || OutputBuf::gets_huge_pages(len) {
            blocks.push((cols, OutputBuf::zeroed_unpopulated(len)));
        } else if heap_blocks {
            let per_block = (super::output::HEAP_BLOCK_MAX / (total_rows * w)).max(2);
            for chunk in cols.chunks(per_block).filter(|c| c.len() > 1) {
                blocks.push((chunk.to_vec(), OutputBuf::heap_unpopulated(total_rows * w * chunk.len())));
            }
        }
    }
    let in_block: std::collections::HashSet<usize> = blocks.iter().flat_map(|(cols, _)| cols.iter().copied()).collect();
    for (oc, lay) in layouts.iter().enumerate() {
        if let (Layout::Fixed(w), false) = (lay, in_block.contains(&oc)) {
            value_bufs[oc] = OutputBuf::zeroed_unpopulated(total_rows * w);
        }
    }
    // Every output mapping of the read prefaulted in one pass (D37, D48).
    super::output::populate_together(
        value_bufs
            .iter_mut()
            .chain(offset_bufs.iter_mut().flatten())
            .chain(code_bufs.iter_mut().flatten())
            .chain(blocks.iter_mut().map(|(_, b)| b)),
    );
    let mut block_slices: std::collections::HashMap<usize, &mut [u8]> = std::collections::HashMap::new();
    for (cols, buf) in &mut blocks {
        let per_column = buf.len() / cols.len();
        for (&oc, chunk) in cols.iter().zip(buf.as_mut_slice().chunks_exact_mut(per_column)) {
            block_slices.insert(oc, chunk);
        }
    }

    let mut tasks: Vec<Task<'_>> = Vec::new();
    let mut window_bits: Vec<TaskBits> = Vec::new();
    let mut assembled_cols = Vec::new();
    for (oc, ((values, offsets), code_buf)) in
        value_bufs.iter_mut().zip(offset_bufs.iter_mut()).zip(code_bufs.iter_mut()).enumerate()
    {
        match layouts[oc] {
            Layout::Dictionary | Layout::Assembled => assembled_cols.push(oc),
            Layout::Codes => {
                let mut rest = code_buf.as_mut().expect("allocated for coded columns").as_mut_u32();
                let remaps = &merged.get(&oc).expect("merged above").remaps;
                for (i, p) in pieces[oc].iter().enumerate() {
                    let (keys_out, tail) = rest.split_at_mut(p.rows);
                    rest = tail;
                    let dest = Dest::Codes { keys: keys_out, remap: &remaps[i] };
                    tasks.push(task(&keys, oc, i, p, want_validity[oc], dest));
                }
            }
            Layout::Fixed(w) => {
                let mut rest = match block_slices.remove(&oc) {
                    Some(in_block) => in_block,
                    None => values.as_mut_slice(),
                };
                for (i, p) in pieces[oc].iter().enumerate() {
                    let (head, tail) = rest.split_at_mut(p.rows * w);
                    rest = tail;
                    tasks.push(task(&keys, oc, i, p, want_validity[oc], Dest::Fixed(head)));
                }
            }
            Layout::Bits => {
                for (i, p) in pieces[oc].iter().enumerate() {
                    tasks.push(task(&keys, oc, i, p, want_validity[oc], Dest::Bits));
                }
            }
            Layout::Var { offset_width } => {
                let offsets = offsets.as_mut().expect("allocated for variable-length columns");
                let mut ends_rest = &mut offsets.as_mut_slice()[offset_width..];
                let mut data_rest = values.as_mut_slice();
                let mut base = 0u64;
                for (i, p) in pieces[oc].iter().enumerate() {
                    let seg = p.seg.expect("only assembled columns have missing pieces");
                    let window = windows_decoded.get(&(oc, i)).filter(|_| !p.whole);
                    let data_len = match window {
                        Some(a) => var_window(a)?.1.len(),
                        None => info(seg, p.col)?.data_len as usize,
                    };
                    let (ends, et) = ends_rest.split_at_mut(p.rows * offset_width);
                    let (data, dt) = data_rest.split_at_mut(data_len);
                    ends_rest = et;
                    data_rest = dt;
                    match window {
                        // Decoded in pass 1: copied into place now (the ends of a column only).
                        Some(a) => {
                            copy_var_window(a, ends, data, base, offset_width)?;
                            window_bits.push(TaskBits {
                                out_col: oc,
                                piece: i,
                                validity: want_validity[oc].then(|| validity_bits(a)),
                                values: None,
                            });
                        }
                        None => tasks.push(task(&keys, oc, i, p, want_validity[oc], Dest::Var { ends, data, base })),
                    }
                    base += data_len as u64;
                }
            }
        }
    }
    // Pass 2: decode, each segment's columns straight into their pieces.
    let mut by_seg: Vec<Vec<Task<'_>>> = keys.iter().map(|_| Vec::new()).collect();
    for t in tasks {
        by_seg[t.seg].push(t);
    }
    let by_seg: Vec<Mutex<Vec<Task<'_>>>> = by_seg.into_iter().map(Mutex::new).collect();
    let mut assembled_pieces: Vec<Vec<(usize, usize)>> = vec![Vec::new(); keys.len()];
    for &oc in &assembled_cols {
        for (pi, p) in pieces[oc].iter().enumerate() {
            if let Some(seg) = p.seg {
                assembled_pieces[seg].push((oc, pi));
            }
        }
    }
    let bits: Mutex<Vec<TaskBits>> = Mutex::new(Vec::new());
    let assembled: Mutex<Vec<(usize, usize, ArrayRef)>> = Mutex::new(Vec::new());
    let parsed: Vec<Option<SegmentLayout>> =
        parsed.into_iter().map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner())).collect();
    // What pass 2 verifies and decodes: the stored bytes of the columns it reads from each segment (all
    // of them when a window takes part of a column: an over-estimate of its blocks).
    let stored: Vec<usize> = infos
        .iter()
        .map(|cols| cols.iter().map(|(_, info, _)| usize::try_from(info.stored_len).unwrap_or(usize::MAX)).sum())
        .collect();
    let on_caller = on_caller && stored.iter().fold(0usize, |a, &b| a.saturating_add(b)) <= ON_CALLER_BYTES;
    source.visit(storage, &keys, on_caller, &|seg, bytes| {
        let reader = match &parsed[seg] {
            Some(layout) => SegmentReader::with_layout(bytes, layout),
            None => SegmentReader::new(bytes),
        }
        .map_err(|e| in_segment(e, &keys[seg]))?;
        // Every block this read uses is verified as it decodes; blocks of columns not asked for are not
        // read at all (decision D13).
        let tasks = std::mem::take(&mut *lock(&by_seg[seg]));
        let done: Vec<TaskBits> = if on_caller || super::on_calling_thread(tasks.len(), stored[seg]) {
            tasks.into_iter().map(|t| t.run(&reader)).collect::<Result<_>>()?
        } else {
            tasks.into_par_iter().map(|t| t.run(&reader)).collect::<Result<_>>()?
        };
        lock(&bits).extend(done);
        for &(oc, pi) in &assembled_pieces[seg] {
            let p = &pieces[oc][pi];
            // A window of a dictionary-coded string column or a categorical decodes only its keys and
            // the dictionary (a plain string column: whole, then sliced).
            let a = match windows_decoded.get(&(oc, pi)) {
                Some(a) => Arc::clone(a),
                None => {
                    reader.decode_column_rows(p.col, p.skip..p.skip + p.rows).map_err(|e| in_segment(e, &keys[seg]))?
                }
            };
            lock(&assembled).push((oc, pi, a));
        }
        Ok(())
    })?;
    let mut bits = bits.into_inner().unwrap_or_else(|p| p.into_inner());
    bits.extend(window_bits);
    let mut assembled_arrays: std::collections::HashMap<(usize, usize), ArrayRef> = assembled
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|(oc, pi, a)| ((oc, pi), a))
        .collect();

    // Merge the per-piece bitmaps (small: one bit per row) into whole-column bitmaps.
    let mut validity_bufs: Vec<Option<OutputBuf>> =
        want_validity.iter().map(|&w| w.then(|| OutputBuf::zeroed(total_rows.div_ceil(8)))).collect();
    for tb in bits {
        let p = &pieces[tb.out_col][tb.piece];
        if let (Some(src), Some(dst)) = (&tb.validity, validity_bufs[tb.out_col].as_mut()) {
            bit_mask::set_bits(dst.as_mut_slice(), src, p.row_off, 0, p.rows);
        }
        if let Some(src) = &tb.values {
            bit_mask::set_bits(value_bufs[tb.out_col].as_mut_slice(), src, p.row_off, 0, p.rows);
        }
    }

    // Each block becomes one buffer; its columns' value buffers are slices of it.
    let mut block_buffers: std::collections::HashMap<usize, Buffer> = std::collections::HashMap::new();
    let blocks: Vec<ColumnBlock> = blocks
        .into_iter()
        .map(|(cols, buf)| {
            let per_column = buf.len() / cols.len();
            let buffer = buf.into_buffer();
            for (k, &oc) in cols.iter().enumerate() {
                block_buffers.insert(oc, buffer.slice_with_length(k * per_column, per_column));
            }
            ColumnBlock { columns: cols, buffer }
        })
        .collect();
    let blocks = if shape.blocks { blocks } else { Vec::new() };
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    let mut out_fields: Vec<Arc<Field>> = fields.clone();
    for (oc, field) in fields.iter().enumerate() {
        if let Some(keys) = code_bufs[oc].take() {
            let dictionary = merged.remove(&oc).expect("merged for every coded column");
            let validity = validity_bufs[oc].take().map(OutputBuf::into_buffer);
            let (coded, array) = if shape.views {
                dictionary.into_views(field, keys, total_rows, validity)?
            } else {
                dictionary.into_array(field, keys.into_buffer(), total_rows, validity)?
            };
            out_fields[oc] = Arc::new(coded);
            arrays.push(array);
            continue;
        }
        if assembled_cols.contains(&oc) {
            let parts: Vec<ArrayRef> = pieces[oc]
                .iter()
                .enumerate()
                .map(|(pi, p)| -> Result<ArrayRef> {
                    if p.seg.is_none() {
                        return Ok(new_null_array(field.data_type(), p.rows));
                    }
                    let a = assembled_arrays
                        .remove(&(oc, pi))
                        .ok_or_else(|| Error::internal("a decoded piece went missing"))?;
                    Ok(if a.data_type() == field.data_type() { a } else { arrow_cast::cast(&a, field.data_type())? })
                })
                .collect::<Result<_>>()?;
            if matches!(field.data_type(), DataType::Dictionary(_, _)) {
                arrays.push(merge_dictionaries(&parts, field.data_type())?);
            } else {
                let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
                arrays.push(arrow_select::concat::concat(&refs)?);
            }
            continue;
        }
        let values = match block_buffers.remove(&oc) {
            Some(in_block) => in_block,
            None => std::mem::take(&mut value_bufs[oc]).into_buffer(),
        };
        let mut builder = ArrayData::builder(field.data_type().clone()).len(total_rows);
        if let Some(offsets) = offset_bufs[oc].take() {
            builder = builder.add_buffer(offsets.into_buffer());
        }
        builder = builder.add_buffer(values);
        if let Some(v) = validity_bufs[oc].take() {
            builder = builder.null_bit_buffer(Some(v.into_buffer()));
        }
        let data = builder.build().map_err(|e| Error::corrupt(format!("column {:?}: {e}", field.name())))?;
        arrays.push(make_array(data));
    }
    let options = RecordBatchOptions::new().with_row_count(Some(total_rows));
    let schema = if out_fields == fields { schema } else { Arc::new(Schema::new(out_fields)) };
    Ok((RecordBatch::try_new_with_options(schema, arrays, &options)?, blocks))
}

/// The offsets of a decoded window of a variable-length column, as the array holds them.
enum WindowOffsets<'a> {
    Small(&'a [i32]),
    Large(&'a [i64]),
}

/// A decoded window of a variable-length column: its offsets (first value's included) and its bytes
/// (those the offsets span). Nothing is copied: sizing needs only the bytes' length.
fn var_window(a: &ArrayRef) -> Result<(WindowOffsets<'_>, &[u8])> {
    use arrow_array::cast::AsArray;

    let (offsets, values) = match a.data_type() {
        DataType::Utf8 => (WindowOffsets::Small(a.as_string::<i32>().value_offsets()), a.as_string::<i32>().values()),
        DataType::LargeUtf8 => {
            (WindowOffsets::Large(a.as_string::<i64>().value_offsets()), a.as_string::<i64>().values())
        }
        DataType::Binary => (WindowOffsets::Small(a.as_binary::<i32>().value_offsets()), a.as_binary::<i32>().values()),
        DataType::LargeBinary => {
            (WindowOffsets::Large(a.as_binary::<i64>().value_offsets()), a.as_binary::<i64>().values())
        }
        other => return Err(Error::internal(format!("a window of {other} is not variable-length"))),
    };
    let bad = || Error::internal("a decoded window's offsets are outside its data");
    let as_usize = |o: i64| usize::try_from(o).map_err(|_| bad());
    let (first, last) = match &offsets {
        WindowOffsets::Small(o) => (o.first().copied().map(i64::from), o.last().copied().map(i64::from)),
        WindowOffsets::Large(o) => (o.first().copied(), o.last().copied()),
    };
    let (first, last) = (as_usize(first.ok_or_else(bad)?)?, as_usize(last.ok_or_else(bad)?)?);
    Ok((offsets, values.get(first..last).ok_or_else(bad)?))
}

/// Copies a decoded window of a variable-length column into its piece of the output: end offsets
/// (`offset_width` bytes each, little-endian) rebased from the window's first value to `base`, and
/// the bytes.
fn copy_var_window(a: &ArrayRef, ends: &mut [u8], data: &mut [u8], base: u64, offset_width: usize) -> Result<()> {
    let (offsets, bytes) = var_window(a)?;
    let values = match &offsets {
        WindowOffsets::Small(o) => o.len(),
        WindowOffsets::Large(o) => o.len(),
    } - 1; // var_window checked there is a first offset
    if values * offset_width != ends.len() || bytes.len() != data.len() {
        return Err(Error::internal("a decoded window does not fit its piece of the output"));
    }
    data.copy_from_slice(bytes);
    let mut write = |i: usize, rel: u64| {
        ends[i * offset_width..(i + 1) * offset_width].copy_from_slice(&(base + rel).to_le_bytes()[..offset_width]);
    };
    // Offsets never decrease (arrow validated the array), so each minus the first is in range.
    match offsets {
        WindowOffsets::Small(o) => o[1..].iter().enumerate().for_each(|(i, &e)| write(i, (e - o[0]) as u64)),
        WindowOffsets::Large(o) => o[1..].iter().enumerate().for_each(|(i, &e)| write(i, (e - o[0]) as u64)),
    }
    Ok(())
}

/// The validity bits of a decoded window, from bit 0 (all set if it has no nulls).
fn validity_bits(a: &ArrayRef) -> Vec<u8> {
    match a.nulls() {
        Some(nulls) => nulls.inner().sliced().as_slice().to_vec(),
        None => vec![0xff; a.len().div_ceil(8)],
    }
}

fn task<'o>(
    keys: &'o [AtomKey],
    out_col: usize,
    piece: usize,
    p: &Piece,
    want_validity: bool,
    dest: Dest<'o>,
) -> Task<'o> {
    let seg = p.seg.expect("only assembled columns have missing pieces");
    Task {
        key: &keys[seg],
        out_col,
        piece,
        seg,
        col: p.col,
        skip: p.skip,
        rows: p.rows,
        whole: p.whole,
        want_validity,
        dest,
    }
}

/// An error met while fetching or decoding the segment `key`, with the key in its message.
pub(super) fn in_segment(e: impl Into<Error>, key: &AtomKey) -> Error {
    e.into().context(format!("segment {key}"))
}

/// A reader of segment `key`'s `bytes` (verified by [`verify_object`]) through `layouts`: a layout
/// parsed earlier from the same object is reused (its header and descriptor checksum compared with
/// these bytes'), else the descriptor is parsed and the layout kept. Keys name immutable objects and
/// carry their content hash, so a kept layout never goes stale.
fn reader_of<'b>(layouts: &LayoutCache, key: &AtomKey, bytes: &'b [u8]) -> Result<SegmentReader<'b>> {
    if let Some(reader) = layouts.get(key).and_then(|layout| SegmentReader::with_layout(bytes, &layout).ok()) {
        return Ok(reader);
    }
    let reader = SegmentReader::new(bytes).map_err(|e| in_segment(e, key))?;
    let layout = reader.layout();
    let size = layout.parsed_len();
    layouts.insert(key, layout, size);
    Ok(reader)
}

/// Checks that a data or index segment's bytes are the ones its key names: the key carries the
/// segment's content hash (`floe_formats::content_hash`: header and descriptor, which name every
/// block's checksum). This catches what the segment's own checksums cannot: a whole, valid segment
/// stored under another key (swapped objects).
///
/// # Errors
/// `CorruptData` naming the key when the hash differs.
pub(crate) fn verify_object(key: &AtomKey, bytes: &[u8]) -> Result<()> {
    if !matches!(key.key_type(), KeyType::TableData | KeyType::TableIndex) {
        return Ok(());
    }
    // The content hash covers header and descriptor, which name every block's checksum; the decoder
    // then checks each block it reads against the descriptor. Together: everything used is verified.
    let hash = floe_formats::content_hash(bytes).map_err(|e| in_segment(e, key))?;
    if hash != key.content_hash() {
        return Err(Error::corrupt(format!(
            "object {key} holds {} bytes with content hash {hash:#018x}, not the hash its key records: it was \
             damaged or replaced",
            bytes.len()
        )));
    }
    Ok(())
}

/// Where pass 1 and pass 2 get segment bytes from: borrowed straight from the backend's pages (LMDB's
/// memory map, through `visit_batch`, once per pass) or fetched once and owned (every other backend).
pub(super) enum Source {
    Lent,
    Owned(Vec<Bytes>),
}

impl Source {
    /// `keys`' bytes: lent, or fetched in one batch except those already `prefetched`.
    pub(super) fn fetch(storage: &dyn Storage, keys: &[AtomKey], prefetched: &[Prefetched]) -> Result<Self> {
        if storage.lends_pages() {
            return Ok(Source::Lent);
        }
        let held = |k: &AtomKey| prefetched.iter().find(|(p, _)| p == k).map(|(_, b)| b.clone());
        let missing: Vec<AtomKey> = keys.iter().filter(|k| held(k).is_none()).cloned().collect();
        let mut fetched = storage.get_batch(&missing).into_iter().zip(&missing);
        let mut owned = Vec::with_capacity(keys.len());
        for k in keys {
            owned.push(match held(k) {
                Some(b) => b,
                None => {
                    let (r, key) =
                        fetched.next().ok_or_else(|| Error::internal("get_batch returned too few results"))?;
                    r.map_err(|e| in_segment(e, key))?
                }
            });
        }
        Ok(Source::Owned(owned))
    }

    /// Calls `f(segment number, bytes)` for every segment: in parallel, or all on the calling thread
    /// in key order if `on_caller`; the first error wins.
    pub(super) fn visit(
        &self,
        storage: &dyn Storage,
        keys: &[AtomKey],
        on_caller: bool,
        f: &(dyn Fn(usize, &[u8]) -> Result<()> + Sync),
    ) -> Result<()> {
        match self {
            Source::Owned(bytes)
                if on_caller || super::on_calling_thread(bytes.len(), bytes.iter().map(Bytes::len).sum()) =>
            {
                bytes.iter().enumerate().try_for_each(|(i, b)| f(i, b))
            }
            Source::Owned(bytes) => bytes.par_iter().enumerate().try_for_each(|(i, b)| f(i, b)),
            Source::Lent => {
                // The backend's visitor speaks StorageError: park the engine's own error and hand back a
                // placeholder that stops the visit.
                let first: Mutex<Option<Error>> = Mutex::new(None);
                let park = |e: Error| {
                    let msg = e.to_string();
                    lock(&first).get_or_insert(e);
                    floe_backends::StorageError::other("engine", msg)
                };
                let result = if on_caller {
                    storage.visit_batch_here(keys, &mut |i, b| f(i, b).map_err(park))
                } else {
                    storage.visit_batch(keys, &|i, b| f(i, b).map_err(park))
                };
                if let Some(e) = first.into_inner().unwrap_or_else(|p| p.into_inner()) {
                    return Err(e);
                }
                Ok(result?)
            }
        }
    }
}

/// Concatenates dictionary-encoded string pieces into one array with **one** dictionary holding each
/// distinct value once (each segment has its own dictionary; plain concatenation would repeat values,
/// which pandas' categoricals reject). Every value of every piece's dictionary is kept, in dictionary
/// order, whether or not the piece's rows use it: a read of a few rows keeps the categories the user
/// stored. Keys keep the column's key type.
///
/// # Errors
/// `InvalidInput` if the distinct values no longer fit the key type; `CorruptData` for a value type the
/// codec does not store.
fn merge_dictionaries(parts: &[ArrayRef], data_type: &DataType) -> Result<ArrayRef> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::{DictionaryArray, Int64Array, LargeStringArray, StringArray};

    let mut ids: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    let mut values: Vec<&str> = Vec::new();
    let mut keys: Vec<Option<i64>> = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        let dict = part
            .as_any_dictionary_opt()
            .ok_or_else(|| Error::corrupt(format!("expected a dictionary piece, found {}", part.data_type())))?;
        let dict_values = dict.values();
        let entries: Vec<Option<&str>> = match dict_values.data_type() {
            DataType::Utf8 => dict_values.as_string::<i32>().iter().collect(),
            DataType::LargeUtf8 => dict_values.as_string::<i64>().iter().collect(),
            other => return Err(Error::corrupt(format!("dictionary values of type {other}"))),
        };
        // This piece's dictionary position -> merged position (None: a null value).
        let remap: Vec<Option<i64>> = entries
            .into_iter()
            .map(|v| {
                v.map(|v| {
                    *ids.entry(v).or_insert_with(|| {
                        values.push(v);
                        values.len() as i64 - 1
                    })
                })
            })
            .collect();
        for (i, &k) in dict.normalized_keys().iter().enumerate() {
            keys.push(if part.is_null(i) { None } else { remap.get(k).copied().flatten() });
        }
    }
    let value_array: ArrayRef = match data_type {
        DataType::Dictionary(_, v) if **v == DataType::LargeUtf8 => Arc::new(LargeStringArray::from(values)),
        _ => Arc::new(StringArray::from(values)),
    };
    let merged = DictionaryArray::<Int64Type>::try_new(Int64Array::from(keys), value_array)?;
    // Back to the column's own key type; fails cleanly if the distinct values outgrow it.
    arrow_cast::cast(&merged, data_type)
        .map_err(|e| Error::invalid(format!("the merged dictionary does not fit the column's type {data_type}: {e}")))
}
