//! Coroutine-local data: a typed value given to a coroutine when it is made
//! ([`Coroutine::with_local`]), which any code running in the coroutine reaches with
//! [`coroutine_local`], without a reference threaded through every call.
//!
//! Nothing on the switch path knows about it. The lookup starts from what every switch already
//! maintains, the running stack's limit word: its address is the stack's bottom, which the
//! guard registry's lock-free index maps to the stack's role; a coroutine stack's top word names
//! its record, and a segment's `Stktop` the stack it grew from. The record's `local` points at
//! the value while the closure runs. So a switch costs nothing more, and a lookup costs two
//! index loads per stack in the chain (the coroutine's stack, and each segment it is running on
//! top of) and a type check.

use super::{owner_of, Coroutine, Link, Yielder};
use crate::bounds;
use std::any::Any;
use std::ptr::NonNull;

/// Runs `f` with the local value of the coroutine the calling code runs in, if it has one of
/// type `L` ([`Coroutine::with_local`]); `None` outside every coroutine (on a thread's own
/// stack, or a segment it grew), in a coroutine made without a local, or with one of another
/// type.
///
/// Inside [`Yielder::on_parent_stack`], the code runs as its resumer: this finds the resumer's
/// local, if the resumer is a coroutine. Code on a stack entered with the raw
/// [`swap`](crate::swap) sees the coroutine whose bounds were installed last, as
/// [`maybe_grow`](crate::maybe_grow) does; [`install_bounds`](crate::machine::install_bounds)
/// of a plain stack makes it `None`.
///
/// ```
/// use splitstack::{coroutine_local, Coroutine};
///
/// fn request_id() -> Option<u64> {
///     coroutine_local(|id: &u64| *id)
/// }
///
/// let mut co = Coroutine::with_local(7u64, |yielder, ()| {
///     yielder.suspend(request_id());
///     request_id()
/// });
/// assert_eq!(co.resume(()).as_yield(), Some(Some(7)));
/// assert_eq!(co.resume(()).as_return(), Some(Some(7)));
/// assert_eq!(request_id(), None);
/// ```
pub fn coroutine_local<L: Any, T>(f: impl FnOnce(&L) -> T) -> Option<T> {
    let limit = bounds::stack_limit();
    if limit == bounds::LIMIT_UNKNOWN {
        // A thread's own stack whose bounds were never learnt: no coroutine ran here.
        return None;
    }
    // SAFETY: the running context's bounds (`stack_limit` finds them) are the running stack's
    // (every split rewrites them); its chain's records are live while code runs on it. The local points
    // into the frame of the closure's wrapper, which outlives every call the closure makes, and
    // is cleared before the value drops.
    unsafe {
        let (link, _) = owner_of(limit)?;
        let local = (*link).local?;
        local.as_ref().downcast_ref::<L>().map(f)
    }
}

/// Owns a coroutine's local value in the frame of its closure's wrapper, and publishes it in the
/// record while it lives.
struct LocalSlot<L: Any> {
    link: *mut Link<(), ()>,
    value: L,
}

impl<L: Any> Drop for LocalSlot<L> {
    fn drop(&mut self) {
        // Unpublished before `value` drops, so that its destructor finds no local.
        // SAFETY: the record of the coroutine this runs in.
        unsafe { (*self.link).local = None };
    }
}

impl<I, Y, R> Coroutine<I, Y, R> {
    /// [`Coroutine::new`], with `local` as the coroutine's local value: code running in the
    /// coroutine reaches it with [`coroutine_local`]`::<L, _>`. It lives while the closure runs
    /// (it is dropped after the closure returns, panics or is unwound, with the closure's other
    /// captures), and only shared references to it are handed out: use a `Cell` or `RefCell`
    /// inside it to change it.
    ///
    /// # Panics
    /// As [`Coroutine::new`].
    pub fn with_local<L: Any, F: FnOnce(&Yielder<I, Y>, I) -> R + 'static>(local: L, f: F) -> Self {
        Coroutine::new(move |yielder: &Yielder<I, Y>, input: I| {
            let slot = LocalSlot { link: yielder.link.cast::<Link<(), ()>>(), value: local };
            // SAFETY: the record of the coroutine this runs in; `slot` stays in this frame
            // until the closure is done, and unpublishes itself when it drops.
            unsafe { (*slot.link).local = Some(NonNull::from(&slot.value as &dyn Any)) };
            f(yielder, input)
        })
    }
}
