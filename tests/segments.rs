//! Segmented stacks: deep recursion, the hot split, m.cret, panics across segments, threads, bad
//! sizes. What a thread's exit does with its cached segments is in tests/stack_heap.rs.

mod common;

use common::deep_sum;
use splitstack::{grow, machine, remaining_stack, try_grow, ErrorKind};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A size below `isize::MAX` that no 64-bit process can map (4 EiB). A 32-bit one has no such
/// size: its `isize::MAX` (2 GiB) fits in the 4 GiB a 64-bit kernel gives it, so there the
/// refusal is tested by tests/fault_injection.rs, under a lowered `RLIMIT_AS`.
#[cfg(target_pointer_width = "64")]
const NEVER_MAPPABLE: usize = 1 << 62;

/// The red zone and segment size of the tests' checked recursion ([`deep_sum`]).
const RED_ZONE: usize = 32 * 1024;
const SEGMENT: usize = 256 * 1024;

#[test]
fn a_million_levels_of_maybe_grow_recursion_return_the_right_sum() {
    let before = machine::stats();
    let n = 1_000_000u64;
    assert_eq!(deep_sum::<RED_ZONE, SEGMENT>(n), n * (n + 1) / 2);
    let after = machine::stats();
    assert!(after.splits > before.splits, "a million levels should have needed segments");
    assert_eq!(after.segments_in_use, 0);
    assert!(after.segments_cached <= machine::SEGMENT_CACHE_CAPACITY as u64, "{after:?}");
    assert_eq!(machine::cret(), 0);
}

#[inline(never)]
fn tiny(x: u64) -> u64 {
    std::hint::black_box(x) + 1
}

#[test]
fn hot_split_maps_a_segment_once() {
    let before = machine::stats();
    for i in 0..100_000u64 {
        assert_eq!(grow(64 * 1024, || tiny(i)), i + 1);
        assert_eq!(machine::cret(), 0, "m.cret not cleared after unsplit {i}");
    }
    let after = machine::stats();
    assert_eq!(after.splits - before.splits, 100_000);
    assert!(
        after.segments_mapped - before.segments_mapped <= 1,
        "the hot split mapped {} segments",
        after.segments_mapped - before.segments_mapped
    );
}

#[test]
fn cret_is_zero_after_every_return_and_values_of_any_type_come_back() {
    let v: Vec<String> = grow(32 * 1024, || (0..100).map(|i| i.to_string()).collect());
    assert_eq!(v.len(), 100);
    assert_eq!(machine::cret(), 0);
    let big: [u64; 512] = grow(256 * 1024, || std::array::from_fn(|i| i as u64 * 3));
    assert_eq!(big[511], 511 * 3);
    assert_eq!(machine::cret(), 0);
    grow(32 * 1024, || ());
    assert_eq!(machine::cret(), 0);
}

#[test]
fn a_panic_crosses_several_segments_with_its_payload_and_leaks_nothing() {
    let before = machine::stats();
    let result = catch_unwind(AssertUnwindSafe(|| {
        grow(32 * 1024, || {
            grow(32 * 1024, || grow(32 * 1024, || -> u32 { std::panic::panic_any(0xfeed_u32) }))
        })
    }));
    let payload = result.expect_err("the panic was lost");
    assert_eq!(payload.downcast_ref::<u32>(), Some(&0xfeed));
    let after = machine::stats();
    assert_eq!(after.segments_in_use, 0, "a segment was not returned");
    assert_eq!(after.splits - before.splits, 3);
    assert_eq!(machine::cret(), 0);
}

#[test]
fn remaining_stack_tracks_the_current_segment() {
    let outer = remaining_stack();
    assert!(outer > 0);
    let inner = grow(256 * 1024, remaining_stack);
    assert!(inner <= 256 * 1024, "remaining {inner} bytes on a 256 KiB segment");
    assert!(inner > 200 * 1024, "only {inner} bytes left on a fresh 256 KiB segment");
    assert!(remaining_stack().abs_diff(outer) < 4096, "the old limit was not restored");
}

#[test]
fn two_threads_grow_at_once() {
    // Small thread stacks, so that a recursion of 20,000 levels (1-2 MiB) splits several times
    // while staying within ThreadSanitizer's 65,536-frame shadow call stack (ci/tsan.sh runs
    // this test).
    let handles: Vec<_> = (0..2)
        .map(|t| {
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let n = 20_000 + t;
                    let sum = deep_sum::<RED_ZONE, SEGMENT>(n);
                    let stats = machine::stats();
                    (sum, n, stats)
                })
                .unwrap()
        })
        .collect();
    for h in handles {
        let (sum, n, stats) = h.join().unwrap();
        assert_eq!(sum, n * (n + 1) / 2);
        assert!(stats.splits > 0);
        assert_eq!(stats.segments_in_use, 0);
    }
}

#[test]
fn bad_segment_sizes_are_errors_and_grow_panics_with_the_reason() {
    assert_eq!(try_grow(0, || ()).unwrap_err().kind(), ErrorKind::InvalidSize);
    assert_eq!(try_grow(usize::MAX, || ()).unwrap_err().kind(), ErrorKind::InvalidSize);
    assert_eq!(try_grow(usize::MAX - 4095, || ()).unwrap_err().kind(), ErrorKind::InvalidSize);
    #[cfg(target_pointer_width = "64")]
    {
        let err = try_grow(NEVER_MAPPABLE, || ()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
    }
    // Tiny and odd sizes are rounded up and work.
    assert_eq!(try_grow(1, || 5).unwrap(), 5);
    assert_eq!(try_grow(12_345, || 6).unwrap(), 6);
    let panic = catch_unwind(|| grow(0, || ())).unwrap_err();
    let message = panic.downcast_ref::<String>().expect("a String message");
    assert!(message.contains("0 bytes"), "{message}");
    // The thread still grows after the failures.
    assert_eq!(grow(64 * 1024, || 7), 7);
}

#[test]
fn hot_split_of_a_new_size_does_not_thrash_a_cache_full_of_other_sizes() {
    // Fill the cache with segments of another size: 40 nested grows of 128 KiB.
    fn nest(levels: u32) {
        if levels > 0 {
            grow(128 * 1024, || nest(levels - 1));
        }
    }
    nest(40);
    assert_eq!(machine::stats().segments_cached, machine::SEGMENT_CACHE_CAPACITY as u64);
    let before = machine::stats();
    for i in 0..1_000u64 {
        assert_eq!(grow(64 * 1024, || tiny(i)), i + 1);
    }
    let mapped = machine::stats().segments_mapped - before.segments_mapped;
    assert_eq!(mapped, 1, "a hot split after the cache filled up mapped {mapped} segments");
}

#[test]
fn the_segment_cache_capacity_sets_what_a_repeated_nested_split_maps() {
    std::thread::spawn(|| {
        // Big enough for the whole descent: the second descent maps nothing. (Nested `grow`s
        // of one size, since `maybe_grow` doubles its segments and needs few.)
        fn nest(depth: u32) -> u32 {
            if depth == 0 {
                0
            } else {
                grow(64 * 1024, || nest(depth - 1)) + 1
            }
        }
        machine::set_segment_cache_capacity(1_000);
        assert_eq!(nest(40), 40);
        let first = machine::stats();
        assert_eq!(first.segments_mapped, 40, "{first:?}");
        assert_eq!(nest(40), 40);
        let second = machine::stats();
        assert_eq!(second.segments_mapped, first.segments_mapped, "{second:?}");
        // Shrinking unmaps the surplus now; 0 keeps nothing, so a hot split maps every time.
        machine::set_segment_cache_capacity(2);
        assert_eq!(machine::stats().segments_cached, 2);
        machine::set_segment_cache_capacity(0);
        assert_eq!(machine::stats().segments_cached, 0);
        let before = machine::stats().segments_mapped;
        for _ in 0..10 {
            grow(64 * 1024, || ());
        }
        assert_eq!(machine::stats().segments_mapped - before, 10);
        assert_eq!(machine::stats().segments_cached, 0);
    })
    .join()
    .unwrap();
}

#[test]
fn maybe_grow_doubles_the_stack_it_leaves_so_a_deep_recursion_takes_few_segments() {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            // 1,000,000 levels need tens of MiB: from a 256 KiB thread stack, segments of
            // 512 KiB, 1, 2, 4, ... MiB suffice, where fixed 256 KiB segments would take
            // hundreds.
            let n = 1_000_000u64;
            assert_eq!(deep_sum::<RED_ZONE, SEGMENT>(n), n * (n + 1) / 2);
            let stats = machine::stats();
            assert!(stats.segments_mapped <= 10, "{stats:?}");
            assert!(stats.splits >= 2, "{stats:?}");
            // The second descent finds them all in the cache.
            assert_eq!(deep_sum::<RED_ZONE, SEGMENT>(n), n * (n + 1) / 2);
            assert_eq!(machine::stats().segments_mapped, stats.segments_mapped);
        })
        .unwrap()
        .join()
        .unwrap();
}
