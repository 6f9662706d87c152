//! Output buffers of a read: zero-filled memory that the decoder writes into and that then becomes an
//! Arrow buffer without a copy.
//!
//! A read's output is fresh memory, and its first touch is a page fault per 4 KiB page: on this
//! project's VM ~5 µs each, so faulting in 88 MB costs 55 ms, more than decoding it. A buffer of at
//! least [`HUGE_PAGE`] bytes is therefore its own anonymous mapping, which asks for transparent huge
//! pages (`madvise(MADV_HUGEPAGE)`): one fault per 2 MiB, 7 ms for the same 88 MB (design/decisions.md
//! D30) — except on a VM whose balloon reports free memory to its host, where huge-page faults can
//! cost more than 4 KiB ones and the mapping keeps 4 KiB pages (D35, [`huge_pages`]), prefaulted in
//! parallel before the decoders write (D37). Smaller buffers come from the allocator: those of a
//! read's outputs of [`HEAP_PREFAULT_MIN`] bytes or more are prefaulted in the same parallel pass and
//! then zero-filled (D52); the rest, other platforms and processes with `FLOE_HUGE_PAGES=0` in the
//! environment get the allocator's zeroed memory (calloc).
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
/// Invariant: `len()` and `as_slice().len()` are the length it was made with, and its start is aligned to at least
/// 16 bytes (enough for every Arrow primitive type Floe stores).
#[derive(Default)]
pub(crate) struct OutputBuf(Inner);

#[derive(Default)]
enum Inner {
    /// From the allocator, zeroed or written (calloc: large blocks come straight from the kernel
    /// already zero).
    Heap(Vec<u8>),
    /// From the allocator, room for `len` bytes not written yet (`vec` is empty, with the capacity):
    /// the pass of [`populate_together`] prefaults its pages and zero-fills it, and so does the first
    /// access before it, either way leaving `Heap`.
    #[cfg(target_os = "linux")]
    Unfilled { vec: Vec<u8>, len: usize },
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

    /// Whether a read's short columns share allocator blocks of at most [`HEAP_BLOCK_MAX`] bytes
    /// (D54): where outputs are mappings with 4 KiB pages, the default under a balloon that reports
    /// free pages (D35). Not with huge pages (one mapping per type, D34) nor `FLOE_HUGE_PAGES=0`.
    pub(crate) fn heap_blocks() -> bool {
        #[cfg(target_os = "linux")]
        {
            huge_pages::policy() == Policy::SmallPages
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// `len` zero bytes from the allocator, never a mapping of their own: of [`HEAP_PREFAULT_MIN`]
    /// bytes or more, left unfilled for [`populate_together`] to prefault and zero-fill (D52); fewer,
    /// calloc'd.
    pub(crate) fn heap_unpopulated(len: usize) -> Self {
        #[cfg(target_os = "linux")]
        if len >= HEAP_PREFAULT_MIN {
            // `malloc`, not `calloc`: calloc's memset would fault the pages in one by one before the
            // parallel pass could (D52).
            return Self(Inner::Unfilled { vec: Vec::with_capacity(len), len });
        }
        Self(Inner::Heap(vec![0u8; len]))
    }

    /// `len` zero bytes.
    pub(crate) fn zeroed(len: usize) -> Self {
        Self::zeroed_with(len, true)
    }

    /// `len` zero bytes whose pages, if they are a mapping of 4 KiB pages or allocator memory of
    /// [`HEAP_PREFAULT_MIN`] bytes or more, are left for [`populate_together`] to prefault with the
    /// read's other outputs (else they fault in at first touch). Allocator memory is zero-filled by
    /// that pass (or the first access before it), after its pages are in.
    pub(crate) fn zeroed_unpopulated(len: usize) -> Self {
        Self::zeroed_with(len, false)
    }

    fn zeroed_with(len: usize, populate_now: bool) -> Self {
        #[cfg(target_os = "linux")]
        {
            if Self::own_mapping(len)
                && let Some(mapped) = Self::mapped(len, populate_now)
            {
                return mapped;
            }
            if !populate_now && huge_pages::policy() != Policy::Allocator {
                return Self::heap_unpopulated(len);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = populate_now;
        Self(Inner::Heap(vec![0u8; len]))
    }

    /// Prefaults and zero-fills an `Unfilled` buffer, making it `Heap` (an access before
    /// [`populate_together`]: the pass's work for a group of this buffer alone); any other is left as
    /// it is.
    fn fill(&mut self) {
        #[cfg(target_os = "linux")]
        if matches!(self.0, Inner::Unfilled { .. }) {
            Prefault::Heap(vec![self]).run();
        }
    }

    /// The addresses `start..end` of an `Unfilled` buffer's allocation (its first `len` bytes).
    #[cfg(target_os = "linux")]
    fn heap_span(&self) -> Option<(usize, usize)> {
        match &self.0 {
            Inner::Unfilled { vec, len } => {
                let start = vec.as_ptr() as usize;
                Some((start, start + (*len).min(vec.capacity())))
            }
            _ => None,
        }
    }

    /// Zero-fills an `Unfilled` buffer (its pages prefaulted or not), making it `Heap`.
    fn zero_fill(&mut self) {
        #[cfg(target_os = "linux")]
        if let Inner::Unfilled { vec, len } = &mut self.0 {
            let mut vec = std::mem::take(vec);
            vec.resize(*len, 0);
            self.0 = Inner::Heap(vec);
        }
    }

    /// A mapping with 2 MiB of slack, so the buffer can start on a 2 MiB boundary, and, if the policy
    /// says so, huge pages asked for over the whole 2 MiB extents the buffer covers (the rest takes
    /// 4 KiB pages, so resident memory stays the buffer's size); else its 4 KiB pages prefaulted in
    /// parallel (chunks of [`POPULATE_CHUNK`]) now if `populate_now`, or later with the read's other outputs
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
            use rayon::prelude::*;
            let chunks: Vec<_> = map_chunks(&[(&map, offset, len)]).collect();
            chunks.into_par_iter().for_each(|(map, at, len)| Prefault::Mapping(map, at, len).run());
        }
        Some(Self(Inner::Mapped(Mapping { map, offset, len })))
    }

    /// The buffer's bytes (a mutable borrow: a buffer not filled yet is zero-filled first).
    pub(crate) fn as_slice(&mut self) -> &[u8] {
        self.as_mut_slice()
    }

    /// The buffer's bytes, to write.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        self.fill();
        match &mut self.0 {
            Inner::Heap(v) => v,
            #[cfg(target_os = "linux")]
            Inner::Mapped(m) => &mut m.map[m.offset..m.offset + m.len],
            // `fill` leaves none.
            #[cfg(target_os = "linux")]
            Inner::Unfilled { .. } => &mut [],
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
        match &self.0 {
            Inner::Heap(v) => v.len(),
            #[cfg(target_os = "linux")]
            Inner::Unfilled { len, .. } => *len,
            #[cfg(target_os = "linux")]
            Inner::Mapped(m) => m.len,
            Inner::Empty => 0,
        }
    }

    /// The Arrow buffer over the same memory (no copy); the memory is released when the last Arrow
    /// buffer over it is dropped.
    pub(crate) fn into_buffer(mut self) -> Buffer {
        self.fill();
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
            // `fill` leaves none.
            #[cfg(target_os = "linux")]
            Inner::Unfilled { .. } => Buffer::from_vec(Vec::<u8>::new()),
            Inner::Empty => Buffer::from_vec(Vec::<u8>::new()),
        }
    }
}

/// Bytes prefaulted per `madvise` call of [`populate_together`] (whose calls run on as many threads as
/// rayon has) and of a mapping prefaulted when made.
#[cfg(target_os = "linux")]
const POPULATE_CHUNK: usize = 4 << 20;

/// The most bytes one allocator block of short columns holds (D54): a group of the prefault pass
/// (`POPULATE_CHUNK`), so a read's blocks are prefaulted and zero-filled in parallel, and below
/// glibc's largest dynamic mmap threshold (32 MiB), so after the first a loop of reads gets its blocks
/// back from the heap, warm.
pub(crate) const HEAP_BLOCK_MAX: usize = 4 << 20;

/// Reads whose short columns hold more than this many bytes in all keep them apart (D54): glibc
/// hands a heap's free top back to the kernel once it passes the trim threshold, which freeing a
/// block sets to twice the block, so a loop of such reads would find its blocks' pages gone every
/// time (measured: 12 MB of blocks, `MADV_DONTNEED` after every read), where columns apart stayed
/// warm.
pub(crate) const HEAP_BLOCKS_READ_MAX: usize = 2 * HEAP_BLOCK_MAX;

/// Allocator-backed outputs of this many bytes or more are prefaulted by [`populate_together`] rather
/// than faulted in page by page as the decoders first write them (D52).
#[cfg(target_os = "linux")]
pub(crate) const HEAP_PREFAULT_MIN: usize = 4 << 10;

/// The kernel's page size (`madvise` and `mincore` take only ranges that start on a page), asked once;
/// 4 KiB if the kernel does not say.
#[cfg(target_os = "linux")]
fn page() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: `sysconf` only reads a system setting.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size).ok().filter(|&s| s.is_power_of_two()).unwrap_or(4096)
    })
}

/// Prefaults the 4 KiB pages of every output among `bufs` that [`OutputBuf::zeroed_unpopulated`]
/// left unpopulated, all in one pass (on the rayon pool unless the work is small,
/// [`super::on_calling_thread`]): mappings with 4 KiB pages in chunks of [`POPULATE_CHUNK`], and the
/// allocator memory of buffers not filled yet in groups of neighbours of about that size, each group's
/// pages prefaulted as few ranges (so that a read of many short columns takes few calls) and its
/// buffers then zero-filled (D52). Mappings with huge pages and buffers already filled are skipped.
///
/// One call faults a chunk's pages inside the kernel instead of trapping once per page while decoding:
/// on this project's VM, 80 MB took 21 ms on two threads against 42 ms touched page by page on one,
/// and full reads of 880 MB became 15-20 % faster (D37). One pass for a read's many outputs rather than
/// one per output: each pass ends when its slowest thread does (D48).
pub(crate) fn populate_together<'a>(bufs: impl Iterator<Item = &'a mut OutputBuf>) {
    #[cfg(target_os = "linux")]
    {
        use rayon::prelude::*;
        let small_pages = huge_pages::policy() == Policy::SmallPages;
        let mut maps: Vec<(&memmap2::MmapMut, usize, usize)> = Vec::new();
        let mut unfilled: Vec<&mut OutputBuf> = Vec::new();
        for b in bufs {
            match b.0 {
                Inner::Unfilled { .. } => unfilled.push(b),
                Inner::Mapped(ref m) if small_pages => maps.push((&m.map, m.offset, m.len)),
                _ => {}
            }
        }
        let bytes =
            maps.iter().map(|&(_, _, len)| len).sum::<usize>() + unfilled.iter().map(|b| b.len()).sum::<usize>();
        let mut work: Vec<Prefault<'_, '_>> =
            map_chunks(&maps).map(|(map, at, len)| Prefault::Mapping(map, at, len)).collect();
        work.extend(heap_groups(unfilled).into_iter().map(Prefault::Heap));
        if super::on_calling_thread(work.len(), bytes) {
            work.into_iter().for_each(Prefault::run);
        } else {
            work.into_par_iter().for_each(Prefault::run);
        }
    }
    #[cfg(not(target_os = "linux"))]
    bufs.for_each(drop);
}

/// One task of the prefault pass: `len` bytes from `at` in a mapping, or a group of unfilled buffers.
#[cfg(target_os = "linux")]
enum Prefault<'m, 'b> {
    Mapping(&'m memmap2::MmapMut, usize, usize),
    Heap(Vec<&'b mut OutputBuf>),
}

#[cfg(target_os = "linux")]
impl Prefault<'_, '_> {
    /// Prefaults the range, writable (`MADV_POPULATE_WRITE`, Linux 5.14+; advice only: if refused, the
    /// pages fault in at first touch), or the group's pages and then zero-fills its buffers.
    fn run(self) {
        match self {
            Prefault::Mapping(map, at, len) => {
                let _ = map.advise_range(memmap2::Advice::PopulateWrite, at, len);
            }
            Prefault::Heap(mut group) => {
                for (at, len) in heap_pages(&group) {
                    // SAFETY: `heap_pages` gives whole pages holding bytes of the group's buffers, which
                    // this task holds exclusively until it zero-fills them below.
                    let absent = unsafe { absent_runs(at, len) };
                    for (at, len) in absent {
                        // SAFETY: a part of the range above, so the same holds.
                        unsafe { populate_write(at, len) };
                    }
                }
                group.iter_mut().for_each(|b| b.zero_fill());
            }
        }
    }
}

/// The chunks of [`POPULATE_CHUNK`] bytes that cover each `(map, offset, len)` range's pages.
#[cfg(target_os = "linux")]
fn map_chunks<'m>(
    ranges: &[(&'m memmap2::MmapMut, usize, usize)],
) -> impl Iterator<Item = (&'m memmap2::MmapMut, usize, usize)> {
    ranges.iter().flat_map(|&(map, offset, len)| {
        let len = len.next_multiple_of(page()).min(map.len() - offset);
        (0..len.div_ceil(POPULATE_CHUNK)).map(move |i| {
            let start = i * POPULATE_CHUNK;
            (map, offset + start, POPULATE_CHUNK.min(len - start))
        })
    })
}

/// The unfilled buffers in address order, cut into groups of neighbours that each reach
/// [`POPULATE_CHUNK`] bytes (the last one may hold less).
#[cfg(target_os = "linux")]
fn heap_groups(mut bufs: Vec<&mut OutputBuf>) -> Vec<Vec<&mut OutputBuf>> {
    bufs.sort_unstable_by_key(|b| b.heap_span().map_or(0, |(start, _)| start));
    let mut groups: Vec<Vec<&mut OutputBuf>> = Vec::new();
    let mut bytes = POPULATE_CHUNK;
    for b in bufs {
        if bytes >= POPULATE_CHUNK {
            groups.push(Vec::new());
            bytes = 0;
        }
        bytes += b.len();
        groups.last_mut().expect("a group was pushed above").push(b);
    }
    groups
}

/// The whole pages of the unfilled buffers' allocations, as `(address, length)` ranges. Buffers less
/// than a page apart make one range: every page of it then holds bytes of at least one of them (a
/// page wholly in a gap would need a gap of a page), so it is memory the process has mapped; bytes of
/// it that other allocations hold are left as they are, since populating never writes a byte.
#[cfg(target_os = "linux")]
fn heap_pages(bufs: &[&mut OutputBuf]) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = bufs.iter().filter_map(|b| b.heap_span()).collect();
    spans.sort_unstable();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (start, end) in spans {
        match runs.last_mut() {
            Some(last) if start < last.1 + page() => last.1 = last.1.max(end),
            _ => runs.push((start, end)),
        }
    }
    runs.into_iter()
        .filter_map(|(start, end)| {
            let (first, last) = (start.next_multiple_of(page()), end / page() * page());
            (last > first).then_some((first, last - first))
        })
        .collect()
}

/// Runs of absent pages at most; more go as one range (one call over resident pages costs less than
/// many calls).
#[cfg(target_os = "linux")]
const MAX_ABSENT_RUNS: usize = 8;

/// The runs of pages not resident among the `len` bytes of whole pages from `at`, as `(address,
/// length)` ranges: allocator memory that was in use before is resident and needs no prefaulting,
/// and `mincore` finds it at a small fraction of the cost of populating it (80 MB: 0.02 against 2.5 ms
/// here, D52). The whole range if `mincore` fails or the absent pages are scattered.
///
/// # Safety
/// As [`populate_write`]: whole pages holding bytes of allocations the caller owns.
#[cfg(target_os = "linux")]
unsafe fn absent_runs(at: usize, len: usize) -> Vec<(usize, usize)> {
    let page = page();
    let mut resident = vec![0u8; len / page];
    // SAFETY: per this function's contract the range is whole, mapped pages; `mincore` reads their
    // page tables and writes one byte per page into `resident`, which has exactly that many.
    let status = unsafe { libc::mincore(at as *mut libc::c_void, len, resident.as_mut_ptr()) };
    if status != 0 {
        return vec![(at, len)];
    }
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, &r) in resident.iter().enumerate() {
        if r & 1 == 1 {
            continue;
        }
        let here = at + i * page;
        match runs.last_mut() {
            Some(last) if last.0 + last.1 == here => last.1 += page,
            _ => runs.push((here, page)),
        }
    }
    if runs.len() > MAX_ABSENT_RUNS { vec![(at, len)] } else { runs }
}

/// `madvise(MADV_POPULATE_WRITE)` over `len` bytes from `at`, its result ignored (a refusal changes
/// nothing: the pages then fault in at first touch).
///
/// # Safety
/// `at..at + len` must be whole pages that hold bytes of allocations the caller owns (so they are
/// mapped, and stay so for the call). Populating maps pages in as a write would but writes no byte and
/// changes no protection, so what else those pages hold, and any reference to it, is unaffected.
#[cfg(target_os = "linux")]
unsafe fn populate_write(at: usize, len: usize) {
    // SAFETY: per this function's contract; the call only reads the range's page tables and fills them.
    unsafe {
        libc::madvise(at as *mut libc::c_void, len, libc::MADV_POPULATE_WRITE);
    }
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

    /// Lengths on either side of the thresholds: allocator memory prefaulted or not, a mapping.
    const LENS: [usize; 9] = [
        0,
        100,
        HEAP_PREFAULT_MIN - 1,
        HEAP_PREFAULT_MIN,
        80_000,
        80_001,
        HUGE_PAGE,
        HUGE_PAGE * 2 + 4_097,
        (8 << 20) + 1,
    ];

    #[test]
    fn buffers_prefaulted_together_are_zeroed_and_writable() {
        let mut bufs: Vec<OutputBuf> = LENS.iter().map(|&len| OutputBuf::zeroed_unpopulated(len)).collect();
        for (b, &len) in bufs.iter().zip(&LENS) {
            assert_eq!(b.len(), len, "known before the pass");
        }
        populate_together(bufs.iter_mut());
        // Twice, and with nothing: harmless.
        populate_together(bufs.iter_mut());
        populate_together(std::iter::empty());
        for (b, &len) in bufs.iter_mut().zip(&LENS) {
            assert_eq!(b.len(), len);
            assert!(matches!(b.0, Inner::Heap(_) | Inner::Mapped(_) | Inner::Empty), "filled by the pass");
            assert!(b.as_slice().iter().all(|&x| x == 0));
            if len > 0 {
                assert_eq!(b.as_slice().as_ptr() as usize % 16, 0);
            }
            if OutputBuf::own_mapping(len) {
                assert!(matches!(b.0, Inner::Mapped(_)));
            }
            b.as_mut_slice().iter_mut().step_by(4096).for_each(|x| *x = 1);
            assert_eq!(b.as_slice().iter().filter(|&&x| x == 1).count(), len.div_ceil(4096));
        }
    }

    #[test]
    fn allocator_memory_written_before_reads_as_zero() {
        // Memory the allocator hands out again after it held other bytes: never seen through a
        // buffer, whether the pass fills it or an access before it does.
        for len in LENS {
            for through_pass in [true, false] {
                drop(std::hint::black_box(vec![0xA5u8; len]));
                let mut b = OutputBuf::zeroed_unpopulated(len);
                if through_pass {
                    populate_together(std::iter::once(&mut b));
                    assert!(b.as_slice().iter().all(|&x| x == 0), "{len} bytes, filled by the pass");
                } else {
                    let buffer = b.into_buffer();
                    assert_eq!(buffer.len(), len);
                    assert!(buffer.as_slice().iter().all(|&x| x == 0), "{len} bytes, filled on the way out");
                }
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn neighbouring_buffers_are_prefaulted_as_few_ranges_of_their_own_pages() {
        let pg = page();
        if huge_pages::policy() == Policy::Allocator {
            return; // no buffer is left unfilled
        }
        let mut bufs: Vec<OutputBuf> = (0..64).map(|_| OutputBuf::zeroed_unpopulated(8_000)).collect();
        let spans: Vec<(usize, usize)> = bufs.iter().map(|b| b.heap_span().expect("unfilled")).collect();
        let refs: Vec<&mut OutputBuf> = bufs.iter_mut().collect();
        let ranges = heap_pages(&refs);
        assert!(!ranges.is_empty() && ranges.len() <= spans.len());
        for &(at, len) in &ranges {
            assert_eq!((at % pg, len % pg), (0, 0));
            for page in (at..at + len).step_by(pg) {
                let holds_a_buffer = spans.iter().any(|&(start, end)| start < page + pg && page < end);
                assert!(holds_a_buffer, "page {page:#x} holds no buffer's bytes");
            }
        }
        // Every whole page of every buffer is covered.
        for &(start, end) in &spans {
            for page in (start.next_multiple_of(pg)..end / pg * pg).step_by(pg) {
                assert!(ranges.iter().any(|&(at, len)| at <= page && page < at + len));
            }
        }
        // Groups of neighbours: each but the last reaches a chunk, and none is left out.
        let groups = heap_groups(refs_of(&mut bufs));
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 64);
    }

    #[cfg(target_os = "linux")]
    fn refs_of(bufs: &mut [OutputBuf]) -> Vec<&mut OutputBuf> {
        bufs.iter_mut().collect()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_pages_not_resident_are_prefaulted() {
        let pg = page();
        let mut map = memmap2::MmapMut::map_anon(16 * pg).expect("map");
        let at = map.as_ptr() as usize;
        for page in [0, 5, 6, 7] {
            map[page * pg] = 1;
        }
        // SAFETY: whole pages of a mapping this test owns.
        let runs = unsafe { absent_runs(at, 16 * pg) };
        assert_eq!(runs, vec![(at + pg, 4 * pg), (at + 8 * pg, 8 * pg)]);
        // Absent pages scattered in more runs than MAX_ABSENT_RUNS: one call over the whole range.
        let mut scattered = memmap2::MmapMut::map_anon(32 * pg).expect("map");
        for page in (0..32).step_by(2) {
            scattered[page * pg] = 1;
        }
        let s_at = scattered.as_ptr() as usize;
        // SAFETY: as above.
        assert_eq!(unsafe { absent_runs(s_at, 32 * pg) }, vec![(s_at, 32 * pg)]);
        // All resident: nothing to do.
        map.iter_mut().step_by(pg).for_each(|x| *x = 1);
        // SAFETY: as above.
        assert!(unsafe { absent_runs(at, 16 * pg) }.is_empty());
    }

    #[test]
    fn taken_buffers_are_empty() {
        let mut b = OutputBuf::zeroed(4);
        let taken = std::mem::take(&mut b);
        assert_eq!((b.len(), taken.len()), (0, 4));
        assert_eq!(b.into_buffer().len(), 0);
    }
}
