//! Fuzz `memclr`: clear a range of up to 64 KiB starting 0..64 bytes past a 64-byte boundary,
//! between canaries, and check that the range is all zero and the canaries are intact.
//!
//! | input bytes | meaning                                                                      |
//! |-------------|------------------------------------------------------------------------------|
//! | 0, 1        | length, little-endian: 0..=65535                                             |
//! | 2           | start offset past a 64-byte boundary: `% 64`                                 |
//! | 3           | how to clear: `memclr`, `memclr_raw`, or `memclr_with` one of the strategies |
//! |             | this CPU can run, thresholds forced low so that short lengths reach every    |
//! |             | code path (`rep stosb`, non-temporal stores, `clzero`)                       |
//! | 4           | the canary and pre-fill byte (0 is taken as 0xa5: it must not be zero)       |
//!
//! Missing bytes count as zero. The canaries are 4 KiB on each side, more than any store the
//! routines make (a cache line, a `dc zva` block of at most 2 KiB), so a store past either end
//! is seen even though AddressSanitizer cannot see inside the assembly.

#![no_main]

use libfuzzer_sys::fuzz_target;
use splitstack::{memclr, memclr_raw, memclr_strategy, memclr_with, MemclrStrategy};
use std::sync::OnceLock;

/// Bytes of canary on each side of the cleared range.
const CANARY: usize = 4096;
/// The longest range cleared.
const MAX_LEN: usize = u16::MAX as usize;

fuzz_target!(|data: &[u8]| {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let len = u16::from_le_bytes([byte(0), byte(1)]) as usize;
    let offset = byte(2) as usize % 64;
    let how = byte(3) as usize;
    let fill = match byte(4) {
        0 => 0xa5,
        b => b,
    };

    let mut storage = vec![fill; 64 + CANARY + 64 + MAX_LEN + CANARY];
    let start = storage.as_ptr().align_offset(64) + CANARY + offset;
    let window = &mut storage[start - CANARY..start + len + CANARY];
    let range = &mut window[CANARY..CANARY + len];

    let strategies = strategies();
    let what = match how % (2 + strategies.len()) {
        0 => {
            memclr(range);
            "memclr".to_string()
        }
        1 => {
            // SAFETY: `range` is a unique slice, valid for writes of its whole length.
            unsafe { memclr_raw(range.as_mut_ptr(), range.len()) };
            "memclr_raw".to_string()
        }
        i => {
            let strategy = strategies[i - 2];
            memclr_with(strategy, range);
            format!("memclr_with({strategy:?})")
        }
    };

    let (before, rest) = window.split_at(CANARY);
    let (cleared, after) = rest.split_at(len);
    // With memcmp first: a byte loop is instrumented per comparison and is far slower.
    let canary = [fill; CANARY];
    if cleared.chunks(CANARY).all(|chunk| chunk == &[0; CANARY][..chunk.len()])
        && before == canary
        && after == canary
    {
        return;
    }
    if let Some(i) = cleared.iter().position(|&b| b != 0) {
        panic!("{what}: len {len} offset {offset}: byte {i} not cleared ({:#04x})", cleared[i]);
    }
    if let Some(i) = before.iter().rposition(|&b| b != fill) {
        panic!("{what}: len {len} offset {offset}: wrote {} bytes before the range", CANARY - i);
    }
    if let Some(i) = after.iter().position(|&b| b != fill) {
        panic!("{what}: len {len} offset {offset}: wrote byte {i} after the range");
    }
    unreachable!("{what}: len {len} offset {offset}: memcmp saw a difference the loops did not");
});

/// Every strategy this CPU can run: the detected one, and each code path forced from length 0
/// or from a threshold inside 0..=4096 (as tests/memclr.rs does).
fn strategies() -> &'static [MemclrStrategy] {
    static ALL: OnceLock<Vec<MemclrStrategy>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = vec![memclr_strategy()];
        #[cfg(target_arch = "x86_64")]
        {
            use MemclrStrategy::{Avx2, Avx512, Sse2};
            if std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vl")
            {
                let avx512 = |rep_stosb_from, non_temporal_from, clzero_from| Avx512 {
                    rep_stosb_from,
                    non_temporal_from,
                    clzero_from,
                };
                all.push(avx512(None, usize::MAX, None));
                all.push(avx512(Some(0), usize::MAX, None));
                all.push(avx512(None, 0, None));
                all.push(avx512(Some(1024), 2048, None));
                if has_clzero() {
                    all.push(avx512(None, usize::MAX, Some(0)));
                    all.push(avx512(Some(1024), 2048, Some(3072)));
                }
            }
            if std::is_x86_feature_detected!("avx2") {
                all.push(Avx2 { non_temporal_from: 0 });
                all.push(Avx2 { non_temporal_from: usize::MAX });
                all.push(Avx2 { non_temporal_from: 2048 });
            }
            all.push(Sse2 { rep_stosb_from: None, non_temporal_from: usize::MAX });
            all.push(Sse2 { rep_stosb_from: Some(0), non_temporal_from: usize::MAX });
            all.push(Sse2 { rep_stosb_from: None, non_temporal_from: 0 });
            all.push(Sse2 { rep_stosb_from: Some(1024), non_temporal_from: 2048 });
        }
        #[cfg(target_arch = "aarch64")]
        all.push(MemclrStrategy::Stp);
        all
    })
}

/// AMD's CLZERO (CPUID 8000_0008h EBX bit 0), which std's feature macro does not know.
#[cfg(target_arch = "x86_64")]
fn has_clzero() -> bool {
    use std::arch::x86_64::__cpuid;
    __cpuid(0x8000_0000).eax >= 0x8000_0008 && __cpuid(0x8000_0008).ebx & 1 != 0
}
