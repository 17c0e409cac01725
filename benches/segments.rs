//! Time of segmented-stack growth, splitstack against stacker in the same run.
//!
//! - `hot_split`: a call at a segment boundary inside a loop, the case that made Go and Rust drop
//!   segmented stacks. Each iteration runs `tiny` on a new 64 KiB segment with `grow`.
//!   splitstack takes the segment from its thread's cache after the first iteration; stacker
//!   maps and unmaps one every time.
//! - `maybe_grow_fast_path`: the check at the top of a recursive function when the stack has room,
//!   so `tiny` runs in place; `plain` is `tiny` with no check.
//! - `deep_recursion`: a sum over 10,000,000 levels of recursion with a `maybe_grow` check at
//!   each level (32 KiB red zone, 1 MiB segments), against the same recursion with no check on a
//!   thread whose 2 GiB stack holds it all. The plain recursion runs on one long-lived thread,
//!   warmed up by a first descent, so its stack pages are already mapped when timed; the
//!   segmented ones run on the bench's own thread, where they outgrow its stack many times. A
//!   descent nests about 300 segments, more than the thread's cache keeps
//!   (`splitstack::machine::SEGMENT_CACHE_CAPACITY`), so each descent maps, faults in and unmaps
//!   most of them; the bench prints the counts of one descent (from `machine::stats`) first.
//!   `splitstack_cache_1024` runs the same with `machine::set_segment_cache_capacity(1024)`,
//!   which keeps a whole descent's segments mapped between descents.
//!
//! Run: `cargo bench --bench segments`. The instruction counts of the first two are in
//! `benches/segments_instructions.rs`.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The segment size of `hot_split`.
const SPLIT_SEGMENT: usize = 64 * 1024;
/// The red zone of every `maybe_grow` here.
const RED_ZONE: usize = 32 * 1024;
/// The segment size of every `maybe_grow` here.
const GROW_SEGMENT: usize = 1 << 20;
/// Levels of recursion in `deep_recursion`.
const DEPTH: u64 = 10_000_000;
/// The stack of the thread that runs the plain recursion: room for every level with margin.
const BIG_STACK: usize = 2 << 30;

/// The work each growth runs: one opaque add, never inlined, so every library calls the same
/// function across its stack switch.
#[inline(never)]
fn tiny(x: u64) -> u64 {
    black_box(x) + 1
}

fn hot_split(c: &mut Criterion) {
    let mut group = c.benchmark_group("hot_split");
    group.bench_function("splitstack", |b| {
        let x = 1u64;
        b.iter(|| splitstack::grow(SPLIT_SEGMENT, || tiny(black_box(x))));
    });
    group.bench_function("stacker", |b| {
        let x = 1u64;
        b.iter(|| stacker::grow(SPLIT_SEGMENT, || tiny(black_box(x))));
    });
    group.finish();
}

fn maybe_grow_fast_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("maybe_grow_fast_path");
    group.bench_function("splitstack", |b| {
        let x = 1u64;
        b.iter(|| splitstack::maybe_grow(RED_ZONE, GROW_SEGMENT, || tiny(black_box(x))));
    });
    group.bench_function("stacker", |b| {
        let x = 1u64;
        b.iter(|| stacker::maybe_grow(RED_ZONE, GROW_SEGMENT, || tiny(black_box(x))));
    });
    group.bench_function("plain", |b| {
        let x = 1u64;
        b.iter(|| tiny(black_box(x)));
    });
    group.finish();
}

/// 0 + 1 + ... + n by recursion, with no stack check. `black_box` on the argument and the add
/// after the call keep it from becoming a loop.
#[inline(never)]
fn sum_plain(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        n + sum_plain(black_box(n - 1))
    }
}

/// `sum_plain` with a splitstack `maybe_grow` check at each level.
#[inline(never)]
fn sum_splitstack(n: u64) -> u64 {
    splitstack::maybe_grow(RED_ZONE, GROW_SEGMENT, || {
        if n == 0 {
            0
        } else {
            n + sum_splitstack(black_box(n - 1))
        }
    })
}

/// `sum_plain` with a stacker `maybe_grow` check at each level.
#[inline(never)]
fn sum_stacker(n: u64) -> u64 {
    stacker::maybe_grow(RED_ZONE, GROW_SEGMENT, || {
        if n == 0 {
            0
        } else {
            n + sum_stacker(black_box(n - 1))
        }
    })
}

/// The value every deep sum must return.
const DEEP_SUM: u64 = DEPTH * (DEPTH + 1) / 2;

/// A thread with a [`BIG_STACK`] stack that times `iters` plain recursions on request.
struct BigStackThread {
    requests: Option<mpsc::Sender<u64>>,
    times: mpsc::Receiver<Duration>,
    thread: Option<thread::JoinHandle<()>>,
}

impl BigStackThread {
    /// Spawn the thread; it descends once before its first request, so the stack pages the
    /// recursion uses are mapped before anything is timed.
    fn new() -> BigStackThread {
        let (requests, request_rx) = mpsc::channel::<u64>();
        let (time_tx, times) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("big-stack".into())
            .stack_size(BIG_STACK)
            .spawn(move || {
                assert_eq!(sum_plain(black_box(DEPTH)), DEEP_SUM);
                for iters in request_rx {
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(sum_plain(black_box(DEPTH)));
                    }
                    time_tx.send(start.elapsed()).expect("the bench is waiting for the time");
                }
            })
            .expect("spawning the big-stack thread");
        BigStackThread { requests: Some(requests), times, thread: Some(thread) }
    }

    /// The time of `iters` plain recursions on the big stack.
    fn time(&self, iters: u64) -> Duration {
        let requests = self.requests.as_ref().expect("sender lives until drop");
        requests.send(iters).expect("the big-stack thread is running");
        self.times.recv().expect("the big-stack thread answers")
    }
}

impl Drop for BigStackThread {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the big-stack thread panicked");
        }
    }
}

fn deep_recursion(c: &mut Criterion) {
    // Check every variant once, and report how many segments a descent takes.
    let before = splitstack::machine::stats();
    assert_eq!(sum_splitstack(black_box(DEPTH)), DEEP_SUM);
    let after = splitstack::machine::stats();
    eprintln!(
        "deep_recursion/splitstack: one descent: {} splits, {} segments mapped, {} unmapped, \
         {} deepest nesting",
        after.splits - before.splits,
        after.segments_mapped - before.segments_mapped,
        after.segments_unmapped - before.segments_unmapped,
        after.max_segments_held,
    );
    assert_eq!(sum_stacker(black_box(DEPTH)), DEEP_SUM);

    let mut group = c.benchmark_group("deep_recursion");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("splitstack", |b| b.iter(|| sum_splitstack(black_box(DEPTH))));
    // The same with a segment cache that holds a whole descent: after the first descent, none
    // maps or faults in memory, as a preallocated stack would not.
    splitstack::machine::set_segment_cache_capacity(1024);
    group.bench_function("splitstack_cache_1024", |b| b.iter(|| sum_splitstack(black_box(DEPTH))));
    splitstack::machine::set_segment_cache_capacity(splitstack::machine::SEGMENT_CACHE_CAPACITY);
    let big = BigStackThread::new();
    group.bench_function("plain", |b| b.iter_custom(|iters| big.time(iters)));
    drop(big);
    group.bench_function("stacker", |b| b.iter(|| sum_stacker(black_box(DEPTH))));
    group.finish();
}

criterion_group!(benches, hot_split, maybe_grow_fast_path, deep_recursion);
criterion_main!(benches);
