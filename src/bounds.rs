//! The current stack's bounds (Go's `stackguard` and `stackbase`): the limit word that the
//! inlined check of [`maybe_grow`](crate::maybe_grow) compares the stack pointer with, how the
//! running context's bounds are found, and how a thread learns its own stack's bounds.
//!
//! Each stack's bounds are known where the stack is described: the thread's in the
//! thread-local `THREAD`, a coroutine's in its record, a segment's in its Stktop, a stack of the
//! caller's in the thread-local `INSTALLED` once `install_bounds` names it. The thread-local
//! `CURRENT` holds a copy of the bounds of the stack the last check ran on; a coroutine switch
//! does not touch it. The inlined check compares the stack pointer with both ends of those
//! bounds, so after a switch the first check on the other side misses and takes the slow path,
//! which finds the running stack's bounds ([`running`]): the ones a ping-pong's other side left
//! (`PREVIOUS`), the thread's, the installed ones, or those in the record at the top of the
//! coroutine stack or segment that holds the stack pointer, found through the guard registry's
//! index. A split (src/segment.rs) makes its segment's bounds current and its unsplit what was
//! current before. Being copies, the thread-locals never name memory that a finished coroutine
//! or a freed segment gives back; stale ones only send the next check to the slow path.

use crate::stack::page_size;
use std::cell::Cell;

/// The bounds of a stack: see `CURRENT`. Aligned to their size (two words), so that the check
/// loads both from one line and the records that hold them keep the offsets of src/layout.rs.
#[cfg_attr(target_pointer_width = "64", repr(C, align(16)))]
#[cfg_attr(target_pointer_width = "32", repr(C, align(8)))]
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
/// address itself, so that a limit word is read back as an address as it is. Nothing else is
/// encoded in it, so that making one costs nothing at the creation of each coroutine; the
/// stack's size, which only the doubling of segments needs, is the bounds' `size` (see
/// [`current_stack_size`]).
#[inline(always)]
pub(crate) fn limit_word(bottom: usize) -> usize {
    debug_assert_eq!(bottom & LIMIT_LOW_BITS, 0, "splitstack: a stack bottom not 64-byte aligned");
    bottom
}

/// The bounds [`maybe_grow`](crate::maybe_grow) checks against on `stack`.
pub(crate) fn of_stack(stack: &crate::stack::Stack) -> Bounds {
    Bounds { limit: limit_word(stack.bottom() as usize), size: stack.len() }
}

/// The size of the current stack (the thread's own, a segment or a coroutine's), rounded up to
/// a power of two; 0 if the thread's bounds were never learnt.
pub(crate) fn current_stack_size() -> usize {
    let bounds = running();
    if bounds.limit == LIMIT_UNKNOWN {
        return 0;
    }
    match bounds.size {
        0 => 0,
        size => size.checked_next_power_of_two().unwrap_or(0),
    }
}

/// The bounds in `CURRENT`: the running context's if the last check ran in it (see
/// [`running`]).
#[inline(always)]
pub(crate) fn current() -> Bounds {
    CURRENT.with(Cell::get)
}

/// Whether `addr` lies in the stack `bounds` describe: at or above their limit and below
/// `limit + size`.
#[inline(always)]
pub(crate) fn contains(bounds: Bounds, addr: usize) -> bool {
    addr.wrapping_sub(bounds.limit) < bounds.size
}

/// The running context's bounds, made current: `CURRENT`'s if they hold the stack pointer,
/// else found by [`resolve`]. What every reader that needs the running context's calls.
#[inline]
pub(crate) fn running() -> Bounds {
    let current = current();
    if contains(current, crate::arch::stack_pointer()) {
        current
    } else {
        resolve()
    }
}

/// The slow half of [`running`]: `PREVIOUS` if they hold the stack pointer (a ping-pong between
/// two contexts finds the other side's there), else what [`context_of`] finds; they become
/// `CURRENT`, and what they replace `PREVIOUS`.
#[cold]
#[inline(never)]
fn resolve() -> Bounds {
    let sp = crate::arch::stack_pointer();
    let current = current();
    let previous = PREVIOUS.with(Cell::get);
    let found = if contains(previous, sp) { previous } else { context_of(sp) };
    PREVIOUS.with(|cell| cell.set(current));
    CURRENT.with(|cell| cell.set(found));
    found
}

/// The bounds of the stack that holds `addr` (the stack pointer, or a suspended context's): the
/// thread's own; the ones last installed with
/// [`install_bounds`](crate::machine::install_bounds) (a stack of the caller's); a coroutine's
/// own stack or a segment in use, from its record; else bounds that hold nothing (a stack
/// switched to with `swap` whose bounds were not installed), so every check there takes the
/// slow path and finds no room. Learns the thread's bounds if they are not known yet.
pub(crate) fn context_of(addr: usize) -> Bounds {
    let thread = thread_context();
    if contains(thread, addr) {
        return thread;
    }
    let installed = INSTALLED.with(Cell::get);
    if contains(installed, addr) {
        return installed;
    }
    // SAFETY: `addr` is on a stack of this thread's: its chain's records are live.
    unsafe { crate::coroutine::context_containing(addr) }.unwrap_or(UNKNOWN_BOUNDS)
}

/// Makes `bounds` current, returning what was: a segment's own at a split and what was current
/// before at its unsplit; a suspended resumer's for `on_parent_stack`'s call and back.
#[inline(always)]
pub(crate) fn replace_current(bounds: Bounds) -> Bounds {
    CURRENT.with(|cell| cell.replace(bounds))
}

/// A split: what is current goes to `old`, and `own`, the segment's bounds, becomes current.
/// Copied in place, with no temporary (which `replace_current` would take).
///
/// # Safety
/// `old` and `own` are valid, and do not overlap each other or the thread-local.
#[inline(always)]
pub(crate) unsafe fn enter_segment(old: *mut Bounds, own: *const Bounds) {
    let current = CURRENT.with(Cell::as_ptr);
    // SAFETY: the caller's contract; the thread-local lives as long as the thread.
    unsafe {
        core::ptr::copy_nonoverlapping(current, old, 1);
        core::ptr::copy_nonoverlapping(own, current, 1);
    }
}

/// Makes `bounds`, a stack of the caller's, current, and remembers them for [`context_of`]
/// (see [`install_bounds`](crate::machine::install_bounds)); returns what was current.
pub(crate) fn install(bounds: Bounds) -> Bounds {
    INSTALLED.with(|cell| cell.set(bounds));
    replace_current(bounds)
}

/// The running context's limit (see [`running`]).
#[inline]
pub(crate) fn stack_limit() -> usize {
    running().limit
}

/// The limit of [`UNKNOWN_BOUNDS`]: no stack's limit word (a 64-byte aligned address) equals it,
/// so it marks bounds not yet learnt; with their size of 0 every check against them fails, so
/// the next check takes the slow path, which learns the thread's bounds.
pub(crate) const LIMIT_UNKNOWN: usize = usize::MAX / 2;

/// The largest red zone the inlined check handles; larger ones take the slow path, which is
/// exact for any size.
pub(crate) const MAX_RED_ZONE: usize = usize::MAX / 4;

// The check adds a reserve of a few KiB to a red zone of at most MAX_RED_ZONE without
// overflowing, and no limit word is LIMIT_UNKNOWN.
const _: () = assert!(MAX_RED_ZONE.checked_add(1 << 20).is_some());
const _: () = assert!(LIMIT_UNKNOWN & LIMIT_LOW_BITS != 0);

/// What `CURRENT` holds until the thread learns its bounds: a limit above every stack pointer
/// and no size, so that the first check takes the slow path, which learns them.
const UNKNOWN_BOUNDS: Bounds = Bounds { limit: LIMIT_UNKNOWN, size: 0 };

thread_local! {
    /// The bounds of the context that ran the last check or resolution, by value: `limit` is
    /// the limit word ([`limit_word`]) of the stack it runs on (Go's `stackguard`, without Go's
    /// slack), and the stack ends `size` bytes above it (Go's `stackbase`). `UNKNOWN_BOUNDS`
    /// until the thread's bounds are learnt. The check compares the stack pointer with both
    /// ends, so stale bounds (a switch changes no thread-local) send it to the slow path
    /// ([`running`]); being values, they can never dangle. Without a destructor, so that the
    /// check reads them with one address computation.
    static CURRENT: Cell<Bounds> = const { Cell::new(UNKNOWN_BOUNDS) };
    /// What `CURRENT` held before the last resolution ([`running`]): the other side of a
    /// ping-pong.
    static PREVIOUS: Cell<Bounds> = const { Cell::new(UNKNOWN_BOUNDS) };
    /// The bounds last installed with `install_bounds`: a stack of the caller's.
    static INSTALLED: Cell<Bounds> = const { Cell::new(UNKNOWN_BOUNDS) };
    /// The thread's own stack's bounds, once learnt.
    static THREAD: Cell<Bounds> = const { Cell::new(UNKNOWN_BOUNDS) };
}

/// Whether `bounds` are the sentinel of a thread that has not learnt its bounds.
#[inline(always)]
pub(crate) fn is_unknown(bounds: Bounds) -> bool {
    bounds.limit == LIMIT_UNKNOWN
}

/// Learns the thread's own stack bounds if no check has yet, and makes them current.
#[inline]
pub(crate) fn learn_if_unknown() {
    if is_unknown(current()) {
        learn_thread_stack();
    }
}

/// The thread's own stack's bounds, learnt first if they are not known yet.
pub(crate) fn thread_context() -> Bounds {
    THREAD.with(|thread| {
        if is_unknown(thread.get()) {
            thread.set(thread_bounds());
        }
        thread.get()
    })
}

/// Makes the thread's own bounds current, learning them if no earlier call did; called while
/// running on the thread's stack.
#[cold]
fn learn_thread_stack() {
    let thread = thread_context();
    CURRENT.with(|cell| cell.set(thread));
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
        let bottom = (usize::MAX >> 2) & !LIMIT_LOW_BITS;
        assert_eq!(limit_word(bottom), bottom);
    }

    #[test]
    fn the_current_stack_size_is_the_running_stack_size_rounded_up() {
        let saved = current();
        for (size, rounded) in [(8192, 8192), (12288, 16384), (1 << 20, 1 << 20)] {
            // Bounds around this frame, so that they are the running context's.
            let limit = limit_word((crate::arch::stack_pointer() - 4096) & !LIMIT_LOW_BITS);
            replace_current(Bounds { limit, size });
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
