//! The current stack's bounds (Go's `stackguard` and `stackbase`): the limit word that the
//! inlined check of [`maybe_grow`](crate::maybe_grow) compares the stack pointer with, how the
//! running context's bounds are found, and how a thread learns its own stack's bounds.
//!
//! Each context has its bounds in a place of its own: the thread's in the thread-local `THREAD`,
//! each coroutine's in its record. The thread-local `CURRENT` names the bounds of the context
//! that ran the last check; a coroutine switch does not touch it. The inlined check compares
//! the stack pointer with both ends of those bounds, so after a switch the first check on the
//! other side misses and takes the slow path, which finds the running context's bounds
//! ([`running`]): the other one a ping-pong left (`PREVIOUS`), the thread's, or those of the
//! coroutine stack or segment that holds the stack pointer, found through the guard registry's
//! index and the record at that stack's top. A split (src/segment.rs) makes its segment's own
//! bounds current and its unsplit what was current before, without writing any context's
//! bounds, so a split right after a switch, before any check, harms nothing. A coroutine's
//! record forgets itself from both thread-locals when the coroutine ends ([`forget`]), and a
//! segment's bounds at the unsplit, before the memory can be reused.

use crate::stack::page_size;
use std::cell::Cell;

/// The bounds of a stack: see `CURRENT`.
#[repr(C, align(16))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// The lowest usable address, 64-byte aligned: the limit word the inlined check compares
    /// the stack pointer with (see [`limit_word`]).
    pub(crate) limit: usize,
    /// The stack's size: its highest address, exclusive, is `limit + size`. Kept as a size so
    /// that one subtraction from the stack pointer serves both ends of the check.
    pub(crate) size: usize,
}

/// The low bits of a limit word, which are 0: a stack's bottom is 64-byte aligned.
const LIMIT_LOW_BITS: usize = 63;

/// The limit word of a stack whose lowest usable address is `bottom` (64-byte aligned): the
/// address itself. Nothing else is encoded in it, so that making one costs nothing at the
/// creation of each coroutine; the stack's size, which only the doubling of segments needs,
/// comes from the bounds' `base` (see [`current_stack_size`]).
#[inline(always)]
pub(crate) fn limit_word(bottom: usize) -> usize {
    debug_assert_eq!(bottom & LIMIT_LOW_BITS, 0, "splitstack: a stack bottom not 64-byte aligned");
    bottom
}

/// The lowest usable address in a limit word.
#[inline]
pub(crate) fn limit_address(limit: usize) -> usize {
    limit
}

/// The size of the current stack (the thread's own, a segment or a coroutine's), rounded up to
/// a power of two; 0 if the thread's bounds were never learnt.
pub(crate) fn current_stack_size() -> usize {
    // SAFETY: `running` returns live bounds.
    let bounds = unsafe { *running() };
    if bounds.limit == LIMIT_UNKNOWN {
        return 0;
    }
    match bounds.size {
        0 => 0,
        size => size.checked_next_power_of_two().unwrap_or(0),
    }
}

/// The bounds `CURRENT` names: the running context's if the last check ran in it (see
/// [`running`]). Written through only by the thread itself, and only once its bounds are known
/// ([`learn_if_unknown`]): until then it is the shared, read-only `UNKNOWN_BOUNDS`.
#[inline(always)]
pub(crate) fn current() -> *mut Bounds {
    CURRENT.with(|cell| cell.get())
}

/// Whether `addr` lies in the stack `bounds` describe: at or above their limit's address and
/// below their base.
#[inline(always)]
pub(crate) fn contains(bounds: *const Bounds, addr: usize) -> bool {
    // SAFETY: every pointer `CURRENT`, `PREVIOUS` and the callers hold names live bounds (a
    // coroutine's record forgets itself before it dies).
    let bounds = unsafe { *bounds };
    addr.wrapping_sub(bounds.limit) < bounds.size
}

/// The running context's bounds, made current: `CURRENT`'s if they hold the stack pointer,
/// else found by [`resolve`]. What every reader that needs the running context's calls.
#[inline]
pub(crate) fn running() -> *mut Bounds {
    let current = current();
    if contains(current, crate::arch::stack_pointer()) {
        current
    } else {
        resolve()
    }
}

/// The slow half of [`running`]: the context that `PREVIOUS` names if its stack holds the stack
/// pointer (a ping-pong between two contexts finds the other one here), else the one
/// [`context_of`] finds; it becomes `CURRENT`, and the one it replaces `PREVIOUS`.
#[cold]
#[inline(never)]
fn resolve() -> *mut Bounds {
    let sp = crate::arch::stack_pointer();
    let current = current();
    let previous = PREVIOUS.with(Cell::get);
    let found =
        if !previous.is_null() && contains(previous, sp) { previous } else { context_of(sp) };
    if found != current {
        PREVIOUS.with(|cell| cell.set(current));
        CURRENT.with(|cell| cell.set(found));
    }
    found
}

/// The bounds of the context whose stack holds `addr` (the stack pointer, or a suspended
/// context's): the thread's own if `addr` lies in the thread's stack or in the bounds the
/// thread's context has now (a segment it grew, or a stack of the caller's installed with
/// [`install_bounds`](crate::machine::install_bounds)); a coroutine's record if `addr` lies in
/// its stack or a segment it grew; else the thread's, which then describe no stack that holds
/// `addr` (a stack switched to with `swap` whose bounds were not installed), so every check
/// there takes the slow path, and `remaining_stack` counts from the thread's bounds, as before
/// this lookup existed. Learns the thread's bounds if they are not known yet.
pub(crate) fn context_of(addr: usize) -> *mut Bounds {
    let thread = thread_context();
    let (bottom, top) = THREAD_STACK.with(Cell::get);
    if contains(thread, addr) || (bottom <= addr && addr < top) {
        return thread;
    }
    // SAFETY: `addr` is on a stack of this thread's: its chain's records are live.
    unsafe { crate::coroutine::context_containing(addr) }.unwrap_or(thread)
}

/// A coroutine's or a segment's bounds are about to die with their record: neither `CURRENT`
/// nor `PREVIOUS` may name them any more (the stack may be reused or unmapped). `CURRENT` falls back to the
/// thread's own bounds, which the next check finds wrong and resolves.
#[inline]
pub(crate) fn forget(bounds: *mut Bounds) {
    PREVIOUS.with(|cell| {
        if cell.get() == bounds {
            cell.set(core::ptr::null_mut());
        }
    });
    if current() == bounds {
        forget_current();
    }
}

/// [`forget`] for bounds that `CURRENT` names (the coroutine ran a check last): out of line, as
/// a coroutine that ran none is the common case.
#[cold]
#[inline(never)]
fn forget_current() {
    CURRENT.with(|cell| cell.set(THREAD.with(Cell::as_ptr)));
}

/// Makes `bounds` current: a segment's own at a split, and what was current before at the
/// unsplit.
#[inline(always)]
pub(crate) fn make_current(bounds: *mut Bounds) {
    CURRENT.with(|cell| cell.set(bounds));
}

/// The running context's limit (see [`running`]).
#[inline]
pub(crate) fn stack_limit() -> usize {
    // SAFETY: `running` returns live bounds.
    unsafe { (*running()).limit }
}

/// A limit above every user-space stack pointer (x86-64 and AArch64 user addresses are
/// below 2^57), so the next check takes the slow path, which learns the thread's bounds. Half of
/// the address space, so that adding a red zone of up to [`MAX_RED_ZONE`] cannot overflow.
pub(crate) const LIMIT_UNKNOWN: usize = usize::MAX / 2;

/// The largest red zone the inlined check handles; larger ones take the slow path, which is
/// exact for any size.
pub(crate) const MAX_RED_ZONE: usize = usize::MAX / 4;

// The check adds at most MAX_RED_ZONE and a reserve of a few KiB to LIMIT_UNKNOWN without
// overflowing, and LIMIT_UNKNOWN lies above every user-space stack pointer.
const _: () = assert!(LIMIT_UNKNOWN.checked_add(MAX_RED_ZONE + (1 << 20)).is_some());
const _: () = assert!(LIMIT_UNKNOWN > 1 << 57);

/// What `CURRENT` points at until the thread learns its bounds: a limit above every stack
/// pointer, so that the first check takes the slow path, which learns them. Never written.
static UNKNOWN_BOUNDS: Bounds = Bounds { limit: LIMIT_UNKNOWN, size: 0 };

thread_local! {
    /// The bounds of the context that ran the last check or resolution: `limit` is the limit
    /// word ([`limit_word`]) of the stack it runs on (Go's `stackguard`, without Go's slack),
    /// `base` that stack's highest address, exclusive (Go's `stackbase`). Points at `THREAD`, at
    /// a coroutine's record, or at `UNKNOWN_BOUNDS` until the thread's bounds are learnt; the
    /// check compares the stack pointer with both ends, so a stale pointer sends it to the slow
    /// path ([`running`]). Without a destructor, so that the check reads it with one load.
    static CURRENT: Cell<*mut Bounds> =
        const { Cell::new(&raw const UNKNOWN_BOUNDS as *mut Bounds) };
    /// The context `CURRENT` named before the last resolution ([`running`]); null when none, or
    /// when that context has ended.
    static PREVIOUS: Cell<*mut Bounds> = const { Cell::new(core::ptr::null_mut()) };
    /// The thread's own context's bounds, once learnt.
    static THREAD: Cell<Bounds> = const { Cell::new(Bounds { limit: LIMIT_UNKNOWN, size: 0 }) };
    /// The thread's own stack, `[bottom, top)`, once learnt: where [`context_of`] knows the
    /// thread's context runs, whatever its bounds say while a split has rewritten them.
    static THREAD_STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Whether `bounds` is the sentinel of a thread that has not learnt its bounds.
#[inline(always)]
pub(crate) fn is_unknown(bounds: *const Bounds) -> bool {
    core::ptr::eq(bounds, &UNKNOWN_BOUNDS)
}

/// Learns the thread's own stack bounds if they are not known yet, so that `current()` may be
/// written through. Only the thread's own context can be unknown: segments and coroutines
/// install theirs.
#[inline]
pub(crate) fn learn_if_unknown() {
    if is_unknown(current()) {
        learn_thread_stack();
    }
}

/// The thread's own context's bounds, learnt first if they are not known yet (with the
/// thread's stack, for [`context_of`]).
pub(crate) fn thread_context() -> *mut Bounds {
    THREAD.with(|thread| {
        if thread.get().limit == LIMIT_UNKNOWN {
            let bounds = thread_bounds();
            thread.set(bounds);
            THREAD_STACK.with(|stack| stack.set((bounds.limit, bounds.limit + bounds.size)));
        }
        thread.as_ptr()
    })
}

/// Points `CURRENT` at the thread's own bounds, learning them if no earlier call did; called
/// while running on the thread's stack.
#[cold]
fn learn_thread_stack() {
    let thread = thread_context();
    CURRENT.with(|cell| cell.set(thread));
}

/// Makes `bounds` the running context's, returning the previous ones (for `on_parent_stack`,
/// which runs a call as its resumer).
#[inline]
pub(crate) fn replace_current(bounds: *mut Bounds) -> *mut Bounds {
    CURRENT.with(|cell| cell.replace(bounds))
}

/// The bounds of the calling thread's own stack, whichever stack it runs on now.
pub(crate) fn thread_bounds() -> Bounds {
    let (bottom, base) = thread_stack_bounds();
    let limit = limit_word(bottom.next_multiple_of(LIMIT_LOW_BITS + 1));
    Bounds { limit, size: base.saturating_sub(limit) }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_word_is_its_stack_bottom() {
        let bottom = 0x7f00_0000_0000;
        assert_eq!(limit_word(bottom), bottom);
        assert_eq!(limit_address(limit_word(bottom)), bottom);
    }

    #[test]
    fn the_current_stack_size_is_the_running_stack_size_rounded_up() {
        let saved = current();
        for (size, rounded) in [(8192, 8192), (12288, 16384), (1 << 20, 1 << 20)] {
            // Bounds around this frame, so that they are the running context's.
            let limit = limit_word((crate::arch::stack_pointer() - 4096) & !LIMIT_LOW_BITS);
            let mut bounds = Bounds { limit, size };
            replace_current(&mut bounds);
            assert_eq!(current_stack_size(), rounded, "size {size}");
            replace_current(saved);
        }
    }

    #[test]
    fn the_current_stack_size_is_known_once_the_bounds_are_learnt() {
        std::thread::spawn(|| {
            learn_if_unknown();
            let size = current_stack_size();
            assert!(size.is_power_of_two() && size >= 64 * 1024, "{size}");
            assert!(stack_limit() < crate::arch::stack_pointer());
        })
        .join()
        .unwrap();
    }
}
