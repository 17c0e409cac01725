//! memclr: zero memory faster than `memset` where it matters for a heap, i.e. for whole spans of
//! pages, by choosing the store instructions per CPU once and per size on every call.
//!
//! The routines are in `asm/memclr_*.S` (declared in `src/arch/mod.rs`); this file detects the
//! CPU's features once, caches the choice in an atomic, and passes the size thresholds to the
//! assembly. The thresholds are the measurements below; [`MemclrStrategy`] reports the choice.

use crate::arch;
#[cfg(target_arch = "x86_64")]
use std::sync::atomic::AtomicU8;
#[cfg(target_arch = "aarch64")]
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;

/// How [`memclr`] zeroes memory on this CPU, as detected once per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemclrStrategy {
    /// x86-64 with AVX-512F: 64-byte stores (one cache line each) through the cache; for ranges of
    /// at least `non_temporal_from` bytes, non-temporal `vmovntdq` stores and an `sfence`, or,
    /// from `clzero_from`, AMD's `clzero`, which zeroes a whole line without reading it; and
    /// `rep stosb` from `rep_stosb_from` below those.
    Avx512 {
        /// The smallest length zeroed with `rep stosb`, if it is used at all.
        rep_stosb_from: Option<usize>,
        /// The smallest length zeroed with non-temporal stores.
        non_temporal_from: usize,
        /// The smallest length zeroed with `clzero`, if the CPU has it and it is used at all.
        clzero_from: Option<usize>,
    },
    /// x86-64 with AVX2: 32-byte stores through the cache, then non-temporal `vmovntdq` stores
    /// (and an `sfence`) for ranges of at least `non_temporal_from` bytes.
    Avx2 {
        /// The smallest length zeroed with non-temporal stores.
        non_temporal_from: usize,
    },
    /// x86-64 without AVX2: 16-byte SSE2 stores, `rep stosb` from `rep_stosb_from` bytes when the
    /// CPU has fast `rep stosb` (ERMS), non-temporal `movntdq` stores from `non_temporal_from`.
    Sse2 {
        /// The smallest length zeroed with `rep stosb`, if it is used at all.
        rep_stosb_from: Option<usize>,
        /// The smallest length zeroed with non-temporal stores.
        non_temporal_from: usize,
    },
    /// AArch64 with `dc zva` allowed: whole blocks of `block_size` bytes (from DCZID_EL0) are
    /// zeroed with `dc zva`, the unaligned head and tail with `stp`.
    DcZva {
        /// The `dc zva` block size in bytes.
        block_size: usize,
    },
    /// AArch64 where DCZID_EL0 prohibits `dc zva` (or reports a block outside 64..=2048 bytes):
    /// 64-byte `stp` stores.
    Stp,
}

/// Zero every byte of `buf`.
///
/// Short buffers take a few overlapping stores; long ones the fastest bulk stores this CPU has
/// (see [`memclr_strategy`]). Large buffers may be written with non-temporal stores, which leave
/// them out of the cache.
///
/// ```
/// let mut buf = vec![0xa5u8; 10_000];
/// splitstack::memclr(&mut buf[3..]);
/// assert_eq!(buf[..3], [0xa5; 3]);
/// assert!(buf[3..].iter().all(|&b| b == 0));
/// ```
#[inline]
pub fn memclr(buf: &mut [u8]) {
    // SAFETY: a unique slice is valid for writes of its whole length.
    unsafe { memclr_raw(buf.as_mut_ptr(), buf.len()) }
}

/// Zero `len` bytes from `ptr`.
///
/// # Safety
/// `ptr..ptr + len` must be valid for writes (as for [`core::ptr::write_bytes`]), and no other
/// thread may access it during the call. `ptr` need not be aligned; with `len == 0` it is not
/// accessed.
#[inline]
pub unsafe fn memclr_raw(ptr: *mut u8, len: usize) {
    // SAFETY: the caller's contract; the strategy is one this CPU supports.
    unsafe { clear_with(memclr_strategy(), ptr, len) }
}

/// The strategy [`memclr`] uses on this CPU, detected on first use.
#[inline]
pub fn memclr_strategy() -> MemclrStrategy {
    detect::cached()
}

/// Zero `buf` with an explicit strategy, for benchmarks and tests that compare the code paths.
///
/// # Panics
/// If this CPU cannot run `strategy` (e.g. AVX2 without AVX2, or a `dc zva` block size other
/// than the one DCZID_EL0 reports).
#[doc(hidden)]
pub fn memclr_with(strategy: MemclrStrategy, buf: &mut [u8]) {
    assert!(detect::supports(strategy), "memclr_with: this CPU cannot run {strategy:?}");
    // SAFETY: a unique slice is valid for writes; the strategy was just checked.
    unsafe { clear_with(strategy, buf.as_mut_ptr(), buf.len()) }
}

/// Zero `[ptr, ptr + len)` the way `strategy` says.
///
/// # Safety
/// As [`memclr_raw`], and `detect::supports(strategy)`.
#[inline(always)]
unsafe fn clear_with(strategy: MemclrStrategy, ptr: *mut u8, len: usize) {
    match strategy {
        #[cfg(target_arch = "x86_64")]
        MemclrStrategy::Avx512 { rep_stosb_from, non_temporal_from, clzero_from } => {
            let stosb_from = rep_stosb_from.unwrap_or(usize::MAX);
            let clzero_from = clzero_from.unwrap_or(usize::MAX);
            // SAFETY: the range is the caller's; AVX-512F, and CLZERO if clzero_from is set, are
            // present (supports() checked them).
            unsafe {
                arch::splitstack_memclr_avx512(ptr, len, non_temporal_from, stosb_from, clzero_from)
            }
        }
        #[cfg(target_arch = "x86_64")]
        MemclrStrategy::Avx2 { non_temporal_from } => {
            // SAFETY: the range is the caller's; AVX2 is present (supports() checked it).
            unsafe { arch::splitstack_memclr_avx2(ptr, len, non_temporal_from) }
        }
        #[cfg(target_arch = "x86_64")]
        MemclrStrategy::Sse2 { rep_stosb_from, non_temporal_from } => {
            let stosb_from = rep_stosb_from.unwrap_or(usize::MAX);
            // SAFETY: the range is the caller's; SSE2 is x86-64's baseline.
            unsafe { arch::splitstack_memclr_sse2(ptr, len, non_temporal_from, stosb_from) }
        }
        #[cfg(target_arch = "aarch64")]
        MemclrStrategy::DcZva { block_size } => {
            // SAFETY: the range is the caller's (Rust memory is Normal memory); the block size
            // is DCZID_EL0's and dc zva is allowed (supports() checked both).
            unsafe { arch::splitstack_memclr_aarch64(ptr, len, block_size) }
        }
        #[cfg(target_arch = "aarch64")]
        MemclrStrategy::Stp => {
            // SAFETY: the range is the caller's; 0 means no dc zva.
            unsafe { arch::splitstack_memclr_aarch64(ptr, len, 0) }
        }
        #[allow(unreachable_patterns)] // every arm above is for the other architecture's variants
        _ => unreachable!("memclr: {strategy:?} is not a strategy of this architecture"),
    }
}

#[cfg(target_arch = "x86_64")]
mod detect {
    //! x86-64: AVX-512F/VL, AVX2 and ERMS from CPUID (through `std::is_x86_feature_detected!`),
    //! CLZERO from CPUID directly.
    use super::*;

    /// Non-temporal stores from this length up (AVX-512 without CLZERO, AVX2 and SSE2): half the
    /// L3 of the machine the numbers were measured on.
    ///
    /// Measured on a 2-vCPU AMD EPYC VM (Zen 4: avx2, avx512f, erms, fsrm, clzero; 32 MiB L3),
    /// clearing the same buffer over and over (hot), median of 15 interleaved rounds, GB/s:
    ///
    /// | size   | AVX2 cached | AVX2 non-temporal | glibc memset (rep stosb) |
    /// |--------|-------------|-------------------|--------------------------|
    /// | 4 MiB  | 76.7        | 56.2              | 71.7                     |
    /// | 6 MiB  | 77.7        | 56.1              | 55.0                     |
    /// | 8 MiB  | 73.9        | 54.9              | 51.6                     |
    /// | 12 MiB | 85.5        | 76.0              | 53.4                     |
    /// | 16 MiB | 67.6        | 74.5              | 45.3                     |
    /// | 32 MiB | 32.4        | 70.8              | 78.4                     |
    /// | 64 MiB | 26.9        | 54.3              | 59.4                     |
    ///
    /// So non-temporal stores win over cached ones from between 12 and 16 MiB when the buffer is
    /// hot (the VM shares its L3 with other tenants: run to run the numbers move by 10-20%).
    /// When the buffer is cold (not cached at all) they win from a few KiB, but a caller's
    /// buffer is usually hot, and a heap's spans that large are cleared through this threshold
    /// anyway. `rep stosb` is never the best choice here next to AVX2 (see REP_STOSB_FROM).
    ///
    /// The AVX-512 routine uses the same threshold for its `vmovntdq` zmm stores when the CPU
    /// has no CLZERO (Intel); the machine here has CLZERO, so that case is not measured, and the
    /// AVX-512 numbers are under CLZERO_FROM.
    pub(super) const NON_TEMPORAL_FROM: usize = 16 << 20;

    /// `clzero` from this length up in the AVX-512 routine, on CPUs that have it (AMD); below
    /// it, the 4 x 64-byte aligned loop through the cache.
    ///
    /// Measured on the machine above with `SPLITSTACK_MEMCLR_INTERLEAVED=1 cargo bench --bench
    /// memclr`: every contender takes a turn each round (who goes first rotates), median of 21
    /// rounds, GB/s. The other tenants kept the load average at 4-6 on the 2 vCPUs, so single
    /// cells move by 15-30% from run to run; this is one run, and the choices below held in all
    /// four runs made (the first with a draft that used zmm0 and `vzeroupper`) (glibc 2.36's memset is `rep stosb` from 2 KiB up at every size here):
    ///
    /// | size    | cached loop | `rep stosb` | non-temporal | `clzero` | glibc memset |
    /// |---------|-------------|-------------|--------------|----------|--------------|
    /// | 4 KiB   | 67.9        | 62.2        | 5.0          | 4.9      | 70.5         |
    /// | 64 KiB  | 102.7       | 105.5       | 49.2         | 50.1     | 110.6        |
    /// | 1 MiB   | 91.6        | 86.1        | 83.4         | 75.4     | 93.1         |
    /// | 8 MiB   | 77.9        | 79.0        | 56.8         | 60.8     | 73.2         |
    /// | 12 MiB  | 70.9        | 73.2        | 80.9         | 78.1     | 64.1         |
    /// | 16 MiB  | 46.0        | 55.2        | 70.6         | 61.5     | 41.7         |
    /// | 24 MiB  | 35.3        | 38.2        | 82.9         | 79.7     | 34.9         |
    /// | 32 MiB  | 27.0        | 45.1        | 77.8         | 74.3     | 47.6         |
    /// | 64 MiB  | 18.9        | 37.9        | 68.9         | 71.7     | 55.2         |
    /// | 128 MiB | 13.6        | 38.9        | 60.8         | 74.7     | 47.2         |
    /// | 256 MiB | 17.4        | 46.2        | 38.3         | 53.7     | 35.0         |
    ///
    /// At 64 MiB and up `clzero` beat non-temporal stores in all four runs (e.g. 128 MiB: 43.1
    /// vs 28.2, 75.6 vs 72.5, 64.8 vs 44.9, 74.7 vs 60.8); at 16-32 MiB the two tied (summed
    /// over the runs, 16 MiB 250 vs 255, 32 MiB 280 vs 280). At 12 MiB both beat the cached
    /// loop (runs: `clzero` 73.5, 70.6, 74.5, 78.1; cached 68.8, 64.2, 74.9, 70.9), at 8 MiB
    /// neither does. `rep stosb` (through this routine) never beat the loop by more than the
    /// noise while the buffer is cached (4 KiB: 66.9 vs 66.5, 65.6 vs 75.0, 66.2 vs 76.8, 62.2
    /// vs 67.9), so the AVX-512 routine does not use it either. Open: glibc's own `rep stosb`
    /// stays ahead of both at 4-8 KiB (a fifth run at load 2.6, 4 KiB: memset 100.2, loop
    /// 85.3, `rep stosb` through this routine 84.7), and why the same instruction on the same
    /// buffer is slower when reached through this routine is not yet understood.
    pub(super) const CLZERO_FROM: usize = 12 << 20;

    /// `rep stosb` from this length up in the SSE2 routine (for CPUs without AVX2), when the
    /// CPU has ERMS.
    ///
    /// Measured as above, both through the same forced-strategy call (GB/s, SSE2 loop vs
    /// `rep stosb`): 1 KiB 54.6 vs 45.2, 1.5 KiB 57.9 vs 56.3, 2 KiB 57.8 vs 63.2, 3 KiB 56.0 vs
    /// 76.3, 4 KiB 49.3 vs 69.7, 64 KiB 55.4 vs 81.6, 4 MiB 46.4 vs 71.1. The 16-byte loop is
    /// limited to about 55 GB/s; `rep stosb` pays 30-40 ns to start and then runs at the
    /// 32-byte loop's speed, so it takes over at 2 KiB (glibc's default threshold, too). Next
    /// to the AVX2 loop it never wins while the buffer is cached (4 KiB: 77.6 vs 69.7; 4 MiB:
    /// 76.7 vs 71.1), so the AVX2 routine does not use it.
    pub(super) const REP_STOSB_FROM: usize = 2048;

    /// 0: not yet detected; otherwise one of the codes below.
    static STRATEGY: AtomicU8 = AtomicU8::new(0);
    const AVX2: u8 = 1;
    const SSE2: u8 = 2;
    const SSE2_ERMS: u8 = 3;
    const AVX512: u8 = 4;
    const AVX512_CLZERO: u8 = 5;

    #[inline]
    pub(super) fn cached() -> MemclrStrategy {
        let code = match STRATEGY.load(Ordering::Relaxed) {
            0 => {
                let code = if has_avx512() && has_clzero() {
                    AVX512_CLZERO
                } else if has_avx512() {
                    AVX512
                } else if std::is_x86_feature_detected!("avx2") {
                    AVX2
                } else if std::is_x86_feature_detected!("ermsb") {
                    SSE2_ERMS
                } else {
                    SSE2
                };
                STRATEGY.store(code, Ordering::Relaxed);
                code
            }
            code => code,
        };
        match code {
            AVX512_CLZERO => MemclrStrategy::Avx512 {
                rep_stosb_from: None,
                non_temporal_from: NON_TEMPORAL_FROM,
                clzero_from: Some(CLZERO_FROM),
            },
            AVX512 => MemclrStrategy::Avx512 {
                rep_stosb_from: None,
                non_temporal_from: NON_TEMPORAL_FROM,
                clzero_from: None,
            },
            AVX2 => MemclrStrategy::Avx2 { non_temporal_from: NON_TEMPORAL_FROM },
            SSE2_ERMS => MemclrStrategy::Sse2 {
                rep_stosb_from: Some(REP_STOSB_FROM),
                non_temporal_from: NON_TEMPORAL_FROM,
            },
            _ => {
                MemclrStrategy::Sse2 { rep_stosb_from: None, non_temporal_from: NON_TEMPORAL_FROM }
            }
        }
    }

    /// AVX-512 as the routine uses it: F for the zmm stores, VL for the ymm16 stores.
    fn has_avx512() -> bool {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl")
    }

    /// 0: not yet read; 1: no CLZERO; 2: CLZERO.
    static CLZERO: AtomicU8 = AtomicU8::new(0);

    /// AMD's CLZERO: CPUID leaf 8000_0008h, EBX bit 0. std's feature macro does not know it, and
    /// CPUID is slow (in a VM it exits to the hypervisor), so the answer is cached.
    fn has_clzero() -> bool {
        use core::arch::x86_64::__cpuid;
        match CLZERO.load(Ordering::Relaxed) {
            0 => {
                let has =
                    __cpuid(0x8000_0000).eax >= 0x8000_0008 && __cpuid(0x8000_0008).ebx & 1 != 0;
                CLZERO.store(if has { 2 } else { 1 }, Ordering::Relaxed);
                has
            }
            code => code == 2,
        }
    }

    pub(super) fn supports(strategy: MemclrStrategy) -> bool {
        match strategy {
            MemclrStrategy::Avx512 { clzero_from, .. } => {
                has_avx512() && (clzero_from.is_none() || has_clzero())
            }
            MemclrStrategy::Avx2 { .. } => std::is_x86_feature_detected!("avx2"),
            MemclrStrategy::Sse2 { .. } => true,
            _ => false,
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod detect {
    //! AArch64: the `dc zva` block size and permission from DCZID_EL0, which EL0 may read.
    use super::*;
    use core::arch::asm;

    /// usize::MAX: not yet read; 0: no dc zva; otherwise the block size in bytes.
    static ZVA_BLOCK: AtomicUsize = AtomicUsize::new(usize::MAX);

    /// DCZID_EL0 decoded: the block size in bytes if `dc zva` is allowed and the block is one the
    /// assembly handles (64..=2048 bytes; its head and tail loops step 64 bytes at a time).
    fn read_zva_block() -> usize {
        let dczid: u64;
        // SAFETY: DCZID_EL0 is readable at EL0 by definition; the read has no side effects.
        unsafe {
            asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack, preserves_flags))
        };
        let prohibited = dczid & 0x10 != 0; // bit 4, DZP
        let block = 4usize << (dczid & 0xf); // bits 3:0, BS: log2 of the size in 4-byte words
        if prohibited || !(64..=2048).contains(&block) {
            0
        } else {
            block
        }
    }

    #[inline]
    fn zva_block() -> usize {
        match ZVA_BLOCK.load(Ordering::Relaxed) {
            usize::MAX => {
                let block = read_zva_block();
                ZVA_BLOCK.store(block, Ordering::Relaxed);
                block
            }
            block => block,
        }
    }

    #[inline]
    pub(super) fn cached() -> MemclrStrategy {
        match zva_block() {
            0 => MemclrStrategy::Stp,
            block_size => MemclrStrategy::DcZva { block_size },
        }
    }

    pub(super) fn supports(strategy: MemclrStrategy) -> bool {
        match strategy {
            MemclrStrategy::DcZva { block_size } => block_size != 0 && block_size == zva_block(),
            MemclrStrategy::Stp => true,
            _ => false,
        }
    }
}
