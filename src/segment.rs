//! Segmented stacks: run a closure on a new stack segment ([`grow`], [`try_grow`]), or only when
//! the current stack runs low ([`maybe_grow`]).
//!
//! The mechanism is Go 1.0's. [`try_grow`] takes a segment from its thread's cache (or maps
//! one) through `M::push_segment` (Go's `newstack`), which records the old stack's bounds in the
//! [`Stktop`] at the segment's top. `morestack` (assembly) saves the caller's context in the
//! record, switches to the segment and calls the closure's trampoline with `lessstack` as its
//! return address. When the trampoline returns, `lessstack` parks its return word in `m.cret`
//! and calls [`splitstack_oldstack`] (Go's `oldstack`), which restores the old stack's bounds,
//! takes the word out of `m.cret`, clears it, and resumes the caller with `gogo`. Back on the old
//! stack, the caller returns the segment to the cache: a call at a segment boundary inside a loop
//! (the "hot split" that made Go and Rust drop segmented stacks) maps nothing after its first
//! iteration.

use crate::arch;
use crate::context::Gobuf;
use crate::error::Error;
use crate::machine::{self, current_m, stack_limit, Bounds, M, MAX_RED_ZONE};
use crate::sanitizer::{self, FakeStack, StackBounds};
use crate::stack::page_size;
use std::any::Any;
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// The smallest segment handed out; smaller requests are rounded up to it. Enough for the
/// trampoline, `catch_unwind` and a panic's unwinding with room to spare.
pub const MIN_SEGMENT_SIZE: usize = 16 * 1024;

/// Stack that [`maybe_grow`] keeps free below `red_zone`, for unwinding: a panic, or the drop of
/// a suspended coroutine, runs the unwinder on the stack of each frame it leaves, and glibc's
/// unwinder needs about 5.7 KiB there on x86-64 and 8.7 KiB on AArch64 (measured: a
/// `resume_unwind` with less aborts on the guard page). So a frame that passed a
/// `maybe_grow(red_zone, ..)` check, and stays within `red_zone` below it, can always unwind.
#[cfg(target_arch = "x86_64")]
pub const UNWIND_RESERVE: usize = 8 * 1024;
/// Stack that [`maybe_grow`] keeps free below `red_zone`, for unwinding (see the x86-64 value).
#[cfg(target_arch = "aarch64")]
pub const UNWIND_RESERVE: usize = 12 * 1024;

/// The record at the top of every segment (Go's `Stktop`): how to get back to the stack the
/// segment was grown from. Written when the segment is mapped (`m`, `segment_size`, `free`), at
/// each split (`old_limit` and `old_base` by `M::push_segment`, `gobuf` by `morestack`), read by
/// `lessstack` (`m`) and `oldstack`.
#[repr(C)]
pub(crate) struct Stktop {
    /// The context that called `morestack`: where the unsplit returns to.
    gobuf: Gobuf,
    /// The thread's machine state, whose `cret` `lessstack` writes.
    m: *mut M,
    /// The old stack's lowest usable address (Go's `stackguard`), restored by `oldstack`.
    pub(crate) old_limit: usize,
    /// The old stack's base (Go's `stackbase`), restored by `oldstack`.
    pub(crate) old_base: usize,
    /// This segment's usable size.
    segment_size: usize,
    /// Whether the segment is returned after the unsplit (Go's `free`); always 1 here, since
    /// the caller of `morestack` returns it, but kept for debuggers reading the chain.
    free: usize,
    _reserved: usize,
}

impl Stktop {
    /// The record of a segment of `segment_size` bytes owned by `m`, before any split.
    pub(crate) fn new(m: *mut M, segment_size: usize) -> Stktop {
        Stktop {
            gobuf: Gobuf::new_empty(),
            m,
            old_limit: 0,
            old_base: 0,
            segment_size,
            free: 1,
            _reserved: 0,
        }
    }

    /// Where the record of the segment whose top is `top` lives.
    #[inline]
    pub(crate) fn at(top: usize) -> *mut Stktop {
        (top - core::mem::size_of::<Stktop>()) as *mut Stktop
    }
}

// asm/offsets.h: STKTOP_GOBUF, STKTOP_M, STKTOP_SIZE (a multiple of 16, so stktop stays aligned).
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(Stktop, gobuf) == 0);
    assert!(offset_of!(Stktop, m) == 32);
    assert!(size_of::<Stktop>() == 80);
    assert!(size_of::<Stktop>().is_multiple_of(16));
};

/// The closure, and then its outcome, on the caller's stack while it runs on the segment.
struct Call<F, R> {
    f: Option<F>,
    result: MaybeUninit<Result<R, Box<dyn Any + Send>>>,
}

/// What `morestack` calls on the segment: runs the closure behind `arg` (a `*mut Call<F, R>`),
/// catching any panic, and returns `arg` as its return word, which comes back to [`try_grow`]
/// through `lessstack`, `m.cret` and [`splitstack_oldstack`].
unsafe extern "C" fn run_call<F: FnOnce() -> R, R>(arg: usize) -> usize {
    // SAFETY: try_grow passes a pointer to its own Call, live until morestack returns.
    let call = unsafe { &mut *(arg as *mut Call<F, R>) };
    // A new context on the segment: no fake stack of its own yet.
    sanitizer::finish_switch(FakeStack::NONE);
    let f = call.f.take().expect("splitstack: a segment's closure ran twice");
    call.result.write(catch_unwind(AssertUnwindSafe(f)));
    arg
}

/// The unsplit (Go's `oldstack`), called by `lessstack` on the segment being left: restores the
/// old stack's bounds, takes the return word out of `m.cret` and clears it, and resumes the
/// caller of `morestack` with that word. The segment itself is returned by that caller, once it
/// runs on the old stack again.
///
/// # Safety
/// Only `lessstack` calls this, with the segment's own Stktop.
#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn splitstack_oldstack(stktop: *mut Stktop) -> ! {
    // SAFETY: lessstack passes the Stktop that try_grow wrote and morestack completed; m points
    // to this thread's M, which outlives every segment.
    unsafe {
        let top = &*stktop;
        let m = &mut *top.m;
        machine::set_bounds(m, Bounds { limit: top.old_limit, base: top.old_base });
        let cret = m.cret;
        m.cret = 0;
        // The segment's context ends here; the old stack's bounds are in the Stktop.
        let old = StackBounds::new(top.old_limit, top.old_base - top.old_limit);
        sanitizer::start_switch(None, old);
        arch::splitstack_gogo(&top.gobuf, cret)
    }
}

/// The usable size of the segment a request for `segment_size` bytes gets.
#[inline]
fn segment_len(segment_size: usize) -> Result<usize, Error> {
    let page_mask = page_size() - 1;
    match segment_size.max(MIN_SEGMENT_SIZE).checked_add(page_mask) {
        Some(len) if segment_size != 0 => Ok(len & !page_mask),
        _ => Err(segment_size_error(segment_size)),
    }
}

#[cold]
fn segment_size_error(segment_size: usize) -> Error {
    if segment_size == 0 {
        Error::invalid_size("a stack segment of 0 bytes was requested")
    } else {
        Error::invalid_size(format!(
            "stack segment size {segment_size} overflows when rounded up to whole pages"
        ))
    }
}

/// Runs `f` on a new stack segment of at least `segment_size` bytes and returns its result.
///
/// Sizes are rounded up to whole pages and to at least [`MIN_SEGMENT_SIZE`]. The segment comes
/// from this thread's cache when one of that size is there, so a loop that grows every iteration
/// maps memory only once. A panic in `f` is caught on the segment, the segment is returned, and
/// the same payload continues unwinding from the caller of `try_grow`.
///
/// # Errors
/// [`ErrorKind::InvalidSize`](crate::ErrorKind::InvalidSize) for a size of 0 or one that
/// overflows when rounded; the OS's refusal to map a segment as in [`Stack::new`](crate::Stack::new).
pub fn try_grow<R, F: FnOnce() -> R>(segment_size: usize, f: F) -> Result<R, Error> {
    let len = segment_len(segment_size)?;
    let m = current_m().ok_or_else(thread_exiting)?;
    let mut call = Call { f: Some(f), result: MaybeUninit::uninit() };
    let call_ptr = &mut call as *mut Call<F, R> as usize;
    // SAFETY: `m` is this thread's M; the &mut lives only for this statement.
    let (segment, stktop) = unsafe { (*m).push_segment(len)? };
    // SAFETY: the segment is ours alone until popped below, and stays mapped (the M keeps it);
    // stktop lies at its top, 16-byte aligned, filled in but for the gobuf, which morestack
    // saves. run_call catches every panic, so nothing unwinds through morestack. The closure
    // and its result live in `call`, on this stack, which stays put until morestack returns;
    // oldstack has restored this stack's bounds by then.
    let word = unsafe {
        let mut fake = FakeStack::NONE;
        let to = StackBounds::new(segment.bottom() as usize, segment.len());
        sanitizer::start_switch(Some(&mut fake), to);
        let word = arch::morestack(stktop, run_call::<F, R>, call_ptr);
        sanitizer::finish_switch(fake);
        (*m).pop_segment(segment);
        word
    };
    assert_eq!(word, call_ptr, "splitstack: the unsplit returned a different word than was sent");
    // SAFETY: run_call wrote the result before returning the word that brought us here.
    match unsafe { call.result.assume_init() } {
        Ok(value) => Ok(value),
        Err(payload) => resume_unwind(payload),
    }
}

#[cold]
fn thread_exiting() -> Error {
    Error::invalid_size("stack growth while the thread is exiting")
}

/// Runs `f` on a new stack segment of at least `segment_size` bytes; see [`try_grow`].
///
/// # Panics
/// With a message saying why, where [`try_grow`] returns `Err`: a segment size of 0 or one that
/// overflows, or the OS refusing memory. A panic in `f` continues from here with its payload.
pub fn grow<R, F: FnOnce() -> R>(segment_size: usize, f: F) -> R {
    match try_grow(segment_size, f) {
        Ok(value) => value,
        Err(err) => panic!("{err}"),
    }
}

/// Runs `f` here if at least `red_zone` bytes of stack (plus [`UNWIND_RESERVE`]) are left, and
/// on a new segment of `segment_size` bytes otherwise.
///
/// The check is a few inlined instructions: the stack pointer compared with a thread-local limit
/// plus a constant. Put it at the top of a recursive function; `red_zone` must cover the deepest
/// stack use between two checks. The [`UNWIND_RESERVE`] below it is what lets a panic, or the
/// drop of a suspended coroutine, unwind through those frames. A segment is made at least
/// `red_zone + UNWIND_RESERVE` plus [`MIN_SEGMENT_SIZE`] bytes, so that `f` passes the same check
/// on it.
///
/// # Panics
/// As [`grow`], when a segment is needed and cannot be had.
#[inline(always)]
pub fn maybe_grow<R, F: FnOnce() -> R>(red_zone: usize, segment_size: usize, f: F) -> R {
    let sp = arch::stack_pointer();
    // LIMIT_UNKNOWN + MAX_RED_ZONE + UNWIND_RESERVE does not overflow, and a constant red_zone
    // folds the first test away: a load, an add, a compare and a branch on the stack pointer.
    if red_zone <= MAX_RED_ZONE && sp >= stack_limit() + (red_zone + UNWIND_RESERVE) {
        f()
    } else {
        maybe_grow_slow(red_zone, segment_size, f)
    }
}

/// The rest of [`maybe_grow`]: learn the thread's bounds if this is its first check, then grow
/// if the stack is really short.
#[inline(never)]
#[cold]
fn maybe_grow_slow<R, F: FnOnce() -> R>(red_zone: usize, segment_size: usize, f: F) -> R {
    let needed = red_zone.saturating_add(UNWIND_RESERVE);
    if remaining_stack() >= needed {
        f()
    } else {
        grow(segment_size.max(needed.saturating_add(MIN_SEGMENT_SIZE)), f)
    }
}

/// Bytes left on the current stack (the thread's own, a segment, or a coroutine's) above its
/// guard: from the stack pointer down to the lowest usable address.
pub fn remaining_stack() -> usize {
    // Learn the thread's bounds if this is the first call.
    current_m();
    arch::stack_pointer().saturating_sub(stack_limit())
}
