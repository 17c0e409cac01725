//! AArch64 AAPCS64 call sites for the assembly in `asm/*_aarch64_aapcs.S`; the twin of
//! `x86_64.rs`.
//!
//! Each `asm!` block `bl`s its routine and declares every register clobbered except sp, x29 and
//! x19, which Rust's inline asm cannot name and which the routine saves in the [`Gobuf`]. The
//! callee-saved x20-x28 and v8-v15 (whose low halves are d8-d15) are declared explicitly;
//! `clobber_abi("C")` covers the rest, x30 included.

use super::*;
use crate::layout::LAYOUT;
use core::arch::asm;
use core::mem::MaybeUninit;

// The paired loads and stores below rely on pc following sp and base following fp.
const _: () =
    assert!(LAYOUT.GOBUF_PC == LAYOUT.GOBUF_SP + 8 && LAYOUT.GOBUF_BASE == LAYOUT.GOBUF_FP + 8);

/// `asm!` with every register a switch may change declared clobbered: x20-x28 and v8-v15
/// (callee-saved, so outside `clobber_abi("C")`) and everything `clobber_abi("C")` names. x19
/// and x29 cannot be named in `asm!`; the routines keep them in the Gobuf. Each use's operands
/// end with a comma.
macro_rules! asm_clobbering_all {
    ($($operands:tt)*) => {
        asm!(
            $($operands)*
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            clobber_abi("C"),
        )
    };
}

/// Save the current context into `save` and resume `resume` with `arg`: the switch, inlined
/// at each call site, so that each site's indirect branch has one stable target (see the x86-64
/// twin for the measurement). Differences: the branch goes through x16, which BTI's `bti c`
/// admits at a prepared context's trampoline, and the resume point carries `bti jc` (both
/// hints, NOPs without BTI).
///
/// # Safety
/// As [`crate::swap`].
#[inline(always)]
pub(crate) unsafe fn swap(save: *mut Gobuf, resume: *const Gobuf, arg: usize) -> usize {
    let ret: usize;
    // SAFETY: the caller upholds crate::swap's contract. x29 and x19, which asm! cannot name,
    // are saved in `save` and restored from `resume`; every other register is declared
    // clobbered.
    unsafe {
        asm_clobbering_all!(
            "adr x17, 2f",                   // our resume point
            "mov x16, sp",
            "stp x16, x17, [x1, #{sp}]",     // save: sp, pc (GOBUF_PC follows GOBUF_SP)
            "stp x29, x19, [x1, #{fp}]",     // save: frame pointer, base register
            "ldp x16, x17, [x2, #{sp}]",     // x16 = resumed sp, x17 = resumed pc
            "ldp x29, x19, [x2, #{fp}]",     // restore: frame pointer, base register
            "mov sp, x16",                   // restore: sp
            "mov x16, x17",                  // branch register BTI admits at `bti c`
            "br x16",                        // resume; x0 = arg for the other side
            "2:",
            "hint #38",                      // bti jc; x0 = the word whoever resumed us passed
            sp = const LAYOUT.GOBUF_SP,
            fp = const LAYOUT.GOBUF_FP,
            in("x1") save,
            in("x2") resume,
            inout("x0") arg => ret,
        );
    }
    ret
}

/// The out-of-line switch: `bl splitstack_swap`. Same contract as [`swap`]; kept to measure the
/// inlined form against.
///
/// # Safety
/// As [`crate::swap`].
#[inline(always)]
pub(crate) unsafe fn swap_out_of_line(save: *mut Gobuf, resume: *const Gobuf, arg: usize) -> usize {
    let ret: usize;
    // SAFETY: the caller upholds crate::swap's contract; every register the routine (or the
    // context it resumes) may change is declared clobbered here.
    unsafe {
        asm_clobbering_all!(
            "bl {swap}",
            swap = sym splitstack_swap,
            inout("x0") save => ret,
            in("x1") resume,
            in("x2") arg,
        );
    }
    ret
}

/// Words of padding in a [`CoContext`]: one, to keep sp 16-byte aligned.
/// base = x19, fp = x29.
pub(crate) const CO_CONTEXT_PAD: usize = 1;

// co_switch stores pc and base as a pair, at the stack pointer it pre-decrements by the size.
const _: () =
    assert!(LAYOUT.CO_CONTEXT_PC == 0 && LAYOUT.CO_CONTEXT_BASE == LAYOUT.CO_CONTEXT_PC + 8);

/// The coroutine switch (src/coroutine/mod.rs), the twin of the x86-64 one: suspend this side and
/// resume the other, whose context is `target`; returns the other side's context when it
/// switches back. Without a `call` that pushes, each side stores its pc and registers itself
/// and hands its context over in x13; the last switch out (`co_exit`) hands over the Link
/// instead.
///
/// `word` goes over to the other side in x0, untouched, and comes back as the word the other
/// side handed over when it switches back: a value that fits in a register (src/coroutine/mod.rs,
/// `hand_over`); the last switch out hands over none. The trampoline passes the first resume's
/// word to the entry function as its second argument.
///
/// # Safety
/// As the x86-64 `co_switch`.
#[inline(always)]
pub(crate) unsafe fn co_switch(
    target: usize,
    word: MaybeUninit<usize>,
) -> (usize, MaybeUninit<usize>) {
    let other: usize;
    let word_back: MaybeUninit<usize>;
    // SAFETY: the caller upholds the contract; x29 and x19 are stored and loaded around the
    // switch, every other register is declared clobbered.
    unsafe {
        asm_clobbering_all!(
            "adr x16, 2f",                   // our resume pc
            "stp x16, x19, [sp, #-{size}]!", // save: pc, base register (our CoContext)
            "str x29, [sp, #{fp}]",          // save: frame pointer
            "mov x13, sp",                   // our context, for the other side's landing
            "ldp x16, x19, [x2, #{pc}]",     // restore: the other side's pc, base register
            "ldr x29, [x2, #{fp}]",          // restore: frame pointer
            "add sp, x2, #{size}",           // restore: sp above its CoContext
            "br x16",                        // x16: a register BTI admits at `bti c`
            "2:",
            "hint #36",                      // bti j; x13 = the other side's context
            pc = const LAYOUT.CO_CONTEXT_PC,
            fp = const LAYOUT.CO_CONTEXT_FP,
            size = const LAYOUT.CO_CONTEXT_SIZE,
            inout("x2") target => _,
            lateout("x13") other,
            inout("x0") word => word_back,
        )
    };
    (other, word_back)
}

/// The coroutine's last switch: resume the resumer, whose context is `target`, handing over
/// `link` as this side's context and `word` in x0, as [`co_switch`] hands its word over; this
/// stack is abandoned.
///
/// # Safety
/// As [`co_switch`]; nothing on the current stack runs again.
#[inline(always)]
pub(crate) unsafe fn co_exit(link: usize, target: usize, word: MaybeUninit<usize>) -> ! {
    // SAFETY: the caller upholds the contract.
    unsafe {
        asm!(
            "mov x13, x1",                   // the Link, as this side's context
            "ldp x16, x19, [x2, #{pc}]",     // restore: the resumer's pc, base register
            "ldr x29, [x2, #{fp}]",          // restore: frame pointer
            "add sp, x2, #{size}",           // restore: sp above its CoContext
            "br x16",
            pc = const LAYOUT.CO_CONTEXT_PC,
            fp = const LAYOUT.CO_CONTEXT_FP,
            size = const LAYOUT.CO_CONTEXT_SIZE,
            in("x1") link,
            in("x2") target,
            in("x0") word,
            options(noreturn),
        )
    }
}

/// Makes the signal whose handler was passed `context` (a `ucontext_t`) return into the resumer's
/// landing, as [`co_exit`]`(link, target, _)` would, with no word: the Link in x13, x19 and x29
/// from the resumer's context, sp above it, pc at its resume point. PSTATE's BTYPE is cleared, so
/// the landing's `bti j` sees the state of a plain return, not of the interrupted instruction.
///
/// # Safety
/// `context` is the kernel's `ucontext_t` for a signal taken on this thread, and `target` a
/// resumer's context as [`co_exit`] requires.
pub(crate) unsafe fn exit_from_signal(context: *mut libc::c_void, link: usize, target: usize) {
    /// PSTATE.BTYPE, bits 10 and 11.
    const BTYPE: u64 = 3 << 10;
    // SAFETY: the caller's contract; `target` holds a CoContext.
    unsafe {
        let mcontext = &mut (*context.cast::<libc::ucontext_t>()).uc_mcontext;
        let word = |offset: usize| *((target + offset) as *const usize) as u64;
        mcontext.regs[13] = link as u64;
        mcontext.regs[19] = word(LAYOUT.CO_CONTEXT_BASE);
        mcontext.regs[29] = word(LAYOUT.CO_CONTEXT_FP);
        mcontext.pc = word(LAYOUT.CO_CONTEXT_PC);
        mcontext.sp = (target + LAYOUT.CO_CONTEXT_SIZE) as u64;
        mcontext.pstate &= !BTYPE;
    }
}

/// The stack pointer of the code a signal interrupted, from the handler's `context`.
///
/// # Safety
/// `context` is the kernel's `ucontext_t` for a signal taken on this thread.
pub(crate) unsafe fn signal_stack_pointer(context: *mut libc::c_void) -> usize {
    // SAFETY: the caller's contract.
    unsafe { (*context.cast::<libc::ucontext_t>()).uc_mcontext.sp as usize }
}

/// Save the current context into `buf`: 0 now, and the `ret` of each later `gogo(buf, ret)`.
///
/// # Safety
/// As [`crate::gosave`].
#[inline(always)]
pub(crate) unsafe fn gosave(buf: *mut Gobuf) -> usize {
    let ret: usize;
    // SAFETY: the caller upholds crate::gosave's contract; everything a later gogo may change is
    // declared clobbered.
    unsafe {
        asm_clobbering_all!(
            "bl {gosave}",
            gosave = sym splitstack_gosave,
            inout("x0") buf => ret,
        );
    }
    ret
}

/// The current stack pointer.
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads a register, touches nothing.
    unsafe { asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}
