//! Generators: an [`Iterator`] whose items a closure hands out with `suspend`, one coroutine per
//! generator. A library on top of [`splitstack::Coroutine`], in one file.
//!
//! ```text
//! let squares = gen(|y| for i in 0..4 { y.suspend(i * i) });
//! squares.collect::<Vec<_>>()  ==  [0, 1, 4, 9]
//! ```
//!
//! What the coroutine gives the iterator for free:
//! - the closure keeps its place between items in ordinary local variables and loops, however
//!   deep (recursion that checks its stack with [`maybe_grow`] grows the small default stack
//!   through segments, and may suspend from any depth);
//! - dropping a generator part-way drops everything its closure holds, at every depth (the
//!   coroutine is unwound), and returns its stack to the thread's pool;
//! - a panic in the closure continues from the `next` call that resumed it; the generator is then
//!   finished, and further `next` calls return `None`.
//!
//! A generator is fused: once `next` has returned `None` it keeps returning `None` without
//! touching the finished coroutine.
//!
//! Run the demonstration with `cargo run --release --example generator`, the tests with
//! `cargo test --release --example generator`.

use splitstack::{maybe_grow, Coroutine, CoroutineResult, Yielder};
use std::iter::FusedIterator;

/// An iterator over the values a closure suspends with; made by [`gen`].
pub struct Gen<T> {
    co: Coroutine<(), T, ()>,
}

/// A generator running `f`: each `y.suspend(value)` in `f` is one item; `f` returning ends it.
pub fn gen<T: 'static, F: FnOnce(&Yielder<(), T>) + 'static>(f: F) -> Gen<T> {
    Gen { co: Coroutine::new(move |y, ()| f(y)) }
}

impl<T> Iterator for Gen<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.co.done() {
            return None;
        }
        match self.co.resume(()) {
            CoroutineResult::Yield(value) => Some(value),
            CoroutineResult::Return(()) => None,
        }
    }
}

impl<T> FusedIterator for Gen<T> {}

/// Stack a level of the recursive generators below may use between two checks, and the segment
/// size when the stack is short.
///
/// The red zone covers more than a level's frames: dropping a generator part-way unwinds its
/// coroutine from wherever it is suspended, and starting an unwind (`_Unwind_RaiseException`,
/// and `_Unwind_Resume` after each frame's cleanup) needs about 5 KiB of stack below that point
/// on x86-64 and 7 KiB on AArch64 (measured with glibc's unwinder). Below that, the drop hits
/// the guard region and the process aborts.
const RED_ZONE: usize = 16 * 1024;
const SEGMENT: usize = 256 * 1024;

/// Yields `n, n - 1, ..., 1` on the way down a recursion `n` levels deep, then `-1, ..., -n` on
/// the way back up, so that it suspends at every depth.
fn countdown(y: &Yielder<(), i64>, n: i64) {
    maybe_grow(RED_ZONE, SEGMENT, || {
        if n > 0 {
            y.suspend(n);
            countdown(y, n - 1);
            y.suspend(-n);
        }
    });
}

/// A binary tree whose nodes own their children.
struct Node {
    value: u64,
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

impl Node {
    /// A path `depth` nodes long, alternating left and right children, each node also having a
    /// leaf on its other side; values in in-order sequence from 0.
    fn zigzag(depth: u64) -> Option<Box<Node>> {
        // Built bottom-up in a loop: a recursive build would need the deep stack this example is
        // about.
        let mut below: Option<Box<Node>> = None;
        for level in (0..depth).rev() {
            let leaf = Some(Box::new(Node { value: 0, left: None, right: None }));
            let node = if level % 2 == 0 {
                Node { value: 0, left: below, right: leaf }
            } else {
                Node { value: 0, left: leaf, right: below }
            };
            below = Some(Box::new(node));
        }
        let mut next = 0;
        let mut tree = below;
        number_in_order(&mut tree, &mut next);
        tree
    }
}

/// Numbers the nodes in in-order sequence, iteratively (the tree is too deep for recursion on
/// the main thread's stack in debug builds).
fn number_in_order(tree: &mut Option<Box<Node>>, next: &mut u64) {
    let mut stack: Vec<*mut Node> = Vec::new();
    let mut cursor: *mut Node = tree.as_deref_mut().map_or(std::ptr::null_mut(), |n| n);
    loop {
        while !cursor.is_null() {
            stack.push(cursor);
            // SAFETY: `cursor` points into `tree`, borrowed mutably for this whole function, and
            // no other reference to its nodes is live while the loop runs.
            cursor = unsafe { (*cursor).left.as_deref_mut().map_or(std::ptr::null_mut(), |n| n) };
        }
        let Some(node) = stack.pop() else { break };
        // SAFETY: as above.
        unsafe {
            (*node).value = *next;
            *next += 1;
            cursor = (*node).right.as_deref_mut().map_or(std::ptr::null_mut(), |n| n);
        }
    }
}

impl Drop for Node {
    /// Drops the children iteratively: the default recursive drop of a 100,000-level tree would
    /// overflow the thread's stack.
    fn drop(&mut self) {
        let mut pending: Vec<Box<Node>> = Vec::new();
        pending.extend(self.left.take());
        pending.extend(self.right.take());
        while let Some(mut node) = pending.pop() {
            pending.extend(node.left.take());
            pending.extend(node.right.take());
        }
    }
}

/// The tree's values in order, by plain recursion inside the generator: each level checks its
/// stack with `maybe_grow`.
fn in_order(tree: Box<Node>) -> Gen<u64> {
    fn walk(y: &Yielder<(), u64>, node: &Node) {
        maybe_grow(RED_ZONE, SEGMENT, || {
            if let Some(left) = &node.left {
                walk(y, left);
            }
            y.suspend(node.value);
            if let Some(right) = &node.right {
                walk(y, right);
            }
        });
    }
    gen(move |y| walk(y, &tree))
}

fn main() {
    let squares: Vec<u64> = gen(|y| (0..8).for_each(|i| y.suspend(i * i))).collect();
    println!("squares:            {squares:?}");

    let fibonacci = gen(|y| {
        let (mut a, mut b) = (0u64, 1u64);
        loop {
            y.suspend(a);
            (a, b) = (b, a + b);
        }
    });
    println!("fibonacci:          {:?}", fibonacci.take(12).collect::<Vec<_>>());

    let depth = 100_000;
    let tree = Node::zigzag(depth).expect("a non-empty tree");
    let (count, in_sequence) =
        in_order(tree).fold((0u64, true), |(count, ok), value| (count + 1, ok && value == count));
    println!(
        "in-order walk of a {depth}-level tree: {count} nodes, in order: {in_sequence}, \
         segments after: {}",
        splitstack::machine::stats().segments_in_use
    );

    let sum: i64 = gen(|y| countdown(y, 100_000)).map(i64::abs).sum();
    println!("countdown 100,000 levels deep and back: sum of |values| = {sum}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use splitstack::machine;
    use std::cell::Cell;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::rc::Rc;

    /// Counts its drops.
    struct DropCounter(Rc<Cell<u32>>);

    impl Drop for DropCounter {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn yields_the_suspended_values_in_order() {
        let g = gen(|y| {
            for i in 0..3 {
                y.suspend(i)
            }
        });
        assert_eq!(g.collect::<Vec<i32>>(), [0, 1, 2]);
    }

    #[test]
    fn an_empty_generator_yields_nothing() {
        let mut g = gen(|_: &Yielder<(), u8>| {});
        assert_eq!(g.next(), None);
    }

    #[test]
    fn dropping_an_infinite_generator_after_take_runs_its_destructors() {
        let drops = Rc::new(Cell::new(0));
        let captured = DropCounter(drops.clone());
        let g = gen(move |y| {
            let held = captured;
            let _local = DropCounter(held.0.clone());
            let mut i = 0u64;
            loop {
                let _per_item = DropCounter(held.0.clone());
                y.suspend(i);
                i += 1;
            }
        });
        let mut taken = g.take(5);
        assert_eq!(taken.by_ref().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        // Four per-item counters dropped at the end of their loop iterations; the fifth, the
        // local and the captured one are live on the suspended coroutine's stack.
        assert_eq!(drops.get(), 4);
        drop(taken);
        assert_eq!(drops.get(), 7, "the suspended generator's locals were not all dropped");
    }

    #[test]
    fn dropping_a_generator_suspended_deep_in_segments_unwinds_them_all() {
        let drops = Rc::new(Cell::new(0));
        let counter = drops.clone();
        fn descend(y: &Yielder<(), u32>, n: u32, counter: &Rc<Cell<u32>>) {
            maybe_grow(RED_ZONE, SEGMENT, || {
                let _level = DropCounter(counter.clone());
                if n == 0 {
                    loop {
                        y.suspend(0);
                    }
                }
                descend(y, n - 1, counter);
            });
        }
        let mut g = gen(move |y| descend(y, 50_000, &counter));
        assert_eq!(g.next(), Some(0));
        assert_eq!(drops.get(), 0);
        drop(g);
        assert_eq!(drops.get(), 50_001, "every level's local should have been dropped");
        assert_eq!(machine::stats().segments_in_use, 0);
    }

    #[test]
    fn a_panic_in_the_generator_reaches_the_next_caller_and_then_it_is_finished() {
        let mut g = gen(|y| {
            y.suspend(1);
            std::panic::panic_any(0xbad_u32);
        });
        assert_eq!(g.next(), Some(1));
        let payload = catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
        assert_eq!(payload.downcast_ref::<u32>(), Some(&0xbad));
        assert_eq!(g.next(), None, "a generator that panicked is finished");
    }

    #[test]
    fn after_none_it_keeps_returning_none_without_resuming() {
        let resumes = Rc::new(Cell::new(0));
        let counter = resumes.clone();
        let mut g = gen(move |y| {
            counter.set(counter.get() + 1);
            y.suspend('a');
            counter.set(counter.get() + 1);
        });
        assert_eq!(g.next(), Some('a'));
        assert_eq!(g.next(), None);
        for _ in 0..3 {
            // Resuming the finished coroutine would panic; `next` must not.
            assert_eq!(g.next(), None);
        }
        assert_eq!(resumes.get(), 2);
    }

    #[test]
    fn a_recursive_countdown_100_000_deep_runs_on_the_default_stack() {
        let values: Vec<i64> = gen(|y| countdown(y, 100_000)).collect();
        assert_eq!(values.len(), 200_000);
        assert!(values[..100_000].iter().rev().copied().eq(1..=100_000));
        assert!(values[100_000..].iter().copied().eq((-100_000..=-1).rev()));
        assert_eq!(machine::stats().segments_in_use, 0);
    }

    #[test]
    fn an_in_order_walk_of_a_100_000_level_tree() {
        let depth = 100_000;
        let tree = Node::zigzag(depth).expect("a non-empty tree");
        let mut expected = 0;
        for value in in_order(tree) {
            assert_eq!(value, expected);
            expected += 1;
        }
        assert_eq!(expected, 2 * depth, "a path node and a leaf per level");
        assert_eq!(machine::stats().segments_in_use, 0);
    }
}
