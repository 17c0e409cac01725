/*
 * memclr_riscv64_lp64d.S: zero a byte range on RISC-V 64 LP64D (Linux ELF). The RISC-V twin of
 * memclr_x86_64_sysv.S (the fully commented reference) and memclr_aarch64_aapcs.S, with two
 * entry points where those have one routine per instruction set, chosen once per process in
 * Rust (src/memclr.rs) from AT_HWCAP:
 *
 * - splitstack_memclr_rvv, for CPUs whose AT_HWCAP reports V (RVV 1.0): a strip-mined loop of
 *   `vse8.v` over a register group of eight (LMUL = 8) zeroed once. Each `vsetvli` asks for what
 *   is left and the hardware answers how many bytes this store takes (at most 8 * VLEN / 8), so
 *   the loop runs at whatever vector length the CPU has (VLEN from 128 bits up to the 65,536 the
 *   specification allows), with no head or
 *   tail code: byte-element stores need no alignment, and the last `vsetvli` covers the rest
 *   exactly. The vector instructions are enabled for this routine only (`.option arch, +v`), so
 *   the rest of the crate is built for RV64GC and runs on CPUs without V.
 * - splitstack_memclr_riscv64, for every RV64GC CPU: byte stores up to 8-byte alignment,
 *   64-byte runs of `sd zero` (eight aligned doublewords), then `sd` and byte stores for the
 *   rest. Unlike x86-64 and AArch64 it never stores unaligned: the ISA lets a misaligned access
 *   trap into the kernel, which emulates it hundreds of times slower, and the overlapping
 *   unaligned stores the other routines use at the edges are not worth that risk.
 *
 * There is no counterpart of `dc zva` or `clzero` (Zicboz's `cbo.zero`, which zeroes a cache
 * block without reading it): the qemu-user these routines are tested under (7.2) has neither
 * Zicboz nor the `riscv_hwprobe` call that reports the block size, so such a path could not be
 * tested. Nor of non-temporal stores: RV64GC and RVV 1.0 have none (Zihintntl's locality hints
 * are an extension of their own, not assumed here).
 *
 * No struct is touched: the routines write zeros to [ptr, ptr + len) and nothing else.
 *
 *   scalar routine, len >= 16
 *
 *   ptr      align_up(ptr, 8)                      align_down(end, 8)        end = ptr + len
 *    | sb head |  sd x 8, sd x 8, ... | sd, sd  |  sb tail  |
 *
 * Both are leaves with no frame and do not touch the stack. They use t0-t2 and, the vector
 * routine, v0-v7, vl and vtype, all caller-saved in the psABI.
 */
#include "asm.h"

/*
 * unsafe extern "C" fn splitstack_memclr_rvv(ptr: *mut u8, len: usize)
 * Zero [ptr, ptr + len) with `vse8.v` stores of as many bytes as the vector unit takes at once.
 * In:       a0 = ptr, a1 = len
 * Out:      nothing
 * Clobbers: a0, a1, t0, v0-v7, vl, vtype
 * Frame:    none (leaf)
 */
FUNC_BEGIN(memclr_rvv)
    .option push
    .option arch, +v                     /* V for this routine only */
    beqz     a1, .Lrvv_done              /* 0 bytes: touch nothing (not even vtype) */
    vsetvli  t0, zero, e8, m8, ta, ma    /* vl = VLMAX: bytes of the group v0-v7 */
    vmv.v.i  v0, 0                       /* v0-v7 = 0, every element the stores can take */
.Lrvv_loop:
    vsetvli  t0, a1, e8, m8, ta, ma      /* t0 = vl: bytes this store takes (0 < vl <= a1) */
    vse8.v   v0, (a0)                    /* zero [a0, a0 + vl): no alignment needed */
    add      a0, a0, t0                  /* advance */
    sub      a1, a1, t0                  /* bytes left */
    bnez     a1, .Lrvv_loop
.Lrvv_done:
    ret
    .option pop
FUNC_END(memclr_rvv)

/*
 * unsafe extern "C" fn splitstack_memclr_riscv64(ptr: *mut u8, len: usize)
 * Zero [ptr, ptr + len) with aligned `sd` stores (64 bytes per iteration) and byte stores at the
 * unaligned edges; ranges under 16 bytes byte by byte.
 * In:       a0 = ptr, a1 = len
 * Out:      nothing
 * Clobbers: a0, t0-t2
 * Frame:    none (leaf)
 */
FUNC_BEGIN(memclr_riscv64)
    add   t0, a0, a1                     /* t0 = end */
    li    t1, 16
    bltu  a1, t1, .Lclr_bytes            /* 0..15 bytes: byte stores only */
    andi  t1, a0, 7
    beqz  t1, .Lclr_aligned              /* ptr is 8-byte aligned: no head */
.Lclr_head:
    sb    zero, 0(a0)                    /* head: one byte (at most 7 in all) */
    addi  a0, a0, 1
    andi  t1, a0, 7
    bnez  t1, .Lclr_head
.Lclr_aligned:
    andi  t1, t0, -8                     /* t1 = align_down(end, 8): end of the doublewords */
    sub   t1, t1, a0                     /* t1 = aligned bytes left, a multiple of 8 (>= 8) */
    li    t2, 64
    bltu  t1, t2, .Lclr_loop_8           /* under 64 aligned bytes: doublewords only */
.Lclr_loop_64:
    sd    zero, 0(a0)                    /* 64 aligned bytes */
    sd    zero, 8(a0)
    sd    zero, 16(a0)
    sd    zero, 24(a0)
    sd    zero, 32(a0)
    sd    zero, 40(a0)
    sd    zero, 48(a0)
    sd    zero, 56(a0)
    addi  a0, a0, 64
    addi  t1, t1, -64
    bgeu  t1, t2, .Lclr_loop_64          /* another whole 64 bytes left */
    beqz  t1, .Lclr_bytes                /* no doubleword left: the byte tail */
.Lclr_loop_8:
    sd    zero, 0(a0)                    /* one aligned doubleword */
    addi  a0, a0, 8
    addi  t1, t1, -8
    bnez  t1, .Lclr_loop_8
.Lclr_bytes:
    beq   a0, t0, .Lclr_done             /* nothing (more) to clear */
.Lclr_loop_1:
    sb    zero, 0(a0)                    /* tail, or a short range: one byte */
    addi  a0, a0, 1
    bne   a0, t0, .Lclr_loop_1
.Lclr_done:
    ret
FUNC_END(memclr_riscv64)
