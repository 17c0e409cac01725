//! Guard-paged stacks, carved from a process-wide span heap and recycled without system calls;
//! see [`Stack`] for where their memory comes from and where it goes.

use crate::error::Error;
use crate::fork::ForkLock;
use crate::guard::{GUARD_FLOOR, GUARD_SIZE};
use crate::memclr::memclr_raw;
use crate::span_heap::{HeapStats, SpanHeap, ARENA_SIZE};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

/// The system's page size, read once.
#[inline]
pub fn page_size() -> usize {
    static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
    #[cold]
    fn read() -> usize {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let size = if size > 0 { size as usize } else { 4096 };
        PAGE_SIZE.store(size, Ordering::Relaxed);
        size
    }
    // The x86 base page is 4 KiB by the architecture; AArch64 kernels use 4, 16 or 64 KiB.
    if cfg!(any(target_arch = "x86_64", target_arch = "x86")) {
        return 4096;
    }
    match PAGE_SIZE.load(Ordering::Relaxed) {
        0 => read(),
        size => size,
    }
}

/// The most dropped stacks the process-wide free list keeps, guarded, for reuse without a system
/// call (with `mprotect` guards, each is two of the process's mappings while it waits there).
/// Documented on [`Stack`].
const FREE_STACKS_MAX: usize = 1024;

/// The most usable bytes of untrimmed stacks the process-wide free list keeps; with
/// [`TRIM_KEEP`] for each of at most [`FREE_STACKS_MAX`] trimmed ones, the list holds at most
/// 64 MiB resident. Documented on [`Stack`].
const FREE_UNTRIMMED_BYTES_MAX: usize = 48 << 20;

/// Stacks at least this long (1 MiB usable) that go back to the heap give their pages back to the
/// OS (`MADV_DONTNEED`). Documented on [`Stack`].
const RETURN_PAGES_MIN: usize = 1 << 20;

/// The top of a stack that trimming keeps resident (see [`Stack::trim`]): enough for a coroutine's
/// record, closure and first frames, so that a trimmed stack that is reused takes no page fault
/// for them.
pub(crate) const TRIM_KEEP: usize = 16 * 1024;

/// The most distinct stack sizes the free list tracks at once.
const FREE_SIZES_MAX: usize = 64;

/// A stack for a context: a run of pages above an inaccessible guard region, so that running off
/// the bottom faults instead of writing into a neighbour.
///
/// ```text
///   top()    -> +-----------------+  page aligned (so 16-byte aligned)
///               |  usable: len()  |  stacks grow down
///   bottom() -> +-----------------+
///               |  panic headroom |  inaccessible; opened while the thread panics
///               +-----------------+
///               |  floor          |  inaccessible, 64 KiB: the stack-clash margin
///               +-----------------+  guard().start: the start of the span (or mapping)
/// ```
///
/// `len()` is the requested size rounded up to whole OS pages ([`page_size`]). The guard region,
/// [`guard()`](Stack::guard), is [`GUARD_SIZE`](crate::GUARD_SIZE) bytes (64 KiB of floor and
/// [`PANIC_HEADROOM`](crate::PANIC_HEADROOM) of headroom), one OS page more where that rounds
/// the span to whole [`SpanHeap::PAGE_SIZE`] pages. A fault anywhere in it is reported by
/// splitstack's overflow handler as a stack overflow, except in the headroom of a thread that is
/// panicking: the headroom then opens, so that the panic hook, the unwinder and destructors,
/// which call no [`maybe_grow`](crate::maybe_grow), can finish on a stack that is too small for
/// them (see the crate's guard documentation, [`GUARD_SIZE`](crate::GUARD_SIZE)). The guard costs
/// address space, not memory, and no mapping beyond the one every guard costs.
///
/// # Where the memory comes from, and where it goes
///
/// * **The stack heap.** One process-wide [`SpanHeap`] (8 KiB pages, 256 MiB arenas mapped on
///   first use without a commit charge, kept out of transparent huge pages) holds every stack
///   whose span (usable part plus guard, in whole heap pages) fits in an arena. A stack carved
///   from it has its guard made inaccessible with one system call: `madvise(MADV_GUARD_INSTALL)`
///   where the kernel has guard regions (Linux 6.13 and later), which costs no mapping, and
///   `mprotect(PROT_NONE)` elsewhere, which makes the guard a mapping of its own
///   ([`guard_kind`](crate::guard_kind) says which this process uses).
/// * **The free list.** A dropped stack keeps its guard and waits in a process-wide free list for
///   the next `Stack::new` of its `len()`, which takes it without any system call. The list holds
///   at most 1,024 stacks, and at most 64 MiB of resident memory: up to 48 MiB of untrimmed
///   stacks, and 16 KiB of each trimmed one (a coroutine stack its thread's pool trimmed, see
///   [`Coroutine`](crate::Coroutine), or a dropped stack that did not fit in the 48 MiB, whose
///   pages below its top 16 KiB are given back to the OS with one `madvise`). A trimmed stack
///   reads as zero below its top 16 KiB, so [`Stack::new_zeroed`] clears only that. When the
///   list is full, stacks of other sizes leave first (the oldest of the size the list holds most
///   of), so that the sizes in use are kept rather than those of a past burst; a stack that
///   does not fit even so is not kept. A stack leaving the list has its guard removed (one
///   system call) and its span returned to the heap, where it coalesces with its free neighbours
///   and can serve any later size. Whenever carving a new stack fails, the list is emptied into
///   the heap and the stack carved again before an error is returned: every stack waiting there
///   holds address space the heap can carve again, and with `mprotect` guards two of the
///   process's mappings.
/// * **Address space is never returned to the OS.** The heap keeps its arenas for the life of the
///   process. A stack of 1 MiB or more that goes back to the heap gives its pages back to the OS
///   (`MADV_DONTNEED`: one more system call on a path that already makes one), so that a deep
///   recursion's large segments do not stay resident after it; a smaller one keeps its touched
///   pages resident for the next stack carved there. So the resident memory kept for reuse is at
///   most the free list's 64 MiB plus what the threads' pools and segment caches hold plus the
///   most that stacks of under 1 MiB have used at once. [`Stack::heap_stats`] shows what the
///   heap holds.
/// * **Own mappings.** A stack whose span is larger than an arena, every stack where the OS page
///   is larger than the heap's (AArch64 kernels with 16 or 64 KiB pages), and a stack the heap
///   cannot provide (its next arena does not fit under `RLIMIT_AS`, say) is mapped on its own:
///   `mmap` and a guard when made, `munmap` when dropped.
///
/// A recycled stack holds whatever its last user left on it; [`Stack::new_zeroed`] hands out one
/// whose usable part is all zero.
///
/// It is registered with valgrind (when running under it) while handed out, and its guard region
/// is known to splitstack's overflow handler.
pub struct Stack {
    /// The lowest usable address.
    bottom: usize,
    /// The usable length, a multiple of the OS page, with [`OWN_MAPPING`] set when the stack is
    /// a mapping of its own rather than a span of the stack heap.
    len_and_origin: usize,
    /// valgrind's id for the stack (0 outside valgrind, which numbers stacks from 1).
    valgrind_id: u32,
    /// The overflow registry's slot for the guard region, or [`NO_GUARD_SLOT`].
    guard_slot: u32,
}

/// `Stack::guard_slot` when the registry was full (the overflow is then reported by the previous
/// handler). Three words in all keep a `Stack` cheap to move in and out of the coroutine pools
/// and the segment caches.
const NO_GUARD_SLOT: u32 = u32::MAX;

/// The bit of `Stack::len_and_origin` that marks a stack mapped on its own (lengths are whole
/// pages, so their low bits are free).
const OWN_MAPPING: usize = 1;

/// The bit of `Stack::len_and_origin` that marks a stack whose pages below its top [`TRIM_KEEP`]
/// bytes are known to be given back to the OS: set by its owner just before it drops the stack
/// ([`Stack::mark_trimmed`]), for the free list's accounting.
const TRIMMED: usize = 2;

impl Stack {
    /// A stack with at least `size` usable bytes (rounded up to whole OS pages) above a guard
    /// region: a recycled one of that size if the free list has one (its contents are whatever its
    /// last user left), else one carved from the stack heap, or one mapped on its own (see
    /// [above](Stack#where-the-memory-comes-from-and-where-it-goes)).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSize`](crate::ErrorKind::InvalidSize) for a size of 0 or one whose page
    /// rounding or guard overflows; [`ErrorKind::OutOfMemory`](crate::ErrorKind::OutOfMemory) or
    /// [`ErrorKind::MapCountLimit`](crate::ErrorKind::MapCountLimit) when the OS refuses.
    pub fn new(size: usize) -> Result<Stack, Error> {
        Stack::make(size, false)
    }

    /// [`Stack::new`], with every usable byte zero: for a stack handed to code that must not see
    /// what the stack's previous user left on it. Memory that comes fresh from the OS is zero
    /// already and is not written; a recycled stack's usable part, and the pages of a heap span
    /// that were used before, are cleared with [`memclr`](crate::memclr), outside every lock.
    /// Clearing makes every page of the usable part resident.
    ///
    /// # Errors
    /// As [`Stack::new`].
    pub fn new_zeroed(size: usize) -> Result<Stack, Error> {
        Stack::make(size, true)
    }

    fn make(size: usize, zeroed: bool) -> Result<Stack, Error> {
        crate::fork::note_use();
        let page = page_size();
        if size == 0 {
            return Err(Error::invalid_size("a stack of 0 bytes was requested"));
        }
        // The span (usable part, guard and rounding) must fit in an isize, as every Rust
        // allocation must: a larger request is refused here, before any system call.
        let fits = size
            .checked_add(own_guard_len(page) + SpanHeap::PAGE_SIZE + page)
            .is_some_and(|span| span <= isize::MAX as usize);
        if !fits {
            return Err(Error::invalid_size(format!(
                "a stack of {size} bytes does not fit in the address space with its guard"
            )));
        }
        let usable = size.next_multiple_of(page);
        let from_heap = heap_pages(usable, page)
            .and_then(|npages| stack_heap().take(usable, npages, zeroed).ok());
        let (bottom, len_and_origin) = match from_heap {
            Some(bottom) => (bottom, usable),
            None => (map_own(usable, page)?, usable | OWN_MAPPING),
        };
        let guard_start = bottom - guard_len(len_and_origin, page);
        let room = guard_start + GUARD_FLOOR.min(bottom - guard_start);
        // The usable part and the headroom, where a panic may run.
        let valgrind_id = crate::valgrind::stack_register(room, bottom + usable) as u32;
        // With the `asan` feature: a recycled stack's shadow may still hold its last user's
        // frame redzones, which the runtime's own uninstrumented frames (and the interceptors
        // that check them) would meet on the next user's stack; a stack is handed out clean.
        crate::sanitizer::unpoison(room, bottom + usable - room);
        let guard_slot =
            crate::guard::register(guard_start, bottom).map_or(NO_GUARD_SLOT, |slot| slot as u32);
        crate::signal::install_handler();
        Ok(Stack { bottom, len_and_origin, valgrind_id, guard_slot })
    }

    /// The highest address (exclusive) of the usable part: where a stack pointer starts. Page
    /// aligned, so 16-byte aligned.
    #[inline]
    pub fn top(&self) -> *mut u8 {
        (self.bottom + self.len()) as *mut u8
    }

    /// The lowest usable address, just above the guard region.
    #[inline]
    pub fn bottom(&self) -> *mut u8 {
        self.bottom as *mut u8
    }

    /// Usable bytes, between [`bottom`](Stack::bottom) and [`top`](Stack::top): the requested
    /// size rounded up to whole OS pages.
    #[allow(clippy::len_without_is_empty)] // a stack is never empty
    #[inline]
    pub fn len(&self) -> usize {
        self.len_and_origin & !(OWN_MAPPING | TRIMMED)
    }

    /// The guard region's address range `[start, end)`; `end` is [`bottom`](Stack::bottom). At
    /// least [`GUARD_SIZE`](crate::GUARD_SIZE) bytes, all of it reported by the overflow handler
    /// (see the layout above).
    #[inline]
    pub fn guard(&self) -> core::ops::Range<usize> {
        self.bottom - guard_len(self.len_and_origin, page_size())..self.bottom
    }

    /// Gives the pages of the usable part below its top [`TRIM_KEEP`] bytes back to the OS (they
    /// read as zero afterwards), and closes the guard's headroom if a panic opened it: what a
    /// stack that went deep pins is released, and its top stays resident for its next user.
    /// One `madvise` (two with an open headroom).
    ///
    /// # Safety
    /// Nothing runs on the stack, and nothing it holds below its top `TRIM_KEEP` bytes is live.
    pub(crate) unsafe fn trim(&self) {
        // SAFETY: the caller's contract.
        unsafe { trim_usable(self.bottom, self.len()) };
        self.close_headroom();
    }

    /// Records that the stack is trimmed ([`Stack::trim`]) and untouched since, for the free list
    /// that a drop then hands it to.
    pub(crate) fn mark_trimmed(&mut self) {
        self.len_and_origin |= TRIMMED;
    }

    /// Closes the guard's headroom if a panic opened it (see [`Stack`]); nothing may run in it.
    pub(crate) fn close_headroom(&self) {
        if self.guard_slot != NO_GUARD_SLOT {
            crate::guard::close_headroom(self.guard_slot as usize);
        }
    }

    /// Records what the stack serves as ([`Role`](crate::guard::Role)), for the overflow
    /// recovery and `coroutine_local`; nothing for a stack the registry had no slot for.
    pub(crate) fn set_role(&self, role: crate::guard::Role) {
        if self.guard_slot != NO_GUARD_SLOT {
            crate::guard::set_role(self.guard_slot as usize, self.top() as usize, role);
        }
    }

    /// Whether a panic on this stack has opened its guard's headroom (and it is not closed yet).
    pub fn headroom_open(&self) -> bool {
        self.guard_slot != NO_GUARD_SLOT && crate::guard::headroom_open(self.guard_slot as usize)
    }

    /// The counters of the process-wide heap stacks are carved from. Stacks waiting in the free
    /// list count as in use there; `bytes_zeroed` includes the usable parts of recycled stacks
    /// that [`Stack::new_zeroed`] cleared, `bytes_zeroing_skipped` the fresh pages it did not
    /// need to. Stacks mapped on their own are not counted.
    pub fn heap_stats() -> HeapStats {
        stack_heap().spans.stats()
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("bottom", &self.bottom())
            .field("len", &self.len())
            .field("own_mapping", &(self.len_and_origin & OWN_MAPPING != 0))
            .finish()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // The id this stack registered; the memory is released after this.
        crate::valgrind::stack_deregister(self.valgrind_id as usize);
        if self.guard_slot != NO_GUARD_SLOT {
            crate::guard::unregister(self.guard_slot as usize);
        }
        let len = self.len();
        // The dead frames of whatever ran on the stack are inaccessible to memcheck; whoever
        // takes the memory next may write anywhere in it (memclr for new_zeroed, a segment's
        // record at its top), so it is made accessible again, as uninitialised.
        crate::valgrind::make_mem_undefined(self.bottom, len);
        if self.len_and_origin & OWN_MAPPING != 0 {
            let guard = own_guard_len(page_size());
            // SAFETY: the mapping map_own made for this stack, which nothing uses any more.
            unsafe { libc::munmap((self.bottom - guard) as *mut libc::c_void, len + guard) };
        } else {
            stack_heap().release(self.bottom, len, self.len_and_origin & TRIMMED != 0);
        }
    }
}

/// Gives the pages of the usable part `[bottom, bottom + len)` below its top [`TRIM_KEEP`] bytes
/// back to the OS: they read as zero afterwards. One `madvise`, none for a stack no larger than
/// that.
///
/// # Safety
/// The range is a stack's usable part, and nothing it holds below its top `TRIM_KEEP` bytes is
/// live.
unsafe fn trim_usable(bottom: usize, len: usize) {
    if len > TRIM_KEEP {
        // SAFETY: the caller's contract.
        unsafe { libc::madvise(bottom as *mut libc::c_void, len - TRIM_KEEP, libc::MADV_DONTNEED) };
    }
}

/// The guard region of a stack mapped on its own: [`GUARD_SIZE`] in whole OS pages.
#[inline]
fn own_guard_len(page: usize) -> usize {
    GUARD_SIZE.next_multiple_of(page)
}

/// The guard region below a stack whose `len_and_origin` is given: the rest of its heap span, or
/// [`own_guard_len`] for a stack mapped on its own.
#[inline]
fn guard_len(len_and_origin: usize, page: usize) -> usize {
    if len_and_origin & OWN_MAPPING != 0 {
        own_guard_len(page)
    } else {
        let len = len_and_origin & !(OWN_MAPPING | TRIMMED);
        span_bytes(len) - len
    }
}

/// Heap pages in the span of a stack of `len` usable bytes (a multiple of `page`), or `None` if
/// it is to be mapped on its own: larger than an arena, or OS pages larger than heap pages.
#[inline]
fn heap_pages(len: usize, page: usize) -> Option<usize> {
    if page > SpanHeap::PAGE_SIZE {
        return None;
    }
    let bytes =
        len.checked_add(own_guard_len(page))?.checked_next_multiple_of(SpanHeap::PAGE_SIZE)?;
    (bytes <= ARENA_SIZE).then_some(bytes / SpanHeap::PAGE_SIZE)
}

/// A stack of `len` usable bytes mapped on its own, with its guard region below; returns its
/// bottom.
///
/// libc's `mmap` rather than memmap2 (which owns the span heap's arenas): owning the mapping
/// means keeping an `MmapMut` in the `Stack`, which doubles it to 48 bytes, and every `Stack`,
/// own mapping or not, moves through the pools and the segment records. Measured with a
/// `None` field of that type added: create + complete + drop of a pooled coroutine (gungraun,
/// benches/coroutine_instructions.rs) went from 190 to 212 instructions.
fn map_own(len: usize, page: usize) -> Result<usize, Error> {
    let guard = own_guard_len(page);
    // The caller has checked that this does not overflow.
    let total = len + guard;
    // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            total,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        let err = std::io::Error::last_os_error();
        return Err(Error::os(format!("mapping a stack of {len} bytes"), err));
    }
    // SAFETY: [base, base + guard) lies inside the mapping just made, which we own.
    if let Err(err) = unsafe { crate::guard::install(base as usize, guard) } {
        // SAFETY: the mapping just made; nothing refers to it.
        unsafe { libc::munmap(base, total) };
        return Err(Error::os("protecting a stack's guard region", err));
    }
    Ok(base as usize + guard)
}

/// The process-wide stack heap: spans, and the free list of guarded stacks in front of it.
struct StackHeap {
    spans: SpanHeap,
    /// Shared with the fork handlers, which take it around a `fork` (src/fork.rs).
    free: Arc<Mutex<FreeStacks>>,
}

/// Dropped stacks kept guarded for reuse: their bottoms, by usable length.
#[derive(Default)]
struct FreeStacks {
    /// One entry per length seen recently (an entry stays when it empties, so that a size that
    /// comes and goes does not allocate each time), at most [`FREE_SIZES_MAX`].
    sizes: Vec<FreeSize>,
    /// Stacks in all entries.
    count: usize,
    /// Usable bytes of the untrimmed ones.
    untrimmed: usize,
}

struct FreeSize {
    len: usize,
    /// Bottoms of free stacks of this length, most recently dropped last, each with
    /// [`TRIMMED_ENTRY`] set if the stack is trimmed.
    bottoms: Vec<usize>,
}

/// The bit of a free-list entry that marks a trimmed stack (bottoms are page aligned).
const TRIMMED_ENTRY: usize = 1;

/// What a free stack of `len` usable bytes counts against [`FREE_UNTRIMMED_BYTES_MAX`].
#[inline]
fn untrimmed_bytes(len: usize, trimmed: bool) -> usize {
    if trimmed {
        0
    } else {
        len
    }
}

/// The one-time setups every stack needs, done now if not yet (or finished, if another thread is
/// in the middle of one): the fork handlers call this before a fork.
pub(crate) fn set_up_once() {
    stack_heap();
    crate::signal::install_handler();
}

fn stack_heap() -> &'static StackHeap {
    static HEAP: OnceLock<StackHeap> = OnceLock::new();
    HEAP.get_or_init(|| {
        let free = Arc::new(Mutex::new(FreeStacks::default()));
        let weak: Weak<dyn ForkLock> = Arc::downgrade(&free) as Weak<Mutex<FreeStacks>>;
        crate::fork::register(weak);
        StackHeap { spans: SpanHeap::for_stacks(), free }
    })
}

/// Bytes in the span of a heap stack of `len` usable bytes: the usable part and its guard, in
/// whole heap pages.
#[inline]
fn span_bytes(len: usize) -> usize {
    (len + own_guard_len(page_size())).next_multiple_of(SpanHeap::PAGE_SIZE)
}

impl StackHeap {
    /// The free list, whose state is consistent between operations (poisoning is ignored).
    fn free_list(&self) -> MutexGuard<'_, FreeStacks> {
        self.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The bottom of a guarded stack of `len` usable bytes in a span of `npages`: a recycled one,
    /// or a new one carved from the heap (after emptying the free list into the heap, if the
    /// first attempt fails).
    fn take(&self, len: usize, npages: usize, zeroed: bool) -> Result<usize, Error> {
        // The lock is released before the stack is cleared.
        let recycled = self.free_list().pop(len);
        if let Some((bottom, trimmed)) = recycled {
            if zeroed {
                // A trimmed stack reads as zero below its top TRIM_KEEP bytes.
                let dirty = if trimmed { len.min(TRIM_KEEP) } else { len };
                // SAFETY: the usable part of a free stack, ours alone now, mapped read-write.
                unsafe { memclr_raw((bottom + len - dirty) as *mut u8, dirty) };
                self.spans.count_zeroed(dirty, len - dirty);
            }
            return Ok(bottom);
        }
        self.carve(len, npages, zeroed).or_else(|err| {
            if self.flush() > 0 {
                self.carve(len, npages, zeroed)
            } else {
                Err(err)
            }
        })
    }

    /// A new stack from the heap: the span's pages below `len` usable bytes become its guard.
    fn carve(&self, len: usize, npages: usize, zeroed: bool) -> Result<usize, Error> {
        let guard = npages * SpanHeap::PAGE_SIZE - len;
        let base = self.spans.alloc_raw(npages, zeroed.then_some(guard))?;
        // SAFETY: [base, base + guard) is in the span just carved, which nothing else uses.
        if let Err(err) = unsafe { crate::guard::install(base, guard) } {
            // SAFETY: the span just carved, whose guard is not installed.
            unsafe { self.spans.free_raw(base, npages, false) };
            return Err(Error::os("protecting a stack's guard region", err));
        }
        Ok(base + guard)
    }

    /// A dropped stack goes to the free list (trimmed first if it only fits that way), or back to
    /// the heap beyond the list's bounds.
    fn release(&self, bottom: usize, len: usize, trimmed: bool) {
        let mut evicted = Vec::new();
        let mut kept = self.free_list().push(bottom, len, trimmed, &mut evicted);
        if !kept && !trimmed && len > TRIM_KEEP {
            // SAFETY: a dropped stack, which nothing uses. Outside the lock: a system call.
            unsafe { trim_usable(bottom, len) };
            kept = self.free_list().push(bottom, len, true, &mut evicted);
        }
        // Outside the lock: each is a system call.
        for (other, other_len) in evicted {
            self.give_back(other, other_len);
        }
        if !kept {
            self.give_back(bottom, len);
        }
    }

    /// Makes the guard of the stack at `bottom` with `len` usable bytes readable again and frees
    /// its span to the heap, its pages given back to the OS first if it is at least
    /// [`RETURN_PAGES_MIN`] long. If the OS refuses to unguard it (it should not: this only
    /// merges mappings), the span is left out of the heap for good.
    fn give_back(&self, bottom: usize, len: usize) {
        let bytes = span_bytes(len);
        let guard = bytes - len;
        let base = bottom - guard;
        let npages = bytes / SpanHeap::PAGE_SIZE;
        // SAFETY: the guard of a span this heap handed out, which nothing uses any more.
        if unsafe { crate::guard::remove(base, guard) }.is_err() {
            return;
        }
        // SAFETY: as above; afterwards the span reads as zero.
        let zero = len >= RETURN_PAGES_MIN
            && unsafe { libc::madvise(base as *mut libc::c_void, bytes, libc::MADV_DONTNEED) } == 0;
        if zero {
            crate::valgrind::make_mem_defined(base, bytes);
        }
        // SAFETY: the span alloc_raw returned, not freed since, all readable and writable.
        unsafe { self.spans.free_raw(base, npages, zero) };
    }

    /// Empties the free list into the heap; returns how many stacks it held.
    fn flush(&self) -> usize {
        let sizes = {
            let mut free = self.free_list();
            free.count = 0;
            free.untrimmed = 0;
            std::mem::take(&mut free.sizes)
        };
        let mut flushed = 0;
        for size in sizes {
            for entry in size.bottoms {
                self.give_back(entry & !TRIMMED_ENTRY, size.len);
                flushed += 1;
            }
        }
        flushed
    }
}

impl FreeStacks {
    /// The most recently dropped free stack of `len` usable bytes: its bottom, and whether it is
    /// trimmed.
    fn pop(&mut self, len: usize) -> Option<(usize, bool)> {
        let size = self.sizes.iter_mut().find(|s| s.len == len)?;
        let entry = size.bottoms.pop()?;
        let trimmed = entry & TRIMMED_ENTRY != 0;
        self.count -= 1;
        self.untrimmed -= untrimmed_bytes(len, trimmed);
        Some((entry & !TRIMMED_ENTRY, trimmed))
    }

    /// Keeps a dropped stack; returns whether it was kept. An untrimmed stack that would pass
    /// [`FREE_UNTRIMMED_BYTES_MAX`] is not kept (the caller trims it and offers it again). When
    /// the list holds [`FREE_STACKS_MAX`] stacks, free stacks of other sizes make room (the
    /// oldest of the size with the most), so that the sizes in use win over the ones a past
    /// burst left behind; those go into `evicted` (bottom and length), for the caller to give
    /// back to the heap. Without other sizes to give up, the stack itself is not kept.
    fn push(
        &mut self,
        bottom: usize,
        len: usize,
        trimmed: bool,
        evicted: &mut Vec<(usize, usize)>,
    ) -> bool {
        let bytes = untrimmed_bytes(len, trimmed);
        if self.untrimmed + bytes > FREE_UNTRIMMED_BYTES_MAX {
            return false;
        }
        while self.count >= FREE_STACKS_MAX {
            let victim = self
                .sizes
                .iter_mut()
                .filter(|s| s.len != len && !s.bottoms.is_empty())
                .max_by_key(|s| s.bottoms.len());
            let Some(victim) = victim else {
                return false;
            };
            let oldest = victim.bottoms.remove(0);
            let victim_len = victim.len;
            self.count -= 1;
            self.untrimmed -= untrimmed_bytes(victim_len, oldest & TRIMMED_ENTRY != 0);
            evicted.push((oldest & !TRIMMED_ENTRY, victim_len));
        }
        let index = match self.sizes.iter().position(|s| s.len == len) {
            Some(index) => index,
            None => {
                if self.sizes.len() >= FREE_SIZES_MAX {
                    match self.sizes.iter().position(|s| s.bottoms.is_empty()) {
                        Some(empty) => drop(self.sizes.swap_remove(empty)),
                        None => return false,
                    }
                }
                self.sizes.push(FreeSize { len, bottoms: Vec::new() });
                self.sizes.len() - 1
            }
        };
        self.sizes[index].bottoms.push(bottom | (usize::from(trimmed) * TRIMMED_ENTRY));
        self.count += 1;
        self.untrimmed += bytes;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    #[test]
    fn an_own_mappings_guard_is_the_guard_size_in_whole_pages() {
        assert_eq!(own_guard_len(PAGE), GUARD_SIZE);
        assert_eq!(own_guard_len(64 * 1024), GUARD_SIZE.next_multiple_of(64 * 1024));
        assert_eq!(own_guard_len(1 << 20), 1 << 20);
    }

    #[test]
    fn a_heap_span_rounds_the_stack_and_its_guard_up_to_whole_heap_pages() {
        let heap_page = SpanHeap::PAGE_SIZE;
        for len in [PAGE, 16 * 1024, 1 << 20, (1 << 20) + PAGE, 3 * heap_page + PAGE] {
            let npages = heap_pages(len, PAGE).expect("fits an arena");
            let bytes = npages * heap_page;
            assert!(bytes >= len + GUARD_SIZE, "{len}: {bytes}");
            assert!(bytes - (len + GUARD_SIZE) < heap_page, "{len}: {bytes}");
        }
    }

    #[test]
    fn a_heap_stacks_guard_takes_the_rest_of_its_span() {
        for len in [PAGE, 5 * PAGE, 1 << 20] {
            let guard = guard_len(len, PAGE);
            assert!(guard >= GUARD_SIZE);
            assert_eq!((len + guard) % SpanHeap::PAGE_SIZE, 0, "{len}");
            assert_eq!(guard_len(len | TRIMMED, PAGE), guard, "the trimmed bit is not a size");
        }
        assert_eq!(guard_len((5 * PAGE) | OWN_MAPPING, PAGE), own_guard_len(PAGE));
    }

    #[test]
    fn stacks_too_large_for_an_arena_or_for_heap_pages_are_mapped_on_their_own() {
        assert_eq!(heap_pages(ARENA_SIZE, PAGE), None);
        assert_eq!(heap_pages(usize::MAX - PAGE + 1, PAGE), None, "no overflow");
        assert_eq!(heap_pages(PAGE, SpanHeap::PAGE_SIZE * 2), None, "OS pages above heap pages");
    }

    #[test]
    fn only_untrimmed_free_stacks_count_against_the_byte_bound() {
        assert_eq!(untrimmed_bytes(1 << 20, false), 1 << 20);
        assert_eq!(untrimmed_bytes(1 << 20, true), 0);
    }
}
