/*
 * valgrind_riscv64_lp64d.S: valgrind's client request for RISC-V 64 LP64D (Linux ELF). The twin
 * of valgrind_x86_64_sysv.S (the commented reference, with the request block's table) in
 * contract only: it makes no request and answers the default, as every routine does outside
 * valgrind. Debian 12's valgrind (3.19), the one these tests can run, has no RISC-V port, so a
 * RISC-V request sequence could be neither run nor checked here, and an untested magic sequence
 * would be worse than none: the requests (src/valgrind.rs) only annotate stacks for memcheck,
 * and a program that is never run under valgrind never needs them.
 */
#include "asm.h"

/*
 * unsafe extern "C" fn splitstack_valgrind_request(args: *const [usize; 6], default: usize) -> usize
 * The client request in args, unmade: returns default, valgrind's answer outside valgrind.
 * In:       a0 = args (not read), a1 = default
 * Out:      a0 = default
 * Clobbers: nothing else
 * Frame:    none (leaf)
 */
FUNC_BEGIN(valgrind_request)
    mv   a0, a1                          /* the default answer */
    ret
FUNC_END(valgrind_request)
