//! corosensei's stack-ownership API on splitstack's coroutines: `with_stack`, `into_stack`,
//! `started`, `force_unwind`, `CoroutineResult::as_yield` / `as_return`.

mod common;

use common::{assert_child_passes, child_case};
use splitstack::{page_size, Coroutine, CoroutineResult, ErrorKind, Stack, Yielder};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

/// Sets its flag when dropped.
struct SetOnDrop(Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn a_callers_stack_runs_the_coroutine_and_comes_back_with_into_stack() {
    let stack = Stack::new(256 * 1024).unwrap();
    let (bottom, top) = (stack.bottom() as usize, stack.top() as usize);
    let mut co = Coroutine::with_stack(stack, |y: &Yielder<(), usize>, ()| {
        let local = 0u8;
        y.suspend(&local as *const u8 as usize);
        7
    })
    .unwrap();
    let CoroutineResult::Yield(addr) = co.resume(()) else { panic!("no yield") };
    assert!((bottom..top).contains(&addr), "the coroutine ran on the caller's stack");
    assert_eq!(co.resume(()).as_return(), Some(7));
    let stack = co.into_stack();
    assert_eq!((stack.bottom() as usize, stack.top() as usize), (bottom, top));
    // The same stack serves a second coroutine.
    let mut again = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| 11).unwrap();
    assert_eq!(again.resume(()), CoroutineResult::Return(11));
}

#[test]
fn into_stack_unwinds_a_suspended_coroutine_first() {
    let dropped = Rc::new(Cell::new(false));
    let guard = SetOnDrop(dropped.clone());
    let mut co = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let _guard = guard;
        y.suspend(());
        unreachable!("resumed after into_stack");
    });
    assert_eq!(co.resume(()).as_yield(), Some(()));
    assert!(!dropped.get());
    let stack = co.into_stack();
    assert!(dropped.get(), "the suspended frames were unwound");
    assert!(stack.len() >= splitstack::DEFAULT_STACK_SIZE);
}

#[test]
fn a_stack_too_small_for_the_record_is_an_error() {
    let stack = Stack::new(page_size()).unwrap();
    let big = [0u8; 512];
    let err = Coroutine::with_stack(stack, move |_: &Yielder<(), ()>, ()| {
        let _ = big;
    })
    .err()
    .expect("one page cannot hold the record with a page to spare");
    assert_eq!(err.kind(), ErrorKind::InvalidSize, "{err}");
}

#[test]
fn force_unwind_continues_a_destructors_panic_once_the_coroutine_is_done() {
    #[derive(Debug)]
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("from a destructor");
        }
    }
    // The coroutine catches the cancellation's unwinding and yields a value whose destructor
    // panics: the drop of that value, on this side, panics. (A frame's own destructor that
    // panics while the cancellation unwinds it aborts the process, as any panic in a destructor
    // during unwinding does.)
    let mut co = Coroutine::new(|y: &Yielder<(), Option<PanicsOnDrop>>, ()| {
        let _ = catch_unwind(AssertUnwindSafe(|| y.suspend(None)));
        y.suspend(Some(PanicsOnDrop));
    });
    assert!(matches!(co.resume(()), CoroutineResult::Yield(None)));
    let caught = catch_unwind(AssertUnwindSafe(|| co.force_unwind())).unwrap_err();
    assert_eq!(caught.downcast_ref::<&str>(), Some(&"from a destructor"));
    assert!(co.done() && co.started());
    // Done: a second force_unwind does nothing, and resuming panics with the usual message.
    co.force_unwind();
    let resumed = catch_unwind(AssertUnwindSafe(|| co.resume(()))).unwrap_err();
    let message = resumed.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("finished"), "{message}");
}

#[test]
fn a_fresh_coroutine_unwound_before_its_first_resume_drops_its_closure() {
    let dropped = Rc::new(Cell::new(false));
    let guard = SetOnDrop(dropped.clone());
    let mut co = Coroutine::new(move |_: &Yielder<(), ()>, ()| {
        let _guard = guard;
        unreachable!("never resumed");
    });
    assert!(!co.started());
    co.force_unwind();
    assert!(dropped.get());
    assert!(co.done() && co.started());
}

#[test]
fn results_convert_to_options() {
    assert_eq!(CoroutineResult::<u8, u16>::Yield(1).as_yield(), Some(1));
    assert_eq!(CoroutineResult::<u8, u16>::Yield(1).as_return(), None);
    assert_eq!(CoroutineResult::<u8, u16>::Return(2).as_return(), Some(2));
    assert_eq!(CoroutineResult::<u8, u16>::Return(2).as_yield(), None);
}

#[test]
fn on_parent_stack_runs_below_the_resumers_stack_pointer_with_its_bounds() {
    let resumer_local = 0u8;
    let resumer_addr = &resumer_local as *const u8 as usize;
    let mut co =
        Coroutine::with_stack_size(64 * 1024, move |y: &Yielder<(), (usize, usize)>, ()| {
            let here = splitstack::remaining_stack();
            let (addr, room) = y.on_parent_stack(|| {
                let local = 0u8;
                (&local as *const u8 as usize, splitstack::remaining_stack())
            });
            assert_eq!(splitstack::remaining_stack(), here, "the coroutine's bounds are back");
            y.suspend((addr, room));
        })
        .unwrap();
    let CoroutineResult::Yield((addr, room)) = co.resume(()) else { panic!("no yield") };
    // Below the resumer's frame, within a few KiB of it, and with the resumer's stack's room.
    // (Under AddressSanitizer locals live on its fake stacks, so their addresses say nothing.)
    #[cfg(not(feature = "asan"))]
    assert!(
        addr < resumer_addr && resumer_addr - addr < 64 * 1024,
        "{addr:#x} vs {resumer_addr:#x}"
    );
    assert!(room > 64 * 1024, "the resumer's stack (a test thread's) has far more than 64 KiB");
    assert!(co.resume(()).as_return().is_some());
}

#[test]
fn maybe_grow_on_the_parent_stack_grows_from_the_parents_bounds() {
    /// A recursion with a 256-byte frame that the optimizer cannot turn into a loop.
    fn deep(n: u64) -> u64 {
        splitstack::maybe_grow(16 * 1024, 256 * 1024, || {
            let frame = std::hint::black_box([n; 32]);
            if n == 0 {
                0
            } else {
                1 + deep(n - 1) + std::hint::black_box(frame)[31] - n
            }
        })
    }
    let before = splitstack::machine::stats().splits;
    let mut co = Coroutine::with_stack_size(64 * 1024, |y: &Yielder<(), u64>, ()| {
        // Too deep for the resumer's stack without segments: it must grow from there.
        y.on_parent_stack(|| deep(200_000))
    })
    .unwrap();
    assert_eq!(co.resume(()).as_return(), Some(200_000));
    assert!(splitstack::machine::stats().splits > before);
    assert_eq!(splitstack::machine::stats().segments_in_use, 0);
}

#[test]
fn a_panic_on_the_parent_stack_reaches_the_coroutine_which_goes_on() {
    let mut co = Coroutine::new(|y: &Yielder<(), &'static str>, ()| {
        let caught = catch_unwind(AssertUnwindSafe(|| y.on_parent_stack(|| panic!("up there"))));
        let message = *caught.unwrap_err().downcast_ref::<&str>().unwrap();
        y.suspend(message);
        "still running"
    });
    assert_eq!(co.resume(()).as_yield(), Some("up there"));
    assert_eq!(co.resume(()).as_return(), Some("still running"));
}

#[test]
fn a_threads_first_coroutine_on_a_callers_stack_leaves_its_stack_to_the_threads_teardown() {
    // The coroutine's stack goes into the thread's pool when it is dropped; the thread's
    // teardown must be registered to give it back when the thread exits, though no stack was
    // ever taken from that pool on this thread. The stack heap's count is process-wide, so the
    // case runs in a child process, alone.
    if child_case().as_deref() != Some("teardown") {
        assert_child_passes(
            "a_threads_first_coroutine_on_a_callers_stack_leaves_its_stack_to_the_threads_teardown",
            "teardown",
            &[],
        );
        return;
    }
    let stack = Stack::new(128 * 1024).unwrap();
    // Nothing else on the thread may touch splitstack: `machine::stats()` would set it up.
    std::thread::spawn(move || {
        let mut co = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| ()).unwrap();
        co.resume(());
        drop(co);
    })
    .join()
    .unwrap();
    // The thread has exited: its teardown gave the stack back to the process-wide free list, so
    // the next stack of that size is taken without new memory.
    let before = Stack::heap_stats();
    let again = Stack::new(128 * 1024).unwrap();
    assert_eq!(Stack::heap_stats().pages_in_use, before.pages_in_use, "{:?}", Stack::heap_stats());
    drop(again);
    println!("done");
}

/// One coroutine body for every run below: it suspends once, and whether it panics and what it
/// sees as its local are the test's questions.
fn probe(panics: bool) -> Coroutine<(), Option<u32>, Option<u32>> {
    Coroutine::new(move |yielder: &Yielder<(), Option<u32>>, ()| {
        yielder.suspend(splitstack::coroutine_local(|local: &u32| *local));
        if panics {
            panic!("probe");
        }
        splitstack::coroutine_local(|local: &u32| *local)
    })
}

/// A coroutine whose closure holds `N` bytes, so that its record lies `N` bytes lower on its
/// stack than a small closure's; it answers `(first, last byte)` of its capture plus its input.
fn holding<const N: usize>(fill: u8) -> Coroutine<u32, u32, (usize, u32)> {
    let bytes = [fill; N];
    Coroutine::new(move |yielder: &Yielder<u32, u32>, input: u32| {
        let second = yielder.suspend(input + u32::from(bytes[0]));
        (bytes.iter().map(|&b| usize::from(b)).sum(), second + u32::from(bytes[N - 1]))
    })
}

#[test]
fn coroutines_of_different_types_take_turns_on_one_pooled_stack() {
    // Each takes the stack the one before released, with its record at another address (the
    // closures differ in size) or at the same one; every value comes out of its own record.
    for round in 0..4u8 {
        let mut small = holding::<8>(round);
        assert!(!small.started());
        assert_eq!(small.resume(1), CoroutineResult::Yield(1 + u32::from(round)));
        assert_eq!(
            small.resume(2),
            CoroutineResult::Return((8 * usize::from(round), 2 + u32::from(round)))
        );
        drop(small);
        let mut large = holding::<4096>(round + 1);
        assert!(!large.started());
        assert_eq!(large.resume(3), CoroutineResult::Yield(4 + u32::from(round)));
        assert_eq!(
            large.resume(4),
            CoroutineResult::Return((4096 * usize::from(round + 1), 5 + u32::from(round)))
        );
        drop(large);
        // A fresh one dropped before it ran, then one of its type that runs.
        drop(holding::<4096>(round));
        let mut large = holding::<4096>(round);
        assert_eq!(large.resume(0), CoroutineResult::Yield(u32::from(round)));
        drop(large);
        let mut small = holding::<8>(round);
        assert_eq!(small.resume(5), CoroutineResult::Yield(5 + u32::from(round)));
        assert_eq!(
            small.resume(6),
            CoroutineResult::Return((8 * usize::from(round), 6 + u32::from(round)))
        );
    }
    let stats = splitstack::machine::stats();
    assert_eq!(stats.coroutine_stacks_mapped, 1, "one stack served them all: {stats:?}");
}

#[test]
fn two_coroutines_at_a_time_reuse_two_pooled_stacks() {
    // Both finish before either is dropped, so the second release finds the slot taken: each
    // round takes the two stacks the last one released, in either order of types.
    for round in 0..6u8 {
        let mut first = holding::<8>(round);
        let mut second = holding::<4096>(round);
        assert_eq!(first.resume(1), CoroutineResult::Yield(1 + u32::from(round)));
        assert_eq!(second.resume(2), CoroutineResult::Yield(2 + u32::from(round)));
        assert_eq!(
            second.resume(3),
            CoroutineResult::Return((4096 * usize::from(round), 3 + u32::from(round)))
        );
        assert_eq!(
            first.resume(4),
            CoroutineResult::Return((8 * usize::from(round), 4 + u32::from(round)))
        );
        if round % 2 == 0 {
            drop(first);
            drop(second);
        } else {
            drop(second);
            drop(first);
        }
    }
    let stats = splitstack::machine::stats();
    assert_eq!(stats.coroutine_stacks_mapped, 2, "two stacks served them all: {stats:?}");
    assert_eq!(stats.coroutine_stacks_pooled, 2, "{stats:?}");
}

#[test]
fn a_stack_reused_by_coroutines_of_one_type_gives_each_a_new_record() {
    // The pool hands the same stack to each coroutine below, whose record lands where the last
    // one's did; each finished its own way, leaving its record in another state.
    for round in 0..3u32 {
        // Cancelled: dropped while suspended (its record's cancellation state is set).
        let mut cancelled = probe(false);
        assert_eq!(cancelled.resume(()), CoroutineResult::Yield(None), "round {round}");
        drop(cancelled);
        a_fresh_probe_runs_through(round);

        // Unwound by `force_unwind` while suspended, then dropped as a finished coroutine.
        let mut unwound = probe(false);
        assert_eq!(unwound.resume(()), CoroutineResult::Yield(None), "round {round}");
        unwound.force_unwind();
        assert!(unwound.done(), "round {round}");
        drop(unwound);
        a_fresh_probe_runs_through(round);

        // Panicked: its payload was taken by its resumer.
        let mut panicked = probe(true);
        panicked.resume(());
        let payload = catch_unwind(AssertUnwindSafe(|| panicked.resume(()))).unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"probe"), "round {round}");
        drop(panicked);
        a_fresh_probe_runs_through(round);

        // With a local, then without one: the local is gone with its coroutine.
        let mut with_local = Coroutine::with_local(7u32, |yielder, ()| {
            yielder.suspend(splitstack::coroutine_local(|local: &u32| *local));
            splitstack::coroutine_local(|local: &u32| *local)
        });
        assert_eq!(with_local.resume(()), CoroutineResult::Yield(Some(7)), "round {round}");
        assert_eq!(with_local.resume(()), CoroutineResult::Return(Some(7)), "round {round}");
        drop(with_local);
        a_fresh_probe_runs_through(round);
    }
}

/// A new probe, which takes the stack the last coroutine left in the pool: fresh (not started),
/// it suspends and returns with no local, whatever state the last record was left in.
fn a_fresh_probe_runs_through(round: u32) {
    let mut next = probe(false);
    assert!(!next.started(), "round {round}");
    assert_eq!(next.resume(()), CoroutineResult::Yield(None), "round {round}");
    assert_eq!(next.resume(()), CoroutineResult::Return(None), "round {round}");
}
