//! The per-thread machine state `M` (Go's `m`): the current stack's bounds, `cret`, the segment
//! cache and the counters.
//!
//! Two pieces live in separate thread-locals so that the hot paths stay short:
//! - `STACK_LIMIT`, the lowest usable address of the current stack, read by the inlined check
//!   of [`maybe_grow`](crate::maybe_grow). It has no destructor, so reading it is one load.
//! - `M` itself, which owns the cached segments and releases them when the thread exits.

use crate::error::Error;
use crate::stack::{page_size, Stack};
use std::cell::{Cell, UnsafeCell};

/// How many segments a thread keeps for reuse (Go 1.0 kept 32 per M).
pub const SEGMENT_CACHE_CAPACITY: usize = 32;

/// A `STACK_LIMIT` that no stack pointer is ever at or above: the thread's bounds are not known
/// yet, so the next check takes the slow path, which learns them.
pub(crate) const LIMIT_UNKNOWN: usize = usize::MAX;

thread_local! {
    /// The lowest usable address of the stack this thread runs on now (Go's `stackguard`,
    /// without Go's slack): the thread's own stack, a segment or a coroutine's stack.
    pub(crate) static STACK_LIMIT: Cell<usize> = const { Cell::new(LIMIT_UNKNOWN) };

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
    /// The highest address (exclusive) of the current stack (Go's `stackbase`).
    pub(crate) stack_base: usize,
    /// Segments kept for reuse, most recently released last.
    cache: Vec<Stack>,
    /// Counters reported by [`stats`].
    stats: Stats,
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
    /// The deepest nesting of segments seen on this thread.
    pub max_segments_in_use: u64,
}

impl M {
    const fn new() -> M {
        M {
            cret: 0,
            stack_base: 0,
            cache: Vec::new(),
            stats: Stats {
                splits: 0,
                segments_mapped: 0,
                segments_unmapped: 0,
                segments_in_use: 0,
                segments_cached: 0,
                max_segments_in_use: 0,
            },
            alt_stack: None,
        }
    }

    /// A segment of at least `size` usable bytes (already page rounded): the most recently
    /// cached one of that size, or a new mapping.
    pub(crate) fn take_segment(&mut self, size: usize) -> Result<Stack, Error> {
        let stack = match self.cache.iter().rposition(|s| s.len() == size) {
            Some(i) => self.cache.swap_remove(i),
            None => {
                let stack = Stack::new(size)?;
                self.stats.segments_mapped += 1;
                stack
            }
        };
        self.stats.splits += 1;
        self.stats.segments_in_use += 1;
        self.stats.max_segments_in_use =
            self.stats.max_segments_in_use.max(self.stats.segments_in_use);
        self.stats.segments_cached = self.cache.len() as u64;
        Ok(stack)
    }

    /// Take back a segment nothing runs on any more. It goes into the cache; when the cache is
    /// full, the least recently released segment is unmapped to make room, so that the sizes in
    /// use now (a hot split's) always find a place, whatever sizes filled the cache before.
    pub(crate) fn release_segment(&mut self, stack: Stack) {
        self.stats.segments_in_use -= 1;
        if self.cache.capacity() == 0 {
            self.cache.reserve_exact(SEGMENT_CACHE_CAPACITY);
        }
        if self.cache.len() == SEGMENT_CACHE_CAPACITY {
            drop(self.cache.remove(0));
            self.stats.segments_unmapped += 1;
        }
        self.cache.push(stack);
        self.stats.segments_cached = self.cache.len() as u64;
    }
}

impl Drop for M {
    fn drop(&mut self) {
        // The thread is exiting: nothing runs on a cached segment; give them back to the OS.
        self.cache.clear();
    }
}

/// Runs `f` with this thread's `M`, learning the thread's stack bounds first if they are not
/// known. Returns `None` while the thread is being torn down (its `M` is gone).
///
/// `f` must not call `with_m` again (the `&mut M` would alias).
#[inline]
pub(crate) fn with_m<T>(f: impl FnOnce(&mut M) -> T) -> Option<T> {
    M.try_with(|m| {
        // SAFETY: M is only reached through this function, which is not reentered (documented
        // above), and never leaves its thread.
        let m = unsafe { &mut *m.get() };
        if STACK_LIMIT.get() == LIMIT_UNKNOWN {
            m.learn_thread_stack();
        }
        f(m)
    })
    .ok()
}

/// A raw pointer to this thread's `M`, for the `m` field of a Stktop. Valid until the thread
/// exits.
pub(crate) fn m_ptr() -> *mut M {
    M.with(|m| m.get())
}

impl M {
    /// Reads the current thread's stack bounds (pthread_getattr_np) into STACK_LIMIT and
    /// stack_base, and makes sure the thread has an alternate signal stack.
    #[cold]
    fn learn_thread_stack(&mut self) {
        let (lo, hi) = thread_stack_bounds();
        self.stack_base = hi;
        STACK_LIMIT.set(lo);
        if self.alt_stack.is_none() {
            self.alt_stack = AltStack::install_if_missing();
        }
        crate::guard::install_handler();
    }
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

/// This thread's counters.
pub fn stats() -> Stats {
    with_m(|m| m.stats).unwrap_or_default()
}
