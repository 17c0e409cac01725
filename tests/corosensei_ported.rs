//! corosensei's own test suite (`src/tests/*.rs`) and examples (`examples/*.rs`), ported onto
//! splitstack's coroutine API by renaming only: the test bodies, values and assertions are
//! corosensei's (v0.3.4). Each example's `main` is a `#[test]` named after the example.
//!
//! Changes beyond `corosensei` -> `splitstack`:
//! - `#[cfg(feature = "unwind")]` is dropped: splitstack always unwinds (the feature is on by
//!   default in corosensei).
//! - The `extern crate alloc; extern crate std;` lines and the `std::println`/`ToString` imports
//!   of corosensei's `no_std` crate are dropped: this file is a `std` test crate.
//! - `DefaultStack::new(size)` used only to choose a stack size becomes
//!   `Coroutine::with_stack_size(size, f).unwrap()`.
//! - `backtrace::Backtrace::new()` (the `backtrace` crate, not a dependency here) becomes
//!   `std::backtrace::Backtrace::force_capture()`, which also always captures.
//!
//! - `Coroutine::<I, Y, R, _>` (corosensei's stack type parameter) becomes `Coroutine::<I, Y, R>`,
//!   and `DefaultStack::new(size)` for a stack handed to `with_stack` becomes `Stack::new(size)`;
//!   `with_stack` returns a `Result` here (an `Err` for a stack too small), so it is unwrapped.
//!
//! - `backtrace_traces_to_host` walks the `backtrace` crate's `Backtrace::frames()` symbols for
//!   the host function's name; std's `Backtrace` has no frames on stable, so the same names are
//!   looked for in its `Display` text, which lists every frame's symbols.
//!
//! Not ported yet (they need API that splitstack does not have):
//! - `src/tests/coroutine.rs`:
//!   - `trap_handler`: needs `Coroutine::trap_handler()` and corosensei's `trap` module
//!     (`CoroutineTrapHandler`, `TrapHandlerRegs`, `setup_trap_handler`).
//!   - `trap_handler_panic`: needs the same as `trap_handler`.
//!   - `stack_overflow`: needs the same as `trap_handler` (the test installs its own SIGSEGV
//!     handler and redirects the coroutine through corosensei's trap API). splitstack's
//!     counterpart is a policy, not a per-coroutine handler:
//!     `set_overflow_action(OverflowAction::PanicInResumer)`, tested in tests/overflow_action.rs.
//! - `src/tests/on_stack.rs`: `smoke`, `backtrace_traces_to_host`, `panics_propagated`,
//!   `stack_growth`, `backward_stack_address`, `forward_stack_address`: all need
//!   `on_stack(stack, f)` and `DefaultStack` (`backtrace_traces_to_host` also the `backtrace`
//!   crate's `Backtrace::frames()`).

use std::cell::Cell;
use std::ptr;
use std::rc::Rc;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use splitstack::{Coroutine, CoroutineResult, Stack};

// ---- src/tests/coroutine.rs ----

#[test]
#[should_panic(expected = "foobar")]
fn panics_propagated_via_parent() {
    use std::panic::{self, AssertUnwindSafe};

    let a = Rc::new(Cell::new(false));
    let b = SetOnDrop(a.clone());
    let mut coroutine = Coroutine::<(), (), ()>::new(move |y, ()| {
        drop(b);
        y.on_parent_stack(|| {
            panic!("foobar");
        });
    });
    let result = panic::catch_unwind(AssertUnwindSafe(|| coroutine.resume(())));
    assert!(result.is_err());
    assert!(a.get());
    panic::resume_unwind(result.unwrap_err());

    struct SetOnDrop(Rc<Cell<bool>>);

    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
}

#[test]
fn backtrace_traces_to_host() {
    #[inline(never)] // try to get this to show up in backtraces
    fn look_for_me() {
        run_test();
    }
    fn assert_contains_host() {
        // corosensei: `backtrace::Backtrace::new()`, its frames' symbols' names.
        let trace = std::backtrace::Backtrace::force_capture();
        println!("{:?}", trace);
        assert!(trace.to_string().contains("look_for_me"));
    }

    fn run_test() {
        assert_contains_host();
        let mut coroutine = Coroutine::<(), (), ()>::new(move |y, ()| {
            assert_contains_host();
            y.suspend(());
            y.on_parent_stack(assert_contains_host); // corosensei: `|| assert_contains_host()`
            y.suspend(());
            assert_contains_host();
        });
        assert_eq!(coroutine.resume(()), CoroutineResult::Yield(()));
        assert_eq!(coroutine.resume(()), CoroutineResult::Yield(()));
        assert_eq!(coroutine.resume(()), CoroutineResult::Return(()));
    }

    look_for_me();
}

#[test]
fn smoke() {
    let hit = Rc::new(Cell::new(false));
    let hit2 = hit.clone();
    let mut coroutine = Coroutine::<(), (), ()>::new(move |_, _| {
        hit2.set(true);
    });
    assert!(!hit.get());
    assert!(!coroutine.started());
    assert!(!coroutine.done());
    assert_eq!(coroutine.resume(()), CoroutineResult::Return(()));
    assert!(hit.get());
    assert!(coroutine.started());
    assert!(coroutine.done());
}

#[test]
fn suspend_and_resume() {
    let hit = Rc::new(Cell::new(false));
    let hit2 = hit.clone();
    let mut coroutine = Coroutine::<(), (), ()>::new(move |y, _| {
        y.suspend(());
        hit2.set(true);
        y.suspend(());
    });
    assert!(!hit.get());
    assert!(!coroutine.started());
    assert!(!coroutine.done());
    assert_eq!(coroutine.resume(()), CoroutineResult::Yield(()));
    assert!(!hit.get());
    assert!(coroutine.started());
    assert!(!coroutine.done());
    assert_eq!(coroutine.resume(()), CoroutineResult::Yield(()));
    assert!(hit.get());
    assert!(coroutine.started());
    assert!(!coroutine.done());
    assert_eq!(coroutine.resume(()), CoroutineResult::Return(()));
    assert!(hit.get());
    assert!(coroutine.started());
    assert!(coroutine.done());
}

#[test]
fn force_unwind() {
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    let a = Arc::new(AtomicBool::new(false));
    let b = Arc::new(AtomicBool::new(false));
    let a_drop = SetOnDrop(a.clone());
    let b_drop = SetOnDrop(b.clone());
    let mut coroutine = Coroutine::<(), (), ()>::new(move |y, ()| {
        drop(a_drop);
        y.suspend(());
        drop(b_drop);
    });
    assert!(!coroutine.started());
    assert!(!coroutine.done());
    coroutine.force_unwind();
    assert!(coroutine.started());
    assert!(coroutine.done());
    drop(coroutine);
    assert!(a.load(Ordering::Relaxed));
    assert!(b.load(Ordering::Relaxed));

    {
        let a = Arc::new(AtomicBool::new(false));
        let b = Arc::new(AtomicBool::new(false));
        let a_drop = SetOnDrop(a.clone());
        let b_drop = SetOnDrop(b.clone());
        let mut coroutine = Coroutine::<(), (), ()>::new(move |y, ()| {
            drop(a_drop);
            y.suspend(());
            drop(b_drop);
        });
        coroutine.resume(());
        assert!(coroutine.started());
        assert!(!coroutine.done());
        coroutine.force_unwind();
        assert!(coroutine.started());
        assert!(coroutine.done());
        drop(coroutine);
        assert!(a.load(Ordering::Relaxed));
        assert!(b.load(Ordering::Relaxed));
    }

    {
        use std::panic::{self, AssertUnwindSafe};

        let a = Arc::new(AtomicBool::new(false));
        let b = Arc::new(AtomicBool::new(false));
        let a_drop = SetOnDrop(a.clone());
        let b_drop = SetOnDrop(b.clone());
        let mut coroutine = Coroutine::<(), (), ()>::new(move |y, ()| {
            drop(a_drop);
            _ = panic::catch_unwind(AssertUnwindSafe(|| y.suspend(())));
            drop(b_drop);
        });
        coroutine.resume(());
        assert!(coroutine.started());
        assert!(!coroutine.done());
        coroutine.force_unwind();
        assert!(coroutine.started());
        assert!(coroutine.done());
        drop(coroutine);
        assert!(a.load(Ordering::Relaxed));
        assert!(b.load(Ordering::Relaxed));
    }

    {
        use std::panic::{self, AssertUnwindSafe};

        let a = Arc::new(AtomicBool::new(false));
        let b = Arc::new(AtomicBool::new(false));
        let a_drop = SetOnDrop(a.clone());
        let b_drop = SetOnDrop(b.clone());
        let mut coroutine = Coroutine::<(), (), ()>::new(move |y, ()| {
            drop(a_drop);
            _ = panic::catch_unwind(AssertUnwindSafe(|| y.suspend(())));
            y.suspend(());
            drop(b_drop);
        });
        coroutine.resume(());
        assert!(coroutine.started());
        assert!(!coroutine.done());
        coroutine.force_unwind();
        assert!(coroutine.started());
        assert!(coroutine.done());
        drop(coroutine);
        assert!(a.load(Ordering::Relaxed));
        assert!(b.load(Ordering::Relaxed));
    }

    let a = Arc::new(AtomicBool::new(false));
    let b = Arc::new(AtomicBool::new(false));
    let a_drop = SetOnDrop(a.clone());
    let b_drop = SetOnDrop(b.clone());
    let mut coroutine = Coroutine::<(), (), ()>::new(move |y, ()| {
        drop(a_drop);
        y.suspend(());
        drop(b_drop);
    });
    coroutine.resume(());
    coroutine.resume(());
    assert!(coroutine.started());
    assert!(coroutine.done());
    coroutine.force_unwind();
    assert!(coroutine.started());
    assert!(coroutine.done());
    drop(coroutine);
    assert!(a.load(Ordering::Relaxed));
    assert!(b.load(Ordering::Relaxed));
}

#[test]
#[should_panic = "foobar"]
fn backward_stack_address() {
    // If we create the thread after the stack then (at least on Linux) we
    // should have the thread stack at a lower address than the coroutine
    // stack.
    let stack = Stack::new(1024 * 1024).unwrap();
    let result = std::thread::spawn(move || {
        let mut coroutine = Coroutine::<(), (), ()>::with_stack(stack, move |_, ()| {
            panic!("foobar");
        })
        .unwrap();

        coroutine.resume(());
        unreachable!();
    })
    .join();
    std::panic::resume_unwind(result.unwrap_err());
}

#[test]
#[should_panic(expected = "foobar")]
fn panics_propagated() {
    use std::panic::{self, AssertUnwindSafe};

    let a = Rc::new(Cell::new(false));
    let b = SetOnDrop(a.clone());
    let mut coroutine = Coroutine::<(), (), ()>::new(move |_, ()| {
        drop(b);
        panic!("foobar");
    });
    let result = panic::catch_unwind(AssertUnwindSafe(|| coroutine.resume(())));
    assert!(result.is_err());
    assert!(a.get());
    panic::resume_unwind(result.unwrap_err());

    struct SetOnDrop(Rc<Cell<bool>>);

    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
}

#[test]
fn suspend_and_resume_values() {
    let mut coroutine = Coroutine::new(move |y, first| {
        assert_eq!(first, 2.0);
        assert_eq!(y.suspend(4), 3.0);
        "hello".to_string()
    });
    assert_eq!(coroutine.resume(2.0), CoroutineResult::Yield(4));
    assert_eq!(coroutine.resume(3.0), CoroutineResult::Return("hello".to_string()));
}

#[test]
// The original repeats `#[allow(dead_code)]` on `Aligned`; kept as written.
#[allow(clippy::duplicated_attributes)]
fn stateful() {
    #[allow(dead_code)]
    #[repr(align(128))]
    #[allow(dead_code)]
    struct Aligned(u8);
    let state = [41, 42, 43, 44, 45];
    let aligned = Aligned(100);
    let mut coroutine = Coroutine::new(move |y, _| {
        assert_eq!(&aligned as *const _ as usize % 128, 0);
        for i in state {
            y.suspend(i);
        }
    });
    for i in state {
        assert_eq!(coroutine.resume(()), CoroutineResult::Yield(i));
    }
    assert_eq!(coroutine.resume(()), CoroutineResult::Return(()));
}

// The Windows stack starts out small with only one page committed. Check that it
// gets properly grown by the kernel as needed.
#[test]
fn stack_growth() {
    // corosensei's default stack is 1 MiB on every target, as ours is on 64-bit ones; on 32-bit
    // targets ours is 128 KiB (DEFAULT_STACK_SIZE), so the test asks for corosensei's size.
    let mut coroutine = Coroutine::<(), (), ()>::with_stack_size(1 << 20, |_, ()| {
        fn recurse(i: u32, p: &mut [u8; 10000]) {
            unsafe {
                // Ensure the stack allocation isn't optimized away.
                ptr::read_volatile(&p);
            }
            if i > 0 {
                recurse(i - 1, &mut [0; 10000]);
            }
        }

        // Use ~500KB of stack.
        recurse(50, &mut [0; 10000]);
    })
    .unwrap();
    assert_eq!(coroutine.resume(()), CoroutineResult::Return(()));
}

#[test]
#[should_panic = "foobar"]
fn forward_stack_address() {
    // Just in case, also test allocating the stack after thread creation. This
    // should cover all cases.
    let result = std::thread::spawn(move || {
        // corosensei: `DefaultStack::new(1024 * 1024)` and `with_stack`, only for the size.
        let mut coroutine = Coroutine::<(), (), ()>::with_stack_size(1024 * 1024, move |_, ()| {
            panic!("foobar");
        })
        .unwrap();

        coroutine.resume(());
        unreachable!();
    })
    .join();
    std::panic::resume_unwind(result.unwrap_err());
}

// ---- examples/basic.rs ----

#[test]
fn basic() {
    println!("[main] creating coroutine");

    let mut coroutine = Coroutine::new(|yielder, input| {
        println!("[coroutine] coroutine started with input {}", input);
        for i in 0..5 {
            println!("[coroutine] yielding {}", i);
            let input = yielder.suspend(i);
            println!("[coroutine] got {} from parent", input)
        }
        println!("[coroutine] exiting coroutine");
    });

    let mut counter = 100;
    loop {
        println!("[main] resuming coroutine with argument {}", counter);
        match coroutine.resume(counter) {
            CoroutineResult::Yield(i) => println!("[main] got {:?} from coroutine", i),
            CoroutineResult::Return(()) => break,
        }

        counter += 1;
    }

    println!("[main] exiting");
}

// ---- examples/backtrace.rs ----

#[inline(never)]
fn sub_function(coroutine: &mut Coroutine<(), (), ()>) {
    coroutine.resume(());
}

#[test]
fn backtrace() {
    let mut coroutine = Coroutine::new(move |_, ()| {
        // corosensei: `backtrace::Backtrace::new()`.
        let trace = std::backtrace::Backtrace::force_capture();
        println!("{:?}", trace);
    });

    sub_function(&mut coroutine);
}

// ---- examples/panic.rs ----

#[test]
fn panic() {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    println!("[main] creating coroutine");

    let mut coroutine = Coroutine::new(|yielder, ()| {
        println!("[coroutine] yielding 42");
        yielder.suspend(42);

        println!("[coroutine] panicking");
        panic!("foobar");
    });

    println!("[main] resuming coroutine");
    let result = catch_unwind(AssertUnwindSafe(|| coroutine.resume(())));
    println!("[main] got value {} from coroutine", result.unwrap().as_yield().unwrap());

    println!("[main] resuming coroutine");
    let result = catch_unwind(AssertUnwindSafe(|| coroutine.resume(())));
    println!(
        "[main] caught panic \"{}\" from coroutine",
        result.unwrap_err().downcast_ref::<&'static str>().unwrap()
    );

    println!("[main] exiting");
}
