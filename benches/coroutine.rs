//! Time of the safe coroutine API's two hot paths, splitstack against its peers in the same run.
//!
//! `coroutine_round_trip`: resume a suspended echo coroutine with a word and get a word back
//! (`Coroutine::resume` in, `Yielder::suspend` out), as `benches/switch.rs` does with the raw
//! switch. corosensei and generator run the same echo, shared with that bench (`peers`); each
//! iteration feeds the previous answer back in through `black_box`.
//!
//! `create_complete`: make a coroutine, resume it once to completion (it returns the answer to
//! its input) and drop it. splitstack takes its stack from the thread's pool (warm after the
//! first iteration); corosensei runs on one `DefaultStack` made once and handed from each
//! finished coroutine to the next (`with_stack`, then `into_stack`), and, as a third line, on a
//! new default stack each time (`Coroutine::new`: an mmap and an munmap per iteration).
//!
//! Every contender's routine closure is `#[inline(always)]`, so that each one's iteration is
//! inlined into criterion's loop, as a caller's own loop would inline it. Left to LLVM, that
//! depends on which codegen unit the closure and criterion's `iter` land in, which changes from
//! build to build: on an Intel Xeon, one build inlined corosensei's create + complete + drop and
//! not splitstack's (8.1 ns; 6.7 ns inlined), and corosensei's borrowed-stack case read 3.4 ns
//! in one build and 4.3 ns in another.
//!
//! Run: `cargo bench --bench coroutine`. The instruction counts of the same operations are in
//! `benches/coroutine_instructions.rs`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

mod peers;

use peers::create::{
    corosensei_create_complete_borrowing, corosensei_create_complete_on, splitstack_create_complete,
};
use peers::*;

/// A suspended splitstack echo on a pooled default-size stack.
struct SplitstackEcho(splitstack::Coroutine<usize, usize, ()>);

impl SplitstackEcho {
    fn new() -> Self {
        let mut co = splitstack::Coroutine::new(|yielder, mut v: usize| loop {
            v = yielder.suspend(answer(v));
        });
        co.resume(0);
        SplitstackEcho(co)
    }

    #[inline(always)]
    fn round_trip(&mut self, v: usize) -> usize {
        match self.0.resume(v) {
            splitstack::CoroutineResult::Yield(v) => v,
            splitstack::CoroutineResult::Return(()) => unreachable!("the echo never returns"),
        }
    }
}

fn coroutine_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("coroutine_round_trip");
    group.bench_function("splitstack", |b| {
        let mut echo = SplitstackEcho::new();
        let mut v = 0;
        b.iter(
            #[inline(always)]
            || {
                v = echo.round_trip(black_box(v));
                v
            },
        );
    });
    group.bench_function("corosensei", |b| {
        let mut echo = corosensei_ping_pong::PingPong::new();
        let mut v = 0;
        b.iter(
            #[inline(always)]
            || {
                v = echo.round_trip(black_box(v));
                v
            },
        );
    });
    group.bench_function("generator", |b| {
        let mut echo = generator_ping_pong::PingPong::new();
        let mut v = 0;
        b.iter(
            #[inline(always)]
            || {
                v = echo.round_trip(black_box(v));
                v
            },
        );
    });
    group.finish();
}

/// The same on corosensei with a new default stack.
#[inline(always)]
fn corosensei_create_complete_fresh(v: usize) -> usize {
    let mut co =
        corosensei::Coroutine::new(|_: &corosensei::Yielder<usize, ()>, v: usize| answer(v));
    match co.resume(v) {
        corosensei::CoroutineResult::Return(v) => v,
        corosensei::CoroutineResult::Yield(()) => unreachable!("it never suspends"),
    }
}

fn create_complete(c: &mut Criterion) {
    let mut group = c.benchmark_group("create_complete");
    group.bench_function("splitstack", |b| {
        let mut v = 0;
        b.iter(
            #[inline(always)]
            || {
                v = splitstack_create_complete(black_box(v));
                v
            },
        );
    });
    group.bench_function("corosensei_reused_stack", |b| {
        let mut stack = Some(corosensei::stack::DefaultStack::default());
        let mut v = 0;
        b.iter(
            #[inline(always)]
            || {
                let (back, next) = corosensei_create_complete_on(
                    stack.take().expect("the stack is handed back each time"),
                    black_box(v),
                );
                stack = Some(back);
                v = next;
                v
            },
        );
    });
    group.bench_function("corosensei_borrowed_stack", |b| {
        let mut stack = corosensei::stack::DefaultStack::default();
        let mut v = 0;
        b.iter(
            #[inline(always)]
            || {
                v = corosensei_create_complete_borrowing(&mut stack, black_box(v));
                v
            },
        );
    });
    group.bench_function("corosensei_fresh_stack", |b| {
        let mut v = 0;
        b.iter(
            #[inline(always)]
            || {
                v = corosensei_create_complete_fresh(black_box(v));
                v
            },
        );
    });
    group.finish();
}

criterion_group!(benches, coroutine_round_trip, create_complete);
criterion_main!(benches);
