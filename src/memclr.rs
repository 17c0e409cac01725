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
    //! x86-64: AVX2 and ERMS from CPUID (through `std::is_x86_feature_detected!`).
    use super::*;

    /// Non-temporal stores from this length up (both AVX2 and SSE2): half the L3 of the machine
    /// the numbers were measured on.
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
    pub(super) const NON_TEMPORAL_FROM: usize = 16 << 20;

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

    #[inline]
    pub(super) fn cached() -> MemclrStrategy {
        let code = match STRATEGY.load(Ordering::Relaxed) {
            0 => {
                let code = if std::is_x86_feature_detected!("avx2") {
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

    pub(super) fn supports(strategy: MemclrStrategy) -> bool {
        match strategy {
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
