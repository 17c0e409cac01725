//! Coroutine-local data: `Coroutine::with_local` and `coroutine_local`.

use splitstack::{coroutine_local, grow, maybe_grow, Coroutine, CoroutineResult};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Deep in the call tree, with no reference passed down.
#[inline(never)]
fn current_name() -> Option<String> {
    coroutine_local(|name: &String| name.clone())
}

#[test]
fn code_in_a_coroutine_reads_its_local_and_outside_code_reads_none() {
    assert_eq!(current_name(), None);
    let mut co = Coroutine::with_local("first".to_string(), |yielder, ()| {
        yielder.suspend(current_name());
        current_name()
    });
    assert_eq!(co.resume(()), CoroutineResult::Yield(Some("first".into())));
    assert_eq!(current_name(), None, "the resumer sees no local");
    assert_eq!(co.resume(()), CoroutineResult::Return(Some("first".into())));
}

#[test]
fn a_local_of_another_type_or_a_coroutine_without_one_reads_none() {
    let mut typed = Coroutine::<(), (), _>::with_local(5u32, |_, ()| {
        (current_name(), coroutine_local(|n: &u32| *n))
    });
    assert_eq!(typed.resume(()).as_return(), Some((None, Some(5))));
    let mut plain = Coroutine::<(), (), _>::new(|_, ()| coroutine_local(|n: &u32| *n));
    assert_eq!(plain.resume(()).as_return(), Some(None));
}

#[test]
fn the_local_is_found_from_segments_the_coroutine_grew() {
    let mut co = Coroutine::<(), (), _>::with_local(42u64, |_, ()| {
        let on_segment = grow(64 * 1024, || grow(256 * 1024, || coroutine_local(|n: &u64| *n)));
        let deep = deep_lookup(10_000);
        (on_segment, deep)
    });
    assert_eq!(co.resume(()).as_return(), Some((Some(42), 42 * 10_000)));
}

/// Recurses `n` levels through `maybe_grow` (which takes segments on the way) and sums the local
/// read at every level.
fn deep_lookup(n: u64) -> u64 {
    maybe_grow(4096, 64 * 1024, || {
        let here = coroutine_local(|n: &u64| *n).expect("the local at every depth");
        if n == 1 {
            here
        } else {
            here + deep_lookup(n - 1)
        }
    })
}

#[test]
fn nested_coroutines_each_see_their_own_local() {
    let mut outer = Coroutine::with_local('o', |yielder, ()| {
        let mut inner = Coroutine::with_local('i', |yielder, ()| {
            yielder.suspend(coroutine_local(|c: &char| *c));
            coroutine_local(|c: &char| *c)
        });
        let mut bare = Coroutine::<(), (), _>::new(|_, ()| coroutine_local(|c: &char| *c));
        let first = inner.resume(()).as_yield().unwrap();
        let mine = coroutine_local(|c: &char| *c);
        yielder.suspend(());
        let second = inner.resume(()).as_return().unwrap();
        (first, mine, second, bare.resume(()).as_return().unwrap(), coroutine_local(|c: &char| *c))
    });
    assert!(outer.resume(()).as_yield().is_some());
    let result = outer.resume(()).as_return().unwrap();
    assert_eq!(result, (Some('i'), Some('o'), Some('i'), None, Some('o')));
}

#[test]
fn on_parent_stack_reads_the_resumers_local() {
    let mut outer = Coroutine::<(), (), _>::with_local(1u8, |_, ()| {
        let mut inner = Coroutine::<(), (), _>::with_local(2u8, |yielder, ()| {
            let here = coroutine_local(|n: &u8| *n);
            let parent = yielder.on_parent_stack(|| coroutine_local(|n: &u8| *n));
            (here, parent)
        });
        inner.resume(()).as_return().unwrap()
    });
    assert_eq!(outer.resume(()).as_return(), Some((Some(2), Some(1))));
    // From a thread's own stack, the parent has none.
    let mut top = Coroutine::<(), (), _>::with_local(3u8, |yielder, ()| {
        yielder.on_parent_stack(|| coroutine_local(|n: &u8| *n))
    });
    assert_eq!(top.resume(()).as_return(), Some(None));
}

#[test]
fn the_local_can_change_through_a_cell_and_is_dropped_with_the_closure() {
    struct Counted(Rc<Cell<u32>>, RefCell<Vec<u32>>);
    impl Drop for Counted {
        fn drop(&mut self) {
            // The local is no longer published while it drops.
            assert!(coroutine_local(|_: &Counted| ()).is_none());
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Rc::new(Cell::new(0));
    // Run to completion.
    let mut co =
        Coroutine::with_local(Counted(drops.clone(), RefCell::new(vec![])), |yielder, ()| {
            for i in 0..3 {
                coroutine_local(|c: &Counted| c.1.borrow_mut().push(i));
                yielder.suspend(());
            }
            coroutine_local(|c: &Counted| c.1.borrow().clone()).unwrap()
        });
    for _ in 0..3 {
        assert!(co.resume(()).as_yield().is_some());
    }
    assert_eq!(co.resume(()).as_return(), Some(vec![0, 1, 2]));
    assert_eq!(drops.get(), 1);
    // Dropped while suspended: unwound, the local dropped.
    let mut co =
        Coroutine::with_local(Counted(drops.clone(), RefCell::new(vec![])), |yielder, ()| {
            yielder.suspend(());
        });
    assert!(co.resume(()).as_yield().is_some());
    drop(co);
    assert_eq!(drops.get(), 2);
    // Dropped before it ever ran: the closure, and the local with it, dropped.
    drop(Coroutine::<(), (), ()>::with_local(
        Counted(drops.clone(), RefCell::new(vec![])),
        |_, ()| (),
    ));
    assert_eq!(drops.get(), 3);
}

#[test]
fn a_thread_that_never_ran_a_coroutine_reads_none() {
    std::thread::spawn(|| assert_eq!(coroutine_local(|n: &u64| *n), None)).join().unwrap();
}
