//! memclr: every length 0..=4096 at every start alignment 0..64, random large lengths, for the
//! detected strategy and for every other code path this CPU can run (forced through
//! `memclr_with`, with thresholds forced low so that short lengths reach `rep stosb`,
//! non-temporal stores and `clzero`), with canaries on both sides, and long ranges flushed from
//! the caches before memclr probes them; and, on AArch64, the `dc zva` block size; on RISC-V,
//! the vector path chosen exactly when AT_HWCAP reports V.

mod common;

use common::Rng;
use splitstack::{memclr, memclr_raw, memclr_strategy, memclr_with, MemclrStrategy};

/// Bytes of canary on each side of the cleared range.
const CANARY: usize = 64;
/// The canary's value (and the value the cleared range starts with).
const FILL: u8 = 0xa5;

/// A buffer whose usable part starts 64-byte aligned, so that `offset` below is the alignment.
struct Arena {
    storage: Vec<u8>,
    base: usize,
}

impl Arena {
    fn new(max_len: usize) -> Arena {
        let storage = vec![FILL; max_len + 2 * CANARY + 64 + 64];
        let base = storage.as_ptr().align_offset(64);
        Arena { storage, base }
    }

    /// Fill `[start - CANARY, start + len + CANARY)` with FILL, clear `[start, start + len)` with
    /// `clear`, and check both the zeros and the canaries. `start` is 64-aligned plus `align`.
    fn check(&mut self, align: usize, len: usize, what: &str, clear: impl FnOnce(&mut [u8])) {
        let start = self.base + CANARY + align;
        let window = &mut self.storage[start - CANARY..start + len + CANARY];
        window.fill(FILL);
        clear(&mut window[CANARY..CANARY + len]);
        let (before, rest) = window.split_at(CANARY);
        let (cleared, after) = rest.split_at(len);
        if let Some(i) = cleared.iter().position(|&b| b != 0) {
            panic!("{what}: len {len} align {align}: byte {i} not cleared");
        }
        assert!(before.iter().all(|&b| b == FILL), "{what}: len {len} align {align}: wrote before");
        assert!(after.iter().all(|&b| b == FILL), "{what}: len {len} align {align}: wrote after");
    }
}

/// Every strategy this CPU can run, with thresholds forced low so that each code path (rep stosb,
/// non-temporal stores) is reached by short lengths too.
fn strategies() -> Vec<MemclrStrategy> {
    let mut all = vec![memclr_strategy()];
    #[cfg(target_arch = "x86_64")]
    {
        all.extend(avx512_strategies());
        if std::is_x86_feature_detected!("avx2") {
            all.push(MemclrStrategy::Avx2 { non_temporal_from: 0 });
            all.push(MemclrStrategy::Avx2 { non_temporal_from: usize::MAX });
        }
        all.push(MemclrStrategy::Sse2 { rep_stosb_from: None, non_temporal_from: usize::MAX });
        all.push(MemclrStrategy::Sse2 { rep_stosb_from: Some(0), non_temporal_from: usize::MAX });
        all.push(MemclrStrategy::Sse2 { rep_stosb_from: None, non_temporal_from: 0 });
    }
    // 32-bit x86 has the SSE2 routine only: each of its paths from the shortest length.
    #[cfg(target_arch = "x86")]
    {
        all.push(MemclrStrategy::Sse2 { rep_stosb_from: None, non_temporal_from: usize::MAX });
        all.push(MemclrStrategy::Sse2 { rep_stosb_from: Some(0), non_temporal_from: usize::MAX });
        all.push(MemclrStrategy::Sse2 { rep_stosb_from: None, non_temporal_from: 0 });
    }
    #[cfg(target_arch = "aarch64")]
    all.push(MemclrStrategy::Stp);
    #[cfg(target_arch = "arm")]
    all.extend(arm_strategies());
    // The scalar routine always; the vector one is the detected strategy where V is there.
    #[cfg(target_arch = "riscv64")]
    all.push(MemclrStrategy::Sd);
    all
}

/// The 32-bit ARM routine's paths this CPU can run: VFP always, NEON where AT_HWCAP says so.
#[cfg(target_arch = "arm")]
fn arm_strategies() -> Vec<MemclrStrategy> {
    let mut all = vec![MemclrStrategy::Vfp];
    if hwcap_neon() {
        all.push(MemclrStrategy::Neon);
    }
    all
}

/// AT_HWCAP's HWCAP_NEON (bit 12) on 32-bit ARM, read here independently of the crate.
#[cfg(target_arch = "arm")]
fn hwcap_neon() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector.
    unsafe { libc::getauxval(libc::AT_HWCAP) & (1 << 12) != 0 }
}

/// The AVX-512 routine's code paths, if this CPU has AVX-512F and VL: each bulk method alone from the
/// shortest length it takes (a threshold of 0 counts as the routine's minimum), and thresholds
/// inside 0..=4096, so that one sweep crosses from method to method.
#[cfg(target_arch = "x86_64")]
fn avx512_strategies() -> Vec<MemclrStrategy> {
    if !(std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl"))
    {
        return Vec::new();
    }
    let avx512 = |rep_stosb_from, non_temporal_from, clzero_from| MemclrStrategy::Avx512 {
        rep_stosb_from,
        non_temporal_from,
        clzero_from,
    };
    let mut all = vec![
        avx512(None, usize::MAX, None),
        avx512(Some(0), usize::MAX, None),
        avx512(None, 0, None),
        avx512(Some(1024), 2048, None),
    ];
    if has_clzero() {
        all.push(avx512(None, usize::MAX, Some(0)));
        all.push(avx512(Some(1024), 2048, Some(3072)));
    }
    all
}

/// AMD's CLZERO (CPUID 8000_0008h EBX bit 0), which std's feature macro does not know.
#[cfg(target_arch = "x86_64")]
fn has_clzero() -> bool {
    use core::arch::x86_64::__cpuid;
    __cpuid(0x8000_0000).eax >= 0x8000_0008 && __cpuid(0x8000_0008).ebx & 1 != 0
}

#[test]
fn every_length_to_4096_at_every_alignment_to_64() {
    let mut arena = Arena::new(4096 + 64);
    for len in 0..=4096 {
        for align in 0..64 {
            arena.check(align, len, "memclr", memclr);
        }
    }
}

#[test]
fn every_length_to_4096_on_every_code_path() {
    let mut arena = Arena::new(4096 + 64);
    for strategy in strategies() {
        let what = format!("{strategy:?}");
        for len in 0..=4096 {
            // Every alignment for the short lengths, a rotating pair for the rest.
            let aligns: Vec<usize> =
                if len <= 512 { (0..64).collect() } else { vec![len % 64, (len * 7 + 13) % 64] };
            for align in aligns {
                arena.check(align, len, &what, |buf| memclr_with(strategy, buf));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_every_length_to_4096_at_every_alignment_to_64() {
    let strategies = avx512_strategies();
    if strategies.is_empty() {
        println!("no AVX-512F on this CPU: nothing to test");
        return;
    }
    let mut arena = Arena::new(4096 + 64);
    for strategy in strategies {
        let what = format!("{strategy:?}");
        for len in 0..=4096 {
            for align in 0..64 {
                arena.check(align, len, &what, |buf| memclr_with(strategy, buf));
            }
        }
    }
}

/// Both 32-bit ARM paths (NEON where the CPU has it) over the whole sweep, whichever one the
/// detection picked: ci runs this under QEMU_CPU=cortex-a15 and cortex-a15,neon=off.
#[cfg(target_arch = "arm")]
#[test]
fn arm_every_length_to_4096_at_every_alignment_to_64() {
    let mut arena = Arena::new(4096 + 64);
    for strategy in arm_strategies() {
        let what = format!("{strategy:?}");
        for len in 0..=4096 {
            for align in 0..64 {
                arena.check(align, len, &what, |buf| memclr_with(strategy, buf));
            }
        }
    }
}

/// The detected 32-bit ARM strategy follows AT_HWCAP, and QEMU_CPU where qemu-user runs the
/// tests; NEON is refused with a message where the CPU lacks it.
#[cfg(target_arch = "arm")]
#[test]
fn arm_strategy_follows_hwcap_neon_and_qemu_cpu() {
    let strategy = memclr_strategy();
    let neon = hwcap_neon();
    println!("memclr strategy: {strategy:?}, AT_HWCAP NEON: {neon}");
    let expected = if neon { MemclrStrategy::Neon } else { MemclrStrategy::Vfp };
    assert_eq!(strategy, expected);
    match std::env::var("QEMU_CPU").as_deref() {
        Ok("cortex-a15,neon=off") => assert_eq!(strategy, MemclrStrategy::Vfp),
        Ok("cortex-a15" | "cortex-a9" | "cortex-a7" | "max") => {
            assert_eq!(strategy, MemclrStrategy::Neon)
        }
        _ => {}
    }
    if !neon {
        let mut buf = [0xa5u8; 100];
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            memclr_with(MemclrStrategy::Neon, &mut buf)
        }))
        .expect_err("memclr_with(Neon) on a CPU without NEON");
        let message = panic.downcast_ref::<String>().expect("a String message");
        assert!(message.contains("cannot run Neon"), "{message}");
        assert!(buf.iter().all(|&b| b == 0xa5), "the refused clear wrote");
    }
}

#[test]
fn random_large_lengths_and_alignments() {
    // Large enough to cross the non-temporal threshold and many dc zva blocks.
    const MAX: usize = 24 << 20;
    let mut arena = Arena::new(MAX);
    for seed in [1, 0x9e37_79b9_7f4a_7c15, 42] {
        let mut rng = Rng(seed);
        for _ in 0..8 {
            let len = 4097 + rng.below(MAX - 4097);
            let align = rng.below(64);
            arena.check(align, len, "memclr", memclr);
            for strategy in strategies() {
                arena.check(align, len, &format!("{strategy:?}"), |buf| memclr_with(strategy, buf));
            }
        }
    }
}

/// Ranges long enough for memclr to probe their temperature, from the shortest any L1 data
/// cache lets it probe (40 KiB) to those where it times four lines, flushed from the caches first
/// on x86-64 (where the probe then finds them cold, clears an 8 KiB head through the cache and
/// the rest with non-temporal stores) and left cached: zeroed exactly, canaries intact, either
/// way.
#[test]
fn probed_lengths_flushed_and_cached() {
    const MAX: usize = (6 << 20) + 4096;
    let mut arena = Arena::new(MAX);
    let lens = [
        40 << 10,
        (56 << 10) + 1,
        (72 << 10) + 63,
        (96 << 10) - 1,
        (256 << 10) + 4095,
        (512 << 10) - 1,
        512 << 10,
        (2 << 20) + 1,
        (5 << 20) + 4095,
        6 << 20,
    ];
    for (i, len) in lens.into_iter().enumerate() {
        for flushed in [true, false] {
            let align = [0, 1, 17, 63][i % 4];
            arena.check(align, len, &format!("memclr, flushed: {flushed}"), |buf| {
                #[cfg(target_arch = "x86_64")]
                if flushed {
                    for line in buf.chunks(64) {
                        // SAFETY: clflush only writes the line back and evicts it.
                        unsafe { core::arch::x86_64::_mm_clflush(line.as_ptr()) };
                    }
                    // SAFETY: a fence.
                    unsafe { core::arch::x86_64::_mm_mfence() };
                }
                memclr(buf)
            });
        }
    }
}

#[test]
fn memclr_raw_with_zero_length_does_not_touch_a_dangling_pointer() {
    // SAFETY: a zero-length clear touches nothing; a dangling, aligned pointer is allowed.
    unsafe { memclr_raw(core::ptr::NonNull::<u8>::dangling().as_ptr(), 0) };
}

#[test]
fn strategy_is_stable_and_reported() {
    let strategy = memclr_strategy();
    println!("memclr strategy: {strategy:?}");
    assert_eq!(strategy, memclr_strategy());
}

/// What a DC ZVA instruction actually zeroes: the block size measured by experiment, independent
/// of DCZID_EL0. None if DCZID_EL0 says DC ZVA is prohibited (executing it would fault).
#[cfg(target_arch = "aarch64")]
fn measured_zva_block() -> Option<usize> {
    let dczid: u64;
    // SAFETY: DCZID_EL0 is readable at EL0; no side effects.
    unsafe { core::arch::asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
    if dczid & 0x10 != 0 {
        return None;
    }
    let mut buf = vec![0xffu8; 3 * 4096];
    let mid = buf.as_ptr().align_offset(4096) + 4096;
    let target = buf[mid..].as_mut_ptr();
    // SAFETY: dc zva zeroes the aligned block holding `target`; blocks are at most 2 KiB
    // (BS <= 9), so that block lies inside the 4 KiB-aligned page [mid, mid + 4096) of `buf`.
    unsafe { core::arch::asm!("dc zva, {}", in(reg) target, options(nostack)) };
    Some(buf.iter().filter(|&&b| b == 0).count())
}

#[cfg(target_arch = "aarch64")]
#[test]
fn zva_block_size_matches_what_dc_zva_zeroes_and_qemu_cpu() {
    let measured = measured_zva_block();
    let strategy = memclr_strategy();
    println!("memclr strategy: {strategy:?}, dc zva zeroes {measured:?} bytes");
    match (strategy, measured) {
        (MemclrStrategy::DcZva { block_size }, Some(bytes)) => assert_eq!(block_size, bytes),
        (MemclrStrategy::Stp, Some(bytes)) => assert!(!(64..=2048).contains(&bytes)),
        (MemclrStrategy::Stp, None) => {}
        (other, _) => panic!("unexpected strategy {other:?} for measured block {measured:?}"),
    }
    // Under qemu-user, QEMU_CPU names the emulated CPU, whose block size QEMU hard-codes.
    let expected = match std::env::var("QEMU_CPU").as_deref() {
        Ok("max") => Some(512),
        Ok("cortex-a72" | "cortex-a57" | "cortex-a53") => Some(64),
        Ok("a64fx") => Some(256),
        _ => None,
    };
    if let Some(expected) = expected {
        assert_eq!(strategy, MemclrStrategy::DcZva { block_size: expected });
    }
}

/// Ranges that start in the last bytes of a page, or whose last 128 bytes cross one: the edges
/// the AVX2 and SSE2 routines clear without a store across the page, on every code path.
#[test]
fn ranges_at_page_edges_on_every_code_path() {
    let page = 4096;
    let mut arena = Arena::new(6 * page);
    // `check` starts at 64-aligned base + CANARY + align: find the align that lands on a page.
    let first = arena.storage.as_ptr() as usize + arena.base + CANARY;
    let to_page = first.next_multiple_of(page) - first;
    for strategy in strategies() {
        for back in 1..=40 {
            for len in (100..=700).chain([page - 1, page, page + 17, 2 * page + 5]) {
                // Starting `back` bytes before a page boundary...
                let align = to_page + page - back;
                arena.check(align, len, &format!("{strategy:?} start"), |buf| {
                    memclr_with(strategy, buf)
                });
                // ...and ending `back` bytes after one.
                let end_align = (to_page + 2 * page + back).saturating_sub(len);
                if end_align >= to_page {
                    arena.check(end_align, len, &format!("{strategy:?} end"), |buf| {
                        memclr_with(strategy, buf)
                    });
                }
            }
        }
    }
}

/// The scalar routine gets the full sweep whatever was detected: where V is there, the sweep of
/// the detected strategy above is the vector routine's, and this one is the scalar routine's.
#[cfg(target_arch = "riscv64")]
#[test]
fn sd_every_length_to_4096_at_every_alignment_to_64() {
    let mut arena = Arena::new(4096 + 64);
    for len in 0..=4096 {
        for align in 0..64 {
            arena.check(align, len, "Sd", |buf| memclr_with(MemclrStrategy::Sd, buf));
        }
    }
}

/// Whether AT_HWCAP reports the vector extension (bit `'V' - 'A'`).
#[cfg(target_arch = "riscv64")]
fn hwcap_has_v() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector.
    let hwcap = unsafe { libc::getauxval(libc::AT_HWCAP) };
    hwcap & (1 << (b'V' - b'A')) != 0
}

#[cfg(target_arch = "riscv64")]
#[test]
fn vector_strategy_follows_at_hwcap_and_qemu_cpu() {
    let strategy = memclr_strategy();
    let v = hwcap_has_v();
    println!("memclr strategy: {strategy:?}, AT_HWCAP reports V: {v}");
    match strategy {
        // VLEN is a power of two of at least 128 bits wherever V (not only Zve*) is reported.
        MemclrStrategy::Rvv { vlenb } => {
            assert!(v, "the vector path without V in AT_HWCAP");
            assert!(vlenb.is_power_of_two() && vlenb >= 16, "VLENB {vlenb}");
        }
        MemclrStrategy::Sd => assert!(!v, "AT_HWCAP reports V, but the scalar path was chosen"),
        other => panic!("{other:?} is not a RISC-V strategy"),
    }
    // Under qemu-user, QEMU_CPU names the emulated CPU's extensions and vector length
    // (`rv64,v=true,vlen=128`; vlen defaults to 128).
    if let Ok(cpu) = std::env::var("QEMU_CPU") {
        let props: Vec<&str> = cpu.split(',').collect();
        if props.contains(&"v=true") {
            let vlen = props.iter().find_map(|p| p.strip_prefix("vlen=")).unwrap_or("128");
            let vlenb = vlen.parse::<usize>().expect("QEMU_CPU's vlen") / 8;
            assert_eq!(strategy, MemclrStrategy::Rvv { vlenb });
        } else if props.contains(&"v=false") {
            assert_eq!(strategy, MemclrStrategy::Sd);
        }
    }
}

#[cfg(target_arch = "riscv64")]
#[test]
fn memclr_with_refuses_a_strategy_this_cpu_cannot_run() {
    let refused = |strategy: MemclrStrategy| {
        let mut buf = [FILL; 64];
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            memclr_with(strategy, &mut buf)
        }))
        .expect_err(&format!("memclr_with ran {strategy:?}"));
        let message = payload.downcast_ref::<String>().expect("a formatted message");
        assert!(message.contains("memclr_with: this CPU cannot run"), "{message}");
        assert_eq!(buf, [FILL; 64], "{strategy:?} wrote before it was refused");
    };
    // A vector length the CPU does not have, or V where there is none; another architecture's.
    match memclr_strategy() {
        MemclrStrategy::Rvv { vlenb } => refused(MemclrStrategy::Rvv { vlenb: 2 * vlenb }),
        _ => refused(MemclrStrategy::Rvv { vlenb: 16 }),
    }
    refused(MemclrStrategy::Stp);
}
