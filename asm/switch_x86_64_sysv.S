/*
 * switch_x86_64_sysv.S: context switching for x86-64 System V (Linux ELF): gogo, gosave, swap and
 * the trampoline that starts a prepared context. Rust declarations: src/arch/mod.rs.
 *
 * The model is Go 1.0's Gobuf: a context is a stack pointer and a program counter, plus the two
 * registers that Rust's inline asm may not name as clobbered (rbp, the frame pointer, and rbx,
 * LLVM's base pointer). Every other register is declared clobbered at the Rust call site (an asm!
 * block with clobber_abi("C") and r12-r15), so the compiler saves only what is live across the
 * switch instead of this file saving all six callee-saved registers every time.
 *
 *   Gobuf (asm/offsets.h)
 *   +--------+--------+--------+--------+
 *   | 0      | 8      | 16     | 24     |   offset
 *   | sp     | pc     | fp=rbp | base=rbx|  field
 *   +--------+--------+--------+--------+
 *
 * A prepared context (splitstack_prepare in Rust) has sp = stack top (16-byte aligned),
 * pc = splitstack_trampoline, fp = 0, base = the entry function:
 *
 *   top  ->  +----------------------+  16-byte aligned, <- sp when the trampoline starts
 *            | return address into  |  pushed by the trampoline's `call`; entry sees
 *            | the trampoline       |  rsp = top - 8, as the ABI requires at a call
 *            +----------------------+
 *            | entry's frame ...    |
 *   bottom-> +----------------------+
 *            | guard page (no access)|
 *
 * MXCSR and the x87 control word are not saved: all contexts of a thread share them (as in
 * corosensei). See the crate docs for the measurement behind that choice.
 */
#include "asm.h"
#include "offsets.h"

/*
 * unsafe extern "C" fn splitstack_gogo(buf: *const Gobuf, ret: usize) -> !
 * Resume the context saved in buf; the resumed code finds ret in rax.
 * In:       rdi = buf, rsi = ret
 * Out:      never returns; at buf.pc: rax = ret, rsp/rbp/rbx from buf
 * Clobbers: everything (the resumed context declared it so)
 * Frame:    none
 */
FUNC_BEGIN(gogo)
    mov  rsp, [rdi + GOBUF_SP]           /* restore: resumed stack pointer */
    mov  rbp, [rdi + GOBUF_FP]           /* restore: resumed frame pointer */
    mov  rbx, [rdi + GOBUF_BASE]         /* restore: resumed base register */
    mov  rax, rsi                        /* ret word for the resumed code */
    jmp  qword ptr [rdi + GOBUF_PC]      /* resume; registers now: rsp, rbp, rbx, rax live */
FUNC_END(gogo)

/*
 * unsafe extern "C" fn splitstack_gosave(buf: *mut Gobuf) -> usize
 * Save the caller's context into buf and return 0; a later gogo(buf, ret) returns again, with ret.
 * In:       rdi = buf; [rsp] = return address
 * Out:      rax = 0
 * Clobbers: rcx
 * Frame:    none (leaf)
 */
FUNC_BEGIN(gosave)
    mov  rcx, [rsp]                      /* caller's pc: our return address */
    mov  [rdi + GOBUF_PC], rcx           /* save: pc */
    lea  rcx, [rsp + 8]                  /* caller's sp once we have returned */
    mov  [rdi + GOBUF_SP], rcx           /* save: sp */
    mov  [rdi + GOBUF_FP], rbp           /* save: frame pointer */
    mov  [rdi + GOBUF_BASE], rbx         /* save: base register */
    xor  eax, eax                        /* Go's contract: 0 when saving */
    ret
FUNC_END(gosave)

/*
 * unsafe extern "C" fn splitstack_swap(save: *mut Gobuf, resume: *const Gobuf, arg: usize) -> usize
 * Save the caller's context into save, then resume the one in resume, which finds arg in rax.
 * When something later resumes save, this call returns the word passed to that resume.
 * In:       rdi = save, rsi = resume, rdx = arg; [rsp] = return address
 * Out:      rax = the word passed by whoever resumes save
 * Clobbers: everything but rsp, rbp, rbx (the Rust call site declares the rest clobbered)
 * Frame:    none: the return address is popped into save.pc, so save.sp is the caller's sp
 */
FUNC_BEGIN(swap)
    pop  rcx                             /* rcx = caller's pc; rsp = caller's sp */
    .cfi_adjust_cfa_offset -8
    .cfi_register rip, rcx
    mov  [rdi + GOBUF_SP], rsp           /* save: sp */
    mov  [rdi + GOBUF_PC], rcx           /* save: pc */
    mov  [rdi + GOBUF_FP], rbp           /* save: frame pointer */
    mov  [rdi + GOBUF_BASE], rbx         /* save: base register */
    mov  rsp, [rsi + GOBUF_SP]           /* restore: resumed stack pointer */
    mov  rbp, [rsi + GOBUF_FP]           /* restore: resumed frame pointer */
    mov  rbx, [rsi + GOBUF_BASE]         /* restore: resumed base register */
    mov  rax, rdx                        /* arg for the resumed code */
    jmp  qword ptr [rsi + GOBUF_PC]      /* resume; registers now: rsp, rbp, rbx, rax live */
FUNC_END(swap)

/*
 * splitstack_trampoline: the first pc of a prepared context. Never call from Rust.
 * Calls entry(arg) on the fresh stack. entry must never return.
 * In:       rsp = stack top (16-byte aligned), rbx = entry, rax = arg (from swap/gogo), rbp = 0
 * Out:      never returns
 * Clobbers: n/a
 * Frame:    the return address pushed by `call` only; CFI marks rip undefined, which ends
 *           unwinding and backtraces here.
 */
FUNC_BEGIN(trampoline)
    .cfi_undefined rip                   /* outermost frame of this stack */
    mov  rdi, rax                        /* first argument: arg */
    call rbx                             /* entry(arg) -> !; rsp = top - 8 at its first insn */
    ud2                                  /* not reached: entry never returns */
FUNC_END(trampoline)

/*
 * splitstack_coroutine_trampoline: the first pc of a coroutine (src/coroutine.rs). Never call
 * from Rust. The first resume's `call [rdx]` (arch::co_switch) lands here, on the resumer's
 * stack, so it first does what a landing would: switch to the coroutine's initial context, pop
 * rbx (the entry function) and the Link (from the frame pointer's slot), store the resumer's
 * context (its stack pointer) in the Link and clear rbp, which ends frame-pointer walks. Its
 * CFI continues unwinding and backtraces into the resumer, whose context sits in the Link that
 * a word at the coroutine's initial stack pointer points to.
 * In:       rsp = the resumer's, [rsp] = its resume pc; rdx = the initial context
 * Out:      never returns; entry(link) runs
 * Clobbers: n/a
 * Frame:    the return address pushed by `call` only; rsp stays at the Link-pointer slot
 *
 *   +----------------------+  stack top
 *   | coroutine record,    |
 *   | closure              |
 *   +----------------------+
 *   | &Link.parent_sp      |  16-byte aligned; rsp after the pops
 *   +----------------------+
 *   | the Link (rbp)       |
 *   | entry (rbx)          |
 *   | this trampoline (pc) |  <- the initial context (rdx)
 *   +----------------------+
 *   | entry's frames ...   |  (from the return address `call rbx` pushes over the context)
 *
 * The resumer's context, at Link.parent_sp: [0] its resume pc, [8] rbx, [16] rbp, and its stack
 * pointer before the switch pushed them is parent_sp + 24. The Link is rewritten by each resume
 * (the coroutine stores the context its landing hands out), so backtraces always reach the
 * current resumer.
 * CFI, each a DWARF expression over rsp (DW_OP_breg7 0 = 0x77 0x00), then DW_OP_deref (0x06)
 * twice to load parent_sp, DW_OP_plus_uconst (0x23) an offset:
 *   DW_CFA_def_cfa_expression (0x0f), 6 bytes: ... + 24: the CFA is the resumer's stack pointer;
 *   DW_CFA_expression (0x10) for rip (16), 4 bytes: its resume pc is at parent_sp; for rbx (3),
 *   6 bytes, at + 8; for rbp (6), 6 bytes, at + 16.
 */
FUNC_BEGIN(coroutine_trampoline)
    mov  rax, rsp                        /* the resumer's context */
    lea  rsp, [rdx + 8]                  /* past our pc */
    pop  rbx                             /* entry */
    pop  rdi                             /* the Link: entry's argument */
    mov  [rdi + LINK_PARENT_SP], rax
    xor  ebp, ebp
    .cfi_escape 0x0f, 6, 0x77, 0, 0x06, 0x06, 0x23, 24
    .cfi_escape 0x10, 16, 4, 0x77, 0, 0x06, 0x06
    .cfi_escape 0x10, 3, 6, 0x77, 0, 0x06, 0x06, 0x23, 8
    .cfi_escape 0x10, 6, 6, 0x77, 0, 0x06, 0x06, 0x23, 16
    call rbx                             /* entry(link) -> ! */
    ud2                                  /* not reached: entry never returns */
FUNC_END(coroutine_trampoline)
