/*
 * memclr_x86_64_sysv.S: zero a byte range on x86-64 System V (Linux ELF), in the manner of Go's
 * memclr_amd64.s: overlapping unaligned stores for short ranges, an aligned vector loop for
 * ranges that stay in cache, non-temporal stores (or AMD's `clzero`) for ranges too large to
 * stay in cache, and `rep stosb` where the CPU's fast-string microcode (ERMS) beats the 16-byte
 * loop. Three entry points, one per vector width (AVX-512, AVX2, SSE2), chosen once per process
 * in Rust (src/memclr.rs) from the CPU's features. The thresholds are arguments, defined and
 * explained in src/memclr.rs; the figures they rest on are in the README's memclr tables.
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
 *   long ranges in the AVX2 and SSE2 routines: one unaligned head store, an aligned loop, then
 *   the last 128 bytes stored unaligned from the end, overlapping the loop (never past
 *   ptr + len); but an edge whose unaligned stores would cross a page (a range that ends just
 *   past a page boundary is common: a whole number of pages that starts 16 bytes into one, as a
 *   large Vec's buffer does) is done with aligned vector stores and scalar stores inside one
 *   aligned block (CLEAR_UNDER_32) instead, so that no store crosses a page
 *
 *    | head |   aligned 128-byte blocks ...   |<-- last 128 -->|
 *    |h|    aligned 128-byte blocks ...   | aligned blocks |t|    (edges that would cross a page)
 *
 *   the AVX-512 routine's non-temporal and `clzero` paths: one unaligned head store, the
 *   aligned loop, then the last 256 bytes stored unaligned from the end (overlapping the loop's
 *   last iteration, never past ptr + len); src/memclr.rs takes them only at sizes where one
 *   store across a page is lost in the bulk
 *
 * The AVX-512 routine's cached and `rep stosb` paths use byte-masked stores at the edges,
 * so that no store crosses a cache line; its contract block draws them.
 *
 * Every routine is a leaf with no frame; none touches the stack. The AVX2 and SSE2 routines use
 * ymm0/xmm0 only, and the AVX2 routine ends every path that wrote a ymm register with
 * `vzeroupper`, so that SSE code after it pays no transition penalty. The AVX-512 routine uses
 * zmm16/ymm16 (and the mask registers k1, k2) only: registers 16-31 exist only under EVEX
 * encoding, are outside the upper state that SSE/AVX transitions track, and so need no
 * `vzeroupper` (glibc's EVEX string functions do the same).
 */
#include "asm.h"

/*
 * CLEAR_UNDER_32 p, n, next: zero [p, p + n) for n in 0..31 with scalar stores of rax (which
 * holds 0), two overlapping ones from the ends of the range, then jump to `next`. Every store
 * lies inside the range, so when the range lies inside one aligned 32-byte block (a head up to
 * the first boundary, a tail after the last), no store crosses a line or a page.
 * Clobbers: flags.
 */
.macro CLEAR_UNDER_32 p, n, next
    test  \n, \n
    jz    \next                         /* 0 bytes: the common case of aligned ends */
    cmp   \n, 16
    jb    .Lunder_16_\@
    mov   [\p], rax                     /* 16..31 bytes: first 16, last 16 */
    mov   [\p + 8], rax
    mov   [\p + \n - 16], rax
    mov   [\p + \n - 8], rax
    jmp   \next
.Lunder_16_\@:
    cmp   \n, 8
    jb    .Lunder_8_\@
    mov   [\p], rax                     /* 8..15 bytes: first 8, last 8 */
    mov   [\p + \n - 8], rax
    jmp   \next
.Lunder_8_\@:
    cmp   \n, 4
    jb    .Lunder_4_\@
    mov   [\p], eax                     /* 4..7 bytes */
    mov   [\p + \n - 4], eax
    jmp   \next
.Lunder_4_\@:
    cmp   \n, 2
    jb    .Lunder_2_\@
    mov   [\p], ax                      /* 2..3 bytes */
    mov   [\p + \n - 2], ax
    jmp   \next
.Lunder_2_\@:
    mov   [\p], al                      /* 1 byte */
    jmp   \next
.endm

/*
 * unsafe extern "C" fn splitstack_memclr_avx2(ptr: *mut u8, len: usize, nt_from: usize)
 * Zero [ptr, ptr + len) with 32-byte AVX2 stores; from nt_from bytes up, with non-temporal
 * `vmovntdq` stores that bypass the cache, followed by `sfence`.
 * In:       rdi = ptr, rsi = len, rdx = nt_from (any value; below 256 counts as 256)
 * Out:      nothing
 * Clobbers: rax, rcx, rdx, rsi, rdi, ymm0, flags
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
    add   rsi, rdi                       /* rsi = end (ptr + len) */
    mov   edx, edi
    and   edx, 4095
    cmp   edx, 4096 - 32
    ja    .Lclr_avx2_head_careful        /* the first 32 bytes would cross a page */
    vmovdqu [rdi], ymm0                  /* head: first 32 bytes, unaligned, inside one page */
    add   rdi, 32
    and   rdi, -32                       /* rdi = first 32-aligned address the head did not cover */
.Lclr_avx2_head_done:
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
    mov   edx, ecx
    and   edx, 4095
    cmp   edx, 4096 - 128
    ja    .Lclr_avx2_tail                /* the last 128 bytes cross a page */
    vmovdqu [rcx], ymm0                  /* last 128 bytes, unaligned, from the end, in one page */
    vmovdqu [rcx + 32], ymm0
    vmovdqu [rcx + 64], ymm0
    vmovdqu [rcx + 96], ymm0
    vzeroupper
    ret
.Lclr_avx2_tail:                         /* rdi 32-aligned, below rsi = end; [.., rdi) is zero */
    mov   rcx, rsi
    and   rcx, -32                       /* rcx = the last 32-byte boundary, at or below end */
    cmp   rdi, rcx
    jae   .Lclr_avx2_tail_bytes
.Lclr_avx2_tail_blocks:
    vmovdqa [rdi], ymm0                  /* the aligned 32-byte blocks left */
    add   rdi, 32
    cmp   rdi, rcx
    jb    .Lclr_avx2_tail_blocks
.Lclr_avx2_tail_bytes:
    vzeroupper
    sub   rsi, rdi                       /* rsi = 0..31 bytes left, inside one aligned block */
    CLEAR_UNDER_32 rdi, rsi, .Lclr_avx2_long_done
.Lclr_avx2_long_done:
    ret
.Lclr_avx2_head_careful:                 /* ptr in the last 31 bytes of a page */
    mov   edx, edi
    neg   edx
    and   edx, 31                        /* rdx = bytes up to the first 32-byte boundary */
    CLEAR_UNDER_32 rdi, rdx, .Lclr_avx2_head_careful_done
.Lclr_avx2_head_careful_done:
    add   rdi, rdx                       /* rdi = that boundary, the page's end */
    jmp   .Lclr_avx2_head_done

.Lclr_avx2_nt_check:
    cmp   rsi, 256
    jb    .Lclr_avx2_cached              /* too short for the head and one NT block */
    add   rsi, rdi                       /* rsi = end */
    mov   ecx, edi
    neg   ecx
    and   ecx, 31                        /* rcx = bytes up to the first 32-byte boundary */
    CLEAR_UNDER_32 rdi, rcx, .Lclr_avx2_nt_head_done
.Lclr_avx2_nt_head_done:
    add   rdi, rcx                       /* rdi 32-aligned */
    test  dil, 32
    jz    .Lclr_avx2_nt_aligned
    vmovdqa [rdi], ymm0                  /* up to the first cache line boundary */
    add   rdi, 32
.Lclr_avx2_nt_aligned:
    mov   rcx, rsi
    and   rcx, -32                       /* rcx = the last 32-byte boundary, at or below end */
    lea   rdx, [rcx - 128]               /* rdx = the last start of a whole 128-byte block */
.Lclr_avx2_nt_loop_128:                  /* rotated; len >= 256 makes the first pass in range */
    vmovntdq [rdi], ymm0                 /* two full cache lines, written around the cache */
    vmovntdq [rdi + 32], ymm0
    vmovntdq [rdi + 64], ymm0
    vmovntdq [rdi + 96], ymm0
    sub   rdi, -128                      /* rdi += 128 */
    cmp   rdi, rdx
    jbe   .Lclr_avx2_nt_loop_128
    sfence                               /* order the weakly ordered NT stores before what follows */
    jmp   .Lclr_avx2_tail                /* the rest with ordinary aligned stores */

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
 * In:       rdi = ptr, rsi = len, rdx = nt_from (a length from nt_from up to 255 takes the
 *           cached loop, not rep stosb), rcx = stosb_from (usize::MAX: never; below 129 counts
 *           as 129)
 * Out:      nothing
 * Clobbers: rax, rcx, rdx, rsi, rdi, xmm0, flags (rep stosb also advances rdi and counts rcx down)
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
    add   rsi, rdi                       /* rsi = end (ptr + len) */
    mov   edx, edi
    and   edx, 4095
    cmp   edx, 4096 - 16
    ja    .Lclr_sse2_head_careful        /* the first 16 bytes would cross a page */
    movdqu [rdi], xmm0                   /* head: first 16 bytes, unaligned, inside one page */
    add   rdi, 16
    and   rdi, -16                       /* rdi = first 16-aligned address the head did not cover */
.Lclr_sse2_head_done:
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
    mov   edx, ecx
    and   edx, 4095
    cmp   edx, 4096 - 128
    ja    .Lclr_sse2_tail                /* the last 128 bytes cross a page */
    movdqu [rcx], xmm0                   /* last 128 bytes, unaligned, from the end, in one page */
    movdqu [rcx + 16], xmm0
    movdqu [rcx + 32], xmm0
    movdqu [rcx + 48], xmm0
    movdqu [rcx + 64], xmm0
    movdqu [rcx + 80], xmm0
    movdqu [rcx + 96], xmm0
    movdqu [rcx + 112], xmm0
    ret
.Lclr_sse2_tail:                         /* rdi 16-aligned, below rsi = end; [.., rdi) is zero */
    mov   rcx, rsi
    and   rcx, -16                       /* rcx = the last 16-byte boundary, at or below end */
    cmp   rdi, rcx
    jae   .Lclr_sse2_tail_bytes
.Lclr_sse2_tail_blocks:
    movdqa [rdi], xmm0                   /* the aligned 16-byte blocks left */
    add   rdi, 16
    cmp   rdi, rcx
    jb    .Lclr_sse2_tail_blocks
.Lclr_sse2_tail_bytes:
    sub   rsi, rdi                       /* rsi = 0..15 bytes left, inside one aligned block */
    CLEAR_UNDER_32 rdi, rsi, .Lclr_sse2_long_done
.Lclr_sse2_long_done:
    ret
.Lclr_sse2_head_careful:                 /* ptr in the last 15 bytes of a page */
    mov   edx, edi
    neg   edx
    and   edx, 15                        /* rdx = bytes up to the first 16-byte boundary */
    CLEAR_UNDER_32 rdi, rdx, .Lclr_sse2_head_careful_done
.Lclr_sse2_head_careful_done:
    add   rdi, rdx                       /* rdi = that boundary, the page's end */
    jmp   .Lclr_sse2_head_done

.Lclr_sse2_stosb:
    mov   rcx, rsi                       /* rcx = count; al = 0 is the byte; rdi = destination */
    rep stosb                            /* microcoded fill; DF = 0 per the ABI, so upward */
    ret

.Lclr_sse2_nt_check:
    cmp   rsi, 256
    jb    .Lclr_sse2_cached              /* too short for the head and one NT block */
    add   rsi, rdi                       /* rsi = end */
    mov   ecx, edi
    neg   ecx
    and   ecx, 15                        /* rcx = bytes up to the first 16-byte boundary */
    CLEAR_UNDER_32 rdi, rcx, .Lclr_sse2_nt_head_done
.Lclr_sse2_nt_head_done:
    add   rdi, rcx                       /* rdi 16-aligned */
.Lclr_sse2_nt_to_line:
    test  dil, 63
    jz    .Lclr_sse2_nt_aligned
    movdqa [rdi], xmm0                   /* up to the first cache line boundary: at most three */
    add   rdi, 16
    jmp   .Lclr_sse2_nt_to_line
.Lclr_sse2_nt_aligned:
    mov   rcx, rsi
    and   rcx, -16                       /* rcx = the last 16-byte boundary, at or below end */
    lea   rdx, [rcx - 128]               /* rdx = the last start of a whole 128-byte block */
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
    cmp   rdi, rdx
    jbe   .Lclr_sse2_nt_loop_128
    sfence                               /* order the NT stores before what follows */
    jmp   .Lclr_sse2_tail                /* the rest with ordinary aligned stores */

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
 * AVX512_HEAD_LINE: zero the line holding rdi from rdi on with one byte-masked store of zmm16
 * (never outside that line, never before rdi), and set rax to the next line.
 * Clobbers: rcx, k1, flags.
 */
.macro AVX512_HEAD_LINE
    mov   ecx, edi
    and   ecx, 63                        /* cl = ptr's offset in its line, 0..63 */
    mov   rax, -1
    shl   rax, cl                        /* mask: bytes offset..63 */
    kmovq k1, rax
    mov   rax, rdi
    and   rax, -64                       /* rax = ptr's line */
    vmovdqu8 [rax]{k1}, zmm16            /* head: never outside ptr's line, never before ptr */
    add   rax, 64                        /* rax = the first line the head did not touch */
.endm

/*
 * AVX512_TAIL_LINE: zero the line holding the last byte of [rdi, rdi + rsi), rsi > 0, up to
 * that byte with one byte-masked store of zmm16 (never outside that line, never past the end),
 * and set rdx to that line.
 * Clobbers: rcx, r8, k2, flags.
 */
.macro AVX512_TAIL_LINE
    lea   rdx, [rdi + rsi - 1]           /* rdx = the last byte */
    mov   ecx, edx
    not   ecx                            /* cl & 63 = 63 - (the last byte's offset in its line) */
    mov   r8, -1
    shr   r8, cl                         /* mask: bytes 0..(that offset), 1 to 64 of them */
    kmovq k2, r8
    and   rdx, -64                       /* rdx = the last byte's line */
    vmovdqu8 [rdx]{k2}, zmm16            /* tail: never outside that line, never past the end */
.endm

/*
 * unsafe extern "C" fn splitstack_memclr_avx512(ptr: *mut u8, len: usize, nt_from: usize,
 *                                               stosb_from: usize, clzero_from: usize)
 * Zero [ptr, ptr + len) with AVX-512 stores. Up to 256 bytes, overlapping unaligned stores from
 * both ends (scalar under 32 bytes, ymm16 up to 64, zmm16 above). Past 256 bytes, the first
 * threshold len reaches, in this order, picks the path: `clzero` (AMD) from clzero_from,
 * non-temporal `vmovntdq` from nt_from, `rep stosb` from stosb_from; below all three, the
 * cached path.
 *
 * The cached path: a byte-masked store into the line holding ptr, from ptr on; one into the
 * line holding the last byte, up to it; aligned 64-byte stores to every whole line in between.
 *
 *   the line holding ptr          whole lines, aligned           the line holding the last byte
 *   |....[masked store  ]|[ ][ ][ ][ ] ... [ ][ ][ ]|[ masked store ]....|
 *       ptr                                                             ptr + len
 *
 * Every store writes inside one cache line, and each line is written once. An unaligned store
 * at an edge would cross lines, and it crosses a page whenever the range ends less than a store
 * past a page boundary but not on a line, as a whole number of pages does when it does not start
 * on a line (a large Vec's buffer starts 16 bytes into a page); such a store costs a large part
 * of a clear of a few KiB (the README's "memclr's thresholds"). The whole lines go four to an
 * iteration, each iteration asking for the next four lines with `prefetchw` so that their fills
 * overlap the stores; the loop runs while at least seven whole lines remain, so that no
 * prefetch reaches past the last byte's line, and the last zero to six lines follow it.
 * The `rep stosb` path makes the same head store, then one string store from the next line to
 * the end, so that the string store starts on a line.
 * The non-temporal path (512 bytes or more; shorter lengths that reach its threshold take the
 * cached path) makes the cached path's two masked edge stores, and `vmovntdq` stores to every
 * whole line in between, four an iteration, then one at a time, then `sfence`: each line is
 * written once, so that no ordinary store reads back a line a non-temporal one has just sent to
 * memory (a cold range's clear waited two memory latencies for that).
 * The `clzero` path (the same lengths): one unaligned 64-byte head store, whole lines from the
 * next line on (four `clzero`s an iteration), `sfence`, and the last 256 bytes as four
 * unaligned stores from the end, overlapping the bulk. src/memclr.rs takes it only at sizes
 * where one store across a page is lost in the bulk.
 * Needs AVX-512F (zmm stores), AVX-512BW (byte-masked stores, kmovq) and AVX-512VL (ymm16
 * stores), and `prefetchw`, which every CPU with AVX-512 has; no `vzeroupper` (see the top of
 * the file).
 * In:       rdi = ptr, rsi = len, rdx = nt_from, rcx = stosb_from, r8 = clzero_from
 *           (usize::MAX: never; a length of 256 or less takes none of the three paths, and one
 *           under 512 that reaches clzero_from or nt_from takes the cached path whatever
 *           stosb_from is); clzero_from < usize::MAX only if CPUID says CLZERO
 * Out:      nothing
 * Clobbers: rax, rcx, rdx, rdi, r8, k1, k2, zmm16, flags (rep stosb also advances rdi and
 *           counts rcx down)
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
.Lclr512_head:                           /* both remaining paths start with the head, ptr's line
                                            from ptr on; rcx = stosb_from */
    mov   r8, rcx                        /* r8 = stosb_from (rcx is needed for the shift count) */
    AVX512_HEAD_LINE
    cmp   rsi, r8
    jae   .Lclr512_stosb                 /* from stosb_from: rep stosb */
    AVX512_TAIL_LINE                     /* rdx = the last byte's line, past rax (len > 256) */
    lea   rcx, [rdx - 448]               /* rcx = where fewer than seven whole lines remain (rdx
                                            is past ptr + 192: no wrap below a real address) */
    cmp   rax, rcx
    ja    .Lclr512_last_block            /* fewer than seven whole lines in between */
    .p2align 6                           /* the loop in one 64-byte fetch block (padding: NOPs,
                                            run once) */
.Lclr512_loop_256:                       /* rotated: one taken branch per iteration */
    prefetchw [rax + 256]                /* ask for the next four lines now, so that their */
    prefetchw [rax + 320]                /* fills overlap these stores; never past rdx */
    prefetchw [rax + 384]
    prefetchw [rax + 448]
    vmovdqa64 [rax], zmm16               /* four aligned 64-byte stores: four cache lines */
    vmovdqa64 [rax + 64], zmm16
    vmovdqa64 [rax + 128], zmm16
    vmovdqa64 [rax + 192], zmm16
    add   rax, 256
    cmp   rax, rcx
    jbe   .Lclr512_loop_256              /* at least seven whole lines left */
.Lclr512_last_block:                     /* 0..6 whole lines left in [rax, rdx) */
    lea   rcx, [rdx - 256]
    cmp   rax, rcx
    ja    .Lclr512_last_lines
    vmovdqa64 [rax], zmm16               /* four of them */
    vmovdqa64 [rax + 64], zmm16
    vmovdqa64 [rax + 128], zmm16
    vmovdqa64 [rax + 192], zmm16
    add   rax, 256
.Lclr512_last_lines:                     /* 0..3 whole lines left in [rax, rdx) */
    cmp   rax, rdx
    jae   .Lclr512_done
    vmovdqa64 [rax], zmm16
    add   rax, 64
    cmp   rax, rdx
    jae   .Lclr512_done
    vmovdqa64 [rax], zmm16
    add   rax, 64
    cmp   rax, rdx
    jae   .Lclr512_done
    vmovdqa64 [rax], zmm16
    ret

.Lclr512_stosb:
    lea   rcx, [rdi + rsi]               /* rcx = the end */
    mov   rdi, rax                       /* rdi = the first line the head did not touch */
    sub   rcx, rdi                       /* rcx = count, > 0 (len > 256); al = 0 is the byte */
    xor   eax, eax
    rep stosb                            /* microcoded fill; DF = 0 per the ABI, so upward */
    ret

.Lclr512_nt_check:
    cmp   rsi, 512
    jb    .Lclr512_short_bulk            /* too short for the head, one NT block and the tail */
    AVX512_HEAD_LINE
    AVX512_TAIL_LINE                     /* rdx = the last byte's line, at least six whole lines
                                            past rax (len >= 512) */
    lea   rcx, [rdx - 256]               /* rcx = the last start of four whole lines */
.Lclr512_nt_loop_256:                    /* rotated; at least six whole lines make one pass */
    vmovntdq [rax], zmm16                 /* four whole cache lines, written around the cache */
    vmovntdq [rax + 64], zmm16
    vmovntdq [rax + 128], zmm16
    vmovntdq [rax + 192], zmm16
    add   rax, 256
    cmp   rax, rcx
    jbe   .Lclr512_nt_loop_256
.Lclr512_nt_last_lines:                  /* 0..3 whole lines left in [rax, rdx) */
    cmp   rax, rdx
    jae   .Lclr512_nt_done
    vmovntdq [rax], zmm16
    add   rax, 64
    jmp   .Lclr512_nt_last_lines
.Lclr512_nt_done:
    sfence                               /* order the weakly ordered NT stores before what follows */
    ret

.Lclr512_clzero_check:
    cmp   rsi, 512
    jb    .Lclr512_short_bulk            /* too short for the head, one clzero block and the tail */
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
.Lclr512_last_256:
    vmovdqu64 [rcx], zmm16                /* last 256 bytes, unaligned, from the end */
    vmovdqu64 [rcx + 64], zmm16
    vmovdqu64 [rcx + 128], zmm16
    vmovdqu64 [rcx + 192], zmm16
    ret

.Lclr512_short_bulk:                     /* 257..511 bytes with clzero_from or nt_from reached: */
    mov   rcx, -1                        /* the cached path (stosb_from = never) */
    jmp   .Lclr512_head

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
