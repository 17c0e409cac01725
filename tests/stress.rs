//! Several threads, each running coroutines that grow segments, panic, and are dropped while
//! suspended, for a bounded count; afterwards no thread holds a segment in use and every
//! coroutine stack is back in its pool.

use splitstack::{machine, maybe_grow, Coroutine, CoroutineResult, Yielder};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Recursion that needs segments on a coroutine's small stack.
fn deep(n: u32) -> u64 {
    maybe_grow(
        4 * 1024,
        32 * 1024,
        || if n == 0 { 1 } else { 1 + deep(std::hint::black_box(n - 1)) },
    )
}

#[test]
fn threads_of_growing_panicking_and_abandoned_coroutines_leak_nothing() {
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            std::thread::spawn(move || {
                let mut returned = 0u64;
                let mut panicked = 0u64;
                for round in 0..300u32 {
                    let depth = 1_000 + (round * 37 + t * 11) % 3_000;
                    // Small stacks, so that the recursion grows through segments.
                    let small = 16 * 1024;
                    let mut co = Coroutine::with_stack_size(
                        small,
                        move |y: &Yielder<u32, u64>, first: u32| {
                            let a = deep(depth);
                            let next = y.suspend(a);
                            let b = maybe_grow(4 * 1024, 32 * 1024, || y.suspend(deep(depth / 2)));
                            assert_eq!((next, b), (1, first));
                            if first.is_multiple_of(2) {
                                panic!("planned panic in round {round}");
                            }
                            a
                        },
                    )
                    .expect("a small coroutine stack");
                    let CoroutineResult::Yield(a) = co.resume(round) else { panic!("no yield") };
                    assert_eq!(a, depth as u64 + 1);
                    match round % 3 {
                        // Dropped while suspended on the thread's own coroutine stack.
                        0 => drop(co),
                        // Dropped while suspended on a segment.
                        1 => {
                            assert!(matches!(co.resume(1), CoroutineResult::Yield(_)));
                            drop(co);
                        }
                        // Run to the end: a return or a planned panic.
                        _ => {
                            assert!(matches!(co.resume(1), CoroutineResult::Yield(_)));
                            match catch_unwind(AssertUnwindSafe(|| co.resume(round))) {
                                Ok(CoroutineResult::Return(v)) => {
                                    assert_eq!(v, a);
                                    returned += 1;
                                }
                                Ok(CoroutineResult::Yield(_)) => panic!("unexpected yield"),
                                Err(_) => panicked += 1,
                            }
                        }
                    }
                }
                (returned, panicked, machine::stats())
            })
        })
        .collect();
    for handle in threads {
        let (returned, panicked, stats) = handle.join().unwrap();
        assert_eq!(returned + panicked, 100, "{stats:?}");
        assert!(panicked > 0 && returned > 0, "returned {returned}, panicked {panicked}");
        assert_eq!(stats.segments_in_use, 0, "segments leaked: {stats:?}");
        assert!(stats.splits > 0, "{stats:?}");
        // Every coroutine stack came back: the pool holds all the stacks ever mapped.
        assert_eq!(stats.coroutine_stacks_pooled, stats.coroutine_stacks_mapped, "{stats:?}");
    }
}
