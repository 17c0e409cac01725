//! `ScopedCoroutine`: coroutines that borrow, and the attacks that made corosensei's first
//! scoped coroutines unsound (its issues 27 and 59), which must fail here. The compile-time
//! half (no `resume` outside `scope`, no handle escaping it, no borrow outliving its referent)
//! is in the `compile_fail` examples of `ScopedCoroutine`'s documentation.

use splitstack::{CoroutineResult, ScopedCoroutine, Yielder};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Sets its flag when dropped.
struct SetOnDrop<'a>(&'a Cell<bool>);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn values_and_the_closure_borrow_the_callers_data() {
    let text = String::from("one two three");
    let co = ScopedCoroutine::new(|y: &Yielder<usize, &str>, mut skip: usize| {
        for word in text.split(' ') {
            if skip == 0 {
                skip = y.suspend(word);
            } else {
                skip -= 1;
            }
        }
        text.len()
    });
    let (words, total) = co.scope(|mut co| {
        let mut words = Vec::new();
        let mut input = 0;
        loop {
            match co.resume(input) {
                CoroutineResult::Yield(word) => words.push(word),
                CoroutineResult::Return(total) => break (words, total),
            }
            input = 1;
        }
    });
    assert_eq!(words, ["one", "three"]);
    assert_eq!(total, 13);
}

#[test]
fn a_thread_scope_suspended_in_the_coroutine_is_joined_before_scope_returns() {
    // The attack of corosensei's issue 59: a scoped thread borrows the caller's data, and the
    // coroutine that would join it suspends; leaking that coroutine would leave the thread
    // reading freed memory. Here the coroutine cannot be leaked: `scope` unwinds it, which ends
    // the thread scope and joins the thread before the borrowed data can go.
    let borrowed = AtomicUsize::new(0);
    let thread_done = AtomicBool::new(false);
    let co = ScopedCoroutine::new(|y: &Yielder<(), ()>, ()| {
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..50 {
                    borrowed.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(1));
                }
                thread_done.store(true, Ordering::Release);
            });
            y.suspend(());
            unreachable!("never resumed a second time");
        });
    });
    co.scope(|mut co| {
        assert_eq!(co.resume(()), CoroutineResult::Yield(()));
        // The handle is forgotten: that must not keep the coroutine alive past `scope`. (It has
        // no destructor, which is the point: forgetting it is the attack, and it is harmless.)
        #[allow(clippy::forget_non_drop)]
        std::mem::forget(co);
    });
    assert!(thread_done.load(Ordering::Acquire), "the scoped thread ran to its end first");
    assert_eq!(borrowed.load(Ordering::Relaxed), 50);
}

#[test]
fn a_scoped_coroutine_forgotten_before_scope_never_runs() {
    let ran = Cell::new(false);
    let dropped = Cell::new(false);
    {
        let guard = SetOnDrop(&dropped);
        let co = ScopedCoroutine::new(|_: &Yielder<(), ()>, ()| {
            let _guard = &guard;
            ran.set(true);
        });
        std::mem::forget(co);
    }
    // The closure (and what it captured by reference) leaked without running.
    assert!(!ran.get());
    assert!(dropped.get(), "the guard itself was a local of the block, dropped at its end");
}

#[test]
fn a_panic_in_the_scope_unwinds_the_coroutine_and_continues() {
    let dropped = Cell::new(false);
    let co = ScopedCoroutine::new(|y: &Yielder<(), ()>, ()| {
        let _guard = SetOnDrop(&dropped);
        y.suspend(());
    });
    let caught = catch_unwind(AssertUnwindSafe(|| {
        co.scope(|mut co| {
            co.resume(());
            panic!("in the scope");
        })
    }))
    .unwrap_err();
    assert_eq!(caught.downcast_ref::<&str>(), Some(&"in the scope"));
    assert!(dropped.get(), "the suspended frame was unwound");
}

#[test]
fn the_handle_reports_started_and_done_and_reborrows() {
    let co = ScopedCoroutine::new(|y: &Yielder<(), u8>, ()| y.suspend(1));
    co.scope(|mut co| {
        assert!(!co.started() && !co.done());
        fn step(mut co: splitstack::ScopedCoroutineRef<'_, (), u8, ()>) -> CoroutineResult<u8, ()> {
            co.resume(())
        }
        assert_eq!(step(co.as_mut()), CoroutineResult::Yield(1));
        assert_eq!(step(co.as_mut()), CoroutineResult::Return(()));
        assert!(co.started() && co.done());
    });
}
