//! Valgrind client requests: telling memcheck and callgrind about the stacks splitstack maps, so
//! that a switch between them is a change of stack rather than a huge frame (no "client
//! switching stacks?" warnings), and telling memcheck when a stack's memory changes hands.
//!
//! Each request is the fixed instruction sequence valgrind.h documents, in
//! `splitstack_valgrind_request` (asm/valgrind_*.S); outside valgrind it is a few no-op
//! instructions that return the default. So the support does not depend on the machine that
//! builds the crate: no header is searched for, and every build registers its stacks.
//!
//! RISC-V is the exception: its `splitstack_valgrind_request` makes no request and returns the
//! default, since Debian 12's valgrind (3.19), the one the tests can run, has no RISC-V port to
//! test a request sequence against (asm/valgrind_riscv64_lp64d.S). There
//! [`running_on_valgrind`] is always false and no stack is registered.

use crate::arch::splitstack_valgrind_request;
use std::sync::atomic::{AtomicU8, Ordering};

/// `VG_USERREQ__RUNNING_ON_VALGRIND` (valgrind.h): how deep under valgrind this runs, 0 outside.
const RUNNING_ON_VALGRIND: usize = 0x1001;
/// `VG_USERREQ__STACK_REGISTER` (valgrind.h): `[lo, hi)` is a stack; answers its id.
const STACK_REGISTER: usize = 0x1501;
/// `VG_USERREQ__STACK_DEREGISTER` (valgrind.h): forget the stack with this id.
const STACK_DEREGISTER: usize = 0x1502;
/// memcheck's requests start at `VG_USERREQ_TOOL_BASE('M', 'C')` (memcheck.h).
const MEMCHECK_BASE: usize = (b'M' as usize) << 24 | (b'C' as usize) << 16;
/// `VG_USERREQ__MAKE_MEM_UNDEFINED` (memcheck.h): accessible, holding nothing defined.
const MAKE_MEM_UNDEFINED: usize = MEMCHECK_BASE + 1;
/// `VG_USERREQ__MAKE_MEM_DEFINED` (memcheck.h): accessible and defined.
const MAKE_MEM_DEFINED: usize = MEMCHECK_BASE + 2;
/// `VG_USERREQ__CHECK_MEM_IS_ADDRESSABLE` (memcheck.h): 0 if the range is addressable. Only
/// memcheck answers it; any other tool, and no valgrind, gives back the default.
const CHECK_MEM_IS_ADDRESSABLE: usize = MEMCHECK_BASE + 4;

/// Whether the process runs under memcheck: 0 until asked, then 1 (no) or 2 (yes).
static MEMCHECK: AtomicU8 = AtomicU8::new(0);

/// Makes one client request with up to two arguments; `default` outside valgrind.
#[inline]
fn request(code: usize, arg1: usize, arg2: usize, default: usize) -> usize {
    let block = [code, arg1, arg2, 0, 0, 0];
    // SAFETY: the block is a live local; every request made here only reads its words and
    // changes valgrind's own bookkeeping, never this program's memory.
    unsafe { splitstack_valgrind_request(&block, default) }
}

/// Whether this process runs under valgrind (memcheck, callgrind, ...). Always false on RISC-V,
/// where the crate makes no client request (see the module documentation).
pub fn running_on_valgrind() -> bool {
    request(RUNNING_ON_VALGRIND, 0, 0, 0) != 0
}

/// Registers `[lo, hi)` as a stack; returns valgrind's id for it (0 outside valgrind).
pub(crate) fn stack_register(lo: usize, hi: usize) -> usize {
    request(STACK_REGISTER, lo, hi, 0)
}

/// Forgets the stack with this id; called before its memory is unmapped or reused.
pub(crate) fn stack_deregister(id: usize) {
    request(STACK_DEREGISTER, id, 0, 0);
}

/// memcheck: `[addr, addr + len)` is accessible again but holds nothing defined (a stack being
/// recycled: memcheck marked the dead frames below the last stack pointer inaccessible).
pub(crate) fn make_mem_undefined(addr: usize, len: usize) {
    request(MAKE_MEM_UNDEFINED, addr, len, 0);
}

/// memcheck: `[addr, addr + len)` is accessible and defined (pages handed back to the OS with
/// `MADV_DONTNEED`, which read as zero).
pub(crate) fn make_mem_defined(addr: usize, len: usize) {
    request(MAKE_MEM_DEFINED, addr, len, 0);
}

/// memcheck: `[addr, addr + len)`, the stack below a finished coroutine's record, is dead and
/// writable again, as uninitialised. Its next user (the next coroutine the pool gives it to, or
/// whoever gets it from `into_stack`) writes its record there, while memcheck still holds the
/// frames the coroutine popped, and on x86 the region its last switch left by raising the stack
/// pointer to the record, inaccessible (x86-64 hides the first 128 bytes of that in its red
/// zone, so only a record larger than that showed it there). Outside memcheck, callgrind
/// included, a load and a branch on a cold path.
#[inline(always)]
pub(crate) fn dead_stack(addr: usize, len: usize) {
    if memcheck_possible() {
        dead_stack_slow(addr, len);
    }
}

/// Whether memcheck may be running: true until the first [`dead_stack`] has asked, and then
/// only under memcheck. A load and a compare.
#[inline(always)]
pub(crate) fn memcheck_possible() -> bool {
    MEMCHECK.load(Ordering::Relaxed) != 1
}

/// [`dead_stack`] when memcheck runs, or before it is known whether it does.
#[cold]
#[inline(never)]
fn dead_stack_slow(addr: usize, len: usize) {
    let under_memcheck = match MEMCHECK.load(Ordering::Relaxed) {
        0 => {
            let probe = 0u8;
            let at = &probe as *const u8 as usize;
            let yes = request(CHECK_MEM_IS_ADDRESSABLE, at, 1, usize::MAX) == 0;
            MEMCHECK.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        answer => answer == 2,
    };
    if under_memcheck {
        make_mem_undefined(addr, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_codes_are_valgrinds() {
        assert_eq!(MEMCHECK_BASE, 0x4d43_0000);
        assert_eq!(MAKE_MEM_DEFINED, 0x4d43_0002);
    }

    #[test]
    fn outside_valgrind_every_request_answers_its_default() {
        if running_on_valgrind() {
            return; // the suite's memcheck pass runs this binary too; there the answer is real
        }
        assert_eq!(request(RUNNING_ON_VALGRIND, 0, 0, 7), 7);
        assert_eq!(stack_register(0x1000, 0x2000), 0);
    }
}
