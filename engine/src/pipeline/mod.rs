//! The parallel pipelines: encode-and-store on write, fetch-and-decode on read (design/pipeline.md).

pub(crate) mod codes;
pub(crate) mod handover;
pub(crate) mod huge_pages;
pub(crate) mod output;
pub(crate) mod pool;
pub(crate) mod read;
pub(crate) mod segment_buffers;
pub(crate) mod verify;
pub(crate) mod write;

/// Work of at most this many bytes stays on the calling thread: handing it to rayon and back costs
/// ~20-40 µs on a busy 2-core VM, more than encoding or decoding that much takes (design/pipeline.md,
/// "Small reads stay on the calling thread").
const INLINE_BYTES: usize = 128 << 10;

/// Whether `items` pieces of work of `bytes` in all run on the calling thread rather than on rayon.
pub(crate) fn on_calling_thread(items: usize, bytes: usize) -> bool {
    items <= 1 || bytes <= INLINE_BYTES
}
