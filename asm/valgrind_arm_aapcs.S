/*
 * valgrind_arm_aapcs.S: valgrind's client request for 32-bit ARM, AAPCS with VFP (Linux ELF).
 * The twin of valgrind_x86_64_sysv.S (the commented reference, with the request block's table,
 * here of 4-byte words): the preamble rotates r12 by 3, 13, 29 and 19 bits (64 in all, so r12
 * is unchanged), the request is `orr r10, r10, r10`, with the block's address in r4 and the
 * default, then the answer, in r3. valgrind decodes the A32 encoding of the sequence, which
 * asm.h's `.arm` gives. r4 is callee-saved, so it is saved around the request, unlike x4 on
 * AArch64.
 */
#include "asm.h"

/*
 * unsafe extern "C" fn splitstack_valgrind_request(args: *const [usize; 6], default: usize) -> usize
 * Make the client request in args; returns valgrind's answer, or default outside valgrind.
 * In:       r0 = args, r1 = default
 * Out:      r0 = the answer
 * Clobbers: r3, flags (valgrind may read any memory the request names)
 * Frame:    8 bytes (r4 and lr, keeping sp 8-byte aligned); EHABI `.save` and CFI describe them
 */
FUNC_BEGIN(valgrind_request)
    push {r4, lr}                        /* save: r4 (callee-saved), lr (pair keeps alignment) */
    .save {r4, lr}
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r4, 0
    .cfi_rel_offset lr, 4
    mov  r4, r0                          /* r4 = the request block valgrind reads */
    mov  r3, r1                          /* r3 = the default answer */
    mov  r12, r12, ror #3                /* the preamble: r12 rotated by 64 bits in all */
    mov  r12, r12, ror #13
    mov  r12, r12, ror #29
    mov  r12, r12, ror #19
    orr  r10, r10, r10                   /* the request: r3 = valgrind's answer */
    mov  r0, r3                          /* return it */
    pop  {r4, pc}                        /* restore: r4; return (pc = saved lr, interworking) */
FUNC_END(valgrind_request)
