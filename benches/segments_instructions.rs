//! Instructions per segmented-stack operation (gungraun on callgrind), splitstack against stacker.
//!
//! The operations are those of `benches/segments.rs`: a hot split (`grow(64 KiB, tiny)`, the
//! `*_grow` benches) and the `maybe_grow` check when the stack has room (the `*_maybe_grow`
//! benches). A setup function, outside the measured function, runs the operation once, so the
//! measured loop is the steady state: splitstack's segment is in its thread's cache and both
//! libraries have learnt the thread's stack bounds. The measured function then runs `rounds`
//! operations in a loop. The count per operation is
//!
//! ```text
//! (count at rounds = 1000 - count at rounds = 0) / 1000
//! ```
//!
//! which cancels the measured function's fixed cost; `loop_only` runs the same loop calling
//! `tiny` directly, so its per-round figure is the loop's and `tiny`'s share of the others.
//! `rounds = 1` is there to check that one operation costs what the average does.
//!
//! Callgrind counts user-space instructions only: stacker's grow maps and unmaps its segment with
//! a system call each time, and the kernel's share of that is not in its count.
//!
//! Run: `cargo bench --bench segments_instructions` (needs valgrind and `gungraun-runner`
//! 0.20.0).

use gungraun::{
    library_benchmark, library_benchmark_group, main, Callgrind, EntryPoint, LibraryBenchmarkConfig,
};
use std::hint::black_box;

/// The segment size of the hot split.
const SPLIT_SEGMENT: usize = 64 * 1024;
/// The red zone of every `maybe_grow` here.
const RED_ZONE: usize = 32 * 1024;
/// The segment size of every `maybe_grow` here.
const GROW_SEGMENT: usize = 1 << 20;

/// The work each operation runs, as in `benches/segments.rs`.
#[inline(never)]
fn tiny(x: u64) -> u64 {
    black_box(x) + 1
}

/// Run `rounds` operations through `op`, feeding each result back in; returns the last.
#[inline(always)]
fn run(rounds: usize, mut op: impl FnMut(u64) -> u64) -> u64 {
    let mut v = 0;
    for _ in 0..black_box(rounds) {
        v = op(black_box(v));
    }
    v
}

// The loop of the other benches calling `tiny` directly: its per-round count is their loop and
// `tiny` overhead. (Plain comments: #[library_benchmark] accepts no other attributes on its
// function.)
#[library_benchmark]
#[bench::rounds_0(0)]
#[bench::rounds_1(1)]
#[bench::rounds_1000(1000)]
fn loop_only(rounds: usize) -> u64 {
    run(rounds, tiny)
}

fn splitstack_grow_setup(rounds: usize) -> usize {
    // The first grow maps the segment; later ones take it from the cache.
    black_box(splitstack::grow(SPLIT_SEGMENT, || tiny(black_box(0))));
    rounds
}

#[library_benchmark]
#[bench::rounds_0(args = (0), setup = splitstack_grow_setup)]
#[bench::rounds_1(args = (1), setup = splitstack_grow_setup)]
#[bench::rounds_1000(args = (1000), setup = splitstack_grow_setup)]
fn splitstack_grow(rounds: usize) -> u64 {
    run(rounds, |v| splitstack::grow(SPLIT_SEGMENT, || tiny(v)))
}

fn stacker_grow_setup(rounds: usize) -> usize {
    // stacker keeps no segment; this warms its thread-local state and the allocator.
    black_box(stacker::grow(SPLIT_SEGMENT, || tiny(black_box(0))));
    rounds
}

#[library_benchmark]
#[bench::rounds_0(args = (0), setup = stacker_grow_setup)]
#[bench::rounds_1(args = (1), setup = stacker_grow_setup)]
#[bench::rounds_1000(args = (1000), setup = stacker_grow_setup)]
fn stacker_grow(rounds: usize) -> u64 {
    run(rounds, |v| stacker::grow(SPLIT_SEGMENT, || tiny(v)))
}

fn splitstack_maybe_grow_setup(rounds: usize) -> usize {
    // The first check learns the thread's stack bounds.
    black_box(splitstack::maybe_grow(RED_ZONE, GROW_SEGMENT, || tiny(black_box(0))));
    rounds
}

#[library_benchmark]
#[bench::rounds_0(args = (0), setup = splitstack_maybe_grow_setup)]
#[bench::rounds_1(args = (1), setup = splitstack_maybe_grow_setup)]
#[bench::rounds_1000(args = (1000), setup = splitstack_maybe_grow_setup)]
fn splitstack_maybe_grow(rounds: usize) -> u64 {
    run(rounds, |v| splitstack::maybe_grow(RED_ZONE, GROW_SEGMENT, || tiny(v)))
}

fn stacker_maybe_grow_setup(rounds: usize) -> usize {
    // The first check initialises stacker's thread-local stack limit.
    black_box(stacker::maybe_grow(RED_ZONE, GROW_SEGMENT, || tiny(black_box(0))));
    rounds
}

#[library_benchmark]
#[bench::rounds_0(args = (0), setup = stacker_maybe_grow_setup)]
#[bench::rounds_1(args = (1), setup = stacker_maybe_grow_setup)]
#[bench::rounds_1000(args = (1000), setup = stacker_maybe_grow_setup)]
fn stacker_maybe_grow(rounds: usize) -> u64 {
    run(rounds, |v| stacker::maybe_grow(RED_ZONE, GROW_SEGMENT, || tiny(v)))
}

library_benchmark_group!(
    name = segments,
    benchmarks =
        [loop_only, splitstack_grow, stacker_grow, splitstack_maybe_grow, stacker_maybe_grow]
);

// Every instruction of the benchmark process is counted (no entry point), as in
// coroutine_instructions.rs, which says why; the per-operation count subtracts `rounds_0`.
main!(
    config = LibraryBenchmarkConfig::default()
        .tool(Callgrind::default().entry_point(EntryPoint::None));
    library_benchmark_groups = segments
);
