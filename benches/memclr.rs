//! memclr against its peer, `core::ptr::write_bytes` (the C library's `memset`), in the same
//! run: one criterion group per size from 4 KiB to 256 MiB, reported as throughput.
//!
//! The buffer is cleared over and over, so it is as hot as its size lets it be (in L1/L2 at the
//! small end, in L3 up to its size, in DRAM past it). Every contender clears the same buffer,
//! which starts `SPLITSTACK_MEMCLR_OFFSET` bytes (default 16) past a page boundary: 16 is where
//! glibc's malloc puts a large `Vec`'s buffer (after its 16-byte chunk header), so the default
//! is what a caller's big allocation sees; 0 measures a page-aligned buffer. The offset matters:
//! a clear of whole pages that does not start on a cache line ends in a line that crosses a page.
//!
//! `SPLITSTACK_MEMCLR_VARIANTS=1` adds the individual code paths (forced through the hidden
//! `memclr_with`, which checks the strategy against the CPU on every call; what that check costs
//! against a direct call, most of all before a `rep stosb`, which starts only after the code in
//! front of it has run, is in the README's "memclr's thresholds").
//! `SPLITSTACK_MEMCLR_INTERLEAVED=1` runs, instead of criterion, the method the tour uses too
//! (examples/support/memclr_method.rs): memclr and memset (and with
//! `SPLITSTACK_MEMCLR_VARIANTS=1`, every code path) take turns round by round, each on buffers
//! of its own, hot (cleared again and again) and then cold (written and flushed from every cache
//! level before each clear, x86-64 only); each row gives the median GB/s of each and the median
//! over the rounds of memclr's speed relative to memset's in the same round. The README's memclr
//! tables, and the thresholds in src/memclr.rs that they support, come from it.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
#[path = "../examples/support/memclr_method.rs"]
mod memclr_method;
use memclr_method::{Contender, State};
use splitstack::{memclr, memclr_with, MemclrStrategy};
use std::hint::black_box;
use std::time::Duration;

const SIZES: &[usize] = &[
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    2 << 20,
    4 << 20,
    6 << 20,
    8 << 20,
    16 << 20,
    32 << 20,
    64 << 20,
    128 << 20,
    256 << 20,
];

/// The forced code paths this CPU can run, named.
fn variants() -> Vec<(&'static str, MemclrStrategy)> {
    let mut all = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
        {
            let avx512 = |rep_stosb_from, non_temporal_from, clzero_from| MemclrStrategy::Avx512 {
                rep_stosb_from,
                non_temporal_from,
                clzero_from,
            };
            all.push(("avx512 cached", avx512(None, usize::MAX, None)));
            all.push(("avx512 rep stosb", avx512(Some(0), usize::MAX, None)));
            all.push(("avx512 non-temporal", avx512(None, 0, None)));
            let clzero = avx512(None, usize::MAX, Some(0));
            // CLZERO: CPUID 8000_0008h EBX bit 0 (AMD).
            let cpuid = core::arch::x86_64::__cpuid;
            if cpuid(0x8000_0000).eax >= 0x8000_0008 && cpuid(0x8000_0008).ebx & 1 != 0 {
                all.push(("avx512 clzero", clzero));
            }
        }
        if std::is_x86_feature_detected!("avx2") {
            all.push(("avx2 cached", MemclrStrategy::Avx2 { non_temporal_from: usize::MAX }));
            all.push(("avx2 non-temporal", MemclrStrategy::Avx2 { non_temporal_from: 0 }));
        }
    }
    // The SSE2 routine: x86-64's fallback, and 32-bit x86's only one.
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    {
        let sse2 = MemclrStrategy::Sse2 { rep_stosb_from: None, non_temporal_from: usize::MAX };
        all.push(("sse2 cached", sse2));
        let stosb = MemclrStrategy::Sse2 { rep_stosb_from: Some(0), non_temporal_from: usize::MAX };
        all.push(("rep stosb", stosb));
        all.push((
            "sse2 non-temporal",
            MemclrStrategy::Sse2 { rep_stosb_from: None, non_temporal_from: 0 },
        ));
    }
    #[cfg(target_arch = "aarch64")]
    {
        all.push(("stp", MemclrStrategy::Stp));
        all.push(("detected", splitstack::memclr_strategy()));
    }
    // 32-bit ARM: VFP everywhere, NEON where AT_HWCAP reports it (the detected strategy then).
    #[cfg(target_arch = "arm")]
    {
        all.push(("vfp", MemclrStrategy::Vfp));
        if splitstack::memclr_strategy() == MemclrStrategy::Neon {
            all.push(("neon", MemclrStrategy::Neon));
        }
    }
    #[cfg(target_arch = "riscv64")]
    {
        all.push(("sd", MemclrStrategy::Sd));
        all.push(("detected", splitstack::memclr_strategy()));
    }
    all
}

fn bench(c: &mut Criterion) {
    let with_variants = std::env::var_os("SPLITSTACK_MEMCLR_VARIANTS").is_some();
    let mut storage = Storage::new(*SIZES.last().unwrap());
    for &size in SIZES {
        let mut group = c.benchmark_group(format!("memclr/{}KiB", size >> 10));
        group.throughput(Throughput::Bytes(size as u64));
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(if size >= 32 << 20 { 4 } else { 2 }));
        group.sample_size(if size >= 32 << 20 { 20 } else { 50 });
        let buf = storage.buf(size);
        group.bench_function(BenchmarkId::new("splitstack::memclr", size), |b| {
            b.iter(|| memclr(black_box(&mut *buf)))
        });
        group.bench_function(BenchmarkId::new("memset (ptr::write_bytes)", size), |b| {
            b.iter(|| {
                let buf = black_box(&mut *buf);
                // SAFETY: the slice is valid for writes of its whole length.
                unsafe { core::ptr::write_bytes(buf.as_mut_ptr(), 0, buf.len()) }
            })
        });
        if with_variants {
            for (name, strategy) in variants() {
                group.bench_function(BenchmarkId::new(name, size), |b| {
                    b.iter(|| memclr_with(strategy, black_box(&mut *buf)))
                });
            }
        }
        group.finish();
    }
}

/// Where the buffers start past a page boundary: `SPLITSTACK_MEMCLR_OFFSET` bytes, default 16.
fn offset() -> usize {
    let offset: usize = match std::env::var("SPLITSTACK_MEMCLR_OFFSET") {
        Ok(text) => text.parse().expect("SPLITSTACK_MEMCLR_OFFSET: a number of bytes"),
        Err(_) => 16,
    };
    assert!(offset < 4096, "SPLITSTACK_MEMCLR_OFFSET: less than a page, please");
    offset
}

/// The benchmarks' buffer: `max` bytes starting `SPLITSTACK_MEMCLR_OFFSET` (default 16) bytes
/// past a page boundary.
struct Storage {
    storage: Vec<u8>,
    start: usize,
}

impl Storage {
    fn new(max: usize) -> Storage {
        let storage = vec![1u8; max + 2 * 4096];
        let start = storage.as_ptr().align_offset(4096) + offset();
        Storage { storage, start }
    }

    fn buf(&mut self, len: usize) -> &mut [u8] {
        &mut self.storage[self.start..self.start + len]
    }
}

/// Sizes for the interleaved check: the criterion sizes and the steps between them where a
/// threshold might fall.
const INTERLEAVED_SIZES: &[usize] = &[
    1 << 10,
    2 << 10,
    4 << 10,
    8 << 10,
    16 << 10,
    32 << 10,
    64 << 10,
    256 << 10,
    512 << 10,
    1 << 20,
    2 << 20,
    4 << 20,
    6 << 20,
    8 << 20,
    12 << 20,
    16 << 20,
    24 << 20,
    32 << 20,
    64 << 20,
    128 << 20,
    256 << 20,
];

/// A forced code path as a contender's clear.
type Clear = Box<dyn Fn(&mut [u8])>;

/// Both tables of the interleaved check: hot, then cold where it can be measured.
fn interleaved() {
    let offset = offset();
    // SAFETY (of the closure's body): writes within the slice.
    let memset = |b: &mut [u8]| unsafe { core::ptr::write_bytes(b.as_mut_ptr(), 0, b.len()) };
    let variants: Vec<(&str, Clear)> = if std::env::var_os("SPLITSTACK_MEMCLR_VARIANTS").is_some() {
        let forced = |(name, strategy)| {
            let clear: Clear = Box::new(move |b| memclr_with(strategy, b));
            (name, clear)
        };
        variants().into_iter().map(forced).collect()
    } else {
        Vec::new()
    };
    let mut contenders = vec![
        Contender { name: "memclr", clear: &memclr },
        Contender { name: "memset", clear: &memset },
    ];
    contenders.extend(variants.iter().map(|(name, clear)| Contender { name, clear: &**clear }));
    for state in [State::Hot, State::Cold] {
        if !memclr_method::can_measure(state) {
            println!("{state:?}: not measured on this target (the method flushes with clflush)");
            continue;
        }
        println!("{}", memclr_method::format_header(&contenders, state));
        for &size in INTERLEAVED_SIZES {
            let rounds = match state {
                State::Cold if size < 64 << 20 => 101,
                _ => 21,
            };
            let row = memclr_method::measure(&contenders, size, state, offset, rounds);
            println!("{}", memclr_method::format_row(&row));
        }
        println!();
    }
}

criterion_group!(benches, bench);

fn main() {
    if std::env::var_os("SPLITSTACK_MEMCLR_INTERLEAVED").is_some() {
        interleaved();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
