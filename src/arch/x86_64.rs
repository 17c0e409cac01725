//! x86-64 System V call sites for the assembly in `asm/*_x86_64_sysv.S`.
//!
//! Each `asm!` block `call`s its routine and declares every register clobbered except rsp, rbp
//! and rbx, which Rust's inline asm cannot name and which the routine itself saves in the
//! [`Gobuf`]. The compiler then spills only what is live across the switch.

use super::*;
use crate::layout::LAYOUT;
use core::arch::asm;
use core::mem::MaybeUninit;

/// `asm!` with every register a switch may change declared clobbered: r12-r15 (callee-saved,
/// so outside `clobber_abi("C")`) and everything `clobber_abi("C")` names. rbx and rbp cannot be
/// named in `asm!`; the routines keep them in the Gobuf. Each use's operands end with a comma.
macro_rules! asm_clobbering_all {
    ($($operands:tt)*) => {
        asm!(
            $($operands)*
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("C"),
        )
    };
}

/// Save the current context into `save` and resume `resume` with `arg`: the switch, inlined
/// at each call site.
///
/// The sequence is `splitstack_swap`'s (asm/switch_x86_64_sysv.S), written into the `asm!`
/// block instead of called: each call site then has its own indirect `jmp`, whose target (the
/// other side's resume point) is always the same, so the branch predictor learns it. With the
/// one shared `jmp` of the out-of-line routine, the target alternates between the two sides
/// and is mispredicted on every switch; benches/switch.rs measures both forms, this one as
/// `splitstack` and the out-of-line routine as `splitstack_out_of_line`, and the README's table
/// gives the figures. The jump is `notrack`, as every resume is (asm/asm.h says why), so the
/// resume point needs no `endbr64`. The label is numeric because the block is inlined many
/// times (Rust's rule for labels in `asm!`).
///
/// # Safety
/// As [`crate::swap`].
#[inline(always)]
pub(crate) unsafe fn swap(save: *mut Gobuf, resume: *const Gobuf, arg: usize) -> usize {
    let ret: usize;
    // SAFETY: the caller upholds crate::swap's contract. rbp and rbx, which asm! cannot name,
    // are saved in `save` and restored from `resume` (and from `save` when this context is
    // resumed); every other register is declared clobbered.
    unsafe {
        asm_clobbering_all!(
            "lea rcx, [rip + 2f]",           // our resume point
            "mov [rdi + {sp}], rsp",         // save: sp
            "mov [rdi + {pc}], rcx",         // save: pc
            "mov [rdi + {fp}], rbp",         // save: frame pointer
            "mov [rdi + {base}], rbx",       // save: base register
            "mov rsp, [rsi + {sp}]",         // restore: sp
            "mov rbp, [rsi + {fp}]",         // restore: frame pointer
            "mov rbx, [rsi + {base}]",       // restore: base register
            "notrack jmp qword ptr [rsi + {pc}]", // resume; rax = arg for the other side
            "2:",                            // rax = the word whoever resumed us passed
            sp = const LAYOUT.GOBUF_SP,
            pc = const LAYOUT.GOBUF_PC,
            fp = const LAYOUT.GOBUF_FP,
            base = const LAYOUT.GOBUF_BASE,
            in("rdi") save,
            in("rsi") resume,
            inout("rax") arg => ret,
        );
    }
    ret
}

/// Words of padding in a [`CoContext`]: none. A switch leaves it at the
/// stack pointer, lowest address first, by pushing rbp, then rbx, then its `call` pushes the
/// resume pc: base = rbx, fp = rbp.
pub(crate) const CO_CONTEXT_PAD: usize = 0;

// The push order co_switch writes the context in.
const _: () =
    assert!(LAYOUT.CO_CONTEXT_PC == 0 && LAYOUT.CO_CONTEXT_BASE == 8 && LAYOUT.CO_CONTEXT_FP == 16);

/// The coroutine switch (src/coroutine/mod.rs): suspend this side and resume the other, whose
/// context is `target`; returns the other side's context when it switches back to this one.
///
/// A context is only a stack pointer: this side pushes rbp and rbx, and `call [rdx]` pushes its
/// resume pc and jumps to the other side's, read from the other stack. The code after the `call`
/// (the landing) runs when the other side switches back the same way, with rdx holding this
/// side's context as the other side had it: `xchg rdx, rsp` takes the stack back and leaves the
/// other side's context in rdx, the register the next switch takes it in. Then the landing
/// skips its pc and pops its registers. The last switch out (`co_exit`) hands over the
/// coroutine's Link as its context instead, to say that the coroutine has finished.
///
/// While the two sides ping-pong, the `call`s are not matched by `ret`s, which costs the
/// return-stack predictor nothing (each `ret` in between pairs with its own `call`); the last
/// resume's `call` is matched by the `ret` of [`co_exit`]. The `call` is `notrack`, as every
/// resume is (asm/asm.h says why), so the landing needs no `endbr64`.
///
/// `word` goes over to the other side in rax, untouched, and comes back as the word the other
/// side handed over when it switches back: a value that fits in a register (src/coroutine/mod.rs,
/// `hand_over`); the last switch out hands over none. The trampoline passes the first resume's
/// word to the entry function as its second argument.
///
/// # Safety
/// `target` is a context the other side saved with this function, or the coroutine's initial
/// one, whose stack is mapped and whose frames are live; this side's context stays valid until
/// the other side resumes it.
#[inline(always)]
pub(crate) unsafe fn co_switch(
    target: usize,
    word: MaybeUninit<usize>,
) -> (usize, MaybeUninit<usize>) {
    let other: usize;
    let word_back: MaybeUninit<usize>;
    // SAFETY: the caller upholds the contract; rbp and rbx are pushed and popped around the
    // switch, every other register is declared clobbered.
    unsafe {
        asm_clobbering_all!(
            "push rbp",
            "push rbx",
            "notrack call qword ptr [rdx]",  // push our resume pc, jump to the other side's
            "xchg rdx, rsp",                 // landing: our stack back, the caller's context out
            "pop rcx",                       // our pc, spent
            "pop rbx",
            "pop rbp",
            inout("rdx") target => other,
            inout("rax") word => word_back,
        )
    };
    (other, word_back)
}

/// The coroutine's last switch (its entry function's end): resume the resumer, whose context is
/// `target`, handing over `link` as this side's context and `word` in rax (see [`co_switch`]); this
/// stack is abandoned. A `ret` to the resumer's landing, whose address its resume's `call` put on
/// the return-stack predictor, so that the predictor is left as the resumer had it before its
/// resume: a `jmp` would leave that entry there, and the resumer's next return would be
/// mispredicted. The landing is on top of the predictor when the coroutine finishes in the run its
/// last resume started without returning from frames entered before it: always for one that never
/// suspended (the trampoline enters the entry function without a call), which is what a create +
/// complete + drop measures. After a suspend, returns from the closure's frames can pop the landing
/// first, and this `ret` is then mispredicted. The landing's address goes just below the Link
/// (below the record, so dead by now), where the `ret` takes it from, leaving rsp at the Link.
///
/// # Safety
/// As [`co_switch`]; nothing on the current stack runs again.
#[inline(always)]
pub(crate) unsafe fn co_exit(link: usize, target: usize, word: MaybeUninit<usize>) -> ! {
    // SAFETY: the caller upholds the contract. rsp points into the Link's stack, at the record,
    // until the landing's xchg: a signal in between runs below the record, over dead frames.
    unsafe {
        asm!(
            "mov rcx, qword ptr [rdx]",      // the resumer's landing
            "mov qword ptr [rsi - 8], rcx",
            "lea rsp, [rsi - 8]",
            "ret",                           // rsp = the Link, rdx = the resumer's context
            in("rsi") link,
            in("rdx") target,
            in("rax") word,
            options(noreturn),
        )
    }
}

/// Makes the signal whose handler was passed `context` (a `ucontext_t`) return into the resumer's
/// landing, as [`co_exit`]`(link, target, _)` would, with no word: rsp at the Link, the resumer's
/// context in rdx, the pc its context holds. The landing's `xchg` then takes the resumer's stack
/// back; it reads nothing else the interrupted code left in registers.
///
/// # Safety
/// `context` is the kernel's `ucontext_t` for a signal taken on this thread, and `target` a
/// resumer's context as [`co_exit`] requires.
pub(crate) unsafe fn exit_from_signal(context: *mut libc::c_void, link: usize, target: usize) {
    // SAFETY: the caller's contract; the context's pc is the first word at `target`.
    unsafe {
        let gregs = &mut (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs;
        gregs[libc::REG_RSP as usize] = link as i64;
        gregs[libc::REG_RDX as usize] = target as i64;
        gregs[libc::REG_RIP as usize] = *((target + LAYOUT.CO_CONTEXT_PC) as *const usize) as i64;
    }
}

/// The stack pointer of the code a signal interrupted, from the handler's `context`.
///
/// # Safety
/// `context` is the kernel's `ucontext_t` for a signal taken on this thread.
pub(crate) unsafe fn signal_stack_pointer(context: *mut libc::c_void) -> usize {
    // SAFETY: the caller's contract.
    unsafe {
        (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs[libc::REG_RSP as usize] as usize
    }
}

/// The out-of-line switch: `call splitstack_swap`. Same contract as [`swap`]; kept to measure
/// the inlined form against (see there) and for callers that want one copy of the sequence.
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
            in("rdi") save,
            in("rsi") resume,
            in("rdx") arg,
            lateout("rax") ret,
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
            in("rdi") buf,
            lateout("rax") ret,
        );
    }
    ret
}

/// The current stack pointer.
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads a register, touches nothing.
    unsafe { asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}
