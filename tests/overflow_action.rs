//! `OverflowAction::PanicInResumer`: a guard hit on a coroutine's stack, or on a segment it
//! grew, makes its `resume` panic with `StackOverflow` in the resumer, leaks the stack, and
//! leaves the process alive. The action is process-wide, so every test here sets it; the cases
//! that count leaked stacks exactly, or that must still abort, run in child processes. A build
//! with the `asan` feature never recovers (ASan keeps per-switch state the recovery cannot
//! update): there the recovery tests are ignored, and the last test checks that it aborts.

mod common;

use common::{assert_child_passes, assert_overflow_reported, bottomless, child_case, run_child};
use splitstack::{
    grow, leaked_stacks, set_overflow_action, Coroutine, OverflowAction, ScopedCoroutine,
    StackOverflow,
};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

/// Resumes `co` once and returns the panic payload it must raise.
fn overflow_payload<Y, R>(co: &mut Coroutine<(), Y, R>) -> Box<dyn std::any::Any + Send> {
    match catch_unwind(AssertUnwindSafe(|| co.resume(()))) {
        Ok(_) => panic!("the coroutine came back without overflowing"),
        Err(payload) => payload,
    }
}

#[test]
#[cfg_attr(feature = "asan", ignore = "the asan build never recovers (set_overflow_action)")]
fn a_thousand_coroutines_overflow_one_after_another_and_the_process_lives() {
    if child_case().as_deref() == Some("thousand") {
        set_overflow_action(OverflowAction::PanicInResumer);
        let before = leaked_stacks();
        for i in 0..1000u64 {
            let mut co =
                Coroutine::<(), (), u64>::with_stack_size(64 * 1024, move |_, ()| bottomless(i))
                    .unwrap();
            let payload = overflow_payload(&mut co);
            assert!(payload.is::<StackOverflow>(), "overflow {i}: another payload");
            assert!(co.done() && co.started(), "overflow {i}: not done");
        }
        assert_eq!(leaked_stacks() - before, 1000, "one coroutine stack leaked per overflow");
        assert_eq!(splitstack::machine::stats().leaked_stacks, leaked_stacks());
        // The thread goes on: coroutines, splits and panics work as before.
        let mut co = Coroutine::new(|y, a: u64| a + y.suspend(a * 2));
        assert_eq!(co.resume(4).as_yield(), Some(8));
        assert_eq!(co.resume(5).as_return(), Some(9));
        assert_eq!(common::deep_sum::<4096, 65536>(20_000), 20_000 * 20_001 / 2);
        let caught =
            catch_unwind(|| Coroutine::<(), (), ()>::new(|_, ()| panic!("plain")).resume(()));
        assert!(caught.is_err());
        println!("done");
        return;
    }
    assert_child_passes(
        "a_thousand_coroutines_overflow_one_after_another_and_the_process_lives",
        "thousand",
        &[],
    );
}

#[test]
#[cfg_attr(feature = "asan", ignore = "the asan build never recovers (set_overflow_action)")]
fn an_overflow_on_a_segment_the_coroutine_grew_leaks_the_segment_and_the_stack() {
    if child_case().as_deref() == Some("segment") {
        set_overflow_action(OverflowAction::PanicInResumer);
        let before = leaked_stacks();
        let mut co = Coroutine::<(), (), u64>::new(|_, ()| grow(64 * 1024, || bottomless(0)));
        assert!(overflow_payload(&mut co).is::<StackOverflow>());
        assert!(co.done());
        assert_eq!(leaked_stacks() - before, 2, "the coroutine's stack and its segment");
        // Two segments deep.
        let mut co = Coroutine::<(), (), u64>::new(|_, ()| {
            grow(64 * 1024, || grow(128 * 1024, || bottomless(0)))
        });
        assert!(overflow_payload(&mut co).is::<StackOverflow>());
        assert_eq!(leaked_stacks() - before, 5);
        // The thread's segment cache still serves splits.
        assert_eq!(grow(64 * 1024, || 5), 5);
        println!("done");
        return;
    }
    assert_child_passes(
        "an_overflow_on_a_segment_the_coroutine_grew_leaks_the_segment_and_the_stack",
        "segment",
        &[],
    );
}

#[test]
#[cfg_attr(feature = "asan", ignore = "the asan build never recovers (set_overflow_action)")]
fn the_resumer_of_an_overflowing_coroutine_may_itself_be_a_coroutine() {
    set_overflow_action(OverflowAction::PanicInResumer);
    let mut outer = Coroutine::<(), (), &'static str>::new(|_, ()| {
        let mut inner =
            Coroutine::<(), (), u64>::with_stack_size(64 * 1024, |_, ()| bottomless(0)).unwrap();
        match catch_unwind(AssertUnwindSafe(|| inner.resume(()))) {
            Err(payload) if payload.is::<StackOverflow>() => "caught",
            Err(_) => "another panic",
            Ok(_) => "no overflow",
        }
    });
    assert_eq!(outer.resume(()).as_return(), Some("caught"));
    assert!(outer.done());
}

#[test]
#[cfg_attr(feature = "asan", ignore = "the asan build never recovers (set_overflow_action)")]
fn abandoned_frames_are_not_dropped_and_their_memory_is_never_reused() {
    set_overflow_action(OverflowAction::PanicInResumer);
    struct SetOnDrop(Rc<Cell<bool>>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let local_at = Rc::new(Cell::new(0usize));
    let mut co = Coroutine::<(), (), u64>::with_stack_size(64 * 1024, {
        let (dropped, local_at) = (dropped.clone(), local_at.clone());
        move |_, ()| {
            let _guard = SetOnDrop(dropped);
            let marker = std::hint::black_box([0x5a5a_5a5a_5a5a_5a5au64; 4]);
            local_at.set(marker.as_ptr() as usize);
            bottomless(marker[0] & 1)
        }
    })
    .unwrap();
    assert!(overflow_payload(&mut co).is::<StackOverflow>());
    drop(co);
    assert!(!dropped.get(), "an abandoned frame's destructor ran");
    // The abandoned stack is still mapped and holds what its frames left there...
    let marker = local_at.get() as *const u64;
    // SAFETY: the leaked stack stays mapped for the life of the process.
    assert_eq!(unsafe { marker.read_volatile() }, 0x5a5a_5a5a_5a5a_5a5a);
    // ...and no later coroutine of the thread's pool, or stack of the process, lands on it: a
    // reused stack of the same size would put this frame within a few bytes of the marker, and
    // distinct stacks lie a guard region (over 64 KiB) apart.
    let mut later: Vec<_> = (0..64)
        .map(|_| {
            Coroutine::<(), (), usize>::with_stack_size(64 * 1024, |_, ()| {
                let probe = std::hint::black_box([0u64; 4]);
                probe.as_ptr() as usize
            })
            .unwrap()
        })
        .collect();
    for co in &mut later {
        let at = co.resume(()).as_return().unwrap();
        assert!(at.abs_diff(marker as usize) > 64 * 1024, "a leaked stack was reused");
    }
    drop(later);
    // SAFETY: as above.
    assert_eq!(unsafe { marker.read_volatile() }, 0x5a5a_5a5a_5a5a_5a5a);
}

#[test]
#[cfg_attr(feature = "asan", ignore = "the asan build never recovers (set_overflow_action)")]
fn a_finished_overflowed_coroutine_refuses_resume_and_into_stack() {
    set_overflow_action(OverflowAction::PanicInResumer);
    let mut co =
        Coroutine::<(), (), u64>::with_stack_size(64 * 1024, |_, ()| bottomless(0)).unwrap();
    assert!(overflow_payload(&mut co).is::<StackOverflow>());
    let again = catch_unwind(AssertUnwindSafe(|| co.resume(()))).unwrap_err();
    let message = again.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("finished"), "{message}");
    co.force_unwind();
    assert!(co.done());
    let taken = catch_unwind(AssertUnwindSafe(move || co.into_stack())).unwrap_err();
    let message = taken.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("overflowed"), "{message}");
}

#[test]
#[cfg_attr(feature = "asan", ignore = "the asan build never recovers (set_overflow_action)")]
fn an_overflow_after_a_caught_cancellation_makes_the_drop_panic_with_stack_overflow() {
    set_overflow_action(OverflowAction::PanicInResumer);
    let mut co = Coroutine::<(), (), u64>::with_stack_size(64 * 1024, |y, ()| {
        // The drop's unwinding is caught, and the thread is no longer panicking when the
        // closure then overflows.
        let _ = catch_unwind(AssertUnwindSafe(|| y.suspend(())));
        bottomless(0)
    })
    .unwrap();
    assert!(co.resume(()).as_yield().is_some());
    let payload = catch_unwind(AssertUnwindSafe(move || drop(co))).unwrap_err();
    assert!(payload.is::<StackOverflow>());
}

#[test]
#[cfg_attr(feature = "asan", ignore = "the asan build never recovers (set_overflow_action)")]
fn a_scoped_coroutine_that_overflows_panics_in_its_scope() {
    set_overflow_action(OverflowAction::PanicInResumer);
    let borrowed = [1u64, 2, 3];
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        ScopedCoroutine::<(), (), u64>::with_stack_size(64 * 1024, |_, ()| {
            borrowed.iter().sum::<u64>() + bottomless(0)
        })
        .unwrap()
        .scope(|mut co| co.resume(()).as_return())
    }));
    assert!(outcome.unwrap_err().is::<StackOverflow>());
    assert_eq!(borrowed.iter().sum::<u64>(), 6);
}

#[test]
fn overflows_outside_coroutines_and_while_panicking_still_abort() {
    match child_case().as_deref() {
        Some("thread-segment") => {
            set_overflow_action(OverflowAction::PanicInResumer);
            let n = grow(64 * 1024, || bottomless(0));
            println!("not reached: {n}");
            return;
        }
        Some("panicking") => {
            set_overflow_action(OverflowAction::PanicInResumer);
            struct DeepOnDrop;
            impl Drop for DeepOnDrop {
                fn drop(&mut self) {
                    bottomless(0);
                }
            }
            let mut co = Coroutine::<(), (), ()>::with_stack_size(64 * 1024, |_, ()| {
                let _deep = DeepOnDrop;
                panic!("unwinding runs a destructor that overflows");
            })
            .unwrap();
            let _ = co.resume(());
            println!("not reached");
            return;
        }
        _ => {}
    }
    let test = "overflows_outside_coroutines_and_while_panicking_still_abort";
    assert_overflow_reported(&run_child(test, "thread-segment"), "a segment on the thread");
    assert_overflow_reported(&run_child(test, "panicking"), "an overflow while panicking");
}

#[test]
fn without_the_opt_in_a_coroutine_overflow_aborts_and_other_faults_reach_the_previous_handler() {
    match child_case().as_deref() {
        Some("default") => {
            assert_eq!(OverflowAction::default(), OverflowAction::Abort);
            let mut co =
                Coroutine::<(), (), u64>::with_stack_size(64 * 1024, |_, ()| bottomless(0))
                    .unwrap();
            let _ = co.resume(());
            println!("not reached");
            return;
        }
        Some("null") => {
            set_overflow_action(OverflowAction::PanicInResumer);
            let mut co = Coroutine::<(), (), u64>::new(|_, ()| {
                // SAFETY: deliberately faults (in a child process) outside every guard region.
                unsafe { std::ptr::read_volatile(16 as *const u64) }
            });
            let _ = co.resume(());
            println!("not reached");
            return;
        }
        _ => {}
    }
    let test = "without_the_opt_in_a_coroutine_overflow_aborts_and_other_faults_reach_the_previous_handler";
    assert_overflow_reported(&run_child(test, "default"), "the default action");
    let null = run_child(test, "null");
    if !cfg!(feature = "asan") {
        assert_eq!(common::signal_of(&null), Some(libc::SIGSEGV), "{null:?}");
    }
}

#[test]
fn the_asan_build_reports_and_aborts_even_when_asked_to_recover() {
    if child_case().as_deref() == Some("asan") {
        set_overflow_action(OverflowAction::PanicInResumer);
        let mut co =
            Coroutine::<(), (), u64>::with_stack_size(64 * 1024, |_, ()| bottomless(0)).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| co.resume(())));
        println!("recovered: {}", outcome.is_err());
        return;
    }
    let output = run_child("the_asan_build_reports_and_aborts_even_when_asked_to_recover", "asan");
    if cfg!(feature = "asan") {
        assert_overflow_reported(&output, "asan build");
    } else {
        common::assert_child_exited(&output, 0, "recovered: true");
    }
}
