/*
 * valgrind_x86_64_sysv.S: valgrind's client request for x86-64 System V (Linux ELF), the one
 * instruction sequence through which a program asks valgrind something (valgrind.h documents it
 * per platform): the "special instruction preamble", four rotations of rdi by 3, 13, 61 and 51
 * bits (128 in all, so rdi is unchanged), then `xchg rbx, rbx`. On a real CPU the sequence is a
 * few no-op instructions and the default comes back; valgrind recognises it, performs the request
 * whose words rax points to, and puts its answer in rdx. Rust declaration and the requests
 * splitstack makes: src/arch/mod.rs, `splitstack_valgrind_request`.
 *
 *   the request block (args)
 *   +---------+--------+--------+--------+--------+--------+
 *   | 0       | 8      | 16     | 24     | 32     | 40     |   offset
 *   | request | arg1   | arg2   | arg3   | arg4   | arg5   |   word
 *   +---------+--------+--------+--------+--------+--------+
 */
#include "asm.h"

/*
 * unsafe extern "C" fn splitstack_valgrind_request(args: *const [usize; 6], default: usize) -> usize
 * Make the client request in args; returns valgrind's answer, or default outside valgrind.
 * In:       rdi = args, rsi = default
 * Out:      rax = the answer
 * Clobbers: rdx, flags (valgrind may read any memory the request names)
 * Frame:    none (leaf)
 */
FUNC_BEGIN(valgrind_request)
    mov  rax, rdi                        /* rax = the request block valgrind reads */
    mov  rdx, rsi                        /* rdx = the default answer */
    rol  rdi, 3                          /* the preamble: rdi rotated by 128 bits in all */
    rol  rdi, 13
    rol  rdi, 61
    rol  rdi, 51
    xchg rbx, rbx                        /* the request: rdx = valgrind's answer */
    mov  rax, rdx                        /* return it */
    ret
FUNC_END(valgrind_request)
