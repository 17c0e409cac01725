//! `Stack`: sizes, rounding, bounds, the guard page, and bad input.

use splitstack::{page_size, ErrorKind, Stack};

#[test]
fn sizes_round_up_to_whole_pages_and_bounds_are_consistent() {
    let page = page_size();
    for (asked, expected) in [
        (1, page),
        (page, page),
        (page + 1, 2 * page),
        (12_345, 12_345usize.next_multiple_of(page)),
    ] {
        let stack = Stack::new(asked).unwrap();
        assert_eq!(stack.len(), expected, "asked for {asked}");
        assert_eq!(stack.top() as usize - stack.bottom() as usize, expected);
        assert_eq!(stack.top() as usize % 16, 0, "top must be 16-byte aligned");
        assert_eq!(stack.guard().end, stack.bottom() as usize);
        assert_eq!(stack.guard().len(), page);
        // The usable part is writable from bottom to top.
        // SAFETY: both bytes lie inside the usable part of a live mapping.
        unsafe {
            stack.bottom().write(1);
            stack.top().sub(1).write(2);
            assert_eq!(stack.bottom().read() + stack.top().sub(1).read(), 3);
        }
    }
}

#[test]
fn bad_sizes_are_errors_that_say_why() {
    let page = page_size();
    let zero = Stack::new(0).unwrap_err();
    assert_eq!(zero.kind(), ErrorKind::InvalidSize);
    assert!(zero.to_string().contains("0 bytes"), "{zero}");
    for size in [usize::MAX, usize::MAX - 1, usize::MAX - page + 2] {
        let err = Stack::new(size).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSize, "size {size}: {err}");
        assert!(err.to_string().contains("overflows"), "{err}");
    }
    // Rounds to the last page: the guard page is what overflows.
    let edge = Stack::new(usize::MAX - page + 1).unwrap_err();
    assert_eq!(edge.kind(), ErrorKind::InvalidSize);
    assert!(edge.to_string().contains("guard"), "{edge}");
    // Representable, but more than the OS will map.
    for size in [1usize << 62, isize::MAX as usize, (isize::MAX as usize) + 1] {
        let err = Stack::new(size).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfMemory, "size {size}: {err}");
        assert!(err.to_string().starts_with("splitstack: "), "{err}");
    }
    // The process still maps stacks afterwards.
    assert_eq!(Stack::new(3 * page + 1).unwrap().len(), 4 * page);
}
