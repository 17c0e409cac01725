//! Instructions per coroutine operation (gungraun on callgrind), splitstack's safe API against
//! corosensei's.
//!
//! - `round_trip_*`: `resume` a suspended echo with a word, get a word back from `suspend` (the
//!   operation of `coroutine_round_trip` in `benches/coroutine.rs`). The echo is created and
//!   started in a setup function, outside the measured function.
//! - `create_complete_*`: create a coroutine, resume it to completion, drop it (`create_complete`
//!   there). The setup warms the stack: splitstack's pool holds a stack of the right size,
//!   corosensei's `DefaultStack` is made and used once, then handed from each coroutine to the
//!   next (`create_complete_corosensei`) or lent to a `ScopedCoroutine` each time, corosensei at
//!   its best (`create_complete_corosensei_borrowing`).
//!
//! The measured function runs `rounds` operations in a loop, and the count per operation is
//!
//! ```text
//! (count at rounds = 1000 - count at rounds = 0) / 1000
//! ```
//!
//! which cancels the measured function's fixed cost (as in `benches/switch_instructions.rs`);
//! `rounds = 1` is there to check that one operation costs what the average does.
//!
//! Run: `cargo bench --bench coroutine_instructions` (needs valgrind and `gungraun-runner`
//! 0.20.0).

use gungraun::{
    library_benchmark, library_benchmark_group, main, Callgrind, EntryPoint, LibraryBenchmarkConfig,
};
use std::hint::black_box;

mod peers;

use peers::answer;
use peers::create::{
    corosensei_create_complete_borrowing, corosensei_create_complete_on, splitstack_create_complete,
};

/// Run `rounds` operations through `op`, feeding each answer back in; returns the last.
#[inline(always)]
fn run(rounds: usize, mut op: impl FnMut(usize) -> usize) -> usize {
    let mut v = 0;
    for _ in 0..black_box(rounds) {
        v = op(black_box(v));
    }
    v
}

type SplitstackEcho = splitstack::Coroutine<usize, usize, ()>;
type CorosenseiEcho = corosensei::Coroutine<usize, usize, ()>;

/// A started splitstack echo (suspended at its first `suspend`).
fn splitstack_echo_setup(rounds: usize) -> (SplitstackEcho, usize) {
    let mut co = SplitstackEcho::new(|yielder, mut v: usize| loop {
        v = yielder.suspend(answer(v));
    });
    co.resume(0);
    (co, rounds)
}

#[library_benchmark]
#[bench::rounds_0(args = (0), setup = splitstack_echo_setup)]
#[bench::rounds_1(args = (1), setup = splitstack_echo_setup)]
#[bench::rounds_1000(args = (1000), setup = splitstack_echo_setup)]
fn round_trip_splitstack(input: (SplitstackEcho, usize)) -> SplitstackEcho {
    let (mut co, rounds) = input;
    black_box(run(rounds, |v| match co.resume(v) {
        splitstack::CoroutineResult::Yield(v) => v,
        splitstack::CoroutineResult::Return(()) => unreachable!("the echo never returns"),
    }));
    co
}

/// A started corosensei echo on its default stack.
fn corosensei_echo_setup(rounds: usize) -> (CorosenseiEcho, usize) {
    let mut co = CorosenseiEcho::new(|yielder, mut v: usize| loop {
        v = yielder.suspend(answer(v));
    });
    co.resume(0);
    (co, rounds)
}

#[library_benchmark]
#[bench::rounds_0(args = (0), setup = corosensei_echo_setup)]
#[bench::rounds_1(args = (1), setup = corosensei_echo_setup)]
#[bench::rounds_1000(args = (1000), setup = corosensei_echo_setup)]
fn round_trip_corosensei(input: (CorosenseiEcho, usize)) -> CorosenseiEcho {
    let (mut co, rounds) = input;
    black_box(run(rounds, |v| match co.resume(v) {
        corosensei::CoroutineResult::Yield(v) => v,
        corosensei::CoroutineResult::Return(()) => unreachable!("the echo never returns"),
    }));
    co
}

/// One coroutine created and completed, so that the pool holds a default-size stack.
fn splitstack_pool_setup(rounds: usize) -> usize {
    black_box(splitstack_create_complete(0));
    rounds
}

#[library_benchmark]
#[bench::rounds_0(args = (0), setup = splitstack_pool_setup)]
#[bench::rounds_1(args = (1), setup = splitstack_pool_setup)]
#[bench::rounds_1000(args = (1000), setup = splitstack_pool_setup)]
fn create_complete_splitstack(rounds: usize) -> usize {
    // The loop written out, so that the operation is inlined into it rather than called
    // through a closure the inliner may leave out of line (the corosensei case keeps its
    // closure, which hands the stack from each coroutine to the next).
    let mut v = 0;
    for _ in 0..black_box(rounds) {
        v = splitstack_create_complete(black_box(v));
    }
    v
}

/// A default stack, used once.
fn corosensei_stack_setup(rounds: usize) -> (corosensei::stack::DefaultStack, usize) {
    let (stack, _) = corosensei_create_complete_on(Default::default(), 0);
    (stack, rounds)
}

#[library_benchmark]
#[bench::rounds_0(args = (0), setup = corosensei_stack_setup)]
#[bench::rounds_1(args = (1), setup = corosensei_stack_setup)]
#[bench::rounds_1000(args = (1000), setup = corosensei_stack_setup)]
fn create_complete_corosensei(
    input: (corosensei::stack::DefaultStack, usize),
) -> corosensei::stack::DefaultStack {
    let (stack, rounds) = input;
    let mut stack = Some(stack);
    black_box(run(rounds, |v| {
        let (back, v) =
            corosensei_create_complete_on(stack.take().expect("handed back each time"), v);
        stack = Some(back);
        v
    }));
    stack.expect("handed back")
}

#[library_benchmark]
#[bench::rounds_0(args = (0), setup = corosensei_stack_setup)]
#[bench::rounds_1(args = (1), setup = corosensei_stack_setup)]
#[bench::rounds_1000(args = (1000), setup = corosensei_stack_setup)]
fn create_complete_corosensei_borrowing(
    input: (corosensei::stack::DefaultStack, usize),
) -> corosensei::stack::DefaultStack {
    let (mut stack, rounds) = input;
    let mut v = 0;
    for _ in 0..black_box(rounds) {
        v = corosensei_create_complete_borrowing(&mut stack, black_box(v));
    }
    black_box(v);
    stack
}

library_benchmark_group!(
    name = coroutine,
    benchmarks = [
        round_trip_splitstack,
        round_trip_corosensei,
        create_complete_splitstack,
        create_complete_corosensei,
        create_complete_corosensei_borrowing
    ]
);

// Every instruction of the benchmark process is counted, not only those under the benchmark
// function: a coroutine switch moves the stack pointer to another stack, which callgrind takes
// for a return out of the function it toggles collection on, so with the default entry point
// the instructions of the other side (and of whatever follows, until the function is entered
// again) go uncounted, by amounts that change with inlining. The per-operation count subtracts
// the `rounds_0` case, which runs the same process, setup and teardown.
main!(
    config = LibraryBenchmarkConfig::default()
        .tool(Callgrind::default().entry_point(EntryPoint::None));
    library_benchmark_groups = coroutine
);
