//! memclr against its peer, `core::ptr::write_bytes` (the C library's `memset`), in the same
//! run: one criterion group per size from 4 KiB to 256 MiB, reported as throughput.
//!
//! The buffer is cleared over and over, so it is as hot as its size lets it be (in L1/L2 at the
//! small end, in L3 up to its size, in DRAM past it).
//!
//! `SPLITSTACK_MEMCLR_VARIANTS=1` adds the individual code paths (forced through the hidden
//! `memclr_with`). `SPLITSTACK_MEMCLR_INTERLEAVED=1` runs, instead of criterion, a check that
//! takes turns between memclr, memset and every code path round by round, so that a load that
//! comes and goes hits all of them alike, and prints the median GB/s of each; that is how the
//! thresholds in src/memclr.rs were chosen.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use splitstack::{memclr, memclr_with, MemclrStrategy};
use std::hint::black_box;
use std::time::{Duration, Instant};

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
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl") {
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
    all
}

fn bench(c: &mut Criterion) {
    let with_variants = std::env::var_os("SPLITSTACK_MEMCLR_VARIANTS").is_some();
    let mut buf = vec![1u8; *SIZES.last().unwrap()];
    for &size in SIZES {
        let mut group = c.benchmark_group(format!("memclr/{}KiB", size >> 10));
        group.throughput(Throughput::Bytes(size as u64));
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(if size >= 32 << 20 { 4 } else { 2 }));
        group.sample_size(if size >= 32 << 20 { 20 } else { 50 });
        let buf = &mut buf[..size];
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

/// Median GB/s per contender per size, measured in interleaved rounds: in each round every
/// contender clears the same buffer for about 2 ms (at least once), one after the other.
fn interleaved() {
    // None: memclr itself; Some(None): memset; Some(Some(strategy)): that code path.
    let mut contenders: Vec<(&str, Option<Option<MemclrStrategy>>)> =
        vec![("splitstack::memclr", None), ("memset", Some(None))];
    contenders.extend(variants().into_iter().map(|(name, strategy)| (name, Some(Some(strategy)))));
    let mut buf = vec![1u8; *INTERLEAVED_SIZES.last().unwrap()];
    print!("{:>8}", "size");
    for (name, _) in &contenders {
        print!(" | {name:>20}");
    }
    println!(" | memclr/memset");
    for &size in INTERLEAVED_SIZES {
        let buf = &mut buf[..size];
        let clear = |contender: Option<Option<MemclrStrategy>>, buf: &mut [u8]| match contender {
            None => memclr(black_box(buf)),
            Some(Some(strategy)) => memclr_with(strategy, black_box(buf)),
            Some(None) => {
                let buf = black_box(buf);
                // SAFETY: the slice is valid for writes of its whole length.
                unsafe { core::ptr::write_bytes(buf.as_mut_ptr(), 0, buf.len()) }
            }
        };
        // Iterations per timing: about 2 ms of memset at its speed here.
        let start = Instant::now();
        let mut probe = 0u64;
        while start.elapsed() < Duration::from_millis(20) {
            clear(Some(None), buf);
            probe += 1;
        }
        let iters = (probe / 10).max(1);
        let rounds = 21;
        let mut samples = vec![Vec::with_capacity(rounds); contenders.len()];
        for round in 0..rounds {
            for k in 0..contenders.len() {
                // Rotate who goes first, so that no contender always follows the same one.
                let i = (k + round) % contenders.len();
                let strategy = contenders[i].1;
                clear(strategy, buf); // warm: the buffer as this contender leaves it
                let start = Instant::now();
                for _ in 0..iters {
                    clear(strategy, buf);
                }
                let secs = start.elapsed().as_secs_f64();
                samples[i].push((size as u64 * iters) as f64 / secs / 1e9);
            }
        }
        let medians: Vec<f64> = samples
            .iter_mut()
            .map(|s| {
                s.sort_by(f64::total_cmp);
                s[s.len() / 2]
            })
            .collect();
        let label = if size >= 1 << 20 {
            format!("{}MiB", size >> 20)
        } else {
            format!("{}KiB", size >> 10)
        };
        print!("{label:>8}");
        for gbps in &medians {
            print!(" | {gbps:>20.1}");
        }
        println!(" | {:.2}x", medians[0] / medians[1]);
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
