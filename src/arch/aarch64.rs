//! AArch64 AAPCS64 call sites for the assembly in `asm/*_aarch64_aapcs.S`; the twin of
//! `x86_64.rs`.
//!
//! Each `asm!` block `bl`s its routine and declares every register clobbered except sp, x29 and
//! x19, which Rust's inline asm cannot name and which the routine saves in the [`Gobuf`]. The
//! callee-saved x20-x28 and v8-v15 (whose low halves are d8-d15) are declared explicitly;
//! `clobber_abi("C")` covers the rest, x30 included.

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
            "bl {swap}",
            swap = sym splitstack_swap,
            inout("x0") save => ret,
            in("x1") resume,
            in("x2") arg,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
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
            "bl {gosave}",
            gosave = sym splitstack_gosave,
            inout("x0") buf => ret,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
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
    unsafe { asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
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
            "bl {morestack}",
            morestack = sym splitstack_morestack,
            inout("x0") stktop => ret,
            in("x1") f,
            in("x2") arg,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            clobber_abi("C"),
        );
    }
    ret
}
