//! A generator built on the raw layer instead of [`splitstack::Coroutine`]: a [`Stack`], two
//! [`Gobuf`]s, [`prepare`] and [`swap`], for libraries that build their own coroutines. The one
//! thing such a library must add for [`maybe_grow`] to work on its stacks is the stack-bounds
//! hand-over: around each switch, [`machine::install_bounds`] installs the bounds of the side
//! switched to and keeps the ones it replaces, so each side checks, and grows from, its own
//! stack.
//!
//! ```text
//! resume:   saved = install_bounds(generator's)   swap(caller -> generator)
//!           generator's = install_bounds(saved)    <- back, with whatever the generator had
//! ```
//!
//! The generator's bounds are taken back at each switch out, not recomputed from its stack:
//! it may suspend from a segment that `maybe_grow` gave it, and must find that segment's bounds
//! when resumed. Everything else is the simplest that is sound: the body is boxed, a panic in it
//! is caught on the generator's stack and continued from `next`, and a generator dropped before
//! it finishes abandons its frames (what they own leaks; nothing is unwound) and frees its
//! stack.
//!
//! Run the demonstration with `cargo run --release --example raw_generator`, the tests with
//! `cargo test --release --example raw_generator`.

use splitstack::machine::{self, StackBounds};
use splitstack::{maybe_grow, prepare, remaining_stack, swap, Gobuf, Stack};
use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// What the generator's body is handed: [`Yield::item`] passes one value out.
pub struct Yield<T> {
    inner: *mut Inner<T>,
}

/// An iterator over the values a closure passes to [`Yield::item`], on a stack of its own.
pub struct RawGenerator<T> {
    inner: Box<Inner<T>>,
}

/// The generator's body, boxed so that every generator of items `T` has one type.
type Body<T> = Box<dyn FnOnce(&Yield<T>)>;

/// Everything both sides reach, at a fixed address (boxed): the two contexts, the bounds the
/// generator side had when it last switched out, the value in flight.
struct Inner<T> {
    stack: Stack,
    /// The generator's context while it is suspended (or about to start).
    generator: Gobuf,
    /// The resumer's context while the generator runs.
    caller: Gobuf,
    /// The generator side's stack bounds while it does not run.
    generator_bounds: StackBounds,
    body: Option<Body<T>>,
    item: Option<T>,
    panic: Option<Box<dyn Any + Send>>,
    done: bool,
}

impl<T> RawGenerator<T> {
    /// A generator that runs `body` on a stack of `stack_size` usable bytes.
    pub fn new(stack_size: usize, body: impl FnOnce(&Yield<T>) + 'static) -> RawGenerator<T> {
        let stack = Stack::new(stack_size).expect("a stack");
        let generator_bounds = StackBounds::of(&stack);
        let mut inner = Box::new(Inner {
            stack,
            generator: Gobuf::default(),
            caller: Gobuf::default(),
            generator_bounds,
            body: Some(Box::new(body)),
            item: None,
            panic: None,
            done: false,
        });
        // SAFETY: the stack is the Inner's, which outlives every switch into the context; the
        // entry never returns and catches every panic.
        unsafe { prepare(&mut inner.generator, &inner.stack, entry::<T>) };
        RawGenerator { inner }
    }
}

impl<T> Iterator for RawGenerator<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.inner.done {
            return None;
        }
        let inner: *mut Inner<T> = &mut *self.inner;
        // SAFETY: the generator is suspended (or fresh) in `inner.generator`, on its own stack;
        // the bounds switched around the swap are the two sides' own. The Inner stays put (it
        // is boxed) while the generator runs, and only raw pointers reach it across the switch.
        unsafe {
            let saved = machine::install_bounds((*inner).generator_bounds);
            swap(&raw mut (*inner).caller, &raw const (*inner).generator, inner as usize);
            (*inner).generator_bounds = machine::install_bounds(saved);
            if let Some(payload) = (*inner).panic.take() {
                resume_unwind(payload);
            }
            (*inner).item.take()
        }
    }
}

impl<T> Yield<T> {
    /// Hands `value` to the `next` call that resumed the generator, and waits for the next one.
    pub fn item(&self, value: T) {
        let inner = self.inner;
        // SAFETY: called on the generator's stack while the resumer waits in `next`, whose
        // context is in `caller`; the Inner outlives the generator.
        unsafe {
            (*inner).item = Some(value);
            swap(&raw mut (*inner).generator, &raw const (*inner).caller, 0);
        }
    }
}

/// The generator's first function: runs the body, catching a panic, then switches out for the
/// last time.
unsafe extern "C" fn entry<T>(arg: usize) -> ! {
    let inner = arg as *mut Inner<T>;
    // SAFETY: `next` passes its Inner, which outlives the generator; the body is taken once.
    unsafe {
        let body = (*inner).body.take().expect("the body, at the first resume");
        let handle = Yield { inner };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| body(&handle))) {
            (*inner).panic = Some(payload);
        }
        (*inner).done = true;
        swap(&raw mut (*inner).generator, &raw const (*inner).caller, 0);
    }
    unreachable!("a finished generator is never resumed")
}

/// A recursion that checks its stack at every level and hands out its depth every `every`
/// levels.
fn descend(y: &Yield<u64>, depth: u64, max: u64, every: u64) {
    maybe_grow(16 * 1024, 256 * 1024, || {
        if depth.is_multiple_of(every) {
            y.item(depth);
        }
        if depth < max {
            descend(y, depth + 1, max, every);
        }
    })
}

fn main() {
    let before = machine::stats().splits;
    let depths: Vec<u64> =
        RawGenerator::new(64 * 1024, |y| descend(y, 0, 200_000, 50_000)).collect();
    let splits = machine::stats().splits - before;
    println!("depths handed out on a 64 KiB raw stack: {depths:?}, {splits} splits");
    let room = RawGenerator::new(64 * 1024, |y| y.item(remaining_stack())).next().unwrap();
    println!("remaining_stack() at the start of a 64 KiB raw stack: {room} bytes");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_stack_reports_the_raw_stack_switched_to() {
        let size = 64 * 1024;
        let room = RawGenerator::new(size, |y| y.item(remaining_stack())).next().unwrap();
        assert!(room > size - 16 * 1024 && room <= size, "{room} bytes of a {size}-byte stack");
        // And the caller's own bounds are back.
        assert!(remaining_stack() > size, "the caller's stack: {}", remaining_stack());
    }

    #[test]
    fn maybe_grow_stays_on_a_raw_stack_that_has_room() {
        let before = machine::stats().splits;
        let depths: Vec<u64> = RawGenerator::new(64 * 1024, |y| descend(y, 0, 10, 5)).collect();
        assert_eq!(depths, [0, 5, 10]);
        assert_eq!(machine::stats().splits, before, "ten levels fit the raw stack");
    }

    #[test]
    fn maybe_grow_grows_a_raw_stack_and_suspends_from_its_segments() {
        let before = machine::stats();
        let depths: Vec<u64> =
            RawGenerator::new(64 * 1024, |y| descend(y, 0, 100_000, 25_000)).collect();
        assert_eq!(depths, [0, 25_000, 50_000, 75_000, 100_000]);
        let after = machine::stats();
        assert!(after.splits > before.splits, "a recursion this deep needs segments");
        assert_eq!(after.segments_in_use, before.segments_in_use, "every segment came back");
    }

    #[test]
    fn a_panic_in_the_body_continues_from_next() {
        let mut g = RawGenerator::new(64 * 1024, |y: &Yield<u8>| {
            y.item(1);
            panic!("from the raw generator");
        });
        assert_eq!(g.next(), Some(1));
        let payload = catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"from the raw generator"));
        assert_eq!(g.next(), None);
    }
}
