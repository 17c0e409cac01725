#![doc = include_str!("../README.md")]
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
pub use coroutine::{Coroutine, CoroutineResult, Yielder, DEFAULT_STACK_SIZE};
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
