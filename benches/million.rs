//! A million live coroutines, each suspended once and then resumed to completion, against the
//! kernel's own work for the same memory: one loop that maps the same address space (in arenas
//! of the stack heap's size) and touches the same number of pages. Prints the figures the README
//! quotes; not a criterion bench, since one round is the measurement (and takes seconds).
//!
//! `cargo bench --bench million`; `SPLITSTACK_LIVE_COROUTINES=n` changes the count. Where guards
//! are mprotect mappings (before Linux 6.13, or under qemu-user), creation stops at
//! `vm.max_map_count`, and the bench says so.

use splitstack::{Coroutine, CoroutineResult, Yielder, DEFAULT_STACK_SIZE, GUARD_SIZE};
use std::time::Instant;

/// The stack heap's arena size, which the baseline maps in.
const ARENA: usize = 256 << 20;

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * splitstack::page_size()
}

fn mapping_count() -> Option<usize> {
    std::fs::read_to_string("/proc/self/maps").ok().map(|maps| maps.lines().count())
}

/// The kernel's work alone: `n` stacks' address space mapped in arenas (`MAP_NORESERVE`) and
/// `pages` pages touched at the top of each. Returns the seconds it took.
fn baseline(n: usize, pages: usize) -> f64 {
    let page = splitstack::page_size();
    let span = (DEFAULT_STACK_SIZE + GUARD_SIZE).next_multiple_of(8192);
    let per_arena = ARENA / span;
    let start = Instant::now();
    let mut arenas = Vec::new();
    let mut left = n;
    while left > 0 {
        // SAFETY: a fresh private reservation, written only in the loop below, unmapped at the end.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ARENA,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "the baseline's arena");
        for i in 0..per_arena.min(left) {
            let top = base as usize + (i + 1) * span;
            for p in 1..=pages {
                // SAFETY: a page inside the arena just mapped.
                unsafe { ((top - p * page) as *mut u64).write_volatile(i as u64) };
            }
        }
        left -= per_arena.min(left);
        arenas.push(base);
    }
    let elapsed = start.elapsed().as_secs_f64();
    for base in arenas {
        // SAFETY: the arenas mapped above, not used any more.
        unsafe { libc::munmap(base, ARENA) };
    }
    elapsed
}

fn main() {
    // Run as a bench target, cargo passes `--bench`; there is nothing to filter.
    let n: usize = std::env::var("SPLITSTACK_LIVE_COROUTINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let kind = splitstack::guard_kind();
    println!("guard kind: {kind:?}; {n} coroutines on {} KiB stacks", DEFAULT_STACK_SIZE >> 10);

    // The kernel's work once before the coroutines and once after (a page fault's cost drifts
    // with what the host does, and the run after frees a million stacks first): the creation is
    // compared with the faster of the two. The first touches one page a stack, what an idle
    // coroutine holds; the second as many as the coroutines turned out to hold.
    let plain_before = baseline(n, 1);
    let rss_before = resident_bytes();
    let maps_before = mapping_count();
    let mut live: Vec<Coroutine<u64, u64, u64>> = Vec::with_capacity(n);
    let start = Instant::now();
    let mut stopped = None;
    for i in 0..n as u64 {
        match Coroutine::with_stack_size(DEFAULT_STACK_SIZE, move |y: &Yielder<u64, u64>, x| {
            y.suspend(x + i) + 1
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
    let created = start.elapsed().as_secs_f64();
    let count = live.len();
    let resident = resident_bytes().saturating_sub(rss_before);
    let maps_after = mapping_count();
    // The pages each coroutine made resident, to the nearest page (the vector of coroutines
    // adds a little).
    let page = splitstack::page_size();
    let pages_each = ((resident / count.max(1) + page / 2) / page).max(1);
    println!(
        "created and started {count}: {:.2} s ({:.2} us each), {:.1} KiB resident each, \
         mappings {maps_before:?} -> {maps_after:?}",
        created,
        created * 1e6 / count as f64,
        resident as f64 / count as f64 / 1024.0
    );
    if let Some(err) = stopped {
        println!("creation stopped: {err}");
    }
    let start = Instant::now();
    for (i, co) in live.iter_mut().enumerate() {
        assert_eq!(co.resume(5), CoroutineResult::Return(6), "coroutine {i}");
    }
    let resumed = start.elapsed().as_secs_f64();
    drop(live);
    println!("resumed each to completion and dropped: {resumed:.2} s");

    let plain_after = baseline(count, pages_each);
    let plain = plain_before.min(plain_after);
    println!(
        "kernel's work alone (map the same address space in {} MiB arenas, touch 1 page a stack \
         before, {pages_each} after): {plain_before:.2} s before, {plain_after:.2} s after; \
         splitstack's creation / the faster: {:.2}x",
        ARENA >> 20,
        created / plain
    );
}
