//! Fuzz `SpanHeap`: the input is a program of allocations, frees and writes on one fresh heap,
//! checked after every step against a model of what is live and what each span holds.
//!
//! Each operation is one opcode byte (`op % 8`) and its operand bytes; a program that runs out of
//! bytes stops there, and then every span is freed and the heap must coalesce back:
//!
//! | op   | operands         | operation                                                        |
//! |------|------------------|------------------------------------------------------------------|
//! | 0-2  | `n`              | `alloc(n % 65, zeroed = op & 8 != 0)`; `n % 65 == 0` must fail   |
//! | 3, 4 | `k`              | free live span `k % live`: `heap.free` for 3, `drop` for 4       |
//! | 5, 6 | `k`, `byte`      | check live span `k % live`, then fill it with `byte`             |
//! | 7    | `i`              | `alloc` of a bad size (`usize::MAX`, ...) must fail              |
//!
//! Invariants:
//! * no two live spans overlap; a span is `npages * PAGE_SIZE` bytes at an OS-page-aligned
//!   address;
//! * a span allocated with `zeroed` is all zero, and a span keeps what its owner wrote into it
//!   until it is freed (so neither another span nor a zeroing pass wrote over it);
//! * bad sizes (0 pages, sizes that overflow) are `InvalidSize` errors and change no counter;
//! * the counters: every mapped page is either in use or free, the pages in use are exactly the
//!   live spans' pages, `allocs` and `frees` count the successful calls, every byte a zeroed
//!   allocation hands out is counted as zeroed or as skipped, and each arena (no request here
//!   exceeds one) has the same size;
//! * once every span is freed, the free spans coalesce back into whole arenas: a request for a
//!   whole arena maps nothing new.

#![no_main]

use libfuzzer_sys::fuzz_target;
use splitstack::{ErrorKind, HeapStats, Span, SpanHeap};
use std::collections::BTreeMap;

const PAGE: usize = SpanHeap::PAGE_SIZE;
/// The largest span the program allocates, in pages: small enough that runs stay fast.
const MAX_PAGES: usize = 64;
/// At most this many live spans (16 MiB of touched memory at most); further allocations are
/// skipped.
const MAX_LIVE: usize = 32;

/// What a live span is known to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contents {
    /// Allocated without `zeroed` and not written since: anything.
    Unknown,
    /// Every byte is this one.
    Filled(u8),
}

struct Live {
    span: Span,
    contents: Contents,
}

/// The model the heap is checked against.
#[derive(Default)]
struct Model {
    live: Vec<Live>,
    /// Live spans by address: start -> end.
    ranges: BTreeMap<usize, usize>,
    pages_in_use: usize,
    allocs: u64,
    frees: u64,
    /// Bytes handed out by `alloc(_, true)`.
    bytes_zero_requested: u64,
    /// The size every arena has, once the first is mapped.
    arena_bytes: Option<usize>,
}

/// Input bytes, one at a time; `None` once they run out.
struct Program<'a>(std::slice::Iter<'a, u8>);

impl Program<'_> {
    fn byte(&mut self) -> Option<u8> {
        self.0.next().copied()
    }
}

fuzz_target!(|data: &[u8]| run(data));

fn run(data: &[u8]) {
    let heap = SpanHeap::new();
    let mut model = Model::default();
    let mut program = Program(data.iter());
    while let Some(op) = program.byte() {
        let Some(arg) = program.byte() else { break };
        match op % 8 {
            0..=2 => alloc(&heap, &mut model, arg as usize % (MAX_PAGES + 1), op & 8 != 0),
            3 | 4 if !model.live.is_empty() => {
                let live = remove(&mut model, arg as usize);
                if op % 8 == 3 {
                    heap.free(live.span);
                } else {
                    drop(live.span);
                }
            }
            5 | 6 if !model.live.is_empty() => {
                let Some(byte) = program.byte() else { break };
                let index = arg as usize % model.live.len();
                let live = &mut model.live[index];
                check_contents(live, "before a write");
                live.span.as_mut_slice().fill(byte);
                live.contents = Contents::Filled(byte);
            }
            7 => bad_size(&heap, arg as usize),
            _ => {} // a free or write with nothing live
        }
        check_stats(&heap, &mut model);
    }
    finish(&heap, model);
}

fn alloc(heap: &SpanHeap, model: &mut Model, npages: usize, zeroed: bool) {
    if npages == 0 {
        let before = heap.stats();
        let err = heap.alloc(0, zeroed).expect_err("alloc(0) must fail");
        assert_eq!(err.kind(), ErrorKind::InvalidSize, "alloc(0): {err}");
        assert_eq!(heap.stats(), before, "a failed alloc(0) changed the heap");
        return;
    }
    if model.live.len() >= MAX_LIVE {
        return;
    }
    let span = heap.alloc(npages, zeroed).unwrap_or_else(|err| panic!("alloc({npages}): {err}"));
    assert_eq!(span.npages(), npages);
    assert_eq!(span.len(), npages * PAGE);
    let start = span.as_ptr() as usize;
    let end = start + span.len();
    assert_eq!(start % splitstack::page_size().min(PAGE), 0, "span at {start:#x} is misaligned");
    // The nearest live span below must end by `start`, the nearest above begin at `end` or later.
    if let Some((&s, &e)) = model.ranges.range(..end).next_back() {
        assert!(e <= start, "new span {start:#x}..{end:#x} overlaps live span {s:#x}..{e:#x}");
    }
    model.ranges.insert(start, end);
    model.pages_in_use += npages;
    model.allocs += 1;
    let contents = if zeroed {
        model.bytes_zero_requested += span.len() as u64;
        Contents::Filled(0)
    } else {
        Contents::Unknown
    };
    let mut live = Live { span, contents };
    check_contents(&mut live, if zeroed { "alloc(_, true)" } else { "alloc(_, false)" });
    model.live.push(live);
}

/// Take live span `k % live` out of the model, checking that it still holds what was written.
fn remove(model: &mut Model, k: usize) -> Live {
    let mut live = model.live.swap_remove(k % model.live.len());
    check_contents(&mut live, "before free");
    let start = live.span.as_ptr() as usize;
    assert_eq!(model.ranges.remove(&start), Some(start + live.span.len()));
    model.pages_in_use -= live.span.npages();
    model.frees += 1;
    live
}

/// A live span holds what the model says: all zero after `alloc(_, true)`, the last fill after a
/// write.
fn check_contents(live: &mut Live, when: &str) {
    let Contents::Filled(want) = live.contents else { return };
    let (ptr, npages) = (live.span.as_ptr(), live.span.npages());
    let bytes = live.span.as_mut_slice();
    // Page by page with memcmp: a byte loop is instrumented per comparison and is 50 times slower.
    let page = [want; PAGE];
    if bytes.chunks(PAGE).all(|chunk| chunk == page) {
        return;
    }
    if let Some(i) = bytes.iter().position(|&b| b != want) {
        panic!(
            "{when}: span {ptr:p} ({npages} pages) holds {:#04x} at byte {i}, expected {want:#04x}",
            bytes[i],
        );
    }
}

fn bad_size(heap: &SpanHeap, i: usize) {
    const BAD: [usize; 4] = [0, usize::MAX, usize::MAX / PAGE + 1, isize::MAX as usize / PAGE + 1];
    let npages = BAD[i % BAD.len()];
    let before = heap.stats();
    let err = heap.alloc(npages, i & 4 != 0).expect_err("a bad size must fail");
    assert_eq!(err.kind(), ErrorKind::InvalidSize, "alloc({npages}): {err}");
    assert_eq!(heap.stats(), before, "a failed alloc({npages}) changed the heap");
}

fn check_stats(heap: &SpanHeap, model: &mut Model) {
    let stats = heap.stats();
    check_accounting(&stats);
    assert_eq!(stats.pages_in_use, model.pages_in_use, "pages in use: {stats:?}");
    assert_eq!(stats.allocs, model.allocs, "allocs: {stats:?}");
    assert_eq!(stats.frees, model.frees, "frees: {stats:?}");
    // One thread, so the zeroing counters do not lag.
    assert_eq!(
        stats.bytes_zeroed + stats.bytes_zeroing_skipped,
        model.bytes_zero_requested,
        "zeroed + skipped must be every byte alloc(_, true) handed out: {stats:?}"
    );
    if let Some(per_arena) = stats.bytes_mapped.checked_div(stats.arenas) {
        let arena_bytes = *model.arena_bytes.get_or_insert(per_arena);
        assert_eq!(stats.bytes_mapped, stats.arenas * arena_bytes, "arena sizes: {stats:?}");
    }
}

/// Every mapped page is either in use or free.
fn check_accounting(stats: &HeapStats) {
    assert_eq!(stats.bytes_mapped % PAGE, 0, "{stats:?}");
    assert_eq!(stats.pages_in_use + stats.pages_free, stats.bytes_mapped / PAGE, "{stats:?}");
    assert_eq!(stats.arenas == 0, stats.bytes_mapped == 0, "{stats:?}");
}

/// Free everything, then check that the free spans coalesced back into whole arenas.
fn finish(heap: &SpanHeap, mut model: Model) {
    while !model.live.is_empty() {
        let live = remove(&mut model, 0);
        heap.free(live.span);
    }
    let stats = heap.stats();
    check_accounting(&stats);
    assert_eq!((stats.pages_in_use, stats.frees), (0, model.frees), "{stats:?}");
    // Every arena is one free span again: one whole-arena request per arena fits without a new
    // mapping. Address space only: the spans are not touched.
    let Some(arena_bytes) = stats.bytes_mapped.checked_div(stats.arenas) else {
        return; // nothing was ever mapped
    };
    let arena_pages = arena_bytes / PAGE;
    let whole: Vec<Span> =
        (0..stats.arenas).map(|_| heap.alloc(arena_pages, false).expect("a whole arena")).collect();
    let after = heap.stats();
    assert_eq!(after.arenas, stats.arenas, "freed spans did not coalesce: {stats:?} {after:?}");
    assert_eq!(after.pages_free, 0, "{after:?}");
    drop(whole);
}
