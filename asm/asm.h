/*
 * asm.h: the boilerplate every splitstack .S file shares, written once.
 *
 * FUNC_BEGIN(name) / FUNC_END(name) open and close a global, hidden, aligned function symbol with
 * its ELF type and size and its CFI frame. ENTRY_LANDING is the first instruction of every
 * function: `endbr64` on x86-64 (a NOP without CET), `bti c` on AArch64 (a hint, a NOP without
 * BTI). Symbols carry the `splitstack_` prefix through SYM(). The GNU-stack note that keeps the
 * stack non-executable is emitted by including this header.
 */
#ifndef SPLITSTACK_ASM_H
#define SPLITSTACK_ASM_H

#define SYM(name) splitstack_##name

#if defined(__x86_64__)
/* Intel syntax everywhere, as in the Rust asm! blocks that call these functions. */
    .intel_syntax noprefix
#define ENTRY_LANDING endbr64
#define FUNC_ALIGN 4
#elif defined(__aarch64__)
#define ENTRY_LANDING hint #34 /* bti c */
#define FUNC_ALIGN 2
#else
#error "splitstack: asm.h supports x86-64 and AArch64 only"
#endif

/* Opens a function: global, hidden (never exported from a cdylib), typed, aligned, CFI open. */
#define FUNC_BEGIN(name)                  \
    .text;                                \
    .globl SYM(name);                     \
    .hidden SYM(name);                    \
    .type SYM(name), %function;           \
    .p2align FUNC_ALIGN;                  \
    SYM(name):                            \
    .cfi_startproc;                       \
    ENTRY_LANDING

/* Closes a function opened by FUNC_BEGIN: CFI closed, ELF size recorded. */
#define FUNC_END(name)                    \
    .cfi_endproc;                         \
    .size SYM(name), . - SYM(name)

/* A local code label inside a function that is the target of an indirect jump. */
#define LOCAL_LABEL(name) .L##name

/* Every object file says its stack need not be executable. */
    .section .note.GNU-stack, "", %progbits
    .text

#endif /* SPLITSTACK_ASM_H */
