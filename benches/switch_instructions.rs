//! Instructions per switch round trip (gungraun on callgrind), splitstack against its peers.
//!
//! The round trips are those of `benches/switch.rs`: resume a suspended echo coroutine with a word,
//! get a word back. Each library's echo is created and started in a setup function, outside the
//! measured function, which then runs `rounds` round trips in a loop. The count per round trip is
//!
//! ```text
//! (count at rounds = 1000 - count at rounds = 0) / 1000
//! ```
//!
//! which cancels the measured function's fixed cost; `loop_only` runs the same loop with the
//! answer computed in place, so its per-round figure is the loop's own share of the others.
//! `rounds = 1` is there to check that one round costs what the average does.
//!
//! Run: `cargo bench --bench switch_instructions` (needs valgrind and `gungraun-runner` 0.20.0).

use gungraun::{
    library_benchmark, library_benchmark_group, main, Callgrind, EntryPoint, LibraryBenchmarkConfig,
};
use std::hint::black_box;

mod peers;

use peers::*;

/// Run `rounds` round trips through `trip`, feeding each answer back in; returns the last.
#[inline(always)]
fn run(rounds: usize, mut trip: impl FnMut(usize) -> usize) -> usize {
    let mut v = 0;
    for _ in 0..black_box(rounds) {
        v = trip(black_box(v));
    }
    v
}

// The loop of the other benches with no switch: its per-round count is their loop overhead.
// (Plain comments: #[library_benchmark] accepts no other attributes on its function.)
#[library_benchmark]
#[bench::rounds_0(0)]
#[bench::rounds_1(1)]
#[bench::rounds_1000(1000)]
fn loop_only(rounds: usize) -> usize {
    run(rounds, answer)
}

fn splitstack_setup(rounds: usize) -> (splitstack_ping_pong::PingPong<false, false>, usize) {
    (splitstack_ping_pong::PingPong::new(STACK_SIZE), rounds)
}

#[library_benchmark]
#[bench::rounds_0(args = (0), setup = splitstack_setup)]
#[bench::rounds_1(args = (1), setup = splitstack_setup)]
#[bench::rounds_1000(args = (1000), setup = splitstack_setup)]
fn splitstack(
    input: (splitstack_ping_pong::PingPong<false, false>, usize),
) -> splitstack_ping_pong::PingPong<false, false> {
    let (mut pp, rounds) = input;
    black_box(run(rounds, |v| pp.round_trip(v)));
    pp
}

fn splitstack_with_fpcw_setup(
    rounds: usize,
) -> (splitstack_ping_pong::PingPong<true, false>, usize) {
    (splitstack_ping_pong::PingPong::new(STACK_SIZE), rounds)
}

// splitstack's round trip with the floating-point control state saved and restored around each
// switch, on both sides (see `benches/switch.rs`).
#[library_benchmark]
#[bench::rounds_0(args = (0), setup = splitstack_with_fpcw_setup)]
#[bench::rounds_1(args = (1), setup = splitstack_with_fpcw_setup)]
#[bench::rounds_1000(args = (1000), setup = splitstack_with_fpcw_setup)]
fn splitstack_with_fpcw(
    input: (splitstack_ping_pong::PingPong<true, false>, usize),
) -> splitstack_ping_pong::PingPong<true, false> {
    let (mut pp, rounds) = input;
    black_box(run(rounds, |v| pp.round_trip(v)));
    pp
}

fn splitstack_out_of_line_setup(
    rounds: usize,
) -> (splitstack_ping_pong::PingPong<false, true>, usize) {
    (splitstack_ping_pong::PingPong::new(STACK_SIZE), rounds)
}

// splitstack's round trip through the out-of-line assembly routine (`swap_out_of_line`).
#[library_benchmark]
#[bench::rounds_0(args = (0), setup = splitstack_out_of_line_setup)]
#[bench::rounds_1(args = (1), setup = splitstack_out_of_line_setup)]
#[bench::rounds_1000(args = (1000), setup = splitstack_out_of_line_setup)]
fn splitstack_out_of_line(
    input: (splitstack_ping_pong::PingPong<false, true>, usize),
) -> splitstack_ping_pong::PingPong<false, true> {
    let (mut pp, rounds) = input;
    black_box(run(rounds, |v| pp.round_trip(v)));
    pp
}

fn corosensei_setup(rounds: usize) -> (corosensei_ping_pong::PingPong, usize) {
    (corosensei_ping_pong::PingPong::new(), rounds)
}

#[library_benchmark]
#[bench::rounds_0(args = (0), setup = corosensei_setup)]
#[bench::rounds_1(args = (1), setup = corosensei_setup)]
#[bench::rounds_1000(args = (1000), setup = corosensei_setup)]
fn corosensei(input: (corosensei_ping_pong::PingPong, usize)) -> corosensei_ping_pong::PingPong {
    let (mut pp, rounds) = input;
    black_box(run(rounds, |v| pp.round_trip(v)));
    pp
}

#[cfg(not(target_arch = "riscv64"))]
fn context_setup(rounds: usize) -> (context_ping_pong::PingPong, usize) {
    (context_ping_pong::PingPong::new(STACK_SIZE), rounds)
}

// boost.context's `context` crate has no RISC-V port: there the group runs without it.
#[cfg(not(target_arch = "riscv64"))]
#[library_benchmark]
#[bench::rounds_0(args = (0), setup = context_setup)]
#[bench::rounds_1(args = (1), setup = context_setup)]
#[bench::rounds_1000(args = (1000), setup = context_setup)]
fn context(input: (context_ping_pong::PingPong, usize)) -> context_ping_pong::PingPong {
    let (mut pp, rounds) = input;
    black_box(run(rounds, |v| pp.round_trip(v)));
    pp
}

fn generator_setup(rounds: usize) -> (generator_ping_pong::PingPong, usize) {
    (generator_ping_pong::PingPong::new(), rounds)
}

#[library_benchmark]
#[bench::rounds_0(args = (0), setup = generator_setup)]
#[bench::rounds_1(args = (1), setup = generator_setup)]
#[bench::rounds_1000(args = (1000), setup = generator_setup)]
fn generator(input: (generator_ping_pong::PingPong, usize)) -> generator_ping_pong::PingPong {
    let (mut pp, rounds) = input;
    black_box(run(rounds, |v| pp.round_trip(v)));
    pp
}

#[cfg(not(target_arch = "riscv64"))]
library_benchmark_group!(
    name = switch_round_trip,
    benchmarks = [
        loop_only,
        splitstack,
        splitstack_out_of_line,
        corosensei,
        context,
        generator,
        splitstack_with_fpcw
    ]
);
#[cfg(target_arch = "riscv64")]
library_benchmark_group!(
    name = switch_round_trip,
    benchmarks = [
        loop_only,
        splitstack,
        splitstack_out_of_line,
        corosensei,
        generator,
        splitstack_with_fpcw
    ]
);

// Every instruction of the benchmark process is counted (no entry point), as in
// coroutine_instructions.rs, which says why; the per-operation count subtracts `rounds_0`.
main!(
    config = LibraryBenchmarkConfig::default()
        .tool(Callgrind::default().entry_point(EntryPoint::None));
    library_benchmark_groups = switch_round_trip
);
