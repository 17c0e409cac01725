//! The current stack's bounds (Go's `stackguard` and `stackbase`): the limit word that the
//! inlined check of [`maybe_grow`](crate::maybe_grow) compares the stack pointer with, and how a
//! thread learns its own stack's bounds.
//!
//! Each context has its bounds in a place of its own: the thread's in the thread-local `THREAD`,
//! each coroutine's in its record. The thread-local `CURRENT` points at the running context's,
//! so the check loads the pointer, then the limit. A coroutine switch moves only the pointer
//! (src/coroutine/mod.rs); a split (src/segment.rs) and its unsplit rewrite the bounds of the
//! context they run in, which therefore stay that context's across its switches: a coroutine
//! that suspends on a segment is resumed with the segment's bounds, at no cost to the switch.

use crate::stack::page_size;
use std::cell::Cell;

/// The bounds of a stack: see `CURRENT`.
#[repr(C, align(16))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// The lowest usable address, 64-byte aligned: the limit word the inlined check compares
    /// the stack pointer with (see [`limit_word`]).
    pub(crate) limit: usize,
    /// The highest address, exclusive.
    pub(crate) base: usize,
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
    limit & !LIMIT_LOW_BITS
}

/// The size of the current stack (the thread's own, a segment or a coroutine's), rounded up to
/// a power of two; 0 if the thread's bounds were never learnt.
pub(crate) fn current_stack_size() -> usize {
    // SAFETY: `CURRENT` always points at live bounds (see `stack_limit`).
    let bounds = unsafe { *current() };
    if bounds.limit == LIMIT_UNKNOWN {
        return 0;
    }
    match bounds.base.saturating_sub(limit_address(bounds.limit)) {
        0 => 0,
        size => size.checked_next_power_of_two().unwrap_or(0),
    }
}

/// The address of this thread's `CURRENT`, which a coroutine caches in its record for the
/// switch (a coroutine never leaves its thread).
#[inline(always)]
pub(crate) fn current_cell() -> *mut *mut Bounds {
    CURRENT.with(|cell| cell.as_ptr())
}

/// The running context's bounds. Written through only by the thread itself, and only once its
/// bounds are known ([`learn_if_unknown`]): until then it is the shared, read-only
/// `UNKNOWN_BOUNDS`.
#[inline(always)]
pub(crate) fn current() -> *mut Bounds {
    CURRENT.with(|cell| cell.get())
}

/// The current stack's limit: two loads (the context's bounds, then its limit).
#[inline(always)]
pub(crate) fn stack_limit() -> usize {
    // SAFETY: `CURRENT` always points at live bounds: the thread's, a running coroutine's
    // record, or the static sentinel.
    unsafe { (*current()).limit }
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
static UNKNOWN_BOUNDS: Bounds = Bounds { limit: LIMIT_UNKNOWN, base: 0 };

thread_local! {
    /// The running context's bounds: `limit` is the limit word ([`limit_word`]) of the stack it
    /// runs on now (Go's `stackguard`, without Go's slack), `base` that stack's highest address,
    /// exclusive (Go's `stackbase`). Points at `THREAD`, at a running coroutine's record, or at
    /// `UNKNOWN_BOUNDS` until the thread's bounds are learnt. Without a destructor, so that the
    /// check reads it with one load.
    static CURRENT: Cell<*mut Bounds> =
        const { Cell::new(&raw const UNKNOWN_BOUNDS as *mut Bounds) };
    /// The thread's own context's bounds, once learnt.
    static THREAD: Cell<Bounds> = const { Cell::new(Bounds { limit: LIMIT_UNKNOWN, base: 0 }) };
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

/// The thread's own context's bounds, learnt first if they are not known yet: what a coroutine
/// whose resumer had not learnt them installs for that resumer (a resume records the resumer's
/// `CURRENT` as it is).
pub(crate) fn thread_context() -> *mut Bounds {
    THREAD.with(|thread| {
        if thread.get().limit == LIMIT_UNKNOWN {
            thread.set(thread_bounds());
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
    Bounds { limit: limit_word(bottom.next_multiple_of(LIMIT_LOW_BITS + 1)), base }
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
    fn the_current_stack_size_is_the_installed_stack_size_rounded_up() {
        let saved = current();
        for (size, rounded) in [(4096, 4096), (12288, 16384), (1 << 20, 1 << 20), (0, 0)] {
            let mut bounds = Bounds { limit: limit_word(1 << 30), base: (1 << 30) + size };
            replace_current(&mut bounds);
            assert_eq!(current_stack_size(), rounded, "size {size}");
        }
        replace_current(saved);
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
