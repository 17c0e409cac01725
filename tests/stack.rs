//! `Stack`: sizes, rounding, bounds, the guard region, and bad input.

mod common;

use common::readable;
use splitstack::{page_size, ErrorKind, Stack, GUARD_SIZE};

#[test]
fn sizes_round_up_to_whole_pages_and_bounds_are_consistent() {
    let page = page_size();
    for (asked, expected) in [
        (1, page),
        (page, page),
        (page + 1, 2 * page),
        (12_345, 12_345usize.next_multiple_of(page)),
    ] {
        let stack = Stack::new(asked).unwrap();
        assert_eq!(stack.len(), expected, "asked for {asked}");
        assert_eq!(stack.top() as usize - stack.bottom() as usize, expected);
        assert_eq!(stack.top() as usize % 16, 0, "top must be 16-byte aligned");
        assert_eq!(stack.guard().end, stack.bottom() as usize);
        // The whole guard region: at least GUARD_SIZE, at most a heap page more.
        let guard = stack.guard().len();
        assert!((GUARD_SIZE..=GUARD_SIZE + 8192).contains(&guard), "guard of {guard} bytes");
        // The usable part is writable from bottom to top.
        // SAFETY: both bytes lie inside the usable part of a live mapping.
        unsafe {
            stack.bottom().write(1);
            stack.top().sub(1).write(2);
            assert_eq!(stack.bottom().read() + stack.top().sub(1).read(), 3);
        }
    }
}

#[test]
fn bad_sizes_are_errors_that_say_why() {
    let page = page_size();
    for new in [Stack::new, Stack::new_zeroed] {
        let zero = new(0).unwrap_err();
        assert_eq!(zero.kind(), ErrorKind::InvalidSize);
        assert!(zero.to_string().contains("0 bytes"), "{zero}");
        // More than an isize can span with the guard: refused before any system call, with the
        // same kind SpanHeap::alloc gives.
        for size in [
            usize::MAX,
            usize::MAX - page + 1,
            (isize::MAX as usize) + 1,
            isize::MAX as usize,
            isize::MAX as usize - GUARD_SIZE,
        ] {
            let err = new(size).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidSize, "size {size}: {err}");
            assert!(err.to_string().contains("does not fit"), "{err}");
            assert_eq!(err.os_error(), None, "size {size}: {err}");
        }
        // Representable, but more than the OS will map: on 64-bit targets. A 32-bit process can
        // map nearly isize::MAX bytes on a 64-bit kernel; tests/fault_injection.rs makes the OS
        // refuse there, under RLIMIT_AS.
        #[cfg(target_pointer_width = "64")]
        {
            let err = new(1usize << 62).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
            assert!(err.to_string().starts_with("splitstack: "), "{err}");
        }
        // The process still maps stacks afterwards.
        assert_eq!(new(3 * page + 1).unwrap().len(), 4 * page);
    }
}

#[test]
fn a_stack_is_three_words_and_keeps_its_auto_traits() {
    fn auto_traits<T: Send + Sync + Unpin + std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
    auto_traits::<Stack>();
    // It is stored in every segment's record and moved in and out of the caches: two words and
    // two 32-bit ids, three words on 64-bit targets (four on 32-bit ones).
    let words = if cfg!(target_pointer_width = "64") { 3 } else { 4 };
    assert_eq!(std::mem::size_of::<Stack>(), words * std::mem::size_of::<usize>());
}

#[test]
fn the_guard_is_inaccessible_and_the_usable_part_is_not() {
    for size in [4096, 8192, 12 * 1024, 64 * 1024, 1 << 20] {
        for _ in 0..2 {
            // The second round may take the first round's stack back from the free list.
            let stack = Stack::new(size).unwrap();
            // qemu-user makes /proc/self/maps up from its own page table, and a read while
            // another test's thread changes its mappings can miss one (seen once in riscv64
            // runs under qemu 7.2): an address not found is looked up in a fresh read.
            let perms = |addr: usize| {
                for _ in 0..10 {
                    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
                    let line = maps.lines().find(|line| {
                        let (lo, hi) =
                            line.split_whitespace().next().unwrap().split_once('-').unwrap();
                        let lo = usize::from_str_radix(lo, 16).unwrap();
                        let hi = usize::from_str_radix(hi, 16).unwrap();
                        lo <= addr && addr < hi
                    });
                    if let Some(line) = line {
                        return line.split_whitespace().nth(1).unwrap().to_string();
                    }
                }
                panic!("{addr:#x} is not mapped")
            };
            assert!(perms(stack.bottom() as usize).starts_with("rw"), "size {size}");
            assert!(perms(stack.top() as usize - 1).starts_with("rw"), "size {size}");
            match splitstack::guard_kind() {
                // Guard markers inside the stack's mapping: /proc/self/maps does not show them,
                // but the kernel refuses to read through them.
                splitstack::GuardKind::Regions => {
                    assert!(!readable(stack.guard().start), "size {size}");
                    assert!(!readable(stack.guard().end - 8), "size {size}");
                    assert!(readable(stack.bottom() as usize), "size {size}");
                    assert!(readable(stack.top() as usize - 8), "size {size}");
                }
                splitstack::GuardKind::Mprotect => {
                    assert_eq!(perms(stack.guard().start), "---p", "size {size}");
                    assert_eq!(perms(stack.guard().end - 1), "---p", "size {size}");
                }
            }
        }
    }
}
