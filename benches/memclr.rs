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
//! `SPLITSTACK_MEMCLR_INTERLEAVED=1` runs, instead of criterion, a check that takes turns between
//! memclr and memset (and with `SPLITSTACK_MEMCLR_VARIANTS=1`, every code path) round by round,
//! in a new order each round, so that a load that comes and goes hits all of them alike, and
//! prints the median GB/s of each and the median over the rounds of memclr's speed relative to
//! memset's in the same round. With `SPLITSTACK_MEMCLR_COLD=1` as well, every timed clear meets
//! a cold buffer, as a heap's clear of a span freed long ago does: before each one the buffer is
//! written and then flushed from every cache level (`clflush` of each line, then `mfence`), and
//! small sizes clear many such buffers one after another so that the timer's own cost stays
//! small beside them. The README's memclr tables, and the thresholds in src/memclr.rs that they
//! support, come from it.

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

/// The benchmarks' buffer: `max` bytes starting `SPLITSTACK_MEMCLR_OFFSET` (default 16) bytes
/// past a page boundary.
struct Storage {
    storage: Vec<u8>,
    start: usize,
}

impl Storage {
    fn new(max: usize) -> Storage {
        let offset: usize = match std::env::var("SPLITSTACK_MEMCLR_OFFSET") {
            Ok(text) => text.parse().expect("SPLITSTACK_MEMCLR_OFFSET: a number of bytes"),
            Err(_) => 16,
        };
        assert!(offset < 4096, "SPLITSTACK_MEMCLR_OFFSET: less than a page, please");
        let storage = vec![1u8; max + 2 * 4096];
        let start = storage.as_ptr().align_offset(4096) + offset;
        Storage { storage, start }
    }

    fn buf(&mut self, len: usize) -> &mut [u8] {
        &mut self.storage[self.start..self.start + len]
    }

    /// `len` bytes at `offset` past the start.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // the cold check's
    fn buf_at(&mut self, offset: usize, len: usize) -> &mut [u8] {
        &mut self.storage[self.start + offset..self.start + offset + len]
    }

    /// Bytes usable from the start.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // the cold check's
    fn capacity(&self) -> usize {
        self.storage.len() - self.start
    }
}

/// xorshift64: the interleaved check's shuffles.
struct XorShift(u64);

impl XorShift {
    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
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
/// contender clears the same buffer for about 2 ms (at least once), one after the other; and the
/// median over the rounds of memclr's time for the round's work relative to memset's (a ratio
/// taken within a round, so that a load that changes from round to round cancels out), with the
/// quartiles of those ratios.
fn interleaved() {
    let cold = std::env::var_os("SPLITSTACK_MEMCLR_COLD").is_some();
    // None: memclr itself; Some(None): memset; Some(Some(strategy)): that code path.
    let mut contenders: Vec<(&str, Option<Option<MemclrStrategy>>)> =
        vec![("splitstack::memclr", None), ("memset", Some(None))];
    if std::env::var_os("SPLITSTACK_MEMCLR_VARIANTS").is_some() {
        let variants = variants().into_iter().map(|(name, strategy)| (name, Some(Some(strategy))));
        contenders.extend(variants);
    }
    let mut storage = Storage::new(*INTERLEAVED_SIZES.last().unwrap());
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    print!("{:>8}", "size");
    for (name, _) in &contenders {
        print!(" | {name:>20}");
    }
    println!(
        " | memclr/memset: median of rounds [quartiles]{}",
        if cold { " (cold buffers)" } else { "" }
    );
    for &size in INTERLEAVED_SIZES {
        if cold {
            interleaved_cold(&contenders, &mut storage, size, &mut rng);
            continue;
        }
        let buf = storage.buf(size);

        // Iterations per timing: about 2 ms of memset at its speed here.
        let start = Instant::now();
        let mut probe = 0u64;
        while start.elapsed() < Duration::from_millis(20) {
            clear_as(Some(None), buf);
            probe += 1;
        }
        let iters = (probe / 10).max(1);
        let (mut samples, mut ratios) = in_rounds(contenders.len(), 21, &mut rng, |i| {
            let strategy = contenders[i].1;
            clear_as(strategy, buf); // warm: the buffer as this contender leaves it
            let start = Instant::now();
            for _ in 0..iters {
                clear_as(strategy, buf);
            }
            (start.elapsed().as_secs_f64(), size * iters as usize)
        });
        print_row(size, &mut samples, &mut ratios);
    }
}

/// Runs `rounds` rounds of timing each of `n` contenders once with `time(i)`, which returns the
/// seconds taken and the bytes cleared, in a new order every round, so that no contender always
/// follows the same one (a non-temporal path leaves the buffer out of the cache for whoever comes
/// next). Returns each contender's GB/s per round and each round's memclr/memset ratio
/// (contender 0 is memclr, 1 memset: memset's time over memclr's is memclr's relative speed).
fn in_rounds(
    n: usize,
    rounds: usize,
    rng: &mut XorShift,
    mut time: impl FnMut(usize) -> (f64, usize),
) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut samples = vec![Vec::with_capacity(rounds); n];
    let mut ratios = Vec::with_capacity(rounds);
    let mut order: Vec<usize> = (0..n).collect();
    for _ in 0..rounds {
        for k in (1..n).rev() {
            order.swap(k, rng.below(k + 1));
        }
        let mut secs = vec![0.0; n];
        for &i in &order {
            let (taken, bytes) = time(i);
            secs[i] = taken;
            samples[i].push(bytes as f64 / taken / 1e9);
        }
        ratios.push(secs[1] / secs[0]);
    }
    (samples, ratios)
}

/// Clears `buf` as `contender` says: memclr itself (`None`), memset (`Some(None)`) or a forced
/// code path.
fn clear_as(contender: Option<Option<MemclrStrategy>>, buf: &mut [u8]) {
    match contender {
        None => memclr(black_box(buf)),
        Some(Some(strategy)) => memclr_with(strategy, black_box(buf)),
        Some(None) => {
            let buf = black_box(buf);
            // SAFETY: the slice is valid for writes of its whole length.
            unsafe { core::ptr::write_bytes(buf.as_mut_ptr(), 0, buf.len()) }
        }
    }
}

/// Prints a row of the interleaved check: the size, each contender's median GB/s over the
/// rounds, and the median and quartiles of the rounds' memclr/memset ratios.
fn print_row(size: usize, samples: &mut [Vec<f64>], ratios: &mut [f64]) {
    let median = |v: &mut [f64]| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let label =
        if size >= 1 << 20 { format!("{}MiB", size >> 20) } else { format!("{}KiB", size >> 10) };
    print!("{label:>8}");
    for contender in samples.iter_mut() {
        print!(" | {:>20.1}", median(contender));
    }
    let n = ratios.len();
    let ratio = median(ratios);
    println!(" | {ratio:.2}x [{:.2}-{:.2}]", ratios[n / 4], ratios[3 * n / 4]);
}

/// A row of the interleaved check with cold buffers: each round, each contender (in a new order)
/// clears `count` buffers of `size` bytes, each written and flushed from the caches just before,
/// and the clears alone are timed.
#[cfg(target_arch = "x86_64")]
fn interleaved_cold(
    contenders: &[(&str, Option<Option<MemclrStrategy>>)],
    storage: &mut Storage,
    size: usize,
    rng: &mut XorShift,
) {
    // Buffers a page apart beyond their size (so each starts at the same offset in its page),
    // 1 MiB of them in all for small sizes.
    let stride = size.next_multiple_of(4096) + 4096;
    let count = ((1 << 20) / size).clamp(1, 256).min(storage.capacity() / stride).max(1);
    let rounds = if size >= 64 << 20 { 21 } else { 101 };
    let (mut samples, mut ratios) = in_rounds(contenders.len(), rounds, rng, |i| {
        for b in 0..count {
            let buf = storage.buf_at(b * stride, size);
            buf.fill(0x5a);
            flush(buf);
        }
        // SAFETY: a full fence, so that the flushes are done before the clock starts.
        unsafe { core::arch::x86_64::_mm_mfence() };
        let start = Instant::now();
        for b in 0..count {
            clear_as(contenders[i].1, storage.buf_at(b * stride, size));
        }
        (start.elapsed().as_secs_f64(), size * count)
    });
    print_row(size, &mut samples, &mut ratios);
}

/// The cold check needs `clflush`; elsewhere it says so and measures nothing.
#[cfg(not(target_arch = "x86_64"))]
fn interleaved_cold(
    _: &[(&str, Option<Option<MemclrStrategy>>)],
    _: &mut Storage,
    _: usize,
    _: &mut XorShift,
) {
    panic!("SPLITSTACK_MEMCLR_COLD: the cold check flushes with clflush, x86-64 only");
}

/// Writes back and evicts every cache line of `buf` from every level.
#[cfg(target_arch = "x86_64")]
fn flush(buf: &[u8]) {
    for line in buf.chunks(64) {
        // SAFETY: the address is inside `buf`; clflush only evicts.
        unsafe { core::arch::x86_64::_mm_clflush(line.as_ptr()) };
    }
    if let Some(last) = buf.last() {
        // SAFETY: as above; the last line, if the buffer does not start on a line.
        unsafe { core::arch::x86_64::_mm_clflush(last) };
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
