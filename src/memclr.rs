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
    /// x86-64 with AVX-512F, BW and VL: 64-byte stores (one cache line each) through the cache,
    /// byte-masked where the range starts or ends inside a line; for ranges of at least
    /// `non_temporal_from` bytes, non-temporal `vmovntdq` stores and an `sfence`, or, from
    /// `clzero_from`, AMD's `clzero`, which zeroes a whole line without reading it; and `rep
    /// stosb` from `rep_stosb_from` below those.
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
    // SAFETY: the caller's contract.
    unsafe { detect::clear(ptr, len) }
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
///
/// Inlined, with the feature detection and the panic out of line, so that a benchmark of a code
/// path through here pays for the check (a load and a test or two) and little else. With them
/// in its frame it cost 4 ns of a 4 KiB clear with the vector loop and 7 ns with `rep stosb`
/// (0.86 times memset where a direct call of the same assembly ran at 1.00); now the loop
/// through here runs within 1% of a direct call, `rep stosb` still 5-10% behind one at 4-8 KiB.
#[doc(hidden)]
#[inline]
pub fn memclr_with(strategy: MemclrStrategy, buf: &mut [u8]) {
    if detect::supports_if_read(strategy) {
        // SAFETY: a unique slice is valid for writes; the strategy was just checked.
        unsafe { clear_with(strategy, buf.as_mut_ptr(), buf.len()) }
    } else {
        memclr_with_first(strategy, buf)
    }
}

/// [`memclr_with`] when the CPU's features are not read yet, or do not support `strategy`.
#[cold]
#[inline(never)]
fn memclr_with_first(strategy: MemclrStrategy, buf: &mut [u8]) {
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
            // SAFETY: the range is the caller's; AVX-512F/BW/VL, and CLZERO if clzero_from is
            // set, are present (supports() checked them).
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
    //! x86-64: AVX-512F/BW/VL, AVX2 and ERMS from CPUID (through
    //! `std::is_x86_feature_detected!`), CLZERO from CPUID directly, all read once.
    use super::*;

    /// Non-temporal stores from this length up in the AVX2 and SSE2 routines: half the L3 of the
    /// machine the numbers were measured on.
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
    /// The AVX-512 routine has its own threshold, AVX512_NON_TEMPORAL_FROM.
    pub(super) const NON_TEMPORAL_FROM: usize = 16 << 20;

    /// Non-temporal `vmovntdq` zmm stores from this length up in the AVX-512 routine (up to
    /// CLZERO_FROM on CPUs with CLZERO); below it, the cached path (masked head and tail,
    /// aligned loop; see asm/memclr_x86_64_sysv.S). The routine's `rep stosb` path is not used
    /// (`rep_stosb_from` is `None`). Why, below; the numbers for CLZERO_FROM are here too.
    ///
    /// Measured on the machine above (glibc 2.36, whose memset there is
    /// `__memset_avx512_unaligned_erms`: `rep stosb` for every length over 2 KiB, its
    /// `__x86_rep_stosb_threshold`; it has no non-temporal path) with
    /// `SPLITSTACK_MEMCLR_INTERLEAVED=1 SPLITSTACK_MEMCLR_VARIANTS=1 cargo bench --bench memclr`:
    /// the buffer 16 bytes past a page boundary, as a large `Vec`'s is; every contender takes a
    /// turn each round, in a new order each round; median of 21 rounds, GB/s; the last column is
    /// the median over the rounds of memclr's speed over memset's in the same round. One run, at a
    /// load average of 1.5-2.0 (another build on the machine); the cells past 8 MiB move by 10-50%
    /// from run to run with the other tenants of the host (at 128 and 256 MiB this run caught a
    /// slow spell for every contender), the ratios below 8 MiB by 1-3%:
    ///
    /// | size    | memclr | memset | cached | `rep stosb` | non-temporal | `clzero` | ratio |
    /// |---------|--------|--------|--------|-------------|--------------|----------|-------|
    /// | 4 KiB   | 113.0  | 105.8  | 87.4   | 84.7        | 8.1          | 7.9      | 1.08  |
    /// | 8 KiB   | 116.1  | 109.4  | 100.0  | 98.6        | 14.6         | 15.2     | 1.05  |
    /// | 16 KiB  | 117.2  | 109.7  | 109.1  | 108.0       | 26.0         | 25.6     | 1.06  |
    /// | 64 KiB  | 113.7  | 114.9  | 113.1  | 113.2       | 57.6         | 55.0     | 0.99  |
    /// | 1 MiB   | 92.0   | 88.3   | 92.2   | 89.4        | 79.6         | 72.8     | 1.02  |
    /// | 4 MiB   | 89.2   | 83.7   | 85.6   | 90.1        | 74.6         | 75.7     | 1.00  |
    /// | 8 MiB   | 91.2   | 91.3   | 90.6   | 91.1        | 83.8         | 76.4     | 1.02  |
    /// | 12 MiB  | 81.5   | 67.4   | 67.8   | 64.8        | 82.0         | 77.8     | 1.21  |
    /// | 16 MiB  | 74.2   | 46.8   | 47.6   | 48.8        | 69.4         | 67.6     | 1.36  |
    /// | 32 MiB  | 79.7   | 53.9   | 27.2   | 28.1        | 78.9         | 76.0     | 1.20  |
    /// | 64 MiB  | 63.6   | 49.3   | 17.5   | 44.8        | 66.3         | 71.8     | 1.31  |
    /// | 128 MiB | 44.1   | 35.6   | 18.5   | 33.3        | 35.7         | 42.3     | 1.24  |
    /// | 256 MiB | 36.4   | 35.2   | 18.9   | 33.8        | 33.7         | 38.1     | 1.00  |
    ///
    /// (The cached, `rep stosb`, non-temporal and `clzero` columns are forced through
    /// `memclr_with`, which then cost 4-7 ns a call, 10-15% at 4 KiB: memclr's column is the
    /// cached path without that. `memclr_with` is cheaper now; see its comment.)
    ///
    /// - Up to 8 MiB the cached path. From 4 to 32 KiB it is the fastest thing measured: at 4-16
    ///   KiB 1.05 to 1.21 times memset in six runs with the buffer 16 bytes into a page, and 1.01
    ///   to 1.08 page-aligned (the previous version, with unaligned head and tail stores: 0.84-1.03
    ///   and 0.99-1.04); 1.03-1.04 at 32 KiB. From 64 KiB to 8 MiB memset, the loop and `rep stosb`
    ///   all run at what the cache hierarchy takes (L1 to L2 write-backs, then L2 to L3), and the
    ///   ratio is 1.00 within the noise, 0.96 to 1.08 in a run. `rep stosb` with its start on a
    ///   line (as this routine runs it) was never ahead of the loop by more than that noise, and is
    ///   behind it at 4-32 KiB. At 10 MiB the loop still beat non-temporal stores (84.6, 85.2, 89.6
    ///   against 82.5, 76.1, 87.0 in three runs); at 12 MiB they beat it (83.4, 82.1, 83.7 against
    ///   74.1, 73.9, 74.6).
    /// - From 12 MiB non-temporal stores, and from 128 MiB `clzero` where the CPU has it. `clzero`
    ///   against non-temporal stores, interleaved in one process (the previous version used
    ///   `clzero` from 12 MiB): at 12-64 MiB non-temporal stores were ahead in most runs, typically
    ///   by 5-10% (16 MiB: 85.1, 87.6, 83.6 against 79.0, 79.7, 77.9; 64 MiB, the last three runs:
    ///   81.0, 84.7, 80.8 against 77.8, 79.0, 76.8), `clzero` in a few (14 MiB, one batch of three
    ///   runs: 59 against 52). At 128 MiB the lead changed from run to run (`clzero` ahead by 7-20%
    ///   in three early runs, non-temporal stores by 5-9% in three later ones, within 3% in the
    ///   last five); at 256 MiB `clzero` was ahead in most (the last three: 59.6, 52.8, 69.1
    ///   against 55.6, 50.0, 65.1). Two interleaved `clzero` streams, alternating `clzero` and
    ///   non-temporal lines, and a software prefetch 1-16 pages ahead (to start the page walks
    ///   early) all measured within the same noise. Past the L3 every method here, and memset's
    ///   `rep stosb` when the host is quiet, writes at about 70-85 GB/s, one core's ceiling here,
    ///   so memclr's lead there is however far below that memset falls in a run.
    pub(super) const AVX512_NON_TEMPORAL_FROM: usize = 12 << 20;

    /// `clzero` from this length up in the AVX-512 routine, on CPUs that have it (AMD); below
    /// it, from AVX512_NON_TEMPORAL_FROM, non-temporal stores. Measurements: above.
    pub(super) const CLZERO_FROM: usize = 128 << 20;

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

    /// Zero `[ptr, ptr + len)` with the detected strategy: [`memclr_raw`]'s whole body.
    ///
    /// After the first call this is one load, a jump on it and a jump to the assembly with the
    /// thresholds as immediates: no frame, no feature check, no strategy value built and
    /// matched. It used to compile to the strategy load, a jump table, the strategy's fields
    /// rebuilt from it and six register saves and restores around the detection code, about
    /// 2 ns of a 4 KiB clear's 40 ns. Before a `rep stosb` such code costs in full: a string
    /// store does not start until the code before it has run (a bare `rep stosb` with an
    /// `lfence` and two loads in front measured 0.76 times glibc's memset at 4 KiB, with two
    /// stores in front 0.98-1.01), which is why `rep stosb` forced through `memclr_with` (then an
    /// out-of-line `supports` call on every call) measured 0.84 times memset at 4 KiB while a
    /// direct call of the same assembly measured 1.01.
    ///
    /// # Safety
    /// As [`memclr_raw`].
    #[inline(always)]
    pub(super) unsafe fn clear(ptr: *mut u8, len: usize) {
        // SAFETY (all arms): the range is the caller's; each code is stored only after its
        // features were found (detect_code), so the routine and its instructions exist.
        match STRATEGY.load(Ordering::Relaxed) {
            AVX512_CLZERO => unsafe {
                arch::splitstack_memclr_avx512(
                    ptr,
                    len,
                    AVX512_NON_TEMPORAL_FROM,
                    usize::MAX,
                    CLZERO_FROM,
                )
            },
            AVX512 => unsafe {
                arch::splitstack_memclr_avx512(
                    ptr,
                    len,
                    AVX512_NON_TEMPORAL_FROM,
                    usize::MAX,
                    usize::MAX,
                )
            },
            AVX2 => unsafe { arch::splitstack_memclr_avx2(ptr, len, NON_TEMPORAL_FROM) },
            SSE2_ERMS => unsafe {
                arch::splitstack_memclr_sse2(ptr, len, NON_TEMPORAL_FROM, REP_STOSB_FROM)
            },
            SSE2 => unsafe {
                arch::splitstack_memclr_sse2(ptr, len, NON_TEMPORAL_FROM, usize::MAX)
            },
            _ => unsafe { detect_and_clear(ptr, len) },
        }
    }

    /// The first call's path: detect, then clear. Out of line, so that the detection's calls do
    /// not give [`clear`] a frame.
    ///
    /// # Safety
    /// As [`memclr_raw`].
    #[cold]
    #[inline(never)]
    unsafe fn detect_and_clear(ptr: *mut u8, len: usize) {
        // SAFETY: the caller's contract; the strategy is one this CPU supports.
        unsafe { clear_with(strategy(code()), ptr, len) }
    }

    /// The strategy code for this CPU, detected (and stored) on first use.
    #[inline]
    fn code() -> u8 {
        match STRATEGY.load(Ordering::Relaxed) {
            0 => detect_code(),
            code => code,
        }
    }

    #[cold]
    fn detect_code() -> u8 {
        let features = features();
        let code = if features & F_AVX512 != 0 && features & F_CLZERO != 0 {
            AVX512_CLZERO
        } else if features & F_AVX512 != 0 {
            AVX512
        } else if features & F_AVX2 != 0 {
            AVX2
        } else if features & F_ERMS != 0 {
            SSE2_ERMS
        } else {
            SSE2
        };
        STRATEGY.store(code, Ordering::Relaxed);
        code
    }

    /// The strategy a code stands for, with its thresholds.
    fn strategy(code: u8) -> MemclrStrategy {
        match code {
            AVX512_CLZERO => MemclrStrategy::Avx512 {
                rep_stosb_from: None,
                non_temporal_from: AVX512_NON_TEMPORAL_FROM,
                clzero_from: Some(CLZERO_FROM),
            },
            AVX512 => MemclrStrategy::Avx512 {
                rep_stosb_from: None,
                non_temporal_from: AVX512_NON_TEMPORAL_FROM,
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

    #[inline]
    pub(super) fn cached() -> MemclrStrategy {
        strategy(code())
    }

    /// Bits of [`FEATURES`]: AVX-512 as the routine uses it (F for the zmm stores, BW for the
    /// byte-masked stores and `kmovq`, VL for the ymm16 stores), AMD's CLZERO, AVX2, ERMS; and
    /// one that says the others were read.
    const F_AVX512: u8 = 1;
    const F_CLZERO: u8 = 2;
    const F_AVX2: u8 = 4;
    const F_ERMS: u8 = 8;
    const F_READ: u8 = 0x80;

    /// The features above, 0 until read. CPUID is slow (in a VM it exits to the hypervisor),
    /// and `memclr_with` checks them on every call, so they are read once.
    static FEATURES: AtomicU8 = AtomicU8::new(0);

    #[inline]
    fn features() -> u8 {
        match FEATURES.load(Ordering::Relaxed) {
            0 => read_features(),
            features => features,
        }
    }

    #[cold]
    fn read_features() -> u8 {
        use core::arch::x86_64::__cpuid;
        let mut features = F_READ;
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
        {
            features |= F_AVX512;
        }
        // CLZERO: CPUID leaf 8000_0008h, EBX bit 0; std's feature macro does not know it.
        if __cpuid(0x8000_0000).eax >= 0x8000_0008 && __cpuid(0x8000_0008).ebx & 1 != 0 {
            features |= F_CLZERO;
        }
        if std::is_x86_feature_detected!("avx2") {
            features |= F_AVX2;
        }
        if std::is_x86_feature_detected!("ermsb") {
            features |= F_ERMS;
        }
        FEATURES.store(features, Ordering::Relaxed);
        features
    }

    pub(super) fn supports(strategy: MemclrStrategy) -> bool {
        supports_with(features(), strategy)
    }

    /// [`supports`] without reading the features: false until they are read.
    #[inline]
    pub(super) fn supports_if_read(strategy: MemclrStrategy) -> bool {
        supports_with(FEATURES.load(Ordering::Relaxed), strategy)
    }

    #[inline]
    fn supports_with(features: u8, strategy: MemclrStrategy) -> bool {
        match strategy {
            MemclrStrategy::Avx512 { clzero_from, .. } => {
                features & F_AVX512 != 0 && (clzero_from.is_none() || features & F_CLZERO != 0)
            }
            MemclrStrategy::Avx2 { .. } => features & F_AVX2 != 0,
            MemclrStrategy::Sse2 { .. } => features & F_READ != 0,
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

    /// Zero `[ptr, ptr + len)` with the detected strategy: [`memclr_raw`]'s whole body.
    ///
    /// # Safety
    /// As [`memclr_raw`].
    #[inline(always)]
    pub(super) unsafe fn clear(ptr: *mut u8, len: usize) {
        // SAFETY: the caller's contract; the strategy is the one detected for this CPU.
        unsafe { clear_with(cached(), ptr, len) }
    }

    #[inline]
    pub(super) fn cached() -> MemclrStrategy {
        match zva_block() {
            0 => MemclrStrategy::Stp,
            block_size => MemclrStrategy::DcZva { block_size },
        }
    }

    /// [`supports`]; the block size is read once either way.
    #[inline]
    pub(super) fn supports_if_read(strategy: MemclrStrategy) -> bool {
        supports(strategy)
    }

    pub(super) fn supports(strategy: MemclrStrategy) -> bool {
        match strategy {
            MemclrStrategy::DcZva { block_size } => block_size != 0 && block_size == zva_block(),
            MemclrStrategy::Stp => true,
            _ => false,
        }
    }
}
