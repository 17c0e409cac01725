/*
 * stack_x86_64_sysv.S: segmented stacks for x86-64 System V (Linux ELF): morestack switches to a
 * new segment and calls a function there with lessstack as its return address; lessstack parks
 * the function's return word (rax) in m.cret and calls oldstack (Rust, src/segment.rs), which
 * takes it out and clears m.cret, and resumes the caller of morestack with it through gogo.
 * Go 1.0's design; Rust declarations and the calling site: src/arch/mod.rs.
 *
 *   Stktop (asm/offsets.h; the rest of its fields in src/segment.rs), at the top of every segment
 *   +--------+--------+--------+--------+--------+------------+-----------------+-----------------+
 *   | 0      | 8      | 16     | 24     | 32     | 40         | 48              | 64 ... 127      |
 *   | gobuf.sp gobuf.pc gobuf.fp gobuf.base | m    | seg. size  | old bounds      | own bounds, ... |
 *   +--------+--------+--------+--------+--------+------------+-----------------+-----------------+
 *   M (asm/offsets.h): | 0: cret | ...
 *
 *   the new segment while fn runs
 *   top      -> +-----------------------+
 *               | Stktop (128 bytes)    |  filled by the Rust caller, gobuf by morestack
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
 * splitstack_morestack: custom convention. Never call from Rust: only `morestack` in
 * src/arch/mod.rs calls it, declared `extern "C-unwind"`. To that caller it is a C function that
 * may unwind: rsp, rbp and rbx come back from stktop->gobuf; r12-r15 are preserved by fn and by
 * oldstack, both C functions, and nothing here touches them. Saves the caller's context in
 * stktop->gobuf, switches to the segment below stktop and calls fn(arg) there with lessstack as
 * its return address. Comes back, through lessstack, oldstack and gogo, with fn's return word.
 * A panic in fn unwinds through here to the caller: the CFI after the switch describes the
 * caller's frame through stktop->gobuf.
 * In:       rdi = arg (already fn's first argument), rsi = fn: extern "C-unwind"
 *           fn(usize) -> usize, rdx = stktop (16-byte aligned; all fields but gobuf filled);
 *           [rsp] = return address
 * Out:      rax = fn's return word (through m.cret)
 * Clobbers: what the C convention lets a callee clobber
 * Frame:    the caller's context in stktop->gobuf; fn's frame below stktop on the new segment
 */
FUNC_BEGIN(morestack)
    pop  rcx                             /* rcx = caller's pc; rsp = caller's sp */
    .cfi_adjust_cfa_offset -8
    .cfi_register rip, rcx
    mov  [rdx + STKTOP_GOBUF + GOBUF_SP], rsp     /* save: caller's sp */
    mov  [rdx + STKTOP_GOBUF + GOBUF_PC], rcx     /* save: caller's pc */
    mov  rsp, rdx                        /* switch: sp = stktop, on the new segment */
    /* Only sp and pc are saved: every other callee-saved register (rbx, rbp, r12-r15) still
     * holds the caller's value, fn preserves it (C convention), and so does oldstack; so does
     * the unwinder, which restores them frame by frame up to here. gobuf.fp and gobuf.base stay
     * unused in a Stktop.
     * Registers now: rsp = stktop, rdi = arg, rsi = fn.
     * From here the caller's frame is described by stktop->gobuf, which sits at rsp:
     *   DW_CFA_def_cfa_expression (0x0f), 3 bytes: DW_OP_breg7 (0x77) rsp + GOBUF_SP, DW_OP_deref
     *     (0x06): the CFA is the caller's saved sp;
     *   DW_CFA_expression (0x10) for register 16 (rip), 2 bytes: DW_OP_breg7 rsp + GOBUF_PC: the
     *     return address is stored at [rsp + 8].
     * Every offset is below 64, so each SLEB128 operand is the one byte written. */
    .cfi_escape 0x0f, 3, 0x77, STKTOP_GOBUF + GOBUF_SP, 0x06
    .cfi_escape 0x10, 16, 2, 0x77, STKTOP_GOBUF + GOBUF_PC
    call rsi                             /* fn(arg); pushes lessstack, the next instruction */

/*
 * splitstack_lessstack: custom convention. Never call from Rust: it is only ever the return
 * address of a function that morestack called. Parks the return word in m.cret (Go's lessstack),
 * calls oldstack, which clears m.cret and hands back the word, and resumes morestack's caller
 * with it: Go's oldstack ended in gogo(&old.gobuf, cret); here that gogo is inline and loads
 * only sp and pc, since every other callee-saved register already holds the caller's value.
 * In:       rsp = stktop (the pushed return address has been popped), rax = fn's return word;
 *           rbx, rbp, r12-r15 as the caller of morestack left them (fn preserved them)
 * Out:      never returns; morestack's caller resumes with rax = the word
 * Clobbers: n/a
 * Frame:    oldstack's, below stktop; CFI as above (still inside morestack's FDE)
 */
    .globl SYM(lessstack)
    .hidden SYM(lessstack)
SYM(lessstack):
    mov  rcx, [rsp + STKTOP_M]           /* rcx = this thread's M */
    mov  [rcx + M_CRET], rax             /* park: m.cret = return word */
    mov  rdi, rsp                        /* first argument: stktop */
    call SYM(oldstack)                   /* rax = the word, m.cret = 0; rsp 16-byte aligned */
    mov  rcx, [rsp + STKTOP_GOBUF + GOBUF_PC]     /* gogo: the caller's pc */
    mov  rsp, [rsp + STKTOP_GOBUF + GOBUF_SP]     /* back on the old stack */
    jmp  rcx                             /* resume after morestack's call, rax = the word */
FUNC_END(morestack)
