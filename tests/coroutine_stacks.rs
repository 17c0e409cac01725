//! corosensei's stack-ownership API on splitstack's coroutines: `with_stack`, `into_stack`,
//! `started`, `force_unwind`, `CoroutineResult::as_yield` / `as_return`.

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
