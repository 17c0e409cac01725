/*
 * switch_aarch64_aapcs.S: context switching for AArch64 AAPCS64 (Linux ELF): gogo, gosave, swap
 * and the trampoline that starts a prepared context. The AArch64 twin of switch_x86_64_sysv.S
 * (the fully commented reference); same order, differences commented. Rust declarations:
 * src/arch/mod.rs.
 *
 * A context is sp and pc plus the two registers Rust's inline asm may not name as clobbered:
 * x29 (frame pointer) and x19 (LLVM's base pointer). The Rust call site declares x20-x28, v8-v15
 * and every caller-saved register clobbered, so the compiler saves only what is live.
 *
 *   Gobuf (asm/offsets.h)
 *   +--------+--------+--------+--------+
 *   | 0      | 8      | 16     | 24     |   offset
 *   | sp     | pc     | fp=x29 | base=x19|  field
 *   +--------+--------+--------+--------+
 *
 * A prepared context has sp = stack top (16-byte aligned), pc = splitstack_trampoline, fp = 0,
 * base = the entry function:
 *
 *   top  ->  +----------------------+  16-byte aligned, <- sp when the trampoline starts and at
 *            | entry's frame ...    |  entry's first instruction (bl does not touch sp)
 *   bottom-> +----------------------+
 *            | guard page (no access)|
 *
 * FPCR is not saved: all contexts of a thread share it (the x86-64 file says the same of MXCSR).
 * Resuming uses `ret xN`, not `br xN`: a return is not subject to BTI landing-pad checks.
 */
#include "asm.h"
#include "offsets.h"

/*
 * unsafe extern "C" fn splitstack_gogo(buf: *const Gobuf, ret: usize) -> !
 * Resume the context saved in buf; the resumed code finds ret in x0.
 * In:       x0 = buf, x1 = ret
 * Out:      never returns; at buf.pc: x0 = ret, sp/x29/x19 from buf
 * Clobbers: everything (the resumed context declared it so)
 * Frame:    none
 */
FUNC_BEGIN(gogo)
    ldp  x9, x10, [x0, #GOBUF_SP]        /* x9 = resumed sp, x10 = resumed pc */
    ldp  x29, x19, [x0, #GOBUF_FP]       /* restore: frame pointer, base register */
    mov  sp, x9                          /* restore: stack pointer (no ldp into sp on AArch64) */
    mov  x0, x1                          /* ret word for the resumed code */
    ret  x10                             /* resume; registers now: sp, x29, x19, x0 live */
FUNC_END(gogo)

/*
 * unsafe extern "C" fn splitstack_gosave(buf: *mut Gobuf) -> usize
 * Save the caller's context into buf and return 0; a later gogo(buf, ret) returns again, with ret.
 * In:       x0 = buf, x30 = return address
 * Out:      x0 = 0
 * Clobbers: x9
 * Frame:    none (leaf); unlike x86-64, the return address is in x30, not on the stack, so the
 *           caller's sp is sp itself
 */
FUNC_BEGIN(gosave)
    mov  x9, sp                          /* caller's sp */
    stp  x9, x30, [x0, #GOBUF_SP]        /* save: sp, pc (= x30, our return address) */
    stp  x29, x19, [x0, #GOBUF_FP]       /* save: frame pointer, base register */
    mov  x0, #0                          /* Go's contract: 0 when saving */
    ret
FUNC_END(gosave)

/*
 * unsafe extern "C" fn splitstack_swap(save: *mut Gobuf, resume: *const Gobuf, arg: usize) -> usize
 * Save the caller's context into save, then resume the one in resume, which finds arg in x0.
 * When something later resumes save, this call returns the word passed to that resume.
 * In:       x0 = save, x1 = resume, x2 = arg, x30 = return address
 * Out:      x0 = the word passed by whoever resumes save
 * Clobbers: everything but sp, x29, x19 (the Rust call site declares the rest clobbered)
 * Frame:    none (leaf; nothing to pop, unlike x86-64)
 */
FUNC_BEGIN(swap)
    mov  x9, sp                          /* caller's sp */
    stp  x9, x30, [x0, #GOBUF_SP]        /* save: sp, pc (= x30) */
    stp  x29, x19, [x0, #GOBUF_FP]       /* save: frame pointer, base register */
    ldp  x9, x10, [x1, #GOBUF_SP]        /* x9 = resumed sp, x10 = resumed pc */
    ldp  x29, x19, [x1, #GOBUF_FP]       /* restore: frame pointer, base register */
    mov  sp, x9                          /* restore: stack pointer */
    mov  x0, x2                          /* arg for the resumed code */
    ret  x10                             /* resume; registers now: sp, x29, x19, x0 live */
FUNC_END(swap)

/*
 * splitstack_trampoline: the first pc of a prepared context. Never call from Rust.
 * Calls entry(arg) on the fresh stack. entry must never return.
 * In:       sp = stack top (16-byte aligned), x19 = entry, x0 = arg (already the first
 *           argument register, so no move is needed, unlike x86-64), x29 = 0
 * Out:      never returns
 * Clobbers: n/a
 * Frame:    none; CFI marks x30 (the return address column) undefined, which ends unwinding here.
 */
FUNC_BEGIN(trampoline)
    .cfi_undefined x30                   /* outermost frame of this stack */
    blr  x19                             /* entry(arg) -> ! */
    brk  #0                              /* not reached: entry never returns */
FUNC_END(trampoline)

/*
 * splitstack_coroutine_trampoline: the first pc of a coroutine (src/coroutine.rs). Never call
 * from Rust. The twin of the x86-64 one, reached by the first resume's `br x16`
 * (arch::co_switch), which has stored the resumer's context, handed it over in x13 and loaded
 * the coroutine's initial one: x19 = entry, x29 = the Link, sp 32 bytes above the initial
 * context, at the word that points to Link.parent_sp. It stores the resumer's context there and
 * clears x29, which ends frame-pointer walks; CFI over sp
 * (DW_OP_breg31 = 0x8f) finds it: [0] its resume pc (x30's column), [8] x19, [16] x29, and its
 * stack pointer is parent_sp + 32.
 * In:       x13 = the resumer's context, x19 = entry, x29 = the Link,
 *           [sp] = &Link.parent_sp
 * Out:      never returns; entry(link) runs
 * Clobbers: n/a
 * Frame:    none (blr pushes nothing); sp stays at the Link-pointer slot
 */
FUNC_BEGIN(coroutine_trampoline)
    mov  x0, x29                         /* first argument: the Link */
    mov  x29, #0
    str  x13, [x0, #LINK_PARENT_SP]      /* the resumer's context */
    .cfi_escape 0x0f, 6, 0x8f, 0, 0x06, 0x06, 0x23, 32
    .cfi_escape 0x10, 30, 4, 0x8f, 0, 0x06, 0x06
    .cfi_escape 0x10, 19, 6, 0x8f, 0, 0x06, 0x06, 0x23, 8
    .cfi_escape 0x10, 29, 6, 0x8f, 0, 0x06, 0x06, 0x23, 16
    blr  x19                             /* entry(link) -> ! */
    brk  #0                              /* not reached: entry never returns */
FUNC_END(coroutine_trampoline)
