//! Each thread's page cache: Go's per-P `pageCache` (runtime/mpagecache.go), per thread.
//!
//! A thread that allocates a small span takes, under the heap's lock, one whole word of an
//! arena's free-page bitmap (the free pages of an aligned chunk of 64 pages), and from then on
//! serves small allocations from those bits, and takes back small spans that lie in the chunk,
//! without the lock: a find-first-set and a mask, on memory no other thread touches. The chunk's
//! free pages count as in use for the heap's bitmap, so no other thread can carve them; a span
//! of the chunk that another thread frees goes back to the bitmap under the lock, as any span
//! does (its bits there and the cache's are disjoint). The cache goes back to its heap when the
//! thread needs a chunk of another heap, when the chunk cannot serve a request, and when the
//! thread exits.
//!
//! A thread's cache counts what it does in a [`Slot`] that the heap lists, so that
//! [`SpanHeap::stats`](super::SpanHeap::stats) adds up every thread's counts without stopping
//! them; each slot is written only by its thread, with plain stores.
//!
//! The stack heap does not use caches: its spans are stacks, far larger than a cache serves.

use super::free_map::run_starts;
use super::{Arena, Inner, Shared, SpanHeap};
use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

/// The largest span a cache serves, in pages: a quarter of its chunk, as Go's (a larger request
/// would often find no run in a partly used chunk and go to the heap anyway).
pub(super) const CACHE_MAX_PAGES: usize = 16;

/// What one thread's cache did for one heap, read by the heap's `stats`.
#[derive(Default)]
pub(super) struct Slot {
    /// Allocations the cache served.
    allocs: AtomicU64,
    /// Spans the cache took back.
    frees: AtomicU64,
    /// Free pages the cache holds (in use as far as the heap's bitmap knows).
    cached: AtomicUsize,
}

impl Slot {
    /// `(allocs, frees, cached pages)`, as last written by the slot's thread.
    pub(super) fn counts(&self) -> (u64, u64, usize) {
        (
            self.allocs.load(Ordering::Relaxed),
            self.frees.load(Ordering::Relaxed),
            self.cached.load(Ordering::Relaxed),
        )
    }

    /// Counts an allocation of `npages` pages from the cache. Only the slot's thread writes it,
    /// so each counter takes a load and a store, no read-modify-write.
    #[inline(always)]
    fn count_alloc(&self, npages: usize) {
        self.allocs.store(self.allocs.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.cached.store(self.cached.load(Ordering::Relaxed) - npages, Ordering::Relaxed);
    }

    /// Counts a span of `npages` pages taken back into the cache, as [`Slot::count_alloc`].
    #[inline(always)]
    fn count_free(&self, npages: usize) {
        self.frees.store(self.frees.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.cached.store(self.cached.load(Ordering::Relaxed) + npages, Ordering::Relaxed);
    }
}

/// A thread's cache: a chunk of one heap's arena, and the chunk's pages it holds free.
struct PageCache {
    /// The heap's id (`Shared::id`), or 0 for none. While the caller of an operation holds that
    /// heap, the id names it and the fields below are valid.
    heap_id: Cell<usize>,
    /// The chunk's free pages held here: bit `i` is the chunk's page `i`.
    bits: Cell<u64>,
    /// The address of the chunk's first page.
    base: Cell<usize>,
    /// The chunk's arena, its index in the heap, and the chunk's first page in it (a multiple
    /// of 64).
    arena: Cell<Option<NonNull<Arena>>>,
    arena_index: Cell<usize>,
    first_page: Cell<usize>,
    /// This thread's slot in the heap's list (kept alive by `owner`'s entry).
    slot: Cell<Option<NonNull<Slot>>>,
    /// The heap and the slot, for the slow paths.
    owner: RefCell<Option<(Weak<Shared>, Arc<Slot>)>>,
}

thread_local! {
    static CACHE: PageCache = const {
        PageCache {
            heap_id: Cell::new(0),
            bits: Cell::new(0),
            base: Cell::new(0),
            arena: Cell::new(None),
            arena_index: Cell::new(0),
            first_page: Cell::new(0),
            slot: Cell::new(None),
            owner: RefCell::new(None),
        }
    };
}

/// A span the cache handed out: its address, arena, arena index and first page in the arena.
pub(super) type Carved = (usize, NonNull<Arena>, usize, usize);

/// Takes `npages` (at most [`CACHE_MAX_PAGES`]) from this thread's cache, if it holds a chunk of
/// `heap` with such a run.
#[inline(always)]
pub(super) fn alloc(heap: &Shared, npages: usize) -> Option<Carved> {
    CACHE
        .try_with(|cache| {
            if cache.heap_id.get() != heap.id {
                return None;
            }
            let (slot, arena) = (cache.slot.get()?, cache.arena.get()?);
            let bits = cache.bits.get();
            let starts = run_starts(bits, npages);
            if starts == 0 {
                return None;
            }
            let bit = starts.trailing_zeros() as usize;
            let mask = (u64::MAX >> (64 - npages)) << bit;
            cache.bits.set(bits & !mask);
            // SAFETY: the slot is kept alive by `owner` while the cache names a heap.
            unsafe { slot.as_ref() }.count_alloc(npages);
            Some((
                cache.base.get() + bit * SpanHeap::PAGE_SIZE,
                arena,
                cache.arena_index.get(),
                cache.first_page.get() + bit,
            ))
        })
        .ok()
        .flatten()
}

/// Takes back the span of `npages` pages from page `first_page` of arena `arena_index` of
/// `heap` into this thread's cache, if it lies in the cache's chunk; `false` if it does not.
#[inline(always)]
pub(super) fn free(heap: &Shared, arena_index: usize, first_page: usize, npages: usize) -> bool {
    CACHE
        .try_with(|cache| {
            let offset = first_page.wrapping_sub(cache.first_page.get());
            if cache.heap_id.get() != heap.id
                || cache.arena_index.get() != arena_index
                || offset >= 64
                || offset + npages > 64
            {
                return false;
            }
            let Some(slot) = cache.slot.get() else { return false };
            let mask = (u64::MAX >> (64 - npages)) << offset;
            debug_assert_eq!(cache.bits.get() & mask, 0, "span heap: freeing a cached page");
            cache.bits.set(cache.bits.get() | mask);
            // SAFETY: the slot is kept alive by `owner` while the cache names a heap.
            unsafe { slot.as_ref() }.count_free(npages);
            true
        })
        .unwrap_or(false)
}

/// Gives this thread's cache back to its heap if it belongs to a heap other than `heap`; to be
/// called before taking `heap`'s lock (a cache's heap is locked on its own, never inside
/// another heap's lock).
pub(super) fn flush_other(heap: &Shared) {
    let _ = CACHE.try_with(|cache| {
        if cache.heap_id.get() != heap.id {
            cache.flush();
        }
    });
}

/// With `heap`'s lock held (`inner`): gives this thread's chunk of `heap` back and takes the
/// chunk that holds the lowest run of `npages` free pages; `false` if the heap has no such run
/// in one chunk (the caller then carves from the bitmap). The cache holds no other heap's chunk
/// ([`flush_other`] ran).
pub(super) fn refill(heap: &Arc<Shared>, inner: &mut Inner, npages: usize) -> bool {
    CACHE
        .try_with(|cache| {
            if cache.heap_id.get() == heap.id {
                cache.give_back(inner, heap.handed.load(Ordering::Relaxed));
            } else if cache.owner.borrow().is_some() {
                return false; // another heap's: not ours to mix
            }
            let Some((arena_index, word, bits)) = inner.take_chunk(npages) else {
                return false;
            };
            if cache.owner.borrow().is_none() {
                let slot = Arc::new(Slot::default());
                inner.slots.push(Arc::clone(&slot));
                cache.slot.set(Some(NonNull::from(&*slot)));
                *cache.owner.borrow_mut() = Some((Arc::downgrade(heap), slot));
            }
            let arena = &inner.arenas[arena_index];
            cache.heap_id.set(heap.id);
            cache.bits.set(bits);
            cache.base.set(arena.base + word * 64 * SpanHeap::PAGE_SIZE);
            cache.arena.set(Some(NonNull::from(&**arena)));
            cache.arena_index.set(arena_index);
            cache.first_page.set(word * 64);
            if let Some(slot) = cache.slot.get() {
                // SAFETY: just set, kept alive by `owner`.
                let slot = unsafe { slot.as_ref() };
                slot.cached.store(bits.count_ones() as usize, Ordering::Relaxed);
            }
            true
        })
        .unwrap_or(false)
}

/// Gives this thread's cache back if it belongs to `heap` (whose lock is held: `inner`), and
/// leaves `heap`, so that what it counted is in `inner` alone.
pub(super) fn flush_own(heap: &Shared, inner: &mut Inner) {
    let _ = CACHE.try_with(|cache| {
        if cache.heap_id.get() == heap.id {
            cache.give_back(inner, heap.handed.load(Ordering::Relaxed));
            cache.leave(inner);
        }
    });
}

impl PageCache {
    /// With the lock of the heap this cache belongs to held: its free pages back to the bitmap,
    /// freed as of the heap's clock `handed`.
    fn give_back(&self, inner: &mut Inner, handed: u64) {
        let bits = self.bits.replace(0);
        if bits != 0 {
            inner.give_chunk(self.arena_index.get(), self.first_page.get() / 64, bits, handed);
        }
        if let Some(slot) = self.slot.get() {
            // SAFETY: kept alive by `owner`.
            unsafe { slot.as_ref() }.cached.store(0, Ordering::Relaxed);
        }
    }

    /// With the lock of the heap this cache belongs to held, and its chunk given back: folds the
    /// slot's counts into the heap, takes the slot off its list, and forgets the heap.
    fn leave(&self, inner: &mut Inner) {
        if let Some((_, slot)) = self.owner.borrow_mut().take() {
            let (allocs, frees, _) = slot.counts();
            inner.allocs += allocs;
            inner.frees += frees;
            inner.slots.retain(|s| !Arc::ptr_eq(s, &slot));
        }
        self.heap_id.set(0);
        self.slot.set(None);
        self.arena.set(None);
    }

    /// Gives the cache back to its heap, if that heap still lives (a heap that is gone took
    /// its arenas with it), and forgets it.
    fn flush(&self) {
        let heap = self.owner.borrow().as_ref().and_then(|(heap, _)| heap.upgrade());
        match heap {
            Some(heap) => {
                let mut inner = heap.lock();
                self.give_back(&mut inner, heap.handed.load(Ordering::Relaxed));
                self.leave(&mut inner);
            }
            None => {
                *self.owner.borrow_mut() = None;
                self.bits.set(0);
                self.heap_id.set(0);
                self.slot.set(None);
                self.arena.set(None);
            }
        }
    }
}

impl Drop for PageCache {
    /// The thread exits: its chunk goes back to its heap.
    fn drop(&mut self) {
        self.flush();
    }
}
