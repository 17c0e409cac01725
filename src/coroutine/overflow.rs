//! Overflows a server survives: the opt-in policy under which a guard hit on a coroutine's stack
//! (or on a segment it grew) makes its `resume` panic in the resumer with [`StackOverflow`],
//! instead of aborting the process.
//!
//! The signal handler (src/signal.rs) asks [`recover_overflow`] before it reports an overflow.
//! Under [`OverflowAction::PanicInResumer`], that finds the coroutine the faulting stack belongs
//! to (the guard registry's index names a coroutine stack's record, and a segment's `Stktop` the
//! stack it grew from), checks that it is the stack running now, and rewrites the signal's
//! context so that returning from the handler lands in the resumer's switch as the coroutine's
//! last switch would: with the coroutine finished and a [`StackOverflow`] as its panic payload.
//! It takes no lock and allocates nothing (the payload is a zero-sized box).
//!
//! The coroutine's frames are abandoned, not unwound: their destructors never run. Something may
//! still borrow them (a scoped thread, a pinned value, an intrusive list), so the coroutine's stack
//! and the segments it grew are leaked, never reused or unmapped, and counted by
//! [`leaked_stacks`].

use super::{owner_of, OVERFLOWED};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// What a guard hit on a coroutine's stack does; see [`set_overflow_action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowAction {
    /// Print `splitstack: stack overflow: ...` and abort the process (the default).
    #[default]
    Abort,
    /// Abandon the coroutine (its frames are not unwound; its stack is leaked) and make the
    /// `resume` that ran it panic with a [`StackOverflow`] payload; the coroutine is then done.
    PanicInResumer,
}

/// The panic payload a coroutine's resumer sees when the coroutine overflowed its stack under
/// [`OverflowAction::PanicInResumer`]: `std::panic::catch_unwind(|| co.resume(x))` gives an
/// `Err(payload)` for which `payload.is::<StackOverflow>()` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackOverflow;

impl core::fmt::Display for StackOverflow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(
            "splitstack: a coroutine overflowed its stack; it was abandoned and its stack leaked",
        )
    }
}

/// The process-wide action: 0 for Abort, 1 for PanicInResumer.
static ACTION: AtomicU8 = AtomicU8::new(0);

/// Stacks leaked by the recovery: the coroutines' own and the segments they had grown.
static LEAKED: AtomicU64 = AtomicU64::new(0);

/// Sets what a guard hit on any coroutine's stack, or on a segment a coroutine grew, does from
/// now on, in every thread: [`OverflowAction::Abort`] (the default) or
/// [`OverflowAction::PanicInResumer`].
///
/// Under `PanicInResumer` the coroutine is abandoned where it faulted: its frames are not
/// unwound, so their destructors do not run, and its stack (with the segments it grew) is
/// leaked, since something may still borrow those frames; [`leaked_stacks`] counts them. The
/// resumer's `resume` then panics with a [`StackOverflow`] payload, and the coroutine is
/// [`done`](crate::Coroutine::done). A coroutine that overflows while it is being dropped or
/// force-unwound makes that call panic the same way (a `Drop` on a thread that is already
/// panicking drops the payload instead, as it does every second panic).
///
/// What is not recovered, and keeps today's behaviour (the report and an abort, or the handler
/// installed before splitstack's for a fault that is not an overflow): a fault that is not in a
/// guard region; an overflow of a thread's own stack or of a segment it grew outside every
/// coroutine; an overflow while the thread is panicking (the abandoned panic would stay counted
/// as in progress, and the next one would abort); an overflow on a stack whose guard the
/// registry could not record (more than two million live stacks); and every overflow in a build
/// with the `asan` or `tsan` feature, whose runtimes keep per-switch state the recovery cannot
/// update.
///
/// The hazard that remains: the abandoned frames keep whatever they held. A lock taken there
/// (a `Mutex`, a `RefCell` borrow, or the allocator's own lock when the overflow happened inside
/// `malloc`) is never released, and the next thread that takes it waits forever; memory those
/// frames owned is never freed. Recovery is for servers that would rather lose one request than
/// the process, and that keep locks out of deep recursion.
pub fn set_overflow_action(action: OverflowAction) {
    crate::signal::install_handler();
    ACTION.store(action as u8, Ordering::Relaxed);
}

/// How many stacks overflow recoveries have leaked in this process: each abandoned coroutine's
/// own stack and every segment it had grown (see [`set_overflow_action`]).
pub fn leaked_stacks() -> u64 {
    LEAKED.load(Ordering::Relaxed)
}

/// For the signal handler: recovers from a guard hit on the stack whose lowest usable address
/// is `bottom` if the action is [`OverflowAction::PanicInResumer`] and that stack is a running
/// coroutine's (or a segment it grew), by making the handler's return land in the resumer (see
/// the module documentation). Whether it did; if not, nothing was changed.
///
/// # Safety
/// Called from the SIGSEGV/SIGBUS handler, on the faulting thread, with the kernel's `context`;
/// `bottom` is the bottom of the stack whose guard the fault hit.
pub(crate) unsafe fn recover_overflow(bottom: usize, context: *mut libc::c_void) -> bool {
    if ACTION.load(Ordering::Relaxed) != OverflowAction::PanicInResumer as u8
        || cfg!(any(feature = "asan", feature = "tsan"))
        || std::thread::panicking()
    {
        return false;
    }
    // SAFETY: `bottom` is checked below to be the running stack's before anything is written;
    // until then the records are only read, and a stack in the registry is mapped.
    unsafe {
        let Some((link, stacks)) = owner_of(bottom) else {
            return false;
        };
        // The faulting stack is the one this thread runs on: the interrupted stack pointer lies
        // in it or in its guard region (a wild access to another stack's guard leaves it
        // elsewhere). It is the coroutine's own stack or a segment it grew (owner_of).
        let Some((_, top)) = crate::guard::role_of(bottom) else {
            return false;
        };
        let sp = crate::arch::signal_stack_pointer(context);
        let lowest = bottom.saturating_sub(crate::GUARD_SIZE + crate::stack::page_size());
        if sp < lowest || sp >= top {
            return false;
        }

        // What the coroutine's last switch would do: the outcome written, then the switch
        // (here, the handler's return). The outcome is `finish` alone: the resumer makes the
        // StackOverflow payload, since boxing one here would allocate in a signal handler.
        (*link).finish = OVERFLOWED;
        LEAKED.fetch_add(stacks, Ordering::Relaxed);
        crate::arch::exit_from_signal(context, link as usize, (*link).parent_sp);
    }
    true
}
