//! Coroutines and segments that run any Rust code: ordinary library code on the default stack,
//! panics that reach the resumer under any hook and any `RUST_BACKTRACE`, and no undefined
//! behaviour or leak from safe code. One regression test per way it broke; the cases that could
//! crash the process run in a child process, and the test asserts on its exit and its output.

mod common;

use common::{
    assert_child_aborted, assert_child_exited, assert_child_passes, assert_overflow_reported,
    child_case, mapping_count, resident_bytes, run_child, run_child_with_env, signal_of,
};
use splitstack::{
    grow, machine, try_grow, Coroutine, CoroutineResult, ErrorKind, Stack, Yielder,
    DEFAULT_STACK_SIZE, GUARD_ENV,
};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Whether this runs under qemu-user (.cargo/config.toml's runner says so), where the
/// process's resident memory is the emulator's.
fn under_qemu() -> bool {
    std::env::var_os("SPLITSTACK_QEMU_USER").is_some()
}

/// Whether resident memory measures the crate's stacks: not under qemu-user (the emulator's
/// memory) nor under a sanitizer (its shadow memory and fake stacks).
fn resident_memory_is_ours() -> bool {
    !under_qemu() && !cfg!(feature = "asan") && !cfg!(feature = "tsan")
}

/// What a caught panic said.
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<not a string>".to_string()
    }
}

/// Panics with `text` in a coroutine of `size` usable bytes and returns what the resumer caught.
fn panic_in_coroutine(size: usize, text: &'static str) -> String {
    let mut co = Coroutine::with_stack_size(size, move |_: &Yielder<(), ()>, ()| {
        if std::hint::black_box(true) {
            panic!("{text}");
        }
    })
    .expect("a coroutine stack");
    let payload = catch_unwind(AssertUnwindSafe(|| co.resume(()))).expect_err("the panic");
    assert!(co.done());
    message(&*payload)
}

#[test]
fn the_first_symbolization_fits_in_a_default_coroutine() {
    if child_case().as_deref() == Some("symbolize") {
        // The process's first symbolization loads debug info: well beyond a small stack.
        let mut co = Coroutine::new(|_: &Yielder<(), ()>, ()| {
            std::backtrace::Backtrace::force_capture().to_string()
        });
        let CoroutineResult::Return(trace) = co.resume(()) else { panic!("no return") };
        // Symbolized, and continued past the coroutine into its resumer's frames.
        assert!(
            trace.contains("splitstack_coroutine_trampoline") && trace.contains("run_test"),
            "a backtrace that does not reach the resumer:\n{trace}"
        );
        println!("symbolized {} bytes", trace.len());
        return;
    }
    let output = run_child("the_first_symbolization_fits_in_a_default_coroutine", "symbolize");
    assert_child_exited(&output, 0, "symbolized");
}

/// Recursion with 512-byte frames and no `maybe_grow`, as library code recurses.
#[inline(never)]
fn plain(depth: usize) -> usize {
    let frame = std::hint::black_box([depth as u8; 512]);
    if depth == 0 {
        return frame[0] as usize;
    }
    frame[depth % 512] as usize + plain(depth - 1)
}

#[test]
fn half_the_default_stack_of_plain_recursion_fits_in_a_default_coroutine() {
    let mut co = Coroutine::new(|_: &Yielder<usize, ()>, n: usize| plain(n));
    // About 1,000 levels of 512-byte frames on a 1 MiB default stack: half a megabyte, no
    // maybe_grow (an eighth of that on 32-bit targets, whose default is 128 KiB).
    let levels = DEFAULT_STACK_SIZE / 1024 * 1000 / 1024;
    let CoroutineResult::Return(sum) = co.resume(levels) else { panic!("no return") };
    assert_eq!(sum, (0..=levels).map(|d| d as u8 as usize).sum::<usize>());
}

#[test]
fn grow_1_panics_with_rust_backtrace_set_before_any_coroutine() {
    if child_case().as_deref() == Some("grow") {
        let payload = catch_unwind(|| grow(1, || panic!("from a 16 KiB segment"))).unwrap_err();
        assert_eq!(message(&*payload), "from a 16 KiB segment");
        // And again, now that debug info is loaded, and from try_grow.
        let again = catch_unwind(|| try_grow(1, || panic!("again"))).unwrap_err();
        assert_eq!(message(&*again), "again");
        println!("caught both");
        return;
    }
    for backtrace in ["1", "full"] {
        let output = run_child_with_env(
            "grow_1_panics_with_rust_backtrace_set_before_any_coroutine",
            "grow",
            &[("RUST_BACKTRACE", backtrace)],
        );
        let stderr = assert_child_exited(&output, 0, "caught both");
        assert!(stderr.contains("from a 16 KiB segment"), "the hook did not run:\n{stderr}");
        assert!(stderr.contains("stack backtrace"), "no backtrace with {backtrace}:\n{stderr}");
    }
}

#[test]
fn a_backtrace_capturing_hook_set_before_or_after_the_first_coroutine_does_not_abort() {
    if let Some(case) = child_case() {
        // What color-eyre, sentry or human-panic install: a hook that captures a backtrace,
        // before any coroutine exists or after the first.
        let capturing = || {
            std::panic::set_hook(Box::new(|info| {
                let trace = std::backtrace::Backtrace::force_capture();
                eprintln!("hook saw: {info}\n{trace}");
            }))
        };
        if case == "before" {
            capturing();
        }
        let mut first = Coroutine::new(|_: &Yielder<(), u32>, ()| 1);
        assert_eq!(first.resume(()), CoroutineResult::Return(1));
        if case == "after" {
            capturing();
        }
        // The smallest stacks a user can get, and the default one.
        assert_eq!(panic_in_coroutine(16 * 1024, "small"), "small");
        assert_eq!(panic_in_coroutine(4096 * 3, "three pages"), "three pages");
        assert_eq!(panic_in_coroutine(DEFAULT_STACK_SIZE, "default"), "default");
        let payload = catch_unwind(|| grow(1, || panic!("segment"))).unwrap_err();
        assert_eq!(message(&*payload), "segment");
        // A hook that itself uses plenty of stack (HEAVY), on a small coroutine.
        std::panic::set_hook(Box::new(|info| {
            let pad = std::hint::black_box([1u8; HEAVY]);
            eprintln!("heavy hook: {info} {}", pad[4096]);
        }));
        assert_eq!(panic_in_coroutine(16 * 1024, "heavy"), "heavy");
        println!("all panics caught");
        return;
    }
    for (case, backtrace) in [("after", "0"), ("after", "full"), ("before", "full")] {
        let output = run_child_with_env(
            "a_backtrace_capturing_hook_set_before_or_after_the_first_coroutine_does_not_abort",
            case,
            &[("RUST_BACKTRACE", backtrace)],
        );
        let stderr = assert_child_exited(&output, 0, "all panics caught");
        assert!(stderr.contains("hook saw") && stderr.contains("heavy hook"), "{stderr}");
    }
}

// Not with the sanitizers: their runtimes need new mappings for their own bookkeeping, and
// abort when the map count is exhausted.
#[cfg(not(any(feature = "asan", feature = "tsan")))]
#[test]
fn a_coroutine_panic_with_the_map_count_exhausted_reaches_the_resumer() {
    if under_qemu() {
        // The limit counts the emulator's own mappings too, and qemu-user needs new ones to keep
        // translating: at the limit it can spin in its own fault handling (seen once), so the
        // case runs natively only.
        println!("skipped under qemu-user: at the map limit the emulator itself misbehaves");
        return;
    }
    if child_case().as_deref() == Some("maps") {
        let page = splitstack::page_size();
        // A small coroutine made while mappings can still be had; it will panic later.
        let mut co = Coroutine::with_stack_size(16 * 1024, |y: &Yielder<(), ()>, ()| {
            y.suspend(());
            if std::hint::black_box(true) {
                panic!("at the map limit");
            }
        })
        .unwrap();
        assert_eq!(co.resume(()), CoroutineResult::Yield(()));
        // Exhaust vm.max_map_count: every other page of one reservation made inaccessible
        // splits it into one more mapping, until the kernel refuses. 8 GiB of pages (1 GiB on
        // 32-bit targets: still room for four times the default limit's mappings).
        let pages = if cfg!(target_pointer_width = "64") { 1 << 21 } else { 1 << 18 };
        // SAFETY: a fresh private reservation, never read or written.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                pages * page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let mut exhausted = false;
        for i in (1..pages).step_by(2) {
            // SAFETY: a page of the reservation above.
            let addr = unsafe { base.cast::<u8>().add(i * page) };
            // SAFETY: as above.
            if unsafe { libc::mprotect(addr.cast(), page, libc::PROT_NONE) } != 0 {
                exhausted = true;
                break;
            }
        }
        assert!(exhausted, "vm.max_map_count was not reached");
        // The panic (its hook, RUST_BACKTRACE=full symbolization) reaches the resumer.
        let payload = catch_unwind(AssertUnwindSafe(|| co.resume(()))).unwrap_err();
        assert_eq!(message(&*payload), "at the map limit");
        match splitstack::guard_kind() {
            // A guard costs no mapping: a segment carved from the stack heap's arena still works.
            splitstack::GuardKind::Regions => {
                assert_eq!(try_grow(1 << 20, || 8).unwrap(), 8);
                println!("caught at the map limit; a segment still grows there");
            }
            // A guard is a mapping: a segment cannot be had now, a clear error, not an abort.
            splitstack::GuardKind::Mprotect => {
                let err = try_grow(1 << 20, || 0).unwrap_err();
                assert!(
                    matches!(err.kind(), ErrorKind::MapCountLimit | ErrorKind::OutOfMemory),
                    "{err}"
                );
                println!("caught at the map limit: {err}");
            }
        }
        return;
    }
    for env in
        [&[("RUST_BACKTRACE", "full")][..], &[("RUST_BACKTRACE", "full"), (GUARD_ENV, "mprotect")]]
    {
        let output = run_child_with_env(
            "a_coroutine_panic_with_the_map_count_exhausted_reaches_the_resumer",
            "maps",
            env,
        );
        assert_child_exited(&output, 0, "caught at the map limit");
    }
}

#[test]
fn the_first_coroutine_made_during_unwinding_or_in_a_hook_works() {
    if child_case().as_deref() == Some("unwinding") {
        struct MakesACoroutine;
        impl Drop for MakesACoroutine {
            fn drop(&mut self) {
                assert!(std::thread::panicking());
                let mut co = Coroutine::new(|_: &Yielder<(), u32>, ()| 5);
                assert_eq!(co.resume(()), CoroutineResult::Return(5));
            }
        }
        std::panic::set_hook(Box::new(|_| {
            // Inside a hook, on a panicking thread.
            let mut co = Coroutine::with_stack_size(64 * 1024, |_: &Yielder<(), u32>, ()| 6)
                .expect("a coroutine made in a hook");
            assert_eq!(co.resume(()), CoroutineResult::Return(6));
            println!("hook made a coroutine");
        }));
        let payload = catch_unwind(|| {
            let _guard = MakesACoroutine;
            panic!("unwinding");
        })
        .unwrap_err();
        assert_eq!(message(&*payload), "unwinding");
        // Creation keeps working afterwards, with its documented Result.
        let _ = std::panic::take_hook();
        assert!(Coroutine::with_stack_size(0, |_: &Yielder<(), ()>, ()| ()).is_err());
        let mut co = Coroutine::new(|_: &Yielder<(), u32>, ()| 7);
        assert_eq!(co.resume(()), CoroutineResult::Return(7));
        println!("created during unwinding");
        return;
    }
    let output =
        run_child("the_first_coroutine_made_during_unwinding_or_in_a_hook_works", "unwinding");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_child_exited(&output, 0, "created during unwinding");
    assert!(stdout.contains("hook made a coroutine"), "{stdout}");
}

thread_local! {
    static OWNED: std::cell::RefCell<Option<Coroutine<(), (), ()>>> =
        const { std::cell::RefCell::new(None) };
}

#[test]
fn exit_inside_a_thread_local_owned_coroutine_exits_with_its_status() {
    if child_case().as_deref() == Some("exit") {
        OWNED.with(|slot| {
            *slot.borrow_mut() = Some(Coroutine::new(|_: &Yielder<(), ()>, ()| {
                println!("exiting from the coroutine");
                // exit runs this thread's thread-local destructors here, on the coroutine's
                // stack: they drop the running coroutine, which must not switch into it.
                std::process::exit(7);
            }));
        });
        // Safe code: the thread-local owns the coroutine while it runs.
        OWNED.with(|slot| slot.borrow_mut().as_mut().expect("the coroutine").resume(()));
        unreachable!("exit returned");
    }
    // The running coroutine is leaked by design: LeakSanitizer (with the asan feature) would
    // report it at exit and change the status.
    let output = run_child_with_env(
        "exit_inside_a_thread_local_owned_coroutine_exits_with_its_status",
        "exit",
        &[("ASAN_OPTIONS", "detect_leaks=0")],
    );
    assert_eq!(signal_of(&output), None, "killed by a signal: {:?}", output.status);
    assert_child_exited(&output, 7, "exiting from the coroutine");
}

#[test]
fn a_record_larger_than_the_stack_is_an_error() {
    // The return value alone is larger than any stack's top address. (Not built with ASan, whose
    // instrumentation of a 256 TiB value exhausts the compiler's memory.)
    #[cfg(not(feature = "asan"))]
    a_record_larger_than_the_address_space_is_an_error();
    // Larger than the stack, smaller than its address: the same.
    let big = Coroutine::<(), (), [u8; 64 * 1024]>::with_stack_size(16 * 1024, |_, ()| {
        unreachable!("never resumed")
    });
    assert_eq!(big.err().map(|e| e.kind()), Some(ErrorKind::InvalidSize));
}

#[cfg(not(feature = "asan"))]
fn a_record_larger_than_the_address_space_is_an_error() {
    /// Larger than a 48-bit address space; on 32-bit targets, whose types cannot be, a quarter
    /// of theirs.
    const HUGE: usize = if usize::BITS == 64 { 1 << (usize::BITS - 16) } else { 1 << 30 };
    let huge = Coroutine::<(), (), [u8; HUGE]>::with_stack_size(12 * 1024, |_, ()| {
        unreachable!("never resumed")
    });
    let err = huge.err().expect("a record larger than the address space");
    assert_eq!(err.kind(), ErrorKind::InvalidSize);
    assert!(err.to_string().contains("cannot hold"), "{err}");
}

#[test]
fn sizes_beyond_isize_max_are_invalid_everywhere() {
    for size in [usize::MAX, isize::MAX as usize + 1, isize::MAX as usize] {
        let stack = Stack::new(size).unwrap_err();
        let co = Coroutine::with_stack_size(size, |_: &Yielder<(), ()>, ()| ()).err().unwrap();
        let segment = try_grow(size, || ()).unwrap_err();
        for err in [stack, co, segment] {
            assert_eq!(err.kind(), ErrorKind::InvalidSize, "size {size}: {err}");
            assert_eq!(err.os_error(), None, "size {size}: {err}");
        }
    }
}

/// A value whose destructor panics.
struct PanicsOnDrop(&'static str);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

#[test]
fn panicking_drops_return_every_stack() {
    // In a child process, where no other test shares the process-wide stack heap whose pages it
    // counts; on a thread of its own there, so that the pool and its counters are this case's.
    if child_case().as_deref() != Some("drops") {
        assert_child_passes("panicking_drops_return_every_stack", "drops", &[]);
        return;
    }
    std::thread::spawn(|| {
        let round = |i: u32| {
            let caught = catch_unwind(AssertUnwindSafe(|| match i % 3 {
                // A fresh coroutine whose closure's destructor panics.
                0 => {
                    let bomb = PanicsOnDrop("closure");
                    drop(Coroutine::new(move |_: &Yielder<(), ()>, ()| {
                        let _keep = &bomb;
                    }));
                }
                // A suspended one that yields a value whose destructor panics while it unwinds.
                1 => {
                    let mut co = Coroutine::new(|y: &Yielder<(), PanicsOnDrop>, ()| {
                        let _ = catch_unwind(AssertUnwindSafe(|| y.suspend(PanicsOnDrop("a"))));
                        y.suspend(PanicsOnDrop("yielded"));
                    });
                    let CoroutineResult::Yield(first) = co.resume(()) else { panic!() };
                    std::mem::forget(first);
                    drop(co);
                }
                // One that returns, after its cancellation, a value whose destructor panics.
                2 => {
                    let mut co = Coroutine::new(|y: &Yielder<(), ()>, ()| {
                        let _ = catch_unwind(AssertUnwindSafe(|| y.suspend(())));
                        PanicsOnDrop("returned")
                    });
                    assert!(matches!(co.resume(()), CoroutineResult::Yield(())));
                    drop(co);
                }
                _ => unreachable!(),
            }));
            (i % 3, caught.err().map(|payload| message(&*payload)))
        };
        std::panic::set_hook(Box::new(|_| {}));
        // Warm up the pool, then count.
        for i in 0..8 {
            round(i);
        }
        let maps = mapping_count();
        let pages = Stack::heap_stats().pages_in_use;
        for i in 0..1_000 {
            let (kind, caught) = round(i);
            let expected = match kind {
                0 => Some("closure"),
                1 => Some("yielded"),
                _ => Some("returned"),
            };
            assert_eq!(caught.as_deref(), expected, "round {i}");
        }
        let _ = std::panic::take_hook();
        assert!(mapping_count() <= maps + 4, "mappings {maps} -> {}", mapping_count());
        assert_eq!(Stack::heap_stats().pages_in_use, pages, "stack heap pages leaked");
        let stats = machine::stats();
        assert_eq!(stats.coroutine_stacks_pooled, stats.coroutine_stacks_mapped, "{stats:?}");
    })
    .join()
    .unwrap();
    println!("done");
}

#[test]
fn a_destructor_that_suspends_during_the_drop_aborts_with_a_message() {
    if child_case().as_deref() == Some("suspend") {
        struct SuspendsOnDrop<'a>(&'a Yielder<(), ()>);
        impl Drop for SuspendsOnDrop<'_> {
            fn drop(&mut self) {
                self.0.suspend(());
            }
        }
        let mut co = Coroutine::new(|y: &Yielder<(), ()>, ()| {
            let _guard = SuspendsOnDrop(y);
            y.suspend(());
        });
        assert_eq!(co.resume(()), CoroutineResult::Yield(()));
        drop(co);
        unreachable!("the drop aborts");
    }
    let output =
        run_child("a_destructor_that_suspends_during_the_drop_aborts_with_a_message", "suspend");
    assert_child_aborted(&output, "Yielder::suspend called by a destructor", "suspend");
}

#[test]
fn faults_anywhere_in_the_guard_are_reported() {
    if let Some(case) = child_case() {
        let stack = Stack::new(64 * 1024).unwrap();
        let guard = stack.guard();
        let addr = match case.as_str() {
            "lowest" => guard.start,
            "floor" => guard.start + splitstack::GUARD_FLOOR - 8,
            // The headroom opens only for a panicking thread.
            _ => guard.end - 8,
        };
        // SAFETY: deliberately faults (in a child process) in the guard region.
        unsafe { std::ptr::read_volatile(addr as *const u64) };
        unreachable!("the read faults");
    }
    for case in ["lowest", "floor", "headroom"] {
        let output = run_child("faults_anywhere_in_the_guard_are_reported", case);
        assert_overflow_reported(&output, case);
    }
}

#[test]
fn a_chained_handler_gets_its_own_mask_and_flags() {
    static SEEN: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
    extern "C" fn previous(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // SAFETY: queries of this thread's mask and SIGSEGV's disposition into locals.
        unsafe {
            let mut mask: libc::sigset_t = core::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_SETMASK, core::ptr::null(), &mut mask);
            let mut now: libc::sigaction = core::mem::zeroed();
            libc::sigaction(libc::SIGSEGV, core::ptr::null(), &mut now);
            let mut code = 0;
            if libc::sigismember(&mask, libc::SIGUSR1) == 1 {
                code |= 1; // its sa_mask is blocked
            }
            if libc::sigismember(&mask, libc::SIGSEGV) == 1 {
                code |= 2; // the signal itself is blocked (no SA_NODEFER)
            }
            if now.sa_sigaction == libc::SIG_DFL {
                code |= 4; // SA_RESETHAND reset the disposition
            }
            SEEN.store(code, std::sync::atomic::Ordering::SeqCst);
            libc::_exit(40 + code);
        }
    }
    if let Some(case) = child_case() {
        // SAFETY: installs a handler (in a child process) before splitstack installs its own.
        unsafe {
            let mut action: libc::sigaction = core::mem::zeroed();
            action.sa_sigaction = previous as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            if case == "resethand_nodefer" {
                action.sa_flags |= libc::SA_RESETHAND | libc::SA_NODEFER;
            }
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaddset(&mut action.sa_mask, libc::SIGUSR1);
            libc::sigaction(libc::SIGSEGV, &action, core::ptr::null_mut());
        }
        let _stack = Stack::new(4096).unwrap(); // installs splitstack's handler
                                                // SAFETY: deliberately faults (in a child process) outside every guard.
        unsafe { std::ptr::read_volatile(16 as *const u64) };
        unreachable!("the read faults");
    }
    let plain = run_child("a_chained_handler_gets_its_own_mask_and_flags", "plain");
    assert_eq!(plain.status.code(), Some(40 + 1 + 2), "{:?}", plain.status);
    let flags = run_child("a_chained_handler_gets_its_own_mask_and_flags", "resethand_nodefer");
    assert_eq!(flags.status.code(), Some(40 + 1 + 4), "{:?}", flags.status);
    assert_eq!(SEEN.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn forking_a_multithreaded_parent_never_deadlocks_the_child() {
    // In a child process of its own, so that the forks are of a process that runs natively
    // (under valgrind, each forked child would run memcheck's leak check on the parent's heap).
    if child_case().as_deref() == Some("fork") {
        fork_from_busy_threads();
        println!("every forked child finished");
        return;
    }
    // qemu-user's own fork can deadlock a child forked from a guest with several threads, in
    // qemu, before or while our code runs: a child of tests/coroutine_stacks.rs hung before it
    // exec'd (about once in 15 runs on armv7), and one of this test's 100 children hung on
    // riscv64. ci/test.sh names its qemu-user runs with SPLITSTACK_QEMU_USER; the forks are
    // tested on the natively run targets (x86_64, i686), and the locks they test are the same
    // Rust code on every target.
    if std::env::var_os("SPLITSTACK_QEMU_USER").is_some() {
        println!("skipped under qemu-user (SPLITSTACK_QEMU_USER): its fork deadlocks by itself");
        return;
    }
    let output = run_child("forking_a_multithreaded_parent_never_deadlocks_the_child", "fork");
    assert_child_exited(&output, 0, "every forked child finished");
}

/// Forks 100 children while three threads keep the heaps' locks busy; each child makes stacks,
/// coroutines and spans and exits. Panics if a child fails or does not finish within 10 s.
fn fork_from_busy_threads() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    // Threads that keep the stack heap's and the span heap's locks busy.
    let workers: Vec<_> = (0..3)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let heap = splitstack::SpanHeap::new();
                while !stop.load(Ordering::Relaxed) {
                    let stacks: Vec<Stack> =
                        (0..8).map(|i| Stack::new(4096 << ((i + t) % 5)).unwrap()).collect();
                    drop(stacks);
                    let span = heap.alloc(1 + t, true).unwrap();
                    heap.free(span);
                    let mut co = Coroutine::new(|_: &Yielder<(), u32>, ()| 3);
                    assert_eq!(co.resume(()), CoroutineResult::Return(3));
                }
            })
        })
        .collect();
    let children = 100;
    let mut stuck = 0;
    for _ in 0..children {
        // SAFETY: the child only makes stacks and coroutines, then leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let status = std::panic::catch_unwind(|| {
                let stacks: Vec<Stack> = (0..4).map(|i| Stack::new(8192 << i).unwrap()).collect();
                drop(stacks);
                let mut co = Coroutine::new(|_: &Yielder<(), u32>, ()| 4);
                let heap = splitstack::SpanHeap::new();
                drop(heap.alloc(2, true).unwrap());
                co.resume(())
            });
            let code = if status.ok() == Some(CoroutineResult::Return(4)) { 0 } else { 3 };
            // SAFETY: leaves the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) };
        }
        // Wait up to 10 s for the child.
        let mut status = 0;
        let mut done = false;
        for _ in 0..1_000 {
            // SAFETY: waits for our own child.
            let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if got == pid {
                done = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if !done {
            stuck += 1;
            // SAFETY: kills and reaps our own stuck child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
        } else {
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child {status}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(stuck, 0, "{stuck} of {children} children deadlocked");
}

#[test]
fn an_idle_coroutine_holds_at_most_8_kib() {
    if child_case().as_deref() == Some("rss") {
        let count = 10_000;
        let mut live: Vec<Coroutine<u32, u32, u32>> = Vec::with_capacity(count);
        let before = resident_bytes();
        for i in 0..count as u32 {
            let mut co = Coroutine::new(move |y: &Yielder<u32, u32>, x| y.suspend(x + i));
            assert_eq!(co.resume(1), CoroutineResult::Yield(1 + i));
            live.push(co);
        }
        let per = (resident_bytes() - before) / count;
        println!("resident per idle coroutine: {per} bytes");
        if resident_memory_is_ours() {
            assert!(per <= 8 * 1024, "{per} bytes resident per idle coroutine");
        } else {
            println!("(under an emulator or a sanitizer: that is not only ours, not checked)");
        }
        return;
    }
    let output = run_child("an_idle_coroutine_holds_at_most_8_kib", "rss");
    assert_child_exited(&output, 0, "resident per idle coroutine");
}

#[test]
fn the_pool_keeps_a_bounded_resident_memory_after_deep_use() {
    if child_case().as_deref() == Some("pool") {
        let count = machine::COROUTINE_POOL_CAPACITY;
        let before = resident_bytes();
        // Each goes about 900 KiB deep (seven eighths of the default stack), without
        // maybe_grow, and suspends there.
        fn mib(kib: usize) -> usize {
            kib * (DEFAULT_STACK_SIZE >> 10) / 1024
        }
        let mut live: Vec<Coroutine<(), (), usize>> = (0..count)
            .map(|_| {
                let mut co = Coroutine::new(|y: &Yielder<(), ()>, ()| {
                    fn down(y: &Yielder<(), ()>, depth: usize) -> usize {
                        if depth == 0 {
                            y.suspend(());
                            return plain(10);
                        }
                        let frame = std::hint::black_box([depth as u8; 1024]);
                        frame[depth % 1024] as usize + down(y, depth - 1)
                    }
                    // Sanitizers' frames are larger: as deep, in bytes, in fewer levels. So are
                    // RISC-V's: the suspend inlined in `down` makes each level save all 24
                    // callee-saved registers (s0-s11, fs0-fs11), 1232 bytes a level, and 850
                    // levels would not fit in the 1 MiB stack.
                    let levels = if cfg!(feature = "asan") || cfg!(feature = "tsan") {
                        250
                    } else if cfg!(target_arch = "riscv64") {
                        800
                    } else {
                        850
                    };
                    down(y, mib(levels))
                });
                assert_eq!(co.resume(()), CoroutineResult::Yield(()));
                co
            })
            .collect();
        let deep = resident_bytes() - before;
        if resident_memory_is_ours() {
            assert!(deep > count * mib(800) * 1024, "the coroutines did not go deep: {deep}");
        }
        for co in &mut live {
            assert!(matches!(co.resume(()), CoroutineResult::Return(_)));
        }
        drop(live);
        let stats = machine::stats();
        assert_eq!(stats.coroutine_stacks_pooled, count as u64);
        let bound = machine::POOL_UNTRIMMED_MAX * DEFAULT_STACK_SIZE
            + (count - machine::POOL_UNTRIMMED_MAX) * 16 * 1024;
        assert!(stats.coroutine_pool_resident_bound as usize <= bound, "{stats:?}");
        let kept = resident_bytes().saturating_sub(before);
        println!("resident after deep use: {kept} bytes (bound {bound}), at the deepest {deep}");
        if resident_memory_is_ours() {
            assert!(kept <= bound + (2 << 20), "the pool pins {kept} bytes");
        } else {
            println!("(under an emulator or a sanitizer: that is not only ours, not checked)");
        }
        return;
    }
    let output = run_child("the_pool_keeps_a_bounded_resident_memory_after_deep_use", "pool");
    assert_child_exited(&output, 0, "resident after deep use");
}

#[test]
fn suspended_coroutines_dropped_during_a_panic_are_unwound() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static DROPPED: AtomicUsize = AtomicUsize::new(0);
    struct Counts;
    impl Drop for Counts {
        fn drop(&mut self) {
            DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }
    let payload = catch_unwind(|| {
        let mut live: Vec<Coroutine<(), (), ()>> = (0..3)
            .map(|_| {
                Coroutine::new(|y: &Yielder<(), ()>, ()| {
                    let _counts = Counts;
                    y.suspend(());
                })
            })
            .collect();
        for co in &mut live {
            assert_eq!(co.resume(()), CoroutineResult::Yield(()));
        }
        panic!("outer");
    })
    .unwrap_err();
    assert_eq!(message(&*payload), "outer");
    assert_eq!(DROPPED.load(Ordering::SeqCst), 3, "a suspended coroutine was not unwound");
}

/// A value whose destructor needs 96 KiB of stack: more than a small coroutine or segment has.
/// The stack a heavy panic hook or destructor takes: 96 KiB of the 256 KiB headroom on 64-bit
/// targets, as large a share of the 64 KiB on 32-bit ones.
const HEAVY: usize = splitstack::PANIC_HEADROOM / 8 * 3;

/// A value whose destructor takes [`HEAVY`] bytes of stack.
struct HeavyDrop;

impl Drop for HeavyDrop {
    // Not inlined: its frame must not become the caller's, which runs before the panic.
    #[inline(never)]
    fn drop(&mut self) {
        let pad = std::hint::black_box([7u8; HEAVY]);
        std::hint::black_box(&pad);
    }
}

#[test]
fn destructors_that_run_during_a_panic_get_the_guard_headroom() {
    // In-process (so also under valgrind), twice each: the headroom opens, closes after the
    // coroutine or split is left, and opens again.
    for _ in 0..2 {
        let mut co = Coroutine::with_stack_size(16 * 1024, |_: &Yielder<(), ()>, ()| {
            let _heavy = HeavyDrop;
            if std::hint::black_box(true) {
                panic!("heavy drop in a coroutine");
            }
        })
        .unwrap();
        let payload = catch_unwind(AssertUnwindSafe(|| co.resume(()))).unwrap_err();
        assert_eq!(message(&*payload), "heavy drop in a coroutine");
        let payload = catch_unwind(|| {
            grow(1, || {
                let _heavy = HeavyDrop;
                panic!("heavy drop in a segment");
            })
        })
        .unwrap_err();
        assert_eq!(message(&*payload), "heavy drop in a segment");
    }
}
