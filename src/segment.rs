//! Segmented stacks: run a closure on a new stack segment ([`grow`], [`try_grow`]), or only when
//! the current stack runs low ([`maybe_grow`]).
//!
//! The mechanism is Go 1.0's, and so are the names; this file holds it all. [`try_grow`] takes a
//! segment from its thread's [`SegmentCache`] (or maps one) through [`newstack`], which records the old stack's bounds in the
//! [`Stktop`] at the segment's top and installs the segment's. `morestack` (assembly) saves the
//! caller's stack and instruction pointers in the record, switches to the segment and calls the
//! closure's trampoline with `lessstack` as its return address. When the trampoline returns,
//! `lessstack` parks its return word in `m.cret` and calls [`splitstack_oldstack`] (Go's
//! `oldstack`), which takes the word out of `m.cret` and clears it; `lessstack` then resumes the
//! caller with it, as `gogo` would. Back on the old stack, the caller reinstalls the old stack's
//! bounds and keeps the segment as its thread's spare: a call at a segment boundary inside a loop
//! (the "hot split" that made Go and Rust drop segmented stacks) maps nothing after its first
//! iteration (benches/segments_instructions.rs counts the instructions of such a split).
//!
//! A panic in the closure is not caught on the segment: to the caller, `morestack` is a C
//! function that may unwind (`extern "C-unwind"`), and its CFI describes the caller's frame
//! through the Stktop, so the unwinder crosses from the segment to [`try_grow`]'s landing pad on
//! the old stack, where the split is ended as on a return.

use crate::arch;
use crate::bounds::{self, stack_limit, Bounds, MAX_RED_ZONE};
use crate::context::Gobuf;
use crate::error::Error;
use crate::machine::{self, M};
use crate::sanitizer::{self, FakeStack, StackBounds};
use crate::stack::{page_size, Stack};
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use std::ptr::addr_of_mut;

/// The smallest segment handed out; smaller requests are rounded up to it. Enough for the
/// trampoline and a panic's unwinding with room to spare (the panic hook runs in the guard's
/// headroom where the segment is too small for it: see [`PANIC_HEADROOM`](crate::PANIC_HEADROOM)).
pub const MIN_SEGMENT_SIZE: usize = 16 * 1024;

/// Stack that [`maybe_grow`] keeps free below `red_zone`, for unwinding: a panic, or the drop of
/// a suspended coroutine, runs the unwinder on the stack of each frame it leaves, and glibc's
/// unwinder needs about 5.7 KiB there on x86-64 and 8.7 KiB on AArch64 (measured: a
/// `resume_unwind` with less aborts on the guard). So a frame that passed a
/// `maybe_grow(red_zone, ..)` check, and stays within `red_zone` below it, can always unwind.
/// 32-bit x86 keeps x86-64's value: its unwinder needs less (tests/coroutine.rs's
/// `checked_frames_leave_room_to_unwind_on_drop_and_on_panic` passed there with 3 KiB).
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
pub const UNWIND_RESERVE: usize = 8 * 1024;
/// Stack that [`maybe_grow`] keeps free below `red_zone`, for unwinding (see the x86-64 value).
#[cfg(target_arch = "aarch64")]
pub const UNWIND_RESERVE: usize = 12 * 1024;
/// Stack that [`maybe_grow`] keeps free below `red_zone`, for unwinding (see the x86-64 value).
/// 32-bit ARM's unwinder (libgcc's, reading EHABI tables, not DWARF) needs far less: 1.2 KiB
/// below the frame of a `resume_unwind`, the first in the process (which also finds the index
/// tables), 0.8 KiB for later ones (measured by painting the stack under qemu-arm; the same
/// measurement gives 5 KiB on x86-64). 4 KiB leaves three times that; tests/coroutine.rs's
/// `checked_frames_leave_room_to_unwind_on_drop_and_on_panic` passes there even with none.
#[cfg(target_arch = "arm")]
pub const UNWIND_RESERVE: usize = 4 * 1024;
/// On RISC-V 64 the unwinder wrote 5.4 KiB below the frame that called `resume_unwind`
/// (measured by painting the stack below it and finding the lowest byte changed; the same
/// measure gives 4.9 KiB on x86-64 and 7.5 KiB on AArch64, under the figures above), so
/// x86-64's reserve.
#[cfg(target_arch = "riscv64")]
pub const UNWIND_RESERVE: usize = 8 * 1024;

/// The record at the top of every segment (Go's `Stktop`): how to get back to the stack the
/// segment was grown from, and the segment's own description.
/// - Written when the segment is mapped: `m`, `segment_size`, `own`, `stack`.
/// - Written at each split: `old` by [`newstack`], `gobuf` (its sp and pc) by `morestack`.
/// - Read by `lessstack`: `m` (to park the return word in its `cret`) and `gobuf` (to resume the
///   caller); by the unwinder, through `morestack`'s CFI: `gobuf`; by [`splitstack_oldstack`]:
///   `m` (to take `cret` out) and, for ASan, `old`; by [`newstack`]: `segment_size` (a spare of
///   the size asked for) and `own` (installed); by the unsplit: `old` (reinstalled).
/// - `next` links the segment into its thread's cache while it is free.
#[repr(C, align(16))] // pads it to a multiple of 16 on 32-bit targets (STKTOP_SIZE)
pub(crate) struct Stktop {
    /// The context that called `morestack`: where the unsplit returns to.
    gobuf: Gobuf,
    /// The thread's machine state, whose `cret` `lessstack` writes.
    m: *mut M,
    /// This segment's usable size.
    pub(crate) segment_size: usize,
    /// The old stack's lowest usable address and base (Go's `stackguard` and `stackbase`),
    /// reinstalled by the unsplit.
    pub(crate) old: Bounds,
    /// This segment's own bounds, installed by each split.
    pub(crate) own: Bounds,
    /// The next free segment in the thread's cache, while this one is free.
    pub(crate) next: *mut Stktop,
    /// The stack this record lies in: moved out (and dropped) to give the segment back.
    pub(crate) stack: ManuallyDrop<Stack>,
}

impl Stktop {
    /// The record of a new segment owned by `m`, before any split.
    pub(crate) fn new(m: *mut M, stack: Stack) -> Stktop {
        Stktop {
            gobuf: Gobuf::new_empty(),
            m,
            segment_size: stack.len(),
            old: Bounds { limit: 0, size: 0 },
            own: bounds::of_stack(&stack),
            next: core::ptr::null_mut(),
            stack: ManuallyDrop::new(stack),
        }
    }

    /// The stack pointer of the split's caller, on the stack the segment was grown from: saved
    /// by `morestack` at the split.
    pub(crate) fn caller_sp(&self) -> usize {
        self.gobuf.sp
    }

    /// Where the record of the segment whose top is `top` lives.
    #[inline]
    pub(crate) fn at(top: usize) -> *mut Stktop {
        (top - core::mem::size_of::<Stktop>()) as *mut Stktop
    }
}

// The layout morestack and lessstack read (src/layout.rs); the size keeps the stack below the
// record 16-byte aligned.
const _: () = {
    use crate::layout::LAYOUT;
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(Stktop, gobuf) == LAYOUT.STKTOP_GOBUF);
    assert!(offset_of!(Stktop, m) == LAYOUT.STKTOP_M);
    assert!(size_of::<Stktop>() == LAYOUT.STKTOP_SIZE);
    assert!(size_of::<Stktop>().is_multiple_of(16));
};

/// How many free segments a thread keeps for reuse by default (Go 1.0 kept 32 per M); see
/// [`set_segment_cache_capacity`](crate::machine::set_segment_cache_capacity).
pub const SEGMENT_CACHE_CAPACITY: usize = 32;

/// A thread's free segments, kept for its next splits, and its split counters. Part of the
/// thread's `M`. A segment in use belongs to the frame of the split that took it, not to the
/// cache: each context (the thread, each coroutine) has its own chain of segments.
pub(crate) struct SegmentCache {
    /// The free segment released last, first in line for the next split: a hot split takes it
    /// and puts it back in a load, a compare and a store each way. [`no_spare`] when there is
    /// none, [`spare_off`] while the capacity is 0 (so that putting one back takes the slow
    /// path); both read as a segment of size 0, which no split asks for.
    spare: *mut Stktop,
    /// The other free segments: a list linked through their [`Stktop`]s, most recently released
    /// first.
    list: *mut Stktop,
    /// How many segments `list` holds.
    listed: usize,
    /// How many free segments `spare` and `list` may hold together; 0 once the thread is tearing
    /// down.
    capacity: usize,
    /// Calls that ran on a new segment.
    pub(crate) splits: u64,
    /// Segments made with [`Stack::new`].
    pub(crate) mapped: u64,
    /// Segments given back to the stack heap.
    pub(crate) unmapped: u64,
    /// The most segments held at once, in use and cached.
    pub(crate) max_held: u64,
}

impl SegmentCache {
    /// An empty cache of [`SEGMENT_CACHE_CAPACITY`] segments.
    pub(crate) const fn new() -> SegmentCache {
        SegmentCache {
            spare: no_spare(),
            list: core::ptr::null_mut(),
            listed: 0,
            capacity: SEGMENT_CACHE_CAPACITY,
            splits: 0,
            mapped: 0,
            unmapped: 0,
            max_held: 0,
        }
    }

    /// How many free segments the cache holds.
    pub(crate) fn cached(&self) -> usize {
        self.listed + usize::from(self.spare != no_spare() && self.spare != spare_off())
    }

    /// Sets the capacity and gives back what is beyond it.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.trim();
    }

    /// Unsplit, back on the old stack: make current again what was current before the split
    /// (recorded by [`newstack`]), and keep the segment as the spare, first in line for the next
    /// split.
    ///
    /// # Safety
    /// `top` is the Stktop `newstack` returned, whose split has ended (nothing runs on the
    /// segment any more).
    #[inline(always)]
    pub(crate) unsafe fn pop_segment(&mut self, top: *mut Stktop) {
        // SAFETY: the caller's contract.
        unsafe { bounds::replace_current((*top).old) };
        if self.spare == no_spare() {
            self.spare = top;
        } else {
            self.release_slow(top);
        }
    }

    /// A cached segment of `len` bytes in the list, or a new mapping with its [`Stktop`]
    /// initialised for the thread whose `M` is `m`.
    #[cold]
    #[inline(never)]
    fn take_slow(&mut self, m: *mut M, len: usize) -> Result<*mut Stktop, Error> {
        let mut link: *mut *mut Stktop = &mut self.list;
        // SAFETY: every node of the list is a cached segment's initialised Stktop.
        unsafe {
            while !(*link).is_null() {
                let top = *link;
                if (*top).segment_size == len {
                    *link = (*top).next;
                    self.listed -= 1;
                    return Ok(top);
                }
                link = &mut (*top).next;
            }
        }
        let stack = Stack::new(len)?;
        stack.set_role(crate::guard::Role::Segment);
        let top = Stktop::at(stack.top() as usize);
        // SAFETY: the top of a fresh mapping of at least a page, 16-byte aligned; the Stktop
        // takes ownership of the mapping it lies in.
        unsafe { top.write(Stktop::new(m, stack)) };
        self.mapped += 1;
        self.max_held = self.max_held.max(self.mapped - self.unmapped);
        Ok(top)
    }

    /// `pop_segment` when the spare is taken (or off): `top` becomes the spare, the previous
    /// spare goes to the head of the list, and the segment released longest ago is unmapped if
    /// that is one too many; with a capacity of 0, `top` is unmapped.
    #[cold]
    #[inline(never)]
    fn release_slow(&mut self, top: *mut Stktop) {
        if self.capacity == 0 {
            // SAFETY: the segment is free and in no list.
            unsafe { self.unmap(top) };
            return;
        }
        let previous = core::mem::replace(&mut self.spare, top);
        if previous != no_spare() && previous != spare_off() {
            // SAFETY: previous is a cached segment's Stktop, now in no list.
            unsafe { (*previous).next = self.list };
            self.list = previous;
            self.listed += 1;
        }
        self.trim();
    }

    /// Unmaps cached segments, those released longest ago first, until the cache holds at most
    /// its capacity; turns the spare off for a capacity of 0 and back on otherwise.
    #[cold]
    pub(crate) fn trim(&mut self) {
        while self.cached() > self.capacity {
            if self.listed > 0 {
                self.unmap_oldest_listed();
            } else {
                let spare = core::mem::replace(&mut self.spare, no_spare());
                // SAFETY: the spare is a free segment, now in no list.
                unsafe { self.unmap(spare) };
            }
        }
        if self.capacity == 0 {
            self.spare = spare_off();
        } else if self.spare == spare_off() {
            self.spare = no_spare();
        }
    }

    /// Gives a free segment back to the process-wide stack heap (drops its [`Stack`]).
    ///
    /// # Safety
    /// `top` is the Stktop of a segment nothing runs on, in no list; it is invalid afterwards.
    unsafe fn unmap(&mut self, top: *mut Stktop) {
        // SAFETY: the caller's contract. The Stack is moved out of the mapping before it is
        // dropped, which unmaps it.
        drop(unsafe { ManuallyDrop::take(&mut (*top).stack) });
        self.unmapped += 1;
    }

    /// Unmaps the listed segment released longest ago (the list's last), if there is one.
    #[cold]
    fn unmap_oldest_listed(&mut self) {
        let mut link: *mut *mut Stktop = &mut self.list;
        // SAFETY: every node of the list is a cached segment's initialised Stktop; the last
        // one is unlinked before it is unmapped.
        unsafe {
            if (*link).is_null() {
                return;
            }
            while !(**link).next.is_null() {
                link = &mut (**link).next;
            }
            let last = *link;
            *link = core::ptr::null_mut();
            self.listed -= 1;
            self.unmap(last);
        }
    }
}

/// Split (Go's `newstack`): a segment of `len` usable bytes (already rounded by the caller)
/// becomes the current stack: the cache's spare when it has that size, another cached one of
/// that size, or a new mapping. The old stack's bounds are recorded in the segment's [`Stktop`]
/// for the unsplit, and the segment's installed; `morestack` fills in the Stktop's `gobuf`.
///
/// # Safety
/// `m` is this thread's `M`, with no reference to it live.
#[inline(always)]
pub(crate) unsafe fn newstack(m: *mut M, len: usize) -> Result<*mut Stktop, Error> {
    // SAFETY: the caller's contract; each reference to the M lives for one statement.
    unsafe {
        let spare = (*m).segments.spare;
        // The spare is a cached segment's Stktop, initialised when it was mapped, or a sentinel
        // whose segment_size reads 0; nothing runs on a cached segment.
        let top = if (*spare).segment_size == len {
            (*m).segments.spare = no_spare();
            spare
        } else {
            newstack_slow(m, len)?
        };
        (*m).segments.splits += 1;
        // top is this segment's initialised Stktop, which only this split uses. The segment's
        // own bounds become current, and what was current goes into `old` for the unsplit to
        // put back, unchecked: values, so stale ones (a split right after a switch, with no
        // check in between) harm nothing; they are the old stack's otherwise (`owner_of`
        // checks them against the saved stack pointer). With the `asan` feature they must be
        // exact, for ASan is told them at the unsplit, so the running context's are found first.
        if cfg!(feature = "asan") {
            bounds::running();
        }
        bounds::enter_segment(&mut (*top).old, &(*top).own);
        Ok(top)
    }
}

/// [`newstack`] without a spare of the right size: sets the thread up (its teardown, the
/// overflow handler) if this is its first split, then takes from the list or maps.
///
/// # Safety
/// As [`newstack`].
#[cold]
#[inline(never)]
unsafe fn newstack_slow(m: *mut M, len: usize) -> Result<*mut Stktop, Error> {
    // SAFETY: the caller's contract; each reference to the M lives for one statement.
    unsafe {
        machine::set_up(m);
        (*m).segments.take_slow(m, len)
    }
}

/// The memory behind the spare sentinels: as large and aligned as a [`Stktop`], all zero, so
/// that its `segment_size` reads 0. Never written.
#[repr(C, align(16))]
struct Sentinel([usize; size_of::<Stktop>() / size_of::<usize>()]);

const _: () = assert!(size_of::<Sentinel>() == size_of::<Stktop>());
const _: () = assert!(align_of::<Sentinel>() >= align_of::<Stktop>());

static NO_SPARE: Sentinel = Sentinel([0; size_of::<Stktop>() / size_of::<usize>()]);
static SPARE_OFF: Sentinel = Sentinel([0; size_of::<Stktop>() / size_of::<usize>()]);

/// `SegmentCache::spare` when there is no spare segment.
#[inline(always)]
const fn no_spare() -> *mut Stktop {
    &NO_SPARE as *const Sentinel as *mut Stktop
}

/// `SegmentCache::spare` while the cache's capacity is 0.
#[inline(always)]
const fn spare_off() -> *mut Stktop {
    &SPARE_OFF as *const Sentinel as *mut Stktop
}

/// The closure, and then its value, on the caller's stack while it runs on the segment.
struct Call<F, R> {
    f: ManuallyDrop<F>,
    value: MaybeUninit<R>,
    /// With the `asan` feature, a panic is caught on the segment and continued after the
    /// unsplit: ASan's fiber bookkeeping follows a switch announced on both sides, not an unwind
    /// from one stack to another (ending the segment's context in the landing pad crashed it).
    #[cfg(feature = "asan")]
    panic: Option<Box<dyn std::any::Any + Send>>,
}

impl<F: FnOnce() -> R, R> Call<F, R> {
    fn new(f: F) -> Self {
        Call {
            f: ManuallyDrop::new(f),
            value: MaybeUninit::uninit(),
            #[cfg(feature = "asan")]
            panic: None,
        }
    }

    /// Runs the closure on the stack below `stktop` through `morestack`, with ASan told that
    /// stack's `bounds`; back here after the unsplit. A panic in the closure unwinds out of this
    /// call (with the `asan` feature it is caught there and kept in the Call instead).
    ///
    /// # Safety
    /// `stktop` is a 16-byte aligned [`Stktop`] at the top of a stack nothing else uses, filled
    /// in but for its `gobuf`, with its `own` bounds installed; the caller ends the split (on a
    /// return and on an unwind).
    #[inline(always)]
    unsafe fn run_below(&mut self, stktop: *mut Stktop, bounds: StackBounds) {
        let call_ptr = self as *mut Call<F, R> as usize;
        let mut fake = FakeStack::NONE;
        sanitizer::start_switch(Some(&mut fake), bounds);
        // SAFETY: the caller's contract; the Call lives on this stack, which stays put until
        // morestack returns or unwinds.
        let word = unsafe { arch::morestack(call_ptr, run_call::<F, R>, stktop) };
        sanitizer::finish_switch(fake);
        debug_assert_eq!(word, call_ptr, "splitstack: the unsplit returned another word");
    }

    /// The closure's value, once `run_below` has returned (or its panic, continued here with the
    /// `asan` feature).
    ///
    /// # Safety
    /// `run_below` has returned.
    #[inline(always)]
    #[cfg_attr(not(feature = "asan"), allow(unused_mut))] // the asan feature takes the panic
    unsafe fn into_value(mut self) -> R {
        #[cfg(feature = "asan")]
        if let Some(payload) = self.panic.take() {
            std::panic::resume_unwind(payload);
        }
        // SAFETY: run_call wrote the value before it returned (without asan, a panic would
        // have unwound out of run_below instead).
        unsafe { self.value.assume_init_read() }
    }
}

/// What `morestack` calls on the segment: runs the closure behind `arg` (a `*mut Call<F, R>`),
/// stores its value there and returns `arg` as its return word, which comes back to
/// [`try_grow`] through `lessstack`, `m.cret` and [`splitstack_oldstack`]. A panic unwinds out
/// of it, through `morestack` (whose CFI describes the frame that called it), to `try_grow`.
unsafe extern "C-unwind" fn run_call<F: FnOnce() -> R, R>(arg: usize) -> usize {
    // SAFETY: try_grow passes a pointer to its own Call, live until morestack returns or
    // unwinds.
    let call = unsafe { &mut *(arg as *mut Call<F, R>) };
    // A new context on the segment: no fake stack of its own yet.
    sanitizer::finish_switch(FakeStack::NONE);
    // SAFETY: morestack calls this once per Call, and try_grow never drops `f` itself.
    let f = unsafe { ManuallyDrop::take(&mut call.f) };
    #[cfg(not(feature = "asan"))]
    call.value.write(f());
    #[cfg(feature = "asan")]
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(value) => {
            call.value.write(value);
        }
        Err(payload) => call.panic = Some(payload),
    }
    arg
}

/// The unsplit (Go's `oldstack`), called by `lessstack` on the segment being left: takes the
/// return word out of `m.cret`, clears it, and hands it back to `lessstack`, which resumes the
/// caller of `morestack` with it through `gogo` (Go's `oldstack` ended in
/// `gogo(&old.gobuf, cret)`). That caller, back on the old stack, reinstalls the old stack's
/// bounds and returns the segment to the cache ([`SegmentCache::pop_segment`]).
///
/// # Safety
/// Only `lessstack` calls this, with the segment's own Stktop.
#[unsafe(no_mangle)]
pub(crate) unsafe extern "C" fn splitstack_oldstack(stktop: *mut Stktop) -> usize {
    // SAFETY: lessstack passes the Stktop that try_grow took and morestack completed; m points
    // to this thread's M, which outlives every segment.
    unsafe {
        let top = &*stktop;
        let m = &mut *top.m;
        let cret = m.cret;
        m.cret = 0;
        // The segment's context ends here; the old stack's bounds are in the Stktop.
        // Wrapping: a thread stack whose bounds were never learnt is recorded as
        // (LIMIT_UNKNOWN, 0); under ASan try_grow learns them first.
        let bottom = top.old.limit;
        let old = StackBounds::new(bottom, top.old.size);
        sanitizer::start_switch(None, old);
        cret
    }
}

/// The end of a split whose closure panicked: the panic unwound through `morestack` to the
/// landing pad of [`try_grow`], on the old stack, where this guard is dropped and returns the
/// segment. The normal unsplit forgets the guard and does the same inline. There is no sanitizer
/// bookkeeping to end here: with the `asan` feature the panic is caught on the segment and never
/// unwinds through `morestack` (see [`Call`]).
struct UnwoundSplit {
    stktop: *mut Stktop,
}

impl Drop for UnwoundSplit {
    fn drop(&mut self) {
        // SAFETY: the split has ended (its closure unwound out of the segment, which the panic
        // may have taken into its guard's headroom: closed again before the segment is kept);
        // the M is this thread's.
        unsafe {
            (*self.stktop).stack.close_headroom();
            (*machine::m_ptr()).segments.pop_segment(self.stktop)
        }
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
/// maps memory only once. A panic in `f` unwinds from the segment back to here, the segment is
/// returned, and the same payload continues unwinding to the caller of `try_grow`.
///
/// # Errors
/// [`ErrorKind::InvalidSize`](crate::ErrorKind::InvalidSize) for a size of 0 or one that
/// overflows when rounded; the OS's refusal to map a segment as in [`Stack::new`](crate::Stack::new).
#[inline]
pub fn try_grow<R, F: FnOnce() -> R>(segment_size: usize, f: F) -> Result<R, Error> {
    let len = segment_len(segment_size)?;
    let m = machine::m_ptr();
    // ASan is told the old stack's bounds at the unsplit, so they must be known: learn the
    // thread's own if this is its first use of splitstack. (Otherwise they need not be: the
    // unsplit reinstalls whatever was there, and the next check learns them.)
    #[cfg(feature = "asan")]
    machine::current_m();
    // SAFETY: `m` is this thread's M, with no reference to it live.
    let stktop = unsafe { newstack(m, len)? };
    let mut call = Call::new(f);
    let unwound = UnwoundSplit { stktop };
    // SAFETY: the segment is ours alone until popped below, and stays mapped (its Stktop owns
    // the mapping); stktop lies at its top, 16-byte aligned, filled in but for the gobuf, which
    // morestack saves, and newstack installed its bounds. A panic in the closure unwinds to
    // here, where `unwound` pops the segment; otherwise the unsplit has come back through
    // oldstack.
    unsafe {
        let bottom = (*stktop).own.limit;
        call.run_below(stktop, StackBounds::new(bottom, len));
        core::mem::forget(unwound);
        (*m).segments.pop_segment(stktop);
        Ok(call.into_value())
    }
}

/// Runs `f` on the stack whose stack pointer is `sp` (a suspended context's: everything below
/// it is free), as that context: with `theirs`, its bounds, current while it runs; returns its
/// value, or continues its panic here, with this context's bounds back either way. `asan` is
/// that stack's extent for AddressSanitizer. What [`Yielder::on_parent_stack`](crate::Yielder)
/// runs on.
///
/// # Safety
/// `sp` is the stack pointer of a context that stays suspended until this returns, on a mapped
/// stack with room below it for a [`Stktop`] and whatever `f` needs; `theirs` is its bounds.
pub(crate) unsafe fn call_below<R, F: FnOnce() -> R>(
    sp: usize,
    theirs: Bounds,
    asan: StackBounds,
    f: F,
) -> R {
    /// Makes the calling context's bounds current again when the call is over, by a return or
    /// by an unwind.
    struct Restore(Bounds);
    impl Drop for Restore {
        fn drop(&mut self) {
            bounds::replace_current(self.0);
        }
    }
    // Below the context, past the 128-byte red zone that a leaf function on x86-64 may use.
    let stktop = ((sp - 128 - size_of::<Stktop>()) & !15) as *mut Stktop;
    // memcheck marked that stack's dead frames below `sp` inaccessible, and sees the switch to
    // it as a change of stack, after which it does not mark new frames accessible: the record
    // and `f`'s frames are written there, so the free part is made accessible (undefined) first.
    let bottom = theirs.limit;
    crate::valgrind::make_mem_undefined(bottom, sp.saturating_sub(bottom));
    // SAFETY: the record lies in the free part of the suspended stack; zeroed first, so that
    // every field (the `stack`, which this record does not own and never drops, included) holds
    // a valid value before oldstack makes a reference to it.
    unsafe {
        stktop.write_bytes(0, 1);
        addr_of_mut!((*stktop).m).write(machine::m_ptr());
        addr_of_mut!((*stktop).own).write(theirs);
        addr_of_mut!((*stktop).old).write(bounds::running());
    }
    let restore = Restore(bounds::replace_current(theirs));
    let mut call = Call::new(f);
    // SAFETY: the caller's contract; the record is filled in but for the gobuf, and its bounds
    // are installed; `restore` ends the call on both ways out.
    unsafe {
        call.run_below(stktop, asan);
        drop(restore);
        call.into_value()
    }
}

/// Runs `f` on a new stack segment of at least `segment_size` bytes; see [`try_grow`].
///
/// # Panics
/// With a message saying why, where [`try_grow`] returns `Err`: a segment size of 0 or one that
/// overflows, or the OS refusing memory. A panic in `f` continues from here with its payload.
#[inline]
pub fn grow<R, F: FnOnce() -> R>(segment_size: usize, f: F) -> R {
    match try_grow(segment_size, f) {
        Ok(value) => value,
        Err(err) => panic!("{err}"),
    }
}

/// Runs `f` here if at least `red_zone` bytes of stack (plus [`UNWIND_RESERVE`]) are left, and
/// on a new segment of at least `segment_size` bytes otherwise.
///
/// The check is a few inlined instructions: the stack pointer compared with a thread-local limit
/// plus a constant. Put it at the top of a recursive function; `red_zone` must cover the deepest
/// stack use between two checks. The [`UNWIND_RESERVE`] below it is what lets a panic, or the
/// drop of a suspended coroutine, unwind through those frames. A segment is made at least
/// `red_zone + UNWIND_RESERVE` plus [`MIN_SEGMENT_SIZE`] bytes, so that `f` passes the same check
/// on it, and at least twice the size of the stack it grows from (up to
/// [`MAX_DOUBLED_SEGMENT`]), as Go doubles its stacks: 10,000,000 levels of recursion take a few
/// segments, which stay in the thread's cache for the next descent, rather than hundreds
/// taken from the stack heap and given back each time. Untouched pages of a segment cost address space,
/// not memory.
///
/// # Panics
/// As [`grow`], when a segment is needed and cannot be had.
#[inline(always)]
pub fn maybe_grow<R, F: FnOnce() -> R>(red_zone: usize, segment_size: usize, f: F) -> R {
    let sp = arch::stack_pointer();
    // MAX_RED_ZONE + UNWIND_RESERVE does not overflow, and a constant red_zone folds the first
    // test away: the bounds' pointer and both their words loaded, the limit subtracted from the
    // stack pointer, the difference compared with the red zone and with the size. Bounds that do
    // not hold the stack pointer (the context has changed since the last check) send it to the
    // slow path, which finds the running ones.
    let Bounds { limit, size } = bounds::current();
    // Below the limit, the difference wraps past every size.
    let above = sp.wrapping_sub(limit);
    if red_zone <= MAX_RED_ZONE && above >= red_zone + UNWIND_RESERVE && above < size {
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
        // Twice the stack we are leaving, as Go doubles its stacks: a deep recursion then takes
        // a handful of segments, which the thread's cache keeps, instead of hundreds that it
        // would map and unmap on every descent. Only touched pages become resident.
        let doubled = bounds::current_stack_size().saturating_mul(2);
        let size = segment_size
            .max(needed.saturating_add(MIN_SEGMENT_SIZE))
            .max(doubled.min(MAX_DOUBLED_SEGMENT));
        grow(size, f)
    }
}

/// The largest segment [`maybe_grow`] makes by doubling the stack it leaves (a larger
/// `segment_size` is still honoured).
pub const MAX_DOUBLED_SEGMENT: usize = 64 << 20;

/// Bytes left on the current stack (the thread's own, a segment, or a coroutine's) above its
/// guard: from the stack pointer down to the stack's limit, its lowest usable address.
pub fn remaining_stack() -> usize {
    // Learn the thread's bounds if this is the first call.
    machine::current_m();
    arch::stack_pointer().saturating_sub(stack_limit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_sizes_round_up_to_whole_pages_and_the_minimum() {
        let page = page_size();
        assert_eq!(segment_len(1).unwrap(), MIN_SEGMENT_SIZE);
        assert_eq!(segment_len(MIN_SEGMENT_SIZE).unwrap(), MIN_SEGMENT_SIZE);
        assert_eq!(segment_len(MIN_SEGMENT_SIZE + 1).unwrap(), MIN_SEGMENT_SIZE + page);
        assert_eq!(segment_len(1 << 20).unwrap(), 1 << 20);
    }

    #[test]
    fn a_segment_of_zero_bytes_or_one_that_overflows_is_an_error() {
        for size in [0, usize::MAX, usize::MAX - page_size() + 2] {
            let err = segment_len(size).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidSize, "{size}: {err}");
        }
    }

    #[test]
    fn the_sentinels_read_as_segments_no_split_asks_for() {
        // SAFETY: both sentinels are statics as large and aligned as a Stktop, all zero.
        unsafe {
            assert_eq!((*no_spare()).segment_size, 0);
            assert_eq!((*spare_off()).segment_size, 0);
        }
        assert_ne!(no_spare(), spare_off());
    }
}
