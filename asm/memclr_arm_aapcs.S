/*
 * memclr_arm_aapcs.S: zero a byte range on 32-bit ARM, AAPCS with VFP (Linux ELF). The ARM twin
 * of memclr_x86_64_sysv.S (the fully commented reference) and memclr_aarch64_aapcs.S; same
 * order, differences commented. One entry point with two bulk paths, chosen by its third
 * argument, which Rust sets once per process from AT_HWCAP (src/memclr.rs):
 * - NEON (HWCAP_NEON): the shape of AArch64's `stp` path, 32 bytes per `vst1.8 {d0-d3}`:
 *   overlapping unaligned stores up to 128 bytes; past that an unaligned 64-byte head, a loop of
 *   32-byte aligned stores (`:256`), and the last 64 bytes stored unaligned from the end.
 * - VFP (every CPU of this target: the hard-float ABI requires VFP): two unaligned word stores
 *   for the head, a loop of 32-byte `vstmia {d0-d3}` stores from an 8-byte aligned address
 *   (VSTM needs word alignment), 8-byte `vstmia {d0}` stores up to the last 8 bytes, and two
 *   unaligned word stores for those.
 * Ranges under 32 bytes take overlapping core-register stores from both ends on either path.
 * Unaligned STR and STRH are allowed on ARMv7 as Linux runs it (SCTLR.A clear), as are
 * unaligned VST1 without an alignment qualifier; LDRD/STRD, LDM/STM and VLDM/VSTM are not,
 * which is why only those stores are aligned. There is no counterpart of `dc zva` or `rep
 * stosb`. Rust declaration: src/arch/mod.rs, the `memclr` block.
 *
 * No struct is touched: the routine writes zeros to [ptr, ptr + len) and nothing else.
 *
 *   long ranges with NEON (len > 128)
 *
 *   ptr         align_up(ptr + 33, 32)                                  end = ptr + len
 *    | vst1 head 64 |  vst1 [:256], vst1 [:256], ...  (aligned 32s)  |<- last 64 ->|
 *
 * The NEON instructions are assembled under `.fpu neon` at the end of the file only, so the rest
 * of the file, like the rest of the crate, is built for this target's VFPv3-D16, and they run only
 * on CPUs whose AT_HWCAP says NEON. The object's build attributes keep claiming no Advanced
 * SIMD for the same reason.
 *
 * The routine is a leaf with no frame and does not touch the stack. It uses d0-d3 (q0-q1), which
 * AAPCS makes caller-saved, and r1-r3, r12 instead of x86-64's rax/rcx.
 */
#include "asm.h"

/*
 * unsafe extern "C" fn splitstack_memclr_arm(ptr: *mut u8, len: usize, neon: usize)
 * Zero [ptr, ptr + len): overlapping stores up to 31 bytes; past that, the NEON path if neon is
 * nonzero, the VFP path otherwise (see the header).
 * In:       r0 = ptr, r1 = len, r2 = neon (0: VFP only; else the CPU has NEON)
 * Out:      nothing
 * Clobbers: r1-r3, r12, d0-d3, flags
 * Frame:    none (leaf)
 */
FUNC_BEGIN(memclr_arm)
    add   r12, r0, r1                    /* r12 = end; x86-64 addresses from ptr + len instead */
    mov   r3, #0                         /* r3 = 0: the zero word for core-register stores */
    cmp   r1, #32
    blo   .Lclr_under_32                 /* 0..31 bytes: scalar stores, as on x86-64 */
    cmp   r2, #0
    bne   .Lclr_neon                     /* NEON present: the vst1 path at the end of the file */

    /* VFP: 32 bytes and more, with VSTM's word alignment honoured. */
    vmov  d0, r3, r3                     /* d0-d3 = 0: vstmia {d0-d3} stores 32 bytes */
    vmov  d1, r3, r3
    vmov  d2, r3, r3
    vmov  d3, r3, r3
    str   r3, [r0]                       /* head: first 8 bytes, unaligned word stores */
    str   r3, [r0, #4]
    add   r2, r0, #8
    bic   r2, r2, #7                     /* r2 = first 8-aligned address the head did not cover */
    sub   r1, r12, #32                   /* r1 = start of the last 32 bytes */
.Lclr_vfp_loop_32:
    cmp   r2, r1
    bhs   .Lclr_vfp_tail                 /* fewer than 32 bytes left after r2 */
    vstmia r2!, {d0-d3}                  /* aligned 32 bytes */
    b     .Lclr_vfp_loop_32
.Lclr_vfp_tail:
    sub   r1, r12, #8                    /* r1 = start of the last 8 bytes */
.Lclr_vfp_loop_8:
    cmp   r2, r1
    bhs   .Lclr_vfp_last_8               /* what is left fits in the last 8 bytes */
    vstmia r2!, {d0}                     /* aligned 8 bytes */
    b     .Lclr_vfp_loop_8
.Lclr_vfp_last_8:
    str   r3, [r12, #-8]                 /* last 8 bytes, unaligned, from the end */
    str   r3, [r12, #-4]
    bx    lr

.Lclr_under_32:
    cmp   r1, #16
    blo   .Lclr_under_16
    str   r3, [r0]                       /* 16..31 bytes: first 16, last 16 (unaligned words; */
    str   r3, [r0, #4]                   /* no 16-byte core store, unlike AArch64's stp xzr) */
    str   r3, [r0, #8]
    str   r3, [r0, #12]
    str   r3, [r12, #-16]
    str   r3, [r12, #-12]
    str   r3, [r12, #-8]
    str   r3, [r12, #-4]
    bx    lr
.Lclr_under_16:
    cmp   r1, #8
    blo   .Lclr_under_8
    str   r3, [r0]                       /* 8..15 bytes: first 8, last 8 */
    str   r3, [r0, #4]
    str   r3, [r12, #-8]
    str   r3, [r12, #-4]
    bx    lr
.Lclr_under_8:
    cmp   r1, #4
    blo   .Lclr_under_4
    str   r3, [r0]                       /* 4..7 bytes: first 4, last 4 */
    str   r3, [r12, #-4]
    bx    lr
.Lclr_under_4:
    cmp   r1, #2
    blo   .Lclr_under_2
    strh  r3, [r0]                       /* 2..3 bytes: first 2, last 2 */
    strh  r3, [r12, #-2]
    bx    lr
.Lclr_under_2:
    cmp   r1, #0                         /* 0 bytes: nothing */
    strbne r3, [r0]                      /* 1 byte */
    bx    lr

    /* NEON, from here to the end of the file only (see the header). */
    .fpu  neon
.Lclr_neon:
    vmov.i8 q0, #0                       /* q0-q1 (d0-d3) = 0: vst1.8 {d0-d3} stores 32 bytes */
    vmov.i8 q1, #0
    cmp   r1, #64
    bhi   .Lclr_neon_over_64
    vst1.8 {d0-d3}, [r0]                 /* 32..64 bytes: first 32 */
    sub   r12, r12, #32
    vst1.8 {d0-d3}, [r12]                /* last 32, overlapping the first */
    bx    lr

.Lclr_neon_over_64:
    cmp   r1, #128
    bhi   .Lclr_neon_over_128
    vst1.8 {d0-d3}, [r0]!                /* 65..128 bytes: first 64 */
    vst1.8 {d0-d3}, [r0]
    sub   r12, r12, #64
    vst1.8 {d0-d3}, [r12]!               /* last 64, overlapping the first */
    vst1.8 {d0-d3}, [r12]
    bx    lr

.Lclr_neon_over_128:
    add   r2, r0, #64
    vst1.8 {d0-d3}, [r0]!                /* head: first 64 bytes, unaligned */
    vst1.8 {d0-d3}, [r0]
    bic   r2, r2, #31                    /* r2 = first 32-aligned address the head did not cover */
    sub   r1, r12, #64                   /* r1 = start of the last 64 bytes */
.Lclr_neon_loop_64:
    cmp   r2, r1
    bhs   .Lclr_neon_last_64             /* what is left fits in the last 64 bytes */
    vst1.8 {d0-d3}, [r2:256]!            /* aligned 64 bytes */
    vst1.8 {d0-d3}, [r2:256]!
    b     .Lclr_neon_loop_64
.Lclr_neon_last_64:
    vst1.8 {d0-d3}, [r1]!                /* last 64 bytes, unaligned, from the end */
    vst1.8 {d0-d3}, [r1]
    bx    lr
FUNC_END(memclr_arm)

    /* Back to the target's FPU, which is what the object's build attributes then record: the
     * NEON path runs only behind AT_HWCAP, so the object requires no Advanced SIMD. */
    .fpu  vfpv3-d16
