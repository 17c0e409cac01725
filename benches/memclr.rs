//! memclr against its peer, `core::ptr::write_bytes` (the C library's `memset`), in the same
//! run: one criterion group per size from 4 KiB to 256 MiB, reported as throughput.
//!
//! The buffer is cleared over and over, so it is as hot as its size lets it be (in L1/L2 at the
//! small end, in L3 up to its size, in DRAM past it).
//!
//! `SPLITSTACK_MEMCLR_VARIANTS=1` adds the individual code paths (forced through the hidden
//! `memclr_with`), which is how the thresholds in src/memclr.rs were chosen.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
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

criterion_group!(benches, bench);
criterion_main!(benches);
