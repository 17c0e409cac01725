//! Fault injection, each case in a child process: with the address space limited
//! (`RLIMIT_AS`: `Stack::new`, `Stack::new_zeroed`, `try_grow`, `Coroutine::with_stack_size`,
//! `SpanHeap::alloc`), and with `vm.max_map_count` exhausted by live stacks, every allocating
//! entry point returns an `Err` that says why, and the process works again once memory is back.

mod common;

use common::{assert_child_passes, child_case};
use splitstack::{try_grow, Coroutine, CoroutineResult, ErrorKind, SpanHeap, Stack, Yielder};

/// Sets the soft address-space limit; returns the previous one.
fn set_address_space_limit(bytes: libc::rlim_t) -> libc::rlimit {
    let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: get/setrlimit with valid pointers to locals.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut old), 0);
        let new = libc::rlimit { rlim_cur: bytes, rlim_max: old.rlim_max };
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &new), 0);
    }
    old
}

/// This process's mapped address space, from /proc/self/status (VmSize, in bytes).
fn address_space_in_use() -> libc::rlim_t {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<libc::rlim_t>().unwrap() * 1024
}

const BIG: usize = 256 << 20;

/// Whether a BIG anonymous mapping still succeeds under the lowered limit.
fn address_space_limit_is_ignored() -> bool {
    // SAFETY: maps and unmaps an anonymous region of our own.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            BIG,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return false;
        }
        libc::munmap(p, BIG);
        true
    }
}

#[test]
fn with_the_address_space_limited_allocations_fail_cleanly_and_recover() {
    if child_case().as_deref() == Some("rlimit") {
        // Warm up everything that maps lazily (thread state, pools), then leave 64 MiB of room
        // (32 MiB on 32-bit targets, whose heap arenas are 64 MiB: less than one arena).
        let mut warm = Coroutine::new(|_: &Yielder<(), ()>, ()| ());
        warm.resume(());
        try_grow(64 * 1024, || ()).unwrap();
        let room = if cfg!(target_pointer_width = "64") { 64 << 20 } else { 32 << 20 };
        let old = set_address_space_limit(address_space_in_use() + room);
        if address_space_limit_is_ignored() {
            // qemu-user reserves the guest's address space up front and does not apply the
            // guest's RLIMIT_AS: there is nothing to inject. The x86-64 run covers this case.
            eprintln!("skipped: RLIMIT_AS is not enforced here (qemu-user?)");
            println!("done");
            return;
        }

        let err = Stack::new(BIG).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
        let err = try_grow(BIG, || ()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
        let err = Coroutine::with_stack_size(BIG, |_: &Yielder<(), ()>, ()| ()).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
        // A new heap's first arena (256 MiB; 64 MiB on 32-bit targets) does not fit either.
        let heap = SpanHeap::new();
        let err = heap.alloc(1, true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
        // Small requests still fit under the limit.
        assert_eq!(try_grow(64 * 1024, || 3).unwrap(), 3);
        // A stack larger than an arena is mapped on its own, and refused the same way.
        let err = Stack::new_zeroed(BIG * 4).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
        // Stacks fill the stack heap's arena; once it would need another (which does not fit),
        // stacks are mapped on their own while the limit allows, then refused.
        const EIGHT_MIB: usize = 8 << 20;
        let before = Stack::heap_stats();
        let mut held = Vec::new();
        let err = loop {
            match Stack::new(EIGHT_MIB) {
                Ok(stack) => held.push(stack),
                Err(err) => break err,
            }
            assert!(held.len() < 1000, "the address space never ran out");
        };
        assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
        let after = Stack::heap_stats();
        assert_eq!(after.arenas, before.arenas, "an arena was mapped under the limit");
        let span_pages = (EIGHT_MIB + splitstack::GUARD_SIZE).div_ceil(SpanHeap::PAGE_SIZE);
        let from_heap = (after.pages_in_use - before.pages_in_use) / span_pages;
        assert!(
            from_heap > 0 && held.len() > from_heap,
            "{} stacks, {from_heap} from the heap",
            held.len()
        );
        let held = (held.len(), from_heap);

        // SAFETY: restores the limit read above.
        unsafe { libc::setrlimit(libc::RLIMIT_AS, &old) };
        assert_eq!(Stack::new(BIG).unwrap().len(), BIG);
        assert_eq!(try_grow(BIG, || 4).unwrap(), 4);
        let mut co = Coroutine::with_stack_size(BIG, |_: &Yielder<(), ()>, ()| 5).unwrap();
        assert_eq!(co.resume(()), CoroutineResult::Return(5));
        let mut span = heap.alloc(BIG / SpanHeap::PAGE_SIZE, true).unwrap();
        assert!(span.as_mut_slice().iter().all(|&b| b == 0));
        println!("held {} stacks of 8 MiB under the limit, {} from the heap; done", held.0, held.1);
        return;
    }
    assert_child_passes(
        "with_the_address_space_limited_allocations_fail_cleanly_and_recover",
        "rlimit",
        &[],
    );
}

#[test]
fn with_the_map_count_exhausted_stacks_fail_with_the_reason_and_recover() {
    if child_case().as_deref() == Some("maps") {
        // With mprotect guards (forced here; the only kind under qemu-user or before Linux
        // 6.13), each live stack is two mappings; hold stacks until the kernel refuses.
        assert_eq!(splitstack::guard_kind(), splitstack::GuardKind::Mprotect);
        let mut live = Vec::new();
        let err = loop {
            match Stack::new(4096) {
                Ok(stack) => live.push(stack),
                Err(err) => break err,
            }
            assert!(live.len() < 1 << 20, "the map count never ran out");
        };
        let zeroed_err = Stack::new_zeroed(4096).unwrap_err();
        let grow_err = try_grow(64 * 1024, || ()).unwrap_err();
        let co_err =
            Coroutine::with_stack_size(64 * 1024, |_: &Yielder<(), ()>, ()| ()).err().unwrap();
        if std::env::var_os("SPLITSTACK_QEMU_USER").is_some() {
            // Under qemu-user the kernel counts the emulator's own mappings too, which the
            // guest's /proc/self/maps does not show, so the cause cannot be told apart from
            // plain memory exhaustion there: both kinds are acceptable.
            for e in [&err, &zeroed_err, &grow_err, &co_err] {
                assert!(
                    matches!(e.kind(), ErrorKind::MapCountLimit | ErrorKind::OutOfMemory),
                    "{e}"
                );
            }
        } else {
            for e in [&err, &zeroed_err, &grow_err, &co_err] {
                assert_eq!(e.kind(), ErrorKind::MapCountLimit, "{e}");
                assert!(e.to_string().contains("vm.max_map_count"), "{e}");
            }
        }
        let held = live.len();
        // Stacks dropped now wait in the stack heap's free list, still two mappings each; a stack
        // of another size needs new mappings, which emptying the free list gives back.
        live.truncate(held - 100);
        let other = Stack::new(64 * 1024).unwrap();
        assert_eq!(other.len(), 64 * 1024);
        drop(other);
        live.truncate(held / 2);
        assert_eq!(try_grow(64 * 1024, || 6).unwrap(), 6);
        let mut co = Coroutine::new(|_: &Yielder<(), ()>, ()| 7);
        assert_eq!(co.resume(()), CoroutineResult::Return(7));
        println!("held {held} stacks at the limit; done");
        return;
    }
    assert_child_passes(
        "with_the_map_count_exhausted_stacks_fail_with_the_reason_and_recover",
        "maps",
        &[(splitstack::GUARD_ENV, "mprotect")],
    );
}
