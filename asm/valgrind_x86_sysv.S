/*
 * valgrind_x86_sysv.S: valgrind's client request for 32-bit x86 System V (i386 Linux ELF), the one
 * instruction sequence through which a program asks valgrind something (valgrind.h documents it
 * per platform): the "special instruction preamble", four rotations of edi by 3, 13, 29 and 19
 * bits (64 in all, so edi is unchanged), then `xchg ebx, ebx`. On a real CPU the sequence is a
 * few no-op instructions and the default comes back; valgrind recognises it, performs the request
 * whose words eax points to, and puts its answer in edx. The i386 twin of
 * valgrind_x86_64_sysv.S. Rust declaration and the requests splitstack makes: src/arch/mod.rs,
 * `splitstack_valgrind_request`.
 *
 *   the request block (args)
 *   +---------+--------+--------+--------+--------+--------+
 *   | 0       | 4      | 8      | 12     | 16     | 20     |   offset
 *   | request | arg1   | arg2   | arg3   | arg4   | arg5   |   word
 *   +---------+--------+--------+--------+--------+--------+
 */
#include "asm.h"

/*
 * unsafe extern "C" fn splitstack_valgrind_request(args: *const [usize; 6], default: usize) -> usize
 * Make the client request in args; returns valgrind's answer, or default outside valgrind.
 * In:       [esp + 4] = args, [esp + 8] = default (cdecl)
 * Out:      eax = the answer
 * Clobbers: edx, flags (valgrind may read any memory the request names)
 * Frame:    none (leaf)
 */
FUNC_BEGIN(valgrind_request)
    mov  eax, [esp + 4]                  /* eax = the request block valgrind reads */
    mov  edx, [esp + 8]                  /* edx = the default answer */
    rol  edi, 3                          /* the preamble: edi rotated by 64 bits in all */
    rol  edi, 13
    rol  edi, 29
    rol  edi, 19
    xchg ebx, ebx                        /* the request: edx = valgrind's answer */
    mov  eax, edx                        /* return it */
    ret
FUNC_END(valgrind_request)
