//! The per-thread machine state `M` (Go's `m`): the current stack's bounds, `cret`, the segment
//! cache and the counters.
//!
//! Two pieces live in separate thread-locals so that the hot paths stay short:
//! - `STACK_BOUNDS`, the current stack's limit word (its lowest usable address and size) and
//!   highest address, read by the inlined check of [`maybe_grow`](crate::maybe_grow). It has no
//!   destructor, so reading it is one load.
//! - `M` itself, kept without a thread-local destructor (so reaching it is one address
//!   computation), which owns the cached segments; a separate `TEARDOWN` thread-local releases
//!   them when the thread exits.

use crate::error::Error;
use crate::segment::Stktop;
use crate::stack::{page_size, Stack};
use std::cell::{Cell, UnsafeCell};
use std::mem::ManuallyDrop;

/// How many free segments a thread keeps for reuse by default (Go 1.0 kept 32 per M); see
/// [`set_segment_cache_capacity`].
pub const SEGMENT_CACHE_CAPACITY: usize = 32;

/// How many free coroutine stacks a thread keeps for reuse.
pub const COROUTINE_POOL_CAPACITY: usize = 64;

/// How many of a thread's pooled coroutine stacks may be untrimmed: when one more is released,
/// the pool trims the untrimmed ones (gives their pages below the top 16 KiB back to the OS, one
/// `madvise` each), so that stacks that went deep do not pin their pages. A loop that creates and
/// finishes up to this many coroutines at a time reuses the same stacks and never trims; a
/// burst of more costs one `madvise` per stack beyond this many when they are dropped. So the
/// memory a thread's pool holds resident is at most this many whole stacks plus 16 KiB of each
/// other pooled stack: with the default 1 MiB stacks, 8 MiB + 56 x 16 KiB, under 9 MiB.
pub const POOL_UNTRIMMED_MAX: usize = 8;

/// The bounds of a stack: see `STACK_BOUNDS`.
#[repr(C, align(16))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// The lowest usable address, 64-byte aligned, with log2 of the stack's size (rounded up)
    /// in its low 6 bits: a limit word (see [`limit_word`]).
    pub(crate) limit: usize,
    /// The highest address, exclusive.
    pub(crate) base: usize,
}

/// Bits of a limit word that hold log2 of the stack's size; the address is 64-byte aligned.
const LIMIT_SIZE_MASK: usize = 63;

/// The limit word of the stack `[bottom, base)`: `bottom` (64-byte aligned) with log2 of the
/// size, rounded up, in its low 6 bits.
///
/// The inlined check compares the word itself, which is at most 63 bytes above `bottom`: a
/// check that much stricter, at no cost. The size is there for the one slow-path reader that
/// needs it, [`current_stack_size`]: a coroutine switch installs only the incoming side's limit
/// word (src/coroutine.rs), so `base` is not kept up to date (except with the `asan` feature).
#[inline]
pub(crate) fn limit_word(bottom: usize, base: usize) -> usize {
    debug_assert_eq!(bottom & LIMIT_SIZE_MASK, 0, "splitstack: a stack bottom not 64-byte aligned");
    let size = base.saturating_sub(bottom).max(1);
    let log2 = usize::BITS - (size - 1).leading_zeros();
    bottom | log2 as usize
}

/// The lowest usable address in a limit word.
#[inline]
pub(crate) fn limit_address(limit: usize) -> usize {
    limit & !LIMIT_SIZE_MASK
}

/// The size of the current stack (the thread's own, a segment or a coroutine's), rounded up to
/// a power of two, from its limit word; 0 if the thread's bounds were never learnt.
pub(crate) fn current_stack_size() -> usize {
    let limit = stack_limit();
    if limit == LIMIT_UNKNOWN {
        return 0;
    }
    match limit & LIMIT_SIZE_MASK {
        0 => 0,
        log2 => 1 << log2,
    }
}

/// The address of this thread's limit word, which a coroutine caches in its Link for the
/// switch (a coroutine never leaves its thread).
#[inline(always)]
pub(crate) fn limit_cell() -> *mut usize {
    // SAFETY: a place computation in this thread's cell; nothing is read or written.
    STACK_BOUNDS.with(|cell| unsafe { core::ptr::addr_of_mut!((*cell.as_ptr()).limit) })
}

/// The current stack's limit: one load.
#[inline(always)]
pub(crate) fn stack_limit() -> usize {
    // SAFETY: reads a field of this thread's cell in place, without a reference across writes.
    STACK_BOUNDS.with(|cell| unsafe { (*cell.as_ptr()).limit })
}

/// A limit above every user-space stack pointer (x86-64 and AArch64 user addresses are
/// below 2^57), so the next check takes the slow path, which learns the thread's bounds. Half of
/// the address space, so that adding a red zone of up to [`MAX_RED_ZONE`] cannot overflow.
pub(crate) const LIMIT_UNKNOWN: usize = usize::MAX / 2;

/// The largest red zone the inlined check handles; larger ones take the slow path, which is
/// exact for any size.
pub(crate) const MAX_RED_ZONE: usize = usize::MAX / 4;

thread_local! {
    /// `limit` is the limit word ([`limit_word`]) of the stack this thread runs on now (Go's
    /// `stackguard`, without Go's slack): the thread's own stack, a segment or a coroutine's
    /// stack. `base` is its highest address, exclusive (Go's `stackbase`), kept exact only with
    /// the `asan` feature, its one reader: without it a coroutine switch moves only the limit and
    /// leaves `base` stale. One thread-local without a destructor, so that the check reads one
    /// word.
    pub(crate) static STACK_BOUNDS: Cell<Bounds> =
        const { Cell::new(Bounds { limit: LIMIT_UNKNOWN, base: 0 }) };

    /// The thread's `M`. `ManuallyDrop`, so that the thread-local has no destructor: reaching it
    /// is an address relative to the thread pointer, with no check of a lazily registered
    /// destructor on the hot paths. `TEARDOWN` releases what it holds when the thread exits.
    static M: UnsafeCell<ManuallyDrop<M>> = const { UnsafeCell::new(ManuallyDrop::new(M::new())) };

    /// Registered (by touching it) when the thread first sets up its `M`; its destructor
    /// releases the `M`'s cached stacks and alternate signal stack.
    static TEARDOWN: Teardown = const { Teardown };
}

/// The machine state of one thread (Go's `M`). `#[repr(C)]` because the assembly reaches `cret`
/// through the `m` pointer in each [`Stktop`].
#[repr(C)]
pub(crate) struct M {
    /// Where `lessstack` parks the return word (AX / X0) of a function that ran on a segment;
    /// `oldstack` takes it out and clears it before resuming the old segment, so that a stale
    /// word never outlives the return it carried.
    pub(crate) cret: usize,
    /// The free segment released last, first in line for the next split: a hot split takes it
    /// and puts it back in a load, a compare and a store each way. [`no_spare`] when there is
    /// none, [`spare_off`] while the capacity is 0 (so that putting one back takes the slow
    /// path); both read as a segment of size 0, which no split asks for. A segment in use
    /// belongs to the frame of the split that took it, not to `M`: each context (the thread,
    /// each coroutine) has its own chain of segments.
    spare: *mut Stktop,
    /// The other free segments kept for reuse: a list linked through their [`Stktop`]s, most
    /// recently released first.
    free: *mut Stktop,
    /// How many segments `free` holds.
    listed: usize,
    /// How many free segments `spare` and `free` may hold together; 0 once the thread is
    /// tearing down.
    cache_capacity: usize,
    /// Counters reported by [`stats`].
    stats: Stats,
    /// Free coroutine stacks kept for reuse, most recently released last. Separate from the
    /// segment cache: a coroutine stack's top holds no Stktop.
    pool: Vec<Stack>,
    /// How many stacks `pool` may hold; 0 once the thread is tearing down.
    pool_capacity: usize,
    /// `pool[..pool_trimmed]` are trimmed (`Stack::trim`) and untouched since.
    pool_trimmed: usize,
    /// How long `pool` may grow before a release takes the slow path, which trims or evicts:
    /// `pool_capacity`, or fewer so that at most [`POOL_UNTRIMMED_MAX`] stacks are untrimmed.
    pool_limit: usize,
    /// Whether [`M::set_up`] has run.
    set_up: bool,
    /// Whether the thread is past its teardown, after which no stack is kept.
    exiting: bool,
    /// An alternate signal stack this thread got from splitstack (it had none), so that the
    /// overflow handler can run; freed when the thread exits.
    alt_stack: Option<AltStack>,
}

// The offset lessstack writes (src/layout.rs).
const _: () = assert!(core::mem::offset_of!(M, cret) == crate::layout::LAYOUT.M_CRET);

/// This thread's counters. Each thread has its own; they only grow, except the gauges noted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls that ran on a new segment (every [`grow`](crate::grow), and every
    /// [`maybe_grow`](crate::maybe_grow) that had too little stack left).
    pub splits: u64,
    /// Segments this thread made with [`Stack::new`]: a stack recycled by the process-wide
    /// stack heap (no system call) or new memory from the operating system. Hits in this
    /// thread's cache do not count.
    pub segments_mapped: u64,
    /// Segments this thread gave back to the stack heap (its cache full, or the thread exited).
    pub segments_unmapped: u64,
    /// Gauge: segments in use now (nesting depth of splits on this thread).
    pub segments_in_use: u64,
    /// Gauge: segments in this thread's cache now.
    pub segments_cached: u64,
    /// Coroutine stacks this thread made with [`Stack::new`]. Pool hits do not count.
    pub coroutine_stacks_mapped: u64,
    /// Gauge: coroutine stacks in this thread's pool now.
    pub coroutine_stacks_pooled: u64,
    /// Gauge: the most resident memory the pooled coroutine stacks may hold now, in bytes (see
    /// [`POOL_UNTRIMMED_MAX`]).
    pub coroutine_pool_resident_bound: u64,
    /// The most segments this thread has held at once, in use and cached: an upper bound on the
    /// deepest nesting of splits it has seen (the gauge itself is counted only when a segment is
    /// mapped, which keeps the split's fast path free of it).
    pub max_segments_held: u64,
}

impl M {
    const fn new() -> M {
        M {
            cret: 0,
            spare: no_spare(),
            free: core::ptr::null_mut(),
            listed: 0,
            cache_capacity: SEGMENT_CACHE_CAPACITY,
            stats: Stats {
                splits: 0,
                segments_mapped: 0,
                segments_unmapped: 0,
                segments_in_use: 0,
                segments_cached: 0,
                coroutine_stacks_mapped: 0,
                coroutine_stacks_pooled: 0,
                coroutine_pool_resident_bound: 0,
                max_segments_held: 0,
            },
            pool: Vec::new(),
            pool_capacity: COROUTINE_POOL_CAPACITY,
            pool_trimmed: 0,
            pool_limit: POOL_UNTRIMMED_MAX,
            set_up: false,
            exiting: false,
            alt_stack: None,
        }
    }

    /// Split (Go's `newstack`): a segment of `len` usable bytes (already rounded by the caller)
    /// becomes the current stack: the spare when it has that size, another cached one of that
    /// size, or a new mapping. The old stack's bounds are recorded in the segment's [`Stktop`]
    /// for the unsplit, and the segment's installed; `morestack` fills in the Stktop's `gobuf`.
    #[inline(always)]
    pub(crate) fn push_segment(&mut self, len: usize) -> Result<*mut Stktop, Error> {
        let spare = self.spare;
        // SAFETY: the spare is a cached segment's Stktop, initialised when it was mapped, or a
        // sentinel whose segment_size reads 0; nothing runs on a cached segment.
        let top = if unsafe { (*spare).segment_size } == len {
            self.spare = no_spare();
            spare
        } else {
            self.take_segment_slow(len)?
        };
        self.stats.splits += 1;
        // SAFETY: top is this segment's initialised Stktop, which only this split uses; the
        // cell is read and written in place (copies, so that no temporary goes through memory).
        unsafe {
            STACK_BOUNDS.with(|cell| {
                core::ptr::copy_nonoverlapping(cell.as_ptr(), &mut (*top).old, 1);
                core::ptr::copy_nonoverlapping(&(*top).own, cell.as_ptr(), 1);
            });
        }
        Ok(top)
    }

    /// Unsplit, back on the old stack: reinstall its bounds (recorded by
    /// [`push_segment`](M::push_segment)) and keep the segment as the spare, first in line for
    /// the next split.
    ///
    /// # Safety
    /// `top` is the Stktop `push_segment` returned, whose split has ended (nothing runs on the
    /// segment any more).
    #[inline(always)]
    pub(crate) unsafe fn pop_segment(&mut self, top: *mut Stktop) {
        // SAFETY: the caller's contract; the segment stays mapped while cached.
        unsafe { STACK_BOUNDS.with(|cell| cell.set((*top).old)) };
        if self.spare == no_spare() {
            self.spare = top;
        } else {
            self.release_slow(top);
        }
    }

    /// A cached segment of `len` bytes in the list, or a new mapping with its [`Stktop`]
    /// initialised.
    #[cold]
    #[inline(never)]
    fn take_segment_slow(&mut self, len: usize) -> Result<*mut Stktop, Error> {
        self.set_up();
        let mut link: *mut *mut Stktop = &mut self.free;
        // SAFETY: every node of the list is a cached segment's initialised Stktop.
        unsafe {
            while !(*link).is_null() {
                let top = *link;
                if (*top).segment_size == len {
                    *link = (*top).next;
                    self.listed -= 1;
                    return Ok(top);
                }
                link = &mut (*top).next;
            }
        }
        let stack = Stack::new(len)?;
        let top = Stktop::at(stack.top() as usize);
        // SAFETY: the top of a fresh mapping of at least a page, 16-byte aligned; the Stktop
        // takes ownership of the mapping it lies in.
        unsafe { top.write(Stktop::new(self, stack)) };
        self.stats.segments_mapped += 1;
        let held = self.stats.segments_mapped - self.stats.segments_unmapped;
        self.stats.max_segments_held = self.stats.max_segments_held.max(held);
        Ok(top)
    }

    /// `pop_segment` when the spare is taken (or off): `top` becomes the spare, the previous
    /// spare goes to the head of the list, and the segment released longest ago is unmapped if
    /// that is one too many; with a capacity of 0, `top` is unmapped.
    #[cold]
    #[inline(never)]
    fn release_slow(&mut self, top: *mut Stktop) {
        if self.cache_capacity == 0 {
            // SAFETY: the segment is free and in no list.
            unsafe { self.unmap(top) };
            return;
        }
        let previous = core::mem::replace(&mut self.spare, top);
        if previous != no_spare() && previous != spare_off() {
            // SAFETY: previous is a cached segment's Stktop, now in no list.
            unsafe { (*previous).next = self.free };
            self.free = previous;
            self.listed += 1;
        }
        self.trim_cache();
    }

    /// How many free segments the cache holds.
    fn cached(&self) -> usize {
        self.listed + usize::from(self.spare != no_spare() && self.spare != spare_off())
    }

    /// Unmaps cached segments, those released longest ago first, until the cache holds at most
    /// its capacity; turns the spare off for a capacity of 0 and back on otherwise.
    #[cold]
    fn trim_cache(&mut self) {
        while self.cached() > self.cache_capacity {
            if self.listed > 0 {
                self.unmap_oldest_listed();
            } else {
                let spare = core::mem::replace(&mut self.spare, no_spare());
                // SAFETY: the spare is a free segment, now in no list.
                unsafe { self.unmap(spare) };
            }
        }
        if self.cache_capacity == 0 {
            self.spare = spare_off();
        } else if self.spare == spare_off() {
            self.spare = no_spare();
        }
    }

    /// Gives a free segment back to the process-wide stack heap (drops its [`Stack`]).
    ///
    /// # Safety
    /// `top` is the Stktop of a segment nothing runs on, in no list; it is invalid afterwards.
    unsafe fn unmap(&mut self, top: *mut Stktop) {
        // SAFETY: the caller's contract. The Stack is moved out of the mapping before it is
        // dropped, which unmaps it.
        drop(unsafe { ManuallyDrop::take(&mut (*top).stack) });
        self.stats.segments_unmapped += 1;
    }

    /// Unmaps the listed segment released longest ago (the list's last), if there is one.
    #[cold]
    fn unmap_oldest_listed(&mut self) {
        let mut link: *mut *mut Stktop = &mut self.free;
        // SAFETY: every node of the list is a cached segment's initialised Stktop; the last
        // one is unlinked before it is unmapped.
        unsafe {
            if (*link).is_null() {
                return;
            }
            while !(**link).next.is_null() {
                link = &mut (**link).next;
            }
            let last = *link;
            *link = core::ptr::null_mut();
            self.listed -= 1;
            self.unmap(last);
        }
    }

    /// A coroutine stack of `len` usable bytes: the most recently released one of that size in
    /// the pool, or a new mapping.
    #[inline]
    pub(crate) fn take_pooled(&mut self, len: usize) -> Result<Stack, Error> {
        if let Some(last) = self.pool.last() {
            if last.len() == len {
                let stack = self.pool.pop().expect("checked non-empty");
                if self.pool.len() < self.pool_trimmed {
                    self.took_trimmed();
                }
                return Ok(stack);
            }
        }
        self.take_pooled_slow(len)
    }

    /// A trimmed stack left the pool: one fewer is trimmed.
    #[cold]
    fn took_trimmed(&mut self) {
        self.pool_trimmed -= 1;
        self.set_pool_limit();
    }

    fn set_pool_limit(&mut self) {
        self.pool_limit = self.pool_capacity.min(self.pool_trimmed + POOL_UNTRIMMED_MAX);
    }

    #[cold]
    fn take_pooled_slow(&mut self, len: usize) -> Result<Stack, Error> {
        // Every pooled stack was taken here first, on this thread (a Coroutine is not Send): the
        // teardown that frees the pool is registered before the pool can hold anything, and an
        // overflow on the stack finds the thread's alternate signal stack.
        self.set_up();
        match self.pool.iter().rposition(|s| s.len() == len) {
            Some(i) => {
                if i < self.pool_trimmed {
                    self.took_trimmed();
                }
                Ok(self.pool.remove(i))
            }
            None => {
                let stack = Stack::new(len)?;
                self.stats.coroutine_stacks_mapped += 1;
                Ok(stack)
            }
        }
    }

    /// A coroutine stack nothing runs on any more goes into the pool; past
    /// [`POOL_UNTRIMMED_MAX`] untrimmed stacks the pool trims them, and when it is full the one
    /// released longest ago goes back to the stack heap (and `stack` itself once the thread is
    /// tearing down).
    #[inline]
    pub(crate) fn pool_release(&mut self, stack: Stack) {
        if self.pool.len() < self.pool_limit {
            self.pool.push(stack);
        } else {
            self.pool_release_slow(stack);
        }
    }

    #[cold]
    fn pool_release_slow(&mut self, stack: Stack) {
        if self.pool_capacity == 0 {
            drop(stack);
            return;
        }
        if self.pool.len() >= self.pool_capacity {
            let mut oldest = self.pool.remove(0);
            if self.pool_trimmed > 0 {
                self.pool_trimmed -= 1;
                oldest.mark_trimmed();
            }
            drop(oldest);
        }
        if self.pool.len() - self.pool_trimmed >= POOL_UNTRIMMED_MAX {
            for pooled in &self.pool[self.pool_trimmed..] {
                // SAFETY: a pooled stack: nothing runs on it, and nothing on it is live.
                unsafe { pooled.trim() };
            }
            self.pool_trimmed = self.pool.len();
        }
        self.pool.push(stack);
        self.set_pool_limit();
    }

    /// The resident memory this thread's coroutine stack pool may hold at most now: the whole
    /// usable part of each untrimmed stack and [`TRIM_KEEP`](crate::stack::TRIM_KEEP) bytes of
    /// each trimmed one.
    pub(crate) fn pool_resident_bound(&self) -> usize {
        let keep = crate::stack::TRIM_KEEP;
        let trimmed: usize = self.pool[..self.pool_trimmed].iter().map(|s| s.len().min(keep)).sum();
        let untrimmed: usize = self.pool[self.pool_trimmed..].iter().map(Stack::len).sum();
        trimmed + untrimmed
    }

    /// Once per thread, before its first segment or coroutine stack: registers the teardown, and
    /// makes sure the thread has an alternate signal stack and the process the overflow handler.
    #[cold]
    #[inline(never)]
    fn set_up(&mut self) {
        if self.set_up {
            return;
        }
        self.set_up = true;
        if TEARDOWN.try_with(|_| ()).is_err() {
            // The thread is already past its teardown: keep nothing.
            self.exiting = true;
            self.cache_capacity = 0;
            self.spare = spare_off();
            self.pool_capacity = 0;
            self.pool_limit = 0;
            return;
        }
        if self.alt_stack.is_none() {
            self.alt_stack = AltStack::install_if_missing();
        }
        crate::guard::install_handler();
    }

    /// The thread is exiting: nothing runs on a cached stack; give them back to the OS and keep
    /// none from now on.
    fn tear_down(&mut self) {
        self.exiting = true;
        self.cache_capacity = 0;
        self.trim_cache();
        self.pool_capacity = 0;
        self.pool_limit = 0;
        for (i, mut stack) in std::mem::take(&mut self.pool).into_iter().enumerate() {
            if i < self.pool_trimmed {
                stack.mark_trimmed();
            }
            drop(stack);
        }
        self.pool_trimmed = 0;
        self.alt_stack = None;
    }
}

/// The memory behind the spare sentinels: as large and aligned as a [`Stktop`], all zero, so
/// that its `segment_size` reads 0. Never written.
#[repr(C, align(16))]
struct Sentinel([usize; 16]);

const _: () = assert!(core::mem::size_of::<Sentinel>() == core::mem::size_of::<Stktop>());
const _: () = assert!(core::mem::align_of::<Sentinel>() >= core::mem::align_of::<Stktop>());

static NO_SPARE: Sentinel = Sentinel([0; 16]);
static SPARE_OFF: Sentinel = Sentinel([0; 16]);

/// `M::spare` when there is no spare segment.
#[inline(always)]
const fn no_spare() -> *mut Stktop {
    &NO_SPARE as *const Sentinel as *mut Stktop
}

/// `M::spare` while the cache's capacity is 0.
#[inline(always)]
const fn spare_off() -> *mut Stktop {
    &SPARE_OFF as *const Sentinel as *mut Stktop
}

/// The destructor of `TEARDOWN`: see [`M::tear_down`].
struct Teardown;

impl Drop for Teardown {
    fn drop(&mut self) {
        // SAFETY: the thread's M outlives its thread-local destructors (it has none), and no
        // reference to it is live while a destructor runs.
        unsafe { (*m_ptr()).tear_down() }
    }
}

/// This thread's `M`, without any setup: an address relative to the thread pointer. The pointer
/// is valid until the thread exits; a `&mut M` made from it must not outlive a call that may
/// reach `M` again (a split, a nested `with_m`).
#[inline(always)]
pub(crate) fn m_ptr() -> *mut M {
    M.with(|m| m.get().cast::<M>())
}

/// This thread's `M`, set up and with its stack bounds learnt if that was not done yet.
#[inline]
pub(crate) fn current_m() -> *mut M {
    let m = m_ptr();
    // SAFETY: no other reference to this thread's M is live here.
    unsafe {
        if !(*m).set_up {
            (*m).set_up();
        }
    }
    // Only the thread's own stack has an unknown limit: segments and coroutines install
    // theirs, and restore this one when they are left.
    if stack_limit() == LIMIT_UNKNOWN {
        learn_thread_stack();
    }
    m
}

/// Runs `f` with this thread's `M` for its coroutine stack pool, which needs neither the
/// thread's stack bounds nor its one-time setup, so it skips [`current_m`]'s checks. `f` must
/// not reach `M` again.
#[inline]
pub(crate) fn with_pool<T>(f: impl FnOnce(&mut M) -> T) -> T {
    // SAFETY: M never leaves its thread, and `f` does not reach it again (documented above).
    f(unsafe { &mut *m_ptr() })
}

/// Runs `f` with this thread's `M` (see [`current_m`]). `f` must not reach `M` again.
#[inline]
pub(crate) fn with_m<T>(f: impl FnOnce(&mut M) -> T) -> T {
    // SAFETY: M never leaves its thread, and `f` does not reach it again (documented above).
    f(unsafe { &mut *current_m() })
}

/// Exchanges the current stack's `base` with `other`: with the `asan` feature, a coroutine
/// switch does this next to moving the limit, so that ASan is told exact bounds.
#[cfg(feature = "asan")]
#[inline(always)]
pub(crate) fn exchange_base(other: &mut usize) {
    // SAFETY: the cell's field and `other` are distinct, aligned words; no reference to the
    // cell's contents is live.
    STACK_BOUNDS.with(|cell| unsafe {
        core::ptr::swap_nonoverlapping(core::ptr::addr_of_mut!((*cell.as_ptr()).base), other, 1)
    });
}

/// Reads the thread's own stack bounds into STACK_BOUNDS; called while running on that stack.
#[cold]
fn learn_thread_stack() {
    let (bottom, base) = thread_stack_bounds();
    let limit = limit_word(bottom.next_multiple_of(LIMIT_SIZE_MASK + 1), base);
    STACK_BOUNDS.with(|bounds| bounds.set(Bounds { limit, base }));
}

/// The lowest usable and the highest address of the calling thread's own stack.
fn thread_stack_bounds() -> (usize, usize) {
    // SAFETY: pthread_getattr_np fills a zeroed attribute object for the calling thread, which
    // is destroyed after use; the out-pointers are locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            // Unknown bounds: assume a conservative 64 KiB below the current frame, so that
            // maybe_grow grows early rather than never.
            let sp = crate::arch::stack_pointer();
            return (sp.saturating_sub(64 * 1024), sp);
        }
        let mut addr: *mut libc::c_void = core::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let mut guard: libc::size_t = 0;
        libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_getguardsize(&attr, &mut guard);
        libc::pthread_attr_destroy(&mut attr);
        let lo = addr as usize;
        // glibc may or may not count the guard inside [addr, addr + size); skipping it (and at
        // least a page) is conservative either way.
        (lo + guard.max(page_size()), lo + size)
    }
}

/// An alternate signal stack mapped by splitstack for a thread that had none.
struct AltStack {
    stack: Stack,
}

impl AltStack {
    /// Install an alternate signal stack if the thread has none; `None` if it already had one
    /// (or none could be made, in which case an overflow is reported as a plain SIGSEGV).
    fn install_if_missing() -> Option<AltStack> {
        // SAFETY: queries the current alternate stack into a local.
        let mut current: libc::stack_t = unsafe { core::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::sigaltstack(core::ptr::null(), &mut current) } != 0 {
            return None;
        }
        if current.ss_flags & libc::SS_DISABLE == 0 {
            return None;
        }
        let stack = Stack::new(libc::SIGSTKSZ.max(64 * 1024)).ok()?;
        let new = libc::stack_t { ss_sp: stack.bottom().cast(), ss_flags: 0, ss_size: stack.len() };
        // SAFETY: the stack stays mapped until the AltStack drops, which disables it first.
        if unsafe { libc::sigaltstack(&new, core::ptr::null_mut()) } != 0 {
            return None;
        }
        Some(AltStack { stack })
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let disable =
            libc::stack_t { ss_sp: core::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
        // SAFETY: disables the alternate stack before its memory is unmapped with self.stack.
        unsafe { libc::sigaltstack(&disable, core::ptr::null_mut()) };
        let _ = &self.stack;
    }
}

/// This thread's m.cret: 0 whenever no unsplit is in flight (which is whenever Rust code can
/// observe it, since `oldstack` clears it before resuming).
pub fn cret() -> usize {
    // SAFETY: reads this thread's M; no reference to it is live.
    unsafe { (*m_ptr()).cret }
}

/// Sets how many free segments this thread keeps for reuse (default
/// [`SEGMENT_CACHE_CAPACITY`]), giving the oldest ones beyond it back to the process-wide stack
/// heap now ([`Stack`]'s documentation says what that heap keeps).
///
/// A segment in this thread's cache is taken and put back in a few instructions; one from the
/// stack heap costs a lock and, for a stack it does not hold, memory from the operating system,
/// faulted in on first touch. A thread that repeatedly recurses through N segments runs at the
/// speed of a preallocated stack with a capacity of N. 0 gives every segment back as soon as it
/// is left.
pub fn set_segment_cache_capacity(capacity: usize) {
    with_m(|m| {
        if !m.exiting {
            m.cache_capacity = capacity;
        }
        m.trim_cache();
    });
}

/// This thread's counters.
pub fn stats() -> Stats {
    with_m(|m| Stats {
        // Every segment mapped and not unmapped is either cached or in use.
        segments_in_use: m.stats.segments_mapped - m.stats.segments_unmapped - m.cached() as u64,
        segments_cached: m.cached() as u64,
        coroutine_stacks_pooled: m.pool.len() as u64,
        coroutine_pool_resident_bound: m.pool_resident_bound() as u64,
        ..m.stats
    })
}
