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

/// What [`StackPool::slot`] holds besides a record's address: nothing; a stack in
/// `StackPool::plain`; or nothing for good, once the thread is tearing down. Below every
/// address a record can have.
const EMPTY: usize = 0;
const PLAIN: usize = 1;
const TURNED_OFF: usize = 2;

/// A thread's free coroutine stacks. Part of the thread's `M`.
///
/// The most recently released stack is in a slot of its own, which the next coroutine of its
/// size takes; the older ones are in `stacks`. Together they hold at most `capacity` stacks, at
/// most [`POOL_UNTRIMMED_MAX`] of them untrimmed (the slot's counts).
///
/// A coroutine that finished and was dropped leaves its stack in the slot as its record's
/// address: the record's first field is the stack, and the record is clean (its `finish`,
/// `cancel`, `panic` and `local` are zero, as a new record's are; see
/// [`release_record`]). The next coroutine of that size whose record lands at the same address
/// (one of the same types, in a create-and-finish loop) finds its record written but for what
/// changes from one coroutine to the next: a take and a release are a word each way, and the
/// stack's bits never move. Any other release puts the stack itself in `plain`.
pub(crate) struct StackPool {
    /// [`EMPTY`], [`PLAIN`], [`TURNED_OFF`], or the address of the clean record of the
    /// coroutine that last ran on the slot's stack, which holds the stack.
    slot: usize,
    /// The slot's stack when `slot` is [`PLAIN`]; also where a take that misses hands its stack
    /// out from.
    plain: MaybeUninit<Stack>,
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
            slot: EMPTY,
            plain: MaybeUninit::uninit(),
            stacks: Vec::new(),
            capacity: COROUTINE_POOL_CAPACITY,
            trimmed: 0,
            limit: 0,
            mapped: 0,
        }
    }

    /// Where the slot's stack is, if it holds one.
    fn last(&self) -> Option<*const Stack> {
        match self.slot {
            EMPTY | TURNED_OFF => None,
            PLAIN => Some(self.plain.as_ptr()),
            record => Some(record as *const Stack),
        }
    }

    /// How many stacks the pool holds.
    pub(crate) fn len(&self) -> usize {
        self.stacks.len() + usize::from(self.last().is_some())
    }

    /// Moves the slot's stack, if any, into `stacks`, leaving the slot empty (unless turned off).
    fn empty_slot(&mut self) {
        if let Some(at) = self.last() {
            self.slot = EMPTY;
            // SAFETY: the slot held the stack at `at`, and is empty now.
            let stack = unsafe { at.read() };
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

    /// [`take_stack`] without a clean record of `len` bytes in the slot (that one
    /// [`take_stack`] takes itself): puts a stack of `len` usable bytes in `plain` and returns
    /// where it is, with the slot empty (or turned off). The slot's own plain stack if it has
    /// that size, else any pooled one, the most recently released first, else a new one; the
    /// slot's other stack, a record's included, moves into `stacks` first.
    #[cold]
    fn take_slow(&mut self, len: usize) -> Result<*const Stack, Error> {
        // SAFETY: `plain` holds the slot's stack when the slot says so.
        if self.slot == PLAIN && unsafe { self.plain.assume_init_ref() }.len() == len {
            self.slot = EMPTY;
            return Ok(self.plain.as_ptr());
        }
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
        // Even once turned off: the stack is taken from here at once.
        self.plain.write(stack);
        Ok(self.plain.as_ptr())
    }

    /// A coroutine stack nothing runs on any more goes into the pool's slot (as itself, in
    /// `plain`); the one there before moves into `stacks`, where past [`POOL_UNTRIMMED_MAX`]
    /// untrimmed stacks the pool trims them, and when it is full the one released longest ago
    /// goes back to the stack heap (and `stack` itself once the thread is tearing down).
    #[cold]
    fn release(&mut self, stack: Stack) {
        if self.slot == TURNED_OFF {
            drop(stack);
            return;
        }
        self.empty_slot();
        self.plain.write(stack);
        self.slot = PLAIN;
    }

    /// [`release`](StackPool::release) for a finished coroutine's clean record at `record`,
    /// whose first field is its stack: the record itself takes the slot, so that a loop that
    /// keeps two coroutines at a time still finds a clean record there.
    ///
    /// # Safety
    /// As [`release_record`].
    #[cold]
    unsafe fn release_record(&mut self, record: usize) {
        if self.slot == TURNED_OFF {
            // SAFETY: the record's first field is its stack, which nothing uses any more.
            drop(unsafe { (record as *const Stack).read() });
            return;
        }
        self.empty_slot();
        self.slot = record;
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
        // SAFETY: the slot's stack.
        let last = self.last().map_or(0, |at| unsafe { (*at).len() });
        trimmed + untrimmed + last
    }

    /// Keeps nothing from now on (the thread is past its teardown); the slot's stack, if any,
    /// goes back to the stack heap.
    pub(crate) fn turn_off(&mut self) {
        if let Some(at) = self.last() {
            self.slot = EMPTY;
            // SAFETY: the slot held the stack at `at`, and is empty now.
            drop(unsafe { at.read() });
        }
        self.capacity = 0;
        self.limit = 0;
        self.slot = TURNED_OFF;
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

/// Where a stack of `len` usable bytes from this thread's coroutine stack pool (or a new one) is:
/// the caller takes it from there at once, before anything else uses the pool. It is the
/// slot's clean record (see [`StackPool`]) when the slot holds one on a stack of `len` bytes,
/// else the pool's `plain` place.
#[inline(always)]
pub(super) fn take_stack(len: usize) -> Result<*const Stack, Error> {
    let m = machine::m_ptr();
    // SAFETY: this thread's M, with no other reference to it live; each reference made here
    // lasts one statement. A record address in the slot is a clean record, whose first field
    // is the slot's stack.
    unsafe {
        let slot = (*m).pool.slot;
        if slot > TURNED_OFF && (*(slot as *const Stack)).len() == len {
            (*m).pool.slot = EMPTY;
            return Ok(slot as *const Stack);
        }
        take_stack_slow(m, len)
    }
}

/// [`take_stack`] without a clean record of that size in the slot. Every pooled stack was taken
/// here first, on this thread (a Coroutine is not Send): the thread is set up (its teardown,
/// which frees the pool, its alternate signal stack, the overflow handler) before the pool can
/// hold anything.
///
/// # Safety
/// `m` is this thread's M, with no reference to it live.
#[cold]
#[inline(never)]
unsafe fn take_stack_slow(m: *mut M, len: usize) -> Result<*const Stack, Error> {
    // SAFETY: the caller's contract; each reference lasts one statement.
    unsafe {
        machine::set_up(m);
        (*m).pool.take_slow(len)
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

/// The stack of the finished coroutine whose record is at `record` goes back to this thread's
/// pool, as that record in the slot (see [`StackPool`]); a stack already there moves into the
/// older ones first (or, once the thread is tearing down, this one goes back to the stack
/// heap).
///
/// # Safety
/// `record` is the record of a coroutine that has finished and runs no more; its first field is
/// the coroutine's stack, which the caller gives up, and its `finish`, `cancel`, `panic` and
/// `local` are zero. Nothing writes to the record or the stack afterwards.
#[inline(always)]
pub(super) unsafe fn release_record(record: usize) {
    let m = machine::m_ptr();
    // SAFETY: this thread's M, with no other reference to it live; each reference lasts one
    // statement. The caller gives the stack up.
    unsafe {
        if (*m).pool.slot == EMPTY {
            (*m).pool.slot = record;
        } else {
            release_record_slow(m, record);
        }
    }
}

/// [`release_record`] when the slot holds a stack (or the pool is turned off).
///
/// # Safety
/// As [`release_record`]; `m` is this thread's M, with no reference to it live.
#[cold]
#[inline(never)]
unsafe fn release_record_slow(m: *mut M, record: usize) {
    // SAFETY: the caller's contract; the reference lasts for the call.
    unsafe { (*m).pool.release_record(record) }
}

/// Back to this thread's pool (or to the process-wide stack heap, if the pool is full or the
/// thread is exiting).
///
/// # Safety
/// `stack` is not used again.
pub(super) unsafe fn release_stack(stack: &mut ManuallyDrop<Stack>) {
    // SAFETY: this thread's M, with no other reference to it live; the caller gives the stack
    // up.
    unsafe { (*machine::m_ptr()).pool.release(ManuallyDrop::take(stack)) }
}
