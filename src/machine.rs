//! The per-thread machine state `M` (Go's `m`): the current stack's bounds, `cret`, the segment
//! cache and the counters.
//!
//! Two pieces live in separate thread-locals so that the hot paths stay short:
//! - `STACK_BOUNDS`, the current stack's lowest usable and highest addresses, read by the inlined check
//!   of [`maybe_grow`](crate::maybe_grow). It has no destructor, so reading it is one load.
//! - `M` itself, which owns the cached segments and releases them when the thread exits.

use crate::error::Error;
use crate::segment::Stktop;
use crate::stack::{page_size, Stack};
use std::cell::{Cell, UnsafeCell};

/// How many free segments a thread keeps for reuse by default (Go 1.0 kept 32 per M); see
/// [`set_segment_cache_capacity`].
pub const SEGMENT_CACHE_CAPACITY: usize = 32;

/// How many free coroutine stacks a thread keeps for reuse.
pub const COROUTINE_POOL_CAPACITY: usize = 64;

/// The bounds of a stack: see `STACK_BOUNDS`.
#[repr(C, align(16))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// The lowest usable address.
    pub(crate) limit: usize,
    /// The highest address, exclusive.
    pub(crate) base: usize,
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
    /// `limit` is the lowest usable address of the stack this thread runs on now (Go's
    /// `stackguard`, without Go's slack), `base` its highest address, exclusive (Go's
    /// `stackbase`): the thread's own stack, a segment or a coroutine's stack. One 16-byte
    /// thread-local without a destructor, so that the check reads one word and a coroutine
    /// switch exchanges both in two instructions.
    pub(crate) static STACK_BOUNDS: Cell<Bounds> =
        const { Cell::new(Bounds { limit: LIMIT_UNKNOWN, base: 0 }) };

    static M: UnsafeCell<M> = const { UnsafeCell::new(M::new()) };
}

/// The machine state of one thread (Go's `M`). `#[repr(C)]` because the assembly reaches `cret`
/// through the `m` pointer in each [`Stktop`](crate::segment::Stktop).
#[repr(C)]
pub(crate) struct M {
    /// Where `lessstack` parks the return word (AX / X0) of a function that ran on a segment;
    /// `oldstack` takes it out and clears it before resuming the old segment, so that a stale
    /// word never outlives the return it carried.
    pub(crate) cret: usize,
    /// Free segments kept for reuse, most recently released last, each with its Stktop
    /// initialised. A segment in use belongs to the frame of the split that took it, not to
    /// `M`: each context (the thread, each coroutine) has its own chain of segments.
    cache: Vec<Stack>,
    /// Free coroutine stacks kept for reuse, most recently released last. Separate from the
    /// segment cache: a coroutine stack's top holds no Stktop.
    pool: Vec<Stack>,
    /// Gauge: segments in use on this thread, across all its contexts.
    in_use: usize,
    /// How many free segments `cache` may hold.
    cache_capacity: usize,
    /// Counters reported by [`stats`].
    stats: Stats,
    /// This thread's `STACK_BOUNDS` cell.
    bounds_cell: *const Cell<Bounds>,
    /// An alternate signal stack this thread got from splitstack (it had none), so that the
    /// overflow handler can run; freed when the thread exits.
    alt_stack: Option<AltStack>,
}

// asm/offsets.h: M_CRET.
const _: () = assert!(core::mem::offset_of!(M, cret) == 0);

/// This thread's counters. Each thread has its own; they only grow, except the gauges noted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls that ran on a new segment (every [`grow`](crate::grow), and every
    /// [`maybe_grow`](crate::maybe_grow) that had too little stack left).
    pub splits: u64,
    /// Segments obtained from the operating system. Cache hits do not count.
    pub segments_mapped: u64,
    /// Segments given back to the operating system (cache full, or the thread exited).
    pub segments_unmapped: u64,
    /// Gauge: segments in use now (nesting depth of splits on this thread).
    pub segments_in_use: u64,
    /// Gauge: segments in this thread's cache now.
    pub segments_cached: u64,
    /// Coroutine stacks obtained from the operating system. Pool hits do not count.
    pub coroutine_stacks_mapped: u64,
    /// Gauge: coroutine stacks in this thread's pool now.
    pub coroutine_stacks_pooled: u64,
    /// The deepest nesting of segments seen on this thread.
    pub max_segments_in_use: u64,
}

impl M {
    const fn new() -> M {
        M {
            cret: 0,
            cache: Vec::new(),
            pool: Vec::new(),
            in_use: 0,
            cache_capacity: SEGMENT_CACHE_CAPACITY,
            stats: Stats {
                splits: 0,
                segments_mapped: 0,
                segments_unmapped: 0,
                segments_in_use: 0,
                segments_cached: 0,
                coroutine_stacks_mapped: 0,
                coroutine_stacks_pooled: 0,
                max_segments_in_use: 0,
            },
            alt_stack: None,
            bounds_cell: core::ptr::null(),
        }
    }

    /// Split: a segment of `len` usable bytes (already rounded by the caller) becomes the
    /// current stack: the most recently released cached stack when it has that size, another
    /// cached one of that size, or a new mapping (with its [`Stktop`] written). The old stack's
    /// limit and base are recorded in the Stktop for `oldstack`; `morestack` fills in its `gobuf`.
    #[inline]
    pub(crate) fn push_segment(&mut self, len: usize) -> Result<(Stack, *mut Stktop), Error> {
        let segment = match self.cache.last() {
            Some(last) if last.len() == len => self.cache.pop().expect("checked non-empty"),
            _ => self.take_segment_slow(len)?,
        };
        self.in_use += 1;
        self.stats.splits += 1;
        if self.in_use as u64 > self.stats.max_segments_in_use {
            self.stats.max_segments_in_use = self.in_use as u64;
        }
        let stktop = Stktop::at(segment.top() as usize);
        let new = Bounds { limit: segment.bottom() as usize, base: segment.top() as usize };
        // SAFETY: as in set_bounds; stktop is inside the segment, which nothing runs on, and
        // was initialised when the segment was mapped.
        unsafe {
            let old = (*self.bounds_cell).replace(new);
            (*stktop).old_limit = old.limit;
            (*stktop).old_base = old.base;
        }
        Ok((segment, stktop))
    }

    /// A cached segment of `len` bytes other than the last, or a new mapping with its
    /// [`Stktop`] initialised.
    #[cold]
    fn take_segment_slow(&mut self, len: usize) -> Result<Stack, Error> {
        if let Some(i) = self.cache.iter().rposition(|s| s.len() == len) {
            return Ok(self.cache.remove(i));
        }
        let stack = Stack::new(len)?;
        // SAFETY: the top of a fresh mapping of at least a page, 16-byte aligned.
        unsafe { Stktop::at(stack.top() as usize).write(Stktop::new(self, len)) };
        self.stats.segments_mapped += 1;
        Ok(stack)
    }

    /// Unsplit, after `oldstack` has restored the old stack's bounds: the segment goes back to
    /// the cache, where it is the first candidate for the next split.
    #[inline]
    pub(crate) fn pop_segment(&mut self, segment: Stack) {
        self.in_use -= 1;
        self.release(segment);
    }

    /// A stack nothing runs on any more goes into the cache. When the cache is full, the stack
    /// released longest ago is unmapped to make room, so that the sizes in use now (a hot
    /// split's) always find a place, whatever sizes filled the cache before.
    #[inline]
    pub(crate) fn release(&mut self, stack: Stack) {
        if self.cache.len() < self.cache_capacity {
            self.cache.push(stack);
        } else {
            self.release_to_full_cache(stack);
        }
    }

    /// `release` when the cache is full: make room, or unmap `stack` if the capacity is 0.
    #[cold]
    #[inline(never)]
    fn release_to_full_cache(&mut self, stack: Stack) {
        if self.cache_capacity == 0 {
            drop(stack);
            self.stats.segments_unmapped += 1;
        } else {
            self.unmap_oldest_cached();
            self.cache.push(stack);
        }
    }

    /// A coroutine stack of `len` usable bytes: the most recently released one of that size in
    /// the pool, or a new mapping.
    #[inline]
    pub(crate) fn take_pooled(&mut self, len: usize) -> Result<Stack, Error> {
        if let Some(last) = self.pool.last() {
            if last.len() == len {
                return Ok(self.pool.pop().expect("checked non-empty"));
            }
        }
        match self.pool.iter().rposition(|s| s.len() == len) {
            Some(i) if i + 1 == self.pool.len() => Ok(self.pool.pop().expect("checked non-empty")),
            Some(i) => Ok(self.pool.remove(i)),
            None => {
                let stack = Stack::new(len)?;
                self.stats.coroutine_stacks_mapped += 1;
                Ok(stack)
            }
        }
    }

    /// A coroutine stack nothing runs on any more goes into the pool; when it is full, the one
    /// released longest ago is unmapped.
    #[inline]
    pub(crate) fn pool_release(&mut self, stack: Stack) {
        if self.pool.len() == COROUTINE_POOL_CAPACITY {
            drop(self.pool.remove(0));
        }
        self.pool.push(stack);
    }

    #[cold]
    fn unmap_oldest_cached(&mut self) {
        if !self.cache.is_empty() {
            drop(self.cache.remove(0));
            self.stats.segments_unmapped += 1;
        }
    }
}

impl Drop for M {
    fn drop(&mut self) {
        // The thread is exiting: nothing runs on a cached stack; give them back to the OS.
        self.stats.segments_unmapped += self.cache.len() as u64;
        self.cache.clear();
        self.pool.clear();
    }
}

/// This thread's `M`, its stack bounds learnt if they were not known yet. `None` while the
/// thread is being torn down (its `M` is gone). The pointer is valid until the thread exits; a
/// `&mut M` made from it must not outlive a call that may reach `M` again (a split, a nested
/// `with_m`).
#[inline]
pub(crate) fn current_m() -> Option<*mut M> {
    let m = M.try_with(UnsafeCell::get).ok()?;
    // SAFETY: no other reference to this thread's M is live here.
    unsafe {
        if (*m).bounds_cell.is_null() {
            (*m).set_up_thread();
        }
        // Only the thread's own stack has an unknown limit: segments and coroutines install
        // theirs, and restore this one when they are left.
        if stack_limit() == LIMIT_UNKNOWN {
            learn_thread_stack();
        }
    }
    Some(m)
}

/// Runs `f` with this thread's `M` for its coroutine stack pool, which needs neither the
/// thread's stack bounds nor its one-time setup, so it skips [`current_m`]'s checks. `None`
/// while the thread exits. `f` must not reach `M` again.
#[inline]
pub(crate) fn with_pool<T>(f: impl FnOnce(&mut M) -> T) -> Option<T> {
    // SAFETY: M never leaves its thread, and `f` does not reach it again (documented above).
    M.try_with(|m| f(unsafe { &mut *m.get() })).ok()
}

/// Runs `f` with this thread's `M` (see [`current_m`]). `f` must not reach `M` again.
#[inline]
pub(crate) fn with_m<T>(f: impl FnOnce(&mut M) -> T) -> Option<T> {
    // SAFETY: M never leaves its thread, and `f` does not reach it again (documented above).
    current_m().map(|m| f(unsafe { &mut *m }))
}

/// Exchanges the current stack's bounds with `other`: a switch between contexts on different
/// stacks installs the incoming one's bounds and keeps the outgoing one's. Touches only a
/// destructor-free thread-local, so it works at any point of a thread's life.
#[inline(always)]
pub(crate) fn exchange_bounds(other: &mut Bounds) {
    // SAFETY: the cell and `other` are distinct, aligned, valid Bounds; no reference to the
    // cell's contents is live.
    STACK_BOUNDS.with(|cell| unsafe { core::ptr::swap_nonoverlapping(cell.as_ptr(), other, 1) });
}

/// Sets the current stack's bounds through the cell's address, which `M` keeps so that
/// `oldstack` (not inlined into the caller) needs no thread-local lookup.
#[inline]
pub(crate) fn set_bounds(m: &M, bounds: Bounds) {
    // SAFETY: the cell is this thread's STACK_BOUNDS (its address taken when M was set up,
    // before any segment exists), which outlives every segment.
    unsafe { (*m.bounds_cell).set(bounds) }
}

impl M {
    /// Once per thread: keeps the addresses of the bound cells for `oldstack`, reserves the
    /// segment cache, and makes sure the thread has an alternate signal stack for overflow reports.
    #[cold]
    fn set_up_thread(&mut self) {
        self.bounds_cell = STACK_BOUNDS.with(|bounds| bounds as *const Cell<Bounds>);
        self.cache.reserve(SEGMENT_CACHE_CAPACITY);
        if self.alt_stack.is_none() {
            self.alt_stack = AltStack::install_if_missing();
        }
        crate::guard::install_handler();
    }
}

/// Reads the thread's own stack bounds into STACK_BOUNDS; called while running on that stack.
#[cold]
fn learn_thread_stack() {
    let (limit, base) = thread_stack_bounds();
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
    with_m(|m| m.cret).unwrap_or(0)
}

/// Sets how many free segments this thread keeps for reuse (default
/// [`SEGMENT_CACHE_CAPACITY`]), unmapping the oldest ones beyond it now.
///
/// A free segment keeps its memory (its touched pages stay resident), so a bigger cache trades
/// memory for speed: a recursion that goes deeper than the cache holds maps, faults in and
/// unmaps the segments beyond it each time it goes that deep again. A thread that repeatedly
/// recurses through N segments runs at the speed of a preallocated stack with a capacity of N.
/// 0 unmaps every segment as soon as it is left.
pub fn set_segment_cache_capacity(capacity: usize) {
    with_m(|m| {
        m.cache_capacity = capacity;
        while m.cache.len() > capacity {
            m.unmap_oldest_cached();
        }
    });
}

/// This thread's counters.
pub fn stats() -> Stats {
    with_m(|m| Stats {
        segments_in_use: m.in_use as u64,
        segments_cached: m.cache.len() as u64,
        coroutine_stacks_pooled: m.pool.len() as u64,
        ..m.stats
    })
    .unwrap_or_default()
}
