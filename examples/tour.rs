//! The crate's demonstration: every capability, working, with its numbers measured on this
//! machine. Run it with `cargo run --release --example tour`.

use splitstack::{
    coroutine_local, grow, leaked_stacks, machine, maybe_grow, memclr, memclr_strategy, prepare,
    remaining_stack, set_overflow_action, swap, Coroutine, CoroutineResult, Gobuf, OverflowAction,
    ScopedCoroutine, SpanHeap, Stack, StackOverflow, Yielder, DEFAULT_STACK_SIZE,
};
use std::hint::black_box;
use std::ptr::{addr_of, addr_of_mut};
use std::time::Instant;

#[path = "support/memclr_method.rs"]
mod memclr_method;
use memclr_method::{Contender, State};

fn main() {
    println!("splitstack tour ({} on {})\n", std::env::consts::ARCH, std::env::consts::OS);
    contexts();
    segments();
    coroutines();
    memory();
}

/// Recurses, half a KiB of frame a level, until the stack runs out.
#[inline(never)]
fn bottomless(depth: u64) -> u64 {
    let frame = black_box([depth; 64]);
    if frame[0] == u64::MAX {
        return 0;
    }
    frame[(depth % 64) as usize] + bottomless(depth + 1)
}

/// Nanoseconds per item of `count` items that took `start.elapsed()`.
fn ns_per(start: Instant, count: u64) -> f64 {
    start.elapsed().as_nanos() as f64 / count as f64
}

struct Pair {
    main: Gobuf,
    co: Gobuf,
}

/// The coroutine side of the ping-pong: doubles what it gets, forever.
unsafe extern "C" fn doubler(arg: usize) -> ! {
    let pair = arg as *mut Pair;
    // SAFETY: main keeps the Pair alive while this context may run.
    let mut value = unsafe { swap(&mut *addr_of_mut!((*pair).co), &*addr_of!((*pair).main), 0) };
    loop {
        // SAFETY: as above.
        value =
            unsafe { swap(&mut *addr_of_mut!((*pair).co), &*addr_of!((*pair).main), value * 2) };
    }
}

fn contexts() {
    println!("== contexts: swap between two stacks");
    let stack = Stack::new(64 * 1024).expect("a 64 KiB stack");
    println!(
        "stack: {} usable bytes at {:p}..{:p}, a {} KiB guard region below ({} KiB always \
         inaccessible, {} KiB of headroom that opens for a panic)",
        stack.len(),
        stack.bottom(),
        stack.top(),
        stack.guard().len() / 1024,
        splitstack::GUARD_FLOOR / 1024,
        (stack.guard().len() - splitstack::GUARD_FLOOR) / 1024
    );
    let mut pair = Pair { main: Gobuf::default(), co: Gobuf::default() };
    let p: *mut Pair = &mut pair;
    let rounds = 10_000_000u64;
    // SAFETY: the stack outlives the coroutine's use of it; doubler never returns.
    let start = unsafe {
        prepare(&mut *addr_of_mut!((*p).co), &stack, doubler);
        swap(&mut *addr_of_mut!((*p).main), &*addr_of!((*p).co), p as usize);
        let start = Instant::now();
        for i in 0..rounds as usize {
            let got = swap(&mut *addr_of_mut!((*p).main), &*addr_of!((*p).co), black_box(i));
            assert_eq!(got, i * 2);
        }
        start
    };
    println!(
        "{rounds} round trips (resume + yield back, a word each way): {:.1} ns each\n",
        ns_per(start, rounds)
    );
}

/// Sums 1..=n with one `maybe_grow` check per level.
fn deep_sum(n: u64) -> u64 {
    maybe_grow(32 * 1024, 1024 * 1024, || if n == 0 { 0 } else { n + deep_sum(black_box(n - 1)) })
}

#[inline(never)]
fn tiny(x: u64) -> u64 {
    black_box(x) + 1
}

fn segments() {
    println!("== segmented stacks: grow on demand, no hot split");
    println!("remaining on the main thread's stack: {} KiB", remaining_stack() / 1024);
    let before = machine::stats();
    let n = 10_000_000u64;
    let start = Instant::now();
    let sum = deep_sum(n);
    let elapsed = start.elapsed();
    assert_eq!(sum, n * (n + 1) / 2);
    let after = machine::stats();
    println!(
        "{n} levels of recursion, a maybe_grow check at each: sum {sum} in {:.0} ms \
         ({:.1} ns per level)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / n as f64
    );
    println!(
        "  splits {}, segments mapped {}, most segments held {}, cached now {}, m.cret {}",
        after.splits - before.splits,
        after.segments_mapped - before.segments_mapped,
        after.max_segments_held,
        after.segments_cached,
        machine::cret()
    );
    let before = machine::stats();
    let iterations = 1_000_000u64;
    let start = Instant::now();
    for i in 0..iterations {
        black_box(grow(64 * 1024, || tiny(i)));
    }
    let per = ns_per(start, iterations);
    let after = machine::stats();
    println!(
        "hot split: grow(64 KiB, tiny) {iterations} times: {per:.1} ns each, {} segment(s) mapped",
        after.segments_mapped - before.segments_mapped
    );
    println!();
}

fn coroutines() {
    println!("== coroutines: pooled 1 MiB stacks (address space; touched pages only) that grow");
    // A generator: squares, handed out one at a time.
    let mut squares = Coroutine::new(|y: &Yielder<(), u64>, ()| {
        for i in 1..=5u64 {
            y.suspend(i * i);
        }
    });
    let mut got = Vec::new();
    while let CoroutineResult::Yield(v) = squares.resume(()) {
        got.push(v);
    }
    println!("generator: {got:?}");

    // Recursion deeper than the coroutine's 1 MiB stack: maybe_grow takes it onto segments.
    let n = 1_000_000u64;
    let before = machine::stats();
    let mut deep = Coroutine::new(move |_: &Yielder<(), ()>, ()| {
        let start = remaining_stack();
        (start, deep_sum(n))
    });
    let CoroutineResult::Return((start, sum)) = deep.resume(()) else { unreachable!() };
    assert_eq!(sum, n * (n + 1) / 2);
    println!(
        "recursion {n} levels deep in a coroutine that started with {start} bytes of stack: \
         sum {sum}, {} segment splits",
        machine::stats().splits - before.splits
    );

    // corosensei's shape: a caller's stack in and out, a coroutine that borrows, and a call
    // made on the resumer's stack from inside a small coroutine.
    let stack = Stack::new(64 * 1024).expect("a stack");
    let bottom = stack.bottom();
    let mut on_mine = Coroutine::with_stack(stack, |y: &Yielder<(), ()>, ()| y.suspend(()))
        .expect("64 KiB holds the record");
    on_mine.resume(());
    let back = on_mine.into_stack();
    let words = ["scoped", "coroutines", "borrow"];
    let lengths = ScopedCoroutine::new(|y: &Yielder<(), usize>, ()| {
        words.iter().for_each(|w| y.suspend(w.len()))
    })
    .scope(|mut co| std::iter::from_fn(|| co.resume(()).as_yield()).collect::<Vec<_>>());
    let mut small = Coroutine::with_stack_size(16 * 1024, |y: &Yielder<(), ()>, ()| {
        (remaining_stack(), y.on_parent_stack(remaining_stack))
    })
    .expect("a 16 KiB coroutine");
    let CoroutineResult::Return((own, parent)) = small.resume(()) else { unreachable!() };
    println!(
        "with_stack / into_stack: the same 64 KiB stack back ({}); a scoped coroutine yielded \
         the lengths of borrowed words {lengths:?}; on_parent_stack from a coroutine with {own} \
         bytes left ran with {parent} bytes",
        if back.bottom() == bottom { "same bottom" } else { "a different stack!" }
    );

    // A ring of coroutines passing a token: each adds one and hands it on.
    let tasks = 10_000usize;
    let mut ring: Vec<Coroutine<u64, u64, ()>> = (0..tasks)
        .map(|_| {
            Coroutine::new(|y: &Yielder<u64, u64>, mut token: u64| loop {
                token = y.suspend(token + 1);
            })
        })
        .collect();
    let laps = 10;
    let start = Instant::now();
    let mut token = 0u64;
    for _ in 0..laps {
        for co in ring.iter_mut() {
            let CoroutineResult::Yield(next) = co.resume(token) else { unreachable!() };
            token = next;
        }
    }
    let hops = (tasks * laps) as u64;
    assert_eq!(token, hops);
    println!(
        "ring of {tasks} live coroutines, {laps} laps: token {token}, {:.1} ns per hop",
        ns_per(start, hops)
    );
    drop(ring);

    // Live coroutines, each resumed once: with guard regions (Linux 6.13+) a guard costs no
    // mapping, so 100,000 (three times what mprotect guards allow under the default
    // vm.max_map_count) take a few arenas; with mprotect guards (older kernels, qemu-user),
    // creation stops at vm.max_map_count with an error naming it.
    let kind = splitstack::guard_kind();
    let target = 100_000;
    let rss_before = resident_bytes();
    let maps_before = mapping_count();
    let mut live = Vec::with_capacity(target);
    let start = Instant::now();
    let stopped = loop {
        if live.len() == target {
            break None;
        }
        match Coroutine::with_stack_size(DEFAULT_STACK_SIZE, |y: &Yielder<(), ()>, ()| {
            y.suspend(())
        }) {
            Ok(mut co) => {
                co.resume(());
                live.push(co);
            }
            Err(err) => break Some(err),
        }
    };
    let elapsed = start.elapsed();
    let per = (resident_bytes() - rss_before) as f64 / live.len() as f64;
    println!(
        "guards: {kind:?}; {} live coroutines on 1 MiB stacks, {:.1} KiB resident each, {:.2} us \
         each to create and start, mappings {} -> {}{}",
        live.len(),
        per / 1024.0,
        elapsed.as_secs_f64() * 1e6 / live.len() as f64,
        maps_before.map_or("?".to_string(), |n| n.to_string()),
        // Unreadable at the map limit: reading /proc/self/maps needs a mapping itself.
        mapping_count().map_or("(unreadable at the limit)".to_string(), |n| n.to_string()),
        match stopped {
            Some(err) => format!("; then: {err}"),
            None => "; a million: `cargo bench --bench million` (README)".to_string(),
        }
    );
    let start = Instant::now();
    for co in &mut live {
        co.resume(());
    }
    drop(live);
    println!(
        "  resumed each to completion and dropped them: {:.2} s",
        start.elapsed().as_secs_f64()
    );

    // A panic on a 16 KiB coroutine, under a hook that captures a backtrace (as color-eyre or
    // sentry install): the hook runs in the guard's panic headroom, the panic reaches resume.
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = frames.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |_| {
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        seen.store(trace.lines().count(), std::sync::atomic::Ordering::Relaxed);
    }));
    let mut small = Coroutine::with_stack_size(16 * 1024, |_: &Yielder<(), ()>, ()| {
        if black_box(true) {
            panic!("boom");
        }
    })
    .expect("a 16 KiB coroutine");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| small.resume(())));
    std::panic::set_hook(default_hook);
    let payload = caught.expect_err("the coroutine panicked");
    println!(
        "panic on a 16 KiB coroutine under a backtrace-capturing hook: {:?} reached the resumer \
         (the hook symbolized {} lines in the guard's {} KiB panic headroom)",
        payload.downcast_ref::<&str>().copied().unwrap_or("?"),
        frames.load(std::sync::atomic::Ordering::Relaxed),
        splitstack::PANIC_HEADROOM / 1024
    );

    // Coroutines that went deep do not pin their pages in the pool.
    let pool_thread = std::thread::spawn(|| {
        let rss_before = resident_bytes();
        let count = machine::COROUTINE_POOL_CAPACITY;
        let mut deep: Vec<Coroutine<(), (), u64>> = (0..count)
            .map(|_| {
                let mut co = Coroutine::new(|y: &Yielder<(), ()>, ()| {
                    fn down(y: &Yielder<(), ()>, depth: u64) -> u64 {
                        if depth == 0 {
                            y.suspend(());
                            return 0;
                        }
                        let frame = black_box([depth; 128]);
                        frame[(depth % 128) as usize] + down(y, depth - 1)
                    }
                    down(y, 850)
                });
                co.resume(());
                co
            })
            .collect();
        let at_depth = resident_bytes() - rss_before;
        for co in &mut deep {
            co.resume(());
        }
        drop(deep);
        let after = resident_bytes().saturating_sub(rss_before);
        (count, at_depth, after, machine::stats().coroutine_pool_resident_bound)
    });
    let (count, at_depth, after, bound) = pool_thread.join().expect("the pool thread");
    println!(
        "{count} coroutines 850 KiB deep: {} MiB resident; after they finished, pooled: {} MiB \
         resident (the pool's bound {:.1} MiB: {} untrimmed stacks, 16 KiB of the others)",
        at_depth >> 20,
        after >> 20,
        bound as f64 / (1 << 20) as f64,
        machine::POOL_UNTRIMMED_MAX
    );

    // Overflows a server survives: opted in, each overflow panics in the resumer.
    set_overflow_action(OverflowAction::PanicInResumer);
    let leaked = leaked_stacks();
    let overflows = 1000u32;
    let start = Instant::now();
    let mut survived = 0;
    for _ in 0..overflows {
        let mut co = Coroutine::with_stack_size(64 * 1024, |_: &Yielder<(), ()>, ()| bottomless(0))
            .expect("a 64 KiB coroutine");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| co.resume(())));
        survived += u32::from(caught.is_err_and(|p| p.is::<StackOverflow>()) && co.done());
    }
    let each = ns_per(start, u64::from(overflows)) / 1000.0;
    set_overflow_action(OverflowAction::Abort);
    assert_eq!(survived, overflows);
    println!(
        "{overflows} coroutines overflowed their 64 KiB stacks under \
         OverflowAction::PanicInResumer: {survived} resumes panicked with StackOverflow, \
         {each:.1} us each; {} stacks leaked, the process goes on",
        leaked_stacks() - leaked
    );

    // Coroutine-local data, read deep in the call tree.
    let mut local = Coroutine::with_local(1234u64, |_: &Yielder<(), ()>, ()| {
        let reads = 1_000_000u64;
        let start = Instant::now();
        let mut sum = 0;
        for _ in 0..reads {
            sum += coroutine_local(|id: &u64| black_box(*id)).unwrap_or(0);
        }
        (sum / reads, ns_per(start, reads))
    });
    let (id, read_ns) = local.resume(()).as_return().expect("the local reader finished");
    assert_eq!(id, 1234);
    assert_eq!(coroutine_local(|id: &u64| *id), None);
    println!("coroutine_local inside the coroutine: {id} ({read_ns:.1} ns a read); outside: None");

    // Round trip (resume with a word, get one back) and create + complete, pooled stacks.
    let mut echo = Coroutine::new(|y: &Yielder<u64, u64>, mut v: u64| loop {
        v = y.suspend(v + 1);
    });
    let rounds = 10_000_000u64;
    let start = Instant::now();
    let mut v = 0;
    for _ in 0..rounds {
        let CoroutineResult::Yield(next) = echo.resume(black_box(v)) else { unreachable!() };
        v = next;
    }
    assert_eq!(v, rounds);
    println!("resume + suspend round trip: {:.1} ns", ns_per(start, rounds));
    let count = 1_000_000u64;
    let mapped = machine::stats().coroutine_stacks_mapped;
    let start = Instant::now();
    for i in 0..count {
        let mut co = Coroutine::new(move |_: &Yielder<(), ()>, ()| black_box(i));
        let CoroutineResult::Return(r) = co.resume(()) else { unreachable!() };
        black_box(r);
    }
    println!(
        "create + run to completion + drop: {:.1} ns each, {} new stacks mapped for {count}",
        ns_per(start, count),
        machine::stats().coroutine_stacks_mapped - mapped
    );
    println!();
}

fn memory() {
    println!("== memclr and the span heap");
    println!("memclr strategy on this CPU: {:?}", memclr_strategy());
    // Against the C library's memset, hot and cold, by the method benches/memclr.rs uses
    // (examples/support/memclr_method.rs), each on buffers of its own.
    // SAFETY (of the closure's body): writes within the slice.
    let memset = |b: &mut [u8]| unsafe { std::ptr::write_bytes(b.as_mut_ptr(), 0, b.len()) };
    let contenders = [
        Contender { name: "memclr", clear: &memclr },
        Contender { name: "memset", clear: &memset },
    ];
    for state in [State::Hot, State::Cold] {
        if !memclr_method::can_measure(state) {
            println!("  {state:?}: not measured on this target (the method flushes with clflush)");
            continue;
        }
        println!("  {}", memclr_method::format_header(&contenders, state));
        for size in [4usize << 10, 256 << 10, 16 << 20, 64 << 20] {
            // Fewer rounds than the bench's, for a tour that takes seconds; cold small sizes
            // vary most from round to round, and cost least.
            let rounds = match state {
                State::Cold if size < 64 << 20 => 41,
                _ => 11,
            };
            let row = memclr_method::measure(&contenders, size, state, 16, rounds);
            println!("  {}", memclr_method::format_row(&row));
        }
    }
    let heap = SpanHeap::new();
    let mut fresh = heap.alloc(1024, true).expect("an 8 MiB span");
    fresh.as_mut_slice().fill(0xab);
    heap.free(fresh);
    let again = heap.alloc(1024, true).expect("the same 8 MiB again");
    assert!(again.as_ptr() as usize != 0);
    let other = heap.alloc(1024, true).expect("8 MiB of fresh pages");
    let stats = heap.stats();
    println!(
        "span heap: three 8 MiB zeroed allocations (fresh, reused dirty, fresh): \
         {} MiB cleared, {} MiB skipped as already zero, {} arena(s), {} MiB mapped",
        stats.bytes_zeroed >> 20,
        stats.bytes_zeroing_skipped >> 20,
        stats.arenas,
        stats.bytes_mapped >> 20
    );
    drop((again, other));

    // One page allocated and freed, in a loop: each thread's page cache serves it without the
    // heap's lock.
    let warm = heap.alloc(1, false).expect("a page");
    drop(warm);
    let rounds = 1_000_000u64;
    let start = Instant::now();
    for _ in 0..rounds {
        drop(black_box(heap.alloc(1, false).expect("a page")));
    }
    println!(
        "span heap: one page allocated and freed {:.1} ns a pair (the thread's page cache)",
        ns_per(start, rounds)
    );

    // Dirty memory freed long ago (in bytes handed out since, past this thread's cache share)
    // is cleared as cold, with stores that read nothing; memory freed a moment ago through the
    // cache.
    if let Some(after) = SpanHeap::cold_after_bytes() {
        let heap = SpanHeap::new();
        let mut old = heap.alloc(256, false).expect("a 2 MiB span");
        let _keep = heap.alloc(1, false).expect("a page after it");
        old.as_mut_slice().fill(0xab);
        drop(old);
        let mut hot = heap.alloc(256, true).expect("the 2 MiB again, at once");
        let hot_cold = heap.stats().bytes_zeroed_cold;
        hot.as_mut_slice().fill(0xab);
        drop(hot);
        // Address space only: the filler is never touched.
        let _filler = heap.alloc(after / SpanHeap::PAGE_SIZE + 1, false).expect("filler");
        let cold = heap.alloc(256, true).expect("the 2 MiB, freed long ago");
        assert!(cold.as_ptr() as usize != 0);
        let stats = heap.stats();
        println!(
            "span heap: 2 MiB dirty, reused at once: {} MiB cleared as cold; reused after {} MiB \
             handed out: {} MiB cleared as cold",
            hot_cold >> 20,
            after >> 20,
            (stats.bytes_zeroed_cold - hot_cold) >> 20,
        );
    }

    // Stacks are spans of the process-wide stack heap: a dropped one keeps its guard region and
    // is handed out again without a system call; new_zeroed clears a recycled one.
    let warm = Stack::new(64 << 10).expect("a 64 KiB stack");
    drop(warm);
    let pairs = 100_000u64;
    let start = Instant::now();
    for _ in 0..pairs {
        drop(black_box(Stack::new(64 << 10).expect("a recycled 64 KiB stack")));
    }
    let per_pair = ns_per(start, pairs);
    let dirty = Stack::new(64 << 10).expect("a 64 KiB stack");
    // SAFETY: writes within the stack's usable part, which nothing runs on.
    unsafe { std::ptr::write_bytes(dirty.bottom(), 0xcd, dirty.len()) };
    drop(dirty);
    let clean = Stack::new_zeroed(64 << 10).expect("a zeroed 64 KiB stack");
    // SAFETY: reads within the stack's usable part, which nothing runs on.
    let zero =
        unsafe { std::slice::from_raw_parts(clean.bottom(), clean.len()) }.iter().all(|&b| b == 0);
    assert!(zero, "a zeroed stack held old data");
    println!(
        "stacks: Stack::new + drop of a recycled 64 KiB stack {per_pair:.1} ns a pair (no system \
         call); new_zeroed after a dirty user: all zero"
    );
    println!();
}

/// The number of this process's mappings, from /proc/self/maps, if it can be read.
fn mapping_count() -> Option<usize> {
    std::fs::read_to_string("/proc/self/maps").ok().map(|maps| maps.lines().count())
}

/// This process's resident memory, from /proc/self/statm.
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("reading /proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * splitstack::page_size()
}
