//! The coroutine stack pool: each thread keeps the stacks of its finished coroutines for its next
//! ones, so that creating, running and dropping coroutines costs no system call once the pool is
//! warm. Apart from the segment cache (src/segment.rs): a coroutine stack's top holds the
//! coroutine's record, not a Stktop, and its sizes are the users' rather than the split's.

use crate::error::Error;
use crate::machine::{self, M};
use crate::stack::{Stack, TRIM_KEEP};
use core::mem::{ManuallyDrop, MaybeUninit};

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

/// `StackPool::last_len` when the pool is turned off: no stack has this length, so a take
/// misses the slot and a release does not fill it.
const TURNED_OFF: usize = usize::MAX;

/// A thread's free coroutine stacks. Part of the thread's `M`.
///
/// The most recently released stack is in a slot of its own, `last`, which the next coroutine
/// of its size takes: a create-and-finish loop moves one stack between the slot and its
/// coroutines with a length test and three words each way. The older ones are in `stacks`.
/// Together they hold at most `capacity` stacks, at most [`POOL_UNTRIMMED_MAX`] of them
/// untrimmed (the slot's counts).
pub(crate) struct StackPool {
    /// The most recently released stack, when `last_len` is its length. Always initialized
    /// bytes (zeros at first): a take leaves the taken stack's bits here, so that a release of
    /// the same stack finds them ([`StackPool::release`]).
    last: MaybeUninit<Stack>,
    /// `last`'s usable length; 0 when the slot is empty, [`TURNED_OFF`] once the thread is
    /// tearing down.
    last_len: usize,
    /// The older stacks, most recently released last.
    stacks: Vec<Stack>,
    /// How many stacks the pool may hold; 0 once the thread is tearing down.
    capacity: usize,
    /// `stacks[..trimmed]` are trimmed (`Stack::trim`) and untouched since.
    trimmed: usize,
    /// How long `stacks` may grow before a move into it takes the slow path, which trims or
    /// evicts: `capacity - 1` (the slot holds one more), or fewer so that at most
    /// [`POOL_UNTRIMMED_MAX`] stacks, the slot's included, are untrimmed; 0 until `stacks` has
    /// room for `capacity` stacks.
    limit: usize,
    /// Coroutine stacks this thread made with [`Stack::new`]; pool hits do not count.
    pub(crate) mapped: u64,
}

impl StackPool {
    /// An empty pool of [`COROUTINE_POOL_CAPACITY`] stacks.
    pub(crate) const fn new() -> StackPool {
        StackPool {
            last: MaybeUninit::zeroed(),
            last_len: 0,
            stacks: Vec::new(),
            capacity: COROUTINE_POOL_CAPACITY,
            trimmed: 0,
            limit: 0,
            mapped: 0,
        }
    }

    /// Whether the slot holds a stack.
    fn has_last(&self) -> bool {
        self.last_len != 0 && self.last_len != TURNED_OFF
    }

    /// How many stacks the pool holds.
    pub(crate) fn len(&self) -> usize {
        self.stacks.len() + usize::from(self.has_last())
    }

    /// Takes the slot's stack if it has `len` usable bytes.
    #[inline]
    fn take_last(&mut self, len: usize) -> Option<Stack> {
        if self.last_len != len {
            return None;
        }
        self.last_len = 0;
        // SAFETY: `last_len` was the length of the stack in the slot, which is now empty.
        Some(unsafe { self.last.assume_init_read() })
    }

    /// Moves the slot's stack, if any, into `stacks`, leaving the slot empty (unless turned off).
    fn empty_slot(&mut self) {
        if self.has_last() {
            self.last_len = 0;
            // SAFETY: the slot held a stack, and is empty now.
            let stack = unsafe { self.last.assume_init_read() };
            self.push_older(stack);
        }
    }

    /// A trimmed stack left the pool: one fewer is trimmed.
    #[cold]
    fn took_trimmed(&mut self) {
        self.trimmed -= 1;
        self.set_limit();
    }

    fn set_limit(&mut self) {
        // 0 until `stacks` has room for `capacity` stacks, which `push_older` relies on.
        self.limit = if self.stacks.capacity() >= self.capacity {
            (self.capacity.min(self.trimmed + POOL_UNTRIMMED_MAX)).saturating_sub(1)
        } else {
            0
        };
    }

    /// Puts a stack of `len` usable bytes in the slot, for [`take_stack`]: any pooled one, the
    /// most recently released first, or a new one. The slot's own stack, of another size, moves
    /// into `stacks` first.
    #[cold]
    fn fill_slot(&mut self, len: usize) -> Result<(), Error> {
        self.empty_slot();
        let stack = match self.stacks.iter().rposition(|s| s.len() == len) {
            Some(i) => {
                if i < self.trimmed {
                    self.took_trimmed();
                }
                self.stacks.remove(i)
            }
            None => {
                let stack = Stack::new(len)?;
                stack.set_role(crate::guard::Role::Coroutine);
                self.mapped += 1;
                stack
            }
        };
        // Even once turned off: the stack is taken at once (see `keep_turned_off`).
        self.last.write(stack);
        self.last_len = len;
        Ok(())
    }

    /// A coroutine stack nothing runs on any more goes into the pool's slot; the one there
    /// before moves into `stacks`, where past [`POOL_UNTRIMMED_MAX`] untrimmed stacks the pool
    /// trims them, and when it is full the one released longest ago goes back to the stack heap
    /// (and `stack` itself once the thread is tearing down).
    ///
    /// # Safety
    /// `stack` is not used again (it moves into the pool, or is taken for the slow path).
    #[inline]
    unsafe fn release(&mut self, stack: &mut ManuallyDrop<Stack>) {
        if self.last_len == 0 {
            self.last_len = stack.len();
            // The stack the slot's last take handed out comes back in a create-and-finish loop:
            // its bits are still in the slot, and are not stored again. Stored, they would be
            // forwarded to the next take's loads, whose results feed the switch: a chain of
            // store-to-load forwarding that would run through every iteration of the loop.
            // Comparing the bottoms suffices: a stack's other fields do not change while a
            // coroutine holds it, and the slot forgets the bits of a stack that leaves the pools
            // (`forget`), so no other stack at the same address can find them.
            // SAFETY: the slot's bytes are always initialized, and any bits are a valid `Stack`
            // (its fields are integers); this one is only compared, never used as a stack.
            if unsafe { self.last.assume_init_ref() }.bottom() != stack.bottom() {
                // SAFETY: the slot is empty; the caller gives the stack up. Copied from its
                // place rather than moved through a temporary.
                unsafe { core::ptr::copy_nonoverlapping(&**stack, self.last.as_mut_ptr(), 1) };
            }
        } else {
            // SAFETY: the caller gives the stack up.
            self.release_slow(unsafe { ManuallyDrop::take(stack) });
        }
    }

    /// `stack`, which a coroutine took from this pool, leaves the pools for good: the slot
    /// forgets its bits if they are still there, so that a later stack at the same address is
    /// never taken for it by [`StackPool::release`].
    fn forget(&mut self, stack: &Stack) {
        // SAFETY: the slot's bytes are always initialized (see `release`).
        if self.last_len == 0 && unsafe { self.last.assume_init_ref() }.bottom() == stack.bottom() {
            self.last = MaybeUninit::zeroed();
        }
    }

    #[cold]
    fn release_slow(&mut self, stack: Stack) {
        if self.last_len == TURNED_OFF {
            drop(stack);
            return;
        }
        self.empty_slot();
        self.last_len = stack.len();
        self.last.write(stack);
    }

    /// Moves a stack released before the slot's into `stacks`.
    #[inline]
    fn push_older(&mut self, stack: Stack) {
        let len = self.stacks.len();
        if len < self.limit {
            // SAFETY: `limit` is 0 until `stacks` has room for `capacity` stacks (`set_limit`),
            // and below `capacity`, so there is room at `len`.
            unsafe {
                self.stacks.as_mut_ptr().add(len).write(stack);
                self.stacks.set_len(len + 1);
            }
        } else {
            self.push_older_slow(stack);
        }
    }

    #[cold]
    fn push_older_slow(&mut self, stack: Stack) {
        if self.capacity == 0 {
            drop(stack);
            return;
        }
        // Room for the whole pool once, so that `push_older` never grows `stacks`.
        self.stacks.reserve_exact(self.capacity.saturating_sub(self.stacks.len()));
        // The slot holds one more.
        if self.stacks.len() + 1 >= self.capacity {
            let mut oldest = self.stacks.remove(0);
            if self.trimmed > 0 {
                self.trimmed -= 1;
                oldest.mark_trimmed();
            }
            drop(oldest);
        }
        // Counting the slot's, which is untrimmed.
        if self.stacks.len() - self.trimmed + 1 >= POOL_UNTRIMMED_MAX {
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
        let last = if self.has_last() { self.last_len } else { 0 };
        trimmed + untrimmed + last
    }

    /// Keeps nothing from now on (the thread is past its teardown); the slot's stack, if any,
    /// goes back to the stack heap.
    pub(crate) fn turn_off(&mut self) {
        if self.has_last() {
            self.last_len = 0;
            // SAFETY: the slot held a stack, and is empty now.
            drop(unsafe { self.last.assume_init_read() });
        }
        self.capacity = 0;
        self.limit = 0;
        self.last_len = TURNED_OFF;
    }

    /// After a take through the slot of a turned-off pool (whose slow path hands the new stack
    /// over in the slot): the slot is marked turned off again.
    #[inline]
    fn keep_turned_off(&mut self) {
        if self.capacity == 0 {
            self.last_len = TURNED_OFF;
        }
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
    // lasts one statement.
    unsafe {
        if let Some(stack) = (*m).pool.take_last(len) {
            return Ok(stack);
        }
        // Through the slot too, so that the stack reaches the caller in registers on both
        // paths: merging a fast path's stack with one returned through memory by the slow path
        // kept it in memory on both.
        take_stack_slow(m, len)?;
        // The slow path filled the slot with a stack of `len` bytes.
        let stack = (*m).pool.take_last(len).unwrap_unchecked();
        (*m).pool.keep_turned_off();
        Ok(stack)
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
        (*m).pool.fill_slot(len)
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

/// `stack`, a coroutine's, leaves the pools for good (given to the caller by `into_stack`).
pub(super) fn forget_stack(stack: &Stack) {
    // SAFETY: this thread's M, with no other reference to it live.
    unsafe { (*machine::m_ptr()).pool.forget(stack) }
}
