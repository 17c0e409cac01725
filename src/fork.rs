//! Fork safety for the locks every thread shares: the span heaps' locks, the stack heap's free
//! list, and the guard index's block of tables.
//!
//! `fork()` copies only the calling thread. A lock that another thread held at that moment stays
//! held in the child, by a thread that does not exist there, and the child's first allocation of
//! a stack would wait for it forever. So each shared lock registers here, and `pthread_atfork`
//! handlers take every registered lock before the fork (on the forking thread, which then holds
//! them all and so knows the state behind them is consistent) and release them after it, in the
//! parent and in the child alike.
//!
//! One-time setups (the stack heap, the overflow handler) are the other hazard: a child forked
//! while another thread is inside one would wait for it forever. So the handlers are installed
//! when the program is loaded, before any thread exists, and the prepare handler finishes any
//! such setup before the fork.
//!
//! The locks are taken in one order: the registry's, then each registered lock in registration
//! order, then the guard index's (a static, not registered). No code of this crate holds one of
//! them while it waits for another, so that order cannot deadlock with a thread that is in the
//! middle of an allocation.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// A lock the fork handlers take: [`hold`](ForkLock::hold) locks it and returns what unlocks it
/// when dropped.
pub(crate) trait ForkLock: Send + Sync {
    /// Takes the lock; dropping the result releases it.
    fn hold(self: Arc<Self>) -> Box<dyn Any>;
}

/// A guard kept across a fork, with the `Arc` that keeps its lock alive; the guard is declared
/// first, so it is dropped (the lock released) before the `Arc`.
pub(crate) struct Held<G, K> {
    _guard: G,
    _keep: K,
}

/// Locks `mutex` (ignoring poisoning: every lock registered here keeps its state consistent
/// between operations) and keeps the guard with `keep`, the `Arc` that owns the mutex.
///
/// # Safety
/// `mutex` lives as long as `keep` does.
pub(crate) unsafe fn hold<T: 'static, K: 'static>(mutex: &Mutex<T>, keep: K) -> Box<dyn Any> {
    let guard = mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // SAFETY: the caller guarantees that `keep` keeps the mutex alive, and `Held` drops the
    // guard before `keep`.
    let guard: MutexGuard<'static, T> = unsafe { core::mem::transmute(guard) };
    Box::new(Held { _guard: guard, _keep: keep })
}

impl<T: Send + 'static> ForkLock for Mutex<T> {
    fn hold(self: Arc<Self>) -> Box<dyn Any> {
        let mutex: *const Mutex<T> = &*self;
        // SAFETY: `self` is the Arc that owns the mutex.
        unsafe { hold(&*mutex, self) }
    }
}

/// Every registered lock, pruned of dead ones at each registration.
static REGISTRY: Mutex<Vec<Weak<dyn ForkLock>>> = Mutex::new(Vec::new());

thread_local! {
    /// What the prepare handler took, on the forking thread, for the parent and child handlers
    /// to release.
    static HELD: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// Registers `lock` with the fork handlers.
pub(crate) fn register(lock: Weak<dyn ForkLock>) {
    USED.store(true, Ordering::Release);
    let mut registry = REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    registry.retain(|weak| weak.strong_count() > 0);
    registry.push(lock);
}

/// Whether this process has used splitstack's stacks or heaps: only then do the handlers act.
static USED: AtomicBool = AtomicBool::new(false);

/// Notes that the process uses splitstack's stacks, before any of their one-time setup begins.
#[inline]
pub(crate) fn note_use() {
    if !USED.load(Ordering::Relaxed) {
        USED.store(true, Ordering::Release);
    }
}

/// Installs the fork handlers when the program is loaded, before `main` and before any thread
/// exists: installed later, a fork could come between another thread's start of a one-time
/// setup and the handlers' installation, and the child would wait for that setup forever.
#[used]
#[unsafe(link_section = ".init_array")]
static INSTALL_HANDLERS: extern "C" fn() = install_handlers;

extern "C" fn install_handlers() {
    // SAFETY: the handlers are plain functions that live for the process's life. Failure
    // (ENOMEM) leaves fork as unsafe as it would be without them; nothing to undo.
    unsafe { libc::pthread_atfork(Some(prepare), Some(release), Some(release)) };
}

/// Before `fork`, in a process that uses splitstack: finishes the one-time setups (the stack
/// heap, the overflow handler) if another thread is in the middle of one, since the child would
/// wait for it forever; then takes the registry's lock, every registered lock and the guard
/// index's.
extern "C" fn prepare() {
    if !USED.load(Ordering::Acquire) {
        return;
    }
    crate::stack::set_up_once();
    let registry = REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut held: Vec<Box<dyn Any>> = Vec::with_capacity(registry.len() + 2);
    let locks: Vec<Arc<dyn ForkLock>> = registry.iter().filter_map(Weak::upgrade).collect();
    held.push(Box::new(registry));
    held.extend(locks.into_iter().map(ForkLock::hold));
    held.push(crate::guard::hold_index_block());
    HELD.with(|cell| *cell.borrow_mut() = held);
}

/// After `fork`, in the parent and in the child: releases what [`prepare`] took (nothing, in a
/// process that does not use splitstack), in reverse.
extern "C" fn release() {
    HELD.with(|cell| {
        let mut held = cell.take();
        while let Some(lock) = held.pop() {
            drop(lock);
        }
    });
}
