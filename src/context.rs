//! Saved contexts ([`Gobuf`]) and the primitives that move between them: [`prepare`], [`swap`],
//! [`gogo`] and [`gosave`].
//!
//! The model is Go 1.0's: a context is a stack pointer and a program counter, plus the frame
//! pointer and the one register (rbx / x19 / r6) that Rust's inline asm cannot declare clobbered.
//! Every other register is declared clobbered at the `asm!` call site of each switch, so the
//! compiler saves only the registers that are live there, often none.

use crate::arch;
use crate::stack::Stack;

/// A saved execution context (Go's `Gobuf`): where to resume and with which stack.
///
/// A default `Gobuf` is empty: resuming it is undefined behaviour. It is filled by [`prepare`]
/// (a context that will start a function on a [`Stack`]), by [`swap`] (the context that called
/// it) or by [`gosave`].
#[repr(C)]
#[derive(Debug, Default)]
pub struct Gobuf {
    /// Stack pointer to resume with.
    pub(crate) sp: usize,
    /// Instruction to resume at.
    pub(crate) pc: usize,
    /// Frame pointer to resume with (rbp / x29 / r11, r7 in Thumb-2 code).
    pub(crate) fp: usize,
    /// LLVM's base-pointer register to resume with (rbx / x19 / r6).
    pub(crate) base: usize,
}

// The layout the assembly and the `asm!` switches read (src/layout.rs).
const _: () = {
    use crate::layout::LAYOUT;
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(Gobuf, sp) == LAYOUT.GOBUF_SP);
    assert!(offset_of!(Gobuf, pc) == LAYOUT.GOBUF_PC);
    assert!(offset_of!(Gobuf, fp) == LAYOUT.GOBUF_FP);
    assert!(offset_of!(Gobuf, base) == LAYOUT.GOBUF_BASE);
    assert!(size_of::<Gobuf>() == LAYOUT.GOBUF_SIZE);
};

impl Gobuf {
    /// The saved stack pointer (0 for an empty `Gobuf`).
    pub fn sp(&self) -> usize {
        self.sp
    }

    /// The saved program counter (0 for an empty `Gobuf`).
    pub fn pc(&self) -> usize {
        self.pc
    }

    /// Whether this `Gobuf` holds a context (it has been prepared or saved into).
    pub fn is_set(&self) -> bool {
        self.pc != 0
    }
}

/// Make `buf` start `entry(arg)` on `stack` at the first [`swap`] or [`gogo`] into it, where
/// `arg` is the word that call passes.
///
/// `entry` starts with the stack pointer aligned as the ABI requires at a function's first
/// instruction, on a stack whose outermost frame ends backtraces and unwinding. It must never
/// return; it ends by switching away for the last time.
///
/// `buf` is a raw pointer (a `&mut Gobuf` coerces to it) because the context it describes will
/// be resumed through it while other code holds it: see [`swap`].
///
/// # Safety
/// `buf` must be valid for writes. `stack` must stay mapped for as long as the context runs or
/// may be resumed, and nothing else may run on it meanwhile. `entry` must not unwind out of
/// itself (an `extern "C"` function aborts on a panic that reaches it, which is sound).
pub unsafe fn prepare(
    buf: *mut Gobuf,
    stack: &Stack,
    entry: unsafe extern "C" fn(arg: usize) -> !,
) {
    let context = Gobuf {
        sp: stack.top() as usize,
        pc: arch::splitstack_trampoline as unsafe extern "C" fn() as usize,
        fp: 0,
        base: entry as usize,
    };
    // SAFETY: the caller vouches that `buf` is valid for writes.
    unsafe { buf.write(context) };
}

/// Save the current context into `save`, then resume `resume`, which receives `arg`.
/// Returns the word passed by whichever later [`swap`] or [`gogo`] resumes `save`.
///
/// This is the switch coroutine libraries build on. It returns once per resumption of `save`,
/// like any function that blocks, so it is sound to call from Rust.
///
/// `save` and `resume` are raw pointers (references coerce to them): while this call is
/// suspended, the other context reads `*save` to resume it, so a `&mut Gobuf` held across the
/// call would be aliased, which Rust's aliasing model forbids.
///
/// # Safety
/// `save` must be valid for writes and `resume` for reads. `resume` must hold a context saved
/// by [`swap`] or [`gosave`] that has not been resumed since
/// (its frames still live, its stack still mapped), or be freshly [`prepare`]d. `save` must stay
/// valid until something resumes it, and must not be resumed while this call is not suspended in
/// it. Values on this stack borrowed by the other context must outlive their use there.
#[inline(always)]
pub unsafe fn swap(save: *mut Gobuf, resume: *const Gobuf, arg: usize) -> usize {
    // SAFETY: forwarded contract.
    unsafe { arch::swap(save, resume, arg) }
}

/// [`swap`] through one shared out-of-line copy of the switch (`splitstack_swap` in asm/)
/// instead of a copy inlined at each call site. Same contract, same effect; slower, because the
/// one indirect branch that both sides of a ping-pong execute alternates targets and defeats the
/// branch predictor. Exposed so that the benches and tests can compare and check both.
///
/// # Safety
/// As [`swap`].
#[doc(hidden)]
#[inline(always)]
pub unsafe fn swap_out_of_line(save: *mut Gobuf, resume: *const Gobuf, arg: usize) -> usize {
    // SAFETY: forwarded contract.
    unsafe { arch::swap_out_of_line(save, resume, arg) }
}

/// Resume the context in `buf`, passing `ret`; the current context is abandoned.
///
/// # Safety
/// As for `resume` in [`swap`]. Nothing on the current stack is dropped: whatever owns resources
/// there leaks them unless the caller arranges otherwise, and the current stack may be freed only
/// once nothing will run on it again.
#[inline]
pub unsafe fn gogo(buf: *const Gobuf, ret: usize) -> ! {
    // SAFETY: forwarded contract.
    unsafe { arch::splitstack_gogo(buf, ret) }
}

/// Save the caller's context into `buf`: returns 0 now, and returns again, with `ret`, each time
/// [`gogo`]`(buf, ret)` or [`swap`] resumes `buf` (Go's `gosave`, C's `setjmp`).
///
/// Prefer [`swap`], which saves one context and resumes another in one call and never returns
/// twice.
///
/// # Safety
/// A function that returns twice is outside Rust's model: the compiler may keep values in
/// registers or stack slots that the first return path changed, and locals may have been moved
/// or dropped in between. It is sound only when all of these hold:
/// - `buf` is resumed only while the function that called `gosave` is still running (has not
///   returned or unwound);
/// - between the two returns, that function neither moves from, drops, nor takes `&mut` to any
///   local that it uses after the second return;
/// - the code after the call depends only on the returned word and on state that did not change
///   between the two returns: the compiler sees one return, so a local changed after the first
///   return may still hold its earlier value (or a constant) at the second.
///
/// `gosave` is inlined into its caller, so "the function that called it" is the caller of this
/// function, not a wrapper.
#[inline(always)]
pub unsafe fn gosave(buf: &mut Gobuf) -> usize {
    // SAFETY: forwarded contract.
    unsafe { arch::gosave(buf) }
}

impl Gobuf {
    /// An empty `Gobuf`, usable in a `static` (the same as `Gobuf::default()`).
    pub const fn new_empty() -> Gobuf {
        Gobuf { sp: 0, pc: 0, fp: 0, base: 0 }
    }
}
