//! Instructions (gungraun on callgrind) of the span heap's hot paths and of memclr at small
//! sizes, where the count is meaningful (callgrind counts a `rep stosb` as one instruction per
//! byte, so the large sizes are timed with criterion in `benches/memclr.rs` instead).
//!
//! As in the other instruction benches, each function runs `rounds` operations and the count per
//! operation is `(count at rounds = 1000 - count at rounds = 0) / 1000`.
//!
//! Run: `cargo bench --bench heap_instructions`.

use gungraun::{
    library_benchmark, library_benchmark_group, main, Callgrind, EntryPoint, LibraryBenchmarkConfig,
};
use splitstack::{memclr, SpanHeap};
use std::hint::black_box;

/// A heap with one arena mapped and a span allocated and freed, so the loop is steady state.
fn warm_heap(rounds: usize) -> (SpanHeap, usize) {
    let heap = SpanHeap::new();
    heap.free(heap.alloc(1, false).expect("a first span"));
    (heap, rounds)
}

// One page allocated without zeroing and freed again: the lock, the search of the free-page
// bitmap, and the free that sets the page's bit again.
#[library_benchmark]
#[bench::rounds_0(args = (0), setup = warm_heap)]
#[bench::rounds_1(args = (1), setup = warm_heap)]
#[bench::rounds_1000(args = (1000), setup = warm_heap)]
fn span_alloc_free(input: (SpanHeap, usize)) -> SpanHeap {
    let (heap, rounds) = input;
    for _ in 0..black_box(rounds) {
        let span = heap.alloc(black_box(1), false).expect("a page");
        heap.free(black_box(span));
    }
    heap
}

/// A 256-byte buffer, dirty, and the number of rounds.
fn dirty_buffer(rounds: usize) -> (Vec<u8>, usize) {
    (vec![0xa5; 256], rounds)
}

// memclr of 256 bytes (below every rep stosb and non-temporal threshold).
#[library_benchmark]
#[bench::rounds_0(args = (0), setup = dirty_buffer)]
#[bench::rounds_1(args = (1), setup = dirty_buffer)]
#[bench::rounds_1000(args = (1000), setup = dirty_buffer)]
fn memclr_256(input: (Vec<u8>, usize)) -> Vec<u8> {
    let (mut buf, rounds) = input;
    for _ in 0..black_box(rounds) {
        memclr(black_box(&mut buf[..]));
    }
    buf
}

library_benchmark_group!(name = heap_hot_paths, benchmarks = [span_alloc_free, memclr_256]);

// Every instruction of the benchmark process is counted (no entry point), as in
// coroutine_instructions.rs, which says why; the per-operation count subtracts `rounds_0`.
main!(
    config = LibraryBenchmarkConfig::default()
        .tool(Callgrind::default().entry_point(EntryPoint::None));
    library_benchmark_groups = heap_hot_paths
);
