//! The overflow report: the SIGSEGV / SIGBUS handler that tells a guard-region fault from any
//! other, opens a panicking thread's headroom, recovers a coroutine's overflow when the process
//! asked for that (src/coroutine/overflow.rs), reports an overflow by name, and passes every
//! other fault on to the handler installed before; and the alternate signal stack it runs on, which
//! every thread that uses splitstack gets if it has none.

use crate::guard::{find, headroom, open_headroom};
use crate::stack::Stack;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

static PREVIOUS_SEGV: AtomicPtr<libc::sigaction> = AtomicPtr::new(core::ptr::null_mut());
static PREVIOUS_BUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(core::ptr::null_mut());

/// Installs the overflow handler for SIGSEGV and SIGBUS, once per process, keeping the previous
/// handlers to pass other faults on to. The previous action is read and published before ours
/// is installed, so that a fault on another thread in between finds it.
pub(crate) fn install_handler() {
    static INSTALL: Once = Once::new();
    // The closure cannot panic (it only makes system calls and leaks boxes), so the Once is
    // never poisoned.
    INSTALL.call_once(|| {
        for (signal, previous) in [(libc::SIGSEGV, &PREVIOUS_SEGV), (libc::SIGBUS, &PREVIOUS_BUS)] {
            // SAFETY: sigaction with fully initialised actions; each previous action is kept in
            // a leaked box that the handler reads.
            unsafe {
                let mut action: libc::sigaction = core::mem::zeroed();
                action.sa_sigaction = handler as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                let queried = Box::into_raw(Box::new(core::mem::zeroed::<libc::sigaction>()));
                if libc::sigaction(signal, core::ptr::null(), queried) != 0 {
                    drop(Box::from_raw(queried));
                    continue;
                }
                previous.store(queried, Ordering::Release);
                let mut replaced: libc::sigaction = core::mem::zeroed();
                if libc::sigaction(signal, &action, &mut replaced) != 0 {
                    continue;
                }
                if !same_action(&replaced, &*queried) {
                    // Someone installed another action between the query and ours: that one is
                    // the previous handler.
                    previous.store(Box::into_raw(Box::new(replaced)), Ordering::Release);
                }
            }
        }
    });
}

fn same_action(a: &libc::sigaction, b: &libc::sigaction) -> bool {
    a.sa_sigaction == b.sa_sigaction && a.sa_flags == b.sa_flags
}

extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SIGSEGV/SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some((slot, start, end)) = find(addr) {
        if headroom(start, end).contains(&addr) && std::thread::panicking() && open_headroom(slot) {
            // Returning runs the faulting instruction again, now in open headroom.
            return;
        }
        // SAFETY: on the faulting thread, with the kernel's context; `end` is the bottom of the
        // stack whose guard the fault hit.
        if unsafe { crate::coroutine::recover_overflow(end, context) } {
            // Returning lands in the coroutine's resumer (src/coroutine/overflow.rs).
            return;
        }
        report_overflow(addr, start, end);
    }
    let previous = if signal == libc::SIGBUS { &PREVIOUS_BUS } else { &PREVIOUS_SEGV };
    let previous = previous.load(Ordering::Acquire);
    // SAFETY: `previous` is the action in place before ours, leaked for the process's life;
    // `context` is the ucontext the kernel passed.
    unsafe {
        if previous.is_null() {
            reset_to_default(signal);
            return;
        }
        chain(signal, &*previous, info, context);
    }
}

/// Runs the previous action for a fault that is not an overflow, as the kernel would have: the
/// default or ignore disposition by reinstalling it and returning (the fault recurs and takes
/// it), a handler with its own `sa_mask` blocked (and the signal itself unless `SA_NODEFER`),
/// after resetting the disposition if it has `SA_RESETHAND`.
///
/// # Safety
/// Called from the signal handler with the kernel's `info` and `context`.
unsafe fn chain(
    signal: libc::c_int,
    previous: &libc::sigaction,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: sigaction and pthread_sigmask are async-signal-safe; `context` is a ucontext_t.
    unsafe {
        if previous.sa_sigaction == libc::SIG_DFL || previous.sa_sigaction == libc::SIG_IGN {
            libc::sigaction(signal, previous, core::ptr::null_mut());
            return;
        }
        if previous.sa_flags & libc::SA_RESETHAND != 0 {
            reset_to_default(signal);
        }
        // The mask the kernel would have given the previous handler: the interrupted code's,
        // plus its sa_mask, plus the signal unless SA_NODEFER.
        let mut mask = (*(context as *mut libc::ucontext_t)).uc_sigmask;
        // Linux numbers its signals 1 to 64.
        for other in 1..=64 {
            if libc::sigismember(&previous.sa_mask, other) == 1 {
                libc::sigaddset(&mut mask, other);
            }
        }
        if previous.sa_flags & libc::SA_NODEFER != 0 {
            libc::sigdelset(&mut mask, signal);
        } else {
            libc::sigaddset(&mut mask, signal);
        }
        let mut ours: libc::sigset_t = core::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask, &mut ours);
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                core::mem::transmute(previous.sa_sigaction);
            f(signal, info, context);
        } else {
            let f: extern "C" fn(libc::c_int) = core::mem::transmute(previous.sa_sigaction);
            f(signal);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &ours, core::ptr::null_mut());
    }
}

/// Restores the default action for `signal`.
unsafe fn reset_to_default(signal: libc::c_int) {
    // SAFETY: a zeroed sigaction is SIG_DFL with no flags.
    unsafe {
        let mut action: libc::sigaction = core::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(signal, &action, core::ptr::null_mut());
    }
}

/// Writes the overflow message to stderr without allocating, and aborts.
fn report_overflow(addr: usize, start: usize, end: usize) -> ! {
    let mut buf = [0u8; 320];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    put(b"\nsplitstack: stack overflow: fault at ");
    put(&hex(addr));
    put(b" in the guard region ");
    put(&hex(start));
    put(b"..");
    put(&hex(end));
    put(b" of a splitstack stack; grow the stack (maybe_grow) or give it more room. Aborting.\n");
    // SAFETY: write(2) and abort(3) are async-signal-safe; buf is a local.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), len);
        libc::abort()
    }
}

/// The hex digits of a word: 16 on 64-bit targets, 8 on 32-bit ones.
const HEX_DIGITS: usize = 2 * core::mem::size_of::<usize>();

/// `0x` and [`HEX_DIGITS`] lowercase hex digits.
fn hex(value: usize) -> [u8; 2 + HEX_DIGITS] {
    let mut out = [b'0'; 2 + HEX_DIGITS];
    out[1] = b'x';
    for i in 0..HEX_DIGITS {
        let nibble = (value >> ((HEX_DIGITS - 1 - i) * 4)) & 0xf;
        out[2 + i] = b"0123456789abcdef"[nibble];
    }
    out
}

/// An alternate signal stack mapped by splitstack for a thread that had none.
pub(crate) struct AltStack {
    /// Unmapped when the AltStack drops, after it is disabled.
    _stack: Stack,
}

impl AltStack {
    /// Install an alternate signal stack if the thread has none; `None` if it already had one
    /// (or none could be made, in which case an overflow is reported as a plain SIGSEGV).
    pub(crate) fn install_if_missing() -> Option<AltStack> {
        // SAFETY: queries the current alternate stack into a local.
        let mut current: libc::stack_t = unsafe { core::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::sigaltstack(core::ptr::null(), &mut current) } != 0 {
            return None;
        }
        if current.ss_flags & libc::SS_DISABLE == 0 {
            return None;
        }
        let stack = Stack::new(libc::SIGSTKSZ.max(64 * 1024)).ok()?;
        let new = libc::stack_t { ss_sp: stack.bottom().cast(), ss_flags: 0, ss_size: stack.len() };
        // SAFETY: the stack stays mapped until the AltStack drops, which disables it first.
        if unsafe { libc::sigaltstack(&new, core::ptr::null_mut()) } != 0 {
            return None;
        }
        Some(AltStack { _stack: stack })
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let disable =
            libc::stack_t { ss_sp: core::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
        // SAFETY: disables the alternate stack before its memory is unmapped with `_stack`.
        unsafe { libc::sigaltstack(&disable, core::ptr::null_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_prints_every_digit_of_a_word() {
        if cfg!(target_pointer_width = "64") {
            assert_eq!(&hex(0xdead_beef)[..], b"0x00000000deadbeef");
            assert_eq!(&hex(usize::MAX)[..], b"0xffffffffffffffff");
        } else {
            assert_eq!(&hex(0xbeef)[..], b"0x0000beef");
            assert_eq!(&hex(usize::MAX)[..], b"0xffffffff");
        }
    }
}
