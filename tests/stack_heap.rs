//! Stacks from the process-wide stack heap: recycling without system calls, zeroed stacks, the
//! free list's bound, stacks larger than an arena, and what a thread's exit leaves behind.
//!
//! The heap and its free list are process-wide, so every test here that reads
//! `Stack::heap_stats` or relies on getting a particular stack back runs in a child process, where
//! nothing else allocates stacks meanwhile.

mod common;

use common::{assert_child_passes, child_case, mapping_count};
use splitstack::{grow, machine, page_size, Coroutine, SpanHeap, Stack, Yielder};

/// Fills a stack's usable part with a nonzero pattern.
fn scribble(stack: &Stack) {
    // SAFETY: the usable part of a live stack, which nothing runs on.
    unsafe { std::ptr::write_bytes(stack.bottom(), 0xa5, stack.len()) };
}

/// Whether a stack's usable part is all zero.
fn all_zero(stack: &Stack) -> bool {
    // SAFETY: the usable part of a live stack, which nothing runs on.
    unsafe { std::slice::from_raw_parts(stack.bottom(), stack.len()) }.iter().all(|&b| b == 0)
}

/// Whether stacks of `len` come from the heap here (the OS page is at most the heap's page).
fn heap_backed() -> bool {
    page_size() <= SpanHeap::PAGE_SIZE
}

/// For a child case that needs heap-backed stacks: whether it is skipped because they are not
/// (after printing so, with the `done` its parent waits for).
fn skipped_without_heap_backing() -> bool {
    if heap_backed() {
        return false;
    }
    println!("skipped: OS pages larger than the heap's; done");
    true
}

#[test]
fn a_dropped_stack_is_taken_again_at_its_size_without_new_memory() {
    if child_case().as_deref() == Some("recycle") {
        if skipped_without_heap_backing() {
            return;
        }
        let size = 48 * 1024;
        let first = Stack::new(size).unwrap();
        let (bottom, guard) = (first.bottom(), first.guard());
        let maps = mapping_count();
        let stats = Stack::heap_stats();
        drop(first);
        for _ in 0..1000 {
            let again = Stack::new(size).unwrap();
            assert_eq!(again.bottom(), bottom, "the free list is last in, first out");
            assert_eq!(again.guard(), guard);
            assert_eq!(again.len(), 48 * 1024);
        }
        // Nothing carved from the heap, nothing mapped or unmapped: no system call.
        let after = Stack::heap_stats();
        assert_eq!((after.allocs, after.frees), (stats.allocs, stats.frees), "{after:?}");
        assert_eq!(after.bytes_mapped, stats.bytes_mapped);
        // (Not under ASan, whose allocator maps memory of its own meanwhile.)
        if !cfg!(feature = "asan") {
            assert_eq!(mapping_count(), maps);
        }
        // The guard of a recycled stack is still inaccessible: guard markers the kernel will not
        // read through, or a PROT_NONE mapping.
        let again = Stack::new(size).unwrap();
        if splitstack::guard_kind() == splitstack::GuardKind::Regions {
            assert!(!common::readable(again.guard().start) && !common::readable(guard.end - 8));
            println!("done");
            return;
        }
        let maps_text = std::fs::read_to_string("/proc/self/maps").unwrap();
        let guard_line = maps_text
            .lines()
            .find(|line| {
                let range = line.split_whitespace().next().unwrap();
                let (lo, hi) = range.split_once('-').unwrap();
                let lo = usize::from_str_radix(lo, 16).unwrap();
                let hi = usize::from_str_radix(hi, 16).unwrap();
                lo <= again.guard().start && again.guard().end <= hi
            })
            .expect("the guard's mapping");
        assert!(guard_line.contains("---p"), "guard not PROT_NONE: {guard_line}");
        println!("done");
        return;
    }
    assert_child_passes(
        "a_dropped_stack_is_taken_again_at_its_size_without_new_memory",
        "recycle",
        &[],
    );
}

#[test]
fn zeroed_stacks_clear_recycled_memory_and_skip_fresh_memory() {
    if child_case().as_deref() == Some("zeroed") {
        if !heap_backed() {
            // Every stack is a fresh mapping: zero without clearing.
            let stack = Stack::new_zeroed(40 * 1024).unwrap();
            assert!(all_zero(&stack));
            println!("skipped the heap checks: OS pages larger than the heap's; done");
            return;
        }
        // A size no other stack has had in this process: its span is fresh from the OS.
        let size = 40 * 1024;
        let before = Stack::heap_stats();
        let fresh = Stack::new_zeroed(size).unwrap();
        let after_fresh = Stack::heap_stats();
        assert!(all_zero(&fresh));
        assert_eq!(after_fresh.bytes_zeroed, before.bytes_zeroed, "fresh memory was cleared");
        assert_eq!(
            after_fresh.bytes_zeroing_skipped - before.bytes_zeroing_skipped,
            size as u64,
            "exactly the usable part is known zero (the guard is not touched)"
        );

        // Dirty it, drop it: the free list keeps it; a zeroed stack of its size is that stack,
        // cleared.
        scribble(&fresh);
        let bottom = fresh.bottom();
        drop(fresh);
        let recycled = Stack::new_zeroed(size).unwrap();
        assert_eq!(recycled.bottom(), bottom, "not the recycled stack");
        assert!(all_zero(&recycled), "a recycled stack came back dirty");
        let after_recycled = Stack::heap_stats();
        assert_eq!(after_recycled.bytes_zeroed - after_fresh.bytes_zeroed, size as u64);

        // Without zeroing, a recycled stack keeps what its last user left.
        scribble(&recycled);
        drop(recycled);
        let plain = Stack::new(size).unwrap();
        assert_eq!(plain.bottom(), bottom);
        // SAFETY: the usable part of a live stack.
        assert_eq!(unsafe { plain.bottom().read() }, 0xa5);
        assert_eq!(Stack::heap_stats().bytes_zeroed, after_recycled.bytes_zeroed);
        drop(plain);

        // Past the free list's bound (1,024 stacks), dropped stacks go back to the heap dirty:
        // zeroed stacks carved from those spans are cleared by the heap, all of them.
        let many: Vec<Stack> = (0..1500).map(|_| Stack::new(size).unwrap()).collect();
        many.iter().for_each(scribble);
        let in_use = Stack::heap_stats().pages_in_use;
        drop(many);
        let returned = in_use - Stack::heap_stats().pages_in_use;
        let span_pages = (size + page_size()).div_ceil(SpanHeap::PAGE_SIZE);
        assert!(returned >= (1500 - 1024) * span_pages, "{returned} pages back in the heap");
        let zeroed: Vec<Stack> = (0..1500).map(|_| Stack::new_zeroed(size).unwrap()).collect();
        assert!(zeroed.iter().all(all_zero), "a zeroed stack carved from a used span was dirty");
        println!("done");
        return;
    }
    assert_child_passes("zeroed_stacks_clear_recycled_memory_and_skip_fresh_memory", "zeroed", &[]);
}

#[test]
fn zeroed_stacks_are_zero_at_every_size() {
    // In-process (other tests' stacks may be recycled here, which is the point).
    for size in [1, 4096, 8192, 12 * 1024, 16 * 1024, 100_000, 1 << 20] {
        for _ in 0..3 {
            let stack = Stack::new_zeroed(size).unwrap();
            assert!(all_zero(&stack), "size {size}");
            assert_eq!(stack.len(), size.next_multiple_of(page_size()));
            scribble(&stack);
        }
    }
}

#[test]
fn a_stack_larger_than_an_arena_is_mapped_on_its_own_and_works() {
    // 300 MiB: larger than a 256 MiB arena.
    let size = 300 << 20;
    for _ in 0..2 {
        let stack = Stack::new_zeroed(size).unwrap();
        assert_eq!(stack.len(), size);
        assert_eq!(stack.guard().end, stack.bottom() as usize);
        // SAFETY: the lowest and highest usable bytes of a live stack.
        unsafe {
            assert_eq!(stack.bottom().read(), 0);
            assert_eq!(stack.top().sub(1).read(), 0);
            stack.bottom().write(1);
            stack.top().sub(1).write(2);
        }
    }
}

#[test]
fn stacks_stay_distinct_across_threads_under_churn() {
    // Several threads take and drop stacks of a few sizes: each live stack keeps what its owner
    // wrote at both ends (no stack is handed out twice).
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut live: Vec<(Stack, u8)> = Vec::new();
                for i in 0..2000usize {
                    let size = [4096, 12 * 1024, 60 * 1024][i % 3];
                    let stack = if i % 5 == 0 { Stack::new_zeroed(size) } else { Stack::new(size) };
                    let stack = stack.unwrap();
                    let tag = t.wrapping_mul(31).wrapping_add(i as u8);
                    // SAFETY: the usable part of a live stack of ours.
                    unsafe {
                        stack.bottom().write(tag);
                        stack.top().sub(1).write(tag);
                    }
                    live.push((stack, tag));
                    if live.len() > 20 {
                        let (old, tag) = live.swap_remove(i % 20);
                        // SAFETY: as above.
                        unsafe {
                            assert_eq!(old.bottom().read(), tag);
                            assert_eq!(old.top().sub(1).read(), tag);
                        }
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
}

#[test]
fn a_threads_stacks_are_reused_after_it_exits_without_new_mappings() {
    if cfg!(feature = "asan") {
        eprintln!("skipped under the asan feature (ASan maps per thread)");
        return;
    }
    if child_case().as_deref() == Some("thread-exit") {
        // A thread that splits into eight nested segments and runs a coroutine, twice: the
        // second thread takes the first one's stacks (its alternate signal stack, its segments,
        // its coroutine stack) from the free list, so it leaves the process's mappings and the
        // heap as the first left them.
        let run = || {
            std::thread::spawn(|| {
                fn nest(levels: u32) {
                    if levels > 0 {
                        grow(64 * 1024, || nest(levels - 1));
                    }
                }
                nest(8);
                let mut co = Coroutine::new(|_: &Yielder<(), ()>, ()| ());
                co.resume(());
                drop(co);
                machine::stats().segments_cached
            })
            .join()
            .unwrap()
        };
        let cached = run();
        let (maps_first, heap_first) = (mapping_count(), Stack::heap_stats());
        run();
        let (maps_second, heap_second) = (mapping_count(), Stack::heap_stats());
        println!(
            "cached={cached} first={maps_first} second={maps_second} \
             mapped_first={} mapped_second={} in_use_first={} in_use_second={} done",
            heap_first.bytes_mapped,
            heap_second.bytes_mapped,
            heap_first.pages_in_use,
            heap_second.pages_in_use
        );
        return;
    }
    let output = assert_child_passes(
        "a_threads_stacks_are_reused_after_it_exits_without_new_mappings",
        "thread-exit",
        &[],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = &stdout[stdout.find("cached=").expect("the child's report")..];
    let field = |name: &str| -> usize {
        let start = line.find(name).unwrap() + name.len();
        line[start..].split_whitespace().next().unwrap().parse().unwrap()
    };
    assert_eq!(field("cached="), 8, "{line}");
    assert!(field("second=") <= field("first="), "stacks leaked past thread exit: {line}");
    assert_eq!(field("mapped_second="), field("mapped_first="), "{line}");
    assert_eq!(field("in_use_second="), field("in_use_first="), "{line}");
}

#[test]
fn a_full_free_list_makes_room_for_the_size_in_use_now() {
    if child_case().as_deref() == Some("make-room") {
        if skipped_without_heap_backing() {
            return;
        }
        // A burst of 2,000 live 16 KiB stacks fills the free list with that size when dropped.
        let burst: Vec<Stack> = (0..2000).map(|_| Stack::new(16 * 1024).unwrap()).collect();
        drop(burst);
        // Now a 64 KiB stack in a loop: its first drop evicts a 16 KiB one, and from then on it
        // comes back from the list, with nothing carved from the heap.
        drop(Stack::new(64 * 1024).unwrap());
        let first = Stack::new(64 * 1024).unwrap();
        let bottom = first.bottom();
        drop(first);
        let stats = Stack::heap_stats();
        for _ in 0..100 {
            let again = Stack::new(64 * 1024).unwrap();
            assert_eq!(again.bottom(), bottom);
        }
        let after = Stack::heap_stats();
        assert_eq!((after.allocs, after.frees), (stats.allocs, stats.frees), "{after:?}");
        println!("done");
        return;
    }
    assert_child_passes("a_full_free_list_makes_room_for_the_size_in_use_now", "make-room", &[]);
}

#[test]
fn the_free_list_trims_what_passes_its_resident_bound_and_skips_clearing_it() {
    if child_case().as_deref() == Some("trim") {
        if skipped_without_heap_backing() {
            return;
        }
        // 80 stacks of 1 MiB, every byte written: 80 MiB of resident pages dropped into a list
        // that keeps at most 64 MiB resident. The stacks past the bound are trimmed, not lost.
        let stacks: Vec<Stack> = (0..80).map(|_| Stack::new(1 << 20).unwrap()).collect();
        let bottoms: Vec<_> = stacks.iter().map(|s| s.bottom() as usize).collect();
        for stack in &stacks {
            scribble(stack);
        }
        let carved = Stack::heap_stats().allocs;
        drop(stacks);
        // All 80 come back from the list (no new span), each all zero; the trimmed ones are
        // cleared only in their top 16 KiB.
        let before = Stack::heap_stats();
        let again: Vec<Stack> = (0..80).map(|_| Stack::new_zeroed(1 << 20).unwrap()).collect();
        let after = Stack::heap_stats();
        assert_eq!(after.allocs, carved, "a stack was carved anew instead of reused");
        for stack in &again {
            assert!(bottoms.contains(&(stack.bottom() as usize)));
            assert!(all_zero(stack), "a recycled stack is not zero");
        }
        let skipped = after.bytes_zeroing_skipped - before.bytes_zeroing_skipped;
        let cleared = after.bytes_zeroed - before.bytes_zeroed;
        assert!(skipped >= 16 * ((1 << 20) - 16 * 1024), "skipped only {skipped} bytes");
        assert!(cleared < 80 << 20, "cleared {cleared} bytes");
        println!("skipped {skipped}, cleared {cleared}; done");
        return;
    }
    assert_child_passes(
        "the_free_list_trims_what_passes_its_resident_bound_and_skips_clearing_it",
        "trim",
        &[],
    );
}
