/*
 * memclr_x86_sysv.S: zero a byte range on 32-bit x86 System V (i386 Linux ELF, cdecl), in the
 * manner of Go's memclr_386.s: overlapping unaligned stores for short ranges, an aligned 16-byte
 * SSE2 loop for ranges that stay in cache, non-temporal stores for ranges too large to stay in
 * cache, and `rep stosb` where the CPU's fast-string microcode (ERMS) beats the loop. One entry
 * point: SSE2 is the baseline of Rust's i686 targets, and the wider vector routines of the x86-64
 * file are not ported (32-bit processes clear little enough that their setup would not pay). The
 * thresholds are arguments, derived in src/memclr.rs exactly as for x86-64's SSE2 routine. Rust
 * declaration: src/arch/mod.rs, the `memclr` block.
 *
 * No struct is touched: the routine writes zeros to [ptr, ptr + len) and nothing else.
 *
 *   up to 32 bytes: two overlapping stores, one from each end
 *
 *   ptr                                      ptr + len
 *    |<-- store 1 -->|                           |
 *    |                           |<-- store 2 -->|
 *
 *   longer ranges: the first and last 16 bytes stored unaligned, then the aligned 16-byte blocks
 *   between them (in 64-byte steps while four fit), cached or non-temporal; or one `rep stosb`
 *   over the whole range
 *
 *    |head|  aligned blocks ...  |tail|
 */
#include "asm.h"

/*
 * ALIGNED_BLOCKS store: zero the 16-byte aligned blocks [edi, edx) with `store` (movdqa or
 * movntdq) of xmm0, four at a time while four fit. edi and edx are 16-byte aligned, edi <= edx.
 * Clobbers: edi, ecx, flags.
 */
.macro ALIGNED_BLOCKS store
    lea   ecx, [edx - 64]                /* ecx = the last place a 64-byte step may start */
    cmp   edi, ecx
    ja    .Lblocks_16_\@
.Lblocks_64_\@:
    \store [edi], xmm0                   /* four aligned 16-byte stores: 64 bytes */
    \store [edi + 16], xmm0
    \store [edi + 32], xmm0
    \store [edi + 48], xmm0
    add   edi, 64
    cmp   edi, ecx
    jbe   .Lblocks_64_\@
.Lblocks_16_\@:
    cmp   edi, edx
    jae   .Lblocks_done_\@
.Lblocks_16_loop_\@:
    \store [edi], xmm0                   /* the 16-byte blocks left */
    add   edi, 16
    cmp   edi, edx
    jb    .Lblocks_16_loop_\@
.Lblocks_done_\@:
.endm

/*
 * unsafe extern "C" fn splitstack_memclr_sse2(ptr: *mut u8, len: usize, nt_from: usize,
 *                                             stosb_from: usize)
 * Zero [ptr, ptr + len): non-temporal movntdq stores and an sfence from nt_from bytes; else
 * `rep stosb` from stosb_from bytes; else cached 16-byte stores. usize::MAX turns a path off.
 * In:       [esp + 4] = ptr, [esp + 8] = len, [esp + 12] = nt_from, [esp + 16] = stosb_from
 * Out:      nothing
 * Clobbers: eax, ecx, edx, xmm0, flags
 * Frame:    edi pushed (callee-saved in cdecl; the loops and `rep stosb` use it), 4 bytes
 */
FUNC_BEGIN(memclr_sse2)
    push  edi                            /* save: edi */
    .cfi_adjust_cfa_offset 4
    .cfi_rel_offset edi, 0
    mov   edi, [esp + 8]                 /* edi = ptr */
    mov   ecx, [esp + 12]                /* ecx = len */
    xor   eax, eax                       /* eax = 0: scalar zero, and al for rep stosb */
    cmp   ecx, 16
    jb    .Lclr_under_16
    pxor  xmm0, xmm0                     /* xmm0 = 0 */
    movdqu [edi], xmm0                   /* head: first 16 bytes */
    movdqu [edi + ecx - 16], xmm0        /* tail: last 16, overlapping the head below 32 */
    cmp   ecx, 32
    jbe   .Lclr_done
    cmp   ecx, [esp + 16]
    jae   .Lclr_non_temporal             /* past the cache: non-temporal stores */
    cmp   ecx, [esp + 20]
    jae   .Lclr_stosb                    /* where rep stosb wins */
    lea   edx, [edi + ecx]
    and   edx, -16                       /* edx = the last 16-byte boundary, at or below end */
    add   edi, 16
    and   edi, -16                       /* edi = the first boundary after the head's start */
    ALIGNED_BLOCKS movdqa
.Lclr_done:
    pop   edi                            /* restore: edi */
    .cfi_remember_state
    .cfi_adjust_cfa_offset -4
    .cfi_restore edi
    ret
    .cfi_restore_state

.Lclr_non_temporal:
    lea   edx, [edi + ecx]
    and   edx, -16                       /* edx = the last 16-byte boundary, at or below end */
    add   edi, 16
    and   edi, -16                       /* edi = the first boundary after the head's start */
    ALIGNED_BLOCKS movntdq
    sfence                               /* order the non-temporal stores before what follows */
    jmp   .Lclr_done

.Lclr_stosb:
    rep stosb                            /* [edi, edi + ecx) = al = 0; the direction flag is
                                          * clear by the ABI */
    jmp   .Lclr_done

.Lclr_under_16:
    cmp   ecx, 8
    jb    .Lclr_under_8
    mov   [edi], eax                     /* 8..15 bytes: first 8, last 8 */
    mov   [edi + 4], eax
    mov   [edi + ecx - 8], eax
    mov   [edi + ecx - 4], eax
    jmp   .Lclr_done
.Lclr_under_8:
    cmp   ecx, 4
    jb    .Lclr_under_4
    mov   [edi], eax                     /* 4..7 bytes */
    mov   [edi + ecx - 4], eax
    jmp   .Lclr_done
.Lclr_under_4:
    cmp   ecx, 2
    jb    .Lclr_under_2
    mov   [edi], ax                      /* 2..3 bytes */
    mov   [edi + ecx - 2], ax
    jmp   .Lclr_done
.Lclr_under_2:
    test  ecx, ecx
    jz    .Lclr_done
    mov   [edi], al                      /* 1 byte */
    jmp   .Lclr_done
FUNC_END(memclr_sse2)
