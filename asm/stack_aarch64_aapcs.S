/*
 * stack_aarch64_aapcs.S: segmented stacks for AArch64 AAPCS64 (Linux ELF): morestack and
 * lessstack. The AArch64 twin of stack_x86_64_sysv.S (the fully commented reference, with the
 * Stktop table); same order, differences commented. The return word travels in x0 (Go's R0 on
 * arm) instead of rax.
 *
 *   the new segment while fn runs
 *   top      -> +-----------------------+
 *               | Stktop (128 bytes)    |  filled by the Rust caller, gobuf by morestack
 *   stktop   -> +-----------------------+  16-byte aligned, <- sp at fn's first instruction
 *               | fn's frames ...       |  (blr puts the return address, lessstack, in x30;
 *   bottom   -> +-----------------------+   nothing is pushed, unlike x86-64)
 *               | guard page            |
 */
#include "asm.h"
#include "offsets.h"

/* DWARF register numbers (AArch64 DWARF ABI): x19 19, x29 29, x30 (return address) 30, sp 31. */

/*
 * splitstack_morestack: custom convention. Never call from Rust: only `morestack` in
 * src/arch/mod.rs calls it, declared `extern "C-unwind"`. To that caller it is a C function that
 * may unwind: sp, x29, x19 and the return address come back from stktop->gobuf; x20-x28 and
 * d8-d15 are preserved by fn and by oldstack, both C functions, and nothing here touches them.
 * In:       x0 = arg (already fn's first argument), x1 = fn: extern "C-unwind"
 *           fn(usize) -> usize, x2 = stktop (16-byte aligned; all fields but gobuf filled),
 *           x30 = return address
 * Out:      x0 = fn's return word (through m.cret)
 * Clobbers: what the C convention lets a callee clobber
 * Frame:    the caller's context in stktop->gobuf; fn's frame below stktop on the new segment
 */
FUNC_BEGIN(morestack)
    mov  x9, sp                          /* caller's sp */
    stp  x9, x30, [x2, #STKTOP_GOBUF + GOBUF_SP]   /* save: caller's sp, pc (= x30) */
    mov  sp, x2                          /* switch: sp = stktop, on the new segment */
    /* Only sp and pc are saved, as on x86-64: x19-x29 and d8-d15 keep the caller's values
     * through fn and oldstack. Registers now: sp = stktop, x0 = arg, x1 = fn.
     * CFI as on x86-64, with DW_OP_breg31 (0x8f, sp) as the base and x30 (30) as the return
     * address column: CFA = [sp + GOBUF_SP]; x30 at [sp + GOBUF_PC]. */
    .cfi_escape 0x0f, 3, 0x8f, STKTOP_GOBUF + GOBUF_SP, 0x06
    .cfi_escape 0x10, 30, 2, 0x8f, STKTOP_GOBUF + GOBUF_PC
    mov  x16, x1                         /* x16: an indirect-branch register BTI's `bti c` admits */
    blr  x16                             /* fn(arg); x30 = lessstack, the next instruction */

/*
 * splitstack_lessstack: custom convention. Never call from Rust: only ever the return address of
 * a function that morestack called. Parks x0 in m.cret, calls oldstack, which clears m.cret and
 * hands back the word, and resumes morestack's caller with it: gogo inline, loading only sp and
 * pc, as on x86-64.
 * In:       sp = stktop, x0 = fn's return word; x19-x29 as the caller of morestack left them
 * Out:      never returns; morestack's caller resumes with x0 = the word
 * Clobbers: n/a
 * Frame:    oldstack's, below stktop; CFI as above
 */
    .globl SYM(lessstack)
    .hidden SYM(lessstack)
SYM(lessstack):
    ldr  x9, [sp, #STKTOP_M]             /* x9 = this thread's M */
    str  x0, [x9, #M_CRET]               /* park: m.cret = return word */
    mov  x0, sp                          /* first argument: stktop */
    bl   SYM(oldstack)                   /* x0 = the word, m.cret = 0 */
    ldp  x9, x10, [sp, #STKTOP_GOBUF + GOBUF_SP]   /* gogo: the caller's sp and pc */
    mov  sp, x9                          /* back on the old stack */
    ret  x10                             /* resume after morestack's call, x0 = the word */
FUNC_END(morestack)
