//! The one method by which the tour (examples/tour.rs) and the memclr bench (benches/memclr.rs,
//! `SPLITSTACK_MEMCLR_INTERLEAVED=1`) compare memclr with memset, so that their figures agree,
//! in the two cache states a heap's clear meets:
//!
//! - hot: each contender clears its own buffer again and again, so the buffer stays as cached
//!   as its size lets it;
//! - cold: before each timed clear, each contender's buffers are written and then flushed from
//!   every cache level (`clflush` of each line, then `mfence`; x86-64 only), as a span freed long
//!   ago is; small sizes clear many such buffers in a row, so that the clock's own cost stays
//!   small beside them.
//!
//! The contenders take turns round by round, in a new order each round, so that a load that
//! comes and goes hits them all alike. In a round each one clears buffers that no other touches
//! in that round; the sets pass from one contender to the next from round to round. A row gives
//! each contender's median GB/s over the rounds and the median, with quartiles, of the rounds'
//! ratios of memclr's speed to memset's (a ratio taken within a round). Contender 0 is memclr,
//! contender 1 memset.
//!
//! Shared as a source file (`#[path]`), not as the crate's API: it measures, it is not part of
//! what the crate offers.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// A way to clear a buffer, named.
pub struct Contender<'a> {
    pub name: &'a str,
    pub clear: &'a dyn Fn(&mut [u8]),
}

/// The cache state a row is measured in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Hot,
    Cold,
}

/// One size's figures.
pub struct Row {
    pub size: usize,
    /// Each contender's median GB/s over the rounds.
    pub gbps: Vec<f64>,
    /// The median over the rounds of memclr's speed relative to memset's.
    pub ratio: f64,
    /// That ratio's first and third quartiles.
    pub quartiles: (f64, f64),
}

/// Whether this target can measure `state` (the cold state needs `clflush`).
pub fn can_measure(state: State) -> bool {
    state == State::Hot || cfg!(target_arch = "x86_64")
}

/// Measures `size`-byte clears by `contenders` in `state`, in `rounds` interleaved rounds, each
/// contender on buffers of its own in a round, which start `offset` bytes past a page boundary.
///
/// # Panics
/// If there are fewer than two contenders, or the state cannot be measured here.
pub fn measure(
    contenders: &[Contender],
    size: usize,
    state: State,
    offset: usize,
    rounds: usize,
) -> Row {
    assert!(contenders.len() >= 2, "memclr and memset, at least");
    assert!(can_measure(state), "the cold state flushes with clflush, x86-64 only");
    assert!(offset < 4096, "an offset within a page");
    // Buffers a page apart beyond their size, so that each starts at the same offset in its
    // page; cold, 1 MiB of them in all for small sizes.
    let stride = size.next_multiple_of(4096) + 4096;
    let count = match state {
        State::Hot => 1,
        State::Cold => ((1 << 20) / size.max(1)).clamp(1, 256),
    };
    let mut storage: Vec<Buffers> =
        contenders.iter().map(|_| Buffers::new(count * stride, offset)).collect();
    let iters = match state {
        State::Hot => hot_iterations(contenders[1].clear, storage[1].buf(0, size)),
        State::Cold => 1,
    };
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ size as u64);
    let n = contenders.len();
    let mut samples = vec![Vec::with_capacity(rounds); n];
    let mut ratios = Vec::with_capacity(rounds);
    let mut order: Vec<usize> = (0..n).collect();
    for round in 0..rounds {
        for k in (1..n).rev() {
            order.swap(k, rng.below(k + 1));
        }
        let mut secs = vec![0.0; n];
        for &i in &order {
            let clear = contenders[i].clear;
            // The sides take turns with the buffers too, round by round: which physical pages a
            // buffer got moved a side's cold figure by 10 % from one allocation to the next.
            let buffers = &mut storage[(i + round) % n];
            let taken = match state {
                State::Hot => {
                    let buf = buffers.buf(0, size);
                    clear(black_box(&mut *buf)); // the buffer as this contender leaves it
                    let start = Instant::now();
                    for _ in 0..iters {
                        clear(black_box(&mut *buf));
                    }
                    start.elapsed().as_secs_f64()
                }
                State::Cold => {
                    for b in 0..count {
                        let buf = buffers.buf(b * stride, size);
                        buf.fill(0x5a);
                        flush(buf);
                    }
                    fence();
                    let start = Instant::now();
                    for b in 0..count {
                        clear(black_box(buffers.buf(b * stride, size)));
                    }
                    start.elapsed().as_secs_f64()
                }
            };
            secs[i] = taken;
            samples[i].push((size * iters * count) as f64 / taken / 1e9);
        }
        ratios.push(secs[1] / secs[0]);
    }
    let gbps = samples.iter_mut().map(|s| median(s)).collect();
    let ratio = median(&mut ratios);
    let quartiles = (ratios[rounds / 4], ratios[3 * rounds / 4]);
    Row { size, gbps, ratio, quartiles }
}

/// A row as text: the size, each contender's GB/s, the ratio and its quartiles.
pub fn format_row(row: &Row) -> String {
    let size = row.size;
    let label =
        if size >= 1 << 20 { format!("{}MiB", size >> 20) } else { format!("{}KiB", size >> 10) };
    let mut line = format!("{label:>8}");
    for gbps in &row.gbps {
        line += &format!(" | {gbps:>12.1}");
    }
    let (q1, q3) = row.quartiles;
    line + &format!(" | {:.2}x [{q1:.2}-{q3:.2}]", row.ratio)
}

/// The header that [`format_row`]'s columns go under.
pub fn format_header(contenders: &[Contender], state: State) -> String {
    let mut line = format!("{:>8}", "size");
    for contender in contenders {
        line += &format!(" | {:>12}", contender.name);
    }
    line + &format!(" | memclr/memset, median of rounds [quartiles], {state:?} (GB/s)")
}

/// Clears per hot timing: about 2 ms of memset at its speed here.
fn hot_iterations(memset: &dyn Fn(&mut [u8]), buf: &mut [u8]) -> usize {
    let start = Instant::now();
    let mut probe = 0usize;
    while start.elapsed() < Duration::from_millis(20) {
        memset(black_box(&mut *buf));
        probe += 1;
    }
    (probe / 10).max(1)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A contender's memory: `len` bytes from `offset` past a page boundary, written once so that
/// its pages are mapped before anything is timed.
struct Buffers {
    storage: Vec<u8>,
    start: usize,
}

impl Buffers {
    fn new(len: usize, offset: usize) -> Buffers {
        let storage = vec![1u8; len + 2 * 4096];
        let start = storage.as_ptr().align_offset(4096) + offset;
        Buffers { storage, start }
    }

    /// `len` bytes at `at` past the start.
    fn buf(&mut self, at: usize, len: usize) -> &mut [u8] {
        &mut self.storage[self.start + at..self.start + at + len]
    }
}

/// xorshift64: the rounds' shuffles.
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

#[cfg(not(target_arch = "x86_64"))]
fn flush(_: &[u8]) {
    unreachable!("measure refuses the cold state here")
}

/// The flushes are done before the clock starts.
#[cfg(target_arch = "x86_64")]
fn fence() {
    // SAFETY: a fence only orders.
    unsafe { core::arch::x86_64::_mm_mfence() };
}

#[cfg(not(target_arch = "x86_64"))]
fn fence() {}
