//! Guard regions: the inaccessible region below every stack, its registry, and its headroom.
//! The signal handler that reports an overflow, and the alternate stack it runs on, are in
//! src/signal.rs.
//!
//! Below the usable part of every splitstack stack lies an inaccessible guard region of
//! [`GUARD_SIZE`] bytes (or a little more, to round a span to whole heap pages), in two parts:
//!
//! ```text
//!   bottom          -> +---------------------+  the stack's lowest usable address
//!                      | panic headroom      |  PANIC_HEADROOM: opened while the thread panics
//!   start + FLOOR   -> +---------------------+
//!                      | floor               |  GUARD_FLOOR: always inaccessible
//!   start           -> +---------------------+
//! ```
//!
//! The floor is the stack-clash margin: a frame that skips pages without probing them (C code
//! built without stack-clash protection) must jump more than it to land in a neighbour's memory.
//! The headroom is there for code that runs during a panic: the panic hook (which formats the
//! message and, with `RUST_BACKTRACE`, symbolizes a backtrace, loading debug info the first
//! time), the unwinder and the destructors it runs. Such code calls no
//! [`maybe_grow`](crate::maybe_grow), and a stack a user sized for their own code may not fit it.
//! So a fault in the headroom of a thread that is panicking opens the headroom (one `mprotect`,
//! which only moves the boundary between two mappings, so it needs no new mapping even at
//! `vm.max_map_count`) and the faulting instruction runs again; the panic continues on a stack
//! [`PANIC_HEADROOM`] bytes deeper. The headroom is closed again, its pages given back to the OS,
//! when the stack is left after the panic (the coroutine or split it ended), or at the latest when
//! the [`Stack`](crate::Stack) is dropped or trimmed.
//!
//! A fault anywhere else in a guard region (in the floor, or in the headroom of a thread that is
//! not panicking) prints `splitstack: stack overflow: ...` and aborts. Every other fault goes to
//! the handler that was installed before, with that handler's own mask and flags.
//!
//! How a guard is made inaccessible depends on the kernel, decided once per process by proof
//! ([`guard_kind`]): Linux's guard regions (`MADV_GUARD_INSTALL`, 6.13 and later), which cost no
//! mapping, or `mprotect`, which makes every guard a mapping of its own.
//!
//! The registry is a fixed table of atomics, so the handler reads it without locks or
//! allocation. Its size, [`GUARD_SLOTS`], is two million live stacks. A stack created when the
//! table is full works normally, but its overflow is reported by the previous handler, and its
//! headroom does not open.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};

/// How this process makes guard regions inaccessible: decided once, by proof
/// ([`guard_kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardKind {
    /// Linux's guard regions (`madvise(MADV_GUARD_INSTALL)`, kernel 6.13 and later): markers in
    /// the page tables of the stack heap's arena mapping. A guard costs no mapping, so live
    /// stacks are bounded by memory, not by `vm.max_map_count`.
    Regions,
    /// `mprotect(PROT_NONE)`: the guard is a mapping of its own, so every live stack costs two
    /// of the process's mappings and `vm.max_map_count` (65,530 by default) bounds them to about
    /// 32,000.
    Mprotect,
}

/// `madvise` advice that installs guard markers on a range (Linux 6.13): any access faults.
const MADV_GUARD_INSTALL: libc::c_int = 102;
/// `madvise` advice that removes them again.
const MADV_GUARD_REMOVE: libc::c_int = 103;

/// The environment variable that makes a process use [`GuardKind::Mprotect`] even where the
/// kernel has guard regions (`SPLITSTACK_GUARD=mprotect`), to compare or to test that path.
pub const GUARD_ENV: &str = "SPLITSTACK_GUARD";

/// How this process makes its guards, decided on first use by proof rather than by a return
/// code: an emulator or a kernel that does not know the advice may accept it and install nothing
/// (qemu-user 7.2 returns 0). The proof maps two pages, installs a guard on the second, and reads
/// both with `process_vm_readv` from this process: the kernel copies the first and fails on the
/// guarded one with `EFAULT`, without a signal. Any other outcome (an error from `madvise`,
/// `ENOSYS` from an emulator, a read that succeeds) means [`GuardKind::Mprotect`]. The
/// [`GUARD_ENV`] variable set to `mprotect` forces that kind.
pub fn guard_kind() -> GuardKind {
    static KIND: AtomicU8 = AtomicU8::new(0);
    match KIND.load(Ordering::Relaxed) {
        1 => GuardKind::Regions,
        2 => GuardKind::Mprotect,
        _ => {
            let kind = if std::env::var_os(GUARD_ENV).is_some_and(|v| v == "mprotect") {
                GuardKind::Mprotect
            } else {
                prove_guard_regions()
            };
            KIND.store(if kind == GuardKind::Regions { 1 } else { 2 }, Ordering::Relaxed);
            kind
        }
    }
}

/// The proof behind [`guard_kind`].
fn prove_guard_regions() -> GuardKind {
    let page = crate::stack::page_size();
    let Ok(mut map) = memmap2::MmapMut::map_anon(2 * page) else {
        return GuardKind::Mprotect;
    };
    let base = map.as_mut_ptr();
    // SAFETY: the second page of the mapping just made, which only this function uses (it is
    // unmapped when `map` drops); process_vm_readv reads from it into a local buffer.
    unsafe {
        let guarded = base.add(page);
        if libc::madvise(guarded.cast(), page, MADV_GUARD_INSTALL) != 0 {
            return GuardKind::Mprotect;
        }
        let read = |addr: *mut u8| {
            let mut word = 0u64;
            let local = libc::iovec { iov_base: (&mut word as *mut u64).cast(), iov_len: 8 };
            let remote = libc::iovec { iov_base: addr.cast(), iov_len: 8 };
            let n = libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0);
            (n, std::io::Error::last_os_error().raw_os_error())
        };
        let plain = read(base);
        let guard = read(guarded);
        if plain.0 == 8 && guard.0 == -1 && guard.1 == Some(libc::EFAULT) {
            GuardKind::Regions
        } else {
            GuardKind::Mprotect
        }
    }
}

/// Makes `[addr, addr + len)` (page aligned, inside a private anonymous mapping) a guard, the
/// way [`guard_kind`] says; `Err` with the OS's error if it refused.
///
/// # Safety
/// Nothing in the range is in use.
pub(crate) unsafe fn install(addr: usize, len: usize) -> std::io::Result<()> {
    // SAFETY: the caller's contract.
    let rc = unsafe {
        match guard_kind() {
            GuardKind::Regions => libc::madvise(addr as *mut _, len, MADV_GUARD_INSTALL),
            GuardKind::Mprotect => libc::mprotect(addr as *mut _, len, libc::PROT_NONE),
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Makes a guard made by [`install`] ordinary read-write memory again.
///
/// # Safety
/// The range is a guard this crate installed, which nothing relies on any more.
pub(crate) unsafe fn remove(addr: usize, len: usize) -> std::io::Result<()> {
    // SAFETY: the caller's contract.
    let rc = unsafe {
        match guard_kind() {
            GuardKind::Regions => libc::madvise(addr as *mut _, len, MADV_GUARD_REMOVE),
            GuardKind::Mprotect => {
                libc::mprotect(addr as *mut _, len, libc::PROT_READ | libc::PROT_WRITE)
            }
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The part of every guard region that always stays inaccessible: the stack-clash margin. 64 KiB
/// on 64-bit targets; 16 KiB on 32-bit ones, whose address space holds far fewer stacks (Rust
/// probes every 4 KiB page of a larger frame, so any floor of a page or more stops Rust code;
/// the rest is margin for unprobed C frames).
pub const GUARD_FLOOR: usize =
    if cfg!(target_pointer_width = "64") { 64 * 1024 } else { 16 * 1024 };

/// The part of every guard region above the floor that opens while its thread is panicking:
/// room for the panic hook, the unwinder and destructors on a stack that is too small for them.
/// The first symbolization of a backtrace by std's default hook needed about 28 KiB in a small
/// binary (measured with threads of decreasing stack size); a large binary's debug info takes
/// more, so the headroom is several times that: 256 KiB on 64-bit targets, 64 KiB on 32-bit ones
/// (their frames are smaller, and their address space is 4 GiB at most). Address space only:
/// untouched pages cost no memory.
pub const PANIC_HEADROOM: usize =
    if cfg!(target_pointer_width = "64") { 256 * 1024 } else { 64 * 1024 };

/// The guard region below every stack: [`GUARD_FLOOR`] plus [`PANIC_HEADROOM`] (rounded up to
/// whole OS pages, and for stacks from the stack heap to whole heap pages).
pub const GUARD_SIZE: usize = GUARD_FLOOR + PANIC_HEADROOM;

/// Registry slots: one per live stack. With guard regions live stacks are bounded by memory, not
/// by the map count: on 64-bit targets two million slots (32 MiB of address space, resident only
/// as far as slots have been used) cover 2 TiB of default coroutine stacks; on 32-bit ones 65,536
/// (512 KiB) are more stacks than their 4 GiB can hold.
pub(crate) const GUARD_SLOTS: usize =
    if cfg!(target_pointer_width = "64") { 1 << 21 } else { 1 << 16 };

/// The bit of a `STARTS` entry set while the headroom is open (starts are page aligned).
const OPENED: usize = 1;

/// A `STARTS` entry while its slot is being filled in: above every address, so `find` skips it.
const RESERVED: usize = usize::MAX & !OPENED;

/// Guard region start addresses, with [`OPENED`]; 0 is a free slot.
static STARTS: [AtomicUsize; GUARD_SLOTS] = [const { AtomicUsize::new(0) }; GUARD_SLOTS];
/// Guard region end addresses (the stacks' bottoms), valid where `STARTS` is nonzero.
static ENDS: [AtomicUsize; GUARD_SLOTS] = [const { AtomicUsize::new(0) }; GUARD_SLOTS];
/// Where the next registration starts looking for a free slot.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
/// One past the highest slot ever used: where the handler's search stops.
static SLOTS_USED: AtomicUsize = AtomicUsize::new(0);

/// Registers the guard region `[start, end)` (page aligned); returns its slot, or `None` if the
/// table is full.
pub(crate) fn register(start: usize, end: usize) -> Option<usize> {
    debug_assert!(start != 0 && start & OPENED == 0 && start < end);
    let first = NEXT_SLOT.load(Ordering::Relaxed);
    for i in 0..GUARD_SLOTS {
        let slot = (first + i) % GUARD_SLOTS;
        // Reserve the slot, then the end, then the start: a handler that sees the start (Acquire)
        // sees the end.
        if STARTS[slot].compare_exchange(0, RESERVED, Ordering::Acquire, Ordering::Relaxed).is_ok()
        {
            ENDS[slot].store(end, Ordering::Relaxed);
            SLOTS_USED.fetch_max(slot + 1, Ordering::Release);
            STARTS[slot].store(start, Ordering::Release);
            index(end, slot);
            NEXT_SLOT.store((slot + 1) % GUARD_SLOTS, Ordering::Relaxed);
            return Some(slot);
        }
    }
    None
}

/// Forgets the guard region in `slot`, closing its headroom first if it is open.
pub(crate) fn unregister(slot: usize) {
    close_headroom(slot);
    unindex(ENDS[slot].load(Ordering::Relaxed), slot);
    ROLES[slot].store(0, Ordering::Relaxed);
    STARTS[slot].store(0, Ordering::Release);
    NEXT_SLOT.store(slot, Ordering::Relaxed);
}

/// What a registered stack serves as, for the two readers that need to know which coroutine a
/// stack belongs to: the overflow recovery (src/coroutine/overflow.rs) and
/// [`coroutine_local`](crate::coroutine_local).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A plain [`Stack`](crate::Stack), or one whose role is not known.
    Plain = 0,
    /// A coroutine stack: the word just below its top holds the address of its coroutine's
    /// record while a coroutine lives on it.
    Coroutine = 1,
    /// A segment: its [`Stktop`](crate::segment) lies at its top.
    Segment = 2,
}

/// The bits of a `ROLES` entry that hold the [`Role`]; the rest is the stack's top (page
/// aligned).
const ROLE_MASK: usize = 3;

/// Per slot, the registered stack's top with its [`Role`] in the low bits; 0 for
/// [`Role::Plain`].
static ROLES: [AtomicUsize; GUARD_SLOTS] = [const { AtomicUsize::new(0) }; GUARD_SLOTS];

/// Records that the stack registered in `slot`, whose top is `top`, serves as `role`.
pub(crate) fn set_role(slot: usize, top: usize, role: Role) {
    let entry = if role == Role::Plain { 0 } else { top | role as usize };
    ROLES[slot].store(entry, Ordering::Release);
}

/// The role and top of the registered stack whose lowest usable address is `bottom`: two
/// loads of the bottom index and one of the table, no lock, so the signal handler may call it.
pub(crate) fn role_of(bottom: usize) -> Option<(Role, usize)> {
    let slot = indexed(bottom)?;
    let entry = ROLES[slot].load(Ordering::Acquire);
    let role = match entry & ROLE_MASK {
        1 => Role::Coroutine,
        2 => Role::Segment,
        _ => return None,
    };
    Some((role, entry & !ROLE_MASK))
}

/// The index from stack bottoms to slots: a two-level table over the user address space (2^48
/// bytes, which covers x86-64's 47 bits, AArch64's 48 and RISC-V's Sv48; the whole 2^32 on
/// 32-bit targets), so a lookup is two loads, without a
/// lock or a hash. One entry per 64 KiB: two stacks' bottoms are always further apart than that
/// (each has a guard region of [`GUARD_SIZE`] below it). The first level, one pointer per GiB, is
/// static (2 MiB of zero pages until used); the second, 64 KiB per GiB (resident only where
/// stacks lie), is made by the first registration in its GiB and kept for the life of the
/// process. Second-level tables are cut from blocks of [`INDEX_BLOCK_TABLES`], so that the index
/// adds one mapping per 1,024 GiB of stacks, not one per GiB (the stack heap's arenas merge into
/// few mappings, and a mapping of our own between them would keep them apart).
const INDEX_BITS: u32 = if usize::BITS < 48 { usize::BITS } else { 48 };
const INDEX_CHUNK_BITS: u32 = 30;
const INDEX_PAGE_BITS: u32 = 16;
const INDEX_CHUNKS: usize = 1 << (INDEX_BITS - INDEX_CHUNK_BITS);
const INDEX_CHUNK_ENTRIES: usize = 1 << (INDEX_CHUNK_BITS - INDEX_PAGE_BITS);
const INDEX_TABLE_BYTES: usize = INDEX_CHUNK_ENTRIES * core::mem::size_of::<AtomicU32>();
/// Second-level tables per mapped block (64 MiB of address space).
const INDEX_BLOCK_TABLES: usize = 1024;

const _: () = assert!(GUARD_SIZE > 1 << INDEX_PAGE_BITS);

static INDEX: [AtomicPtr<AtomicU32>; INDEX_CHUNKS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; INDEX_CHUNKS];

/// The unused rest of the last block mapped for second-level tables: (next, end).
static INDEX_BLOCK: std::sync::Mutex<(usize, usize)> = std::sync::Mutex::new((0, 0));

/// For the fork handlers (src/fork.rs): holds [`INDEX_BLOCK`]'s lock until the returned value
/// drops, so that no other thread is inside [`new_index_table`] when the process forks (the
/// child's first guarded stack would wait for that thread forever). Taken inside no other lock
/// of this crate.
pub(crate) fn hold_index_block() -> Box<dyn std::any::Any> {
    // SAFETY: the mutex is a static, alive for the process's life.
    unsafe { crate::fork::hold(&INDEX_BLOCK, ()) }
}

/// A zeroed second-level table from the current block (mapping a new one when it is used up);
/// `None` if no block can be mapped. Tables are never returned.
fn new_index_table() -> Option<*mut AtomicU32> {
    let mut block = INDEX_BLOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if block.0 == block.1 {
        let bytes = INDEX_BLOCK_TABLES * INDEX_TABLE_BYTES;
        // SAFETY: a fresh private anonymous mapping, zero (every entry empty), never unmapped.
        let fresh = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if fresh == libc::MAP_FAILED {
            return None;
        }
        *block = (fresh as usize, fresh as usize + bytes);
    }
    let table = block.0;
    block.0 += INDEX_TABLE_BYTES;
    Some(table as *mut AtomicU32)
}

/// The second-level table for `bottom`, made if `create` and it does not exist yet; `None`
/// outside the indexed address space or when it cannot be made.
fn index_chunk(bottom: usize, create: bool) -> Option<&'static [AtomicU32]> {
    let chunk = INDEX.get(bottom >> INDEX_CHUNK_BITS)?;
    let mut table = chunk.load(Ordering::Acquire);
    if table.is_null() && create {
        let fresh = new_index_table()?;
        // A table that loses the race stays unused in its block (rare, and 64 KiB of address
        // space).
        table = match chunk.compare_exchange(
            core::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => fresh,
            Err(theirs) => theirs,
        };
    }
    // SAFETY: a published table is INDEX_CHUNK_ENTRIES zero-initialised atomics in a block that
    // is never unmapped.
    (!table.is_null()).then(|| unsafe { core::slice::from_raw_parts(table, INDEX_CHUNK_ENTRIES) })
}

/// The entry for `bottom` in its second-level table.
fn index_entry(table: &[AtomicU32], bottom: usize) -> &AtomicU32 {
    &table[(bottom >> INDEX_PAGE_BITS) & (INDEX_CHUNK_ENTRIES - 1)]
}

/// Indexes `slot` under its stack's bottom (no entry if the table cannot be mapped: that stack's
/// role is then unknown to the readers).
fn index(bottom: usize, slot: usize) {
    if let Some(table) = index_chunk(bottom, true) {
        index_entry(table, bottom).store(slot as u32 + 1, Ordering::Release);
    }
}

/// Removes `slot` from the index, if its entry is still that slot's.
fn unindex(bottom: usize, slot: usize) {
    if let Some(table) = index_chunk(bottom, false) {
        let _ = index_entry(table, bottom).compare_exchange(
            slot as u32 + 1,
            0,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

/// The slot whose stack bottom lies in the same 64 KiB as `addr`, if any (unchecked).
fn index_slot(addr: usize) -> Option<usize> {
    let table = index_chunk(addr, false)?;
    (index_entry(table, addr).load(Ordering::Acquire) as usize).checked_sub(1)
}

/// How many 64 KiB index chunks [`stack_containing`] asks at most: 256 MiB below an address.
const CONTAINING_SCAN_CHUNKS: usize = 4096;

/// The bottom of the registered coroutine stack or segment whose usable part contains `addr`.
/// The index is asked for each 64 KiB at and below `addr`, up to 256 MiB, until a registered
/// stack's bottom at or below `addr` turns up: stacks do not overlap, so that is the stack
/// `addr` lies in, if it lies in any, which its top (kept with its role) tells. Plain stacks,
/// whose top the registry does not keep, and anything further below are not found. No lock,
/// two loads a chunk.
pub(crate) fn stack_containing(addr: usize) -> Option<usize> {
    let chunk = 1usize << INDEX_PAGE_BITS;
    let mut near = addr & !(chunk - 1);
    for _ in 0..CONTAINING_SCAN_CHUNKS {
        if let Some(slot) = index_slot(near) {
            let live = STARTS[slot].load(Ordering::Acquire) != 0;
            let bottom = ENDS[slot].load(Ordering::Relaxed);
            if live && bottom <= addr {
                let top = ROLES[slot].load(Ordering::Acquire) & !ROLE_MASK;
                return (addr < top).then_some(bottom);
            }
        }
        near = near.checked_sub(chunk)?;
    }
    None
}

/// The slot registered for the stack whose lowest usable address is `bottom`.
fn indexed(bottom: usize) -> Option<usize> {
    let slot = index_slot(bottom)?;
    let live = STARTS[slot].load(Ordering::Acquire) != 0;
    (live && ENDS[slot].load(Ordering::Relaxed) == bottom).then_some(slot)
}

/// The headroom of the guard region `[start, end)`: the part above the floor.
pub(crate) fn headroom(start: usize, end: usize) -> core::ops::Range<usize> {
    (start + GUARD_FLOOR).min(end)..end
}

/// Makes the headroom of the guard in `slot` inaccessible again if a panic opened it, and gives
/// its pages back to the OS. Only for a stack nothing runs on below its usable part.
pub(crate) fn close_headroom(slot: usize) {
    let start = STARTS[slot].load(Ordering::Acquire);
    if start & OPENED == 0 {
        return;
    }
    let start = start & !OPENED;
    let room = headroom(start, ENDS[slot].load(Ordering::Relaxed));
    let (addr, len) = (room.start as *mut libc::c_void, room.end - room.start);
    // SAFETY: the headroom of a registered stack that nothing runs on (the caller's contract);
    // its contents are dead.
    unsafe {
        libc::madvise(addr, len, libc::MADV_DONTNEED);
        if install(room.start, len).is_err() {
            // It stays open: the floor still guards the stack.
            return;
        }
    }
    STARTS[slot].store(start, Ordering::Release);
}

/// Whether the headroom of the guard in `slot` is open.
pub(crate) fn headroom_open(slot: usize) -> bool {
    STARTS[slot].load(Ordering::Acquire) & OPENED != 0
}

/// The registered guard region that contains `addr`: its slot, start and end. A guard region
/// ends at its stack's bottom, so the index is asked first for each 64 KiB at and above `addr`
/// that a guard's end could lie in (its size and rounding: about 7 lookups); a region the index
/// does not hold is found by scanning the table.
pub(crate) fn find(addr: usize) -> Option<(usize, usize, usize)> {
    let chunk = 1 << INDEX_PAGE_BITS;
    let reach = GUARD_SIZE + 2 * crate::span_heap::SpanHeap::PAGE_SIZE + crate::stack::page_size();
    let first = addr & !(chunk - 1);
    for near in (first..=first.saturating_add(reach + chunk)).step_by(chunk) {
        if let Some(slot) = index_slot(near) {
            let start = STARTS[slot].load(Ordering::Acquire) & !OPENED;
            let end = ENDS[slot].load(Ordering::Relaxed);
            if start != 0 && start <= addr && addr < end {
                return Some((slot, start, end));
            }
        }
    }
    (0..SLOTS_USED.load(Ordering::Acquire)).find_map(|slot| {
        let start = STARTS[slot].load(Ordering::Acquire) & !OPENED;
        let end = ENDS[slot].load(Ordering::Relaxed);
        (start != 0 && addr >= start && addr < end).then_some((slot, start, end))
    })
}

/// Opens the headroom of the guard in `slot` (see the module documentation); whether it is open.
/// Called by the handler (src/signal.rs), on the thread's alternate signal stack.
pub(crate) fn open_headroom(slot: usize) -> bool {
    let start = STARTS[slot].load(Ordering::Acquire);
    if start == 0 || start == RESERVED {
        return false;
    }
    let base = start & !OPENED;
    let room = headroom(base, ENDS[slot].load(Ordering::Relaxed));
    // SAFETY: the headroom of a registered stack's guard, which only that stack's thread uses.
    // Both kinds of removal are a single system call, async-signal-safe in practice; neither
    // needs a new mapping (mprotect moves the boundary between the guard's mapping and the
    // stack's).
    if unsafe { remove(room.start, room.end - room.start) }.is_err() {
        return false;
    }
    STARTS[slot].store(base | OPENED, Ordering::Release);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_is_the_part_above_the_floor() {
        let start = 0x10_0000;
        assert_eq!(headroom(start, start + GUARD_SIZE), start + GUARD_FLOOR..start + GUARD_SIZE);
        // A region no larger than the floor has no headroom.
        assert!(headroom(start, start + GUARD_FLOOR / 2).is_empty());
    }
}
