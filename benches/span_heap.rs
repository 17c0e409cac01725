//! The cost of zeroing under the heap lock (Go 1.0's MHeap_Alloc) versus after releasing it
//! (SpanHeap's default), as seen by another thread: one thread allocates 64 MiB zeroed spans,
//! fills each (so that it is dirty and the next allocation must clear it) and frees it, while the
//! other allocates and frees small spans on a fixed schedule (every 10 us) and records each
//! allocation's latency from the moment it was due. The small spans are 32 pages, past what a
//! thread's page cache serves, so that each takes the heap's lock; a third run allocates one page
//! with zeroing under the lock, which the thread's page cache serves without the lock. Prints the
//! median, 99th and 99.9th percentiles of each run and the ratios of the first two
//! (`SPLITSTACK_BENCH_STATS=1` adds the heap stats).
//!
//! A custom harness (`harness = false`): criterion measures one thread's mean, and the point here
//! is another thread's tail latency. `SPLITSTACK_BENCH_SECS` sets each mode's duration (default 3).
//!
//! First it runs the temperature trace (`trace`): zeroed allocations of spans freed long ago and
//! of spans freed a moment ago, with the heap's guess at their temperature off and on, and prints
//! the time spent zeroing each kind.

use splitstack::SpanHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Pages in the big span: 64 MiB.
const BIG_PAGES: usize = (64 << 20) / SpanHeap::PAGE_SIZE;

/// How often the small thread allocates: 100 000 times a second.
const INTERVAL: Duration = Duration::from_micros(10);

/// What one mode measured.
struct Run {
    /// Small-allocation latencies, sorted, in nanoseconds.
    latencies: Vec<u64>,
    /// Big spans allocated (and cleared) per second.
    big_per_sec: f64,
}

impl Run {
    fn percentile(&self, p: f64) -> u64 {
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i]
    }
}

/// Pages in the small spans that go through the lock: past the 16 a page cache serves.
const LOCKED_PAGES: usize = 32;

fn run(zero_under_lock: bool, small_pages: usize, duration: Duration) -> Run {
    let heap = SpanHeap::new();
    heap.set_zero_under_lock(zero_under_lock);
    // Warm up: map the arena, fault the big span's pages in, and leave them dirty.
    for _ in 0..3 {
        let mut big = heap.alloc(BIG_PAGES, true).unwrap();
        big.as_mut_slice()[0] = 1;
        heap.free(big);
    }
    let stop = AtomicBool::new(false);
    let bigs = AtomicU64::new(0);
    let started = Instant::now();
    let latencies = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let mut big = heap.alloc(BIG_PAGES, true).unwrap();
                // Use it: this is what makes it dirty, and it is time spent outside the lock.
                big.as_mut_slice().fill(0x5a);
                heap.free(big);
                bigs.fetch_add(1, Ordering::Relaxed);
            }
        });
        let small = s.spawn(|| {
            // Open loop: allocation i is due at start + i * INTERVAL, and its latency counts from
            // when it was due, so a stall behind the lock is charged to every allocation it
            // delayed (a closed loop would record a 2 ms stall once and call it 1 sample in 10^4).
            let mut latencies =
                Vec::with_capacity((duration.as_nanos() / INTERVAL.as_nanos()) as usize);
            let start = Instant::now();
            let mut due = start;
            while due < start + duration {
                while Instant::now() < due {
                    std::hint::spin_loop();
                }
                let span = heap.alloc(small_pages, true).unwrap();
                latencies.push(due.elapsed().as_nanos() as u64);
                heap.free(span);
                due += INTERVAL;
            }
            stop.store(true, Ordering::Relaxed);
            latencies
        });
        small.join().unwrap()
    });
    let elapsed = started.elapsed().as_secs_f64();
    if std::env::var_os("SPLITSTACK_BENCH_STATS").is_some() {
        eprintln!("  zero_under_lock={zero_under_lock}: {:?}", heap.stats());
    }
    let mut latencies = latencies;
    latencies.sort_unstable();
    Run { latencies, big_per_sec: bigs.load(Ordering::Relaxed) as f64 / elapsed }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too, so keep that short.
    let is_bench = std::env::args().any(|a| a == "--bench");
    let secs: f64 = std::env::var("SPLITSTACK_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if is_bench { 3.0 } else { 0.2 });
    let duration = Duration::from_secs_f64(secs);
    temperature(is_bench);
    let after = run(false, LOCKED_PAGES, duration);
    let under = run(true, LOCKED_PAGES, duration);
    let cached = run(true, 1, duration);
    println!(
        "span_heap: small zeroed allocations while another thread allocates 64 MiB dirty spans"
    );
    for (name, r) in [
        ("32 pages, zero after unlock", &after),
        ("32 pages, zero under lock  ", &under),
        ("1 page (cache), under lock ", &cached),
    ] {
        println!(
            "  {name}: median {:>9} ns  p99 {:>9} ns  p99.9 {:>9} ns  max {:>9} ns  ({} small \
             allocs, {:.1} big/s)",
            r.percentile(0.5),
            r.percentile(0.99),
            r.percentile(0.999),
            r.latencies.last().unwrap(),
            r.latencies.len(),
            r.big_per_sec,
        );
    }
    println!(
        "  32 pages, under lock / after unlock: median {:.1}x  p99 {:.1}x",
        under.percentile(0.5) as f64 / after.percentile(0.5) as f64,
        under.percentile(0.99) as f64 / after.percentile(0.99) as f64,
    );
}

/// Pages in a span of the temperature trace: 1 MiB.
const TRACE_PAGES: usize = (1 << 20) / SpanHeap::PAGE_SIZE;

/// The temperature trace, the heap's guess at a span's temperature on or off: each round, a
/// batch of `batch` spans of 1 MiB allocated zeroed, written and freed together (each reuses a
/// span the last batch freed, which more than the cache's worth of writes has evicted since), then
/// `hot` spans allocated zeroed, written and freed one at a time (each reuses the pages the last
/// one freed, still cached). Returns the seconds spent in the zeroed allocations of each kind and
/// the heap's cold-cleared bytes.
fn trace(hint: bool, batch: usize, hot: usize, rounds: usize) -> (f64, f64, u64) {
    let heap = SpanHeap::new();
    heap.set_temperature_hint(hint);
    let (mut batch_secs, mut hot_secs) = (0.0, 0.0);
    for round in 0..=rounds {
        let mut spans = Vec::with_capacity(batch);
        for _ in 0..batch {
            let start = Instant::now();
            let mut span = heap.alloc(TRACE_PAGES, true).unwrap();
            let elapsed = start.elapsed().as_secs_f64();
            span.as_mut_slice().fill(0x5a);
            spans.push(span);
            if round > 0 {
                batch_secs += elapsed; // round 0 only makes the pages dirty
            }
        }
        drop(spans);
        for _ in 0..hot {
            let start = Instant::now();
            let mut span = heap.alloc(TRACE_PAGES, true).unwrap();
            let elapsed = start.elapsed().as_secs_f64();
            span.as_mut_slice().fill(0x5a);
            drop(span);
            if round > 0 {
                hot_secs += elapsed;
            }
        }
    }
    (batch_secs, hot_secs, heap.stats().bytes_zeroed_cold)
}

/// Runs the trace with the guess off and on, alternating, and prints each kind's time.
fn temperature(is_bench: bool) {
    let Some(after) = SpanHeap::cold_after_bytes() else {
        println!("span_heap temperature: cold memory is cleared no differently here");
        return;
    };
    // A batch of twice the cold threshold: its second half is reused after more than that many
    // bytes were handed out since its free, and is guessed cold.
    let batch = (2 * after).div_ceil(1 << 20).max(4);
    let (hot, rounds, reps) = if is_bench { (64, 3, 3) } else { (4, 1, 1) };
    let mut off = (Vec::new(), Vec::new());
    let mut on = (Vec::new(), Vec::new());
    let mut cold_bytes = 0;
    for _ in 0..reps {
        let (b, h, _) = trace(false, batch, hot, rounds);
        off.0.push(b);
        off.1.push(h);
        let (b, h, cold) = trace(true, batch, hot, rounds);
        on.0.push(b);
        on.1.push(h);
        cold_bytes = cold;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (off_batch, off_hot, on_batch, on_hot) =
        (median(&mut off.0), median(&mut off.1), median(&mut on.0), median(&mut on.1));
    println!(
        "span_heap temperature: {rounds} rounds of {batch} x 1 MiB batch spans and {hot} x 1 MiB hot \
         ones, zeroed (cold after {} MiB handed out; {} MiB guessed cold in the last run)",
        after >> 20,
        cold_bytes >> 20
    );
    println!(
        "  guess off: batch {:.1} ms  hot {:.1} ms  total {:.1} ms",
        off_batch * 1e3,
        off_hot * 1e3,
        (off_batch + off_hot) * 1e3
    );
    println!(
        "  guess on:  batch {:.1} ms  hot {:.1} ms  total {:.1} ms",
        on_batch * 1e3,
        on_hot * 1e3,
        (on_batch + on_hot) * 1e3
    );
    println!(
        "  on / off: batch {:.2}x  hot {:.2}x  total {:.2}x",
        on_batch / off_batch,
        on_hot / off_hot,
        (on_batch + on_hot) / (off_batch + off_hot)
    );
}
