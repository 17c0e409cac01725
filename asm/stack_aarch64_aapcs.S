/*
 * stack_aarch64_aapcs.S: segmented stacks for AArch64 AAPCS64 (Linux ELF): morestack and
 * lessstack. The AArch64 twin of stack_x86_64_sysv.S (the fully commented reference, with the
 * Stktop table); same order, differences commented. The return word travels in x0 (Go's R0 on
 * arm) instead of rax.
 *
 *   the new segment while fn runs
 *   top      -> +-----------------------+
 *               | Stktop (80 bytes)     |  filled by the Rust caller, gobuf by morestack
 *   stktop   -> +-----------------------+  16-byte aligned, <- sp at fn's first instruction
 *               | fn's frames ...       |  (blr puts the return address, lessstack, in x30;
 *   bottom   -> +-----------------------+   nothing is pushed, unlike x86-64)
 *               | guard page            |
 */
#include "asm.h"
#include "offsets.h"

/* DWARF register numbers (AArch64 DWARF ABI): x19 19, x29 29, x30 (return address) 30, sp 31. */

/*
 * splitstack_morestack: custom convention. Never call from Rust: only the asm! call site in
 * src/arch/aarch64.rs (morestack) calls it, declaring every register but sp, x29, x19 clobbered.
 * In:       x0 = stktop (16-byte aligned; all fields but gobuf filled), x1 = fn:
 *           extern "C" fn(usize) -> usize, x2 = arg, x30 = return address
 * Out:      x0 = fn's return word (through m.cret)
 * Clobbers: everything but sp, x29, x19
 * Frame:    the caller's context in stktop->gobuf; fn's frame below stktop on the new segment
 */
FUNC_BEGIN(morestack)
    mov  x9, sp                          /* caller's sp */
    stp  x9, x30, [x0, #STKTOP_GOBUF + GOBUF_SP]   /* save: caller's sp, pc (= x30) */
    stp  x29, x19, [x0, #STKTOP_GOBUF + GOBUF_FP]  /* save: caller's frame pointer, base reg */
    mov  sp, x0                          /* switch: sp = stktop, on the new segment */
    /* Registers now: sp = stktop, x1 = fn, x2 = arg; x29, x19 still the caller's.
     * CFI as on x86-64, with DW_OP_breg31 (0x8f, sp) as the base and x30 (30) as the return
     * address column: CFA = [sp + GOBUF_SP]; x30 at [sp + GOBUF_PC]; x29 at [sp + GOBUF_FP];
     * x19 at [sp + GOBUF_BASE]. */
    .cfi_escape 0x0f, 3, 0x8f, STKTOP_GOBUF + GOBUF_SP, 0x06
    .cfi_escape 0x10, 30, 2, 0x8f, STKTOP_GOBUF + GOBUF_PC
    .cfi_escape 0x10, 29, 2, 0x8f, STKTOP_GOBUF + GOBUF_FP
    .cfi_escape 0x10, 19, 2, 0x8f, STKTOP_GOBUF + GOBUF_BASE
    mov  x16, x1                         /* x16: an indirect-branch register BTI's `bti c` admits */
    mov  x0, x2                          /* first argument: arg */
    blr  x16                             /* fn(arg); x30 = lessstack, the next instruction */

/*
 * splitstack_lessstack: custom convention. Never call from Rust: only ever the return address of
 * a function that morestack called.
 * In:       sp = stktop, x0 = fn's return word
 * Out:      never returns
 * Clobbers: n/a
 * Frame:    oldstack's, below stktop; CFI as above
 */
    .globl SYM(lessstack)
    .hidden SYM(lessstack)
SYM(lessstack):
    ldr  x9, [sp, #STKTOP_M]             /* x9 = this thread's M */
    str  x0, [x9, #M_CRET]               /* park: m.cret = return word */
    mov  x0, sp                          /* first argument: stktop */
    bl   SYM(oldstack)                   /* -> ! */
    brk  #0                              /* not reached: oldstack resumes the old segment */
FUNC_END(morestack)
