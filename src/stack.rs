//! Guard-paged stacks: an anonymous mapping whose lowest page(s) are inaccessible.

use crate::arch;
use crate::error::Error;
use memmap2::{MmapMut, MmapOptions};
use std::sync::atomic::{AtomicUsize, Ordering};

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
    // The x86-64 base page is 4 KiB by the architecture; AArch64 kernels use 4, 16 or 64 KiB.
    if cfg!(target_arch = "x86_64") {
        return 4096;
    }
    match PAGE_SIZE.load(Ordering::Relaxed) {
        0 => read(),
        size => size,
    }
}

/// A stack for a context: an anonymous private mapping with one inaccessible guard page below the
/// usable part, so that running off the bottom faults instead of writing into a neighbour.
///
/// ```text
///   top()    -> +-----------------+  page aligned (so 16-byte aligned)
///               |  usable: len()  |  stacks grow down
///   bottom() -> +-----------------+
///               |  guard page     |  PROT_NONE
///               +-----------------+  start of the mapping
/// ```
///
/// Dropping a `Stack` unmaps it. It is registered with valgrind (when running under it) for its
/// whole life, and its guard page is known to splitstack's overflow handler, which reports a
/// fault there as a stack overflow.
#[derive(Debug)]
pub struct Stack {
    map: MmapMut,
    /// valgrind's id for the stack (0 outside valgrind, which numbers stacks from 1).
    valgrind_id: u32,
    /// The overflow registry's slot for the guard page, or [`NO_GUARD_SLOT`].
    guard_slot: u32,
}

/// `Stack::guard_slot` when the registry was full (the overflow is then reported by the previous
/// handler). Three words in all keep a `Stack` cheap to move in and out of the caches.
const NO_GUARD_SLOT: u32 = u32::MAX;

impl Stack {
    /// Map a stack with at least `size` usable bytes (rounded up to whole pages) above a guard
    /// page.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSize`](crate::ErrorKind::InvalidSize) for a size of 0 or one whose page
    /// rounding or guard overflows; [`ErrorKind::OutOfMemory`](crate::ErrorKind::OutOfMemory) or
    /// [`ErrorKind::MapCountLimit`](crate::ErrorKind::MapCountLimit) when the OS refuses.
    pub fn new(size: usize) -> Result<Stack, Error> {
        let page = page_size();
        if size == 0 {
            return Err(Error::invalid_size("a stack of 0 bytes was requested"));
        }
        let usable = size.checked_next_multiple_of(page).ok_or_else(|| {
            Error::invalid_size(format!(
                "stack size {size} overflows when rounded up to whole pages"
            ))
        })?;
        let total = usable.checked_add(page).ok_or_else(|| {
            Error::invalid_size(format!("stack size {size} overflows when its guard page is added"))
        })?;
        let map = MmapOptions::new()
            .len(total)
            .stack()
            .map_anon()
            .map_err(|e| Error::os(format!("mapping a stack of {usable} bytes"), e))?;
        let base = map.as_ptr() as *mut libc::c_void;
        // SAFETY: [base, base + page) lies inside the mapping just made, which we own.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            let err = std::io::Error::last_os_error();
            return Err(Error::os("protecting a stack's guard page", err));
        }
        let bottom = map.as_ptr() as usize + page;
        // SAFETY: registers an address range with valgrind; no memory is touched.
        let valgrind_id =
            unsafe { arch::splitstack_valgrind_stack_register(bottom, bottom + usable) } as u32;
        let guard_slot =
            crate::guard::register(map.as_ptr() as usize).map_or(NO_GUARD_SLOT, |slot| slot as u32);
        crate::guard::install_handler();
        Ok(Stack { map, valgrind_id, guard_slot })
    }

    /// The highest address (exclusive) of the usable part: where a stack pointer starts. Page
    /// aligned, so 16-byte aligned.
    #[inline]
    pub fn top(&self) -> *mut u8 {
        self.map.as_ptr().wrapping_add(self.map.len()) as *mut u8
    }

    /// The lowest usable address, just above the guard page.
    #[inline]
    pub fn bottom(&self) -> *mut u8 {
        self.map.as_ptr().wrapping_add(page_size()) as *mut u8
    }

    /// Usable bytes, between [`bottom`](Stack::bottom) and [`top`](Stack::top).
    #[allow(clippy::len_without_is_empty)] // a stack is never empty
    #[inline]
    pub fn len(&self) -> usize {
        self.map.len() - page_size()
    }

    /// The guard page's address range `[start, end)`; `end` is [`bottom`](Stack::bottom).
    #[inline]
    pub fn guard(&self) -> core::ops::Range<usize> {
        let start = self.map.as_ptr() as usize;
        start..start + page_size()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: forgets an id this stack registered; the mapping is unmapped after this.
        unsafe { arch::splitstack_valgrind_stack_deregister(self.valgrind_id as usize) };
        if self.guard_slot != NO_GUARD_SLOT {
            crate::guard::unregister(self.guard_slot as usize);
        }
    }
}
