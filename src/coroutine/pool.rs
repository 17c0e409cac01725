//! The coroutine stack pool: each thread keeps the stacks of its finished coroutines for its next
//! ones, so that creating, running and dropping coroutines costs no system call once the pool is
//! warm. Apart from the segment cache (src/segment.rs): a coroutine stack's top holds the
//! coroutine's record, not a Stktop, and its sizes are the users' rather than the split's.

use crate::error::Error;
use crate::machine::{self, M};
use crate::stack::{Stack, TRIM_KEEP};
use core::mem::ManuallyDrop;

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

/// A thread's free coroutine stacks. Part of the thread's `M`.
pub(crate) struct StackPool {
    /// The stacks, most recently released last.
    stacks: Vec<Stack>,
    /// How many stacks `stacks` may hold; 0 once the thread is tearing down.
    capacity: usize,
    /// `stacks[..trimmed]` are trimmed (`Stack::trim`) and untouched since.
    trimmed: usize,
    /// How long `stacks` may grow before a release takes the slow path, which trims or evicts:
    /// `capacity`, or fewer so that at most [`POOL_UNTRIMMED_MAX`] stacks are untrimmed; 0
    /// until `stacks` has room for `capacity` stacks.
    limit: usize,
    /// Coroutine stacks this thread made with [`Stack::new`]; pool hits do not count.
    pub(crate) mapped: u64,
}

impl StackPool {
    /// An empty pool of [`COROUTINE_POOL_CAPACITY`] stacks.
    pub(crate) const fn new() -> StackPool {
        StackPool {
            stacks: Vec::new(),
            capacity: COROUTINE_POOL_CAPACITY,
            trimmed: 0,
            limit: 0,
            mapped: 0,
        }
    }

    /// How many stacks the pool holds.
    pub(crate) fn len(&self) -> usize {
        self.stacks.len()
    }

    /// Whether the most recently released stack has `len` usable bytes.
    #[inline]
    fn last_has_len(&self, len: usize) -> bool {
        self.stacks.last().is_some_and(|stack| stack.len() == len)
    }

    /// Takes the most recently released stack.
    ///
    /// # Safety
    /// The pool holds a stack.
    #[inline]
    unsafe fn take_last(&mut self) -> Stack {
        debug_assert!(!self.stacks.is_empty());
        // SAFETY: the caller's contract.
        let stack = unsafe { self.stacks.pop().unwrap_unchecked() };
        if self.stacks.len() < self.trimmed {
            self.took_trimmed();
        }
        stack
    }

    /// A trimmed stack left the pool: one fewer is trimmed.
    #[cold]
    fn took_trimmed(&mut self) {
        self.trimmed -= 1;
        self.set_limit();
    }

    fn set_limit(&mut self) {
        // 0 until `stacks` has room for `capacity` stacks, which `release` relies on.
        self.limit = if self.stacks.capacity() >= self.capacity {
            self.capacity.min(self.trimmed + POOL_UNTRIMMED_MAX)
        } else {
            0
        };
    }

    /// Makes a stack of `len` usable bytes the last one in the pool, for [`take_last`]: any
    /// pooled one, the most recently released first, or a new one.
    ///
    /// [`take_last`]: StackPool::take_last
    #[cold]
    fn bring_last(&mut self, len: usize) -> Result<(), Error> {
        match self.stacks.iter().rposition(|s| s.len() == len) {
            Some(i) => {
                if i < self.trimmed {
                    self.took_trimmed();
                }
                let stack = self.stacks.remove(i);
                self.stacks.push(stack);
            }
            None => {
                let stack = Stack::new(len)?;
                stack.set_role(crate::guard::Role::Coroutine);
                self.mapped += 1;
                self.stacks.push(stack);
            }
        }
        Ok(())
    }

    /// A coroutine stack nothing runs on any more goes into the pool; past
    /// [`POOL_UNTRIMMED_MAX`] untrimmed stacks the pool trims them, and when it is full the one
    /// released longest ago goes back to the stack heap (and `stack` itself once the thread is
    /// tearing down).
    ///
    /// # Safety
    /// `stack` is not used again (it moves into the pool, or is taken for the slow path).
    #[inline]
    unsafe fn release(&mut self, stack: &mut ManuallyDrop<Stack>) {
        let len = self.stacks.len();
        if len < self.limit {
            // SAFETY: `limit` is 0 until `stacks` has room for `capacity` stacks (`set_limit`),
            // and at most `capacity`, so there is room at `len`; the caller gives the stack up.
            // Copied from its place rather than moved through a temporary.
            unsafe {
                core::ptr::copy_nonoverlapping(&**stack, self.stacks.as_mut_ptr().add(len), 1);
                self.stacks.set_len(len + 1);
            }
        } else {
            // SAFETY: the caller gives the stack up.
            self.release_slow(unsafe { ManuallyDrop::take(stack) });
        }
    }

    #[cold]
    fn release_slow(&mut self, stack: Stack) {
        if self.capacity == 0 {
            drop(stack);
            return;
        }
        // Room for the whole pool once, so that `release` never grows `stacks`.
        self.stacks.reserve_exact(self.capacity.saturating_sub(self.stacks.len()));
        if self.stacks.len() >= self.capacity {
            let mut oldest = self.stacks.remove(0);
            if self.trimmed > 0 {
                self.trimmed -= 1;
                oldest.mark_trimmed();
            }
            drop(oldest);
        }
        if self.stacks.len() - self.trimmed >= POOL_UNTRIMMED_MAX {
            for pooled in &self.stacks[self.trimmed..] {
                // SAFETY: a pooled stack: nothing runs on it, and nothing on it is live.
                unsafe { pooled.trim() };
            }
            self.trimmed = self.stacks.len();
        }
        self.stacks.push(stack);
        self.set_limit();
    }

    /// The resident memory the pooled stacks may hold at most now: the whole usable part of each
    /// untrimmed stack and [`TRIM_KEEP`] bytes of each trimmed one.
    pub(crate) fn resident_bound(&self) -> usize {
        let trimmed: usize =
            self.stacks[..self.trimmed].iter().map(|s| s.len().min(TRIM_KEEP)).sum();
        let untrimmed: usize = self.stacks[self.trimmed..].iter().map(Stack::len).sum();
        trimmed + untrimmed
    }

    /// Keeps nothing from now on (the thread is past its teardown).
    pub(crate) fn turn_off(&mut self) {
        self.capacity = 0;
        self.limit = 0;
    }

    /// The thread is exiting: gives every stack back and keeps none from now on.
    pub(crate) fn tear_down(&mut self) {
        self.turn_off();
        for (i, mut stack) in std::mem::take(&mut self.stacks).into_iter().enumerate() {
            if i < self.trimmed {
                stack.mark_trimmed();
            }
            drop(stack);
        }
        self.trimmed = 0;
    }
}

/// A stack of `len` usable bytes from this thread's coroutine stack pool, or a new one.
#[inline]
pub(super) fn take_stack(len: usize) -> Result<Stack, Error> {
    let m = machine::m_ptr();
    // SAFETY: this thread's M, with no other reference to it live; each reference made here
    // lasts one statement. The pool's last stack has `len` bytes when `take_last` runs: it had,
    // or the slow path put one there.
    unsafe {
        if !(*m).pool.last_has_len(len) {
            take_stack_slow(m, len)?;
        }
        // One path for the stack, from the pool to the caller: merging a fast path's stack
        // with one returned through memory by the slow path kept it in memory on both.
        Ok((*m).pool.take_last())
    }
}

/// [`take_stack`] without a hit on the last released stack. Every pooled stack was taken here
/// first, on this thread (a Coroutine is not Send): the thread is set up (its teardown, which
/// frees the pool, its alternate signal stack, the overflow handler) before the pool can hold
/// anything.
///
/// # Safety
/// `m` is this thread's M, with no reference to it live.
#[cold]
#[inline(never)]
unsafe fn take_stack_slow(m: *mut M, len: usize) -> Result<(), Error> {
    // SAFETY: the caller's contract; each reference lasts one statement.
    unsafe {
        machine::set_up(m);
        (*m).pool.bring_last(len)
    }
}

/// Sets the thread up for a coroutine whose stack did not come from [`take_stack`] (a caller's,
/// `Coroutine::with_stack`): its stack goes into this thread's pool when the coroutine is
/// dropped, so the teardown that frees the pool, and the alternate signal stack, must be there.
#[inline]
pub(super) fn set_up_thread() {
    // SAFETY: this thread's M, with no other reference to it live.
    unsafe { machine::set_up(machine::m_ptr()) }
}

/// Back to this thread's pool (or to the process-wide stack heap, if the pool is full or the
/// thread is exiting).
///
/// # Safety
/// `stack` is not used again.
#[inline]
pub(super) unsafe fn release_stack(stack: &mut ManuallyDrop<Stack>) {
    // SAFETY: this thread's M, with no other reference to it live; the caller gives the stack
    // up.
    unsafe { (*machine::m_ptr()).pool.release(stack) }
}
