//! The per-thread machine state `M` (Go's `m`): what each thread that uses splitstack owns, its
//! one-time setup and its teardown, and the public per-thread knobs and counters.
//!
//! An `M` holds `cret` (where `lessstack` parks a return word), the thread's segment cache
//! (src/segment.rs), its coroutine stack pool (src/coroutine/pool.rs) and its alternate signal
//! stack (src/signal.rs). The current stack's bounds, which the inlined check of
//! [`maybe_grow`](crate::maybe_grow) reads, are a thread-local of their own (src/bounds.rs).
//!
//! `M` is kept without a thread-local destructor, so that reaching it is one address
//! computation; a separate `TEARDOWN` thread-local releases what it holds when the thread exits.

use crate::bounds::{self, Bounds};
use crate::coroutine::StackPool;
use crate::segment::SegmentCache;
use crate::signal::AltStack;
use crate::stack::Stack;
use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;

pub use crate::coroutine::{COROUTINE_POOL_CAPACITY, POOL_UNTRIMMED_MAX};
pub use crate::segment::SEGMENT_CACHE_CAPACITY;

thread_local! {
    /// The thread's `M`. `ManuallyDrop`, so that the thread-local has no destructor: reaching it
    /// is an address relative to the thread pointer, with no check of a lazily registered
    /// destructor on the hot paths. `TEARDOWN` releases what it holds when the thread exits.
    static M: UnsafeCell<ManuallyDrop<M>> = const { UnsafeCell::new(ManuallyDrop::new(M::new())) };

    /// Registered (by touching it) when the thread first sets up its `M`; its destructor
    /// releases the `M`'s cached stacks and alternate signal stack.
    static TEARDOWN: Teardown = const { Teardown };
}

/// The machine state of one thread (Go's `M`). `#[repr(C)]` because the assembly reaches `cret`
/// through the `m` pointer in each segment's `Stktop`.
#[repr(C)]
pub(crate) struct M {
    /// Where `lessstack` parks the return word (AX / X0) of a function that ran on a segment;
    /// `oldstack` takes it out and clears it before resuming the old segment, so that a stale
    /// word never outlives the return it carried.
    pub(crate) cret: usize,
    /// The free segments kept for the next splits, and the split counters.
    pub(crate) segments: SegmentCache,
    /// The free coroutine stacks kept for the next coroutines.
    pub(crate) pool: StackPool,
    /// Whether [`set_up`] has run.
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
    /// Segments this thread made with [`Stack::new`](crate::Stack::new): a stack recycled by the process-wide
    /// stack heap (no system call) or new memory from the operating system. Hits in this
    /// thread's cache do not count.
    pub segments_mapped: u64,
    /// Segments this thread gave back to the stack heap (its cache full, or the thread exited).
    pub segments_unmapped: u64,
    /// Gauge: segments in use now (nesting depth of splits on this thread).
    pub segments_in_use: u64,
    /// Gauge: segments in this thread's cache now.
    pub segments_cached: u64,
    /// Coroutine stacks this thread made with [`Stack::new`](crate::Stack::new). Pool hits do not count.
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
    /// Stacks the overflow recovery has leaked in the whole process (not only this thread):
    /// each coroutine abandoned under
    /// [`OverflowAction::PanicInResumer`](crate::OverflowAction) and every segment it had
    /// grown; the same count as [`leaked_stacks`](crate::leaked_stacks).
    pub leaked_stacks: u64,
}

impl M {
    const fn new() -> M {
        M {
            cret: 0,
            segments: SegmentCache::new(),
            pool: StackPool::new(),
            set_up: false,
            exiting: false,
            alt_stack: None,
        }
    }

    /// The thread is exiting: nothing runs on a cached stack; give them back to the OS and keep
    /// none from now on.
    fn tear_down(&mut self) {
        self.exiting = true;
        self.segments.set_capacity(0);
        self.pool.tear_down();
        self.alt_stack = None;
    }
}

/// Once per thread, before its first segment or coroutine stack: registers the teardown, and
/// makes sure the thread has an alternate signal stack and the process the overflow handler.
///
/// # Safety
/// `m` is this thread's `M`, with no reference to it live.
#[inline]
pub(crate) unsafe fn set_up(m: *mut M) {
    // SAFETY: the caller's contract.
    if unsafe { !(*m).set_up } {
        // SAFETY: the caller's contract; the reference lives for the call.
        unsafe { (*m).set_up_slow() }
    }
}

impl M {
    #[cold]
    #[inline(never)]
    fn set_up_slow(&mut self) {
        self.set_up = true;
        // Splits write the running context's bounds, and resumes record them for the resumer's
        // return: from here on they are the thread's, never the read-only sentinel.
        bounds::learn_if_unknown();
        if TEARDOWN.try_with(|_| ()).is_err() {
            // The thread is already past its teardown: keep nothing.
            self.exiting = true;
            self.segments.set_capacity(0);
            self.pool.turn_off();
            return;
        }
        if self.alt_stack.is_none() {
            self.alt_stack = AltStack::install_if_missing();
        }
        crate::signal::install_handler();
    }
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
    unsafe { set_up(m) };
    bounds::learn_if_unknown();
    m
}

/// Runs `f` with this thread's `M` (see [`current_m`]). `f` must not reach `M` again.
#[inline]
fn with_m<T>(f: impl FnOnce(&mut M) -> T) -> T {
    // SAFETY: M never leaves its thread, and `f` does not reach it again (documented above).
    f(unsafe { &mut *current_m() })
}

/// The bounds [`maybe_grow`](crate::maybe_grow) and [`remaining_stack`](crate::remaining_stack)
/// check against: the stack the thread runs on, as splitstack knows it.
///
/// Segments and coroutines install their own bounds when they are entered and the previous
/// ones when they are left. A library that switches stacks itself, with
/// [`swap`](crate::swap) or [`gogo`](crate::gogo), does the same with [`install_bounds`]: the
/// bounds of the stack it switches to (`StackBounds::of`) just after the switch in, and the ones
/// it replaced just after the switch back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackBounds(Bounds);

impl StackBounds {
    /// The bounds of `stack`'s usable part.
    pub fn of(stack: &Stack) -> StackBounds {
        let (bottom, top) = (stack.bottom() as usize, stack.top() as usize);
        StackBounds(Bounds { limit: bounds::limit_word(bottom), size: top - bottom })
    }

    /// The bounds installed now (the thread's own stack's, learnt if this is the thread's first
    /// use of splitstack).
    pub fn current() -> StackBounds {
        current_m();
        StackBounds(bounds::running())
    }

    /// The lowest address `maybe_grow` lets the stack pointer come near: the stack's lowest
    /// usable address.
    pub fn limit(&self) -> usize {
        self.0.limit
    }
}

/// Makes `bounds` the current stack's for [`maybe_grow`](crate::maybe_grow) and
/// [`remaining_stack`](crate::remaining_stack); returns the bounds it replaced, for the caller
/// to reinstall when it switches back.
///
/// The pattern around a switch to a stack of one's own (examples/raw_generator.rs):
/// `let saved = install_bounds(theirs); swap(..); theirs = install_bounds(saved);`: the value
/// taken back is whatever the other side had when it switched out, a segment's bounds if it
/// suspended on one.
///
/// # Safety
/// Until they are replaced, every `maybe_grow`, `remaining_stack` or split on this thread must
/// run on the stack `bounds` describes: install them just before or just after the switch to
/// that stack, with no such call in between, and reinstall the returned bounds the same way
/// around the switch back. Bounds that claim more room than there is make `maybe_grow` grow too
/// late, so a deep recursion ends in the guard region's overflow report; with the `asan`
/// feature, AddressSanitizer is told wrong stack bounds at the next split.
pub unsafe fn install_bounds(bounds: StackBounds) -> StackBounds {
    // The thread's own bounds are learnt first, so that what is handed back can be reinstalled.
    // What is handed back is what was current, unresolved: after a switch back, the bounds the
    // other side had when it switched out (a segment's if it suspended on one).
    current_m();
    StackBounds(bounds::install(bounds.0))
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
            m.segments.set_capacity(capacity);
        }
    });
}

/// This thread's counters.
pub fn stats() -> Stats {
    with_m(|m| {
        let segments = &m.segments;
        let cached = segments.cached() as u64;
        Stats {
            splits: segments.splits,
            segments_mapped: segments.mapped,
            segments_unmapped: segments.unmapped,
            // Every segment mapped and not unmapped is either cached or in use.
            segments_in_use: segments.mapped - segments.unmapped - cached,
            segments_cached: cached,
            coroutine_stacks_mapped: m.pool.mapped,
            coroutine_stacks_pooled: m.pool.len() as u64,
            coroutine_pool_resident_bound: m.pool.resident_bound() as u64,
            max_segments_held: segments.max_held,
            leaked_stacks: crate::coroutine::leaked_stacks(),
        }
    })
}
