//! Go-style goroutine stacks for Rust.
//!
//! ## Overview
//!
//! splitstack provides what Go's runtime builds goroutines from, as a foundation for coroutine
//! and green-thread libraries: context switches written in assembly, stacks that grow in
//! segments where code asks for room, guard regions that turn an overflow into a report naming
//! it, safe coroutines built on all three, and the page-span heap every stack is cut from.
//! Everything named below lives at the crate root, apart from the per-thread functions in
//! [`machine`].
//!
//! ### Contexts
//!
//! - [`Stack`]: usable pages above an inaccessible guard region, cut from one process-wide stack
//!   heap. A dropped stack waits, guard and all, on a free list for the next [`Stack::new`] of
//!   its size, which then makes no system call; [`Stack::new_zeroed`] hands out one in which
//!   nothing of its previous user is left. [`page_size`] is the OS page that sizes round up to.
//! - [`Gobuf`]: a saved context, as in Go: stack pointer, program counter, frame pointer and the
//!   base register that `asm!` cannot declare clobbered.
//! - [`prepare`] sets a `Gobuf` up to start a function on a `Stack`. [`swap`] saves the running
//!   context and resumes another in one call, with a word passed each way. [`gogo`] resumes a
//!   context and leaves the current one behind. [`gosave`] saves the caller's context and returns
//!   a second time when it is resumed, like C's `setjmp`; `swap` does the same work without the
//!   second return and is the one to reach for.
//! - Each switch is expanded inline where it is called, and declares every other register
//!   clobbered, so the compiler saves only the registers that are live at that point.
//!   [`swap_out_of_line`] runs the same switch through one shared routine, for comparison.
//!
//! These functions are `unsafe`; each one's docs state what keeps a call sound.
//!
//! ### Segmented stacks
//!
//! Nothing checks the stack in a Rust function's prologue, so growth is asked for explicitly:
//!
//! - [`maybe_grow`]`(red_zone, segment_size, f)` runs `f` where it is when at least `red_zone`
//!   bytes of stack are left above [`UNWIND_RESERVE`] (room kept for unwinding), and on a new
//!   segment otherwise. The check is a few inlined instructions; it belongs at the top of a
//!   recursive function. A segment it makes is at least twice the size of the stack it leaves,
//!   up to [`MAX_DOUBLED_SEGMENT`], the way Go doubles its stacks, so a very deep recursion
//!   needs only a handful of segments.
//! - [`grow`] runs a closure on a new segment of at least the size given (never less than
//!   [`MIN_SEGMENT_SIZE`]) unconditionally. [`try_grow`] is the same, but reports an [`Error`]
//!   where `grow` would panic (a bad size, or memory the OS will not give).
//! - [`remaining_stack`] tells how many bytes are left on whichever stack is running: the
//!   thread's own, a segment, or a coroutine's.
//!
//! Free segments stay in a per-thread cache, so a loop that splits at the same depth on every
//! iteration maps memory only on the first. A panic on a segment unwinds off it to the caller
//! of the split, with its payload. The [`machine`] module shows the thread's side of this:
//! [`machine::stats`] for its counters (splits, segments made, cached and in use, the
//! coroutine stack pool), [`machine::cret`] for Go's `m.cret` word (zero whenever Rust code can
//! look), and [`machine::set_segment_cache_capacity`] for how many free segments it keeps.
//!
//! ### Guard regions
//!
//! Every splitstack stack (a `Stack`, a segment, a coroutine's) sits on a guard region of
//! [`GUARD_SIZE`] bytes, made of two parts:
//!
//! - a floor of [`GUARD_FLOOR`] bytes (64 KiB) that always faults, which is also the
//!   stack-clash margin;
//! - above it, [`PANIC_HEADROOM`] bytes (256 KiB) that open for a thread that is already
//!   panicking when it faults there. The panic hook, the unwinder and destructors call no
//!   `maybe_grow`, so this headroom is what lets them finish on a stack sized for the code that
//!   panicked rather than for them.
//!
//! Any other fault inside a guard region prints `splitstack: stack overflow: fault at ...` with
//! the addresses of the fault and of the region, then aborts. A fault anywhere else goes on to
//! the handler that was installed before splitstack's, run with that handler's own mask and
//! flags.
//!
//! [`guard_kind`] returns the [`GuardKind`] this process uses, settled once by a test of the
//! kernel rather than by trusting a return code. On Linux 6.13 and later, guards are guard
//! regions installed with `MADV_GUARD_INSTALL`: page-table markers inside the stack heap's
//! mapping that cost no mapping of their own, so the number of live stacks is limited by memory
//! and not by `vm.max_map_count`. Elsewhere (older kernels, qemu-user) a guard is an
//! `mprotect`ed mapping, and each live stack takes two of the process's mappings. Setting the
//! variable named by [`GUARD_ENV`] to `mprotect` (`SPLITSTACK_GUARD=mprotect`) forces the second
//! kind, for comparisons and for testing that path.
//!
//! ### Coroutines
//!
//! [`Coroutine<Input, Yield, Return>`](Coroutine), [`Yielder`] and [`CoroutineResult`] follow
//! corosensei's interface. [`Coroutine::new`] takes a closure called with a `&Yielder` and the
//! first input; each [`Coroutine::resume`] runs it until it calls [`Yielder::suspend`], which
//! hands back [`CoroutineResult::Yield`], or until it returns, which hands back
//! [`CoroutineResult::Return`].
//!
//! - A coroutine's stack holds [`DEFAULT_STACK_SIZE`] (1 MiB) usable bytes and comes from a
//!   per-thread pool; only the pages it touches take memory. [`Coroutine::with_stack_size`]
//!   asks for a stack of exactly another size.
//! - Code in a coroutine that calls `maybe_grow` grows past that stack, on segments that belong
//!   to the coroutine.
//! - A panic inside a coroutine comes out of `resume` with its payload; dropping a suspended
//!   coroutine unwinds its stack, so its destructors run; a backtrace taken inside a coroutine
//!   carries on into the code that resumed it.
//! - An overflow of a coroutine's stack aborts the process by default. After
//!   [`set_overflow_action`]`(`[`OverflowAction::PanicInResumer`]`)` it makes `resume` panic
//!   with a [`StackOverflow`] payload instead; the coroutine is abandoned and its stack leaked
//!   ([`leaked_stacks`] counts them).
//! - [`Coroutine::with_local`] gives a coroutine a typed value that any code running in it
//!   reads with [`coroutine_local`].
//!
//! ### Memory
//!
//! - [`SpanHeap`] hands out [`Span`]s, runs of whole 8 KiB pages, to any thread; spans of up to
//!   16 pages come from the thread's own page cache, without the heap's lock. Asked for zeroed
//!   memory, it clears only the pages that were used before, after releasing its lock, and pages
//!   freed long ago with stores that do not read them first; [`HeapStats`] counts what it mapped,
//!   handed out and cleared.
//! - [`memclr`] zeroes a slice with the fastest bulk stores the CPU offers (see
//!   [Supported targets](#supported-targets)); [`memclr_raw`] zeroes a raw range.
//!   [`memclr_strategy`] reports which [`MemclrStrategy`] was picked for this CPU, and
//!   [`memclr_with`] forces a particular one, for benchmarks and tests.
//!
//! ### Valgrind and errors
//!
//! [`running_on_valgrind`] tells whether the process runs under valgrind. Each `Stack` is
//! registered with valgrind while it is handed out, so that memcheck knows a jump of the stack
//! pointer from one of them to another for a switch, and does not warn about it. The requests
//! are valgrind's documented instruction sequence in the crate's own assembly (no-ops outside
//! valgrind), so this holds however and wherever the crate was built; on RISC-V, for which the
//! valgrind the tests can run (3.19) has no port, the crate makes no request at all.
//!
//! valgrind (3.19, Debian 12's) keeps one "current stack" for the whole process, not one
//! per thread. When two threads run on registered stacks at once, a stack-pointer change that is
//! not a small constant (a frame of many KiB, say) can be taken for a switch between the two
//! stacks, and the new frame is then reported as an invalid write. Programs checked under memcheck
//! with coroutines on several threads should run one such thread at a time there; the crate's own
//! memcheck pass runs each test binary with one test thread for this reason.
//!
//! Calls that can fail return an [`Error`]; its [`ErrorKind`] separates a bad size from the OS
//! refusing memory or refusing one more mapping.
//!
//! ## Example
//!
//! A generator, and a coroutine whose recursion goes far below its 1 MiB stack by way of
//! `maybe_grow`. The example writes what it prints into a `String` first, so that it can check
//! every line before printing them.
//!
//! ```
//! use splitstack::{machine, maybe_grow, Coroutine, CoroutineResult, Yielder};
//! use std::fmt::Write as _;
//!
//! // Counts `n` levels down and back up. Every level checks the stack first: with less than
//! // 32 KiB left, the rest of the descent continues on a new segment of at least 1 MiB.
//! fn depth(n: u64) -> u64 {
//!     maybe_grow(32 * 1024, 1024 * 1024, || if n == 0 { 0 } else { 1 + depth(n - 1) })
//! }
//!
//! let mut out = String::new();
//!
//! // A generator: suspends with each Fibonacci number below 50, then returns how many it gave.
//! let mut fibonacci = Coroutine::new(|yielder: &Yielder<(), u64>, ()| {
//!     let (mut a, mut b, mut count) = (0u64, 1u64, 0usize);
//!     while a < 50 {
//!         yielder.suspend(a);
//!         (a, b) = (b, a + b);
//!         count += 1;
//!     }
//!     count
//! });
//! let mut numbers = Vec::new();
//! let count = loop {
//!     match fibonacci.resume(()) {
//!         CoroutineResult::Yield(n) => numbers.push(n.to_string()),
//!         CoroutineResult::Return(count) => break count,
//!     }
//! };
//! writeln!(out, "fibonacci: {} ({count} numbers)", numbers.join(" ")).unwrap();
//!
//! // A coroutine that recurses as deep as each resume asks, then suspends with the depth it
//! // reached; resumed with 0, it returns.
//! let mut walker = Coroutine::new(|yielder: &Yielder<u64, u64>, mut n: u64| loop {
//!     if n == 0 {
//!         return "walker: done";
//!     }
//!     n = yielder.suspend(depth(n));
//! });
//! for n in [10, 1_000_000] {
//!     let splits_before = machine::stats().splits;
//!     let CoroutineResult::Yield(reached) = walker.resume(n) else { unreachable!() };
//!     let grew = machine::stats().splits > splits_before;
//!     let place = if grew { "on segments" } else { "on the coroutine's own stack" };
//!     writeln!(out, "depth {reached}: {place}").unwrap();
//!     // Back from the recursion, every segment has been left again.
//!     assert_eq!(machine::stats().segments_in_use, 0);
//! }
//! let CoroutineResult::Return(last) = walker.resume(0) else { unreachable!() };
//! writeln!(out, "{last}").unwrap();
//! assert_eq!(machine::cret(), 0);
//!
//! assert_eq!(
//!     out,
//!     "fibonacci: 0 1 1 2 3 5 8 13 21 34 (10 numbers)\n\
//!      depth 10: on the coroutine's own stack\n\
//!      depth 1000000: on segments\n\
//!      walker: done\n"
//! );
//! print!("{out}");
//! # // The block under "It prints:" below must show this same output: read it from this file.
//! # let source = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs"));
//! # let shown: String = source
//! #     .lines()
//! #     .skip_while(|line| *line != "//! It prints:")
//! #     .skip(3)
//! #     .take_while(|line| *line != "//! ```")
//! #     .map(|line| format!("{}\n", line.strip_prefix("//! ").unwrap_or("")))
//! #     .collect();
//! # assert_eq!(shown, out, "the output shown in the crate docs");
//! ```
//!
//! It prints:
//!
//! ```text
//! fibonacci: 0 1 1 2 3 5 8 13 21 34 (10 numbers)
//! depth 10: on the coroutine's own stack
//! depth 1000000: on segments
//! walker: done
//! ```
//!
//! ## Supported targets
//!
//! Linux only (glibc), on five targets. The switches, the split and memclr's routines are
//! assembly written for each, so the build script refuses every other target (musl and 32-bit
//! RISC-V ones included) with a message naming the supported ones.
//!
//! | target | switch, segments, coroutines | memclr | how it is tested |
//! |--------|------------------------------|--------|------------------|
//! | `x86_64-unknown-linux-gnu` | yes | chosen once from CPUID: AVX-512, AVX2 or SSE2 stores (`rep stosb` from 2 KiB on CPUs without AVX2 that have ERMS), non-temporal stores for large ranges, and AMD's `clzero` for the largest | natively; under valgrind memcheck, AddressSanitizer and ThreadSanitizer; fuzzing (span heap, memclr); instruction-count gates on the hot paths |
//! | `aarch64-unknown-linux-gnu` | yes | `dc zva` on whole blocks of the size DCZID_EL0 reports and `stp` stores for the rest, or `stp` alone where `dc zva` is prohibited | under qemu-user, cross-compiled |
//! | `i686-unknown-linux-gnu` | yes; the return word in eax (Go's 386) | SSE2 stores, `rep stosb` from 2 KiB where CPUID reports ERMS, non-temporal stores for large ranges (the x86-64 SSE2 rules) | natively, on an x86-64 host |
//! | `armv7-unknown-linux-gnueabihf` | yes; the return word in r0 (Go's arm); ARM or Thumb-2 code, interworking with `bx`; unwinding through EHABI tables | NEON stores where `AT_HWCAP` reports NEON (the code is in the assembly, behind that run-time check, since the target is built without NEON), VFP `vstmia` stores otherwise | under qemu-user, cross-compiled, with and without NEON |
//! | `riscv64gc-unknown-linux-gnu` | yes; the return word in a0 | RVV 1.0 `vse8.v` at the hardware's vector length where `AT_HWCAP` reports V, aligned `sd` stores otherwise; no `cbo.zero` (Zicboz) path, which no emulator here can run | under qemu-user, cross-compiled, without and with V |
//! | anything else | the build fails with a message | | |
//!
//! A 32-bit process has at most 4 GiB of address space, so there the defaults that reserve it
//! are smaller: [`DEFAULT_STACK_SIZE`] is 128 KiB (1 MiB on 64-bit targets), [`GUARD_FLOOR`]
//! 16 KiB (64 KiB) and [`PANIC_HEADROOM`] 64 KiB (256 KiB), and [`SpanHeap`] maps arenas of
//! 64 MiB (256 MiB): ten thousand live default coroutines take about 2 GiB. The stack-limit
//! check's words are plain addresses and sizes, which fit any word.
//!
//! Guard regions that cost no mapping need Linux 6.13 or later (`MADV_GUARD_INSTALL`); on an
//! older kernel, and under qemu-user, which does not provide them, every guard is an
//! `mprotect`ed mapping (see [`GuardKind`]). A program sees the difference only in how many
//! stacks can be live at once: with `mprotect` guards, `vm.max_map_count` (65,530 by default)
//! caps them at about 32,000.
//!
//! The assembled objects declare their indirect-branch landing pads in a GNU property note: IBT
//! on x86-64, BTI on AArch64 (neither SHSTK nor PAC: the switches change stacks without a shadow
//! stack and resume saved return addresses unsigned). A program linked only from objects that
//! declare the feature keeps it and can run with it enforced.
//!
//! ## Cargo features
//!
//! Neither feature is on by default. Both are for test suites run under a sanitizer, which takes
//! nightly Rust. Off, each costs nothing: its hooks compile to empty functions that are inlined
//! away, and the fields it adds to the records kept for each switch are zero-sized or absent.
//!
//! ### `asan`
//!
//! Tells AddressSanitizer about every stack switch that coroutines and segments make
//! (`__sanitizer_start_switch_fiber` before the switch, `__sanitizer_finish_switch_fiber` after
//! it), so that ASan knows which stack is running, keeps each context's fake stack for
//! use-after-return detection apart, and does not read a switch as one enormous stack frame. It
//! is meant for builds with nightly's `-Zsanitizer=address`. With it, a panic on a segment is
//! caught there and resumed after the switch back, rather than unwound across the two stacks.
//! The raw [`swap`] and [`gogo`] are not annotated: code that uses them makes the calls itself.
//!
//! ### `tsan`
//!
//! Runs each coroutine as a ThreadSanitizer fiber of its own, created with the coroutine and
//! switched to with `__tsan_switch_to_fiber` at every resume and suspend, so that TSan keeps a
//! separate shadow call stack per coroutine. Segments need no fiber, since a split is a call and
//! a return on one logical stack. It is meant for builds with nightly's `-Zsanitizer=thread`
//! together with `-Zbuild-std`, so that std's own locks and atomics are instrumented too.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod arch;
mod bounds;
mod context;
mod coroutine;
mod error;
mod fork;
mod guard;
mod layout;
pub mod machine;
mod memclr;
mod sanitizer;
mod segment;
mod signal;
mod span_heap;
mod stack;
mod valgrind;

/// The build script's target table, checked by its unit tests.
#[cfg(test)]
#[path = "../build/targets.rs"]
mod build_targets;

pub use context::{gogo, gosave, prepare, swap, swap_out_of_line, Gobuf};
pub use coroutine::{
    coroutine_local, leaked_stacks, set_overflow_action, Coroutine, CoroutineResult,
    OverflowAction, ScopedCoroutine, ScopedCoroutineRef, StackOverflow, Yielder,
    DEFAULT_STACK_SIZE,
};
pub use error::{Error, ErrorKind};
pub use guard::{guard_kind, GuardKind, GUARD_ENV, GUARD_FLOOR, GUARD_SIZE, PANIC_HEADROOM};
pub use memclr::{memclr, memclr_raw, memclr_strategy, memclr_with, MemclrStrategy};
pub use segment::{
    grow, maybe_grow, remaining_stack, try_grow, MAX_DOUBLED_SEGMENT, MIN_SEGMENT_SIZE,
    UNWIND_RESERVE,
};
pub use span_heap::{HeapStats, Span, SpanHeap};
pub use stack::{page_size, Stack};
pub use valgrind::running_on_valgrind;
