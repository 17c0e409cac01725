//! Coroutines on pooled stacks that grow: a safe API in corosensei's shape on top of [`swap`],
//! pooled [`Stack`]s and the segmented stacks of [`maybe_grow`](crate::maybe_grow).
//!
//! A coroutine's stack comes from its thread's coroutine stack pool (src/coroutine/pool.rs, apart
//! from the segment cache), so creating, running and dropping coroutines costs no system call
//! once the pool is warm. Its top holds the address of the record both sides share (the two
//! contexts, the value in flight, the return value), the closure, the record, and right below
//! the record, where the trampoline's CFI finds the resumer's context to continue backtraces
//! into it, the coroutine's initial context:
//!
//! ```text
//!   top      -> +------------------------+
//!               | the record's address   |  for the guard registry's lookups
//!               +------------------------+
//!               | F (the closure)        |  moved out when the coroutine starts
//!               +------------------------+
//!               | Shared<I, Y, R>        |  Link (the coroutine's Stack, the resumer's
//!               |                        |  context, panic payload, input, output), then the
//!               |                        |  return value if larger than a word; 64-byte
//!               |                        |  aligned <- sp when entry is entered
//!               +------------------------+
//!               | initial context        |  the trampoline, entry
//!               +------------------------+  <- the coroutine's context before it starts
//!               | the coroutine's frames |
//!   bottom   -> +------------------------+
//!               | guard region           |  GUARD_SIZE: the panic headroom, then a 64 KiB floor
//! ```
//!
//! A side that is switched away is only a stack pointer (its context), with its resume pc and
//! the two registers `asm!` cannot clobber stored at it (`arch::co_switch`). The resumer's is in
//! the Link, where the trampoline's CFI finds it; the coroutine's is in the [`Coroutine`], so
//! that a loop of resumes keeps it in a register. The switch also carries one word each way in a
//! register: the input or the value in flight when it fits in a word ([`hand_over`]), so that it
//! crosses without a store to the record and a load from it.
//!
//! A switch hands over nothing else: not the stack bounds that [`maybe_grow`](crate::maybe_grow)
//! checks. Each stack's bounds are in its record (the coroutine's in its Link), and a
//! thread-local holds a copy of those of the stack the last check ran on (src/bounds.rs). The
//! check compares the stack pointer with both ends of them, so the first check after a switch
//! finds them stale and takes the slow path, which finds the running stack's: the other side
//! of a ping-pong's, the thread's, or those of the coroutine stack or segment that holds the
//! stack pointer, through the guard registry's index and the record at the stack's top. So
//! code in a coroutine checks, and grows from, the coroutine's own stack, whose segments belong
//! to it, and a round trip that checks nothing pays nothing for it (the README's table gives the
//! figures: its rows "coroutine resume + suspend round trip", which benches/coroutine.rs
//! measures). A split makes its segment's bounds current, and a coroutine that suspends on a
//! segment is found there with them. With the `asan` feature the same bounds, exact at both
//! ends, are what ASan is told.

use crate::arch;
use crate::bounds::{self, Bounds};
use crate::error::Error;
use crate::guard::Role;
use crate::sanitizer::{self, FakeStack, Fiber, StackBounds};
use crate::stack::{page_size, Stack};
use pool::{release_record, release_stack, set_up_thread, take_stack};

mod local;
mod overflow;
mod pool;
mod scoped;
pub use local::coroutine_local;
pub(crate) use overflow::recover_overflow;
pub use overflow::{leaked_stacks, set_overflow_action, OverflowAction, StackOverflow};
pub(crate) use pool::StackPool;
pub use pool::{COROUTINE_POOL_CAPACITY, POOL_UNTRIMMED_MAX};
pub use scoped::{ScopedCoroutine, ScopedCoroutineRef};
use std::any::Any;
use std::marker::PhantomData;
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::{addr_of, addr_of_mut, NonNull};

/// Usable bytes of a coroutine stack made by [`Coroutine::new`]: 1 MiB of address space on
/// 64-bit targets (128 KiB on 32-bit ones, below), of which only the pages the coroutine touches
/// become resident (an idle coroutine that has
/// suspended once holds one or two 4 KiB pages). Below it lies the guard region every
/// [`Stack`] has ([`GUARD_SIZE`](crate::GUARD_SIZE)). Where the coroutine calls
/// [`maybe_grow`](crate::maybe_grow), it grows past this through segments.
///
/// 1 MiB is corosensei's default too: enough for what ordinary Rust code does without
/// `maybe_grow` (std's formatting and backtrace symbolization, parsers, half a megabyte of plain
/// recursion). A smaller stack ([`Coroutine::with_stack_size`]) is safe for code whose deepest
/// unchecked stretch (the frames between two `maybe_grow` calls, or below the last one) fits in
/// it, with [`UNWIND_RESERVE`](crate::UNWIND_RESERVE) to spare if it may unwind; panics need no
/// room of their own, since the guard's headroom opens for them.
///
/// On 32-bit targets a process has at most 4 GiB of address space (3 GiB under a 32-bit kernel),
/// so 1 MiB stacks would stop it at a few thousand coroutines: there the default is 128 KiB,
/// which with the guard ([`GUARD_SIZE`](crate::GUARD_SIZE), 80 KiB there) lets ten thousand live
/// coroutines take about 2 GiB.
pub const DEFAULT_STACK_SIZE: usize =
    if cfg!(target_pointer_width = "64") { 1 << 20 } else { 128 << 10 };

/// Closures larger than this are boxed rather than stored on the coroutine's stack.
const MAX_INLINE_CLOSURE: usize = 1024;

/// What a coroutine hands back from [`Coroutine::resume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoroutineResult<Yield, Return> {
    /// The coroutine suspended with this value; it can be resumed again.
    Yield(Yield),
    /// The coroutine's closure returned this value; the coroutine is done.
    Return(Return),
}

impl<Yield, Return> CoroutineResult<Yield, Return> {
    /// The yielded value, if the coroutine suspended.
    pub fn as_yield(self) -> Option<Yield> {
        match self {
            CoroutineResult::Yield(value) => Some(value),
            CoroutineResult::Return(_) => None,
        }
    }

    /// The returned value, if the coroutine finished.
    pub fn as_return(self) -> Option<Return> {
        match self {
            CoroutineResult::Yield(_) => None,
            CoroutineResult::Return(value) => Some(value),
        }
    }
}

/// The part of the shared record that does not depend on the return type, so that a
/// [`Yielder`] can name it.
#[repr(C)]
struct Link<I, Y> {
    /// The coroutine's stack, which this record lies at the top of; owned by the [`Coroutine`],
    /// which gives it back to the pool when dropped. Kept here rather than in the `Coroutine`,
    /// which is then two words: a `Coroutine` that may be dropped while a panic unwinds lives
    /// in memory, so each of its words costs a store at every creation. Its bounds are made
    /// current by the first check that finds the coroutine running on it (src/bounds.rs).
    /// First, so that its address is the record's, which the resumer keeps across the switch
    /// (a second address would be spilled there).
    stack: ManuallyDrop<Stack>,
    /// The resumer's context, stored after each resume has switched in (the trampoline stores
    /// the first); the trampoline's CFI reads it. Meaningless until then (a reused record keeps
    /// the last coroutine's): whether the coroutine started is its context's to say
    /// ([`arch::CoContext::is_initial`]).
    parent_sp: usize,
    /// What `Coroutine::co_sp` becomes when the coroutine finishes: 0, or [`OVERFLOWED`] once the
    /// overflow recovery has abandoned it.
    finish: usize,
    /// Set by `Drop` on a fresh or suspended coroutine: a fresh one's entry function drops the
    /// closure instead of running it, a suspended one's next `suspend` unwinds instead of
    /// returning. A word after `finish`, so that the zeros the record is made with (`parent_sp`,
    /// `finish`, this and `panic`'s pointer) are two 16-byte stores.
    cancel: Cancel,
    /// The closure's panic payload, if it panicked (a cancellation's included); written when
    /// the coroutine finishes. `None` when the overflow recovery abandoned the coroutine
    /// (`finish` says so): its resumer makes the [`StackOverflow`] payload, which the signal
    /// handler could not allocate.
    panic: Option<Payload>,
    /// The coroutine-local value ([`Coroutine::with_local`]) while the closure runs, in its slot
    /// (src/coroutine/local.rs).
    local: Option<NonNull<dyn Any>>,
    /// The value the resumer passes in, when it does not fit in the switch's word (see
    /// [`hand_over`]): written by every resume and taken by the coroutine when it runs (not
    /// written by the resume that cancels).
    input: MaybeUninit<I>,
    /// The value the coroutine passes out, when it does not fit in the switch's word (see
    /// [`hand_over`]): written by every suspend and taken by the resumer.
    output: MaybeUninit<Y>,
    /// ASan's fake-stack handles of the two sides while switched away, and the stack the
    /// coroutine was last resumed from (all unused without the `asan` feature).
    caller_fake: FakeStack,
    co_fake: FakeStack,
    caller_stack: StackBounds,
    /// ThreadSanitizer's fibers for the two sides (unused without the `tsan` feature): the
    /// coroutine's, made with it, and the resumer's, read at each resume.
    caller_fiber: Fiber,
    co_fiber: Fiber,
}

/// A panic payload.
type Payload = Box<dyn Any + Send>;

/// Whether `Drop` is bringing the coroutine to its end (`Link::cancel`).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
enum Cancel {
    No = 0,
    Yes,
    /// Set on a thread that was already panicking: otherwise a thread that panics in a
    /// cancelled suspend is running the cancellation's own unwinding.
    WhilePanicking,
}

#[repr(C)]
struct Shared<I, Y, R> {
    /// First, so that a `*mut Link` and a `*mut Shared` are the same address.
    link: Link<I, Y>,
    /// The closure's return value, written when it returns (then the Link's `panic` stays
    /// `None`), unless it fits in the last switch's word (see [`hand_over`]). Kept apart from the
    /// panic payload so that it is written and read as an `R`: an `Option<Result<R, _>>` written
    /// field by field and read back whole stalls the read on store-to-load forwarding.
    value: MaybeUninit<R>,
}

// The offset of the resumer's context in every `Link`, which the trampolines read
// (src/layout.rs).
const _: () =
    assert!(core::mem::offset_of!(Link<u8, u8>, parent_sp) == crate::layout::LAYOUT.LINK_PARENT_SP);

// A record's address is its stack's (src/coroutine/pool.rs keeps a finished coroutine's stack as
// its record's address).
const _: () = assert!(core::mem::offset_of!(Link<(), ()>, stack) == 0);

// The fields before `input` lie at the same offsets in every `Link` (repr(C) places each field
// after the ones before it only), so the overflow recovery and `coroutine_local`, which do not
// know the types, read them through a `Link<(), ()>`.
const _: () = {
    use core::mem::offset_of;
    type Wide = Link<[u128; 5], (u8, String)>;
    assert!(offset_of!(Link<(), ()>, parent_sp) == offset_of!(Wide, parent_sp));
    assert!(offset_of!(Link<(), ()>, stack) == offset_of!(Wide, stack));
    assert!(offset_of!(Link<(), ()>, panic) == offset_of!(Wide, panic));
    assert!(offset_of!(Link<(), ()>, finish) == offset_of!(Wide, finish));
    assert!(offset_of!(Link<(), ()>, cancel) == offset_of!(Wide, cancel));
    assert!(offset_of!(Link<(), ()>, local) == offset_of!(Wide, local));
};

/// The address of the record of the coroutine on the stack whose top is `top`: the word just
/// below the top, written when the coroutine is made (see the stack picture above).
#[inline(always)]
fn record_word(top: usize) -> *mut usize {
    (top - size_of::<usize>()) as *mut usize
}

/// The payload that unwinds a suspended coroutine that is being dropped.
struct Cancelled;

/// `Coroutine::co_sp` while the coroutine runs (a resume, or the unwinding of a drop, has
/// switched into it and not come back): no context, since its saved one is stale. 0 means
/// finished; every real context is a stack address far above these.
const RUNNING: usize = 1;

/// `Coroutine::co_sp` of a coroutine the overflow recovery abandoned: finished, with its stack
/// leaked.
pub(crate) const OVERFLOWED: usize = 2;

/// A function running on its own stack that can suspend itself, handing out a value, and be
/// resumed, handed a value in (corosensei's shape: `Input`, `Yield`, `Return`). It is what Go
/// calls a `G`: a stack and the context to resume it at, switched to and from on one thread.
///
/// ```
/// use splitstack::{Coroutine, CoroutineResult};
///
/// let mut co = Coroutine::new(|yielder, first: u32| {
///     let second = yielder.suspend(first * 10);
///     first + second
/// });
/// assert_eq!(co.resume(4), CoroutineResult::Yield(40));
/// assert_eq!(co.resume(5), CoroutineResult::Return(9));
/// assert!(co.done());
/// ```
///
/// A panic inside the coroutine continues from [`resume`](Coroutine::resume), with its payload;
/// the coroutine is then done. Dropping a suspended coroutine unwinds its stack (its `suspend`
/// call unwinds with a private payload), so destructors run; a closure that catches that unwind
/// and suspends again is unwound again at each suspend until it returns. A finished coroutine
/// keeps its stack until it is dropped, which hands the stack back to the thread's pool. A
/// coroutine dropped while it runs (which safe code can only reach through `exit`, which runs
/// thread-local destructors on the running coroutine's stack) is leaked, never switched into;
/// see [`Drop`](#impl-Drop-for-Coroutine%3CInput,+Yield,+Return%3E).
///
/// A coroutine is neither `Send` nor `Sync`, and cannot be made so safely. Code that runs in it
/// may keep the address of a thread-local across a `suspend`: the compiler assumes that a
/// function never changes threads, and may compute a thread-local's address once and reuse it,
/// so a coroutine resumed on another thread would go on using the first thread's copy (the
/// `may` and `generator` crates' issue trackers record exactly this). Its frames may also hold
/// values that must stay on their thread (an `Rc`, a `MutexGuard`), which no bound on the
/// closure's type can see, and splitstack's own record caches the creating thread's
/// stack-limit word, and its stack and segments belong to that thread's pool and cache. A
/// library that moves coroutines between threads anyway must build on the raw layer
/// ([`swap`](crate::swap) on its own stacks) and guarantee that nothing live on a stack across
/// a switch is thread-bound, that no thread-local is touched by a frame that spans a switch,
/// and that each thread installs the stack's bounds itself
/// ([`install_bounds`](crate::machine::install_bounds)).
///
/// The thread's pool keeps up to
/// [`COROUTINE_POOL_CAPACITY`](crate::machine::COROUTINE_POOL_CAPACITY) stacks, of which at most
/// [`POOL_UNTRIMMED_MAX`](crate::machine::POOL_UNTRIMMED_MAX) keep the pages they touched; the
/// others give them back to the OS below their top 16 KiB, so that coroutines that once went deep
/// do not pin their memory.
pub struct Coroutine<Input, Yield, Return> {
    /// The shared record at the top of the coroutine's stack, which holds the stack (`Link`'s
    /// `stack`, back to the pool when the coroutine is dropped). The closure lies above it
    /// until the coroutine starts. Nothing else is kept here: a `Coroutine` that may be dropped
    /// while a panic unwinds (one resumed in the frame that made it) lives in memory, and each
    /// of its words costs a store at every creation.
    shared: *mut Shared<Input, Yield, Return>,
    /// The coroutine's context while it is suspended or fresh (its stack pointer); 0 once it
    /// has finished (returned, panicked or been cancelled). Its stack goes back to the pool
    /// when the `Coroutine` is dropped.
    co_sp: usize,
    /// Neither Send nor Sync.
    _not_send: PhantomData<*mut ()>,
    /// Owns the values in flight and the result (for drop checking).
    _owns: PhantomData<(Input, Yield, Return)>,
}

/// The coroutine side's handle: [`suspend`](Yielder::suspend) hands a value to the resumer and
/// waits to be resumed.
pub struct Yielder<Input, Yield> {
    link: *mut Link<Input, Yield>,
    _marker: PhantomData<*mut ()>,
}

impl<I, Y> Yielder<I, Y> {
    /// Suspends the coroutine, making its resumer's [`Coroutine::resume`] return
    /// [`CoroutineResult::Yield`]`(value)`; returns the input of the next resume.
    #[inline]
    pub fn suspend(&self, value: Y) -> I {
        let link = self.link;
        // SAFETY: `link` is this coroutine's Link, at the top of the stack we are running on;
        // the resumer is suspended in its resume, whose context is in `parent_sp`. The
        // references made for the sanitizers live only for their argument passing.
        unsafe {
            let word = hand_over(value, addr_of_mut!((*link).output));
            sanitizer::start_switch(Some(&mut (*link).co_fake), (*link).caller_stack);
            (*link).caller_fiber.switch_to();
            let (parent_sp, word) = arch::co_switch((*link).parent_sp, word);
            (*link).parent_sp = parent_sp;
            (*link).caller_stack = sanitizer::finish_switch((*link).co_fake);
            match (*link).cancel {
                Cancel::No => {}
                Cancel::Yes if std::thread::panicking() => suspended_while_cancelled(),
                Cancel::Yes | Cancel::WhilePanicking => resume_unwind(Box::new(Cancelled)),
            }
            // Resumed without cancellation: the resume handed an input over.
            take_over(word, addr_of!((*link).input))
        }
    }

    /// Runs `f` on the stack of the context that last resumed this coroutine, and returns its
    /// value: for code that needs more stack than the coroutine has, or that must run on the
    /// resumer's stack. The resumer stays suspended meanwhile; `f` runs below its stack
    /// pointer, with that stack's bounds installed, so a [`maybe_grow`](crate::maybe_grow) in
    /// `f` checks, and grows from, the resumer's stack.
    ///
    /// A panic in `f` continues from this call, inside the coroutine, with the coroutine's
    /// bounds back; the coroutine and its resumer are as before the call. `f` cannot suspend the
    /// coroutine: `Yielder` is not `Sync`, so a `Send` closure cannot capture `&self`. It runs
    /// in the free part of the resumer's stack, so it needs room there as any call would (a
    /// `maybe_grow` in it finds that room, or grows).
    #[inline]
    pub fn on_parent_stack<F: FnOnce() -> T + Send, T>(&self, f: F) -> T {
        let link = self.link;
        // SAFETY: `link` is this coroutine's Link; the resumer is suspended in its resume at
        // `parent_sp`, on a mapped stack whose free part lies below it, and stays suspended
        // until this returns (only this coroutine can resume it, by suspending, which `f`
        // cannot do). Its context's bounds are those of the context whose stack holds
        // `parent_sp`; with the `asan` feature `caller_stack` holds its extent.
        unsafe {
            let parent_sp = (*link).parent_sp;
            let context = bounds::context_of(parent_sp);
            crate::segment::call_below(parent_sp, context, (*link).caller_stack, f)
        }
    }
}

impl<I, Y, R> Coroutine<I, Y, R> {
    /// A coroutine that will run `f` on a pooled stack of [`DEFAULT_STACK_SIZE`] bytes, which
    /// grows through segments where `f` calls [`maybe_grow`](crate::maybe_grow).
    ///
    /// # Panics
    /// If no stack can be had (the OS refuses memory or mappings); see
    /// [`with_stack_size`](Coroutine::with_stack_size) for the `Result`.
    #[inline]
    pub fn new<F: FnOnce(&Yielder<I, Y>, I) -> R + 'static>(f: F) -> Self {
        match Self::with_stack_size(DEFAULT_STACK_SIZE, f) {
            Ok(co) => co,
            Err(err) => creation_failed(err),
        }
    }

    /// A coroutine that will run `f` on a stack of exactly `size` usable bytes (rounded up to
    /// whole pages), taken from this thread's pool when one of that size is there.
    ///
    /// A stack smaller than [`DEFAULT_STACK_SIZE`] is safe for code whose deepest stretch without
    /// a [`maybe_grow`](crate::maybe_grow) check fits in it, with
    /// [`UNWIND_RESERVE`](crate::UNWIND_RESERVE) to spare if it may unwind: code that checks
    /// at every level of its recursion and calls nothing deep in between. Library code that
    /// checks nothing (formatting, symbolizing a backtrace outside a panic, parsing) may need
    /// far more than a few pages. A panic needs nothing extra: the guard's headroom opens for it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSize`](crate::ErrorKind::InvalidSize) for a size of 0, one that
    /// overflows when rounded or cannot fit in the address space with its guard, or one too small
    /// for the coroutine's record and closure (with a page to spare);
    /// [`ErrorKind::OutOfMemory`](crate::ErrorKind::OutOfMemory) or
    /// [`ErrorKind::MapCountLimit`](crate::ErrorKind::MapCountLimit) when the OS refuses.
    #[inline]
    pub fn with_stack_size<F: FnOnce(&Yielder<I, Y>, I) -> R + 'static>(
        size: usize,
        f: F,
    ) -> Result<Self, Error> {
        Self::with_stack_size_borrowing(size, f)
    }

    /// [`with_stack_size`](Coroutine::with_stack_size) for a closure that may borrow. Only
    /// [`ScopedCoroutine`] may call it: a `Coroutine` whose closure borrows must never outlive,
    /// or be leaked while suspended past, what it borrows, which its type does not track.
    #[inline]
    fn with_stack_size_borrowing<F: FnOnce(&Yielder<I, Y>, I) -> R>(
        size: usize,
        f: F,
    ) -> Result<Self, Error> {
        if size_of::<F>() > MAX_INLINE_CLOSURE {
            return Self::start(size, Box::new(f));
        }
        Self::start(size, f)
    }

    /// A coroutine that will run `f` on `stack`, a stack the caller made (or got back from
    /// [`into_stack`](Coroutine::into_stack)), instead of one from the thread's pool. The stack
    /// goes to the thread's pool when the coroutine is dropped, or back to the caller with
    /// `into_stack`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSize`](crate::ErrorKind::InvalidSize) when `stack` is too small for
    /// the coroutine's record and closure with a page to spare; the stack is then dropped (back
    /// to the stack heap).
    pub fn with_stack<F: FnOnce(&Yielder<I, Y>, I) -> R + 'static>(
        stack: Stack,
        f: F,
    ) -> Result<Self, Error> {
        set_up_thread();
        stack.set_role(Role::Coroutine);
        let len = stack.len();
        if size_of::<F>() > MAX_INLINE_CLOSURE {
            check_record::<I, Y, R, Box<F>>(len)?;
            let stack = ManuallyDrop::new(stack);
            return Ok(Self::start_on::<_, false>(&*stack, len, Box::new(f)));
        }
        check_record::<I, Y, R, F>(len)?;
        let stack = ManuallyDrop::new(stack);
        Ok(Self::start_on::<_, false>(&*stack, len, f))
    }

    #[inline]
    fn start<F: FnOnce(&Yielder<I, Y>, I) -> R>(size: usize, f: F) -> Result<Self, Error> {
        if size == 0 {
            return Err(Error::invalid_size("a coroutine stack of 0 bytes was requested"));
        }
        let len = size
            .checked_next_multiple_of(page_size())
            .ok_or_else(|| Error::invalid_size(format!("coroutine stack size {size} overflows")))?;
        check_record::<I, Y, R, F>(len)?;
        Ok(Self::start_on::<_, true>(take_stack(len)?, len, f))
    }

    /// Writes the record, the closure and the initial context at the top of the stack of `len`
    /// usable bytes whose bits are at `at`, which [`check_record`] has found large enough for
    /// them, and takes the stack from there. With `POOLED`, `at` is what [`take_stack`] returned:
    /// where it is the address the record goes to, the slot held this stack as the clean record
    /// of the last coroutine that ran on it (src/coroutine/pool.rs), which had the same address,
    /// and only what differs from one coroutine to the next is written.
    #[inline(always)]
    fn start_on<F: FnOnce(&Yielder<I, Y>, I) -> R, const POOLED: bool>(
        at: *const Stack,
        len: usize,
        f: F,
    ) -> Self {
        // SAFETY: the caller hands over the stack whose bits are at `at`.
        let bottom = unsafe { (*at).bottom() } as usize;
        // Cannot wrap: the record, closure and context (with their alignment padding) take less
        // than `len - page_size()` bytes (check_record), and the stack lies in the address space.
        let top = bottom + len;
        // On a cache line of its own: the Link's fields in front of `input` then share one
        // line, so no store the compiler merges from two of them (a 16-byte store of zeros)
        // crosses a line, and a load of one of them forwards from that store. The closure
        // goes above it, where `closure_of` finds it, and the initial context right below it.
        let shared = align_down(
            top - size_of::<usize>()
                - size_of::<F>()
                - (align_of::<F>() - 1)
                - size_of::<Shared<I, Y, R>>(),
            align_of::<Shared<I, Y, R>>().max(64),
        );
        let closure = closure_of::<I, Y, R, F>(shared);
        let sp = shared - size_of::<arch::CoContext>();
        debug_assert!(sp >= bottom + page_size());
        sanitizer::unpoison(sp, top - sp);
        let shared = shared as *mut Shared<I, Y, R>;
        // SAFETY: the places lie inside the stack, which nothing runs on yet, and are aligned
        // for their types; the entry function takes `f` back out exactly once, or Drop drops it
        // if the coroutine never starts.
        unsafe {
            let link = addr_of_mut!((*shared).link);
            if POOLED && core::ptr::addr_eq(at, shared) {
                // A clean record: the stack, its record word and the zeros are in place, and
                // `parent_sp` is stored before anything reads it.
                addr_of_mut!((*link).caller_fake).write(FakeStack::NONE);
                addr_of_mut!((*link).co_fake).write(FakeStack::NONE);
                addr_of_mut!((*link).caller_stack).write(StackBounds::default());
                addr_of_mut!((*link).caller_fiber).write(Fiber::current());
                addr_of_mut!((*link).co_fiber).write(Fiber::create());
            } else {
                // Field by field, so that no `Shared` (whose return value may be larger than
                // any stack) is ever built as a temporary. The stack's bits are read before
                // the record is written, which may overlap them (a clean record of other types).
                link.write(Link {
                    parent_sp: 0,
                    stack: ManuallyDrop::new(at.read()),
                    panic: None,
                    finish: 0,
                    cancel: Cancel::No,
                    local: None,
                    input: MaybeUninit::uninit(),
                    output: MaybeUninit::uninit(),
                    caller_fake: FakeStack::NONE,
                    co_fake: FakeStack::NONE,
                    caller_stack: StackBounds::default(),
                    caller_fiber: Fiber::current(),
                    co_fiber: Fiber::create(),
                });
                record_word(top).write(shared as usize);
            }
            (closure as *mut F).write(f);
            // The initial context, as a switch leaves it (arch::co_switch): the trampoline's pc,
            // and in the base register the entry function; the trampoline finds the Link just
            // above the context.
            arch::CoContext::write_initial(
                sp as *mut arch::CoContext,
                arch::splitstack_coroutine_trampoline as unsafe extern "C" fn() as usize,
                entry::<I, Y, R, F> as unsafe extern "C" fn(usize, MaybeUninit<usize>) -> !
                    as usize,
            );
        }
        Coroutine { shared, co_sp: sp, _not_send: PhantomData, _owns: PhantomData }
    }

    /// Runs the coroutine until it suspends or returns, handing it `input` (the closure's
    /// second argument at the first resume, the return value of `suspend` afterwards).
    ///
    /// # Panics
    /// If the coroutine is done ("resumed a finished coroutine"); and with the coroutine's own
    /// panic payload if its closure panics (the coroutine is then done).
    #[inline(always)]
    pub fn resume(&mut self, input: I) -> CoroutineResult<Y, R> {
        let co_sp = self.co_sp;
        if co_sp <= OVERFLOWED {
            resumed_while_not_suspended(co_sp);
        }
        let shared = self.shared;
        // Marked running until it switches back, so that a drop or resume of this coroutine
        // from inside it (a thread-local destructor that `exit` runs on its stack) cannot
        // switch into its stale context.
        self.co_sp = RUNNING;
        // SAFETY: `shared` is the record at the top of our stack; the coroutine is suspended (or
        // fresh), so nothing else touches the record until it switches back.
        let (suspended, co_sp, word) = unsafe {
            let word = hand_over(input, addr_of_mut!((*shared).link.input));
            switch_in(shared, co_sp, word)
        };
        if suspended {
            self.co_sp = co_sp;
            // SAFETY: the coroutine is suspended again; its suspend handed its value over with
            // this word, and nothing has taken it since.
            return CoroutineResult::Yield(unsafe {
                take_over(word, addr_of!((*shared).link.output))
            });
        }
        // Finished: done from here on, even if `finished` continues a panic. The cold paths take
        // the fields they need by value: handing them `&mut self` would let the compiler assume
        // that any opaque code in a caller's loop may change the coroutine's context, and reload
        // it from memory at every resume instead of keeping it in a register. An overflow that
        // abandoned the coroutine leaves OVERFLOWED instead of 0 there, so that its stack is
        // leaked.
        // SAFETY: the coroutine has finished; its record stays ours.
        self.co_sp = unsafe { (*shared).link.finish };
        // SAFETY: the coroutine has finished with its outcome in the record, or its value handed
        // over with this word.
        CoroutineResult::Return(unsafe { finished(shared, word) })
    }

    /// Whether the coroutine has finished (returned, panicked, overflowed its stack under
    /// [`OverflowAction::PanicInResumer`](crate::OverflowAction) or been unwound by
    /// [`force_unwind`](Coroutine::force_unwind)); resuming it would panic.
    pub fn done(&self) -> bool {
        self.co_sp == 0 || self.co_sp == OVERFLOWED
    }

    /// Whether the coroutine has left its initial state: a resume has run its closure, or it is
    /// [`done`](Coroutine::done) (a fresh coroutine that [`force_unwind`](Coroutine::force_unwind)
    /// brought to its end, dropping its closure, counts as started, as in corosensei).
    pub fn started(&self) -> bool {
        // SAFETY: a coroutine that is neither done nor running is fresh or suspended, with its
        // context at `co_sp`.
        self.done()
            || self.co_sp == RUNNING
            || unsafe { !arch::CoContext::is_initial(self.co_sp as *const arch::CoContext) }
    }

    /// Unwinds a suspended coroutine now, as dropping it would (its `suspend` call unwinds, so
    /// its destructors run), or drops a fresh one's closure; the coroutine is then
    /// [`done`](Coroutine::done) and keeps its stack. Does nothing to a finished coroutine.
    ///
    /// # Panics
    /// With the first panic a destructor raised on this side during the unwinding (the drop of a
    /// value the coroutine yields or returns meanwhile), once it is complete; on a thread that is
    /// already panicking, that panic is dropped instead, as in `Drop`. A destructor of the
    /// coroutine's own frames that panics while they unwind aborts the process, as a panic in a
    /// destructor during any unwinding does. Also panics if the coroutine is running (only
    /// reachable from code on its own stack, see `Drop`).
    pub fn force_unwind(&mut self) {
        if self.co_sp == RUNNING {
            resumed_while_not_suspended(RUNNING);
        }
        continue_panic(self.unwind_unfinished());
    }

    /// The coroutine's stack, for another coroutine ([`with_stack`](Coroutine::with_stack)) or
    /// any other use; a suspended coroutine is unwound first, as by
    /// [`force_unwind`](Coroutine::force_unwind). What the coroutine left on the stack is not
    /// cleared.
    ///
    /// # Panics
    /// As [`force_unwind`](Coroutine::force_unwind); a destructor's panic continues once the
    /// unwinding is complete, and the stack is then dropped (back to the stack heap). A
    /// coroutine that overflowed its stack under
    /// [`OverflowAction::PanicInResumer`](crate::OverflowAction) (before or during the
    /// unwinding) has no stack to give: its stack is leaked, and this panics, with the
    /// [`StackOverflow`](crate::StackOverflow) payload if the overflow happened during the
    /// unwinding.
    pub fn into_stack(mut self) -> Stack {
        if self.co_sp == RUNNING {
            resumed_while_not_suspended(RUNNING);
        }
        let panic = self.unwind_unfinished();
        if self.co_sp == OVERFLOWED {
            core::mem::forget(self);
            match panic {
                Some(payload) => resume_unwind(payload),
                None => panic!("splitstack: into_stack of a coroutine that overflowed its stack, which is leaked"),
            }
        }
        let shared = ManuallyDrop::new(self).shared;
        // SAFETY: the coroutine has finished, and `this` is never dropped, so the stack is taken
        // out of its record exactly once.
        let stack = unsafe { ManuallyDrop::take(&mut (*shared).link.stack) };
        stack.set_role(Role::Plain);
        continue_panic(panic);
        stack
    }

    /// Brings a fresh or suspended coroutine to its end (see [`drop_unfinished`]); returns the
    /// first panic a destructor raised. The coroutine is done afterwards. Nothing for a finished
    /// one.
    #[inline(always)]
    fn unwind_unfinished(&mut self) -> Option<Box<dyn Any + Send>> {
        let co_sp = self.co_sp;
        if co_sp == 0 || co_sp == OVERFLOWED {
            return None;
        }
        self.co_sp = RUNNING;
        let shared = self.shared;
        // SAFETY: `co_sp` is the context of the fresh or suspended coroutine whose record is
        // `shared`. The record outlives the unwinding.
        let panic = unsafe { drop_unfinished(shared, co_sp) };
        // SAFETY: as above.
        self.co_sp = unsafe { (*shared).link.finish };
        panic
    }
}

impl<I, Y, R> Drop for Coroutine<I, Y, R> {
    /// Drops a finished coroutine's stack (back to the thread's pool); unwinds a suspended one
    /// first, and drops a fresh one's closure.
    ///
    /// A panic from a destructor this runs (the closure's, a value the coroutine yields while it
    /// is unwound, the value it returns) continues from here once the coroutine has finished and
    /// its stack is back in the pool; when the thread is already panicking, that second panic is
    /// dropped instead (its message has been printed), since a panic escaping a drop during
    /// unwinding would abort the process.
    ///
    /// A coroutine dropped while it runs (only possible from code on its own stack that reaches
    /// it behind the borrow checker's back: `std::process::exit` inside a coroutine runs the
    /// thread's thread-local destructors there, and one may own this coroutine) is leaked: its
    /// stack, and whatever its frames own, are never freed, and nothing switches into it. So is
    /// one that overflowed its stack under
    /// [`OverflowAction::PanicInResumer`](crate::OverflowAction), whose abandoned frames may
    /// still be borrowed; an overflow while the drop unwinds the coroutine continues from here
    /// as a [`StackOverflow`](crate::StackOverflow) panic.
    #[inline]
    fn drop(&mut self) {
        let co_sp = self.co_sp;
        if co_sp == 0 {
            // SAFETY: nothing runs on the stack any more (the coroutine finished), and it is
            // given up exactly once. Its record is clean: `finish` is 0 (it became `co_sp`),
            // a panic's payload has been taken, the local was unpublished when the closure's
            // wrapper ended, and a cancellation (`drop_unfinished`) ends with `cancel` reset.
            unsafe { release_record(self.shared as usize) };
            return;
        }
        if co_sp <= OVERFLOWED {
            return;
        }
        // Marked running while it unwinds: see `resume`.
        self.co_sp = RUNNING;
        // SAFETY: `co_sp` is the context of the fresh or suspended coroutine whose record is
        // `shared`; the stack is given up here.
        unsafe { drop_unfinished_coroutine(self.shared, co_sp) }
    }
}

/// The rest of [`Drop`] for a fresh or suspended coroutine: brings it to its end
/// ([`drop_unfinished`]), gives its stack back to the pool unless the overflow recovery
/// abandoned it, and continues the first panic a destructor raised. Out of line and from
/// scalars, so that the drop of a finished coroutine, inlined wherever one dies, is a test and a
/// pool push, and a resume loop whose unwinding path drops its coroutine keeps its context in
/// registers.
///
/// # Safety
/// As [`drop_unfinished`]; the stack in the record is given up by its `Coroutine`.
#[cold]
#[inline(never)]
unsafe fn drop_unfinished_coroutine<I, Y, R>(shared: *mut Shared<I, Y, R>, co_sp: usize) {
    // SAFETY: (forwarded); the record outlives the unwinding.
    unsafe {
        let panic = drop_unfinished(shared, co_sp);
        if (*shared).link.finish == 0 {
            release_stack(&mut (*shared).link.stack);
        }
        continue_panic(panic);
    }
}

/// The most stacks [`owner_of`] follows: a coroutine's own and the segments it grew, nested.
const MAX_CHAIN: u64 = 1 << 16;

/// The record of the coroutine that owns the stack whose lowest usable address is `bottom` (its
/// own stack, or a segment it grew: each segment's [`Stktop`](crate::segment::Stktop) names the
/// stack it was split from), and how many stacks the chain has; `None` for a thread's stack, a
/// plain [`Stack`] or a chain that ends in one. Reads only the guard registry's lock-free index
/// and the stacks' own records, so the signal handler may call it.
///
/// # Safety
/// `bottom` is the bottom of the stack the calling thread runs on, or of a stack of a context of
/// its that is suspended (a resumer), or of one in the chain of segments below either: their
/// records are live.
unsafe fn owner_of(mut bottom: usize) -> Option<(*mut Link<(), ()>, u64)> {
    for stacks in 1..=MAX_CHAIN {
        match crate::guard::role_of(bottom)? {
            (Role::Coroutine, top) => {
                // SAFETY: a coroutine stack's record word, written by `start_on`.
                let record = unsafe { *record_word(top) };
                return (record != 0).then_some((record as *mut Link<(), ()>, stacks));
            }
            (Role::Segment, top) => {
                // SAFETY: a segment in use (the caller's contract) has its Stktop at its top,
                // whose `old` names the stack it was split from unless what was current at the
                // split was stale; the stack pointer saved there lies in that stack either way.
                let (old, sp) = unsafe {
                    let stktop = crate::segment::Stktop::at(top);
                    ((*stktop).old, (*stktop).caller_sp())
                };
                bottom = if bounds::contains(old, sp) {
                    old.limit
                } else {
                    crate::guard::stack_containing(sp)?
                };
            }
            (Role::Plain, _) => return None,
        }
    }
    None
}

/// The bounds of the coroutine stack or segment in use that holds `addr`: a coroutine's own
/// (in its record), or a segment's (in its Stktop); `None` for any other stack.
///
/// # Safety
/// `addr` lies on a stack of the calling thread's: the running one, or a suspended context's.
pub(crate) unsafe fn context_containing(addr: usize) -> Option<Bounds> {
    let bottom = crate::guard::stack_containing(addr)?;
    // SAFETY: (forwarded) the stack holding `addr` is this thread's and in use, so its record
    // (a coroutine's, written by `start_on`, or a segment's Stktop) is live.
    let bounds = unsafe {
        match crate::guard::role_of(bottom)? {
            (Role::Coroutine, top) => match *record_word(top) {
                0 => return None,
                record => bounds::of_stack(&(*(record as *const Link<(), ()>)).stack),
            },
            (Role::Segment, top) => (*crate::segment::Stktop::at(top)).own,
            (Role::Plain, _) => return None,
        }
    };
    bounds::contains(bounds, addr).then_some(bounds)
}

/// Switches into the coroutine whose record is `shared` and whose context is `co_sp`, handing
/// over `word` (see [`hand_over`]; the input, or nothing for a cancellation), and back;
/// returns whether it suspended (rather than finished: its last switch hands over the Link's
/// address as its context), its new context and the word its suspend handed over (see
/// [`hand_over`]; meaningless when it finished).
///
/// # Safety
/// The coroutine is fresh or suspended, at `co_sp`.
#[inline(always)]
unsafe fn switch_in<I, Y, R>(
    shared: *mut Shared<I, Y, R>,
    co_sp: usize,
    word: MaybeUninit<usize>,
) -> (bool, usize, MaybeUninit<usize>) {
    // SAFETY: (forwarded) the record is ours while the coroutine is not running.
    unsafe {
        let link = addr_of_mut!((*shared).link);
        sanitizer::start_switch(Some(&mut (*link).caller_fake), suspended_stack(link));
        (*link).caller_fiber = Fiber::current();
        (*link).co_fiber.switch_to();
        let (co_sp, word) = arch::co_switch(co_sp, word);
        sanitizer::finish_switch((*link).caller_fake);
        (co_sp != link as usize, co_sp, word)
    }
}

/// For ASan, the bounds of the stack a suspended or fresh coroutine will run on when resumed:
/// its context's bounds.
///
/// # Safety
/// `link` is the Link of a coroutine that is not running.
#[inline(always)]
unsafe fn suspended_stack<I, Y>(link: *const Link<I, Y>) -> StackBounds {
    #[cfg(feature = "asan")]
    // SAFETY: (forwarded) the Link is ours while the coroutine is not running.
    unsafe {
        StackBounds::new((*link).stack.bottom() as usize, (*link).stack.len())
    }
    #[cfg(not(feature = "asan"))]
    {
        let _ = link;
        StackBounds::default()
    }
}

/// The coroutine has switched out for the last time: its return value, which it handed over in
/// `word` or the record (see [`hand_over`]), or its panic, continued by [`finished_by_panic`].
/// Its stack stays with the `Coroutine` until that is dropped. Inlined: its common path is two
/// tests, and a call to it made create + complete + drop 1 ns slower (6.4 against 5.5 ns on an
/// Intel Xeon, routines inlined into criterion's loop; the round trip of an echo, whose loop
/// holds this path too, stayed at 2.1 ns). A panic, and memcheck's request, go out of line to
/// [`finished_slowly`].
///
/// # Safety
/// The coroutine whose record is `shared` has finished and runs no more: its last switch out
/// handed its value over with `word`, or it wrote its panic payload.
#[inline(always)]
unsafe fn finished<I, Y, R>(shared: *mut Shared<I, Y, R>, word: MaybeUninit<usize>) -> R {
    // SAFETY: (forwarded)
    unsafe {
        if (*shared).link.panic.is_some()
            || (*shared).link.finish != 0
            || crate::valgrind::memcheck_possible()
        {
            finished_slowly(shared);
        } else {
            (*shared).link.co_fiber.destroy();
        }
        take_over(word, addr_of!((*shared).value))
    }
}

/// [`finished`]'s path for a panic, or where memcheck may run: the stack below the record is
/// dead ([`dead_stack_below_record`]), and a panic continues.
///
/// # Safety
/// As [`finished`].
#[cold]
#[inline(never)]
unsafe fn finished_slowly<I, Y, R>(shared: *mut Shared<I, Y, R>) {
    // SAFETY: (forwarded)
    unsafe {
        dead_stack_below_record(shared);
        (*shared).link.co_fiber.destroy();
        if (*shared).link.panic.is_some() || (*shared).link.finish == OVERFLOWED {
            finished_by_panic(addr_of_mut!((*shared).link));
        }
    }
}

/// Tells memcheck that the stack below a finished coroutine's record is dead: writable for its
/// next user (src/valgrind.rs, `dead_stack`). Not a stack the overflow recovery abandoned, which
/// is leaked with its frames intact.
///
/// # Safety
/// `shared` is the record of a coroutine that has finished and runs no more.
unsafe fn dead_stack_below_record<I, Y, R>(shared: *mut Shared<I, Y, R>) {
    // SAFETY: (forwarded) the record stays ours.
    unsafe {
        if (*shared).link.finish != OVERFLOWED {
            let bottom = (*shared).link.stack.bottom() as usize;
            crate::valgrind::dead_stack(bottom, shared as usize - bottom);
        }
    }
}

/// Continues the panic of a coroutine that finished by panicking (or overflowed its stack
/// under [`OverflowAction::PanicInResumer`](crate::OverflowAction)), after closing the guard
/// headroom the panic may have opened on its stack.
///
/// # Safety
/// As [`finished`], with a payload in the record.
#[cold]
#[inline(never)]
unsafe fn finished_by_panic<I, Y>(link: *mut Link<I, Y>) -> ! {
    // SAFETY: (forwarded)
    unsafe {
        let payload = take_payload(link);
        // An abandoned stack keeps its frames, a panic's in the headroom included.
        if (*link).finish != OVERFLOWED {
            (*link).stack.close_headroom();
        }
        resume_unwind(payload)
    }
}

/// The panic payload of a coroutine that finished by panicking, or a [`StackOverflow`] for one
/// the overflow recovery abandoned.
///
/// # Safety
/// `link` is the Link of a coroutine that has finished with a payload, or overflowed.
unsafe fn take_payload<I, Y>(link: *mut Link<I, Y>) -> Payload {
    // SAFETY: (forwarded)
    match unsafe { (*link).panic.take() } {
        Some(payload) => payload,
        None => Box::new(StackOverflow),
    }
}

/// Continues the first panic a destructor raised while a coroutine was brought to its end,
/// unless the thread is already panicking: a panic escaping a drop during unwinding would abort
/// the process, and that panic's message has been printed.
fn continue_panic(panic: Option<Box<dyn Any + Send>>) {
    if let Some(payload) = panic {
        if !std::thread::panicking() {
            resume_unwind(payload);
        }
    }
}

/// Runs `f`, which drops values of the coroutine's; keeps the first panic from it in `first`
/// (a later one's payload is dropped the same way).
fn drop_caught(first: &mut Option<Box<dyn Any + Send>>, f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        match first {
            None => *first = Some(payload),
            Some(_) => drop_payload(payload),
        }
    }
}

/// Drops a panic payload, whose own destructor may panic: such payloads are dropped in turn
/// (std's `catch_unwind` documentation warns of them) until one drops cleanly.
fn drop_payload(mut payload: Box<dyn Any + Send>) {
    while let Err(next) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        payload = next;
    }
}

/// Drop of a coroutine that has not finished: a fresh one drops its closure, a suspended one is
/// unwound to its end. Returns the first panic a destructor raised (the closure's, a value
/// yielded while unwinding, the return value, a panic payload's); the unwinding goes on past
/// it, so that the coroutine always finishes and its stack can go back to the pool. Out of line,
/// so that dropping a finished coroutine is one test.
///
/// # Safety
/// As the caller in `Drop` says: the coroutine is fresh or suspended at `co_sp`.
#[cold]
#[inline(never)]
unsafe fn drop_unfinished<I, Y, R>(
    shared: *mut Shared<I, Y, R>,
    mut co_sp: usize,
) -> Option<Box<dyn Any + Send>> {
    let mut panic = None;
    // SAFETY: (forwarded) the record is ours while the coroutine is not running.
    unsafe {
        // Fresh: switched into once, with `cancel` set, its entry function drops the closure
        // (only it knows the closure's type) instead of running it, and finishes. Suspended:
        // its suspend unwinds with `Cancelled`, which the entry function catches; a closure
        // that swallows it is cancelled again at each suspend until it returns.
        let fresh = arch::CoContext::is_initial(co_sp as *const arch::CoContext);
        (*shared).link.cancel =
            if std::thread::panicking() { Cancel::WhilePanicking } else { Cancel::Yes };
        let last_word = loop {
            let (suspended, next, word) = switch_in(shared, co_sp, MaybeUninit::uninit());
            if !suspended {
                break word;
            }
            co_sp = next;
            // It suspended again, with a value we drop.
            let output = addr_of!((*shared).link.output);
            drop_caught(&mut panic, || drop(take_over(word, output)));
        };
        (*shared).link.co_fiber.destroy();
        if (*shared).link.finish == OVERFLOWED {
            // Abandoned by the overflow recovery: the first panic continues (a destructor's on
            // this side, else the StackOverflow), and the stack keeps its frames, its
            // headroom's included.
            let overflow = take_payload(addr_of_mut!((*shared).link));
            return panic.or(Some(overflow));
        }
        if fresh {
            // The closure's destructor's panic, if it raised one, is the record's payload; no
            // value was returned.
            panic = (*shared).link.panic.take();
        } else {
            // It finished; the outcome, a Cancelled payload or whatever the closure returned
            // after swallowing it, is dropped here.
            match (*shared).link.panic.take() {
                Some(payload) => drop_caught(&mut panic, move || drop_payload(payload)),
                None => drop_caught(&mut panic, || {
                    drop(take_over::<R>(last_word, addr_of!((*shared).value)))
                }),
            }
        }
        // Clean again, for `Drop`'s `release_record` after a `force_unwind`.
        (*shared).link.cancel = Cancel::No;
        // The unwinding may have opened the guard's headroom.
        (*shared).link.stack.close_headroom();
        dead_stack_below_record(shared);
    }
    panic
}

/// [`Coroutine::new`]'s panic when no stack can be had.
#[cold]
#[inline(never)]
fn creation_failed(err: Error) -> ! {
    panic!("{err}")
}

#[cold]
#[inline(never)]
fn resumed_while_not_suspended(co_sp: usize) -> ! {
    if co_sp == RUNNING {
        panic!("splitstack: resumed a coroutine that is running (from inside itself)")
    }
    panic!("splitstack: resumed a coroutine that has finished")
}

/// A suspend while the coroutine is being unwound by its drop, from code that runs during that
/// unwinding (a destructor): the coroutine cannot suspend there, and cannot unwind again from a
/// destructor. (Detected when the drop began on a thread that was not panicking; on one that
/// was, the unwinding's abort says less.)
#[cold]
#[inline(never)]
fn suspended_while_cancelled() -> ! {
    panic!(
        "splitstack: Yielder::suspend called by a destructor while its coroutine is being \
         dropped; a coroutine cannot suspend while its drop unwinds it"
    )
}

/// Hands a resume's input or a suspend's value over to the other side: in the switch's word, a
/// register (`arch::co_switch`; the trampoline passes the first resume's to the entry function),
/// when it fits in one, else through `place` in the record. A value in the word skips a store
/// and a load that would sit on the path from one side computing a value to the other using it.
/// The word is a `MaybeUninit`, so a value's padding bytes stay uninitialized in it: no integer
/// is made of them. The value moves into the returned word (or the place).
///
/// # Safety
/// `place` is the record's input or output place, which holds no value now; exactly one
/// [`take_over`] of the same `T` takes the value over on the other side (else it leaks, and a
/// second one would duplicate it).
#[inline(always)]
unsafe fn hand_over<T>(value: T, place: *mut MaybeUninit<T>) -> MaybeUninit<usize> {
    let mut word = MaybeUninit::<usize>::uninit();
    // SAFETY: a value that fits is written within the word (unaligned: `T` may be aligned more
    // strictly than the word is); the caller gives the place otherwise.
    unsafe {
        if size_of::<T>() <= size_of::<usize>() {
            word.as_mut_ptr().cast::<T>().write_unaligned(value);
        } else {
            (*place).write(value);
        }
    }
    word
}

/// Takes over the value that [`hand_over`] handed over in `word` or through `place`.
///
/// # Safety
/// `word` and `place` are those of a [`hand_over`] of the same `T` whose value nothing has taken
/// yet.
#[inline(always)]
unsafe fn take_over<T>(word: MaybeUninit<usize>, place: *const MaybeUninit<T>) -> T {
    // SAFETY: (forwarded) the value is in the word when it fits, else in the place.
    unsafe {
        if size_of::<T>() <= size_of::<usize>() {
            word.as_ptr().cast::<T>().read_unaligned()
        } else {
            (*place).assume_init_read()
        }
    }
}

/// The coroutine's first function, called by `splitstack_coroutine_trampoline` with the address
/// of the shared record (its Link comes first) and the word the first resume handed over (see
/// [`hand_over`]): runs the closure under `catch_unwind`, or drops it if the coroutine was
/// dropped before it ran ([`drop_unstarted`]), and switches out for good.
unsafe extern "C" fn entry<I, Y, R, F: FnOnce(&Yielder<I, Y>, I) -> R>(
    arg: usize,
    word: MaybeUninit<usize>,
) -> ! {
    let shared = arg as *mut Shared<I, Y, R>;
    // SAFETY: the first resume passes the record's address; the closure lies just above it
    // (`closure_of`, as `start_on` placed it) and is taken exactly once.
    unsafe {
        let closure = closure_of::<I, Y, R, F>(shared as usize);
        let link = addr_of_mut!((*shared).link);
        // The first resume made this coroutine's bounds current before it switched in.
        (*link).caller_stack = sanitizer::finish_switch(FakeStack::NONE);
        let word = if (*link).cancel != Cancel::No {
            drop_unstarted::<F>(closure as *mut F, addr_of_mut!((*link).panic));
            MaybeUninit::uninit()
        } else {
            let f = (closure as *mut F).read();
            // The first resume handed the input over.
            let input = take_over(word, addr_of!((*link).input));
            let yielder = Yielder { link, _marker: PhantomData };
            match catch_unwind(AssertUnwindSafe(|| f(&yielder, input))) {
                // Handed over as a suspend's value is, in the last switch's word or the record.
                Ok(value) => hand_over(value, addr_of_mut!((*shared).value)),
                // `panic` is None until here: written without dropping the old value.
                Err(payload) => {
                    addr_of_mut!((*link).panic).write(Some(payload));
                    MaybeUninit::uninit()
                }
            }
        };
        // This context ends here: no fake stack to keep.
        sanitizer::start_switch(None, (*link).caller_stack);
        (*link).caller_fiber.switch_to();
        arch::co_exit(link as usize, (*link).parent_sp, word)
    }
}

/// The entry function of a coroutine dropped before it ran (`drop_unfinished` switched in with
/// `cancel` set): drops the closure, and puts the panic its destructor raises, if any, in
/// `panic`.
///
/// # Safety
/// `closure` is the coroutine's closure, never taken; `panic` is its Link's, `None`.
#[cold]
#[inline(never)]
unsafe fn drop_unstarted<F>(closure: *mut F, panic: *mut Option<Payload>) {
    // SAFETY: (forwarded) the closure is dropped exactly once, here; the payload is written
    // over a `None`.
    unsafe {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| closure.drop_in_place())) {
            panic.write(Some(payload));
        }
    }
}

/// Whether a coroutine stack of `len` usable bytes holds the record, the closure `F` and the
/// initial context, with a page to spare; checked, so that a record larger than the stack (or
/// than its address) is an error, not a wrap-around.
#[inline(always)]
fn check_record<I, Y, R, F>(len: usize) -> Result<(), Error> {
    let fits = size_of::<Shared<I, Y, R>>()
        .checked_add(size_of::<F>())
        .and_then(|bytes| bytes.checked_add(align_of::<Shared<I, Y, R>>().max(64)))
        .and_then(|bytes| bytes.checked_add(align_of::<F>().max(16)))
        .and_then(|bytes| {
            bytes.checked_add(2 * size_of::<usize>() + 16 + size_of::<arch::CoContext>())
        })
        .is_some_and(|bytes| bytes.saturating_add(page_size()) <= len);
    if fits {
        Ok(())
    } else {
        Err(record_error(len, size_of::<Shared<I, Y, R>>(), size_of::<F>()))
    }
}

/// The error for a stack of `len` bytes too small for a `record`-byte record and a
/// `closure`-byte closure.
#[cold]
#[inline(never)]
fn record_error(len: usize, record: usize, closure: usize) -> Error {
    Error::invalid_size(format!(
        "a coroutine stack of {len} bytes cannot hold its {record}-byte record and \
         {closure}-byte closure with a page to spare"
    ))
}

/// Where the closure of a coroutine whose record is at `shared` lies: just above the record
/// (`Coroutine::start_on` leaves room for it there, below the record's address word).
#[inline(always)]
fn closure_of<I, Y, R, F>(shared: usize) -> usize {
    (shared + size_of::<Shared<I, Y, R>>()).next_multiple_of(align_of::<F>())
}

/// `addr` rounded down to a multiple of `align` (a power of two).
fn align_down(addr: usize, align: usize) -> usize {
    addr & !(align - 1)
}
