/*
 * valgrind_aarch64_aapcs.S: valgrind's client request for AArch64 AAPCS64 (Linux ELF). The twin
 * of valgrind_x86_64_sysv.S (the commented reference, with the request block's table): the
 * preamble rotates x12 by 3, 13, 51 and 61 bits (128 in all), the request is `orr x10, x10, x10`,
 * with the block's address in x4 and the default, then the answer, in x3.
 */
#include "asm.h"

/*
 * unsafe extern "C" fn splitstack_valgrind_request(args: *const [usize; 6], default: usize) -> usize
 * Make the client request in args; returns valgrind's answer, or default outside valgrind.
 * In:       x0 = args, x1 = default
 * Out:      x0 = the answer
 * Clobbers: x3, x4, flags (valgrind may read any memory the request names)
 * Frame:    none (leaf)
 */
FUNC_BEGIN(valgrind_request)
    mov  x4, x0                          /* x4 = the request block valgrind reads */
    mov  x3, x1                          /* x3 = the default answer */
    ror  x12, x12, #3                    /* the preamble: x12 rotated by 128 bits in all */
    ror  x12, x12, #13
    ror  x12, x12, #51
    ror  x12, x12, #61
    orr  x10, x10, x10                   /* the request: x3 = valgrind's answer */
    mov  x0, x3                          /* return it */
    ret
FUNC_END(valgrind_request)
