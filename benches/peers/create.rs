//! Create + complete, shared by `coroutine.rs` (time) and `coroutine_instructions.rs`
//! (instruction counts): a coroutine that answers its input and returns, run to completion.

use super::answer;

/// Create, run to completion and drop one splitstack coroutine; returns what it returned.
#[inline(always)]
pub fn splitstack_create_complete(v: usize) -> usize {
    let mut co =
        splitstack::Coroutine::new(|_: &splitstack::Yielder<usize, ()>, v: usize| answer(v));
    match co.resume(v) {
        splitstack::CoroutineResult::Return(v) => v,
        splitstack::CoroutineResult::Yield(()) => unreachable!("it never suspends"),
    }
}

/// The same on corosensei, on `stack`, which is handed back for the next one.
#[inline(always)]
pub fn corosensei_create_complete_on<S: corosensei::stack::Stack + 'static>(
    stack: S,
    v: usize,
) -> (S, usize) {
    let mut co =
        corosensei::Coroutine::with_stack(stack, |_: &corosensei::Yielder<usize, ()>, v: usize| {
            answer(v)
        });
    let v = match co.resume(v) {
        corosensei::CoroutineResult::Return(v) => v,
        corosensei::CoroutineResult::Yield(()) => unreachable!("it never suspends"),
    };
    (co.into_stack(), v)
}

/// The same on corosensei at its best, as its own bench measures it: a `ScopedCoroutine` on a
/// stack it borrows.
#[inline(always)]
pub fn corosensei_create_complete_borrowing(
    stack: &mut corosensei::stack::DefaultStack,
    v: usize,
) -> usize {
    let co = corosensei::ScopedCoroutine::with_stack(
        stack,
        |_: &corosensei::Yielder<usize, ()>, v: usize| answer(v),
    );
    co.scope(|mut co| match co.resume(v) {
        corosensei::CoroutineResult::Return(v) => v,
        corosensei::CoroutineResult::Yield(()) => unreachable!("it never suspends"),
    })
}
