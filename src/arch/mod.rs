//! Every assembly symbol, declared once, with its contract; and the `asm!` call sites that use
//! them, one backend per architecture behind the same names.
//!
//! The `.S` files in `asm/` point back here. Symbols carry the `splitstack_` prefix and are
//! hidden (not exported from a shared library).

use crate::context::Gobuf;
use crate::segment::Stktop;

cfg_if::cfg_if! {
    if #[cfg(target_arch = "x86_64")] {
        mod x86_64;
        pub(crate) use self::x86_64::*;
    } else if #[cfg(target_arch = "aarch64")] {
        mod aarch64;
        pub(crate) use self::aarch64::*;
    } else if #[cfg(target_arch = "x86")] {
        mod x86;
        pub(crate) use self::x86::*;
    } else if #[cfg(target_arch = "riscv64")] {
        mod riscv64;
        pub(crate) use self::riscv64::*;
    } else if #[cfg(target_arch = "arm")] {
        mod arm;
        pub(crate) use self::arm::*;
    } else {
        compile_error!("splitstack supports x86_64, x86 (i686), aarch64, arm and riscv64 only");
    }
}

/// A suspended coroutine side's context, at its saved stack pointer: what `co_switch` leaves
/// there, and what `splitstack_coroutine_trampoline`'s CFI (its EHABI entry on ARM) reads from
/// the resumer's: the pc to resume at, the base register and the frame pointer (src/layout.rs
/// names them for each architecture), and `CO_CONTEXT_PAD` words that keep the stack pointer
/// aligned where a switch stores rather than pushes. A fresh coroutine's initial one holds only
/// the pc and the base register ([`CoContext::write_initial`]).
#[repr(C)]
pub(crate) struct CoContext {
    pc: usize,
    base: usize,
    fp: usize,
    pad: [usize; CO_CONTEXT_PAD],
}

impl CoContext {
    /// Writes at `at` a fresh coroutine's initial context: `pc` (the trampoline's) and `base`
    /// (its entry function). The frame-pointer slot and the padding are left as they are: a
    /// switch into the context loads the slot (AArch64, ARM, RISC-V), and the trampoline sets
    /// the frame pointer before anything reads it.
    ///
    /// # Safety
    /// `at` is valid for writes of a `CoContext` and aligned for one.
    #[inline(always)]
    pub(crate) unsafe fn write_initial(at: *mut CoContext, pc: usize, base: usize) {
        // SAFETY: (forwarded)
        unsafe {
            core::ptr::addr_of_mut!((*at).pc).write(pc);
            core::ptr::addr_of_mut!((*at).base).write(base);
        }
    }

    /// Whether the context at `at` is still a fresh coroutine's initial one: its pc is the
    /// coroutine trampoline's, which no switch saves (a suspended side's pc lies in the switch
    /// that suspended it).
    ///
    /// # Safety
    /// `at` is a coroutine's saved context (initial or suspended), valid for reads.
    pub(crate) unsafe fn is_initial(at: *const CoContext) -> bool {
        let trampoline = splitstack_coroutine_trampoline as unsafe extern "C" fn() as usize;
        // SAFETY: (forwarded)
        unsafe { core::ptr::addr_of!((*at).pc).read() == trampoline }
    }
}

// The layout the trampolines and switches read (src/layout.rs).
const _: () = {
    use crate::layout::LAYOUT;
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(CoContext, pc) == LAYOUT.CO_CONTEXT_PC);
    assert!(offset_of!(CoContext, base) == LAYOUT.CO_CONTEXT_BASE);
    assert!(offset_of!(CoContext, fp) == LAYOUT.CO_CONTEXT_FP);
    assert!(size_of::<CoContext>() == LAYOUT.CO_CONTEXT_SIZE);
};

extern "C" {
    /// Resume the context saved in `buf`; the resumed code sees `ret` in AX / X0 / R0 / a0.
    /// (asm/switch_*.S)
    ///
    /// # Safety
    /// `buf` must hold a context saved by `splitstack_swap`, `splitstack_gosave` or
    /// `splitstack_morestack`, or prepared by [`crate::prepare`], whose stack is still mapped and
    /// whose frames are still live. Whatever runs on the current stack is abandoned: no
    /// destructor runs, no unwinding happens.
    pub(crate) fn splitstack_gogo(buf: *const Gobuf, ret: usize) -> !;

    /// Save the caller's context into `buf`; return 0, and `ret` again for each later
    /// `gogo(buf, ret)`. Never call it as a Rust function: it returns twice, and only the
    /// `asm!` call site in [`gosave`] declares that every register is clobbered. On i386 it
    /// takes `buf` in ecx, not on the stack as cdecl would.
    ///
    /// # Safety
    /// See [`crate::gosave`].
    pub(crate) fn splitstack_gosave(buf: *mut Gobuf) -> usize;

    /// Save the caller's context into `save`, then resume `resume` with `arg`. Never call it as
    /// a Rust function: only the `asm!` call site in [`swap`] declares the registers it
    /// clobbers (all but sp, fp and the base register). On i386 it takes its arguments in ecx,
    /// edx and eax, not on the stack as cdecl would.
    ///
    /// # Safety
    /// See [`crate::swap`].
    pub(crate) fn splitstack_swap(save: *mut Gobuf, resume: *const Gobuf, arg: usize) -> usize;

    /// First instruction of a prepared context: calls the entry function found in the base
    /// register (rbx / esi / x19 / r6 / s1) with the resume word (rax / eax / x0 / r0 / a0) as its
    /// argument, on the fresh stack. Never call from Rust: it is only ever jumped to through a
    /// prepared [`Gobuf`].
    pub(crate) fn splitstack_trampoline();

    /// First instruction of a coroutine, reached by the first resume's `co_switch`: enters the
    /// entry function (without a call) with the coroutine's Link and the first resume's word,
    /// and its CFI (EHABI opcodes on ARM) continues unwinding into the resumer, whose saved
    /// stack pointer is in the Link that a word at the initial stack pointer points to. Never
    /// call from Rust: only reached through the initial context that [`crate::coroutine`]
    /// writes.
    pub(crate) fn splitstack_coroutine_trampoline();

    /// The return address of every function `splitstack_morestack` calls: parks the return
    /// word (AX / X0 / R0 / a0) in `m.cret`, calls `splitstack_oldstack` (src/segment.rs), which
    /// takes it out and clears it, and resumes the caller of morestack with it through `gogo`.
    /// Custom convention: never call from Rust.
    #[allow(dead_code)] // reached only from assembly; declared here for its contract
    pub(crate) fn splitstack_lessstack();

    /// Make the valgrind client request whose words (the request code, then up to five
    /// arguments) are at `args`; returns valgrind's answer, or `default` outside valgrind.
    /// (asm/valgrind_*.S; the requests: src/valgrind.rs)
    ///
    /// On RISC-V it makes no request and always returns `default`: Debian 12's valgrind (3.19),
    /// the one the tests can run, has no RISC-V port, so a RISC-V request sequence could not be
    /// tested (asm/valgrind_riscv64_lp64d.S).
    ///
    /// # Safety
    /// `args` must be valid for reading six words, and the request must be one whose effect on
    /// valgrind's bookkeeping the caller intends (valgrind may act on any address it names).
    pub(crate) fn splitstack_valgrind_request(args: *const [usize; 6], default: usize) -> usize;
}

extern "C-unwind" {
    /// Switch to the segment below `stktop` and call `f(arg)` there (`arg` comes first, so that
    /// it is already in the first argument register) with
    /// `splitstack_lessstack` as its return address; returns `f`'s return word, which comes back
    /// through lessstack, `m.cret`, `splitstack_oldstack` and gogo. To its caller it is an
    /// ordinary C function that may unwind: sp, the frame pointer and the base register come back
    /// from the Stktop's Gobuf, the other callee-saved registers are preserved by `f` and by
    /// oldstack, and a panic in `f` unwinds through it (its CFI describes the caller's frame
    /// through the Gobuf). `stktop` is a `*mut Stktop`. Only [`morestack`] calls it.
    /// (asm/stack_*.S)
    ///
    /// # Safety
    /// See [`morestack`].
    fn splitstack_morestack(
        arg: usize,
        f: unsafe extern "C-unwind" fn(usize) -> usize,
        stktop: *mut core::ffi::c_void,
    ) -> usize;
}

/// Run `f(arg)` on the segment below `stktop` through `splitstack_morestack`; returns the word
/// `f` returned, which came back through `splitstack_lessstack`, `m.cret` and `oldstack`.
///
/// # Safety
/// `stktop` must be the 16-byte aligned [`Stktop`] at the top of a mapped segment that nothing
/// else uses, with every field but `gobuf` filled in. `f` may unwind: the panic continues from
/// this call, on the caller's stack, and the caller must then end the split itself (what
/// `oldstack` and the code after this call do on a return).
#[inline(always)]
pub(crate) unsafe fn morestack(
    arg: usize,
    f: unsafe extern "C-unwind" fn(usize) -> usize,
    stktop: *mut Stktop,
) -> usize {
    // SAFETY: the caller upholds the contract.
    unsafe { splitstack_morestack(arg, f, stktop.cast()) }
}

// memclr (asm/memclr_*.S)
extern "C" {
    /// Zero `[ptr, ptr + len)` with 32-byte AVX2 stores; from `nt_from` bytes up with
    /// non-temporal `vmovntdq` stores and an `sfence`. (asm/memclr_x86_64_sysv.S)
    ///
    /// # Safety
    /// `ptr..ptr + len` must be valid for writes, and the CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn splitstack_memclr_avx2(ptr: *mut u8, len: usize, nt_from: usize);

    /// Zero `[ptr, ptr + len)` with 64-byte AVX-512 stores; past 256 bytes the first threshold
    /// `len` reaches picks the bulk method: `clzero` from `clzero_from`, non-temporal
    /// `vmovntdq` from `nt_from` (both followed by an `sfence`), `rep stosb` from `stosb_from`,
    /// otherwise an aligned loop. `usize::MAX` turns a method off. (asm/memclr_x86_64_sysv.S)
    ///
    /// # Safety
    /// `ptr..ptr + len` must be valid for writes, the CPU must support AVX-512F, BW and VL
    /// (masked byte stores at the edges), and, unless
    /// `clzero_from` is `usize::MAX`, CLZERO (CPUID 8000_0008h EBX bit 0).
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn splitstack_memclr_avx512(
        ptr: *mut u8,
        len: usize,
        nt_from: usize,
        stosb_from: usize,
        clzero_from: usize,
    );

    /// Zero `[ptr, ptr + len)` with 16-byte SSE2 stores; `rep stosb` for
    /// `stosb_from <= len < nt_from`; non-temporal `movntdq` stores and an `sfence` from
    /// `nt_from` up. (asm/memclr_x86_64_sysv.S, asm/memclr_x86_sysv.S)
    ///
    /// # Safety
    /// `ptr..ptr + len` must be valid for writes, and the CPU must support SSE2 (the baseline of
    /// x86-64 and of Rust's i686 targets).
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    pub(crate) fn splitstack_memclr_sse2(
        ptr: *mut u8,
        len: usize,
        nt_from: usize,
        stosb_from: usize,
    );

    /// Zero `[ptr, ptr + len)`: `dc zva` for the whole blocks when `zva_block` is nonzero and the
    /// range is at least two blocks long, 64-byte `stp` stores otherwise.
    /// (asm/memclr_aarch64_aapcs.S)
    ///
    /// # Safety
    /// `ptr..ptr + len` must be valid for writes and be ordinary (Normal) memory. `zva_block`
    /// must be 0 or the block size DCZID_EL0 reports, and then only if its DZP bit is clear.
    #[cfg(target_arch = "aarch64")]
    pub(crate) fn splitstack_memclr_aarch64(ptr: *mut u8, len: usize, zva_block: usize);

    /// Zero `[ptr, ptr + len)`: 32-byte NEON `vst1` stores when `neon` is nonzero, 32-byte VFP
    /// `vstm` stores from a word-aligned address otherwise. (asm/memclr_arm_aapcs.S)
    ///
    /// # Safety
    /// `ptr..ptr + len` must be valid for writes, and `neon` must be 0 unless the CPU has NEON
    /// (AT_HWCAP's HWCAP_NEON).
    #[cfg(target_arch = "arm")]
    pub(crate) fn splitstack_memclr_arm(ptr: *mut u8, len: usize, neon: usize);

    /// Zero `[ptr, ptr + len)` with RVV 1.0 `vse8.v` stores, as many bytes per store as the
    /// vector unit takes (`vsetvli`, LMUL = 8). (asm/memclr_riscv64_lp64d.S)
    ///
    /// # Safety
    /// `ptr..ptr + len` must be valid for writes, and the CPU must have the V extension (AT_HWCAP
    /// reports it) with the kernel letting this thread use it.
    #[cfg(target_arch = "riscv64")]
    pub(crate) fn splitstack_memclr_rvv(ptr: *mut u8, len: usize);

    /// Zero `[ptr, ptr + len)` with aligned `sd` stores, 64 bytes per iteration, and byte stores
    /// at the unaligned edges; RV64GC only. (asm/memclr_riscv64_lp64d.S)
    ///
    /// # Safety
    /// `ptr..ptr + len` must be valid for writes.
    #[cfg(target_arch = "riscv64")]
    pub(crate) fn splitstack_memclr_riscv64(ptr: *mut u8, len: usize);
}
