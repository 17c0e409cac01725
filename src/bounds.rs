//! The current stack's bounds (Go's `stackguard` and `stackbase`): the limit word that the
//! inlined check of [`maybe_grow`](crate::maybe_grow) compares the stack pointer with, how it
//! encodes the stack's size, and how a thread learns its own stack's bounds.
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
/// needs it, [`current_stack_size`], which the doubling of segments calls: it reads the size
/// from the limit word alone.
#[inline]
pub(crate) fn limit_word(bottom: usize, base: usize) -> usize {
    debug_assert_eq!(bottom & LIMIT_SIZE_MASK, 0, "splitstack: a stack bottom not 64-byte aligned");
    let size = base.saturating_sub(bottom).max(1);
    let log2 = usize::BITS - (size - 1).leading_zeros();
    bottom | log2 as usize
}

/// [`limit_word`] of a stack of `len` bytes from `bottom`, `len` at least 2 (a stack is whole
/// pages): a bit scan and an `or`, for the creation of every coroutine.
#[inline(always)]
pub(crate) fn stack_limit_word(bottom: usize, len: usize) -> usize {
    debug_assert!(len >= 2 && bottom & LIMIT_SIZE_MASK == 0);
    // `| 1` changes no log2 of a value of 2 or more, and tells the compiler it is not zero.
    let log2 = core::num::NonZeroUsize::new((len - 1) | 1).map_or(0, |v| v.ilog2() + 1);
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
    Bounds { limit: limit_word(bottom.next_multiple_of(LIMIT_SIZE_MASK + 1), base), base }
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
    fn a_limit_word_keeps_the_address_and_the_rounded_up_log2_of_the_size() {
        let bottom = 0x7f00_0000_0000;
        for (size, log2) in [(1, 0), (2, 1), (4096, 12), (4097, 13), (1 << 20, 20), (3 << 20, 22)] {
            let word = limit_word(bottom, bottom + size);
            assert_eq!(limit_address(word), bottom, "size {size}");
            assert_eq!(word & LIMIT_SIZE_MASK, log2, "size {size}");
        }
    }

    #[test]
    fn a_stack_limit_word_is_the_limit_word_of_its_range() {
        for len in [2, 3, 4096, 4097, 8192, 12288, 1 << 20, (1 << 20) + 4096, 1 << 40] {
            assert_eq!(stack_limit_word(1 << 20, len), limit_word(1 << 20, (1 << 20) + len));
        }
    }

    #[test]
    fn a_limit_word_is_at_most_63_bytes_above_its_stack_bottom() {
        let bottom = 64 * 1000;
        let word = limit_word(bottom, bottom + (1 << 40));
        assert!(word >= bottom && word - bottom <= 63);
    }

    #[test]
    fn an_empty_or_inverted_stack_counts_as_one_byte() {
        assert_eq!(limit_word(128, 128), 128);
        assert_eq!(limit_word(128, 64), 128);
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
