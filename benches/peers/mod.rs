//! The ping-pongs both switch benches run: one suspended echo coroutine per library, resumed
//! with a word and answering with `answer(word)`. Shared by `switch.rs` (time) and
//! `switch_instructions.rs` (instruction counts) so that both measure the same code.
#![allow(dead_code)] // each bench uses its own subset

pub mod create;

/// What the coroutine side answers to `v`, in every library.
#[inline(always)]
pub fn answer(v: usize) -> usize {
    v.wrapping_add(1)
}

/// Usable stack size for the libraries that take one.
pub const STACK_SIZE: usize = 64 * 1024;

pub mod splitstack_ping_pong {
    use super::answer;
    use splitstack::{prepare, swap, swap_out_of_line, Gobuf, Stack};
    use std::ptr::{addr_of, addr_of_mut};

    /// The two contexts of the ping-pong: the bench's own and the echo's.
    struct Pair {
        main: Gobuf,
        co: Gobuf,
    }

    /// A suspended echo coroutine on its own [`Stack`]. With `OUTLINED`, both sides switch through
    /// [`swap_out_of_line`] (a call to the one assembly routine) instead of [`swap`] (the switch
    /// inlined at each call site). With `FPCW`, every switch of both sides
    /// preserves the floating-point control state (see [`fp_control`]).
    pub struct PingPong<const FPCW: bool, const OUTLINED: bool> {
        /// Boxed and held as a raw pointer: the echo writes to it while the bench runs, so no
        /// reference to it may stay live across a switch, and it must not move.
        pair: *mut Pair,
        _stack: Stack,
    }

    impl<const FPCW: bool, const OUTLINED: bool> PingPong<FPCW, OUTLINED> {
        /// Prepare the echo on a fresh stack and start it: it runs up to its first suspension.
        pub fn new(stack_size: usize) -> Self {
            let stack = Stack::new(stack_size).expect("mapping the echo's stack");
            let pair =
                Box::into_raw(Box::new(Pair { main: Gobuf::default(), co: Gobuf::default() }));
            // SAFETY: `pair` is valid until drop; the stack outlives every switch into it (both
            // are dropped together, after the last); `echo::<FPCW, OUTLINED>` never returns.
            unsafe {
                prepare(&mut *addr_of_mut!((*pair).co), &stack, echo::<FPCW, OUTLINED>);
                switch::<FPCW, OUTLINED>(pair, true, pair as usize);
            }
            PingPong { pair, _stack: stack }
        }

        /// Resume the echo with `v`; returns its answer.
        #[inline(always)]
        pub fn round_trip(&mut self, v: usize) -> usize {
            // SAFETY: the echo is suspended in its own `switch` (started in `new`).
            unsafe { switch::<FPCW, OUTLINED>(self.pair, true, v) }
        }
    }

    impl<const FPCW: bool, const OUTLINED: bool> Drop for PingPong<FPCW, OUTLINED> {
        fn drop(&mut self) {
            // The echo stays suspended for good: nothing on its stack owns anything, and the
            // stack is unmapped after this.
            // SAFETY: `pair` came from Box::into_raw in `new` and nothing resumes the echo again.
            drop(unsafe { Box::from_raw(self.pair) });
        }
    }

    /// Switch to the other side through raw pointers (see tests/switch.rs): the references made
    /// here live only for the call's argument passing.
    ///
    /// # Safety
    /// `pair` is valid and the context switched to is suspended or freshly prepared.
    #[inline(always)]
    unsafe fn switch<const FPCW: bool, const OUTLINED: bool>(
        pair: *mut Pair,
        to_co: bool,
        arg: usize,
    ) -> usize {
        let mut saved = core::mem::MaybeUninit::<fp_control::Saved>::uninit();
        if FPCW {
            // SAFETY: `saved` is writable; it is read back below, on this side of the switch.
            unsafe { fp_control::save(saved.as_mut_ptr()) };
        }
        // SAFETY: forwarded contract.
        let ret = unsafe {
            let (save, resume) = if to_co {
                (&mut *addr_of_mut!((*pair).main), &*addr_of!((*pair).co))
            } else {
                (&mut *addr_of_mut!((*pair).co), &*addr_of!((*pair).main))
            };
            if OUTLINED {
                swap_out_of_line(save, resume, arg)
            } else {
                swap(save, resume, arg)
            }
        };
        if FPCW {
            // SAFETY: `saved` was filled by `save` above, on this thread.
            unsafe { fp_control::restore(saved.as_ptr()) };
        }
        ret
    }

    /// The echo: started with the Pair's address, answers every word it is resumed with.
    unsafe extern "C" fn echo<const FPCW: bool, const OUTLINED: bool>(arg: usize) -> ! {
        let pair = arg as *mut Pair;
        // SAFETY: the PingPong keeps the Pair alive while this context can run.
        let mut v = unsafe { switch::<FPCW, OUTLINED>(pair, false, 0) };
        loop {
            // SAFETY: as above.
            v = unsafe { switch::<FPCW, OUTLINED>(pair, false, answer(v)) };
        }
    }

    /// Save and restore the floating-point control state a switch would preserve, through one
    /// stack slot, as an assembly switch would.
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    mod fp_control {
        use std::arch::asm;

        /// MXCSR, then the x87 control word.
        #[repr(C)]
        pub struct Saved {
            mxcsr: u32,
            fpcw: u16,
        }

        /// # Safety
        /// `saved` is valid for writes.
        #[inline(always)]
        pub unsafe fn save(saved: *mut Saved) {
            // SAFETY: stores 4 and 2 bytes into `*saved`; changes nothing else.
            unsafe {
                asm!(
                    "stmxcsr [{saved}]",  // Saved.mxcsr
                    "fnstcw [{saved} + 4]", // Saved.fpcw
                    saved = in(reg) saved,
                    options(nostack, preserves_flags),
                );
            }
        }

        /// # Safety
        /// `saved` was filled by [`save`] on this thread.
        #[inline(always)]
        pub unsafe fn restore(saved: *const Saved) {
            // SAFETY: reloads control state saved by `save` on this same thread.
            unsafe {
                asm!(
                    "ldmxcsr [{saved}]",  // Saved.mxcsr
                    "fldcw [{saved} + 4]", // Saved.fpcw
                    saved = in(reg) saved,
                    options(nostack, preserves_flags, readonly),
                );
            }
        }
    }

    /// Save and restore the floating-point control state a switch would preserve.
    #[cfg(target_arch = "aarch64")]
    mod fp_control {
        use std::arch::asm;

        /// FPCR (AArch64 has one control register where x86-64 has MXCSR and the x87 word).
        pub struct Saved(u64);

        /// # Safety
        /// `saved` is valid for writes.
        #[inline(always)]
        pub unsafe fn save(saved: *mut Saved) {
            let fpcr: u64;
            // SAFETY: reads a system register.
            unsafe {
                asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack, preserves_flags));
                saved.write(Saved(fpcr));
            }
        }

        /// # Safety
        /// `saved` was filled by [`save`] on this thread.
        #[inline(always)]
        pub unsafe fn restore(saved: *const Saved) {
            // SAFETY: writes back a value read by `save` on this same thread.
            unsafe {
                let fpcr = (*saved).0;
                asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack, preserves_flags));
            }
        }
    }

    /// Save and restore the floating-point control state a switch would preserve.
    #[cfg(target_arch = "arm")]
    mod fp_control {
        use std::arch::asm;

        /// FPSCR (32-bit ARM's VFP status and control register: rounding mode, flush-to-zero).
        pub struct Saved(u32);

        /// # Safety
        /// `saved` is valid for writes.
        #[inline(always)]
        pub unsafe fn save(saved: *mut Saved) {
            let fpscr: u32;
            // SAFETY: reads a VFP system register.
            unsafe {
                asm!("vmrs {}, fpscr", out(reg) fpscr, options(nomem, nostack, preserves_flags));
                saved.write(Saved(fpscr));
            }
        }

        /// # Safety
        /// `saved` was filled by [`save`] on this thread.
        #[inline(always)]
        pub unsafe fn restore(saved: *const Saved) {
            // SAFETY: writes back a value read by `save` on this same thread.
            unsafe {
                let fpscr = (*saved).0;
                asm!("vmsr fpscr, {}", in(reg) fpscr, options(nomem, nostack, preserves_flags));
            }
        }
    }

    /// Save and restore the floating-point control state a switch would preserve.
    #[cfg(target_arch = "riscv64")]
    mod fp_control {
        use std::arch::asm;

        /// fcsr: the rounding mode (frm) and the accrued exception flags (fflags), RISC-V's one
        /// floating-point control and status register.
        pub struct Saved(u64);

        /// # Safety
        /// `saved` is valid for writes.
        #[inline(always)]
        pub unsafe fn save(saved: *mut Saved) {
            let fcsr: u64;
            // SAFETY: reads a CSR.
            unsafe {
                asm!("frcsr {}", out(reg) fcsr, options(nomem, nostack, preserves_flags));
                saved.write(Saved(fcsr));
            }
        }

        /// # Safety
        /// `saved` was filled by [`save`] on this thread.
        #[inline(always)]
        pub unsafe fn restore(saved: *const Saved) {
            // SAFETY: writes back a value read by `save` on this same thread.
            unsafe {
                let fcsr = (*saved).0;
                asm!("fscsr {}", in(reg) fcsr, options(nomem, nostack, preserves_flags));
            }
        }
    }
}

pub mod corosensei_ping_pong {
    use super::answer;
    use corosensei::{Coroutine, CoroutineResult, Yielder};

    /// A suspended corosensei echo on corosensei's default stack.
    pub struct PingPong(Coroutine<usize, usize, ()>);

    impl PingPong {
        pub fn new() -> Self {
            let mut co = Coroutine::new(|yielder: &Yielder<usize, usize>, mut v: usize| loop {
                v = yielder.suspend(answer(v));
            });
            co.resume(0);
            PingPong(co)
        }

        #[inline(always)]
        pub fn round_trip(&mut self, v: usize) -> usize {
            match self.0.resume(v) {
                CoroutineResult::Yield(v) => v,
                CoroutineResult::Return(()) => unreachable!("the echo never returns"),
            }
        }
    }
}

/// boost.context's fcontext through the `context` crate, which has no RISC-V port (Cargo.toml
/// leaves it out there, and the benches run without this peer).
#[cfg(not(target_arch = "riscv64"))]
pub mod context_ping_pong {
    use super::answer;
    use context::stack::ProtectedFixedSizeStack;
    use context::{Context, Transfer};

    /// A suspended echo on a `context` (boost.context fcontext) stack.
    pub struct PingPong {
        /// The echo's context; `None` only during a round trip.
        co: Option<Context>,
        _stack: ProtectedFixedSizeStack,
    }

    extern "C" fn echo(mut t: Transfer) -> ! {
        loop {
            // SAFETY: `t.context` is the suspended caller, resumed once.
            t = unsafe { t.context.resume(answer(t.data)) };
        }
    }

    impl PingPong {
        pub fn new(stack_size: usize) -> Self {
            let stack = ProtectedFixedSizeStack::new(stack_size).expect("mapping the echo's stack");
            // SAFETY: the stack outlives the context (both dropped together, after the last
            // switch); `echo` never returns.
            let t = unsafe { Context::new(&stack, echo).resume(0) };
            PingPong { co: Some(t.context), _stack: stack }
        }

        #[inline(always)]
        pub fn round_trip(&mut self, v: usize) -> usize {
            let co = self.co.take().expect("the echo is suspended");
            // SAFETY: `co` is the suspended echo, resumed once.
            let t = unsafe { co.resume(v) };
            self.co = Some(t.context);
            t.data
        }
    }
}

pub mod generator_ping_pong {
    use super::answer;
    use generator::{Generator, Gn};

    /// A suspended `generator` echo on its default stack.
    pub struct PingPong(Generator<'static, usize, usize>);

    impl PingPong {
        pub fn new() -> Self {
            let mut g = Gn::<usize>::new_scoped(|mut s| {
                let mut v = s.get_yield().unwrap_or(0);
                loop {
                    v = s.yield_(answer(v)).unwrap_or(0);
                }
            });
            g.send(0);
            PingPong(g)
        }

        #[inline(always)]
        pub fn round_trip(&mut self, v: usize) -> usize {
            self.0.send(v)
        }
    }
}
