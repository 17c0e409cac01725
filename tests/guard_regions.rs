//! Guards that cost no mapping: Linux's guard regions where the kernel has them (6.13 and later),
//! `mprotect` guards where it does not (older kernels, qemu-user), decided by proof. Live
//! coroutines past the `vm.max_map_count` wall that mprotect guards meet, the overflow report
//! with either kind, and a guard that survives every way a stack is recycled. Each case runs in
//! a child process.

mod common;

use common::{
    assert_child_passes, assert_overflow_reported, child_case, mapping_count, resident_bytes,
    run_child_with_env,
};
use splitstack::{
    guard_kind, Coroutine, CoroutineResult, ErrorKind, GuardKind, Stack, Yielder,
    DEFAULT_STACK_SIZE, GUARD_ENV,
};

/// Whether this kernel should have guard regions: Linux 6.13 or later, and not qemu-user (which
/// accepts the advice and installs nothing; .cargo/config.toml's runner says when it runs us).
fn kernel_has_guard_regions() -> bool {
    if std::env::var_os("SPLITSTACK_QEMU_USER").is_some() {
        return false;
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let mut numbers = release.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>());
    let (major, minor) = (numbers.next(), numbers.next());
    matches!((major, minor), (Some(Ok(major)), Some(Ok(minor))) if (major, minor) >= (6, 13))
}

/// Runs `case` of `test` in a child twice: with the kind the proof picks, and with mprotect
/// guards forced; each must print `done`.
fn run_both_kinds(test: &str, case: &str) {
    for env in [&[][..], &[(GUARD_ENV, "mprotect")][..]] {
        assert_child_passes(test, case, env);
    }
}

#[test]
fn the_guard_kind_is_decided_by_proof() {
    if child_case().as_deref() == Some("kind") {
        let forced = std::env::var_os(GUARD_ENV).is_some();
        let expected = if !forced && kernel_has_guard_regions() {
            GuardKind::Regions
        } else {
            GuardKind::Mprotect
        };
        assert_eq!(guard_kind(), expected);
        println!("{:?}; done", guard_kind());
        return;
    }
    run_both_kinds("the_guard_kind_is_decided_by_proof", "kind");
}

#[test]
fn live_coroutines_pass_the_old_map_count_wall_with_guard_regions() {
    if child_case().as_deref() == Some("live") {
        let under_qemu = std::env::var_os("SPLITSTACK_QEMU_USER").is_some();
        if guard_kind() == GuardKind::Mprotect
            && (cfg!(feature = "asan") || cfg!(feature = "tsan") || under_qemu)
        {
            // Creation would run into vm.max_map_count, where a sanitizer's runtime, which needs
            // mappings of its own, aborts, and qemu-user, which needs them to keep translating,
            // spins (seen). tests/fault_injection.rs reaches the limit there with bare stacks.
            println!("skipped with mprotect guards under a sanitizer or qemu-user; done");
            return;
        }
        // Three times what mprotect guards allow under the default vm.max_map_count. A 32-bit
        // process cannot pass that wall at all: its 4 GiB hold about 20,000 default coroutines
        // (128 KiB and an 80 KiB guard each), so there half that many show the same accounting,
        // with either kind of guard.
        let wall_passable = cfg!(target_pointer_width = "64");
        let target = if !wall_passable {
            10_000
        } else if cfg!(feature = "asan") {
            40_000
        } else {
            100_000
        };
        let maps = mapping_count();
        let resident = resident_bytes();
        let mut live: Vec<Coroutine<u32, u32, u32>> = Vec::with_capacity(target);
        let mut stopped = None;
        for i in 0..target as u32 {
            match Coroutine::with_stack_size(DEFAULT_STACK_SIZE, move |y: &Yielder<u32, u32>, x| {
                y.suspend(x + i) * 2
            }) {
                Ok(mut co) => {
                    assert_eq!(co.resume(1), CoroutineResult::Yield(1 + i));
                    live.push(co);
                }
                Err(err) => {
                    stopped = Some(err);
                    break;
                }
            }
        }
        match guard_kind() {
            GuardKind::Regions => {
                assert!(stopped.is_none(), "creation stopped: {stopped:?}");
                // One mapping per arena at most (adjacent arenas merge), not two per stack.
                let arenas = splitstack::Stack::heap_stats().arenas;
                let grown = mapping_count().saturating_sub(maps);
                assert!(grown <= arenas + 8, "mappings grew by {grown} for {arenas} arenas");
                let per = resident_bytes().saturating_sub(resident) / target;
                if !cfg!(feature = "asan") {
                    assert!(per <= 8 * 1024, "{per} bytes resident per idle coroutine");
                }
                println!("{target} live, {per} bytes each, mappings +{grown}");
            }
            GuardKind::Mprotect if !wall_passable => {
                assert!(stopped.is_none(), "creation stopped: {stopped:?}");
                println!("{target} live with mprotect guards");
            }
            GuardKind::Mprotect => {
                let err = stopped.expect("mprotect guards stop at the map count");
                assert!(live.len() < target && live.len() > 20_000, "{} live", live.len());
                assert!(
                    matches!(err.kind(), ErrorKind::MapCountLimit | ErrorKind::OutOfMemory),
                    "{err}"
                );
                if std::env::var_os("SPLITSTACK_QEMU_USER").is_none() {
                    assert_eq!(err.kind(), ErrorKind::MapCountLimit, "{err}");
                    assert!(err.to_string().contains("vm.max_map_count"), "{err}");
                }
                println!("{} live, then: {err}", live.len());
            }
        }
        for (i, co) in live.iter_mut().enumerate() {
            assert_eq!(co.resume(3), CoroutineResult::Return(6), "coroutine {i}");
        }
        println!("done");
        return;
    }
    run_both_kinds("live_coroutines_pass_the_old_map_count_wall_with_guard_regions", "live");
}

/// Reads the word at `addr`, which should fault in a guard: the process aborts with the report.
fn hit(addr: usize) -> ! {
    // SAFETY: deliberately faults (in a child process) in a guard region.
    unsafe { std::ptr::read_volatile(addr as *const u64) };
    unreachable!("the guard at {addr:#x} did not fault");
}

#[test]
fn a_guard_survives_every_way_a_stack_is_recycled() {
    if let Some(case) = child_case() {
        let guard = match case.as_str() {
            // A stack taken again from the free list.
            "free-list" => {
                let first = Stack::new(64 * 1024).unwrap();
                let guard = first.guard();
                drop(first);
                let again = Stack::new(64 * 1024).unwrap();
                assert_eq!(again.guard(), guard, "not the same stack");
                std::mem::forget(again);
                guard
            }
            // A stack the free list trimmed (MADV_DONTNEED below its top 16 KiB): past its
            // 48 MiB of untrimmed stacks, the last of 50 dropped 1 MiB stacks is trimmed.
            "trimmed" => {
                let stacks: Vec<Stack> = (0..50).map(|_| Stack::new(1 << 20).unwrap()).collect();
                for stack in &stacks {
                    // SAFETY: the usable part of a live stack nothing runs on.
                    unsafe { std::ptr::write_bytes(stack.bottom(), 0x5a, stack.len()) };
                }
                drop(stacks);
                let again = Stack::new(1 << 20).unwrap();
                // SAFETY: the lowest usable byte of a live stack.
                assert_eq!(unsafe { again.bottom().read() }, 0, "the stack was not trimmed");
                let guard = again.guard();
                std::mem::forget(again);
                guard
            }
            // A large stack given back to the heap (MADV_DONTNEED of its span) and carved again.
            "given-back" => {
                // Within an arena (64 MiB on 32-bit targets, where a 64 MiB stack is mapped on
                // its own and unmapped when dropped), so that the span is the heap's to give back.
                let size = if cfg!(target_pointer_width = "64") { 64 << 20 } else { 32 << 20 };
                let first = Stack::new(size).unwrap();
                let guard = first.guard();
                drop(first);
                let again = Stack::new(size).unwrap();
                std::mem::forget(again);
                guard
            }
            // A stack made before a fork, in the child.
            _ => {
                let stack = Stack::new(64 * 1024).unwrap();
                let guard = stack.guard();
                std::mem::forget(stack);
                // SAFETY: the child only reads the guard, which faults and aborts it.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    hit(guard.end - 8);
                }
                let mut status = 0;
                // SAFETY: waits for our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert!(libc::WIFSIGNALED(status), "the forked child was not killed: {status}");
                assert_eq!(libc::WTERMSIG(status), libc::SIGABRT);
                println!("the forked child aborted");
                guard
            }
        };
        hit(guard.end - 8);
    }
    for case in ["free-list", "trimmed", "given-back", "fork"] {
        for env in [&[][..], &[(GUARD_ENV, "mprotect")][..]] {
            let output =
                run_child_with_env("a_guard_survives_every_way_a_stack_is_recycled", case, env);
            assert_overflow_reported(&output, &format!("{case} {env:?}"));
        }
    }
}
