/*
 * memclr_aarch64_aapcs.S: zero a byte range on AArch64 AAPCS64 (Linux ELF). The AArch64 twin of
 * memclr_x86_64_sysv.S (the fully commented reference); same order, differences commented. One
 * entry point, in the shape of the x86-64 AVX2 and SSE2 routines (unaligned head, aligned loop,
 * last bytes stored unaligned from the end); there is no counterpart of the AVX-512 routine's
 * masked edge stores. Short ranges use overlapping unaligned stores from both ends, as on
 * x86-64. The bulk of a long range uses `dc zva`, which zeroes one whole block per instruction
 * without reading it (the counterpart of AMD's `clzero`): it skips the read for ownership that
 * ordinary stores make, in cache too, so it is used at every size of at least two blocks, with
 * no threshold like x86-64's for non-temporal stores. It behaves as stores of zeros to the
 * block, ordered like other stores, so it needs no barrier after it. The block size comes from
 * DCZID_EL0, read once per process in Rust (src/memclr.rs) and passed in; it is not assumed to
 * be 64 bytes (QEMU's `max` CPU reports 512, cortex-a72 64, a64fx 256). When DCZID_EL0.DZP says
 * `dc zva` is prohibited, or the block is outside 64..2048 bytes, Rust passes 0 and the bulk is
 * a 64-byte `stp` loop instead. There is no `rep stosb` counterpart. Rust declarations:
 * src/arch/mod.rs, the `memclr` block.
 *
 * No struct is touched: the routine writes zeros to [ptr, ptr + len) and nothing else.
 *
 *   long ranges with dc zva (len >= 2 * block)
 *
 *   ptr        align_up(ptr, block)            align_down(end, block)        end = ptr + len
 *    | stp head  |  dc zva, dc zva, ...  (whole blocks) |  stp tail  |<- last 64 ->|
 *
 * The routine is a leaf with no frame and does not touch the stack. It uses v0 (q0), which
 * AAPCS64 makes caller-saved, and x9-x13 instead of x86-64's rax/rcx.
 */
#include "asm.h"

/*
 * unsafe extern "C" fn splitstack_memclr_aarch64(ptr: *mut u8, len: usize, zva_block: usize)
 * Zero [ptr, ptr + len): overlapping stores up to 128 bytes; past that, an unaligned 64-byte
 * head, then `dc zva` for the whole blocks of a range of at least 2 * zva_block bytes (with
 * aligned 64-byte `stp` stores up to the first block and after the last), a 64-byte `stp` loop
 * otherwise, and the last 64 bytes stored unaligned from the end.
 * In:       x0 = ptr, x1 = len, x2 = zva_block (0: no dc zva; else a power of two in 64..2048)
 * Out:      nothing
 * Clobbers: x9-x13, v0, flags
 * Frame:    none (leaf)
 */
FUNC_BEGIN(memclr_aarch64)
    add   x9, x0, x1                     /* x9 = end; x86-64 addresses from ptr + len instead */
    cmp   x1, #32
    b.lo  .Lclr_under_32                 /* 0..31 bytes: scalar stores, as on x86-64 */
    movi  v0.16b, #0                     /* q0 = 0: 16 bytes; stp q0, q0 stores 32 */
    cmp   x1, #64
    b.hi  .Lclr_over_64
    stp   q0, q0, [x0]                   /* 32..64 bytes: first 32 */
    stp   q0, q0, [x9, #-32]             /* last 32, overlapping the first */
    ret

.Lclr_over_64:
    cmp   x1, #128
    b.hi  .Lclr_over_128
    stp   q0, q0, [x0]                   /* 65..128 bytes: first 64 */
    stp   q0, q0, [x0, #32]
    stp   q0, q0, [x9, #-64]             /* last 64, overlapping the first */
    stp   q0, q0, [x9, #-32]
    ret

.Lclr_over_128:
    stp   q0, q0, [x0]                   /* head: first 64 bytes, unaligned */
    stp   q0, q0, [x0, #32]
    add   x10, x0, #64
    and   x10, x10, #-64                 /* x10 = first 64-aligned address the head did not cover */
    sub   x11, x9, #64                   /* x11 = start of the last 64 bytes */
    cbz   x2, .Lclr_loop_64              /* dc zva unusable: stp all the way (x86-64's cached path) */
    cmp   x1, x2, lsl #1
    b.lo  .Lclr_loop_64                  /* shorter than two blocks: stp all the way */
    sub   x12, x2, #1                    /* x12 = block mask */
    add   x13, x0, x12
    bic   x13, x13, x12                  /* x13 = align_up(ptr, block): first whole block */
.Lclr_zva_head_64:
    cmp   x10, x13
    b.hs  .Lclr_zva_blocks               /* the head reaches the first whole block */
    stp   q0, q0, [x10]                  /* aligned 64 bytes of the partial first block */
    stp   q0, q0, [x10, #32]
    add   x10, x10, #64
    b     .Lclr_zva_head_64
.Lclr_zva_blocks:
    bic   x10, x9, x12                   /* x10 = align_down(end, block): end of the whole blocks */
.Lclr_zva_loop:
    dc    zva, x13                       /* zero one block (len >= 2 * block: at least one) */
    add   x13, x13, x2
    cmp   x13, x10
    b.lo  .Lclr_zva_loop
    /* x10 = first byte after the blocks, 64-aligned (the block is); stp the tail from there. */
.Lclr_loop_64:
    cmp   x10, x11
    b.hs  .Lclr_last_64                  /* what is left fits in the last 64 bytes */
    stp   q0, q0, [x10]                  /* aligned 64 bytes */
    stp   q0, q0, [x10, #32]
    add   x10, x10, #64
    b     .Lclr_loop_64
.Lclr_last_64:
    stp   q0, q0, [x11]                  /* last 64 bytes, unaligned, from the end */
    stp   q0, q0, [x11, #32]
    ret                                  /* no barrier: dc zva is ordered like a store */

.Lclr_under_32:
    cmp   x1, #16
    b.lo  .Lclr_under_16
    stp   xzr, xzr, [x0]                 /* 16..31 bytes: first 16, last 16 (xzr: no zero register */
    stp   xzr, xzr, [x9, #-16]           /* to set up, unlike x86-64's rax) */
    ret
.Lclr_under_16:
    cmp   x1, #8
    b.lo  .Lclr_under_8
    str   xzr, [x0]                      /* 8..15 bytes: first 8, last 8 */
    str   xzr, [x9, #-8]
    ret
.Lclr_under_8:
    cmp   x1, #4
    b.lo  .Lclr_under_4
    str   wzr, [x0]                      /* 4..7 bytes: first 4, last 4 */
    str   wzr, [x9, #-4]
    ret
.Lclr_under_4:
    cmp   x1, #2
    b.lo  .Lclr_under_2
    strh  wzr, [x0]                      /* 2..3 bytes: first 2, last 2 */
    strh  wzr, [x9, #-2]
    ret
.Lclr_under_2:
    cbz   x1, .Lclr_done                 /* 0 bytes */
    strb  wzr, [x0]                      /* 1 byte */
.Lclr_done:
    ret
FUNC_END(memclr_aarch64)
