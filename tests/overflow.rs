//! Stack overflows on splitstack stacks print a message naming splitstack and abort; each case
//! runs in a child process, and the test asserts on its exit and its stderr.

mod common;

use common::{assert_overflow_reported, bottomless, child_case, run_child, signal_of};
use splitstack::{grow, prepare, swap, Gobuf, Stack};

#[test]
fn overflow_in_a_segment_is_reported_and_aborts() {
    if child_case().as_deref() == Some("segment") {
        let n = grow(64 * 1024, || bottomless(0));
        println!("not reached: {n}");
        return;
    }
    let output = run_child("overflow_in_a_segment_is_reported_and_aborts", "segment");
    assert_overflow_reported(&output, "segment");
}

#[test]
fn overflow_on_a_prepared_stack_is_reported_and_aborts() {
    if child_case().as_deref() == Some("stack") {
        unsafe extern "C" fn entry(_: usize) -> ! {
            let n = bottomless(0);
            panic!("not reached: {n}");
        }
        let stack = Stack::new(64 * 1024).unwrap();
        let mut main = Gobuf::default();
        let mut co = Gobuf::default();
        // SAFETY: the stack outlives the switch; entry never comes back.
        unsafe {
            prepare(&mut co, &stack, entry);
            swap(&mut main, &co, 0);
        }
        return;
    }
    let output = run_child("overflow_on_a_prepared_stack_is_reported_and_aborts", "stack");
    assert_overflow_reported(&output, "stack");
}

#[test]
fn other_segfaults_still_reach_the_previous_handler() {
    if child_case().as_deref() == Some("null") {
        // Make sure splitstack's handler is installed, then fault somewhere else.
        let _stack = Stack::new(4096).unwrap();
        // SAFETY: deliberately faults (in a child process) to show the fault is not ours.
        unsafe { std::ptr::read_volatile(16 as *const u64) };
        return;
    }
    let output = run_child("other_segfaults_still_reach_the_previous_handler", "null");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if cfg!(feature = "asan") {
        // Under AddressSanitizer the previous handler is ASan's, which reports and exits.
        assert!(stderr.contains("AddressSanitizer: SEGV"), "stderr:\n{stderr}");
    } else {
        assert_eq!(
            signal_of(&output),
            Some(libc::SIGSEGV),
            "child status {:?}, stderr:\n{stderr}",
            output.status
        );
    }
    assert!(
        !stderr.contains("splitstack: stack overflow"),
        "a null read was reported as overflow:\n{stderr}"
    );
}
