//! 32-bit ARM (AAPCS with VFP, hard float) call sites for the assembly in
//! `asm/*_arm_aapcs.S`; the twin of `aarch64.rs`.
//!
//! Each `asm!` block `bl`s its routine (or switches inline) and declares every register
//! clobbered except sp, the frame pointer and r6 (LLVM's base pointer), which Rust's inline asm
//! cannot name and which the routine saves in the [`Gobuf`]. The frame pointer is r11 in A32
//! code, this target's default, and r7 when the crate is built for Thumb-2 (the build script's
//! cfg `splitstack_thumb_mode`, build/main.rs): [`fp!`] names it, and the other one is declared clobbered
//! with r4, r5 and r8-r10. d8-d15 are callee-saved too and declared explicitly;
//! `clobber_abi("C")` covers the rest, lr included. A resume point's address carries the Thumb
//! bit in Thumb-2 code, so that the `bx` that resumes it enters the right state.

use super::*;
use crate::layout::LAYOUT;
use core::arch::asm;
use core::mem::MaybeUninit;

/// The frame pointer's name in `asm!` templates: r11 in A32 code.
#[cfg(not(splitstack_thumb_mode))]
macro_rules! fp {
    () => {
        "r11"
    };
}
/// The frame pointer's name in `asm!` templates: r7 in Thumb-2 code.
#[cfg(splitstack_thumb_mode)]
macro_rules! fp {
    () => {
        "r7"
    };
}

/// The instructions that put the address of the local label `2` in r12 as a `bx` resumes it:
/// `adr` in A32 code; in Thumb-2 code `adr` on a word boundary, then the Thumb bit set. A Thumb
/// `adr` adds its offset to the pc rounded down to a word, a rounding LLVM's assembler leaves out
/// of the offset of an `adr` in inline asm: off a word boundary the address came out 2 bytes
/// short (and the resume looped on the `bx` before the label); on one there is nothing to round.
#[cfg(not(splitstack_thumb_mode))]
macro_rules! resume_point {
    () => {
        "adr r12, 2f"
    };
}
#[cfg(splitstack_thumb_mode)]
macro_rules! resume_point {
    () => {
        ".p2align 2\nadr.w r12, 2f\norr.w r12, r12, #1"
    };
}

/// `asm!` with every register a switch may change declared clobbered: r4, r5, r7-r11 less the
/// frame pointer, d8-d15 (callee-saved, so outside `clobber_abi("C")`) and everything
/// `clobber_abi("C")` names. r6 and the frame pointer cannot be named in `asm!`; the routines
/// keep them in the Gobuf. Each use's operands end with a comma.
#[cfg(not(splitstack_thumb_mode))]
macro_rules! asm_clobbering_all {
    ($($operands:tt)*) => {
        asm!(
            $($operands)*
            out("r4") _, out("r5") _, out("r7") _, out("r8") _, out("r9") _, out("r10") _,
            out("d8") _, out("d9") _, out("d10") _, out("d11") _,
            out("d12") _, out("d13") _, out("d14") _, out("d15") _,
            clobber_abi("C"),
        )
    };
}
/// As the A32 one, with r11 clobbered and r7 (the frame pointer) kept.
#[cfg(splitstack_thumb_mode)]
macro_rules! asm_clobbering_all {
    ($($operands:tt)*) => {
        asm!(
            $($operands)*
            out("r4") _, out("r5") _, out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            out("d8") _, out("d9") _, out("d10") _, out("d11") _,
            out("d12") _, out("d13") _, out("d14") _, out("d15") _,
            clobber_abi("C"),
        )
    };
}

/// Save the current context into `save` and resume `resume` with `arg`: the switch, inlined
/// at each call site, so that each site's indirect branch has one stable target (see the x86-64
/// twin for the measurement). The branch is a `bx`, which enters A32 or Thumb-2 code as the
/// resumed pc's bit 0 says.
///
/// # Safety
/// As [`crate::swap`].
#[inline(always)]
pub(crate) unsafe fn swap(save: *mut Gobuf, resume: *const Gobuf, arg: usize) -> usize {
    let ret: usize;
    // SAFETY: the caller upholds crate::swap's contract. The frame pointer and r6, which asm!
    // cannot name, are saved in `save` and restored from `resume`; every other register is
    // declared clobbered.
    unsafe {
        asm_clobbering_all!(
            resume_point!(),                 // r12 = our resume point
            "mov r3, sp",
            "str r3, [r1, #{sp}]",           // save: sp
            "str r12, [r1, #{pc}]",          // save: pc
            concat!("str ", fp!(), ", [r1, #{fp}]"), // save: frame pointer
            "str r6, [r1, #{base}]",         // save: base register
            "ldr r12, [r2, #{pc}]",          // r12 = resumed pc
            concat!("ldr ", fp!(), ", [r2, #{fp}]"), // restore: frame pointer
            "ldr r6, [r2, #{base}]",         // restore: base register
            "ldr r3, [r2, #{sp}]",
            "mov sp, r3",                    // restore: sp
            "bx r12",                        // resume; r0 = arg for the other side
            "2:",                            // r0 = the word whoever resumed us passed
            sp = const LAYOUT.GOBUF_SP,
            pc = const LAYOUT.GOBUF_PC,
            fp = const LAYOUT.GOBUF_FP,
            base = const LAYOUT.GOBUF_BASE,
            in("r1") save,
            in("r2") resume,
            inout("r0") arg => ret,
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
            inout("r0") save => ret,
            in("r1") resume,
            in("r2") arg,
        );
    }
    ret
}

/// Words of padding in a [`CoContext`]: one, to keep sp 16-byte aligned
/// (AAPCS asks for 8). base = r6, fp = r11 (r7 in Thumb-2 code); the pc has bit 0 set for
/// Thumb-2 code. `splitstack_coroutine_trampoline`'s unwind entry reads it.
pub(crate) const CO_CONTEXT_PAD: usize = 1;

// co_switch stores pc at the stack pointer it pre-decrements by the size.
const _: () = assert!(LAYOUT.CO_CONTEXT_PC == 0 && LAYOUT.CO_CONTEXT_SIZE.is_multiple_of(16));

/// The coroutine switch (src/coroutine/mod.rs), the twin of the AArch64 one: suspend this side and
/// resume the other, whose context is `target`; returns the other side's context when it
/// switches back. Each side stores its pc and registers itself and hands its context over in
/// r3 (x13 on AArch64); the last switch out (`co_exit`) hands over the Link instead.
///
/// `word` goes over to the other side in r0, untouched, and comes back as the word the other
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
    // SAFETY: the caller upholds the contract; the frame pointer and r6 are stored and loaded
    // around the switch, every other register is declared clobbered.
    unsafe {
        asm_clobbering_all!(
            resume_point!(),                 // r12 = our resume pc
            "str r12, [sp, #-{size}]!",      // save: pc (our CoContext; CO_CONTEXT_PC is 0)
            "str r6, [sp, #{base}]",         // save: base register
            concat!("str ", fp!(), ", [sp, #{fp}]"), // save: frame pointer
            "mov r3, sp",                    // our context, for the other side's landing
            "ldr r12, [r2, #{pc}]",          // the other side's pc
            "ldr r6, [r2, #{base}]",         // restore: base register
            concat!("ldr ", fp!(), ", [r2, #{fp}]"), // restore: frame pointer
            "add r1, r2, #{size}",           // (Thumb-2 cannot add into sp from another register)
            "mov sp, r1",                    // restore: sp above its CoContext
            "bx r12",
            "2:",                            // r3 = the other side's context
            pc = const LAYOUT.CO_CONTEXT_PC,
            base = const LAYOUT.CO_CONTEXT_BASE,
            fp = const LAYOUT.CO_CONTEXT_FP,
            size = const LAYOUT.CO_CONTEXT_SIZE,
            inout("r2") target => _,
            lateout("r3") other,
            inout("r0") word => word_back,
        )
    };
    (other, word_back)
}

/// The coroutine's last switch: resume the resumer, whose context is `target`, handing over
/// `link` as this side's context and `word` in r0, as [`co_switch`] hands its word over; this
/// stack is abandoned.
///
/// # Safety
/// As [`co_switch`]; nothing on the current stack runs again.
#[inline(always)]
pub(crate) unsafe fn co_exit(link: usize, target: usize, word: MaybeUninit<usize>) -> ! {
    // SAFETY: the caller upholds the contract.
    unsafe {
        asm!(
            "mov r3, r1",                    // the Link, as this side's context
            "ldr r12, [r2, #{pc}]",          // the resumer's pc
            "ldr r6, [r2, #{base}]",         // restore: base register
            concat!("ldr ", fp!(), ", [r2, #{fp}]"), // restore: frame pointer
            "add r1, r2, #{size}",           // (Thumb-2 cannot add into sp from another register)
            "mov sp, r1",                    // restore: sp above its CoContext
            "bx r12",
            pc = const LAYOUT.CO_CONTEXT_PC,
            base = const LAYOUT.CO_CONTEXT_BASE,
            fp = const LAYOUT.CO_CONTEXT_FP,
            size = const LAYOUT.CO_CONTEXT_SIZE,
            in("r1") link,
            in("r2") target,
            in("r0") word,
            options(noreturn),
        )
    }
}

/// Makes the signal whose handler was passed `context` (a `ucontext_t`) return into the resumer's
/// landing, as [`co_exit`]`(link, target, _)` would, with no word: the Link in r3, r6 and the frame
/// pointer from the resumer's context, sp above it, pc at its resume point. The pc's bit 0 becomes
/// CPSR's T bit (the kernel's signal return takes the state from CPSR, not from the pc), and CPSR's
/// IT bits are cleared, so that an If-Then block the signal interrupted does not predicate the
/// landing's first instructions.
///
/// # Safety
/// `context` is the kernel's `ucontext_t` for a signal taken on this thread, and `target` a
/// resumer's context as [`co_exit`] requires.
pub(crate) unsafe fn exit_from_signal(context: *mut libc::c_void, link: usize, target: usize) {
    /// CPSR.T, bit 5: Thumb state.
    const THUMB: u32 = 1 << 5;
    /// CPSR.IT, bits 26:25 and 15:10.
    const IT: u32 = (3 << 25) | (0x3f << 10);
    // SAFETY: the caller's contract; `target` holds a CoContext.
    unsafe {
        let mcontext = &mut (*context.cast::<libc::ucontext_t>()).uc_mcontext;
        let word = |offset: usize| *((target + offset) as *const usize) as u32;
        let pc = word(LAYOUT.CO_CONTEXT_PC);
        let fp = word(LAYOUT.CO_CONTEXT_FP);
        mcontext.arm_r3 = link as u32;
        mcontext.arm_r6 = word(LAYOUT.CO_CONTEXT_BASE);
        if cfg!(splitstack_thumb_mode) {
            mcontext.arm_r7 = fp;
        } else {
            mcontext.arm_fp = fp;
        }
        mcontext.arm_pc = pc & !1;
        mcontext.arm_sp = (target + LAYOUT.CO_CONTEXT_SIZE) as u32;
        let cpsr = mcontext.arm_cpsr & !(IT | THUMB);
        mcontext.arm_cpsr = if pc & 1 != 0 { cpsr | THUMB } else { cpsr };
    }
}

/// The stack pointer of the code a signal interrupted, from the handler's `context`.
///
/// # Safety
/// `context` is the kernel's `ucontext_t` for a signal taken on this thread.
pub(crate) unsafe fn signal_stack_pointer(context: *mut libc::c_void) -> usize {
    // SAFETY: the caller's contract.
    unsafe { (*context.cast::<libc::ucontext_t>()).uc_mcontext.arm_sp as usize }
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
            inout("r0") buf => ret,
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
