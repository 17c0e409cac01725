//! Context switching: values both ways, callee-saved registers, entry alignment, deep recursion
//! on a prepared stack.

use splitstack::{gogo, gosave, prepare, swap, Gobuf, Stack};
use std::ptr::{addr_of, addr_of_mut};

/// The two contexts of a ping-pong: the test's own and the one running on `stack`.
struct Pair {
    main: Gobuf,
    co: Gobuf,
}

/// Switch from `from` to `to` through raw pointers, so that no reference to either buffer stays
/// live while the other context runs and writes to them.
unsafe fn switch(pair: *mut Pair, to_co: bool, arg: usize) -> usize {
    // SAFETY: the caller keeps `pair` valid and both contexts set; the references below live only
    // for this call's argument passing.
    unsafe {
        if to_co {
            swap(&mut *addr_of_mut!((*pair).main), &*addr_of!((*pair).co), arg)
        } else {
            swap(&mut *addr_of_mut!((*pair).co), &*addr_of!((*pair).main), arg)
        }
    }
}

/// The other side of the ping-pong: started with the Pair's address, answers every n with 2n+1.
unsafe extern "C" fn echo_entry(arg: usize) -> ! {
    let pair = arg as *mut Pair;
    // SAFETY: the test keeps the Pair alive while this context can run.
    let mut value = unsafe { switch(pair, false, 0) };
    loop {
        // SAFETY: as above.
        value = unsafe { switch(pair, false, value.wrapping_mul(2).wrapping_add(1)) };
    }
}

#[test]
fn ping_pong_a_million_times_passes_values_both_ways() {
    let stack = Stack::new(64 * 1024).unwrap();
    let mut pair = Pair { main: Gobuf::default(), co: Gobuf::default() };
    let p: *mut Pair = &mut pair;
    // SAFETY: the stack outlives every switch into it; echo_entry never returns.
    unsafe {
        prepare(&mut *addr_of_mut!((*p).co), &stack, echo_entry);
        assert_eq!(switch(p, true, p as usize), 0);
        for i in 0..1_000_000usize {
            let value = i.wrapping_mul(0x9e37_79b9_7f4a_7c15_u64 as usize);
            assert_eq!(switch(p, true, value), value.wrapping_mul(2).wrapping_add(1));
        }
    }
}

#[test]
fn gogo_delivers_its_word_to_the_resumed_context() {
    static mut BACK: Gobuf = Gobuf::new_empty();
    unsafe extern "C" fn entry(arg: usize) -> ! {
        // SAFETY: BACK was saved by the test's swap below, whose frame is still live.
        unsafe { gogo(&*addr_of!(BACK), arg + 1) }
    }
    let stack = Stack::new(16 * 1024).unwrap();
    let mut co = Gobuf::default();
    // SAFETY: entry resumes BACK exactly once, while the swap below is suspended.
    let got = unsafe {
        prepare(&mut co, &stack, entry);
        swap(&mut *addr_of_mut!(BACK), &co, 41)
    };
    assert_eq!(got, 42);
}

/// Recurses `depth` levels with a frame of at least 256 bytes each, returning a checksum.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 32]);
    if depth == 0 {
        return 0;
    }
    frame[(depth % 32) as usize] + recurse(depth - 1)
}

#[test]
fn deep_recursion_fits_in_a_one_mebibyte_stack() {
    static mut BACK: Gobuf = Gobuf::new_empty();
    unsafe extern "C" fn entry(depth: usize) -> ! {
        let sum = recurse(depth as u64) as usize;
        // SAFETY: BACK is the test's suspended swap.
        unsafe { gogo(&*addr_of!(BACK), sum) }
    }
    let stack = Stack::new(1 << 20).unwrap();
    assert_eq!(stack.len(), 1 << 20);
    let mut co = Gobuf::default();
    // 1,000 frames of at least 256 bytes each: over a quarter of the stack.
    let depth = 1_000usize;
    // SAFETY: entry resumes BACK once, while the swap is suspended.
    let sum = unsafe {
        prepare(&mut co, &stack, entry);
        swap(&mut *addr_of_mut!(BACK), &co, depth)
    };
    assert_eq!(sum as u64, (1..=depth as u64).sum::<u64>());
}

#[test]
fn gosave_returns_zero_then_the_word_of_each_gogo() {
    let mut buf = Gobuf::default();
    // SAFETY: buf is resumed only while this function runs, and between the two returns
    // nothing is moved, dropped or changed (gosave's contract): the code after the call depends
    // only on the returned word. (Counting the returns in a local would break that contract:
    // the compiler, which sees one return, may fold the count to 1.)
    let word = unsafe { gosave(&mut buf) };
    if word == 0 {
        assert!(buf.is_set());
        // SAFETY: as above; this frame, which gosave saved, is still live.
        unsafe { gogo(&buf, 99) };
    }
    assert_eq!(word, 99);
}
