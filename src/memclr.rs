//! memclr: zero memory faster than `memset` where it matters for a heap, i.e. for whole spans of
//! pages, by choosing the store instructions per CPU once and per size on every call.
//!
//! The routines are in `asm/memclr_*.S` (declared in `src/arch/mod.rs`); this file detects the
//! CPU's features once, caches the choice in an atomic, and passes the size thresholds to the
//! assembly. Each threshold says below why it lies where it does; the figures it rests on are in
//! the README's memclr tables, which `SPLITSTACK_MEMCLR_INTERLEAVED=1 SPLITSTACK_MEMCLR_VARIANTS=1
//! cargo bench --bench memclr` reproduces. [`MemclrStrategy`] reports the choice.

use crate::arch;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
use std::sync::atomic::{AtomicBool, AtomicU8};

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
    /// RISC-V 64 whose AT_HWCAP reports the vector extension (V, RVV 1.0): `vse8.v` stores over a
    /// group of eight vector registers, each as many bytes as `vsetvli` grants (at most
    /// `8 * vlenb`), with no alignment needed at either edge.
    Rvv {
        /// VLENB: the bytes of one vector register, as the CPU reports it.
        vlenb: usize,
    },
    /// RISC-V 64 without V: aligned 64-byte runs of `sd` stores, byte stores at the unaligned
    /// edges (a misaligned store may trap into the kernel's emulation).
    Sd,
    /// 32-bit ARM whose AT_HWCAP reports NEON: 32-byte `vst1.8 {d0-d3}` stores, aligned to 32
    /// bytes in the bulk, unaligned at the head and tail.
    Neon,
    /// 32-bit ARM without NEON: 32-byte VFP `vstmia {d0-d3}` stores from a word-aligned address
    /// (every CPU of the hard-float target has VFP), word stores at the edges.
    Vfp,
}

/// Zero every byte of `buf`.
///
/// Short buffers take a few overlapping stores; long ones the fastest bulk stores this CPU has
/// (see [`memclr_strategy`]). Large buffers may be written with non-temporal stores, which leave
/// them out of the cache: from the strategy's `non_temporal_from`; and on x86, from a little
/// more than the L1 data cache's size, a buffer found cold (which cached stores would read line
/// by line first): its first 8 KiB, cleared through the cache, took as long as from memory,
/// and a timed load of one of its lines (of four from 512 KiB) came from memory too.
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

/// Zero `len` bytes from `ptr` that are most likely in none of the caches (a heap's span freed
/// long ago): as [`memclr_raw`], but with non-temporal stores from [`COLD_NON_TEMPORAL_FROM`]
/// bytes on, which write a line without reading it first. The caller's guess costs little when
/// wrong in the cold direction (cached stores, at most twice as slow) and much in the other
/// (non-temporal stores on a hot 64 KiB ran at a quarter of the cached loop's speed), so a
/// caller asks for this only on good evidence; the heaps ask after more bytes were handed out
/// since the memory was freed than [`cold_after`] says.
///
/// # Safety
/// As [`memclr_raw`].
#[inline]
pub(crate) unsafe fn memclr_cold_raw(ptr: *mut u8, len: usize) {
    // SAFETY: the caller's contract.
    unsafe { detect::clear_cold(ptr, len) }
}

/// The least length [`memclr_cold_raw`] clears with non-temporal stores. Cold, they were ahead
/// of the cached loop from 16 KiB (Intel Xeon: 1.1x at 16 KiB, 1.7x at 64 KiB; the README's
/// memclr tables); hot, they trailed it by 1.5-4x from 64 KiB to 8 MiB, and by 15x and more
/// below 64 KiB, where a buffer can still sit in the L1. 64 KiB keeps a wrong guess's cost to the
/// smaller factor.
pub(crate) const COLD_NON_TEMPORAL_FROM: usize = 64 << 10;

/// Bytes a heap hands out after freeing memory, past which it takes that memory to have left
/// the caches: the non-temporal threshold, the share of the last-level cache this thread can
/// count on ([`detect`]'s `derive`). `usize::MAX` where the cold path is the ordinary one
/// (AArch64's `dc zva` reads no line either way; RISC-V has no non-temporal store).
pub(crate) fn cold_after() -> usize {
    detect::cold_after()
}

/// The strategy [`memclr`] uses on this CPU, detected on first use.
#[inline]
pub fn memclr_strategy() -> MemclrStrategy {
    detect::cached()
}

/// Zero `buf` with an explicit strategy, for benchmarks and tests that compare the code paths.
///
/// # Panics
/// If this CPU cannot run `strategy` (e.g. AVX2 without AVX2, a `dc zva` block size other
/// than the one DCZID_EL0 reports, RVV on a RISC-V CPU without V, or NEON on a 32-bit ARM CPU
/// whose AT_HWCAP does not report it).
///
/// Inlined, with the feature detection and the panic out of line, so that a benchmark of a code
/// path through here pays for the check (a load and a test or two) and little else: a frame, a
/// call or saved registers in front of the assembly would be charged to the path it measures,
/// and in front of a `rep stosb` in full (see `detect::clear`). What the check costs against a
/// direct call is in the README's section "memclr's thresholds".
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
        #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
        MemclrStrategy::Sse2 { rep_stosb_from, non_temporal_from } => {
            let stosb_from = rep_stosb_from.unwrap_or(usize::MAX);
            // SAFETY: the range is the caller's; SSE2 is x86-64's baseline, and the build script
            // refuses a 32-bit x86 target without it.
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
        #[cfg(target_arch = "riscv64")]
        MemclrStrategy::Rvv { .. } => {
            // SAFETY: the range is the caller's; AT_HWCAP reports V (supports() checked it).
            unsafe { arch::splitstack_memclr_rvv(ptr, len) }
        }
        #[cfg(target_arch = "riscv64")]
        MemclrStrategy::Sd => {
            // SAFETY: the range is the caller's; the routine is RV64GC only.
            unsafe { arch::splitstack_memclr_riscv64(ptr, len) }
        }
        #[cfg(target_arch = "arm")]
        MemclrStrategy::Neon => {
            // SAFETY: the range is the caller's; the CPU has NEON (supports() checked it).
            unsafe { arch::splitstack_memclr_arm(ptr, len, 1) }
        }
        #[cfg(target_arch = "arm")]
        MemclrStrategy::Vfp => {
            // SAFETY: the range is the caller's; 0 means no NEON, and VFP is the target's.
            unsafe { arch::splitstack_memclr_arm(ptr, len, 0) }
        }
        #[allow(unreachable_patterns)] // every arm above is for the other architecture's variants
        _ => unreachable!("memclr: {strategy:?} is not a strategy of this architecture"),
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
mod detect {
    //! x86-64: AVX-512F/BW/VL, AVX2 and ERMS from CPUID (through
    //! `std::is_x86_feature_detected!`), CLZERO from CPUID directly, all read once. 32-bit x86
    //! has only the SSE2 routine (asm/memclr_x86_sysv.S), so there the vector features are not
    //! read, and the same rules give its thresholds.
    use super::*;
    #[cfg(target_arch = "x86")]
    use core::arch::x86::{__cpuid, __cpuid_count};
    #[cfg(target_arch = "x86_64")]
    use core::arch::x86_64::{__cpuid, __cpuid_count};

    /// What CPUID says of the caches: the last-level cache's size and how many logical
    /// processors share it (0 and 1 where it says nothing), and the L1 data cache's size (0
    /// where it says nothing).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) struct CacheInfo {
        pub(super) llc_bytes: usize,
        pub(super) llc_sharing: usize,
        pub(super) l1d_bytes: usize,
    }

    /// The size thresholds of the routines, derived by [`derive`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) struct Thresholds {
        pub(super) non_temporal_from: usize,
        pub(super) rep_stosb_from: Option<usize>,
        pub(super) clzero_from: Option<usize>,
        pub(super) timed_from: usize,
    }

    /// The least non-temporal threshold: a CPU whose CPUID reports no last-level cache (or an
    /// implausibly small one) still clears through the cache as far as any x86-64 CPU's L2
    /// reaches.
    const NON_TEMPORAL_FLOOR: usize = 1 << 20;

    /// The L1 data cache [`derive`] assumes where CPUID reports none: the largest of the x86
    /// cores this crate has met or read of (AMD's K8 to K10 had 64 KiB).
    const L1D_UNKNOWN: usize = 64 << 10;

    /// The thresholds for a CPU with `cache` and `features` (bits of [`FEATURES`]).
    ///
    /// - **Non-temporal stores from three quarters of this thread's share of the last-level
    ///   cache** (its size over the logical processors that share it), glibc's
    ///   `__x86_shared_non_temporal_threshold` from 2.33 to 2.37 (and its lower bound since),
    ///   which Debian 12's memset computes too. Below it a cleared buffer is likely to stay in the
    ///   cache for its next use and cached stores keep it there; above it they evict what they
    ///   wrote themselves, and non-temporal stores, which go around the cache, write faster. A
    ///   fixed threshold is wrong on some CPU: 16 MiB lost 0.85x against memset on a hot buffer on
    ///   an Intel Xeon with a 480 MiB L3, where this rule gives 180 MiB. A VM's share of a
    ///   host's cache can be smaller than CPUID says (the README's tables show one where hot
    ///   buffers of 64 MiB already clear at memory speed); then this rule clears them as fast as
    ///   memset does, not faster, which no rule that trusts CPUID can avoid.
    /// - **No `rep stosb` in the AVX-512 routine, on any vendor**: beside its 64-byte loop it was
    ///   behind at 2-8 KiB hot and never ahead cold (Zen 4 and an Intel Xeon, the README's
    ///   tables). The SSE2 routine uses it from [`REP_STOSB_FROM`] where CPUID reports ERMS.
    /// - **`clzero` from the size of the whole last-level cache** (and not below the
    ///   non-temporal threshold) on AMD's CPUs that have it: past it nothing of the buffer stays
    ///   cached whichever way it is written, and `clzero`, one instruction a line and no read,
    ///   was ahead of non-temporal stores there (Zen 4).
    /// - **The timed head from the L1 data cache's size plus the head**
    ///   ([`probe::HEAD`]), and not below the head plus [`probe::LINES_FROM`]: a range
    ///   that long cannot have its head in the L1 after its last clear, since that clear wrote
    ///   the head first and at least the L1's size after it. From the L2 on, a cached clear
    ///   runs at a fraction of the L1's speed, and the head's two timer reads hide in it (1.00x
    ///   from 56 KiB on the Intel Xeon of the README's tables, whose L1d is 48 KiB); from the
    ///   L1, a hot 16 KiB clear takes 70 ns, and the timer reads cost it a quarter (0.76x).
    ///
    /// The README's "memclr's thresholds" gives the measurements behind each rule.
    pub(super) fn derive(cache: CacheInfo, features: u8) -> Thresholds {
        let share = cache.llc_bytes / cache.llc_sharing.max(1);
        let non_temporal_from = (share / 4 * 3).max(NON_TEMPORAL_FLOOR);
        let erms = features & F_ERMS != 0;
        // Only the SSE2 routine: the AVX-512 loop beats it, the AVX2 routine has no such path.
        let rep_stosb_from =
            (features & (F_AVX512 | F_AVX2) == 0 && erms).then_some(REP_STOSB_FROM);
        let clzero_from = (features & F_AVX512 != 0 && features & F_CLZERO != 0)
            .then_some(cache.llc_bytes.max(non_temporal_from));
        let l1d = if cache.l1d_bytes == 0 { L1D_UNKNOWN } else { cache.l1d_bytes };
        let timed_from = (l1d + probe::HEAD).max(probe::HEAD + probe::LINES_FROM);
        Thresholds { non_temporal_from, rep_stosb_from, clzero_from, timed_from }
    }

    /// The caches as CPUID describes them: Intel's deterministic cache parameters (leaf 4) or
    /// AMD's (leaf 8000_001Dh, where CPUID reports TOPOEXT), the highest level listed and the
    /// level 1 data cache; the C library's `sysconf` view of each where neither answers.
    fn read_cache_info() -> CacheInfo {
        // Leaves above the maximum the CPU reports are not asked.
        let vendor = __cpuid(0);
        let intel = (vendor.ebx, vendor.edx, vendor.ecx) == (0x756e_6547, 0x4965_6e69, 0x6c65_746e);
        let max_basic = vendor.eax;
        let max_extended = __cpuid(0x8000_0000).eax;
        let topoext = max_extended >= 0x8000_001d && __cpuid(0x8000_0001).ecx & (1 << 22) != 0;
        let leaf = if intel && max_basic >= 4 {
            Some(4)
        } else if !intel && topoext {
            Some(0x8000_001d)
        } else {
            None
        };
        let mut info = CacheInfo { llc_bytes: 0, llc_sharing: 1, l1d_bytes: 0 };
        let mut llc_level = 0;
        for subleaf in 0..16 {
            let Some(leaf) = leaf else { break };
            let r = __cpuid_count(leaf, subleaf);
            let kind = r.eax & 0x1f; // 0: no more; 1: data; 2: instruction; 3: unified
            if kind == 0 {
                break;
            }
            let level = (r.eax >> 5) & 7;
            let ways = ((r.ebx >> 22) & 0x3ff) as usize + 1;
            let partitions = ((r.ebx >> 12) & 0x3ff) as usize + 1;
            let line = (r.ebx & 0xfff) as usize + 1;
            let sets = r.ecx as usize + 1;
            let bytes = ways * partitions * line * sets;
            if level == 1 && kind == 1 {
                info.l1d_bytes = bytes;
            }
            if kind != 2 && level >= llc_level {
                info.llc_bytes = bytes;
                info.llc_sharing = ((r.eax >> 14) & 0xfff) as usize + 1;
                llc_level = level;
            }
        }
        // SAFETY: sysconf only reads.
        let sysconf = |name| usize::try_from(unsafe { libc::sysconf(name) }).unwrap_or(0);
        if info.llc_bytes == 0 {
            info.llc_bytes = sysconf(libc::_SC_LEVEL3_CACHE_SIZE);
        }
        if info.l1d_bytes == 0 {
            info.l1d_bytes = sysconf(libc::_SC_LEVEL1_DCACHE_SIZE);
        }
        info
    }

    /// `rep stosb` from this length up in the SSE2 routine (for CPUs without AVX2), when CPUID
    /// reports ERMS (leaf 7, EBX bit 9: the fast-string microcode for `rep stosb`); not in the
    /// AVX-512 routine (see [`derive`]).
    ///
    /// A `rep stosb` pays a fixed cost to start and then writes faster than 16-byte stores can,
    /// so it wins from some length on: the constant is where it overtook the SSE2 loop on the
    /// machine measured, and glibc's default `__x86_rep_stosb_threshold` too. Next to the AVX2
    /// loop it never wins while the buffer is cached, so the AVX2 routine does not use it. The
    /// figures: the README's "memclr's thresholds".
    pub(super) const REP_STOSB_FROM: usize = 2048;

    /// 0: not yet detected; otherwise one of the codes below, the routine the thresholds go to.
    static STRATEGY: AtomicU8 = AtomicU8::new(0);
    const AVX2: u8 = 1;
    const SSE2: u8 = 2;
    const AVX512: u8 = 4;

    /// The detected thresholds ([`derive`]), stored before [`STRATEGY`]; `usize::MAX` for a path
    /// not used.
    static NON_TEMPORAL: AtomicUsize = AtomicUsize::new(usize::MAX);
    static STOSB: AtomicUsize = AtomicUsize::new(usize::MAX);
    static CLZERO: AtomicUsize = AtomicUsize::new(usize::MAX);
    /// The least length [`clear`] hands to [`clear_large`]: where the [`probe`] starts (the
    /// derived `timed_from`, or [`probe::LINES_ONLY_FROM`] where the head's time tells
    /// nothing), else the non-temporal threshold; `usize::MAX` until detection.
    static LARGE: AtomicUsize = AtomicUsize::new(usize::MAX);
    /// Whether the [`probe`] runs: the TSC tells a load from memory from one from the cache.
    static PROBING: AtomicBool = AtomicBool::new(false);

    /// Zero `[ptr, ptr + len)` with the detected strategy: [`memclr_raw`]'s whole body.
    ///
    /// After the first call this is a load of the code, a test of the length against
    /// [`LARGE`], a jump on the code, the thresholds' loads and a jump to the assembly: no
    /// frame, no feature check, no strategy value built and matched, and the detection and the
    /// probe out of line ([`detect_and_clear`], [`clear_large`]), so that their calls give this
    /// no frame. A clear of a few KiB takes tens of nanoseconds, so every instruction in
    /// front of the assembly shows in it, and in front of a `rep stosb` in full: a string store
    /// does not start until the code before it has run (the README's "memclr's thresholds" gives
    /// what a few loads in front of one cost).
    ///
    /// # Safety
    /// As [`memclr_raw`].
    #[inline(always)]
    pub(super) unsafe fn clear(ptr: *mut u8, len: usize) {
        // The thresholds were stored before the code (detect_code), which is read with Acquire.
        let code = STRATEGY.load(Ordering::Acquire);
        let large = LARGE.load(Ordering::Relaxed);
        if len >= large {
            // SAFETY: the caller's contract; the code is the stored one, or 0 if another
            // thread stored LARGE after this one read the code, which `run` detects again.
            return unsafe { clear_large(ptr, len, code) };
        }
        // SAFETY: the caller's contract; the code is the stored one. Below `large` no range
        // takes non-temporal stores, so `large` serves as the threshold, in the register it is
        // already in.
        unsafe { run(code, ptr, len, large) }
    }

    /// [`clear`] from [`LARGE`] bytes: with non-temporal stores from the detected threshold;
    /// below it, where the [`probe`] runs, the head through the cache, timed, and the rest with
    /// non-temporal stores if the head and the rest look cold. Out of line, so that the probe
    /// gives short clears no frame.
    ///
    /// # Safety
    /// As [`memclr_raw`], and `code` is 0 or the one [`detect_code`] stored.
    #[inline(never)]
    unsafe fn clear_large(ptr: *mut u8, len: usize, code: u8) {
        let non_temporal = NON_TEMPORAL.load(Ordering::Relaxed);
        if len < non_temporal && PROBING.load(Ordering::Relaxed) {
            // SAFETY: the caller's contract: the range is valid for writes, so for the probe's
            // reads, and it is at least LARGE bytes long, which where the probe runs is at
            // least HEAD + LINES_FROM (derive, detect_code); `samples` is at most SAMPLES.
            unsafe {
                let ticks = probe::time_clear(code, ptr, probe::HEAD);
                let (rest, rest_len) = (ptr.add(probe::HEAD), len - probe::HEAD);
                let cold = probe::head_looks_cold(ticks)
                    && probe::looks_cold(rest, rest_len, probe::samples(len));
                // A cold rest is written without reads from its first byte on.
                return run(code, rest, rest_len, if cold { 0 } else { non_temporal });
            }
        }
        // SAFETY: the caller's contract; the code is the stored one.
        unsafe { run(code, ptr, len, non_temporal) }
    }

    /// [`memclr_cold_raw`]'s body: [`clear`] with the non-temporal threshold lowered to
    /// [`COLD_NON_TEMPORAL_FROM`].
    ///
    /// # Safety
    /// As [`memclr_raw`].
    pub(super) unsafe fn clear_cold(ptr: *mut u8, len: usize) {
        let code = code();
        let non_temporal = NON_TEMPORAL.load(Ordering::Relaxed).min(COLD_NON_TEMPORAL_FROM);
        // SAFETY: the caller's contract; the code is the detected one.
        unsafe { run(code, ptr, len, non_temporal) }
    }

    /// The routine of the detected `code` over `[ptr, ptr + len)`, with non-temporal stores from
    /// `non_temporal` bytes and the other detected thresholds; detection and the ordinary clear
    /// if `code` is 0, not yet detected. One match on the code, so that [`clear`] jumps once.
    ///
    /// # Safety
    /// As [`memclr_raw`], and `code` is 0 or the one [`detect_code`] stored.
    #[inline(always)]
    unsafe fn run(code: u8, ptr: *mut u8, len: usize, non_temporal: usize) {
        let stosb = || STOSB.load(Ordering::Relaxed);
        // SAFETY (all arms): the range is the caller's; each code is stored only after its
        // features were found (detect_code), so the routine and its instructions exist.
        match code {
            #[cfg(target_arch = "x86_64")]
            AVX512 => unsafe {
                let clzero = CLZERO.load(Ordering::Relaxed);
                arch::splitstack_memclr_avx512(ptr, len, non_temporal, stosb(), clzero)
            },
            #[cfg(target_arch = "x86_64")]
            AVX2 => unsafe { arch::splitstack_memclr_avx2(ptr, len, non_temporal) },
            SSE2 => unsafe { arch::splitstack_memclr_sse2(ptr, len, non_temporal, stosb()) },
            _ => unsafe { detect_and_clear(ptr, len) },
        }
    }

    /// [`cold_after`](super::cold_after): the detected non-temporal threshold.
    pub(super) fn cold_after() -> usize {
        code();
        NON_TEMPORAL.load(Ordering::Relaxed)
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
        let thresholds = derive(read_cache_info(), features);
        let code = if features & F_AVX512 != 0 {
            AVX512
        } else if features & F_AVX2 != 0 {
            AVX2
        } else {
            SSE2
        };
        NON_TEMPORAL.store(thresholds.non_temporal_from, Ordering::Relaxed);
        STOSB.store(thresholds.rep_stosb_from.unwrap_or(usize::MAX), Ordering::Relaxed);
        CLZERO.store(thresholds.clzero_from.unwrap_or(usize::MAX), Ordering::Relaxed);
        let large = match probe::calibrate(code) {
            probe::Calibrated::Head => thresholds.timed_from,
            probe::Calibrated::LinesOnly => probe::LINES_ONLY_FROM,
            probe::Calibrated::Nothing => usize::MAX,
        };
        PROBING.store(large != usize::MAX, Ordering::Relaxed);
        LARGE.store(large.min(thresholds.non_temporal_from), Ordering::Relaxed);
        STRATEGY.store(code, Ordering::Release);
        code
    }

    /// A range's temperature: whether a clear below the non-temporal threshold should write it
    /// with non-temporal stores all the same.
    ///
    /// Below that threshold a cleared buffer is likely to be cached for its next clear, and
    /// cached stores are the faster ones for it; but a buffer that left the caches is read line
    /// by line before cached stores can write it, and non-temporal stores, which read nothing,
    /// cleared a cold 64 KiB and a cold 1 MiB 1.9x faster than cached ones (Intel Xeon, the
    /// README's memclr tables). `memclr` is told nothing of the buffer, so it asks in two steps:
    ///
    /// - It clears the range's first [`HEAD`](probe::HEAD) bytes through the cache and reads
    ///   the TSC before and after. From the L1 or the L2 that takes a few hundred ticks; when
    ///   the head's lines must come from farther away, several times as many: the last stores
    ///   wait for the first ones' reads. A fast head ends the probe, and the rest is cleared
    ///   through the cache: the two timer reads hide in the clear (1.00x on a hot range from
    ///   the L2).
    /// - A slow head came from the last-level cache or from memory, which the head's time
    ///   does not tell apart on every machine (an 8 KiB head from the L3 of the Intel Xeon
    ///   guest took 1,000 ticks, as from memory). The latency of a load does
    ///   ([`looks_cold`](probe::looks_cold)): the rest is written with non-temporal stores
    ///   only when its lines come from memory, and a range in the L3 stays in it.
    pub(super) mod probe {
        use super::run;
        #[cfg(target_arch = "x86")]
        use core::arch::x86::{__cpuid, _mm_clflush, _mm_mfence, _rdtsc};
        #[cfg(target_arch = "x86_64")]
        use core::arch::x86_64::{__cpuid, _mm_clflush, _mm_mfence, _rdtsc};
        use std::sync::atomic::{AtomicU32, Ordering};

        /// The bytes cleared through the cache and timed first. More than any x86 core's store
        /// buffer holds (64 to 114 entries of at most 64 bytes: 7.1 KiB at most on the cores
        /// this crate has met or read of), so that the second timer read waits for the head's
        /// first stores to reach the cache: a timer read does not wait for stores, but it
        /// cannot issue until the store buffer has room for the stores before it.
        pub(in super::super) const HEAD: usize = 8 << 10;

        /// The least length [`looks_cold`] probes: [`SAMPLES`] parts of at least a page each,
        /// so that the page in the middle of each part, and its middle line, lie inside the
        /// range.
        pub(in super::super) const LINES_FROM: usize = 32 << 10;

        /// The least length probed where the head's time does not tell a cached range from a
        /// cold one ([`calibrate`]), and from which [`looks_cold`] times [`SAMPLES`] lines
        /// rather than one. Where only the lines are timed, every probed range pays for a
        /// line's latency, two fenced loads from the cache, 63 ns on the Intel Xeon of the
        /// README's tables. A hot buffer's clear runs at most at the core's store bandwidth to
        /// its L1 and L2, about 100 GB/s on the x86 CPUs of those tables, so from 512 KiB a
        /// cached clear takes 5 us or more (9 us on that Xeon, whose L2 took 57 GB/s) and the
        /// line costs about 1% of it at most (0.7% there). A cold range pays two memory
        /// latencies a line, so below 512 KiB, where they would show beside a cold clear (a
        /// cold 64 KiB clears in 4.5 us), one line is timed, and the slow head is the other
        /// witness.
        pub(in super::super) const LINES_ONLY_FROM: usize = 512 << 10;

        /// How many lines a probe of a range of [`LINES_ONLY_FROM`] bytes or more times.
        const SAMPLES: usize = 4;

        /// A load that takes at least this many TSC ticks came from memory: three quarters of a
        /// load from memory as [`calibrate`] measured it. A line in the last-level cache comes
        /// back in at most about half that: on the Intel Xeon guest of the README's tables
        /// (TSC at 2.6 GHz) loads from its L3 took 120-200 ticks and loads of flushed lines
        /// 354-1,024 (mostly 360-480); Zen's L3 is faster still next to its memory.
        static SLOW_TICKS: AtomicU32 = AtomicU32::new(u32::MAX);

        /// A head whose clear takes at least this many TSC ticks did not come from the L1 or
        /// the L2: the geometric mean of a head's clear from the L1 and after a flush, as
        /// [`calibrate`] measured them. On the Intel Xeon guest of the README's tables these
        /// took about 120 and 1,100-2,000 ticks, which puts the threshold at 400-500; a head
        /// from its L2 took 160-290 ticks, and a flushed head in the benchmark from 660 (mostly
        /// 1,000-1,500). A cached head taken for a slow one costs only a line's latency
        /// ([`looks_cold`]).
        static HEAD_SLOW_TICKS: AtomicU32 = AtomicU32::new(0);

        /// What [`calibrate`] found the TSC can tell.
        pub(in super::super) enum Calibrated {
            /// A flushed head's clear from a cached one, and a load from memory from a load
            /// from the cache.
            Head,
            /// Only the loads.
            LinesOnly,
            /// Neither: no probing.
            Nothing,
        }

        /// A line of its own for [`calibrate`] to flush and load.
        #[repr(C, align(64))]
        struct Line([u8; 64]);
        static LINE: Line = Line([0; 64]);

        /// The TSC ticks one load of the byte at `p` takes, fenced on both sides so that the
        /// timer reads see it alone. The load is the assembly's: whatever `p` holds is read
        /// as bytes, never as a Rust value.
        ///
        /// # Safety
        /// `p` is valid for a read of one byte.
        #[inline(always)]
        unsafe fn time_load(p: *const u8) -> u32 {
            let ticks: u32;
            // SAFETY: (forwarded) one byte read; rdtsc and lfence only read the timer and order.
            unsafe {
                core::arch::asm!(
                    "lfence",
                    "rdtsc",
                    "mov {start:e}, eax",
                    "lfence",
                    "movzx {byte:e}, byte ptr [{p}]",
                    "lfence",
                    "rdtsc",
                    "sub eax, {start:e}",
                    p = in(reg) p,
                    start = out(reg) _,
                    byte = out(reg) _,
                    out("eax") ticks,
                    out("edx") _,
                    options(nostack, readonly),
                );
            }
            ticks
        }

        /// The TSC ticks the routine of `code` takes to clear `[ptr, ptr + len)` through the
        /// cache, unfenced: the timer reads cost a hot clear next to nothing, and the second one
        /// waits for the stores that overflow the store buffer ([`HEAD`]).
        ///
        /// # Safety
        /// As [`memclr_raw`](super::super::memclr_raw), and `code` is 0 or the one
        /// `detect_code` stored or is about to store.
        #[inline(always)]
        pub(in super::super) unsafe fn time_clear(code: u8, ptr: *mut u8, len: usize) -> u32 {
            // SAFETY: rdtsc only reads the timer; the clear is the caller's.
            unsafe {
                let start = _rdtsc();
                run(code, ptr, len, usize::MAX);
                _rdtsc().wrapping_sub(start).min(u32::MAX.into()) as u32
            }
        }

        /// Whether a head's clear of `ticks` came from farther than the L2.
        #[inline(always)]
        pub(in super::super) fn head_looks_cold(ticks: u32) -> bool {
            ticks >= HEAD_SLOW_TICKS.load(Ordering::Relaxed)
        }

        /// Measures what the TSC can tell, the least of many tries of each so that an
        /// interrupt, or a neighbour's burst on a shared host, does not count: 64 loads from
        /// the L1 and 64 from memory, [`LINE`] flushed before each of the latter, which set
        /// [`SLOW_TICKS`]; then 32 clears of a [`HEAD`] of fresh pages by the routine of
        /// `code`, cached and flushed, which set [`HEAD_SLOW_TICKS`]. Once per process: the
        /// heads took 0.09-0.15 ms on the Intel Xeon guest of the README's tables, most of it in
        /// `clflush`, and a first memclr, which also reads CPUID, 0.27-0.40 ms. Each pair must
        /// differ by a factor of four, and the TSC must tick at a constant rate (CPUID
        /// 8000_0007h, EDX bit 8). Under a timer too coarse or emulated, or where `clflush`
        /// does nothing (an emulator, valgrind), the pairs do not differ. A calibration slowed
        /// all along errs on the safe side: with thresholds too high, cold ranges are cleared
        /// through the cache, as unprobed ones are.
        pub(in super::super) fn calibrate(code: u8) -> Calibrated {
            let invariant_tsc =
                __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0;
            if !invariant_tsc {
                return Calibrated::Nothing;
            }
            let line = LINE.0.as_ptr();
            let (mut cached, mut memory) = (u32::MAX, u32::MAX);
            for _ in 0..64 {
                // SAFETY: the line is a static's; clflush only evicts it, and the loads read it.
                unsafe {
                    _mm_clflush(line);
                    _mm_mfence();
                    memory = memory.min(time_load(line));
                    cached = cached.min(time_load(line));
                }
            }
            if memory / 4 < cached {
                return Calibrated::Nothing;
            }
            SLOW_TICKS.store(memory / 4 * 3, Ordering::Relaxed);
            match calibrate_head(code) {
                Some(slow) => {
                    HEAD_SLOW_TICKS.store(slow, Ordering::Relaxed);
                    Calibrated::Head
                }
                None => Calibrated::LinesOnly,
            }
        }

        /// [`calibrate`]'s head: the threshold, or None. The pages are mapped here, not taken
        /// from the allocator, which may be the caller clearing its first span.
        fn calibrate_head(code: u8) -> Option<u32> {
            // SAFETY: a fresh private anonymous mapping, checked below.
            let map = unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    HEAD,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if map == libc::MAP_FAILED {
                return None;
            }
            let head = map.cast::<u8>();
            let (mut cached, mut flushed) = (u32::MAX, u32::MAX);
            // SAFETY: the mapping is this function's, HEAD bytes, readable and writable; clflush
            // only evicts its lines.
            unsafe {
                run(code, head, HEAD, usize::MAX); // faults the pages in
                for _ in 0..32 {
                    for offset in (0..HEAD).step_by(64) {
                        _mm_clflush(head.add(offset));
                    }
                    _mm_mfence();
                    flushed = flushed.min(time_clear(code, head, HEAD));
                    // The flushed head's stores drain first, so that they slow no cached one.
                    _mm_mfence();
                    cached = cached.min(time_clear(code, head, HEAD));
                    _mm_mfence();
                }
                libc::munmap(map, HEAD);
            }
            // Halfway between the two in ratio: a head from the L2 takes about twice as long as
            // one from the L1, and a head from the L3 or memory several times as long.
            let slow = (u64::from(flushed) * u64::from(cached)).isqrt() as u32;
            (flushed / 4 >= cached).then_some(slow)
        }

        /// Whether most of `samples` lines spread over `[ptr, ptr + len)` came from memory:
        /// the first one, and three quarters of them in all ([`samples`]). A first line from
        /// the cache ends the probe, so that a hot range pays for one line only; a cold range
        /// whose first line happens to be cached is cleared through the cache, as an unprobed
        /// range is. Each is the middle line of a page whose first line is loaded first,
        /// untimed: that load walks the page tables if the TLB misses, which a clear that has
        /// just streamed through other pages makes likely, and a walk can take longer than the
        /// memory's latency. The clear that follows would have walked for the page anyway.
        ///
        /// # Safety
        /// The range is valid for reads and at least [`LINES_FROM`] bytes long, and `samples` is
        /// at most [`SAMPLES`].
        pub(in super::super) unsafe fn looks_cold(
            ptr: *const u8,
            len: usize,
            samples: usize,
        ) -> bool {
            const PAGE: usize = 4096;
            let slow = SLOW_TICKS.load(Ordering::Relaxed);
            let mut cold = 0;
            for i in 0..samples {
                // The page at the middle of each of `samples` equal parts: a part is at least a
                // page long, so the page starts inside the range, and its middle line lies
                // before the last part's end.
                let page = (ptr as usize + len / (2 * samples) * (2 * i + 1)) & !(PAGE - 1);
                // SAFETY: (forwarded) both bytes lie inside the range.
                let ticks = unsafe {
                    time_load(page as *const u8);
                    time_load((page + PAGE / 2) as *const u8)
                };
                if ticks >= slow {
                    cold += 1;
                } else if i == 0 {
                    return false;
                }
            }
            // At least three quarters: a hot range whose first line an interrupt slowed is
            // still found hot by the others.
            cold * 4 >= samples * 3
        }

        /// How many lines [`looks_cold`] times in a range of `len` bytes.
        #[inline(always)]
        pub(in super::super) fn samples(len: usize) -> usize {
            if len < LINES_ONLY_FROM {
                1
            } else {
                SAMPLES
            }
        }
    }

    /// The strategy a code stands for, with the detected thresholds.
    fn strategy(code: u8) -> MemclrStrategy {
        let non_temporal_from = NON_TEMPORAL.load(Ordering::Relaxed);
        let threshold = |atomic: &AtomicUsize| match atomic.load(Ordering::Relaxed) {
            usize::MAX => None,
            from => Some(from),
        };
        match code {
            AVX512 => MemclrStrategy::Avx512 {
                rep_stosb_from: threshold(&STOSB),
                non_temporal_from,
                clzero_from: threshold(&CLZERO),
            },
            AVX2 => MemclrStrategy::Avx2 { non_temporal_from },
            _ => MemclrStrategy::Sse2 { rep_stosb_from: threshold(&STOSB), non_temporal_from },
        }
    }

    #[inline]
    pub(super) fn cached() -> MemclrStrategy {
        strategy(code())
    }

    /// Bits of [`FEATURES`]: AVX-512 as the routine uses it (F for the zmm stores, BW for the
    /// byte-masked stores and `kmovq`, VL for the ymm16 stores), AMD's CLZERO, AVX2, ERMS; and
    /// one that says the others were read.
    pub(super) const F_AVX512: u8 = 1;
    pub(super) const F_CLZERO: u8 = 2;
    pub(super) const F_AVX2: u8 = 4;
    pub(super) const F_ERMS: u8 = 8;
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
        let mut features = F_READ;
        // The AVX-512 and AVX2 routines exist on x86-64 only.
        let x86_64 = cfg!(target_arch = "x86_64");
        if x86_64
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
        {
            features |= F_AVX512;
        }
        // CLZERO: CPUID leaf 8000_0008h, EBX bit 0; std's feature macro does not know it.
        if x86_64 && __cpuid(0x8000_0000).eax >= 0x8000_0008 && __cpuid(0x8000_0008).ebx & 1 != 0 {
            features |= F_CLZERO;
        }
        if x86_64 && std::is_x86_feature_detected!("avx2") {
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

/// A word the detection reads from the CPU or the kernel once, on first use (AArch64's `dc zva`
/// block size, RISC-V's VLENB, 32-bit ARM's NEON bit), `usize::MAX` until then. Two threads
/// that race to the first use both read it, and store the same word.
#[cfg(any(target_arch = "aarch64", target_arch = "riscv64", target_arch = "arm"))]
struct ReadOnce(AtomicUsize);

#[cfg(any(target_arch = "aarch64", target_arch = "riscv64", target_arch = "arm"))]
impl ReadOnce {
    const fn new() -> ReadOnce {
        ReadOnce(AtomicUsize::new(usize::MAX))
    }

    /// The word, which `read` (never returning `usize::MAX`) reads on first use.
    #[inline]
    fn get(&self, read: fn() -> usize) -> usize {
        match self.0.load(Ordering::Relaxed) {
            usize::MAX => {
                let word = read();
                self.0.store(word, Ordering::Relaxed);
                word
            }
            word => word,
        }
    }
}

/// The cold path and the strategy check of the targets with one way to clear a line whatever its
/// temperature (each `detect` module says why): the cold path is the ordinary one, no heap's
/// guess changes anything, and the features are read once either way.
#[cfg(any(target_arch = "aarch64", target_arch = "riscv64", target_arch = "arm"))]
mod one_path {
    use super::*;

    /// As `detect::clear`.
    ///
    /// # Safety
    /// As [`memclr_raw`].
    pub(super) unsafe fn clear_cold(ptr: *mut u8, len: usize) {
        // SAFETY: the caller's contract.
        unsafe { detect::clear(ptr, len) }
    }

    /// No size is cleared differently when cold.
    pub(super) fn cold_after() -> usize {
        usize::MAX
    }

    /// `detect::supports`.
    #[inline]
    pub(super) fn supports_if_read(strategy: MemclrStrategy) -> bool {
        detect::supports(strategy)
    }
}

#[cfg(target_arch = "aarch64")]
mod detect {
    //! AArch64: the `dc zva` block size and permission from DCZID_EL0, which EL0 may read.
    use super::*;
    use core::arch::asm;

    /// 0: no dc zva; otherwise the block size in bytes.
    static ZVA_BLOCK: ReadOnce = ReadOnce::new();

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
        ZVA_BLOCK.get(read_zva_block)
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

    // The cold path is the ordinary one: `dc zva` and `stp` of whole lines read nothing.
    pub(super) use super::one_path::{clear_cold, cold_after, supports_if_read};

    pub(super) fn supports(strategy: MemclrStrategy) -> bool {
        match strategy {
            MemclrStrategy::DcZva { block_size } => block_size != 0 && block_size == zva_block(),
            MemclrStrategy::Stp => true,
            _ => false,
        }
    }
}

#[cfg(target_arch = "riscv64")]
mod detect {
    //! RISC-V 64: the vector extension from AT_HWCAP (the bit of the letter V, as the kernel
    //! reports each single-letter extension), and VLENB from its CSR where V is there; both read
    //! once.
    use super::*;
    use core::arch::asm;

    /// AT_HWCAP's bit for V: bit `'V' - 'A'`.
    const HWCAP_V: libc::c_ulong = 1 << (b'V' - b'A');

    /// 0: no V; otherwise VLENB in bytes.
    static VLENB: ReadOnce = ReadOnce::new();

    /// VLENB if AT_HWCAP reports V, 0 otherwise. The kernel reports V only where it lets user
    /// code use it (it enables the vector unit on a thread's first vector instruction).
    fn read_vlenb() -> usize {
        // SAFETY: getauxval only reads the auxiliary vector.
        let hwcap = unsafe { libc::getauxval(libc::AT_HWCAP) };
        if hwcap & HWCAP_V == 0 {
            return 0;
        }
        let vlenb: usize;
        // SAFETY: V is present, so the VLENB CSR (0xc22, named by number: the crate is built
        // without V) is readable from user mode; the read has no side effects.
        unsafe { asm!("csrr {}, 0xc22", out(reg) vlenb, options(nomem, nostack, preserves_flags)) };
        vlenb
    }

    #[inline]
    fn vlenb() -> usize {
        VLENB.get(read_vlenb)
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
        match vlenb() {
            0 => MemclrStrategy::Sd,
            vlenb => MemclrStrategy::Rvv { vlenb },
        }
    }

    // The cold path is the ordinary one: neither RVV 1.0 nor RV64GC has a non-temporal store.
    pub(super) use super::one_path::{clear_cold, cold_after, supports_if_read};

    pub(super) fn supports(strategy: MemclrStrategy) -> bool {
        match strategy {
            MemclrStrategy::Rvv { vlenb: asked } => asked != 0 && asked == vlenb(),
            MemclrStrategy::Sd => true,
            _ => false,
        }
    }
}

#[cfg(target_arch = "arm")]
mod detect {
    //! 32-bit ARM: NEON from AT_HWCAP (the kernel's HWCAP_NEON), read once. The target's Rust
    //! code is built without NEON, so the NEON stores live in the assembly and run only where
    //! this says so.
    use super::*;

    /// AT_HWCAP's NEON bit on 32-bit ARM (the kernel's HWCAP_NEON).
    const HWCAP_NEON: usize = 1 << 12;

    /// 1 if the CPU has NEON, 0 if not: the word the assembly takes.
    static NEON: ReadOnce = ReadOnce::new();

    #[cold]
    fn read_neon() -> usize {
        // SAFETY: getauxval only reads the auxiliary vector.
        let hwcap = unsafe { libc::getauxval(libc::AT_HWCAP) } as usize;
        usize::from(hwcap & HWCAP_NEON != 0)
    }

    #[inline]
    fn neon() -> usize {
        NEON.get(read_neon)
    }

    /// Zero `[ptr, ptr + len)` with the detected strategy: [`memclr_raw`]'s whole body.
    ///
    /// # Safety
    /// As [`memclr_raw`].
    #[inline(always)]
    pub(super) unsafe fn clear(ptr: *mut u8, len: usize) {
        // SAFETY: the caller's contract; the word is 1 only where AT_HWCAP reports NEON.
        unsafe { arch::splitstack_memclr_arm(ptr, len, neon()) }
    }

    #[inline]
    pub(super) fn cached() -> MemclrStrategy {
        match neon() {
            0 => MemclrStrategy::Vfp,
            _ => MemclrStrategy::Neon,
        }
    }

    // The cold path is the ordinary one: there are no non-temporal stores to choose.
    pub(super) use super::one_path::{clear_cold, cold_after, supports_if_read};

    pub(super) fn supports(strategy: MemclrStrategy) -> bool {
        match strategy {
            MemclrStrategy::Neon => neon() != 0,
            MemclrStrategy::Vfp => true,
            _ => false,
        }
    }
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "x86")))]
mod tests {
    use super::detect::{derive, CacheInfo, Thresholds, F_AVX2, F_AVX512, F_CLZERO, F_ERMS};

    const AVX512_ERMS: u8 = F_AVX512 | F_ERMS;
    const AVX512_CLZERO_ERMS: u8 = F_AVX512 | F_CLZERO | F_ERMS;
    const AVX2_ERMS: u8 = F_AVX2 | F_ERMS;

    #[test]
    fn thresholds_follow_the_cache_cpuid_reports() {
        // An Intel Xeon as a two-vCPU guest: a 480 MiB L3 shared by 2.
        // A 48 KiB L1d: the head is timed from 56 KiB.
        let xeon = CacheInfo { llc_bytes: 480 << 20, llc_sharing: 2, l1d_bytes: 48 << 10 };
        assert_eq!(
            derive(xeon, AVX512_ERMS),
            Thresholds {
                non_temporal_from: 180 << 20,
                rep_stosb_from: None,
                clzero_from: None,
                timed_from: 56 << 10
            }
        );
        // Zen 4: 32 MiB of L3 per CCD shared by 16 threads, CLZERO, and a 32 KiB L1d, past
        // which the head and the lines after it need 40 KiB.
        let zen4 = CacheInfo { llc_bytes: 32 << 20, llc_sharing: 16, l1d_bytes: 32 << 10 };
        assert_eq!(
            derive(zen4, AVX512_CLZERO_ERMS),
            Thresholds {
                non_temporal_from: 3 << 19,
                rep_stosb_from: None,
                clzero_from: Some(32 << 20),
                timed_from: 40 << 10
            }
        );
        // The AVX2 routine has no rep stosb path; a CPU that reports no cache gets the floor,
        // and an L1d of 64 KiB.
        let silent = CacheInfo { llc_bytes: 0, llc_sharing: 1, l1d_bytes: 0 };
        assert_eq!(
            derive(silent, AVX2_ERMS),
            Thresholds {
                non_temporal_from: 1 << 20,
                rep_stosb_from: None,
                clzero_from: None,
                timed_from: 72 << 10
            }
        );
        // Without AVX2, `rep stosb` follows ERMS on any vendor.
        assert_eq!(derive(zen4, F_ERMS).rep_stosb_from, Some(2048));
        assert_eq!(derive(zen4, 0).rep_stosb_from, None);
    }
}
