//! The safe coroutine API: values both ways, panics, drops, growth, pooling, backtraces,
//! overflow reports, many live coroutines.

mod common;

use common::{
    assert_child_exited, assert_overflow_reported, bottomless, child_case, deep_sum, run_child,
};
use splitstack::{
    grow, machine, maybe_grow, Coroutine, CoroutineResult, ErrorKind, Yielder, DEFAULT_STACK_SIZE,
};
use std::cell::Cell;
use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

/// A size below `isize::MAX` that no 64-bit process can map (4 EiB). A 32-bit one has no such
/// size: its `isize::MAX` (2 GiB) fits in the 4 GiB a 64-bit kernel gives it, so there the
/// refusal is tested by tests/fault_injection.rs, under a lowered `RLIMIT_AS`.
#[cfg(target_pointer_width = "64")]
const NEVER_MAPPABLE: usize = 1 << 62;

#[test]
fn values_travel_both_ways_until_the_closure_returns() {
    let mut co = Coroutine::new(|y, mut total: u64| {
        for i in 0..5u64 {
            total += y.suspend(total * 100 + i);
        }
        format!("total {total}")
    });
    assert_eq!(co.resume(1), CoroutineResult::Yield(100));
    assert_eq!(co.resume(2), CoroutineResult::Yield(301));
    assert_eq!(co.resume(3), CoroutineResult::Yield(602));
    assert_eq!(co.resume(4), CoroutineResult::Yield(1003));
    assert_eq!(co.resume(5), CoroutineResult::Yield(1504));
    assert!(!co.done());
    assert_eq!(co.resume(6), CoroutineResult::Return("total 21".to_string()));
    assert!(co.done());
}

/// Echoes `inputs` back through a coroutine, each value changed by `step`: inputs cross at every
/// resume (the first one through the trampoline) and values at every suspend.
fn echo_each<T: Clone + PartialEq + std::fmt::Debug + 'static>(inputs: &[T], step: fn(T) -> T) {
    let mut co = Coroutine::new(move |y, mut v: T| loop {
        v = y.suspend(step(v));
    });
    for v in inputs {
        assert_eq!(co.resume(v.clone()), CoroutineResult::Yield(step(v.clone())));
    }
}

#[derive(Clone, Debug, PartialEq)]
#[repr(align(64))]
struct OverAlignedUnit;

#[derive(Clone, Debug, PartialEq)]
struct Padded(u8, u16);

#[test]
fn values_of_every_size_cross_both_ways() {
    // Up to a word they cross in a register, larger ones through the record.
    echo_each(&[(), ()], |()| ());
    echo_each(&[OverAlignedUnit, OverAlignedUnit], |u| u);
    echo_each(&[true, false, true], |b| !b);
    echo_each(&[1u8, 255], |v| v.wrapping_add(1));
    echo_each(&[Padded(1, 2), Padded(250, 65535)], |Padded(a, b)| Padded(b as u8, a as u16));
    echo_each(&[u32::MAX, 7], |v| v.rotate_left(3));
    echo_each(&[usize::MAX, 1], |v| v ^ 0x5a5a);
    echo_each(&[Some(Box::new(5u64)), None], |b| b.map(|v| Box::new(*v * 3)));
    echo_each(&[u128::MAX - 1, 1 << 100], |v| v.wrapping_mul(3));
    echo_each(&[[7u8; 33], [0u8; 33]], |mut a| {
        a.reverse();
        a[0] ^= 1;
        a
    });
    echo_each(&["a".to_string(), "text".repeat(50)], |s| s + "!");
    echo_each(&[Rc::new(3), Rc::new(4)], |r| Rc::new(*r + 1));
}

#[test]
fn a_value_suspended_during_the_cancellation_is_dropped() {
    // A closure that swallows the cancellation and suspends again hands out a value nobody
    // takes: the drop drops it, whether it crossed in a register (one word) or the record.
    let word = Rc::new(());
    let record = Rc::new(());
    let (w, r) = (word.clone(), record.clone());
    let mut small = Coroutine::new(move |y, ()| {
        let _ = catch_unwind(AssertUnwindSafe(|| y.suspend(None)));
        y.suspend(Some(w.clone()));
    });
    let mut large = Coroutine::new(move |y, ()| {
        let _ = catch_unwind(AssertUnwindSafe(|| y.suspend([None, None, None])));
        y.suspend([Some(r.clone()), Some(r.clone()), None]);
    });
    assert!(matches!(small.resume(()), CoroutineResult::Yield(None)));
    assert!(matches!(large.resume(()), CoroutineResult::Yield([None, None, None])));
    drop(small);
    drop(large);
    assert_eq!(Rc::strong_count(&word), 1, "the one-word value should have been dropped");
    assert_eq!(Rc::strong_count(&record), 1, "the record's value should have been dropped");
}

#[test]
fn a_panic_reaches_the_resumer_with_its_payload_and_finishes_the_coroutine() {
    let mut co = Coroutine::new(|y, ()| {
        y.suspend(1u8);
        std::panic::panic_any(0xdead_u32);
    });
    assert_eq!(co.resume(()), CoroutineResult::Yield(1));
    let payload = catch_unwind(AssertUnwindSafe(|| co.resume(()))).unwrap_err();
    assert_eq!(payload.downcast_ref::<u32>(), Some(&0xdead));
    assert!(co.done());
    let again = catch_unwind(AssertUnwindSafe(|| co.resume(()))).unwrap_err();
    let message = again.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("resumed a coroutine that has finished"), "{message}");
}

/// Counts its drops.
struct DropCounter(Rc<Cell<u32>>);
impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn dropping_a_suspended_coroutine_runs_the_destructors_on_its_stack() {
    let drops = Rc::new(Cell::new(0));
    let inside = DropCounter(drops.clone());
    let mut co = Coroutine::new(move |y, ()| {
        let _held = inside;
        let _local = DropCounter(_held.0.clone());
        loop {
            y.suspend(());
        }
    });
    assert_eq!(co.resume(()), CoroutineResult::Yield(()));
    assert_eq!(drops.get(), 0);
    drop(co);
    assert_eq!(drops.get(), 2, "the coroutine's locals were not dropped");
}

#[test]
fn dropping_a_coroutine_that_never_ran_drops_its_closure() {
    let drops = Rc::new(Cell::new(0));
    let captured = DropCounter(drops.clone());
    let co = Coroutine::new(move |_: &Yielder<(), ()>, ()| drop(captured));
    drop(co);
    assert_eq!(drops.get(), 1);
}

#[test]
fn a_closure_that_swallows_the_cancellation_is_cancelled_again() {
    let suspends = Rc::new(Cell::new(0));
    let counter = suspends.clone();
    let mut co = Coroutine::new(move |y, ()| {
        for _ in 0..3 {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                counter.set(counter.get() + 1);
                y.suspend(())
            }));
        }
        7
    });
    assert_eq!(co.resume(()), CoroutineResult::Yield(()));
    drop(co);
    assert_eq!(suspends.get(), 3, "each suspend after the drop should have been unwound");
}

#[test]
fn a_million_levels_of_maybe_grow_inside_a_default_coroutine() {
    // An 8 KiB red zone and 256 KiB segments.
    let sum = deep_sum::<{ 8 * 1024 }, { 256 * 1024 }>;
    let n = 1_000_000u64;
    let mut co = Coroutine::new(move |y, ()| {
        let first = sum(n);
        y.suspend(first);
        sum(n / 2)
    });
    assert_eq!(co.resume(()), CoroutineResult::Yield(n * (n + 1) / 2));
    assert_eq!(co.resume(()), CoroutineResult::Return((n / 2) * (n / 2 + 1) / 2));
    assert_eq!(machine::stats().segments_in_use, 0);
    assert_eq!(machine::cret(), 0);
}

#[test]
fn segments_of_a_suspended_coroutine_survive_the_resumers_own_splits() {
    // The coroutine suspends while running on a segment; the resumer splits, resumes it from
    // its own segment, and the coroutine unsplits: each side's segments are its own.
    let mut co =
        Coroutine::new(|y: &Yielder<u64, u64>, _: u64| grow(64 * 1024, || y.suspend(1) + 10));
    assert_eq!(co.resume(0), CoroutineResult::Yield(1));
    let returned = grow(32 * 1024, || match co.resume(5) {
        CoroutineResult::Return(v) => v,
        CoroutineResult::Yield(_) => panic!("expected a return"),
    });
    assert_eq!(returned, 15);
    assert_eq!(machine::stats().segments_in_use, 0);
    assert!(splitstack::remaining_stack() > 64 * 1024, "the thread's limit was not restored");
}

#[test]
fn coroutines_nest() {
    let mut outer = Coroutine::new(|y: &Yielder<u32, u32>, _: u32| {
        let mut inner = Coroutine::new(|y2, x: u32| y2.suspend(x + 1) * 2);
        let first = match inner.resume(1) {
            CoroutineResult::Yield(v) => v,
            CoroutineResult::Return(_) => unreachable!(),
        };
        let from_outer = y.suspend(first);
        match inner.resume(from_outer) {
            CoroutineResult::Return(v) => v,
            CoroutineResult::Yield(_) => unreachable!(),
        }
    });
    assert_eq!(outer.resume(0), CoroutineResult::Yield(2));
    assert_eq!(outer.resume(21), CoroutineResult::Return(42));
}

#[test]
fn created_and_completed_coroutines_reuse_pooled_stacks() {
    // Warm the pool.
    let mut warm = Coroutine::new(|_: &Yielder<(), ()>, ()| ());
    warm.resume(());
    drop(warm);
    let before = machine::stats();
    for i in 0..1_000u64 {
        let mut co = Coroutine::new(move |_: &Yielder<(), ()>, ()| i * 2);
        assert_eq!(co.resume(()), CoroutineResult::Return(i * 2));
    }
    let after = machine::stats();
    assert_eq!(after.coroutine_stacks_mapped, before.coroutine_stacks_mapped);
    assert!(after.coroutine_stacks_pooled >= 1);
}

#[test]
fn pooled_stacks_of_two_sizes_are_both_reused() {
    let run = |size: usize| {
        let mut co = Coroutine::with_stack_size(size, move |_: &Yielder<(), ()>, ()| size).unwrap();
        assert_eq!(co.resume(()), CoroutineResult::Return(size));
    };
    // One stack of each size made (or found) and pooled; the pool holds both from here on.
    run(DEFAULT_STACK_SIZE);
    run(64 * 1024);
    let before = machine::stats();
    assert!(before.coroutine_stacks_pooled >= 2, "{before:?}");
    // Alternating sizes: each take misses the last released stack, of the other size, and
    // finds its own among the older ones.
    for _ in 0..100 {
        run(DEFAULT_STACK_SIZE);
        run(64 * 1024);
    }
    let after = machine::stats();
    assert_eq!(after.coroutine_stacks_mapped, before.coroutine_stacks_mapped);
    assert_eq!(after.coroutine_stacks_pooled, before.coroutine_stacks_pooled);
}

#[test]
fn both_sides_of_a_ping_pong_check_their_own_stacks() {
    use splitstack::remaining_stack;
    // The coroutine's stack is far smaller than the test thread's, so a side that checked the
    // other side's bounds would see a remaining count out of its own stack's range.
    const SMALL: usize = 64 * 1024;
    let mut co = Coroutine::with_stack_size(SMALL, |y: &Yielder<(), usize>, ()| loop {
        let inside = maybe_grow(4 * 1024, SMALL, remaining_stack);
        y.suspend(inside);
    })
    .unwrap();
    for _ in 0..1_000 {
        let outside = maybe_grow(4 * 1024, SMALL, remaining_stack);
        assert!(outside > SMALL, "the resumer checked {outside} bytes: not its own stack");
        match co.resume(()) {
            CoroutineResult::Yield(inside) => {
                assert!(inside > 0 && inside < SMALL, "the coroutine checked {inside} bytes")
            }
            CoroutineResult::Return(()) => unreachable!("it loops"),
        }
    }
}

#[test]
fn a_finished_coroutine_leaves_no_bounds_behind() {
    use splitstack::remaining_stack;
    const SMALL: usize = 64 * 1024;
    for _ in 0..100 {
        // The coroutine checks last, so the thread's current bounds name its record, which its
        // end must forget before the stack goes back to the pool (and to the next coroutine).
        let mut co =
            Coroutine::with_stack_size(SMALL, |_: &Yielder<(), ()>, ()| remaining_stack()).unwrap();
        match co.resume(()) {
            CoroutineResult::Return(inside) => assert!(inside < SMALL, "{inside}"),
            CoroutineResult::Yield(()) => unreachable!("it returns"),
        }
        drop(co);
        let outside = remaining_stack();
        assert!(outside > SMALL, "after the coroutine ended the thread checked {outside} bytes");
    }
}

#[inline(never)]
fn resumer_with_a_distinctive_name(co: &mut Coroutine<(), String, ()>) -> String {
    match co.resume(()) {
        CoroutineResult::Yield(trace) => trace,
        CoroutineResult::Return(()) => panic!("expected a yield"),
    }
}

#[test]
fn a_backtrace_inside_a_coroutine_names_the_function_that_resumed_it() {
    let mut co = Coroutine::with_stack_size(256 * 1024, |y, ()| {
        y.suspend(std::backtrace::Backtrace::force_capture().to_string());
    })
    .unwrap();
    let trace = resumer_with_a_distinctive_name(&mut co);
    assert!(trace.contains("resumer_with_a_distinctive_name"), "backtrace:\n{trace}");
}

#[test]
fn bad_stack_sizes_are_errors() {
    let f = |_: &Yielder<(), ()>, ()| ();
    assert_eq!(
        Coroutine::with_stack_size(0, f).err().map(|e| e.kind()),
        Some(ErrorKind::InvalidSize)
    );
    assert_eq!(
        Coroutine::with_stack_size(usize::MAX, f).err().map(|e| e.kind()),
        Some(ErrorKind::InvalidSize)
    );
    // One page cannot hold the record and closure with a page to spare.
    let err = Coroutine::with_stack_size(1, f).err().expect("a one-page coroutine stack");
    assert_eq!(err.kind(), ErrorKind::InvalidSize);
    assert!(err.to_string().contains("cannot hold"), "{err}");
    #[cfg(target_pointer_width = "64")]
    {
        let huge = Coroutine::with_stack_size(NEVER_MAPPABLE, f).err().expect("a 4 EiB stack");
        assert_eq!(huge.kind(), ErrorKind::OutOfMemory);
    }
    // A closure bigger than the inline limit is boxed and works on the default stack.
    let big = [7u8; 4096];
    let mut co =
        Coroutine::new(move |_: &Yielder<(), ()>, ()| big.iter().map(|&b| b as u32).sum::<u32>());
    assert_eq!(co.resume(()), CoroutineResult::Return(7 * 4096));
}

#[test]
fn the_default_stack_is_a_mebibyte_and_starts_nearly_empty() {
    // A mebibyte on 64-bit targets, 128 KiB on 32-bit ones (their address space is 4 GiB).
    let expected = if cfg!(target_pointer_width = "64") { 1 << 20 } else { 128 << 10 };
    assert_eq!(DEFAULT_STACK_SIZE, expected);
    let mut co = Coroutine::new(|_: &Yielder<(), ()>, ()| splitstack::remaining_stack());
    let CoroutineResult::Return(left) = co.resume(()) else { panic!("expected a return") };
    // The record, the closure and the first frames take a little of the top page.
    assert!(left <= DEFAULT_STACK_SIZE && left > DEFAULT_STACK_SIZE - 4096, "{left}");
}

#[test]
fn ten_thousand_live_coroutines() {
    let mut live: Vec<Coroutine<u32, u32, u32>> = (0..10_000u32)
        .map(|i| {
            Coroutine::new(move |y, x| {
                let got = y.suspend(x + i);
                got * 2
            })
        })
        .collect();
    for (i, co) in live.iter_mut().enumerate() {
        assert_eq!(co.resume(1), CoroutineResult::Yield(1 + i as u32));
    }
    for co in live.iter_mut() {
        assert_eq!(co.resume(3), CoroutineResult::Return(6));
    }
}

#[test]
fn an_overflow_in_a_coroutine_is_reported_and_aborts() {
    if child_case().as_deref() == Some("coroutine") {
        let mut co = Coroutine::new(|_: &Yielder<(), ()>, ()| {
            bottomless(0);
        });
        co.resume(());
        return;
    }
    let output = run_child("an_overflow_in_a_coroutine_is_reported_and_aborts", "coroutine");
    assert_overflow_reported(&output, "coroutine");
}

#[test]
fn a_fresh_threads_first_split_may_happen_inside_a_coroutine() {
    // The thread's own limit is unknown until its first check; a coroutine installs its own
    // limit meanwhile, and the thread's is learnt once the coroutine is left.
    std::thread::spawn(|| {
        let mut co = Coroutine::new(|_: &Yielder<(), u64>, ()| grow(64 * 1024, || 5u64));
        assert_eq!(co.resume(()), CoroutineResult::Return(5));
        // Back on the thread's own stack, its bounds are learnt and checks pass without growing.
        let before = machine::stats().splits;
        assert!(splitstack::remaining_stack() > 64 * 1024);
        maybe_grow(16 * 1024, 64 * 1024, || ());
        assert_eq!(machine::stats().splits, before);
    })
    .join()
    .unwrap();
}

/// Recurses `n` levels with a 1 KiB frame each, checked by maybe_grow, and suspends at the
/// bottom; panics there instead when `panic_at_bottom`.
fn hold_frames(y: &Yielder<(), ()>, n: u32, panic_at_bottom: bool) {
    maybe_grow(2 * 1024, 64 * 1024, || {
        let mut frame = [n as u8; 1024];
        std::hint::black_box(&mut frame);
        if n == 0 {
            if panic_at_bottom {
                panic!("planned panic at the bottom");
            }
            y.suspend(());
        } else {
            hold_frames(y, n - 1, panic_at_bottom);
        }
        std::hint::black_box(&mut frame);
    })
}

#[test]
fn checked_frames_leave_room_to_unwind_on_drop_and_on_panic() {
    // The unwinder needs 6-9 KiB of stack below the frames it leaves, so dropping a coroutine
    // suspended a few KiB deep, or a panic there, needs that much below the deepest checked
    // frame: maybe_grow keeps UNWIND_RESERVE free for it. In a child process, since running out
    // is an abort on the guard region.
    if child_case().as_deref() == Some("unwind-room") {
        for depth in [0u32, 1, 2, 3, 4, 6, 8, 12, 40] {
            let mut co =
                Coroutine::new(move |y: &Yielder<(), ()>, ()| hold_frames(y, depth, false));
            assert_eq!(co.resume(()), CoroutineResult::Yield(()));
            drop(co);
            let mut co = Coroutine::new(move |y: &Yielder<(), ()>, ()| hold_frames(y, depth, true));
            assert!(catch_unwind(AssertUnwindSafe(|| co.resume(()))).is_err());
        }
        println!("unwound at every depth");
        return;
    }
    let output =
        run_child("checked_frames_leave_room_to_unwind_on_drop_and_on_panic", "unwind-room");
    assert_child_exited(&output, 0, "unwound at every depth");
}

/// Eight values live across every switch on both sides: more than the caller-saved registers
/// can hold, so the compiler keeps some in rbx and rbp (x19 and x29), which the coroutine switch
/// saves itself, and the rest in registers it saves around the switch.
#[test]
fn values_live_across_coroutine_switches_survive_on_both_sides() {
    fn eight(seed: u64) -> [u64; 8] {
        core::array::from_fn(|i| black_box(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64))
    }
    let mut co = Coroutine::new(|y: &Yielder<u64, u64>, mut seed: u64| {
        let [a, b, c, d, e, f, g, h] = eight(7);
        loop {
            let next = y.suspend(a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ seed);
            assert_eq!([a, b, c, d, e, f, g, h], eight(7), "the coroutine's values changed");
            seed = next;
        }
    });
    let expected = eight(7).iter().fold(0, |x, v| x ^ v);
    let [a, b, c, d, e, f, g, h] = eight(11);
    for seed in 0..1000u64 {
        let got = co.resume(black_box(seed));
        assert_eq!(got, CoroutineResult::Yield(expected ^ seed));
        assert_eq!([a, b, c, d, e, f, g, h], eight(11), "the resumer's values changed");
    }
}

/// A stack that ran a coroutine comes back from the pool with the frames its coroutine popped
/// marked inaccessible by memcheck (and, on x86, the record's region, which the last switch
/// leaves by raising the stack pointer): the next coroutine's record, here larger than x86-64's
/// 128-byte red zone, must be writable there. Under ci/memcheck.sh this failed with invalid
/// writes before the creation path told memcheck so.
#[test]
fn a_pooled_stack_takes_a_larger_record_after_a_finished_coroutine() {
    for round in 0..3u8 {
        let big = [round; 512];
        let mut co = Coroutine::new(move |_: &Yielder<(), ()>, ()| {
            big.iter().map(|&b| b as u32).sum::<u32>()
        });
        assert_eq!(co.resume(()), CoroutineResult::Return(512 * round as u32));
    }
}
