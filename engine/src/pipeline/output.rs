//! Output buffers of a read: zero-filled memory that the decoder writes into and that then becomes an
//! Arrow buffer without a copy.
//!
//! A read's output is fresh memory, and its first touch is a page fault per 4 KiB page: on this
//! project's VM ~5 µs each, so faulting in 88 MB costs 55 ms, more than decoding it. A buffer of at
//! least [`HUGE_PAGE`] bytes is therefore its own anonymous mapping, which asks for transparent huge
//! pages (`madvise(MADV_HUGEPAGE)`): one fault per 2 MiB, 7 ms for the same 88 MB (design/decisions.md
//! D30) — except on a VM whose balloon reports free memory to its host, where huge-page faults can
//! cost more than 4 KiB ones and the mapping keeps 4 KiB pages (D35, [`huge_pages`]), prefaulted in
//! parallel before the decoders write (D37). Smaller buffers, other platforms, and processes with
//! `FLOE_HUGE_PAGES=0` in the environment use the allocator's zeroed memory (calloc).
//!
//! A consumer that wants to own an output buffer outright (the Python module hands fixed-width columns
//! to numpy as writable arrays) takes a `Vec`-backed one with `Buffer::into_vec` and a mapped one with
//! [`OwnedOutput::take`]: mappings are registered while alive, so only the engine's own, unshared
//! outputs are ever handed over.

#[cfg(target_os = "linux")]
use std::collections::BTreeMap;
#[cfg(target_os = "linux")]
use std::ptr::NonNull;

use arrow_buffer::Buffer;

pub(crate) use super::huge_pages::HUGE_PAGE;
use super::huge_pages::{self, Policy};
#[cfg(target_os = "linux")]
use crate::sync::{StdArc, StdMutex as Mutex, lock_std as lock};

/// A zero-filled output buffer of a fixed length.
///
/// Invariant: `as_slice().len()` is the length it was made with, and its start is aligned to at least
/// 16 bytes (enough for every Arrow primitive type Floe stores).
#[derive(Default)]
pub(crate) struct OutputBuf(Inner);

#[derive(Default)]
enum Inner {
    /// From the allocator (calloc: large blocks come straight from the kernel already zero).
    Heap(Vec<u8>),
    /// A mapping of its own.
    #[cfg(target_os = "linux")]
    Mapped(Mapping),
    /// Nothing yet (what `std::mem::take` leaves).
    #[default]
    Empty,
}

impl OutputBuf {
    /// Whether a buffer of `len` bytes would be a mapping of its own, which may get huge pages
    /// (smaller ones come from the allocator, 4 KiB page by page).
    pub(crate) fn own_mapping(len: usize) -> bool {
        #[cfg(target_os = "linux")]
        {
            len >= HUGE_PAGE && huge_pages::policy() != Policy::Allocator
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = len;
            false
        }
    }

    /// Whether a buffer of `len` bytes would be a mapping with huge pages (D35: not under a balloon
    /// that reports free pages).
    pub(crate) fn gets_huge_pages(len: usize) -> bool {
        // Off Linux no buffer is a mapping of its own, so the policy is never consulted there.
        Self::own_mapping(len) && huge_pages::policy() == Policy::HugePages
    }

    /// `len` zero bytes.
    pub(crate) fn zeroed(len: usize) -> Self {
        Self::zeroed_with(len, true)
    }

    /// `len` zero bytes whose pages, if they are a mapping of 4 KiB pages, are left for
    /// [`populate_together`] to prefault with the read's other outputs (else they fault in at first
    /// touch).
    pub(crate) fn zeroed_unpopulated(len: usize) -> Self {
        Self::zeroed_with(len, false)
    }

    fn zeroed_with(len: usize, populate_now: bool) -> Self {
        #[cfg(target_os = "linux")]
        if Self::own_mapping(len)
            && let Some(mapped) = Self::mapped(len, populate_now)
        {
            return mapped;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = populate_now;
        Self(Inner::Heap(vec![0u8; len]))
    }

    /// A mapping with 2 MiB of slack, so the buffer can start on a 2 MiB boundary, and, if the policy
    /// says so, huge pages asked for over the whole 2 MiB extents the buffer covers (the rest takes
    /// 4 KiB pages, so resident memory stays the buffer's size); else its 4 KiB pages prefaulted in
    /// parallel ([`populate_chunks`]) now if `populate_now`, or later with the read's other outputs
    /// ([`populate_together`]). `None` if the kernel refuses the mapping: the caller falls back to the
    /// allocator, which then reports running out of memory as usual.
    #[cfg(target_os = "linux")]
    fn mapped(len: usize, populate_now: bool) -> Option<Self> {
        let map = memmap2::MmapMut::map_anon(len.checked_add(HUGE_PAGE)?).ok()?;
        let misalignment = map.as_ptr() as usize % HUGE_PAGE;
        let offset = if misalignment == 0 { 0 } else { HUGE_PAGE - misalignment };
        if huge_pages::policy() == Policy::HugePages {
            // Advice only: a kernel without transparent huge pages still maps zeroed 4 KiB pages.
            let _ = map.advise_range(memmap2::Advice::HugePage, offset, len / HUGE_PAGE * HUGE_PAGE);
        } else if populate_now {
            populate_chunks(&[(&map, offset, len)]);
        }
        Some(Self(Inner::Mapped(Mapping { map, offset, len })))
    }

    /// The buffer's bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Inner::Heap(v) => v,
            #[cfg(target_os = "linux")]
            Inner::Mapped(m) => &m.map[m.offset..m.offset + m.len],
            Inner::Empty => &[],
        }
    }

    /// The buffer's bytes, to write.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        match &mut self.0 {
            Inner::Heap(v) => v,
            #[cfg(target_os = "linux")]
            Inner::Mapped(m) => &mut m.map[m.offset..m.offset + m.len],
            Inner::Empty => &mut [],
        }
    }

    /// The buffer as `u32`s, to write (for a length that is a multiple of 4).
    pub(crate) fn as_mut_u32(&mut self) -> &mut [u32] {
        let bytes = self.as_mut_slice();
        // SAFETY: every bit pattern of 4 bytes is a valid `u32`, and the slice is exclusively borrowed
        // for as long as the returned one.
        let (head, words, tail) = unsafe { bytes.align_to_mut::<u32>() };
        assert!(head.is_empty() && tail.is_empty(), "output buffers start 16-byte aligned; u32 views have whole words");
        words
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// The Arrow buffer over the same memory (no copy); the memory is released when the last Arrow
    /// buffer over it is dropped.
    pub(crate) fn into_buffer(self) -> Buffer {
        match self.0 {
            Inner::Heap(v) => Buffer::from_vec(v),
            #[cfg(target_os = "linux")]
            Inner::Mapped(mut m) => {
                let start = NonNull::new(m.map[m.offset..].as_mut_ptr()).expect("a mapping is never at address 0");
                let len = m.len;
                let owner = StdArc::new(Registered::new(m, start.as_ptr() as usize));
                // SAFETY: `start` points `offset` bytes into the mapping, which holds `offset + len` bytes
                // or more, so `len` bytes from it are valid and initialised (zero or decoded). The mapping
                // is owned by `owner`, which the buffer keeps alive (it is unmapped only on the last
                // drop) as long as any buffer refers to it; moving the `MmapMut` into the Arc does not move
                // the memory it maps. Nothing writes to the memory while the buffer is shared
                // (`OwnedOutput::take` hands out write access only to the one unsliced reference).
                unsafe { Buffer::from_custom_allocation(start, len, owner) }
            }
            Inner::Empty => Buffer::from_vec(Vec::<u8>::new()),
        }
    }
}

/// Pages prefaulted per `madvise` call of [`populate_chunks`], on as many threads as rayon has.
#[cfg(target_os = "linux")]
const POPULATE_CHUNK: usize = 4 << 20;

/// Prefaults the 4 KiB pages of every mapping among `bufs` that [`OutputBuf::zeroed_unpopulated`]
/// left unpopulated, all in one pass on the rayon pool (see [`populate_chunks`]). Buffers from the
/// allocator and mappings with huge pages are skipped.
pub(crate) fn populate_together<'a>(bufs: impl Iterator<Item = &'a OutputBuf>) {
    #[cfg(target_os = "linux")]
    {
        if huge_pages::policy() != Policy::SmallPages {
            return;
        }
        let ranges: Vec<(&memmap2::MmapMut, usize, usize)> = bufs
            .filter_map(|b| match &b.0 {
                Inner::Mapped(m) => Some((&m.map, m.offset, m.len)),
                _ => None,
            })
            .collect();
        populate_chunks(&ranges);
    }
    #[cfg(not(target_os = "linux"))]
    bufs.for_each(drop);
}

/// Prefaults the 4 KiB pages of each `(map, offset, len)` range, writable and zeroed, in chunks of
/// [`POPULATE_CHUNK`], all ranges' chunks in one parallel pass on the rayon pool
/// (`MADV_POPULATE_WRITE`, Linux 5.14+; elsewhere the advice fails and the decoders' first touches
/// fault the pages in as before). One call faults a chunk's 1,024 pages inside the kernel instead of
/// trapping once per page while decoding: on this project's VM, 80 MB took 21 ms on two threads
/// against 42 ms touched page by page on one, and full reads of 880 MB became 15-20 % faster
/// (design/decisions.md D37). One pass for a read's many mappings rather than one per mapping: each
/// pass ends when its slowest thread does (D48).
#[cfg(target_os = "linux")]
fn populate_chunks(ranges: &[(&memmap2::MmapMut, usize, usize)]) {
    use rayon::prelude::*;
    let chunks: Vec<(&memmap2::MmapMut, usize, usize)> = ranges
        .iter()
        .flat_map(|&(map, offset, len)| {
            let len = len.next_multiple_of(4096).min(map.len() - offset);
            (0..len.div_ceil(POPULATE_CHUNK)).map(move |i| {
                let start = i * POPULATE_CHUNK;
                (map, offset + start, POPULATE_CHUNK.min(len - start))
            })
        })
        .collect();
    chunks.into_par_iter().for_each(|(map, at, len)| {
        // Advice only: if refused, the pages fault in at first touch.
        let _ = map.advise_range(memmap2::Advice::PopulateWrite, at, len);
    });
}

/// An output buffer's own mapping: the buffer is `len` bytes from `offset`, the first 2 MiB boundary
/// in it.
#[cfg(target_os = "linux")]
struct Mapping {
    map: memmap2::MmapMut,
    offset: usize,
    len: usize,
}

/// The mappings that Arrow buffers own right now: start address -> length. (Ordered, so the map can be
/// made in a `static`; a process holds at most some tens of thousands, bounded by `vm.max_map_count`.)
#[cfg(target_os = "linux")]
static REGISTERED: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

/// A mapping as an Arrow buffer's owner, listed in [`REGISTERED`] from its making to its drop.
#[cfg(target_os = "linux")]
struct Registered {
    /// Unmapped when this drops, after the registry entry is gone.
    _mapping: Mapping,
    start: usize,
}

#[cfg(target_os = "linux")]
impl Registered {
    fn new(mapping: Mapping, start: usize) -> Self {
        lock(&REGISTERED).insert(start, mapping.len);
        Self { _mapping: mapping, start }
    }
}

#[cfg(target_os = "linux")]
impl Drop for Registered {
    fn drop(&mut self) {
        lock(&REGISTERED).remove(&self.start);
    }
}

/// Whether this process's read outputs of 2 MiB or more ask for transparent huge pages (decided once:
/// `FLOE_HUGE_PAGES`, else yes unless a virtio balloon reports free pages to the host; design D30,
/// D35). Always false off Linux.
pub fn output_huge_pages() -> bool {
    OutputBuf::gets_huge_pages(HUGE_PAGE)
}

/// An output buffer of the engine that the holder owns outright: the only reference to a mapping the
/// engine made for a read's output, unsliced. Its bytes may be written through [`Self::address`] (the
/// Python module lends them to numpy as a writable array); dropping it unmaps them.
pub struct OwnedOutput {
    buffer: Buffer,
}

impl OwnedOutput {
    /// Takes `buffer` if it is one of the engine's output mappings, whole, and no other buffer refers
    /// to it; otherwise gives it back unchanged. (A `Vec`-backed output is taken with
    /// `Buffer::into_vec` instead.) Meant for buffers straight from a read's result: a buffer
    /// re-imported through the C data interface that aliases a live mapping would pass the same checks
    /// while the exported original lives on, so such buffers must not be handed here.
    ///
    /// # Errors
    /// `Err(buffer)` for any other buffer.
    pub fn take(buffer: Buffer) -> std::result::Result<Self, Buffer> {
        #[cfg(target_os = "linux")]
        if buffer.strong_count() == 1
            && buffer.ptr_offset() == 0
            && lock(&REGISTERED).get(&(buffer.as_ptr() as usize)) == Some(&buffer.len())
        {
            return Ok(Self { buffer });
        }
        Err(buffer)
    }

    /// The first byte's address, with write access (the engine made the pointer from the mapping's
    /// mutable one).
    pub fn address(&self) -> usize {
        self.buffer.data_ptr().as_ptr() as usize
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Whether it holds no bytes (never, for a mapping: they are at least 2 MiB).
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_zeroed_aligned_and_become_arrow_buffers() {
        for len in [0, 10, HUGE_PAGE - 1, HUGE_PAGE, HUGE_PAGE * 3 + 12_345] {
            let mut b = OutputBuf::zeroed(len);
            assert_eq!(b.len(), len);
            assert!(b.as_slice().iter().all(|&x| x == 0));
            if len > 0 {
                assert_eq!(b.as_slice().as_ptr() as usize % 16, 0);
            }
            if OutputBuf::own_mapping(len) {
                assert!(matches!(b.0, Inner::Mapped(_)));
                assert_eq!(b.as_slice().as_ptr() as usize % HUGE_PAGE, 0);
            }
            if let Some(last) = b.as_mut_slice().last_mut() {
                *last = 7;
            }
            let buffer = b.into_buffer();
            assert_eq!(buffer.len(), len);
            if OutputBuf::own_mapping(len) {
                // Owned outright only while no slice refers to it.
                let slice = buffer.slice(1);
                let buffer = OwnedOutput::take(buffer).err().expect("shared");
                drop(slice);
                let owned = OwnedOutput::take(buffer).expect("the only reference");
                assert_eq!(owned.len(), len);
                assert!(OwnedOutput::take(Buffer::from_vec(vec![0u8; len])).is_err());
                let registered = lock(&REGISTERED).len();
                drop(owned);
                assert!(lock(&REGISTERED).len() < registered || registered == 0);
                continue;
            }
            if len > 0 {
                assert_eq!(buffer.as_slice()[len - 1], 7);
                // A slice keeps the mapping alive after the whole buffer is dropped.
                let tail = buffer.slice(len - 1);
                drop(buffer);
                assert_eq!(tail.as_slice(), &[7]);
            }
        }
    }

    #[test]
    fn buffers_prefaulted_together_are_zeroed_and_writable() {
        let lens = [0, 100, HUGE_PAGE, HUGE_PAGE * 2 + 4_097, (8 << 20) + 1];
        let mut bufs: Vec<OutputBuf> = lens.iter().map(|&len| OutputBuf::zeroed_unpopulated(len)).collect();
        populate_together(bufs.iter());
        // Twice, and with nothing: harmless.
        populate_together(bufs.iter());
        populate_together(std::iter::empty());
        for (b, &len) in bufs.iter_mut().zip(&lens) {
            assert_eq!(b.len(), len);
            assert!(b.as_slice().iter().all(|&x| x == 0));
            if OutputBuf::own_mapping(len) {
                assert!(matches!(b.0, Inner::Mapped(_)));
            }
            b.as_mut_slice().iter_mut().step_by(4096).for_each(|x| *x = 1);
            assert_eq!(b.as_slice().iter().filter(|&&x| x == 1).count(), len.div_ceil(4096));
        }
    }

    #[test]
    fn taken_buffers_are_empty() {
        let mut b = OutputBuf::zeroed(4);
        let taken = std::mem::take(&mut b);
        assert_eq!((b.len(), taken.len()), (0, 4));
        assert_eq!(b.into_buffer().len(), 0);
    }
}
