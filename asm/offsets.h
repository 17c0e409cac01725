/*
 * offsets.h: the one place that gives the byte offsets of every struct the assembly touches.
 * The Rust side asserts each of these at compile time next to its #[repr(C)] struct
 * (src/context.rs, src/machine.rs, src/segment.rs), so a layout change that forgets this file does
 * not build. All fields are one machine word (8 bytes) on both supported targets.
 */
#ifndef SPLITSTACK_OFFSETS_H
#define SPLITSTACK_OFFSETS_H

/* Gobuf: a saved context (src/context.rs). */
#define GOBUF_SP   0   /* stack pointer to resume with */
#define GOBUF_PC   8   /* instruction to resume at */
#define GOBUF_FP   16  /* frame pointer: rbp / x29 */
#define GOBUF_BASE 24  /* LLVM's base-pointer register, which asm! may not clobber: rbx / x19 */
#define GOBUF_SIZE 32

/* Link: the head of a coroutine's shared record (src/coroutine.rs): the resumer's context, its
 * stack pointer while the coroutine runs (at it: the resume pc, then rbx and rbp on x86-64, x19,
 * x29 and a pad word on AArch64). */
#define LINK_PARENT_SP 0

/* Stktop: the record at the top of every stack segment (src/segment.rs). */
#define STKTOP_GOBUF    0   /* Gobuf of the frame that called morestack: where lessstack returns */
#define STKTOP_M        32  /* *mut M of the thread that owns the segment */
#define STKTOP_SIZE     128

/* M: the per-thread machine state (src/machine.rs). */
#define M_CRET 0            /* lessstack parks the return register here; oldstack clears it */

#endif /* SPLITSTACK_OFFSETS_H */
