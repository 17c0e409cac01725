//! SpanHeap: zeroing only when needed, coalescing, accounting, threads, bad sizes, and spans that
//! outlive their heap.

mod common;

use common::Rng;
use splitstack::{ErrorKind, HeapStats, Span, SpanHeap};
use std::collections::BTreeMap;

const PAGE: usize = SpanHeap::PAGE_SIZE;

fn all_zero(span: &mut Span) -> bool {
    span.as_mut_slice().iter().all(|&b| b == 0)
}

/// Every mapped page is either in use or free.
fn assert_accounted(stats: &HeapStats) {
    assert_eq!(stats.pages_in_use + stats.pages_free, stats.bytes_mapped / PAGE, "{stats:?}");
    assert_eq!(stats.bytes_mapped % PAGE, 0);
}

#[test]
fn fresh_spans_skip_zeroing() {
    let heap = SpanHeap::new();
    let mut span = heap.alloc(16, true).unwrap();
    assert_eq!(span.len(), 16 * PAGE);
    assert_eq!(span.npages(), 16);
    assert!(all_zero(&mut span));
    let stats = heap.stats();
    assert_eq!(stats.bytes_zeroed, 0);
    assert_eq!(stats.bytes_zeroing_skipped, 16 * PAGE as u64);
    assert_eq!(stats.arenas, 1);
    assert_eq!(stats.pages_in_use, 16);
    assert_eq!(stats.allocs, 1);
    assert_accounted(&stats);
}

#[test]
fn zeroed_spans_are_zero_after_reuse_of_dirtied_memory() {
    let heap = SpanHeap::new();
    let mut span = heap.alloc(8, false).unwrap();
    span.as_mut_slice().fill(0xee);
    heap.free(span);
    // First fit by address: the same pages come back.
    let mut dirty = heap.alloc(8, false).unwrap();
    assert!(dirty.as_mut_slice().iter().all(|&b| b == 0xee), "alloc(_, false) must not zero");
    heap.free(dirty);
    let mut span = heap.alloc(8, true).unwrap();
    assert!(all_zero(&mut span));
    let stats = heap.stats();
    assert_eq!(stats.bytes_zeroed, 8 * PAGE as u64);
    assert_eq!(stats.frees, 2);
}

#[test]
fn coalescing_a_dirty_span_with_a_clean_one_zeroes_only_the_dirty_pages() {
    let heap = SpanHeap::new();
    let mut a = heap.alloc(4, false).unwrap();
    a.as_mut_slice().fill(1);
    heap.free(a); // 4 dirty pages, coalesced with the clean rest of the arena
    let mut b = heap.alloc(10, true).unwrap(); // the 4 dirty pages and 6 clean ones
    assert!(all_zero(&mut b));
    let stats = heap.stats();
    assert_eq!(stats.bytes_zeroed, 4 * PAGE as u64);
    assert_eq!(stats.bytes_zeroing_skipped, 6 * PAGE as u64);
}

#[test]
fn free_spans_coalesce_back_into_one() {
    let heap = SpanHeap::new();
    let spans: Vec<Span> = (1..=20).map(|n| heap.alloc(n, false).unwrap()).collect();
    let mapped = heap.stats().bytes_mapped;
    // Free every other one, then the rest: every free must merge with both neighbours.
    let (odd, even): (Vec<_>, Vec<_>) =
        spans.into_iter().enumerate().partition(|(i, _)| i % 2 == 1);
    for (_, span) in odd.into_iter().chain(even) {
        heap.free(span);
    }
    let stats = heap.stats();
    assert_eq!(stats.pages_in_use, 0);
    assert_accounted(&stats);
    // The whole arena is one free span again: a request for all of it needs no new mapping.
    let whole = heap.alloc(mapped / PAGE, false).unwrap();
    assert_eq!(heap.stats().arenas, 1);
    drop(whole);
}

#[test]
fn a_request_larger_than_an_arena_gets_its_own_mapping() {
    let heap = SpanHeap::new();
    let small = heap.alloc(1, false).unwrap();
    let arena = heap.stats().bytes_mapped;
    let npages = arena / PAGE + 3;
    let mut big = heap.alloc(npages, true).unwrap();
    assert_eq!(big.len(), npages * PAGE);
    let slice = big.as_mut_slice();
    slice[0] = 1;
    slice[npages * PAGE - 1] = 1;
    let stats = heap.stats();
    assert_eq!(stats.arenas, 2);
    assert_eq!(stats.bytes_mapped, arena + npages * PAGE);
    assert_accounted(&stats);
    drop((small, big));
    assert_eq!(heap.stats().pages_in_use, 0);
}

#[test]
fn bad_sizes_are_errors() {
    let heap = SpanHeap::new();
    for npages in [0, usize::MAX, usize::MAX / PAGE + 1, isize::MAX as usize / PAGE + 1] {
        let err = heap.alloc(npages, true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSize, "{npages}: {err}");
        assert!(!err.to_string().is_empty());
    }
    assert_eq!(heap.stats(), HeapStats::default());
}

#[test]
fn a_request_the_os_refuses_is_an_error_and_the_heap_stays_usable() {
    let heap = SpanHeap::new();
    let keep = heap.alloc(3, false).unwrap();
    // 2^50 bytes: more than any 64-bit Linux user address space (47 or 48 bits; Sv48 or Sv39 on
    // RISC-V). A 32-bit process has no such request below isize::MAX, which the heap refuses as
    // InvalidSize (above): there tests/fault_injection.rs makes the OS refuse, under RLIMIT_AS.
    #[cfg(target_pointer_width = "64")]
    {
        let err = heap.alloc((1usize << 50) / PAGE, false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
        println!("{err}");
    }
    let mut span = heap.alloc(5, true).unwrap();
    assert!(all_zero(&mut span));
    let stats = heap.stats();
    assert_eq!(stats.arenas, 1);
    assert_eq!(stats.pages_in_use, 8);
    assert_accounted(&stats);
    drop(keep);
}

#[test]
fn spans_outlive_their_heap_and_dropping_a_span_returns_it() {
    let heap = SpanHeap::new();
    let mut kept = heap.alloc(2, true).unwrap();
    let dropped = heap.alloc(2, false).unwrap();
    drop(dropped); // same as free
    let stats = heap.stats();
    assert_eq!((stats.pages_in_use, stats.frees), (2, 1));
    drop(heap);
    // The arena stays mapped until the last span is gone.
    kept.as_mut_slice().fill(3);
    assert_eq!(kept.as_mut_slice()[2 * PAGE - 1], 3);
    drop(kept);
}

/// Random alloc/free sequences: no two live spans overlap, zeroed spans are zero, and every page
/// is accounted for at every step.
#[test]
fn random_alloc_free_sequences_keep_every_invariant() {
    for seed in [1u64, 7, 0xdead_beef, 0x9e37_79b9_7f4a_7c15, 12345] {
        let heap = SpanHeap::new();
        let mut rng = Rng(seed);
        let mut live: Vec<(Span, u8)> = Vec::new();
        for step in 0..1500 {
            if live.is_empty() || rng.below(100) < 55 {
                // Mostly small, sometimes up to a quarter of an arena.
                let npages =
                    if rng.below(10) == 0 { 1 + rng.below(2048) } else { 1 + rng.below(16) };
                let zeroed = rng.below(2) == 0;
                let mut span = heap.alloc(npages, zeroed).unwrap();
                assert_eq!(span.npages(), npages);
                if zeroed {
                    assert!(all_zero(&mut span), "seed {seed} step {step}: not zeroed");
                }
                // Dirty it with a tag, so that overlaps and missed zeroing show.
                let tag = 1 + (step % 255) as u8;
                let slice = span.as_mut_slice();
                slice[0] = tag;
                slice[slice.len() / 2] = tag;
                let last = slice.len() - 1;
                slice[last] = tag;
                live.push((span, tag));
            } else {
                let (mut span, tag) = live.swap_remove(rng.below(live.len()));
                let slice = span.as_mut_slice();
                assert_eq!(
                    (slice[0], slice[slice.len() / 2], slice[slice.len() - 1]),
                    (tag, tag, tag),
                    "seed {seed} step {step}: another span wrote over this one"
                );
                heap.free(span);
            }
            let stats = heap.stats();
            assert_accounted(&stats);
            let in_use: usize = live.iter().map(|(s, _)| s.npages()).sum();
            assert_eq!(stats.pages_in_use, in_use, "seed {seed} step {step}");
        }
        // No overlap among the survivors, checked by address.
        let mut ranges = BTreeMap::new();
        for (span, _) in &live {
            ranges.insert(span.as_ptr() as usize, span.len());
        }
        let mut end = 0;
        for (&start, &len) in &ranges {
            assert!(start >= end, "seed {seed}: spans overlap");
            end = start + len;
        }
        let stats = heap.stats();
        assert_eq!(stats.allocs - stats.frees, live.len() as u64);
        drop(live);
        let stats = heap.stats();
        assert_eq!(stats.pages_in_use, 0);
        assert_accounted(&stats);
    }
}

#[test]
fn two_threads_at_once() {
    let heap = SpanHeap::new();
    std::thread::scope(|s| {
        for t in 0..2u8 {
            let heap = &heap;
            s.spawn(move || {
                let mut rng = Rng(100 + t as u64);
                let mut live = Vec::new();
                for _ in 0..3000 {
                    if live.len() < 32 && rng.below(2) == 0 {
                        let mut span = heap.alloc(1 + rng.below(64), true).unwrap();
                        assert!(all_zero(&mut span));
                        span.as_mut_slice().fill(0x40 + t);
                        live.push(span);
                    } else if let Some(mut span) = live.pop() {
                        assert!(span.as_mut_slice().iter().all(|&b| b == 0x40 + t));
                        heap.free(span);
                    }
                }
            });
        }
    });
    let stats = heap.stats();
    assert_eq!(stats.pages_in_use, 0);
    assert_eq!(stats.allocs, stats.frees);
    assert_accounted(&stats);
}

#[test]
fn span_heap_and_span_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SpanHeap>();
    check::<Span>();
}

#[test]
fn a_large_span_freed_unwritten_is_not_cleared_or_made_resident_by_the_next_zeroed_alloc() {
    if !common::pagemap_describes_this_process() {
        // The heap cannot tell written pages from unwritten ones without the pagemap, and then
        // clears every page of a freed span, as documented (src/span_heap.rs): under qemu-user
        // with a 32-bit guest (armv7), whose addresses the kernel's pagemap does not describe.
        assert!(std::env::var_os("SPLITSTACK_QEMU_USER").is_some(), "no pagemap outside qemu");
        println!("skipped: /proc/self/pagemap does not describe this process (qemu-user)");
        return;
    }
    let heap = SpanHeap::new();
    let pages = (256 << 20) / SpanHeap::PAGE_SIZE;
    let span = heap.alloc(pages, true).unwrap();
    drop(span);
    let before = common::resident_bytes();
    let zeroed_before = heap.stats().bytes_zeroed;
    let mut span = heap.alloc(pages, true).unwrap();
    let grown = common::resident_bytes().saturating_sub(before);
    assert_eq!(heap.stats().bytes_zeroed, zeroed_before, "unwritten pages were cleared");
    assert!(grown < 16 << 20, "the zeroed alloc made {} MiB resident", grown >> 20);
    // What it hands out is zero all the same.
    assert!(span.as_mut_slice().iter().step_by(4093).all(|&b| b == 0));
}

#[test]
fn a_large_span_partly_written_has_exactly_its_written_pages_cleared() {
    if !common::pagemap_describes_this_process() {
        // The heap cannot tell written pages from unwritten ones without the pagemap, and then
        // clears every page of a freed span, as documented (src/span_heap.rs): under qemu-user
        // with a 32-bit guest (armv7), whose addresses the kernel's pagemap does not describe.
        assert!(std::env::var_os("SPLITSTACK_QEMU_USER").is_some(), "no pagemap outside qemu");
        println!("skipped: /proc/self/pagemap does not describe this process (qemu-user)");
        return;
    }
    let heap = SpanHeap::new();
    let pages = (8 << 20) / SpanHeap::PAGE_SIZE;
    let mut span = heap.alloc(pages, true).unwrap();
    let written = 3 * SpanHeap::PAGE_SIZE + 100;
    span.as_mut_slice()[SpanHeap::PAGE_SIZE..SpanHeap::PAGE_SIZE + written].fill(0xa5);
    drop(span);
    let zeroed_before = heap.stats().bytes_zeroed;
    let mut span = heap.alloc(pages, true).unwrap();
    // The four heap pages the bytes touched (OS pages of 4 KiB or of a heap page's size), not the
    // span's 8 MiB.
    let cleared = heap.stats().bytes_zeroed - zeroed_before;
    assert!(cleared >= 4 * SpanHeap::PAGE_SIZE as u64, "{cleared} bytes cleared");
    assert!(cleared <= (64 << 10) as u64, "{cleared} bytes cleared");
    assert!(span.as_mut_slice().iter().all(|&b| b == 0));
}

/// Spans a thread's page cache handed out, freed on another thread, go back to the heap under its
/// lock: nothing overlaps, zeroed spans are zero, and the counters add up with the first
/// thread's cache still holding its chunk.
#[test]
fn small_spans_freed_on_another_thread_go_back_to_the_heap() {
    let heap = SpanHeap::new();
    let (to_freer, from_maker) = std::sync::mpsc::channel::<Span>();
    std::thread::scope(|s| {
        s.spawn(move || {
            for span in from_maker {
                drop(span);
            }
        });
        let mut rng = Rng(42);
        let mut kept: Vec<(Span, u8)> = Vec::new();
        for round in 0..2000u32 {
            let npages = 1 + rng.below(16);
            let mut span = heap.alloc(npages, true).unwrap();
            assert!(all_zero(&mut span), "round {round}");
            let tag = 1 + (round % 250) as u8;
            span.as_mut_slice().fill(tag);
            if rng.below(3) == 0 {
                kept.push((span, tag));
            } else {
                to_freer.send(span).unwrap();
            }
            if kept.len() > 20 {
                let (mut span, tag) = kept.swap_remove(rng.below(kept.len()));
                assert!(
                    span.as_mut_slice().iter().all(|&b| b == tag),
                    "round {round}: overwritten"
                );
                heap.free(span); // on this thread: back into its cache when it lies in the chunk
            }
        }
        drop(to_freer);
        for (mut span, tag) in kept {
            assert!(span.as_mut_slice().iter().all(|&b| b == tag), "overwritten");
        }
    });
    let stats = heap.stats();
    assert_eq!(stats.pages_in_use, 0, "{stats:?}");
    assert_eq!(stats.allocs, stats.frees);
    assert_eq!(stats.allocs, 2000);
    assert_accounted(&stats);
}

/// A thread's cache is one heap's at a time: alternating between two heaps hands each chunk
/// back to its own heap, and each heap's counters stay exact.
#[test]
fn a_thread_alternating_between_two_heaps_keeps_each_exact() {
    let (a, b) = (SpanHeap::new(), SpanHeap::new());
    let mut live: Vec<(usize, Span)> = Vec::new(); // (which heap, span)
    for i in 0..300 {
        let heap = if i % 2 == 0 { &a } else { &b };
        live.push((i % 2, heap.alloc(1 + i % 5, false).unwrap()));
        if i % 3 == 0 {
            drop(live.remove(0));
        }
    }
    for (which, heap) in [&a, &b].into_iter().enumerate() {
        let stats = heap.stats();
        let in_use: usize = live.iter().filter(|(w, _)| *w == which).map(|(_, s)| s.npages()).sum();
        assert_eq!(stats.pages_in_use, in_use, "{stats:?}");
        assert_accounted(&stats);
    }
    drop(live);
    for stats in [a.stats(), b.stats()] {
        assert_eq!(stats.pages_in_use, 0, "{stats:?}");
        assert_eq!(stats.allocs, stats.frees);
        assert_eq!(stats.allocs, 150);
    }
}

/// A thread that exits gives its cached chunk back: the whole arena is free again for a
/// request that needs all of it.
#[test]
fn an_exiting_thread_gives_its_cached_chunk_back() {
    let heap = std::sync::Arc::new(SpanHeap::new());
    let worker = std::sync::Arc::clone(&heap);
    std::thread::spawn(move || drop(worker.alloc(1, false).unwrap())).join().unwrap();
    let stats = heap.stats();
    assert_eq!((stats.arenas, stats.pages_in_use), (1, 0), "{stats:?}");
    let whole = heap.alloc(stats.bytes_mapped / PAGE, false).unwrap();
    assert_eq!(heap.stats().arenas, 1, "the exited thread's chunk was not given back");
    drop(whole);
}

/// A zeroed allocation clears dirty pages freed a moment ago through the cache, and pages freed
/// long ago (more bytes handed out since than the CPU's cache share) as cold memory.
#[test]
fn memory_freed_long_ago_is_cleared_as_cold_and_memory_freed_just_now_is_not() {
    let heap = SpanHeap::new();
    let pages = 32; // 256 KiB: past the cold path's least length, and past the page cache
    let mut a = heap.alloc(pages, false).unwrap();
    let _b = heap.alloc(1, false).unwrap(); // keeps later runs from starting in `a`'s hole
    a.as_mut_slice().fill(7);
    drop(a);
    let mut hot = heap.alloc(pages, true).unwrap();
    assert!(all_zero(&mut hot));
    let stats = heap.stats();
    assert_eq!((stats.bytes_zeroed, stats.bytes_zeroed_cold), ((pages * PAGE) as u64, 0));
    hot.as_mut_slice().fill(7);
    drop(hot);
    let Some(after) = SpanHeap::cold_after_bytes() else {
        // Where cold memory is cleared no differently (AArch64), nothing is counted as cold.
        let mut again = heap.alloc(pages, true).unwrap();
        assert!(all_zero(&mut again));
        assert_eq!(heap.stats().bytes_zeroed_cold, 0);
        return;
    };
    // `after` bytes handed out since the free: address space only, never touched.
    let _filler = heap.alloc(after / PAGE + 1, false).unwrap();
    let mut cold = heap.alloc(pages, true).unwrap();
    assert!(all_zero(&mut cold));
    let stats = heap.stats();
    assert_eq!(stats.bytes_zeroed, 2 * (pages * PAGE) as u64);
    assert_eq!(stats.bytes_zeroed_cold, (pages * PAGE) as u64, "{stats:?}");
}
