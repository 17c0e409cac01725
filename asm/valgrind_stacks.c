/*
 * valgrind_stacks.c: tells valgrind about every stack splitstack maps, so that memcheck and
 * callgrind treat a switch between them as a change of stack rather than a huge frame (no
 * "client switching stacks?" warnings), and tells memcheck when a stack's memory changes hands. Outside valgrind each request is a few no-op
 * instructions. Built without the header (SPLITSTACK_HAVE_VALGRIND_H unset), both functions do
 * nothing and return 0. Rust declarations: src/arch/mod.rs.
 */
#include <stddef.h>
#include <stdint.h>

#ifdef SPLITSTACK_HAVE_VALGRIND_H
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

/* Registers [lo, hi) as a stack; returns valgrind's id for it (0 outside valgrind). */
size_t splitstack_valgrind_stack_register(uintptr_t lo, uintptr_t hi) {
#ifdef SPLITSTACK_HAVE_VALGRIND_H
    return (size_t)VALGRIND_STACK_REGISTER(lo, hi);
#else
    (void)lo;
    (void)hi;
    return 0;
#endif
}

/* Forgets the stack with this id, before its memory is unmapped. */
void splitstack_valgrind_stack_deregister(size_t id) {
#ifdef SPLITSTACK_HAVE_VALGRIND_H
    VALGRIND_STACK_DEREGISTER(id);
#else
    (void)id;
#endif
}

/* Nonzero when running under valgrind. */
size_t splitstack_running_on_valgrind(void) {
#ifdef SPLITSTACK_HAVE_VALGRIND_H
    return (size_t)RUNNING_ON_VALGRIND;
#else
    return 0;
#endif
}

/* memcheck: [addr, addr + len) is accessible again but holds nothing defined (a stack being
 * recycled: memcheck marked the dead frames below the last stack pointer inaccessible). */
void splitstack_valgrind_make_mem_undefined(uintptr_t addr, size_t len) {
#ifdef SPLITSTACK_HAVE_VALGRIND_H
    (void)VALGRIND_MAKE_MEM_UNDEFINED(addr, len);
#else
    (void)addr;
    (void)len;
#endif
}

/* memcheck: [addr, addr + len) is accessible and defined (pages handed back to the OS with
 * MADV_DONTNEED, which read as zero). */
void splitstack_valgrind_make_mem_defined(uintptr_t addr, size_t len) {
#ifdef SPLITSTACK_HAVE_VALGRIND_H
    (void)VALGRIND_MAKE_MEM_DEFINED(addr, len);
#else
    (void)addr;
    (void)len;
#endif
}
