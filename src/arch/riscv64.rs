//! RISC-V 64 LP64D call sites for the assembly in `asm/*_riscv64_lp64d.S`; the twin of
//! `aarch64.rs`.
//!
//! Each `asm!` block `call`s its routine and declares every register clobbered except sp, s0 and
//! s1, which Rust's inline asm cannot name (nor gp and tp, which no switch changes) and which
//! the routine saves in the [`Gobuf`]. The callee-saved s2-s11 and fs0-fs11 are declared
//! explicitly; `clobber_abi("C")` covers the rest, ra included.

use super::*;
use crate::layout::LAYOUT;
use core::arch::asm;
use core::mem::MaybeUninit;

/// `asm!` with every register a switch may change declared clobbered: s2-s11 and fs0-fs11
/// (callee-saved, so outside `clobber_abi("C")`) and everything `clobber_abi("C")` names. s0
/// and s1 cannot be named in `asm!`; the routines keep them in the Gobuf. Each use's operands
/// end with a comma.
macro_rules! asm_clobbering_all {
    ($($operands:tt)*) => {
        asm!(
            $($operands)*
            out("s2") _, out("s3") _, out("s4") _, out("s5") _, out("s6") _,
            out("s7") _, out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("fs0") _, out("fs1") _, out("fs2") _, out("fs3") _, out("fs4") _, out("fs5") _,
            out("fs6") _, out("fs7") _, out("fs8") _, out("fs9") _, out("fs10") _, out("fs11") _,
            clobber_abi("C"),
        )
    };
}

/// Save the current context into `save` and resume `resume` with `arg`: the switch, inlined
/// at each call site, so that each site's indirect jump has one stable target (see the x86-64
/// twin for the measurement). Differences: the jump goes through t1, which the
/// return-address predictor does not take for a return (through ra or t0 it would: the ISA's
/// hint), and there is no landing-pad instruction (no Zicfilp).
///
/// # Safety
/// As [`crate::swap`].
#[inline(always)]
pub(crate) unsafe fn swap(save: *mut Gobuf, resume: *const Gobuf, arg: usize) -> usize {
    let ret: usize;
    // SAFETY: the caller upholds crate::swap's contract. s0 and s1, which asm! cannot name,
    // are saved in `save` and restored from `resume`; every other register is declared
    // clobbered.
    unsafe {
        asm_clobbering_all!(
            "lla t1, 2f",                    // our resume point
            "sd sp, {sp}(a1)",               // save: sp
            "sd t1, {pc}(a1)",               // save: pc
            "sd s0, {fp}(a1)",               // save: frame pointer
            "sd s1, {base}(a1)",             // save: base register
            "ld t1, {pc}(a2)",               // t1 = resumed pc
            "ld s0, {fp}(a2)",               // restore: frame pointer
            "ld s1, {base}(a2)",             // restore: base register
            "ld sp, {sp}(a2)",               // restore: sp
            "jr t1",                         // resume; a0 = arg for the other side
            "2:",                            // a0 = the word whoever resumed us passed
            sp = const LAYOUT.GOBUF_SP,
            pc = const LAYOUT.GOBUF_PC,
            fp = const LAYOUT.GOBUF_FP,
            base = const LAYOUT.GOBUF_BASE,
            in("a1") save,
            in("a2") resume,
            inout("a0") arg => ret,
        );
    }
    ret
}

/// The out-of-line switch: `call splitstack_swap`. Same contract as [`swap`]; kept to measure
/// the inlined form against.
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
            "call {swap}",
            swap = sym splitstack_swap,
            inout("a0") save => ret,
            in("a1") resume,
            in("a2") arg,
        );
    }
    ret
}

/// Words of padding in a [`CoContext`]: one, to keep sp 16-byte aligned, as
/// the psABI requires. base = s1, fp = s0.
pub(crate) const CO_CONTEXT_PAD: usize = 1;

/// The coroutine switch (src/coroutine/mod.rs), the twin of the AArch64 one: suspend this side and
/// resume the other, whose context is `target`; returns the other side's context when it
/// switches back. Without a `call` that pushes, each side stores its pc and registers itself
/// and hands its context over in a0 (x13 on AArch64); the last switch out (`co_exit`) hands
/// over the Link instead.
///
/// `word` goes over to the other side in a1, untouched, and comes back as the word the other
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
    // SAFETY: the caller upholds the contract; s0 and s1 are stored and loaded around the
    // switch, every other register is declared clobbered.
    unsafe {
        asm_clobbering_all!(
            "lla t1, 2f",                    // our resume pc
            "addi sp, sp, -{size}",          // room for our CoContext, sp stays 16-aligned
            "sd t1, {pc}(sp)",               // save: pc
            "sd s1, {base}(sp)",             // save: base register
            "sd s0, {fp}(sp)",               // save: frame pointer
            "mv a0, sp",                     // our context, for the other side's landing
            "ld t1, {pc}(a2)",               // the other side's pc
            "ld s1, {base}(a2)",             // restore: base register
            "ld s0, {fp}(a2)",               // restore: frame pointer
            "addi sp, a2, {size}",           // restore: sp above its CoContext
            "jr t1",
            "2:",                            // a0 = the other side's context
            pc = const LAYOUT.CO_CONTEXT_PC,
            base = const LAYOUT.CO_CONTEXT_BASE,
            fp = const LAYOUT.CO_CONTEXT_FP,
            size = const LAYOUT.CO_CONTEXT_SIZE,
            inout("a2") target => _,
            lateout("a0") other,
            inout("a1") word => word_back,
        )
    };
    (other, word_back)
}

/// The coroutine's last switch: resume the resumer, whose context is `target`, handing over
/// `link` as this side's context (in a0) and `word` in a1, as [`co_switch`] hands its word
/// over; this stack is abandoned.
///
/// # Safety
/// As [`co_switch`]; nothing on the current stack runs again.
#[inline(always)]
pub(crate) unsafe fn co_exit(link: usize, target: usize, word: MaybeUninit<usize>) -> ! {
    // SAFETY: the caller upholds the contract.
    unsafe {
        asm!(
            "ld t1, {pc}(a2)",               // the resumer's pc
            "ld s1, {base}(a2)",             // restore: base register
            "ld s0, {fp}(a2)",               // restore: frame pointer
            "addi sp, a2, {size}",           // restore: sp above its CoContext
            "jr t1",                         // a0 = the Link, as this side's context
            pc = const LAYOUT.CO_CONTEXT_PC,
            base = const LAYOUT.CO_CONTEXT_BASE,
            fp = const LAYOUT.CO_CONTEXT_FP,
            size = const LAYOUT.CO_CONTEXT_SIZE,
            in("a0") link,
            in("a2") target,
            in("a1") word,
            options(noreturn),
        )
    }
}

/// Makes the signal whose handler was passed `context` (a `ucontext_t`) return into the resumer's
/// landing, as [`co_exit`]`(link, target, _)` would, with no word: the Link in a0, s1 and s0 from
/// the resumer's context, sp above it, pc at its resume point.
///
/// # Safety
/// `context` is the kernel's `ucontext_t` for a signal taken on this thread, and `target` a
/// resumer's context as [`co_exit`] requires.
pub(crate) unsafe fn exit_from_signal(context: *mut libc::c_void, link: usize, target: usize) {
    // SAFETY: the caller's contract; `target` holds a CoContext.
    unsafe {
        let gregs = &mut (*context.cast::<libc::ucontext_t>()).uc_mcontext.__gregs;
        let word = |offset: usize| *((target + offset) as *const usize) as libc::c_ulong;
        gregs[libc::REG_A0] = link as libc::c_ulong;
        gregs[libc::REG_S1] = word(LAYOUT.CO_CONTEXT_BASE);
        gregs[libc::REG_S0] = word(LAYOUT.CO_CONTEXT_FP);
        gregs[libc::REG_PC] = word(LAYOUT.CO_CONTEXT_PC);
        gregs[libc::REG_SP] = (target + LAYOUT.CO_CONTEXT_SIZE) as libc::c_ulong;
    }
}

/// The stack pointer of the code a signal interrupted, from the handler's `context`.
///
/// # Safety
/// `context` is the kernel's `ucontext_t` for a signal taken on this thread.
pub(crate) unsafe fn signal_stack_pointer(context: *mut libc::c_void) -> usize {
    // SAFETY: the caller's contract.
    unsafe { (*context.cast::<libc::ucontext_t>()).uc_mcontext.__gregs[libc::REG_SP] as usize }
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
            "call {gosave}",
            gosave = sym splitstack_gosave,
            inout("a0") buf => ret,
        );
    }
    ret
}

/// The current stack pointer.
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads a register, touches nothing.
    unsafe { asm!("mv {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}
