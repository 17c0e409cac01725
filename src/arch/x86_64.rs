//! x86-64 System V call sites for the assembly in `asm/*_x86_64_sysv.S`.
//!
//! Each `asm!` block `call`s its routine and declares every register clobbered except rsp, rbp
//! and rbx, which Rust's inline asm cannot name and which the routine itself saves in the
//! [`Gobuf`]. The compiler then spills only what is live across the switch.

use super::*;
use crate::segment::Stktop;
use core::arch::asm;

/// Save the current context into `save` and resume `resume` with `arg`.
///
/// # Safety
/// As [`crate::swap`].
#[inline(always)]
pub(crate) unsafe fn swap(save: *mut Gobuf, resume: *const Gobuf, arg: usize) -> usize {
    let ret: usize;
    // SAFETY: the caller upholds crate::swap's contract; every register the routine (or the
    // context it resumes) may change is declared clobbered here.
    unsafe {
        asm!(
            "call {swap}",
            swap = sym splitstack_swap,
            in("rdi") save,
            in("rsi") resume,
            in("rdx") arg,
            lateout("rax") ret,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("C"),
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
        asm!(
            "call {gosave}",
            gosave = sym splitstack_gosave,
            in("rdi") buf,
            lateout("rax") ret,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("C"),
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

/// Run `f(arg)` on the segment below `stktop` through `splitstack_morestack`; returns the word
/// `f` returned, which came back through `splitstack_lessstack`, `m.cret` and `oldstack`.
///
/// # Safety
/// `stktop` must be the 16-byte aligned [`Stktop`] at the top of a mapped segment that nothing
/// else uses, with every field but `gobuf` filled in; `f` must not unwind.
#[inline(always)]
pub(crate) unsafe fn morestack(
    stktop: *mut Stktop,
    f: unsafe extern "C" fn(usize) -> usize,
    arg: usize,
) -> usize {
    let ret: usize;
    // SAFETY: the caller upholds the contract; every register but the stack pointer, frame
    // pointer and base register (which morestack saves in the Stktop) is declared clobbered.
    unsafe {
        asm!(
            "call {morestack}",
            morestack = sym splitstack_morestack,
            in("rdi") stktop,
            in("rsi") f,
            in("rdx") arg,
            lateout("rax") ret,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("C"),
        );
    }
    ret
}
