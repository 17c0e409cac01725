//! Stack overflow reports: every splitstack stack's guard page is registered here, and a
//! SIGSEGV/SIGBUS handler (on the thread's alternate signal stack) that finds the faulting
//! address in a guard prints a message naming splitstack and the overflow, then aborts. Every
//! other fault goes to the handler that was installed before.
//!
//! The registry is a fixed table of atomics, so the handler reads it without locks or
//! allocation. Its size, [`GUARD_SLOTS`], is above what the kernel allows anyway: each guarded
//! stack is two mappings and `vm.max_map_count` defaults to 65,530. A stack created when the
//! table is full works normally, but its overflow is reported by the previous handler.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Once;

/// Registry slots: one per live stack.
pub(crate) const GUARD_SLOTS: usize = 1 << 16;

/// Guard page start addresses; 0 is a free slot. Every guard is one page long.
static GUARDS: [AtomicUsize; GUARD_SLOTS] = [const { AtomicUsize::new(0) }; GUARD_SLOTS];
/// Where the next registration starts looking for a free slot.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

/// Registers a guard page starting at `start`; returns its slot, or `None` if the table is full.
pub(crate) fn register(start: usize) -> Option<usize> {
    let first = NEXT_SLOT.load(Ordering::Relaxed);
    for i in 0..GUARD_SLOTS {
        let slot = (first + i) % GUARD_SLOTS;
        if GUARDS[slot].compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            NEXT_SLOT.store(slot + 1, Ordering::Relaxed);
            return Some(slot);
        }
    }
    None
}

/// Forgets the guard in `slot`.
pub(crate) fn unregister(slot: usize) {
    GUARDS[slot].store(0, Ordering::Release);
    NEXT_SLOT.store(slot, Ordering::Relaxed);
}

/// The registered guard page that contains `addr`, as its start address.
fn find(addr: usize, page: usize) -> Option<usize> {
    GUARDS
        .iter()
        .map(|g| g.load(Ordering::Acquire))
        .find(|&start| start != 0 && addr >= start && addr - start < page)
}

static PREVIOUS_SEGV: AtomicPtr<libc::sigaction> = AtomicPtr::new(core::ptr::null_mut());
static PREVIOUS_BUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(core::ptr::null_mut());

/// Installs the overflow handler for SIGSEGV and SIGBUS, once per process, keeping the previous
/// handlers to pass other faults on to.
pub(crate) fn install_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        for (signal, previous) in [(libc::SIGSEGV, &PREVIOUS_SEGV), (libc::SIGBUS, &PREVIOUS_BUS)] {
            // SAFETY: sigaction with a fully initialised action; the previous action is kept in a
            // leaked box that the handler reads.
            unsafe {
                let mut action: libc::sigaction = core::mem::zeroed();
                action.sa_sigaction = handler as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                let old = Box::into_raw(Box::new(core::mem::zeroed::<libc::sigaction>()));
                if libc::sigaction(signal, &action, old) == 0 {
                    previous.store(old, Ordering::Release);
                } else {
                    drop(Box::from_raw(old));
                }
            }
        }
    });
}

extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let page = crate::stack::page_size();
    // SAFETY: the kernel passes a valid siginfo for SIGSEGV/SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(start) = find(addr, page) {
        report_overflow(addr, start, page);
    }
    let previous = if signal == libc::SIGBUS { &PREVIOUS_BUS } else { &PREVIOUS_SEGV };
    let previous = previous.load(Ordering::Acquire);
    // SAFETY: `previous` is the action in place before ours, leaked for the process's life.
    unsafe {
        if previous.is_null() {
            reset_to_default(signal);
            return;
        }
        let previous = &*previous;
        if previous.sa_sigaction == libc::SIG_DFL || previous.sa_sigaction == libc::SIG_IGN {
            // Returning re-executes the faulting instruction, which now takes the default action.
            libc::sigaction(signal, previous, core::ptr::null_mut());
        } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                core::mem::transmute(previous.sa_sigaction);
            f(signal, info, context);
        } else {
            let f: extern "C" fn(libc::c_int) = core::mem::transmute(previous.sa_sigaction);
            f(signal);
        }
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
fn report_overflow(addr: usize, guard_start: usize, page: usize) -> ! {
    let mut buf = [0u8; 256];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    put(b"\nsplitstack: stack overflow: fault at ");
    put(&hex(addr));
    put(b" in the guard page ");
    put(&hex(guard_start));
    put(b"..");
    put(&hex(guard_start + page));
    put(b" of a splitstack stack; grow the stack (maybe_grow) or give it more room. Aborting.\n");
    // SAFETY: write(2) and abort(3) are async-signal-safe; buf is a local.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), len);
        libc::abort()
    }
}

/// `0x` and 16 lowercase hex digits.
fn hex(value: usize) -> [u8; 18] {
    let mut out = *b"0x0000000000000000";
    for i in 0..16 {
        let nibble = (value >> ((15 - i) * 4)) & 0xf;
        out[2 + i] = b"0123456789abcdef"[nibble];
    }
    out
}
