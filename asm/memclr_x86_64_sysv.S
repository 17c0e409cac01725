/*
 * memclr_x86_64_sysv.S: zero a byte range on x86-64 System V (Linux ELF), in the manner of Go's
 * memclr_amd64.s: overlapping unaligned stores for short ranges, an aligned vector loop for
 * ranges that stay in cache, non-temporal stores (or AMD's `clzero`) for ranges larger than the
 * last-level cache, and `rep stosb` where the CPU's ERMS/FSRM microcode beats the 16-byte loop.
 * Three entry points, one per vector width (AVX-512, AVX2, SSE2), chosen once per process in
 * Rust (src/memclr.rs) from the CPU's features; the thresholds are arguments, so the numbers
 * behind them live in one place, next to the measurements, in Rust.
 * Rust declarations: src/arch/mod.rs, the `memclr` block.
 *
 * No struct is touched: every routine writes zeros to [ptr, ptr + len) and nothing else.
 *
 *   short ranges: two overlapping stores, one from each end
 *
 *   ptr                                      ptr + len
 *    |<-- store 1 -->|                           |
 *    |                           |<-- store 2 -->|
 *
 *   long ranges: one unaligned head store, an aligned loop, then the last 128 bytes stored
 *   unaligned from the end (overlapping the loop's last iteration, never past ptr + len)
 *
 *    | head |   aligned 128-byte blocks ...   |<-- last 128 -->|
 *
 * Every routine is a leaf with no frame; none touches the stack. The AVX2 and SSE2 routines use
 * ymm0/xmm0 only, and the AVX2 routine ends every path that wrote a ymm register with
 * `vzeroupper`, so that SSE code after it pays no transition penalty. The AVX-512 routine uses
 * zmm16/ymm16 only: registers 16-31 exist only under EVEX encoding, are outside the upper state
 * that SSE/AVX transitions track, and so need no `vzeroupper` (glibc's EVEX string functions do
 * the same); the AVX-512 long-range picture is the one above with 64-byte stores and 256 bytes.
 */
#include "asm.h"

/*
 * unsafe extern "C" fn splitstack_memclr_avx2(ptr: *mut u8, len: usize, nt_from: usize)
 * Zero [ptr, ptr + len) with 32-byte AVX2 stores; from nt_from bytes up, with non-temporal
 * `vmovntdq` stores that bypass the cache, followed by `sfence`.
 * In:       rdi = ptr, rsi = len, rdx = nt_from (any value; below 256 counts as 256)
 * Out:      nothing
 * Clobbers: rax, rcx, ymm0, flags
 * Frame:    none (leaf)
 */
FUNC_BEGIN(memclr_avx2)
    xor   eax, eax                       /* rax = 0: the zero the scalar stores write */
    cmp   rsi, 32
    jb    .Lclr_avx2_under_32            /* 0..31 bytes: scalar stores, no vector state touched */
    vpxor xmm0, xmm0, xmm0               /* ymm0 = 0 (a VEX.128 op also zeroes bits 255:128) */
    cmp   rsi, 64
    ja    .Lclr_avx2_over_64
    vmovdqu [rdi], ymm0                  /* 32..64 bytes: first 32 */
    vmovdqu [rdi + rsi - 32], ymm0       /* last 32, overlapping the first */
    vzeroupper
    ret

.Lclr_avx2_over_64:
    cmp   rsi, 128
    ja    .Lclr_avx2_over_128
    vmovdqu [rdi], ymm0                  /* 65..128 bytes: first 64 */
    vmovdqu [rdi + 32], ymm0
    vmovdqu [rdi + rsi - 64], ymm0       /* last 64, overlapping the first */
    vmovdqu [rdi + rsi - 32], ymm0
    vzeroupper
    ret

.Lclr_avx2_over_128:
    cmp   rsi, rdx
    jae   .Lclr_avx2_nt_check            /* past the cache: non-temporal stores */
.Lclr_avx2_cached:
    lea   rcx, [rdi + rsi - 128]         /* rcx = start of the last 128 bytes */
    vmovdqu [rdi], ymm0                  /* head: first 32 bytes, unaligned */
    add   rdi, 32
    and   rdi, -32                       /* rdi = first 32-aligned address the head did not cover */
    cmp   rdi, rcx
    jae   .Lclr_avx2_last_128            /* what is left fits in the last 128 bytes */
.Lclr_avx2_loop_128:                     /* rotated: one taken branch per iteration */
    vmovdqa [rdi], ymm0                  /* four aligned 32-byte stores: 128 bytes */
    vmovdqa [rdi + 32], ymm0
    vmovdqa [rdi + 64], ymm0
    vmovdqa [rdi + 96], ymm0
    sub   rdi, -128                      /* rdi += 128 (-128 fits in an imm8, +128 does not) */
    cmp   rdi, rcx
    jb    .Lclr_avx2_loop_128            /* more than the last 128 bytes left */
.Lclr_avx2_last_128:
    vmovdqu [rcx], ymm0                  /* last 128 bytes, unaligned, from the end */
    vmovdqu [rcx + 32], ymm0
    vmovdqu [rcx + 64], ymm0
    vmovdqu [rcx + 96], ymm0
    vzeroupper
    ret

.Lclr_avx2_nt_check:
    cmp   rsi, 256
    jb    .Lclr_avx2_cached              /* too short for the 64-byte head and one NT block */
    lea   rcx, [rdi + rsi - 128]         /* rcx = start of the last 128 bytes */
    vmovdqu [rdi], ymm0                  /* head: first 64 bytes (one cache line's worth) */
    vmovdqu [rdi + 32], ymm0
    add   rdi, 64
    and   rdi, -64                       /* rdi = first cache line the head did not cover */
.Lclr_avx2_nt_loop_128:                  /* rotated; len >= 256 makes the first pass in range */
    vmovntdq [rdi], ymm0                 /* two full cache lines, written around the cache */
    vmovntdq [rdi + 32], ymm0
    vmovntdq [rdi + 64], ymm0
    vmovntdq [rdi + 96], ymm0
    sub   rdi, -128                      /* rdi += 128 */
    cmp   rdi, rcx
    jb    .Lclr_avx2_nt_loop_128
    sfence                               /* order the weakly ordered NT stores before what follows */
    jmp   .Lclr_avx2_last_128            /* tail with ordinary stores */

.Lclr_avx2_under_32:
    cmp   esi, 16
    jb    .Lclr_avx2_under_16
    mov   [rdi], rax                     /* 16..31 bytes: first 16 */
    mov   [rdi + 8], rax
    mov   [rdi + rsi - 16], rax          /* last 16, overlapping the first */
    mov   [rdi + rsi - 8], rax
    ret
.Lclr_avx2_under_16:
    cmp   esi, 8
    jb    .Lclr_avx2_under_8
    mov   [rdi], rax                     /* 8..15 bytes: first 8, last 8 */
    mov   [rdi + rsi - 8], rax
    ret
.Lclr_avx2_under_8:
    cmp   esi, 4
    jb    .Lclr_avx2_under_4
    mov   [rdi], eax                     /* 4..7 bytes: first 4, last 4 */
    mov   [rdi + rsi - 4], eax
    ret
.Lclr_avx2_under_4:
    cmp   esi, 2
    jb    .Lclr_avx2_under_2
    mov   [rdi], ax                      /* 2..3 bytes: first 2, last 2 */
    mov   [rdi + rsi - 2], ax
    ret
.Lclr_avx2_under_2:
    test  esi, esi
    jz    .Lclr_avx2_done                /* 0 bytes: nothing to do */
    mov   [rdi], al                      /* 1 byte */
.Lclr_avx2_done:
    ret
FUNC_END(memclr_avx2)

/*
 * unsafe extern "C" fn splitstack_memclr_sse2(ptr: *mut u8, len: usize, nt_from: usize,
 *                                             stosb_from: usize)
 * Zero [ptr, ptr + len) with 16-byte SSE2 stores (x86-64's baseline); `rep stosb` for
 * stosb_from <= len < nt_from; non-temporal `movntdq` stores and `sfence` from nt_from up.
 * The same shape as splitstack_memclr_avx2 with half-width vectors and one more branch.
 * In:       rdi = ptr, rsi = len, rdx = nt_from (below 256 counts as 256),
 *           rcx = stosb_from (usize::MAX: never; below 128 counts as 128)
 * Out:      nothing
 * Clobbers: rax, rcx, rdi, xmm0, flags (rep stosb also advances rdi and counts rcx down)
 * Frame:    none (leaf)
 */
FUNC_BEGIN(memclr_sse2)
    xor   eax, eax                       /* rax = 0: scalar zero, and al for rep stosb */
    cmp   rsi, 32
    jb    .Lclr_sse2_under_32            /* 0..31 bytes: scalar stores */
    pxor  xmm0, xmm0                     /* xmm0 = 0 */
    cmp   rsi, 64
    ja    .Lclr_sse2_over_64
    movdqu [rdi], xmm0                   /* 32..64 bytes: first 32 */
    movdqu [rdi + 16], xmm0
    movdqu [rdi + rsi - 32], xmm0        /* last 32, overlapping the first */
    movdqu [rdi + rsi - 16], xmm0
    ret

.Lclr_sse2_over_64:
    cmp   rsi, 128
    ja    .Lclr_sse2_over_128
    movdqu [rdi], xmm0                   /* 65..128 bytes: first 64 */
    movdqu [rdi + 16], xmm0
    movdqu [rdi + 32], xmm0
    movdqu [rdi + 48], xmm0
    movdqu [rdi + rsi - 64], xmm0        /* last 64, overlapping the first */
    movdqu [rdi + rsi - 48], xmm0
    movdqu [rdi + rsi - 32], xmm0
    movdqu [rdi + rsi - 16], xmm0
    ret

.Lclr_sse2_over_128:
    cmp   rsi, rdx
    jae   .Lclr_sse2_nt_check            /* past the cache: non-temporal stores */
    cmp   rsi, rcx
    jae   .Lclr_sse2_stosb               /* the window where rep stosb wins */
.Lclr_sse2_cached:
    lea   rcx, [rdi + rsi - 128]         /* rcx = start of the last 128 bytes */
    movdqu [rdi], xmm0                   /* head: first 16 bytes, unaligned */
    add   rdi, 16
    and   rdi, -16                       /* rdi = first 16-aligned address the head did not cover */
    cmp   rdi, rcx
    jae   .Lclr_sse2_last_128
.Lclr_sse2_loop_128:                     /* rotated, as in the AVX2 routine */
    movdqa [rdi], xmm0                   /* eight aligned 16-byte stores: 128 bytes */
    movdqa [rdi + 16], xmm0
    movdqa [rdi + 32], xmm0
    movdqa [rdi + 48], xmm0
    movdqa [rdi + 64], xmm0
    movdqa [rdi + 80], xmm0
    movdqa [rdi + 96], xmm0
    movdqa [rdi + 112], xmm0
    sub   rdi, -128                      /* rdi += 128 */
    cmp   rdi, rcx
    jb    .Lclr_sse2_loop_128
.Lclr_sse2_last_128:
    movdqu [rcx], xmm0                   /* last 128 bytes, unaligned, from the end */
    movdqu [rcx + 16], xmm0
    movdqu [rcx + 32], xmm0
    movdqu [rcx + 48], xmm0
    movdqu [rcx + 64], xmm0
    movdqu [rcx + 80], xmm0
    movdqu [rcx + 96], xmm0
    movdqu [rcx + 112], xmm0
    ret

.Lclr_sse2_stosb:
    mov   rcx, rsi                       /* rcx = count; al = 0 is the byte; rdi = destination */
    rep stosb                            /* microcoded fill; DF = 0 per the ABI, so upward */
    ret

.Lclr_sse2_nt_check:
    cmp   rsi, 256
    jb    .Lclr_sse2_cached              /* too short for the 64-byte head and one NT block */
    lea   rcx, [rdi + rsi - 128]         /* rcx = start of the last 128 bytes */
    movdqu [rdi], xmm0                   /* head: first 64 bytes */
    movdqu [rdi + 16], xmm0
    movdqu [rdi + 32], xmm0
    movdqu [rdi + 48], xmm0
    add   rdi, 64
    and   rdi, -64                       /* rdi = first cache line the head did not cover */
.Lclr_sse2_nt_loop_128:                  /* rotated; len >= 256 makes the first pass in range */
    movntdq [rdi], xmm0                  /* two full cache lines, written around the cache */
    movntdq [rdi + 16], xmm0
    movntdq [rdi + 32], xmm0
    movntdq [rdi + 48], xmm0
    movntdq [rdi + 64], xmm0
    movntdq [rdi + 80], xmm0
    movntdq [rdi + 96], xmm0
    movntdq [rdi + 112], xmm0
    sub   rdi, -128                      /* rdi += 128 */
    cmp   rdi, rcx
    jb    .Lclr_sse2_nt_loop_128
    sfence                               /* order the NT stores before what follows */
    jmp   .Lclr_sse2_last_128            /* tail with ordinary stores */

.Lclr_sse2_under_32:
    cmp   esi, 16
    jb    .Lclr_sse2_under_16
    mov   [rdi], rax                     /* 16..31 bytes: first 16, last 16 */
    mov   [rdi + 8], rax
    mov   [rdi + rsi - 16], rax
    mov   [rdi + rsi - 8], rax
    ret
.Lclr_sse2_under_16:
    cmp   esi, 8
    jb    .Lclr_sse2_under_8
    mov   [rdi], rax                     /* 8..15 bytes: first 8, last 8 */
    mov   [rdi + rsi - 8], rax
    ret
.Lclr_sse2_under_8:
    cmp   esi, 4
    jb    .Lclr_sse2_under_4
    mov   [rdi], eax                     /* 4..7 bytes: first 4, last 4 */
    mov   [rdi + rsi - 4], eax
    ret
.Lclr_sse2_under_4:
    cmp   esi, 2
    jb    .Lclr_sse2_under_2
    mov   [rdi], ax                      /* 2..3 bytes: first 2, last 2 */
    mov   [rdi + rsi - 2], ax
    ret
.Lclr_sse2_under_2:
    test  esi, esi
    jz    .Lclr_sse2_done                /* 0 bytes */
    mov   [rdi], al                      /* 1 byte */
.Lclr_sse2_done:
    ret
FUNC_END(memclr_sse2)

/*
 * unsafe extern "C" fn splitstack_memclr_avx512(ptr: *mut u8, len: usize, nt_from: usize,
 *                                               stosb_from: usize, clzero_from: usize)
 * Zero [ptr, ptr + len) with 64-byte AVX-512F stores (one full cache line each); past 256 bytes,
 * the first threshold len reaches picks the bulk method, in this order: `clzero` (AMD) from
 * clzero_from, non-temporal `vmovntdq` from nt_from (both then `sfence`), `rep stosb` from
 * stosb_from; below all three, an aligned loop of four zmm stores. Needs AVX-512F (zmm stores)
 * and AVX-512VL (ymm16 stores); no `vzeroupper` (see the top of the file).
 * In:       rdi = ptr, rsi = len, rdx = nt_from, rcx = stosb_from, r8 = clzero_from
 *           (usize::MAX: never; a length under 512 that reaches clzero_from or nt_from takes the
 *           cached loop, one under 257 never reaches stosb_from); clzero_from < usize::MAX only
 *           if CPUID says CLZERO
 * Out:      nothing
 * Clobbers: rax, rcx, rdi, zmm16, flags (rep stosb also advances rdi and counts rcx down)
 * Frame:    none (leaf)
 */
FUNC_BEGIN(memclr_avx512)
    xor   eax, eax                       /* rax = 0: scalar zero, and al for rep stosb */
    cmp   rsi, 32
    jb    .Lclr512_under_32              /* 0..31 bytes: scalar stores, no vector state touched */
    vpxord zmm16, zmm16, zmm16           /* zmm16 = 0; an EVEX-only register: no vzeroupper needed */
    cmp   rsi, 64
    ja    .Lclr512_over_64
    vmovdqu64 [rdi], ymm16               /* 32..64 bytes: first 32 */
    vmovdqu64 [rdi + rsi - 32], ymm16    /* last 32, overlapping the first */
    ret

.Lclr512_over_64:
    cmp   rsi, 128
    ja    .Lclr512_over_128
    vmovdqu64 [rdi], zmm16                /* 65..128 bytes: first 64 */
    vmovdqu64 [rdi + rsi - 64], zmm16     /* last 64, overlapping the first */
    ret

.Lclr512_over_128:
    cmp   rsi, 256
    ja    .Lclr512_over_256
    vmovdqu64 [rdi], zmm16                /* 129..256 bytes: first 128 */
    vmovdqu64 [rdi + 64], zmm16
    vmovdqu64 [rdi + rsi - 128], zmm16    /* last 128, overlapping the first */
    vmovdqu64 [rdi + rsi - 64], zmm16
    ret

.Lclr512_over_256:
    cmp   rsi, r8
    jae   .Lclr512_clzero_check          /* clzero: whole lines zeroed without reading them */
    cmp   rsi, rdx
    jae   .Lclr512_nt_check              /* past the cache: non-temporal stores */
    cmp   rsi, rcx
    jae   .Lclr512_stosb                 /* the window where rep stosb wins */
.Lclr512_cached:
    lea   rcx, [rdi + rsi - 256]         /* rcx = start of the last 256 bytes */
    vmovdqu64 [rdi], zmm16                /* head: first 64 bytes, unaligned */
    add   rdi, 64
    and   rdi, -64                       /* rdi = first cache line the head did not cover */
    cmp   rdi, rcx
    jae   .Lclr512_last_256              /* what is left fits in the last 256 bytes */
.Lclr512_loop_256:                       /* rotated: one taken branch per iteration */
    vmovdqa64 [rdi], zmm16                /* four aligned 64-byte stores: four cache lines */
    vmovdqa64 [rdi + 64], zmm16
    vmovdqa64 [rdi + 128], zmm16
    vmovdqa64 [rdi + 192], zmm16
    add   rdi, 256                       /* rdi += 256 (no imm8 either way; imm32) */
    cmp   rdi, rcx
    jb    .Lclr512_loop_256              /* more than the last 256 bytes left */
.Lclr512_last_256:
    vmovdqu64 [rcx], zmm16                /* last 256 bytes, unaligned, from the end */
    vmovdqu64 [rcx + 64], zmm16
    vmovdqu64 [rcx + 128], zmm16
    vmovdqu64 [rcx + 192], zmm16
    ret

.Lclr512_stosb:
    mov   rcx, rsi                       /* rcx = count; al = 0 is the byte; rdi = destination */
    rep stosb                            /* microcoded fill; DF = 0 per the ABI, so upward */
    ret

.Lclr512_nt_check:
    cmp   rsi, 512
    jb    .Lclr512_cached                /* too short for the head, one NT block and the tail */
    lea   rcx, [rdi + rsi - 256]         /* rcx = start of the last 256 bytes */
    vmovdqu64 [rdi], zmm16                /* head: first 64 bytes, unaligned */
    add   rdi, 64
    and   rdi, -64                       /* rdi = first cache line the head did not cover */
.Lclr512_nt_loop_256:                    /* rotated; len >= 512 makes the first pass in range */
    vmovntdq [rdi], zmm16                 /* four full cache lines, written around the cache */
    vmovntdq [rdi + 64], zmm16
    vmovntdq [rdi + 128], zmm16
    vmovntdq [rdi + 192], zmm16
    add   rdi, 256                       /* rdi += 256 */
    cmp   rdi, rcx
    jb    .Lclr512_nt_loop_256
    sfence                               /* order the weakly ordered NT stores before what follows */
    jmp   .Lclr512_last_256              /* tail with ordinary stores */

.Lclr512_clzero_check:
    cmp   rsi, 512
    jb    .Lclr512_cached                /* too short for the head, one clzero block and the tail */
    lea   rcx, [rdi + rsi - 256]         /* rcx = start of the last 256 bytes */
    vmovdqu64 [rdi], zmm16                /* head: first 64 bytes, unaligned */
    lea   rax, [rdi + 64]
    and   rax, -64                       /* rax = first cache line the head did not cover */
.Lclr512_clzero_loop_256:                /* rotated; len >= 512 makes the first pass in range */
    clzero                               /* zero the cache line holding rax (rax is implicit) */
    add   rax, 64
    clzero                               /* second line */
    add   rax, 64
    clzero                               /* third line */
    add   rax, 64
    clzero                               /* fourth line */
    add   rax, 64                        /* rax += 256 over the four steps */
    cmp   rax, rcx
    jb    .Lclr512_clzero_loop_256
    sfence                               /* clzero is weakly ordered, like NT stores */
    jmp   .Lclr512_last_256              /* tail with ordinary stores */

.Lclr512_under_32:
    cmp   esi, 16
    jb    .Lclr512_under_16
    mov   [rdi], rax                     /* 16..31 bytes: first 16, last 16 */
    mov   [rdi + 8], rax
    mov   [rdi + rsi - 16], rax
    mov   [rdi + rsi - 8], rax
    ret
.Lclr512_under_16:
    cmp   esi, 8
    jb    .Lclr512_under_8
    mov   [rdi], rax                     /* 8..15 bytes: first 8, last 8 */
    mov   [rdi + rsi - 8], rax
    ret
.Lclr512_under_8:
    cmp   esi, 4
    jb    .Lclr512_under_4
    mov   [rdi], eax                     /* 4..7 bytes: first 4, last 4 */
    mov   [rdi + rsi - 4], eax
    ret
.Lclr512_under_4:
    cmp   esi, 2
    jb    .Lclr512_under_2
    mov   [rdi], ax                      /* 2..3 bytes: first 2, last 2 */
    mov   [rdi + rsi - 2], ax
    ret
.Lclr512_under_2:
    test  esi, esi
    jz    .Lclr512_done                  /* 0 bytes */
    mov   [rdi], al                      /* 1 byte */
.Lclr512_done:
    ret
FUNC_END(memclr_avx512)
