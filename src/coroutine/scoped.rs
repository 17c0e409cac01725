//! Coroutines whose closure, input, yield and return types may borrow: [`ScopedCoroutine`].
//!
//! # Why this is sound
//! A borrowing coroutine is dangerous in one way: while it is suspended, its frames hold
//! borrows, and they may also hold values whose destructor is what keeps a borrow from
//! outliving its referent. `std::thread::scope` is the example (corosensei's issues 27 and 59):
//! a coroutine that suspends inside a thread scope has spawned threads that borrow data of the
//! caller's, and only the scope's end, in a frame of the coroutine, joins them. If the suspended
//! coroutine could be leaked (`mem::forget`, an `Rc` cycle), that frame would never run, the
//! borrowed data would be dropped, and the threads would go on reading freed memory.
//!
//! So a `ScopedCoroutine` cannot be resumed, only handed to [`ScopedCoroutine::scope`], which
//! owns it for the duration of a closure that gets a [`ScopedCoroutineRef`] (a borrow, which
//! leaking cannot affect). When that closure returns or unwinds, `scope` drops the coroutine,
//! which unwinds a suspended one (running every frame's destructors, the thread scope's join
//! included) before `scope` returns. Everything the user can name is then harmless to forget:
//! - a `ScopedCoroutine` before `scope` has never run: forgetting it leaks its closure, which
//!   holds borrows but never uses them;
//! - a `ScopedCoroutineRef` is a `&mut` to `scope`'s own local: forgetting it changes nothing,
//!   and it cannot leave the closure (its lifetime is the closure's);
//! - the coroutine itself is never handed out.
//!
//! A thread that never returns from the closure never lets the borrows end either (the
//! lifetime `'a` outlives the `scope` call). What remains is what every Rust unwinding allows: a
//! frame's destructor that panics while the coroutine is unwound aborts the process.

use super::{Coroutine, CoroutineResult, Yielder, DEFAULT_STACK_SIZE};
use crate::error::Error;
use std::marker::PhantomData;

/// A coroutine whose closure, input, yield and return types may borrow data living for `'a`
/// (no `'static` bound). It is resumed only inside [`scope`](ScopedCoroutine::scope), which
/// finishes it before returning; the module documentation of `splitstack::coroutine::scoped`
/// (in the source) and the section below give the argument.
///
/// ```
/// use splitstack::{CoroutineResult, ScopedCoroutine};
///
/// let words = vec!["borrowed", "from", "the", "caller"];
/// let co = ScopedCoroutine::new(|y, ()| {
///     for word in &words {
///         y.suspend(word.len());
///     }
///     words.len()
/// });
/// let lengths = co.scope(|mut co| {
///     let mut lengths = Vec::new();
///     while let CoroutineResult::Yield(len) = co.resume(()) {
///         lengths.push(len);
///     }
///     lengths
/// });
/// assert_eq!(lengths, [8, 4, 3, 6]);
/// ```
///
/// # Soundness
/// A suspended borrowing coroutine must never be leaked: its frames may hold what keeps a
/// borrow in check (a `std::thread::scope` whose threads borrow the caller's data is joined
/// only when the frame ends). `ScopedCoroutine` has no `resume`; `scope` owns the coroutine
/// while the closure it is given runs, hands the closure only a [`ScopedCoroutineRef`], and
/// drops (unwinds) the coroutine when the closure returns or panics. A `ScopedCoroutine`
/// forgotten before `scope` has never run; a forgotten `ScopedCoroutineRef` is a forgotten
/// borrow. Neither type is `Send`.
///
/// A `ScopedCoroutine` cannot be resumed outside `scope`:
/// ```compile_fail,E0599
/// let mut co = splitstack::ScopedCoroutine::new(|_: &splitstack::Yielder<(), ()>, ()| ());
/// co.resume(());
/// ```
/// nor can its `ScopedCoroutineRef` leave the closure:
/// ```compile_fail
/// let co = splitstack::ScopedCoroutine::new(|_: &splitstack::Yielder<(), ()>, ()| ());
/// let escaped = co.scope(|r| r);
/// ```
/// nor can what it borrows be dropped while it exists:
/// ```compile_fail,E0505
/// let data = String::from("borrowed");
/// let co = splitstack::ScopedCoroutine::new(|_: &splitstack::Yielder<(), ()>, ()| data.len());
/// drop(data);
/// co.scope(|mut r| r.resume(()));
/// ```
pub struct ScopedCoroutine<'a, Input, Yield, Return> {
    co: Coroutine<Input, Yield, Return>,
    /// The borrows the closure and the value types may hold.
    _borrows: PhantomData<&'a ()>,
}

/// The handle [`ScopedCoroutine::scope`] gives its closure: resume the coroutine, ask whether it
/// is done or started. A borrow of the coroutine that `scope` owns.
pub struct ScopedCoroutineRef<'s, Input, Yield, Return> {
    co: &'s mut Coroutine<Input, Yield, Return>,
}

impl<'a, I, Y, R> ScopedCoroutine<'a, I, Y, R> {
    /// A coroutine that will run `f` on a pooled stack of [`DEFAULT_STACK_SIZE`] bytes, as
    /// [`Coroutine::new`] does.
    ///
    /// # Panics
    /// If no stack can be had; see [`with_stack_size`](ScopedCoroutine::with_stack_size).
    pub fn new<F: FnOnce(&Yielder<I, Y>, I) -> R + 'a>(f: F) -> Self {
        match Self::with_stack_size(DEFAULT_STACK_SIZE, f) {
            Ok(co) => co,
            Err(err) => panic!("{err}"),
        }
    }

    /// A coroutine that will run `f` on a stack of exactly `size` usable bytes, as
    /// [`Coroutine::with_stack_size`] does.
    ///
    /// # Errors
    /// As [`Coroutine::with_stack_size`].
    pub fn with_stack_size<F: FnOnce(&Yielder<I, Y>, I) -> R + 'a>(
        size: usize,
        f: F,
    ) -> Result<Self, Error> {
        let co = Coroutine::with_stack_size_borrowing(size, f)?;
        Ok(ScopedCoroutine { co, _borrows: PhantomData })
    }

    /// Runs `f` with a handle to the coroutine, then finishes the coroutine (unwinding it if it
    /// is suspended, as dropping a [`Coroutine`] does) before returning `f`'s value, or before
    /// continuing `f`'s panic.
    ///
    /// # Panics
    /// With `f`'s panic; with the first panic a destructor raised while the coroutine was
    /// unwound, if `f` returned (as [`Coroutine`]'s `Drop`).
    pub fn scope<T>(self, f: impl FnOnce(ScopedCoroutineRef<'_, I, Y, R>) -> T) -> T {
        let mut co = self.co;
        // `co` is dropped here on every way out of `f`, a panic's included.
        f(ScopedCoroutineRef { co: &mut co })
    }
}

impl<I, Y, R> ScopedCoroutineRef<'_, I, Y, R> {
    /// As [`Coroutine::resume`].
    ///
    /// # Panics
    /// As [`Coroutine::resume`].
    pub fn resume(&mut self, input: I) -> CoroutineResult<Y, R> {
        self.co.resume(input)
    }

    /// As [`Coroutine::done`].
    pub fn done(&self) -> bool {
        self.co.done()
    }

    /// As [`Coroutine::started`].
    pub fn started(&self) -> bool {
        self.co.started()
    }

    /// A shorter-lived handle to the same coroutine, for a function that takes one by value.
    pub fn as_mut(&mut self) -> ScopedCoroutineRef<'_, I, Y, R> {
        ScopedCoroutineRef { co: self.co }
    }
}
