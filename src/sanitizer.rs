//! AddressSanitizer's fiber annotations (the `asan` feature): every switch to another stack is
//! announced with `__sanitizer_start_switch_fiber` and completed with
//! `__sanitizer_finish_switch_fiber`, so that ASan tracks which stack is current, keeps each
//! context's fake stack (for use-after-return detection) apart, and does not mistake a switch
//! for a huge stack frame. Without the feature every function here is empty and inlined away.
//!
//! The protocol, for a switch from context A to context B:
//! - A calls [`start_switch`] with B's stack bounds, keeping its fake-stack handle (or none, if
//!   A will never run again);
//! - B, once running, calls [`finish_switch`] with the handle B kept when it last switched away
//!   (none on B's first run), and learns A's stack bounds.

/// A context's fake-stack handle, kept while it is switched away. Zero-sized without the
/// `asan` feature, so that the records holding it cost nothing then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FakeStack(#[cfg(feature = "asan")] *mut core::ffi::c_void);

impl FakeStack {
    /// No fake stack: a context that runs for the first time, or will not run again.
    #[cfg(feature = "asan")]
    pub(crate) const NONE: FakeStack = FakeStack(core::ptr::null_mut());
    /// No fake stack: a context that runs for the first time, or will not run again.
    #[cfg(not(feature = "asan"))]
    pub(crate) const NONE: FakeStack = FakeStack();
}

/// A stack as ASan sees it: its lowest address and its size. Zero-sized without the `asan`
/// feature.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StackBounds {
    #[cfg(feature = "asan")]
    bottom: usize,
    #[cfg(feature = "asan")]
    size: usize,
}

impl StackBounds {
    /// The stack `[bottom, bottom + size)`.
    #[inline(always)]
    pub(crate) fn new(bottom: usize, size: usize) -> StackBounds {
        #[cfg(not(feature = "asan"))]
        let _ = (bottom, size);
        StackBounds {
            #[cfg(feature = "asan")]
            bottom,
            #[cfg(feature = "asan")]
            size,
        }
    }
}

cfg_if::cfg_if! {
    if #[cfg(feature = "asan")] {
        extern "C" {
            fn __sanitizer_start_switch_fiber(
                fake_stack_save: *mut *mut core::ffi::c_void,
                bottom: *const core::ffi::c_void,
                size: usize,
            );
            fn __sanitizer_finish_switch_fiber(
                fake_stack_save: *mut core::ffi::c_void,
                bottom_old: *mut *const core::ffi::c_void,
                size_old: *mut usize,
            );
            fn __asan_unpoison_memory_region(addr: *const core::ffi::c_void, size: usize);
        }

        /// Clears ASan's poisoning of `[addr, addr + size)`: a recycled stack's top, which the
        /// frames of its last context may have left poisoned (their scopes' poison stays when a
        /// context is abandoned rather than returned from), before a new context's record is
        /// written there.
        #[inline(always)]
        pub(crate) fn unpoison(addr: usize, size: usize) {
            // SAFETY: ASan's documented interface; the range is memory we own.
            unsafe { __asan_unpoison_memory_region(addr as *const _, size) };
        }

        /// Announces a switch to the stack `to`. With `keep`, the current context's fake stack
        /// is saved there for its return; without, the current context is ending.
        #[inline(always)]
        pub(crate) fn start_switch(keep: Option<&mut FakeStack>, to: StackBounds) {
            let save = match keep {
                Some(fake) => &mut fake.0 as *mut *mut core::ffi::c_void,
                None => core::ptr::null_mut(),
            };
            // SAFETY: ASan's documented fiber API, called just before the switch.
            unsafe { __sanitizer_start_switch_fiber(save, to.bottom as *const _, to.size) };
        }

        /// Completes a switch on the new stack, with the fake stack this context kept when it
        /// switched away; returns the bounds of the stack switched from.
        #[inline(always)]
        pub(crate) fn finish_switch(kept: FakeStack) -> StackBounds {
            let mut bottom: *const core::ffi::c_void = core::ptr::null();
            let mut size = 0;
            // SAFETY: ASan's documented fiber API, called just after the switch.
            unsafe { __sanitizer_finish_switch_fiber(kept.0, &mut bottom, &mut size) };
            StackBounds::new(bottom as usize, size)
        }
    } else {
        /// Without the `asan` feature: nothing to announce.
        #[inline(always)]
        pub(crate) fn start_switch(_keep: Option<&mut FakeStack>, _to: StackBounds) {}

        /// Without the `asan` feature: nothing to complete.
        #[inline(always)]
        pub(crate) fn finish_switch(_kept: FakeStack) -> StackBounds {
            StackBounds::default()
        }

        /// Without the `asan` feature: nothing is poisoned.
        #[inline(always)]
        pub(crate) fn unpoison(_addr: usize, _size: usize) {}
    }
}

/// ThreadSanitizer's fiber handle for one side of a coroutine switch (the `tsan` feature): each
/// coroutine runs as a TSan fiber of its own, so that TSan keeps a separate shadow call stack per
/// coroutine, and each switch is announced with `__tsan_switch_to_fiber` just before it happens.
/// Switches synchronize (flag 0): both sides run on one thread, one after the other. Segments
/// need no fiber: a split is a call and a return on the same logical stack. Zero-sized without
/// the feature.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fiber(#[cfg(feature = "tsan")] *mut core::ffi::c_void);

cfg_if::cfg_if! {
    if #[cfg(feature = "tsan")] {
        extern "C" {
            fn __tsan_get_current_fiber() -> *mut core::ffi::c_void;
            fn __tsan_create_fiber(flags: core::ffi::c_uint) -> *mut core::ffi::c_void;
            fn __tsan_destroy_fiber(fiber: *mut core::ffi::c_void);
            fn __tsan_switch_to_fiber(fiber: *mut core::ffi::c_void, flags: core::ffi::c_uint);
        }

        impl Fiber {
            /// A new fiber, for a coroutine that has not run yet.
            #[inline(always)]
            pub(crate) fn create() -> Fiber {
                // SAFETY: TSan's documented fiber API.
                Fiber(unsafe { __tsan_create_fiber(0) })
            }

            /// The fiber running now (the resumer's, at a resume).
            #[inline(always)]
            pub(crate) fn current() -> Fiber {
                // SAFETY: TSan's documented fiber API.
                Fiber(unsafe { __tsan_get_current_fiber() })
            }

            /// Announces the switch to this fiber, just before it happens.
            #[inline(always)]
            pub(crate) fn switch_to(self) {
                // SAFETY: TSan's documented fiber API; the fiber is live.
                unsafe { __tsan_switch_to_fiber(self.0, 0) }
            }

            /// Frees a coroutine's fiber once the coroutine runs no more (not the current one).
            #[inline(always)]
            pub(crate) fn destroy(self) {
                // SAFETY: TSan's documented fiber API; created by `create`, destroyed once.
                unsafe { __tsan_destroy_fiber(self.0) }
            }
        }
    } else {
        impl Fiber {
            /// Without the `tsan` feature: nothing.
            #[inline(always)]
            pub(crate) fn create() -> Fiber {
                Fiber()
            }

            /// Without the `tsan` feature: nothing.
            #[inline(always)]
            pub(crate) fn current() -> Fiber {
                Fiber()
            }

            /// Without the `tsan` feature: nothing.
            #[inline(always)]
            pub(crate) fn switch_to(self) {}

            /// Without the `tsan` feature: nothing.
            #[inline(always)]
            pub(crate) fn destroy(self) {}
        }
    }
}
