/*
 * asm.h: the boilerplate every splitstack .S file shares, written once.
 *
 * FUNC_BEGIN(name) / FUNC_END(name) open and close a global, hidden, aligned function symbol with
 * its ELF type and size and its CFI frame. ENTRY_LANDING is the first instruction of every
 * function: `endbr64` on x86-64 (a NOP without CET), `bti c` on AArch64 (a hint, a NOP without
 * BTI), nothing on i386, 32-bit ARM and RISC-V (see the property note). On 32-bit ARM,
 * FUNC_BEGIN and FUNC_END also open and close the function's EHABI unwind entry (`.fnstart` /
 * `.fnend`), which is what the unwinder reads there (see below). ALT_ENTRY(name) names a second
 * entry inside an open function that is reached only as a return address (lessstack), so it
 * needs no landing pad. Symbols carry the `splitstack_` prefix
 * through SYM(). Including this header emits the GNU-stack note that keeps the stack
 * non-executable and the GNU property note described at the end, and defines CFI_OPERAND, the
 * check that an offset fits the one byte a .cfi_escape writes for it.
 */
#ifndef SPLITSTACK_ASM_H
#define SPLITSTACK_ASM_H

#define SYM(name) splitstack_##name

#if defined(__x86_64__)
/* Intel syntax everywhere, as in the Rust asm! blocks that call these functions. */
    .intel_syntax noprefix
#define ENTRY_LANDING endbr64
#define FUNC_ALIGN 4
#elif defined(__i386__)
/* Intel syntax, as on x86-64. No landing pad: Linux enforces IBT on no 32-bit process, and this
 * header declares no feature for i386 (see the property note below). */
    .intel_syntax noprefix
#define ENTRY_LANDING
#define FUNC_ALIGN 4
#elif defined(__aarch64__)
#define ENTRY_LANDING hint #34 /* bti c */
#define FUNC_ALIGN 2
#elif defined(__riscv) && __riscv_xlen == 64
#define ENTRY_LANDING /* none: no Zicfilp `lpad` (see the property note) */
#define FUNC_ALIGN 2
#elif defined(__arm__)
/* ARM (A32) state, unified syntax, whatever the C compiler's default mode (Debian's armhf gcc
 * defaults to Thumb-2): the .S files are written for A32 and reach Rust code, and are reached
 * from it, only through `bx`/`blx`/`bl`, which interwork. No landing pad: ARMv7 has none. */
    .syntax unified
    .arm
#define ENTRY_LANDING
#define FUNC_ALIGN 2
/* The runtime unwinder on arm-linux-gnueabihf (libgcc_s's, which Rust's std links) reads only
 * the EHABI tables (.ARM.exidx / .ARM.extab), never DWARF CFI; each function's EHABI entry is
 * opened and closed with its CFI. The DWARF CFI goes to .debug_frame, for debuggers. */
    .cfi_sections .debug_frame
#define EHABI_FNSTART .fnstart
#define EHABI_FNEND .fnend
/* FP: the frame pointer of the Rust code that the switches save and restore (the register
 * Rust's inline asm cannot name): r11 in A32 code, this target's default; r7 when the crate is
 * built for Thumb-2 (a thumbv7 target or `-C target-feature=+thumb-mode`: the build script then
 * defines SPLITSTACK_THUMB_MODE). FP_DWARF is its DWARF number, FP_EHABI_MASK its bit in the low
 * byte of an EHABI "pop r4-r15 under mask" (r4 = bit 0). */
#if defined(SPLITSTACK_THUMB_MODE)
#define FP r7
#define FP_DWARF 7
#define FP_EHABI_MASK 0x08
#else
#define FP r11
#define FP_DWARF 11
#define FP_EHABI_MASK 0x80
#endif
#else
#error "splitstack: asm.h supports x86-64, i386, AArch64, 32-bit ARM and RISC-V 64 only"
#endif

#ifndef EHABI_FNSTART
#define EHABI_FNSTART
#define EHABI_FNEND
#endif

/* Opens a function: global, hidden (never exported from a cdylib), typed, aligned, CFI open. */
#define FUNC_BEGIN(name)                  \
    .text;                                \
    .globl SYM(name);                     \
    .hidden SYM(name);                    \
    .type SYM(name), %function;           \
    .p2align FUNC_ALIGN;                  \
    SYM(name):                            \
    EHABI_FNSTART;                        \
    .cfi_startproc;                       \
    ENTRY_LANDING

/* Closes a function opened by FUNC_BEGIN: CFI closed, ELF size recorded. */
#define FUNC_END(name)                    \
    .cfi_endproc;                         \
    EHABI_FNEND;                          \
    .size SYM(name), . - SYM(name)

/* A second global, hidden entry inside the open function, covered by its CFI. Only ever a
 * return address (returns are not subject to IBT or BTI), so it has no landing pad. */
#define ALT_ENTRY(name)                   \
    .globl SYM(name);                     \
    .hidden SYM(name);                    \
    .type SYM(name), %function;           \
    SYM(name):

/* CFI_OPERAND value: fails the assembly unless value fits one byte as a DWARF SLEB128 operand
 * (0..63), the form every .cfi_escape in these files writes an offset in. The offsets come from
 * offsets.h, generated from src/layout.rs, so a layout that outgrows the encoding stops here. */
    .macro CFI_OPERAND value
    .if (\value) < 0 || (\value) > 63
    .error "splitstack: an offset in a .cfi_escape does not fit one SLEB128 byte"
    .endif
    .endm

/* COROUTINE_CFI(breg_sp, ra, base, fp): the CFI of a coroutine trampoline (switch_*.S), which
 * continues unwinding and backtraces into the coroutine's resumer. The stack pointer points to
 * the Link, whose parent_sp (LINK_PARENT_SP bytes in) holds the resumer's context: a CoContext
 * (offsets.h). Each rule is a DWARF expression over the stack pointer: breg_sp LINK_PARENT_SP
 * (DW_OP_breg<sp>: 0x77 on x86-64, 0x8f on AArch64, 0x7d on ARM, 0x72 on RISC-V), DW_OP_deref
 * (0x06) to load parent_sp, then DW_OP_plus_uconst (0x23) an offset:
 *   DW_CFA_def_cfa_expression (0x0f), 5 bytes, + CO_CONTEXT_SIZE: the CFA is the resumer's
 *   stack pointer before its switch stored the context;
 *   DW_CFA_expression (0x10), 5 bytes each: the return-address column (ra) at + CO_CONTEXT_PC,
 *   the base register (base) at + CO_CONTEXT_BASE, the frame pointer (fp) at + CO_CONTEXT_FP.
 * ra, base and fp are DWARF register numbers, each one byte (below 128).
 * COROUTINE_CFI_AT(breg_sp, slot, ra, base, fp) is the same with the Link at `slot` bytes above
 * the stack pointer (i386, whose entry takes its arguments below it); slot + LINK_PARENT_SP is
 * one SLEB128 byte. */
#define COROUTINE_CFI(breg_sp, ra, base, fp) COROUTINE_CFI_AT(breg_sp, 0, ra, base, fp)
#define COROUTINE_CFI_AT(breg_sp, slot, ra, base, fp)                                 \
    CFI_OPERAND (slot + LINK_PARENT_SP);                                              \
    CFI_OPERAND CO_CONTEXT_SIZE;                                                      \
    CFI_OPERAND CO_CONTEXT_PC;                                                        \
    CFI_OPERAND CO_CONTEXT_BASE;                                                      \
    CFI_OPERAND CO_CONTEXT_FP;                                                        \
    .cfi_escape 0x0f, 5, breg_sp, (slot + LINK_PARENT_SP), 0x06, 0x23, CO_CONTEXT_SIZE; \
    .cfi_escape 0x10, ra, 5, breg_sp, (slot + LINK_PARENT_SP), 0x06, 0x23, CO_CONTEXT_PC; \
    .cfi_escape 0x10, base, 5, breg_sp, (slot + LINK_PARENT_SP), 0x06, 0x23, CO_CONTEXT_BASE; \
    .cfi_escape 0x10, fp, 5, breg_sp, (slot + LINK_PARENT_SP), 0x06, 0x23, CO_CONTEXT_FP

/* Every object file says its stack need not be executable. */
    .section .note.GNU-stack, "", %progbits

/*
 * The GNU property note (NT_GNU_PROPERTY_TYPE_0) that declares the indirect-branch landing pads,
 * so that a program whose every object declares them can run with the CPU checking them: the
 * linker keeps a feature only if every input object has it.
 * - x86-64: GNU_PROPERTY_X86_FEATURE_1_AND (0xc0000002) with IBT (bit 0). Every function starts
 *   with `endbr64`, so every indirect call or jump to a function lands on a pad. A resume (gogo,
 *   swap, a coroutine switch, lessstack's return) goes back to a continuation that was saved
 *   like a return address, so, like `ret`, which IBT does not check, it is a `notrack` jump;
 *   compilers emit their jump tables the same way, so a system that enforces IBT honours
 *   `notrack`. SHSTK (bit 1) is not claimed and must not be: the switches move between stacks
 *   without switching shadow stacks, and a coroutine switch's `call` is never matched by a
 *   `ret`, so a shadow stack would fault at the first return after a switch.
 * - AArch64: GNU_PROPERTY_AARCH64_FEATURE_1_AND (0xc0000000) with BTI (bit 0). Every function
 *   starts with `bti c`; every `br` goes through x16 to a `bti c`, `bti j` or `bti jc`; resumes
 *   are `ret`s, which BTI does not check. PAC (bit 1) is not claimed: return addresses are
 *   saved and resumed across stacks without signing.
 * - i386: no note. Linux enforces neither IBT nor a shadow stack on 32-bit processes, so there is
 *   nothing to declare, and an object without the note keeps the linker from claiming either.
 * - 32-bit ARM: no note. ARMv7 has no landing pads and the ABI defines no feature property.
 * - RISC-V: no note. GNU_PROPERTY_RISCV_FEATURE_1_AND would claim Zicfilp landing pads (bit 0)
 *   or a Zicfiss shadow stack (bit 1), and this code has neither: it has no `lpad`, and its
 *   switches move between stacks without switching shadow stacks, as on x86-64. A note that
 *   claims no feature says nothing, so none is emitted.
 * Layout: namesz 4, descsz 16, type 5, "GNU\0", then one property: type, datasz 4, the feature
 * bits, padded to 8 bytes.
 */
#if defined(__x86_64__) || defined(__aarch64__)
    .section .note.gnu.property, "a"
    .p2align 3
    .long 4
    .long 16
    .long 5
    .asciz "GNU"
#if defined(__x86_64__)
    .long 0xc0000002
#else
    .long 0xc0000000
#endif
    .long 4
    .long 1
    .long 0
    .text
#endif

#endif /* SPLITSTACK_ASM_H */
