/*
 * stack_x86_64_sysv.S: segmented stacks for x86-64 System V (Linux ELF): morestack switches to a
 * new segment and calls a function there with lessstack as its return address; lessstack parks
 * the function's return word (rax) in m.cret and hands over to oldstack (Rust, src/segment.rs),
 * which clears m.cret and resumes the caller of morestack with gogo. Go 1.0's design; Rust
 * declarations and the calling site: src/arch/mod.rs, src/arch/x86_64.rs.
 *
 *   Stktop (asm/offsets.h), at the top of every segment
 *   +--------+--------+--------+--------+--------+--------+--------+--------+--------+--------+
 *   | 0      | 8      | 16     | 24     | 32     | 40     | 48     | 56     | 64     | 72     |
 *   | gobuf.sp gobuf.pc gobuf.fp gobuf.base | m    | old_limit old_base | seg. size | free | pad |
 *   +--------+--------+--------+--------+--------+--------+--------+--------+--------+--------+
 *   M (asm/offsets.h): | 0: cret | ...
 *
 *   the new segment while fn runs
 *   top      -> +-----------------------+
 *               | Stktop (80 bytes)     |  filled by the Rust caller, gobuf by morestack
 *   stktop   -> +-----------------------+  16-byte aligned
 *               | return address:       |  pushed by `call fn`: lessstack
 *               |   lessstack           |
 *               +-----------------------+  <- sp at fn's first instruction (stktop - 8)
 *               | fn's frames ...       |
 *   bottom   -> +-----------------------+
 *               | guard page            |
 *
 * Unwinding and backtraces cross from the segment to the frame that called morestack: after the
 * switch, the CFI of morestack says the caller's frame is the one saved in the Stktop at rsp.
 */
#include "asm.h"
#include "offsets.h"

/* DWARF register numbers (x86-64 psABI): rbx 3, rbp 6, rsp 7, return address (rip) 16. */

/*
 * splitstack_morestack: custom convention. Never call from Rust: only the asm! call site in
 * src/arch/x86_64.rs (morestack) calls it, declaring every register but rsp, rbp, rbx clobbered.
 * Saves the caller's context in stktop->gobuf, switches to the segment below stktop and calls
 * fn(arg) there with lessstack as its return address. Comes back, through lessstack, oldstack and
 * gogo, with fn's return word.
 * In:       rdi = stktop (16-byte aligned; all fields but gobuf filled), rsi = fn:
 *           extern "C" fn(usize) -> usize, rdx = arg; [rsp] = return address
 * Out:      rax = fn's return word (through m.cret)
 * Clobbers: everything but rsp, rbp, rbx
 * Frame:    the caller's context in stktop->gobuf; fn's frame below stktop on the new segment
 */
FUNC_BEGIN(morestack)
    pop  rcx                             /* rcx = caller's pc; rsp = caller's sp */
    .cfi_adjust_cfa_offset -8
    .cfi_register rip, rcx
    mov  [rdi + STKTOP_GOBUF + GOBUF_SP], rsp     /* save: caller's sp */
    mov  [rdi + STKTOP_GOBUF + GOBUF_PC], rcx     /* save: caller's pc */
    mov  [rdi + STKTOP_GOBUF + GOBUF_FP], rbp     /* save: caller's frame pointer */
    mov  [rdi + STKTOP_GOBUF + GOBUF_BASE], rbx   /* save: caller's base register */
    mov  rsp, rdi                        /* switch: sp = stktop, on the new segment */
    /* Registers now: rsp = stktop, rsi = fn, rdx = arg; rbp, rbx still the caller's.
     * From here the caller's frame is described by stktop->gobuf, which sits at rsp:
     *   DW_CFA_def_cfa_expression (0x0f), 3 bytes: DW_OP_breg7 (0x77) rsp + GOBUF_SP, DW_OP_deref
     *     (0x06): the CFA is the caller's saved sp;
     *   DW_CFA_expression (0x10) for register 16 (rip), 2 bytes: DW_OP_breg7 rsp + GOBUF_PC: the
     *     return address is stored at [rsp + 8];
     *   the same for rbp (6) at [rsp + GOBUF_FP] and rbx (3) at [rsp + GOBUF_BASE].
     * Every offset is below 64, so each SLEB128 operand is the one byte written. */
    .cfi_escape 0x0f, 3, 0x77, STKTOP_GOBUF + GOBUF_SP, 0x06
    .cfi_escape 0x10, 16, 2, 0x77, STKTOP_GOBUF + GOBUF_PC
    .cfi_escape 0x10, 6, 2, 0x77, STKTOP_GOBUF + GOBUF_FP
    .cfi_escape 0x10, 3, 2, 0x77, STKTOP_GOBUF + GOBUF_BASE
    mov  rdi, rdx                        /* first argument: arg */
    call rsi                             /* fn(arg); pushes lessstack, the next instruction */

/*
 * splitstack_lessstack: custom convention. Never call from Rust: it is only ever the return
 * address of a function that morestack called. Parks the return word in m.cret (Go's lessstack)
 * and calls oldstack, which pops the segment, clears m.cret and resumes morestack's caller.
 * In:       rsp = stktop (the pushed return address has been popped), rax = fn's return word
 * Out:      never returns
 * Clobbers: n/a
 * Frame:    oldstack's, below stktop; CFI as above (still inside morestack's FDE)
 */
    .globl SYM(lessstack)
    .hidden SYM(lessstack)
SYM(lessstack):
    mov  rcx, [rsp + STKTOP_M]           /* rcx = this thread's M */
    mov  [rcx + M_CRET], rax             /* park: m.cret = return word */
    mov  rdi, rsp                        /* first argument: stktop */
    call SYM(oldstack)                   /* -> !; rsp is 16-byte aligned before the call */
    ud2                                  /* not reached: oldstack resumes the old segment */
FUNC_END(morestack)
