//! 32-bit x86 (i386 System V, cdecl) call sites for the assembly in `asm/*_x86_sysv.S`; the twin
//! of `x86_64.rs`.
//!
//! Each `asm!` block declares every register clobbered except esp, ebp and esi, which Rust's
//! inline asm cannot name on i386 (esi is LLVM's base pointer there, where x86-64 has rbx) and
//! which the routines save in the [`Gobuf`] or the `CoContext`. `clobber_abi("C")` covers eax,
//! ecx, edx and the vector and x87 registers; the callee-saved ebx and edi are declared
//! explicitly. The routines that only these blocks call (gosave, swap) take their arguments in
//! registers, not on the stack as cdecl would.

use super::*;
use crate::layout::LAYOUT;
use core::arch::asm;
use core::mem::MaybeUninit;

/// `asm!` with every register a switch may change declared clobbered: ebx and edi (callee-saved,
/// so outside `clobber_abi("C")`) and everything `clobber_abi("C")` names. esi and ebp cannot be
/// named in `asm!`; the routines keep them in the Gobuf. Each use's operands end with a comma.
macro_rules! asm_clobbering_all {
    ($($operands:tt)*) => {
        asm!(
            $($operands)*
            out("ebx") _, out("edi") _,
            clobber_abi("C"),
        )
    };
}

/// Save the current context into `save` and resume `resume` with `arg`: the switch, inlined at
/// each call site, as on x86-64 (see there for why). i386 has no pc-relative `lea`, so the resume
/// point's address comes from a `call` to the next instruction, which CPUs do not count as a call
/// for return prediction, plus the distance to the resume point: an immediate that only AT&T
/// syntax lets a label difference be in `asm!`, hence this block's syntax.
///
/// # Safety
/// As [`crate::swap`].
#[inline(always)]
pub(crate) unsafe fn swap(save: *mut Gobuf, resume: *const Gobuf, arg: usize) -> usize {
    let ret: usize;
    // SAFETY: the caller upholds crate::swap's contract. ebp and esi, which asm! cannot name,
    // are saved in `save` and restored from `resume`; every other register is declared
    // clobbered.
    unsafe {
        asm_clobbering_all!(
            "call 3f",                       // edi = the address of 3:
            "3:",
            "popl %edi",
            "addl $(2f - 3b), %edi",         // our resume point
            "movl %esp, {sp}(%ecx)",         // save: sp
            "movl %edi, {pc}(%ecx)",         // save: pc
            "movl %ebp, {fp}(%ecx)",         // save: frame pointer
            "movl %esi, {base}(%ecx)",       // save: base register
            "movl {sp}(%edx), %esp",         // restore: sp
            "movl {fp}(%edx), %ebp",         // restore: frame pointer
            "movl {base}(%edx), %esi",       // restore: base register
            "jmpl *{pc}(%edx)",              // resume; eax = arg for the other side
            "2:",                            // eax = the word whoever resumed us passed
            sp = const LAYOUT.GOBUF_SP,
            pc = const LAYOUT.GOBUF_PC,
            fp = const LAYOUT.GOBUF_FP,
            base = const LAYOUT.GOBUF_BASE,
            in("ecx") save,
            in("edx") resume,
            inout("eax") arg => ret,
            options(att_syntax),
        );
    }
    ret
}

/// Words of padding in a [`CoContext`]: none. A switch leaves it at the
/// stack pointer, lowest address first, by pushing ebp, then esi, then its `call` pushes the
/// resume pc: base = esi, fp = ebp.
pub(crate) const CO_CONTEXT_PAD: usize = 0;

// The push order co_switch writes the context in.
const _: () =
    assert!(LAYOUT.CO_CONTEXT_PC == 0 && LAYOUT.CO_CONTEXT_BASE == 4 && LAYOUT.CO_CONTEXT_FP == 8);

/// The coroutine switch, the twin of the x86-64 one (see there): this side pushes ebp and esi,
/// `call [edx]` pushes its resume pc and jumps to the other side's, and the landing takes the
/// stack back with `xchg edx, esp`, which leaves the other side's context in edx.
///
/// `word` goes over to the other side in eax, untouched, and comes back as the word the other
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
    // SAFETY: the caller upholds the contract; ebp and esi are pushed and popped around the
    // switch, every other register is declared clobbered.
    unsafe {
        asm_clobbering_all!(
            "push ebp",
            "push esi",
            "call dword ptr [edx]",          // push our resume pc, jump to the other side's
            "xchg edx, esp",                 // landing: our stack back, the caller's context out
            "pop ecx",                       // our pc, spent
            "pop esi",
            "pop ebp",
            inout("edx") target => other,
            inout("eax") word => word_back,
        )
    };
    (other, word_back)
}

/// The coroutine's last switch: resume the resumer, whose context is `target`, handing over
/// `link` as this side's context and `word` in eax (see [`co_switch`]); this stack is abandoned.
/// A `ret` to the
/// resumer's landing, as on x86-64 (see there why): its address goes just below the Link
/// (below the record, so dead by now), leaving esp at the Link.
///
/// # Safety
/// As [`co_switch`]; nothing on the current stack runs again.
#[inline(always)]
pub(crate) unsafe fn co_exit(link: usize, target: usize, word: MaybeUninit<usize>) -> ! {
    // SAFETY: the caller upholds the contract. esp points into the Link's stack, at the record,
    // until the landing's xchg: a signal in between runs below the record, over dead frames.
    unsafe {
        asm!(
            "mov ebx, dword ptr [edx]",      // the resumer's landing
            "mov dword ptr [ecx - 4], ebx",
            "lea esp, [ecx - 4]",
            "ret",                           // esp = the Link, edx = the resumer's context
            in("ecx") link,
            in("edx") target,
            in("eax") word,
            options(noreturn),
        )
    }
}

/// Makes the signal whose handler was passed `context` (a `ucontext_t`) return into the resumer's
/// landing, as [`co_exit`]`(link, target, _)` would, with no word: esp at the Link, the resumer's
/// context in edx, the pc its context holds.
///
/// # Safety
/// `context` is the kernel's `ucontext_t` for a signal taken on this thread, and `target` a
/// resumer's context as [`co_exit`] requires.
pub(crate) unsafe fn exit_from_signal(context: *mut libc::c_void, link: usize, target: usize) {
    // SAFETY: the caller's contract; the context's pc is the first word at `target`.
    unsafe {
        let gregs = &mut (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs;
        gregs[libc::REG_ESP as usize] = link as i32;
        gregs[libc::REG_EDX as usize] = target as i32;
        gregs[libc::REG_EIP as usize] = *((target + LAYOUT.CO_CONTEXT_PC) as *const usize) as i32;
    }
}

/// The stack pointer of the code a signal interrupted, from the handler's `context`.
///
/// # Safety
/// `context` is the kernel's `ucontext_t` for a signal taken on this thread.
pub(crate) unsafe fn signal_stack_pointer(context: *mut libc::c_void) -> usize {
    // SAFETY: the caller's contract.
    unsafe {
        (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs[libc::REG_ESP as usize] as usize
    }
}

/// The out-of-line switch: `call splitstack_swap`, with the arguments in ecx, edx and eax. Same
/// contract as [`swap`]; kept to measure the inlined form against.
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
            in("ecx") save,
            in("edx") resume,
            inout("eax") arg => ret,
        );
    }
    ret
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
            in("ecx") buf,
            lateout("eax") ret,
        );
    }
    ret
}

/// The current stack pointer.
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads a register, touches nothing.
    unsafe { asm!("mov {}, esp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}
