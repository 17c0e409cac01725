//! Time of one switch round trip, splitstack against its peers in the same run.
//!
//! A round trip resumes a suspended coroutine with a word and runs until it suspends again,
//! handing a word back: two context switches. Every library runs the same echo (`answer`) on the
//! other side, and each iteration feeds the previous answer back in through `black_box`, so
//! neither direction can be optimised away.
//!
//! `splitstack_with_fpcw` is an extra, not a peer: splitstack's switch wrapped, on both sides, in
//! a save of the floating-point control state before it and a restore after it (MXCSR and the x87
//! control word on x86-64, FPCR on AArch64, fcsr on RISC-V). Its difference from `splitstack` is
//! what preserving that state across a switch would cost.
//!
//! Run: `cargo bench --bench switch`. The instruction counts of the same round trips are in
//! `benches/switch_instructions.rs`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

mod peers;

use peers::*;

fn switch_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch_round_trip");
    group.bench_function("splitstack", |b| {
        let mut pp = splitstack_ping_pong::PingPong::<false, false>::new(STACK_SIZE);
        let mut v = 0;
        b.iter(|| {
            v = pp.round_trip(black_box(v));
            v
        });
    });
    group.bench_function("splitstack_out_of_line", |b| {
        let mut pp = splitstack_ping_pong::PingPong::<false, true>::new(STACK_SIZE);
        let mut v = 0;
        b.iter(|| {
            v = pp.round_trip(black_box(v));
            v
        });
    });
    group.bench_function("corosensei", |b| {
        let mut pp = corosensei_ping_pong::PingPong::new();
        let mut v = 0;
        b.iter(|| {
            v = pp.round_trip(black_box(v));
            v
        });
    });
    // boost.context's `context` crate has no RISC-V port.
    #[cfg(not(target_arch = "riscv64"))]
    group.bench_function("context", |b| {
        let mut pp = context_ping_pong::PingPong::new(STACK_SIZE);
        let mut v = 0;
        b.iter(|| {
            v = pp.round_trip(black_box(v));
            v
        });
    });
    group.bench_function("generator", |b| {
        let mut pp = generator_ping_pong::PingPong::new();
        let mut v = 0;
        b.iter(|| {
            v = pp.round_trip(black_box(v));
            v
        });
    });
    group.bench_function("splitstack_with_fpcw", |b| {
        let mut pp = splitstack_ping_pong::PingPong::<true, false>::new(STACK_SIZE);
        let mut v = 0;
        b.iter(|| {
            v = pp.round_trip(black_box(v));
            v
        });
    });
    group.finish();
}

criterion_group!(benches, switch_round_trip);
criterion_main!(benches);
