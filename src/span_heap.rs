//! A page-span heap in the manner of Go's MHeap: spans of whole pages carved from large anonymous
//! mappings (arenas), coalesced with their free neighbours when freed, and zeroed on request only
//! when they may hold old data, outside the heap's lock.
//!
//! Go 1.0's `MHeap_Alloc` cleared a span while it held the heap lock, so one goroutine zeroing a
//! large span stalled every other allocation; later Go (1.3's `needzero`) tracked which spans were
//! dirty and zeroed after unlocking. This heap does the latter, with per-page precision:
//!
//! * each arena keeps one *dirty* bit per page: 0 while the page still holds the zeros the OS
//!   mapped it with, 1 once it has been part of a freed span (whose owner may have written to
//!   it). A bit describes a free page; while a page is in use its bit is not consulted.
//! * `alloc(n, true)` takes the lock only to carve the span; after unlocking it clears exactly the
//!   dirty pages' runs with [`memclr`](crate::memclr), a word of 64 pages' bits at a time (nothing
//!   at all for a span whose bits are all clear), so a dirty span that coalesced with clean
//!   pages never has the clean ones zeroed.
//!
//! Which pages are free is a bitmap too, as in Go's page allocator (src/span_heap/free_map.rs):
//! a span is carved from the lowest run of free pages that is long enough, and freeing it sets
//! its bits, which coalesces it with its free neighbours at no cost. Allocating and freeing a
//! page touches a word or two under the lock, and no allocation of the heap's own.

use crate::error::Error;
use crate::fork::{self, ForkLock};
use crate::memclr::{cold_after, memclr_cold_raw, memclr_raw, COLD_NON_TEMPORAL_FROM};
use free_map::{for_each_word, ArenaFits, FreeMap};
use memmap2::{Advice, MmapMut, MmapOptions};
use page_cache::{Slot, CACHE_MAX_PAGES};
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

mod free_map;
mod page_cache;

/// Bytes in a fresh arena: the unit the heap maps memory in. Address space only: pages are
/// touched (and so backed by RAM) when a span's owner writes to them. Large enough that a 64 MiB
/// span and many small ones share one arena; a request larger than this gets an arena of its own,
/// exactly its size. 64 MiB on 32-bit targets, where 256 MiB would be a sixteenth of the address
/// space.
pub(crate) const ARENA_SIZE: usize =
    if cfg!(target_pointer_width = "64") { 256 << 20 } else { 64 << 20 };

/// Counter that gives each heap an identity, so that arenas need not be compared by address.
static NEXT_HEAP_ID: AtomicUsize = AtomicUsize::new(1);

/// A heap of page spans, safe to share between threads (`Send + Sync`; one mutex inside, and a
/// page cache per thread for spans of up to 16 pages, Go's per-P page cache: such a span is
/// allocated and freed without the lock).
///
/// Memory comes from the OS in arenas of 256 MiB (or one arena of exactly the request's size when
/// a request is larger) and is never returned to the OS while the heap or any of its spans lives:
/// freed spans go back to the heap's free pages and coalesce with their free neighbours. Dropping
/// the heap while spans are outstanding is allowed: the arenas are unmapped when the heap and the
/// last span are both gone.
///
/// ```
/// use splitstack::SpanHeap;
/// let heap = SpanHeap::new();
/// let mut span = heap.alloc(2, true).unwrap();
/// assert_eq!(span.len(), 2 * SpanHeap::PAGE_SIZE);
/// assert!(span.as_mut_slice().iter().all(|&b| b == 0));
/// span.as_mut_slice()[0] = 7; // dirty: the next zeroed allocation of this page clears it
/// heap.free(span);
/// let mut again = heap.alloc(2, true).unwrap();
/// assert_eq!(again.as_mut_slice()[0], 0);
/// println!("{:?}", heap.stats());
/// ```
pub struct SpanHeap {
    shared: Arc<Shared>,
}

/// Counters of a [`SpanHeap`], read together under its lock. The zeroing counters are updated
/// outside it, and each thread's page cache (which serves spans of up to 16 pages without the
/// lock) counts what it does in a slot of its own that this adds up, so those may lag an
/// operation still in flight on another thread. A page a thread's cache holds free counts as
/// free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Arenas (anonymous mappings) the heap holds.
    pub arenas: usize,
    /// Bytes in all arenas: `(pages_in_use + pages_free) * SpanHeap::PAGE_SIZE`.
    pub bytes_mapped: usize,
    /// Pages in spans handed out and not yet freed (or dropped).
    pub pages_in_use: usize,
    /// Pages free in the arenas.
    pub pages_free: usize,
    /// Successful `alloc` calls.
    pub allocs: u64,
    /// Spans returned, by `free` or by dropping them.
    pub frees: u64,
    /// Bytes `alloc(_, true)` cleared because they had been used before.
    pub bytes_zeroed: u64,
    /// Bytes `alloc(_, true)` handed out without clearing because they were known to be zero.
    pub bytes_zeroing_skipped: u64,
    /// Of `bytes_zeroed`, those cleared as cold memory (freed long enough ago, in bytes the heap
    /// handed out since, to have left the caches): with stores that do not read a line first.
    pub bytes_zeroed_cold: u64,
}

/// A run of whole pages handed out by a [`SpanHeap`], owned exclusively until it is freed.
///
/// Dropping a span returns its pages to its heap, exactly as [`SpanHeap::free`] does (its heap's
/// bookkeeping lives as long as any of its spans, so this is sound after the heap value itself
/// is gone). The pages are marked dirty either way: a later zeroed allocation clears them.
pub struct Span {
    ptr: NonNull<u8>,
    npages: usize,
    /// Index of `ptr`'s page in its arena.
    first_page: usize,
    /// Index of its arena in `Inner::arenas`.
    arena_index: usize,
    /// Its arena, which lives as long as the heap's shared part: `heap` keeps it alive.
    arena: NonNull<Arena>,
    heap: Arc<Shared>,
}

// SAFETY: a Span is the only handle to its pages (the heap never hands them out again until the
// span is returned), so moving it to another thread or sharing `&Span` (which gives only `len`
// and `npages`) cannot race; its heap is Send + Sync, and its arena, which it reaches only for
// the atomic dirty bits, is Sync.
unsafe impl Send for Span {}
// SAFETY: as above: `&Span` exposes no access to the pages.
unsafe impl Sync for Span {}

/// One anonymous mapping and the dirty bit of each of its pages.
struct Arena {
    /// The mapping, unmapped when the arena drops, with the heap's shared part (after the heap
    /// and its last Span: each holds an Arc to that part).
    _map: MmapMut,
    /// First byte of the mapping, as an address.
    base: usize,
    npages: usize,
    /// Bit `p % 64` of word `p / 64`: page `p` may hold nonzero bytes. Atomic because a span's
    /// owner reads its own pages' bits after unlocking while others update neighbouring bits in
    /// the same word (under the lock or, when freeing, before taking it).
    dirty: Box<[AtomicU64]>,
    /// Per word of `dirty` (64 pages): the heap's `handed` count when a page in it was last
    /// freed, from which a zeroed allocation guesses whether a dirty page is still cached.
    freed_at: Box<[AtomicU64]>,
}

impl Arena {
    /// Map an arena of `npages` pages, all clean (anonymous memory reads as zero). With
    /// `for_stacks`, the arena is mapped as stack memory and kept out of transparent huge pages:
    /// its spans are small stacks whose guards split it into small mappings anyway, and a huge
    /// page faulted in under one stack's first touch would make megabytes resident for it. Stack
    /// arenas are also mapped without a commit charge (`MAP_NORESERVE`): most of a stack's
    /// address space (its guard, and the depth it never reaches) is never touched.
    fn map(npages: usize, for_stacks: bool) -> Result<Arena, Error> {
        let len = npages * SpanHeap::PAGE_SIZE;
        let mut options = MmapOptions::new();
        options.len(len);
        if for_stacks {
            options.stack().no_reserve_swap();
        }
        let mut map = options
            .map_anon()
            .map_err(|err| Error::os(format!("mapping a span heap arena of {len} bytes"), err))?;
        if for_stacks {
            // A failure (no THP support) is harmless.
            let _ = map.advise(Advice::NoHugePage);
        }
        let base = map.as_mut_ptr() as usize;
        let dirty = (0..npages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        let freed_at = (0..npages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        Ok(Arena { _map: map, base, npages, dirty, freed_at })
    }

    /// Set the dirty bits of pages `[first, first + n)`.
    #[inline(always)] // as `Inner::release`
    fn mark_dirty(&self, first: usize, n: usize) {
        for_each_word(first, n, |word, mask| {
            self.dirty[word].fetch_or(mask, Ordering::Relaxed);
        });
    }

    /// Records that pages `[first, first + n)` are freed when the heap has handed out `handed`
    /// bytes.
    #[inline(always)]
    fn stamp_freed(&self, first: usize, n: usize, handed: u64) {
        for_each_word(first, n, |word, _| self.freed_at[word].store(handed, Ordering::Relaxed));
    }

    /// The `handed` count when the last of pages `[first, first + n)` was freed, as far as the
    /// stamps (one per 64 pages) say.
    fn last_freed(&self, first: usize, n: usize) -> u64 {
        let mut last = 0;
        for_each_word(first, n, |word, _| {
            last = last.max(self.freed_at[word].load(Ordering::Relaxed))
        });
        last
    }

    /// Clear the dirty bits of pages `[first, first + n)`, which read as zero again.
    fn mark_clean(&self, first: usize, n: usize) {
        for_each_word(first, n, |word, mask| {
            self.dirty[word].fetch_and(!mask, Ordering::Relaxed);
        });
    }

    /// Call `clear(first, n)` for each maximal run of dirty pages in `[first, first + n)`, in
    /// address order, a word of bits at a time.
    fn dirty_runs(&self, first: usize, n: usize, mut clear: impl FnMut(usize, usize)) {
        let mut run: Option<(usize, usize)> = None; // (start, len) of the run being extended
        for_each_word(first, n, |word, mask| {
            let mut bits = self.dirty[word].load(Ordering::Relaxed) & mask;
            let mut bit = mask.trailing_zeros(); // the first bit in range not yet looked at
            let end = 64 - mask.leading_zeros(); // one past the last bit in range
            while bit < end {
                let dirty = (bits >> bit).trailing_ones().min(end - bit);
                if dirty > 0 {
                    let page = word * 64 + bit as usize;
                    run = match run {
                        Some((start, len)) if start + len == page => {
                            Some((start, len + dirty as usize))
                        }
                        Some((start, len)) => {
                            clear(start, len);
                            Some((page, dirty as usize))
                        }
                        None => Some((page, dirty as usize)),
                    };
                    bit += dirty;
                    bits &= !(u64::MAX >> (64 - bit)); // the bits looked at, cleared
                } else if bits == 0 {
                    break;
                } else {
                    bit = bits.trailing_zeros();
                }
            }
        });
        if let Some((start, len)) = run {
            clear(start, len);
        }
    }
}

/// What a heap and its spans share: the locked free-page maps and the lock-free counters.
struct Shared {
    id: usize,
    inner: Mutex<Inner>,
    /// Bench-only: zero while holding the lock, as Go 1.0 did.
    zero_under_lock: AtomicBool,
    /// Map arenas for stacks (see [`Arena::map`]).
    for_stacks: bool,
    bytes_zeroed: AtomicU64,
    bytes_zeroing_skipped: AtomicU64,
    bytes_zeroed_cold: AtomicU64,
    /// Bytes handed out under the lock (spans carved, chunks given to page caches): the clock by
    /// which a freed page's age is told. Written under the lock, read anywhere.
    handed: AtomicU64,
    /// Whether zeroing may take memory freed long ago to be cold (on unless a bench turns it
    /// off to compare).
    temperature_hint: AtomicBool,
}

/// The heap's state under its lock.
#[derive(Default)]
struct Inner {
    /// Every arena, in mapping order; a span names its arena by index here, and points to it
    /// (a box, so that it does not move when the vector grows).
    #[allow(clippy::vec_box)]
    // the boxes keep each arena in place for the spans that point to it
    arenas: Vec<Box<Arena>>,
    /// Each arena's free pages, at the arena's index.
    free: Vec<FreeMap>,
    /// An upper bound of each arena's longest free run, to skip arenas that cannot hold a
    /// request.
    fits: ArenaFits,
    /// Arena indexes by base address, to find the arena of a span returned by address
    /// ([`SpanHeap::free_raw`]).
    arena_by_base: BTreeMap<usize, usize>,
    /// The page caches of the threads that hold a chunk of this heap (src/span_heap/page_cache.rs).
    slots: Vec<Arc<Slot>>,
    /// Pages not free in the bitmaps: in spans, or in a thread's page cache.
    pages_in_use: usize,
    pages_free: usize,
    bytes_mapped: usize,
    allocs: u64,
    frees: u64,
}

impl Inner {
    /// Take the lowest run of `npages` free pages, in the lowest arena that has one, if one
    /// does. Returns the run's address and its arena's index.
    #[inline(always)] // one caller; keeps the one-page path free of calls
    fn carve(&mut self, npages: usize) -> Option<(usize, usize)> {
        loop {
            let index = self.fits.first_at_least(npages)?;
            match self.free[index].find(npages) {
                Some(first) => {
                    self.free[index].take(first, npages);
                    self.pages_free -= npages;
                    self.pages_in_use += npages;
                    self.allocs += 1;
                    return Some((self.arenas[index].base + first * SpanHeap::PAGE_SIZE, index));
                }
                // Its longest run is shorter than `npages`.
                None => self.fits.set(index, npages - 1),
            }
        }
    }

    /// For a thread's page cache: takes the free pages of the chunk of 64 pages (one bitmap
    /// word) that holds the lowest run of `npages` free pages, if such a run lies inside one
    /// chunk; returns the arena's index, the word and its bits.
    fn take_chunk(&mut self, npages: usize) -> Option<(usize, usize, u64)> {
        loop {
            let Some(index) = self.fits.first_at_least(npages) else {
                self.grow(npages, false).ok()?;
                continue;
            };
            let Some(first) = self.free[index].find(npages) else {
                self.fits.set(index, npages - 1);
                continue;
            };
            if first % 64 + npages > 64 {
                return None; // the run crosses chunks: carved from the bitmap instead
            }
            let bits = self.free[index].take_word(first / 64);
            let taken = bits.count_ones() as usize;
            self.pages_free -= taken;
            self.pages_in_use += taken;
            return Some((index, first / 64, bits));
        }
    }

    /// A thread's page cache gives back the free pages `bits` of word `word` of arena `arena`.
    /// `handed` is the heap's clock now, the pages' free time from here on (a page cache does
    /// not tell when it took each back).
    fn give_chunk(&mut self, arena: usize, word: usize, bits: u64, handed: u64) {
        self.arenas[arena].stamp_freed(word * 64, 64, handed);
        let free = &mut self.free[arena];
        free.give_word(word, bits);
        let free_pages = free.free_pages();
        if self.fits.get(arena) < free_pages {
            self.fits.set(arena, free_pages);
        }
        let given = bits.count_ones() as usize;
        self.pages_in_use -= given;
        self.pages_free += given;
    }

    /// Map an arena that can hold `npages`, all of it free.
    #[cold]
    fn grow(&mut self, npages: usize, for_stacks: bool) -> Result<(), Error> {
        let arena_pages = npages.max(ARENA_SIZE / SpanHeap::PAGE_SIZE);
        let arena = Arena::map(arena_pages, for_stacks)?;
        let index = self.arenas.len();
        self.arena_by_base.insert(arena.base, index);
        self.arenas.push(Box::new(arena));
        self.free.push(FreeMap::all_free(arena_pages));
        self.fits.push(index, arena_pages);
        self.pages_free += arena_pages;
        self.bytes_mapped += arena_pages * SpanHeap::PAGE_SIZE;
        Ok(())
    }

    /// Put the span of `npages` pages at `addr` in arena `arena` back: its pages are free again,
    /// and so part of the free runs around them.
    #[inline(always)] // Span::drop and free_raw each take a copy: no extra call on the drop path
    fn release(&mut self, addr: usize, npages: usize, arena: usize) {
        let first = (addr - self.arenas[arena].base) / SpanHeap::PAGE_SIZE;
        let free = &mut self.free[arena];
        free.give(first, npages);
        let free_pages = free.free_pages();
        if self.fits.get(arena) < free_pages {
            self.fits.set(arena, free_pages);
        }
        self.pages_in_use -= npages;
        self.pages_free += npages;
        self.frees += 1;
    }

    /// The index of the arena that holds the page at `addr`.
    fn arena_of(&self, addr: usize) -> usize {
        let (&base, &index) = self
            .arena_by_base
            .range(..=addr)
            .next_back()
            .expect("span heap: address below every arena");
        let arena = &self.arenas[index];
        assert!(addr - base < arena.npages * SpanHeap::PAGE_SIZE, "span heap: address in no arena");
        index
    }
}

impl SpanHeap {
    /// Bytes in a heap page, the unit of every span: 8 KiB, Go's `PageSize`. Independent of the
    /// OS page (4 KiB on x86-64; 4, 16 or 64 KiB on AArch64): spans are multiples of it and
    /// aligned to the OS page only where the OS page is at most 8 KiB.
    pub const PAGE_SIZE: usize = 8192;

    /// An empty heap; it maps its first arena on its first allocation.
    pub fn new() -> SpanHeap {
        SpanHeap::with_arenas_for_stacks(false)
    }

    /// An empty heap whose arenas are mapped as stack memory, without transparent huge pages:
    /// the process-wide heap [`Stack`](crate::Stack)s come from.
    pub(crate) fn for_stacks() -> SpanHeap {
        SpanHeap::with_arenas_for_stacks(true)
    }

    fn with_arenas_for_stacks(for_stacks: bool) -> SpanHeap {
        let shared = Arc::new(Shared {
            id: NEXT_HEAP_ID.fetch_add(1, Ordering::Relaxed),
            inner: Mutex::new(Inner::default()),
            zero_under_lock: AtomicBool::new(false),
            for_stacks,
            bytes_zeroed: AtomicU64::new(0),
            bytes_zeroing_skipped: AtomicU64::new(0),
            bytes_zeroed_cold: AtomicU64::new(0),
            handed: AtomicU64::new(0),
            temperature_hint: AtomicBool::new(true),
        });
        let weak: Weak<dyn ForkLock> = Arc::downgrade(&shared) as Weak<Shared>;
        fork::register(weak);
        SpanHeap { shared }
    }

    /// A span of `npages` pages (`npages * PAGE_SIZE` bytes): Go's `MHeap_Alloc(npage, zeroed)`.
    /// With `zeroed`, every byte is zero:
    /// pages that have never been handed out are zero already, and only pages that were used and
    /// freed are cleared, after the heap's lock is released. Without `zeroed`, the contents are
    /// whatever the pages last held.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSize`](crate::ErrorKind::InvalidSize) for 0 pages or a size that
    /// overflows `isize`; [`ErrorKind::OutOfMemory`](crate::ErrorKind::OutOfMemory) (or
    /// [`MapCountLimit`](crate::ErrorKind::MapCountLimit)) when the OS refuses a new arena. The
    /// heap is unchanged by a failed call.
    pub fn alloc(&self, npages: usize, zeroed: bool) -> Result<Span, Error> {
        self.alloc_zeroed_from(npages, zeroed.then_some(0))
    }

    /// [`alloc`](SpanHeap::alloc), zeroing (when `zero_from` is `Some(offset)`) only the bytes
    /// from `offset` to the span's end: an owner that never reads below `offset` (a stack's guard)
    /// does not have those pages cleared, and so not faulted in.
    #[inline(always)] // shared by `alloc` and `alloc_raw`, each with a copy and no extra call
    fn alloc_zeroed_from(&self, npages: usize, zero_from: Option<usize>) -> Result<Span, Error> {
        // 1 to CACHE_MAX_PAGES pages, from a heap that caches: this thread's page cache first.
        if npages.wrapping_sub(1) < CACHE_MAX_PAGES && !self.shared.for_stacks {
            if let Some(carved) = page_cache::alloc(&self.shared, npages) {
                return Ok(self.span(carved, npages, npages * Self::PAGE_SIZE, zero_from, false));
            }
        }
        self.alloc_locked(npages, zero_from)
    }

    /// [`alloc_zeroed_from`](SpanHeap::alloc_zeroed_from) past this thread's page cache: checks
    /// the size, refills the cache or carves from the bitmap, under the lock.
    #[inline(never)]
    fn alloc_locked(&self, npages: usize, zero_from: Option<usize>) -> Result<Span, Error> {
        if npages == 0 {
            return Err(Error::invalid_size("a span of 0 pages was requested"));
        }
        let len = npages
            .checked_mul(Self::PAGE_SIZE)
            .filter(|&len| len <= isize::MAX as usize)
            .ok_or_else(|| {
                Error::invalid_size(format!(
                    "a span of {npages} pages of {} bytes overflows the address space",
                    Self::PAGE_SIZE
                ))
            })?;
        let cached = npages <= CACHE_MAX_PAGES && !self.shared.for_stacks;
        if cached {
            page_cache::flush_other(&self.shared);
        }
        let mut inner = self.lock();
        if cached && page_cache::refill(&self.shared, &mut inner, npages) {
            self.hand_out(64 * Self::PAGE_SIZE);
            if let Some(carved) = page_cache::alloc(&self.shared, npages) {
                drop(inner);
                return Ok(self.span(carved, npages, len, zero_from, false));
            }
        }
        let (addr, arena_index) = match inner.carve(npages) {
            Some(carved) => carved,
            None => {
                // Before mapping more: this thread's cached chunk may complete a run.
                page_cache::flush_own(&self.shared, &mut inner);
                match inner.carve(npages) {
                    Some(carved) => carved,
                    None => {
                        inner.grow(npages, self.shared.for_stacks)?;
                        inner.carve(npages).expect("span heap: a new arena holds the request")
                    }
                }
            }
        };
        self.hand_out(len);
        let arena = &*inner.arenas[arena_index];
        let carved =
            (addr, NonNull::from(arena), arena_index, (addr - arena.base) / Self::PAGE_SIZE);
        if zero_from.is_some() && self.shared.zero_under_lock.load(Ordering::Relaxed) {
            let span = self.span(carved, npages, len, zero_from, true);
            drop(inner); // after clearing, for the bench that measures clearing under the lock
            return Ok(span);
        }
        drop(inner); // clear with the lock released
        Ok(self.span(carved, npages, len, zero_from, true))
    }

    /// The span of `npages` pages (`len` bytes) carved at `carved`, cleared from byte
    /// `zero_from` if that is `Some`; as cold memory where its pages were freed long ago, if
    /// `may_be_cold` (a span from this thread's page cache was freed into it by this thread,
    /// recently: always cleared through the cache).
    #[inline(always)]
    fn span(
        &self,
        (addr, arena, arena_index, first_page): page_cache::Carved,
        npages: usize,
        len: usize,
        zero_from: Option<usize>,
        may_be_cold: bool,
    ) -> Span {
        let mut span = Span {
            // SAFETY: addr is inside a live mapping, so it is not null.
            ptr: unsafe { NonNull::new_unchecked(addr as *mut u8) },
            npages,
            first_page,
            arena_index,
            arena,
            heap: Arc::clone(&self.shared),
        };
        if let Some(from) = zero_from {
            span.clear_dirty_pages(from.min(len), len, may_be_cold);
        }
        span
    }

    /// For owners too small to hold a [`Span`] (a [`Stack`](crate::Stack) is three words): a
    /// span of `npages` pages as its address alone, zeroed from byte `zero_from` to its end when
    /// that is `Some` (see `alloc_zeroed_from`). Give it back with
    /// [`free_raw`](SpanHeap::free_raw) on this heap; until then the heap counts it in use.
    pub(crate) fn alloc_raw(
        &self,
        npages: usize,
        zero_from: Option<usize>,
    ) -> Result<usize, Error> {
        let span = self.alloc_zeroed_from(npages, zero_from)?;
        let addr = span.as_ptr() as usize;
        // The span's pages stay handed out; its reference to the heap is dropped (the heap value
        // that `free_raw` is called on keeps it alive).
        let span = std::mem::ManuallyDrop::new(span);
        // SAFETY: the Arc is read out of the ManuallyDrop exactly once and dropped; the span
        // itself is never dropped, so its pages are not released.
        unsafe { drop(std::ptr::read(&span.heap)) };
        Ok(addr)
    }

    /// Return a span that [`alloc_raw`](SpanHeap::alloc_raw) handed out, by its address and
    /// size: marked dirty, as dropping a [`Span`] does, or clean when `zero` says that every
    /// byte of it reads as zero (its pages were given back to the OS with `MADV_DONTNEED`).
    ///
    /// # Safety
    /// `addr` and `npages` are those of a span `alloc_raw` on this heap returned and that was not
    /// freed since; its pages are readable and writable again, and nothing uses them any more.
    pub(crate) unsafe fn free_raw(&self, addr: usize, npages: usize, zero: bool) {
        let mut inner = self.lock();
        let index = inner.arena_of(addr);
        let arena = &inner.arenas[index];
        let first = (addr - arena.base) / Self::PAGE_SIZE;
        if zero {
            arena.mark_clean(first, npages);
        } else {
            arena.mark_dirty(first, npages);
            arena.stamp_freed(first, npages, self.shared.handed.load(Ordering::Relaxed));
        }
        inner.release(addr, npages, index);
    }

    /// Counts `bytes` that an owner of raw spans cleared itself (a recycled stack's, for
    /// [`Stack::new_zeroed`](crate::Stack::new_zeroed)) in [`HeapStats::bytes_zeroed`], and
    /// `skipped` bytes it knew to be zero in [`HeapStats::bytes_zeroing_skipped`].
    pub(crate) fn count_zeroed(&self, bytes: usize, skipped: usize) {
        self.shared.bytes_zeroed.fetch_add(bytes as u64, Ordering::Relaxed);
        self.shared.bytes_zeroing_skipped.fetch_add(skipped as u64, Ordering::Relaxed);
    }

    /// Return `span`'s pages to the heap it came from (normally this one; a span always goes
    /// back to its own heap), marked dirty, coalescing them with free neighbours. The same as
    /// dropping the span.
    pub fn free(&self, span: Span) {
        debug_assert_eq!(span.heap.id, self.shared.id, "span freed to a heap it is not from");
        drop(span);
    }

    /// The heap's counters, read together.
    pub fn stats(&self) -> HeapStats {
        let inner = self.lock();
        let (mut allocs, mut frees, mut cached) = (inner.allocs, inner.frees, 0);
        for slot in &inner.slots {
            let (a, f, c) = slot.counts();
            (allocs, frees, cached) = (allocs + a, frees + f, cached + c);
        }
        HeapStats {
            arenas: inner.arenas.len(),
            bytes_mapped: inner.bytes_mapped,
            pages_in_use: inner.pages_in_use - cached,
            pages_free: inner.pages_free + cached,
            allocs,
            frees,
            bytes_zeroed: self.shared.bytes_zeroed.load(Ordering::Relaxed),
            bytes_zeroing_skipped: self.shared.bytes_zeroing_skipped.load(Ordering::Relaxed),
            bytes_zeroed_cold: self.shared.bytes_zeroed_cold.load(Ordering::Relaxed),
        }
    }

    /// Benchmarks only: zero spans while holding the heap lock (Go 1.0's behaviour) instead of
    /// after releasing it, to measure what that costs other threads.
    #[doc(hidden)]
    pub fn set_zero_under_lock(&self, on: bool) {
        self.shared.zero_under_lock.store(on, Ordering::Relaxed);
    }

    /// Benchmarks only: whether a zeroed allocation may clear memory freed long ago as cold
    /// (on by default), to measure what the guess gains.
    #[doc(hidden)]
    pub fn set_temperature_hint(&self, on: bool) {
        self.shared.temperature_hint.store(on, Ordering::Relaxed);
    }

    /// Tests only: the bytes a heap hands out after freeing memory before it takes that memory
    /// to be cold; `None` where cold memory is cleared no differently.
    #[doc(hidden)]
    pub fn cold_after_bytes() -> Option<usize> {
        Some(cold_after()).filter(|&after| after != usize::MAX)
    }

    /// Advances the clock of freed pages' age by `bytes` handed out; under the lock.
    #[inline(always)]
    fn hand_out(&self, bytes: usize) {
        let handed = &self.shared.handed;
        handed.store(handed.load(Ordering::Relaxed) + bytes as u64, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.lock()
    }
}

impl ForkLock for Shared {
    fn hold(self: Arc<Self>) -> Box<dyn Any> {
        let inner: *const Mutex<Inner> = &self.inner;
        // SAFETY: `self` is the Arc that owns the mutex.
        unsafe { fork::hold(&*inner, self) }
    }
}

impl Shared {
    /// The heap lock. A panic while holding it (only an allocation failure in a collection could
    /// cause one) leaves the lists consistent between operations, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for SpanHeap {
    /// This thread's page cache goes back now, so that a heap dropped after its last span
    /// unmaps its arenas at once. Other threads hold no reference to the heap in their caches;
    /// theirs go with the heap's shared part.
    fn drop(&mut self) {
        let mut inner = self.lock();
        page_cache::flush_own(&self.shared, &mut inner);
    }
}

impl Default for SpanHeap {
    fn default() -> SpanHeap {
        SpanHeap::new()
    }
}

impl fmt::Debug for SpanHeap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanHeap").field("stats", &self.stats()).finish()
    }
}

impl Span {
    /// The span's bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the span exclusively owns len() bytes from ptr, mapped read-write, for as long
        // as it lives (it holds its arena); &mut self makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len()) }
    }

    /// The span's first byte.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Bytes in the span: `npages() * SpanHeap::PAGE_SIZE`.
    #[allow(clippy::len_without_is_empty)] // a span is never empty
    pub fn len(&self) -> usize {
        self.npages * SpanHeap::PAGE_SIZE
    }

    /// Pages in the span.
    pub fn npages(&self) -> usize {
        self.npages
    }

    /// The arena the span lies in.
    fn arena(&self) -> &Arena {
        // SAFETY: the arena is boxed in the heap's shared part, which `self.heap` keeps alive, and
        // is never removed from it.
        unsafe { self.arena.as_ref() }
    }

    /// Clear the dirty pages' bytes from offset `from` to `len` (the span's length), and count
    /// what was cleared and what was skipped.
    fn clear_dirty_pages(&mut self, from: usize, len: usize, may_be_cold: bool) {
        let (mut cleared, mut cleared_cold) = (0, 0);
        let base = self.ptr.as_ptr();
        let first = self.first_page;
        let arena = self.arena();
        let shared = &self.heap;
        let hint = may_be_cold && shared.temperature_hint.load(Ordering::Relaxed);
        arena.dirty_runs(first, self.npages, |start, n| {
            let run_start = ((start - first) * SpanHeap::PAGE_SIZE).max(from);
            let run_end = (start - first + n) * SpanHeap::PAGE_SIZE;
            if run_start >= run_end {
                return;
            }
            let len = run_end - run_start;
            // Cold: large enough for the cold path to pay, and more bytes handed out since the
            // run's newest page was freed than this thread's share of the cache holds.
            let cold = hint
                && len >= COLD_NON_TEMPORAL_FROM
                && shared.handed.load(Ordering::Relaxed).saturating_sub(arena.last_freed(start, n))
                    >= cold_after() as u64;
            // SAFETY: [run_start, run_end) is inside this span, which owns it.
            unsafe {
                if cold {
                    memclr_cold_raw(base.add(run_start), len);
                    cleared_cold += len;
                } else {
                    memclr_raw(base.add(run_start), len);
                }
            }
            cleared += len;
        });
        shared.bytes_zeroed.fetch_add(cleared as u64, Ordering::Relaxed);
        if cleared_cold != 0 {
            shared.bytes_zeroed_cold.fetch_add(cleared_cold as u64, Ordering::Relaxed);
        }
        shared.bytes_zeroing_skipped.fetch_add((len - from - cleared) as u64, Ordering::Relaxed);
    }
}

impl Drop for Span {
    // The dirty bits are set first, outside the lock: the pages are still only ours, and the
    // lock's release and acquire (or, for a span the thread's page cache takes back, the
    // thread's own program order) put these bits before whoever allocates the pages next reads
    // them.
    #[inline]
    fn drop(&mut self) {
        if self.npages <= 64 {
            // Below PROBE_FROM: the pages are taken to be written.
            self.arena().mark_dirty(self.first_page, self.npages);
            // A span the page cache could serve goes back to it when it lies in its chunk.
            if self.npages > CACHE_MAX_PAGES
                || !page_cache::free(&self.heap, self.arena_index, self.first_page, self.npages)
            {
                self.release();
            }
        } else {
            self.mark_large();
            self.release();
        }
    }
}

impl Span {
    /// Sets the dirty bits of a large span's pages: those the kernel says are resident, or
    /// all of them if it cannot say.
    #[inline(never)]
    fn mark_large(&self) {
        let len = self.npages * SpanHeap::PAGE_SIZE;
        let probed = len >= PROBE_FROM
            && probe_resident(self.ptr.as_ptr() as usize, self.npages, |first, n, resident| {
                if resident {
                    self.arena().mark_dirty(self.first_page + first, n);
                } else {
                    self.arena().mark_clean(self.first_page + first, n);
                }
            });
        if !probed {
            self.arena().mark_dirty(self.first_page, self.npages);
        }
    }

    /// Puts the span's pages back into its heap's bitmap, under the lock.
    #[inline(never)]
    fn release(&self) {
        let mut inner = self.heap.lock();
        let handed = self.heap.handed.load(Ordering::Relaxed);
        self.arena().stamp_freed(self.first_page, self.npages, handed);
        inner.release(self.ptr.as_ptr() as usize, self.npages, self.arena_index);
    }
}

/// pagemap bit 63: present in RAM; bit 62: swapped out.
const RESIDENT: u64 = 3 << 62;

/// Whether `/proc/self/pagemap` describes this process's own addresses, decided once by proof:
/// a page just written must read as present and an untouched one as absent. An emulator that
/// maps guest addresses elsewhere in its own address space (qemu-user with a guest base) reads
/// the wrong entries, and a kernel without the file reads none: both mean no probe, and freed
/// spans are marked dirty.
fn pagemap_proven() -> bool {
    use std::os::unix::fs::FileExt;
    static PROVEN: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
    match PROVEN.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    let page = crate::stack::page_size();
    let proven = (|| {
        let mut map = memmap2::MmapMut::map_anon(2 * page).ok()?;
        map[0] = 1;
        let written = std::hint::black_box(map.as_ptr()) as usize;
        let file = std::fs::File::open("/proc/self/pagemap").ok()?;
        let mut entries = [0u8; 16];
        file.read_exact_at(&mut entries, (written / page * 8) as u64).ok()?;
        let first = u64::from_ne_bytes(entries[..8].try_into().ok()?);
        let second = u64::from_ne_bytes(entries[8..].try_into().ok()?);
        Some(first & RESIDENT != 0 && second & RESIDENT == 0)
    })()
    .unwrap_or(false);
    PROVEN.store(if proven { 1 } else { 2 }, Ordering::Relaxed);
    proven
}

/// Freed spans at least this large have their pages' residency read from the kernel
/// ([`probe_resident`]), so that pages the span's owner never wrote are not cleared by the next
/// zeroed allocation (a 1 GiB span allocated zeroed, freed unwritten and allocated zeroed again
/// stays unresident). Below it, the pages are marked dirty without asking: the probe's system
/// call costs a fair part of clearing a small span, which is probably hot. The README's span
/// heap section gives the measurements.
const PROBE_FROM: usize = 1 << 20;

/// Finds which of the `npages` heap pages at `addr` are resident (some OS page under them is in
/// RAM or swapped out), and calls `runs(first, n, resident)` for each maximal run of heap pages
/// that all are or all are not. A page of private anonymous memory that is neither in RAM nor
/// swapped out reads as zero: never written, or given back with `MADV_DONTNEED`. `false` (and no
/// call) if the kernel cannot say.
///
/// `mincore` says cheaply which pages are in RAM; it counts a swapped-out page as not, so for
/// the pages it reports absent `/proc/self/pagemap` is asked whether they are swapped (its bit
/// 62). A span that was written all over (reused hot) costs one `mincore`; the pagemap is read
/// only where pages are absent, which is where the probe saves a clear. The map is opened for
/// each call: a descriptor kept across `fork` would read the parent's pages in the child.
fn probe_resident(addr: usize, npages: usize, mut runs: impl FnMut(usize, usize, bool)) -> bool {
    use std::os::unix::fs::FileExt;
    if !pagemap_proven() {
        return false;
    }
    let os_page = crate::stack::page_size();
    let heap_page = SpanHeap::PAGE_SIZE;
    let (start, end) = (addr, addr + npages * heap_page);
    let first_os = start / os_page * os_page;
    let os_pages = (end - first_os).div_ceil(os_page);
    let mut in_ram = vec![0u8; os_pages];
    // SAFETY: the range lies in one of the heap's mappings; the vector has an entry per page.
    if unsafe { libc::mincore(first_os as *mut _, os_pages * os_page, in_ram.as_mut_ptr()) } != 0 {
        return false;
    }
    let mut map = None;
    let mut entries = vec![0u64; 4096];
    let mut page = 0;
    while page < os_pages {
        if in_ram[page] & 1 != 0 {
            page += 1;
            continue;
        }
        // A run of pages mincore reports absent: ask the pagemap whether they are swapped.
        let run = in_ram[page..].iter().take_while(|&&r| r & 1 == 0).count().min(entries.len());
        if map.is_none() {
            match std::fs::File::open("/proc/self/pagemap") {
                Ok(file) => map = Some(file),
                Err(_) => return false,
            }
        }
        // SAFETY: the first `run` entries of a u64 buffer, viewed as bytes for the read.
        let bytes =
            unsafe { core::slice::from_raw_parts_mut(entries.as_mut_ptr().cast::<u8>(), run * 8) };
        let offset = ((first_os / os_page + page) * 8) as u64;
        if map.as_ref().is_some_and(|map| map.read_exact_at(bytes, offset).is_err()) {
            return false;
        }
        for (i, entry) in entries[..run].iter().enumerate() {
            if entry & RESIDENT != 0 {
                in_ram[page + i] |= 1;
            }
        }
        page += run;
    }
    // One bit per heap page: resident if any OS page it overlaps is.
    let heap_resident = |heap: usize| {
        let lo = (start + heap * heap_page - first_os) / os_page;
        let hi = (start + (heap + 1) * heap_page - first_os).div_ceil(os_page);
        in_ram[lo..hi].iter().any(|&r| r & 1 != 0)
    };
    let mut first = 0;
    while first < npages {
        let state = heap_resident(first);
        let mut n = 1;
        while first + n < npages && heap_resident(first + n) == state {
            n += 1;
        }
        runs(first, n, state);
        first += n;
    }
    true
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Span").field("ptr", &self.ptr).field("npages", &self.npages).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_runs_are_the_maximal_runs_of_set_bits() {
        // Patterns over three words, read from page offsets that start and end inside words.
        let arena = Arena::map(192, false).unwrap();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..300 {
            for word in &arena.dirty {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Sparse, dense, empty and full words all occur.
                let pattern = match state % 4 {
                    0 => state,
                    1 => state | state >> 3,
                    2 => 0,
                    _ => u64::MAX,
                };
                word.store(pattern, Ordering::Relaxed);
            }
            let (first, n) = ((state >> 8) as usize % 70, 1 + (state >> 20) as usize % 120);
            let dirty =
                |p: usize| arena.dirty[p / 64].load(Ordering::Relaxed) & (1 << (p % 64)) != 0;
            let mut expected = Vec::new();
            let mut page = first;
            while page < first + n {
                let len = (page..first + n).take_while(|&p| dirty(p)).count();
                if len > 0 {
                    expected.push((page, len));
                }
                page += len.max(1);
            }
            let mut runs = Vec::new();
            arena.dirty_runs(first, n, |start, len| runs.push((start, len)));
            assert_eq!(runs, expected, "pages {first}..{}", first + n);
        }
    }
}
