//! Helpers shared by the behaviour tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::process::{Command, Output};

/// The environment variable that tells a re-run test binary which crashing case to run.
pub const CHILD_CASE: &str = "SPLITSTACK_TEST_CHILD_CASE";

/// The crashing case this process should run, if it is a child started by [`run_child`].
pub fn child_case() -> Option<String> {
    std::env::var(CHILD_CASE).ok()
}

/// Runs this test binary again with only `test_name`, and `case` in [`CHILD_CASE`], and returns
/// what it did. Under qemu-user (no binfmt) the kernel cannot run the AArch64 binary directly:
/// the spawn fails (ENOEXEC, or exit status 127 from the spawned child), and the run is retried
/// through `qemu-aarch64`.
pub fn run_child(test_name: &str, case: &str) -> Output {
    run_child_with_env(test_name, case, &[])
}

/// The signal that ended a child, if one did.
pub fn signal_of(output: &Output) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    output.status.signal()
}

/// A small deterministic generator (xorshift64*) for the tests' random sizes and sequences.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Recurses, 512 bytes of frame a level, until something stops it: a stack overflow, for the
/// tests that provoke one in a child process.
#[inline(never)]
pub fn bottomless(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if frame[0] == u64::MAX {
        return 0;
    }
    frame[(depth % 64) as usize] + bottomless(depth + 1)
}

/// The emulator and sysroot a cross-built test binary runs under where the host cannot execute it
/// (as .cargo/config.toml's runners give them); `None` for targets the host runs natively.
const QEMU_USER: Option<(&str, &str)> = if cfg!(target_arch = "aarch64") {
    Some(("qemu-aarch64", "/usr/aarch64-linux-gnu"))
} else if cfg!(target_arch = "arm") {
    Some(("qemu-arm", "/usr/arm-linux-gnueabihf"))
} else if cfg!(target_arch = "riscv64") {
    Some(("qemu-riscv64", "/usr/riscv64-linux-gnu"))
} else {
    None
};

/// [`run_child`] with extra environment variables set for the child.
pub fn run_child_with_env(test_name: &str, case: &str, env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    let args = [test_name, "--exact", "--nocapture", "--test-threads=1"];
    let mut direct = Command::new(&exe);
    direct.args(args).env(CHILD_CASE, case).envs(env.iter().copied());
    let direct = direct.output();
    let could_not_exec = match &direct {
        Ok(output) => output.status.code() == Some(127) && output.stdout.is_empty(),
        Err(e) => e.raw_os_error() == Some(libc::ENOEXEC),
    };
    if let (true, Some((qemu, sysroot))) = (could_not_exec, QEMU_USER) {
        return Command::new(qemu)
            .args(["-L", sysroot])
            .arg(&exe)
            .args(args)
            .env(CHILD_CASE, case)
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("running the child test under {qemu}: {e}"));
    }
    direct.unwrap_or_else(|e| panic!("could not run the child test: {e}"))
}

/// Asserts that a child exited with `code` and printed `marker` on stdout; returns its stderr.
pub fn assert_child_exited(output: &Output, code: i32, marker: &str) -> String {
    assert_exited(output, code, marker, "child")
}

/// Runs `case` of `test_name` in a child with `env` set for it, and asserts that it exited 0
/// after printing `done` on stdout; returns what it did.
pub fn assert_child_passes(test_name: &str, case: &str, env: &[(&str, &str)]) -> Output {
    let output = run_child_with_env(test_name, case, env);
    assert_exited(&output, 0, "done", &format!("child case {case} {env:?}"));
    output
}

/// [`assert_child_exited`], with `what` naming the child in the failure messages.
fn assert_exited(output: &Output, code: i32, marker: &str, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: status {:?}, stdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(stdout.contains(marker), "{what}: no {marker:?} on stdout:\n{stdout}\n{stderr}");
    stderr
}

/// Asserts that a child was killed by SIGABRT after printing `message` on stderr; returns its
/// stderr. `what` names the case in the failure messages.
pub fn assert_child_aborted(output: &Output, message: &str, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        signal_of(output),
        Some(libc::SIGABRT),
        "{what}: child status {:?}, stderr:\n{stderr}",
        output.status
    );
    assert!(stderr.contains(message), "{what}: no {message:?} in the child's stderr:\n{stderr}");
    stderr
}

/// Asserts that a child died of a stack overflow on a splitstack stack: splitstack's report of a
/// fault in a guard region on stderr, then SIGABRT. `what` names the case in the failure messages.
pub fn assert_overflow_reported(output: &Output, what: &str) {
    let stderr = assert_child_aborted(output, "splitstack: stack overflow: fault at 0x", what);
    assert!(
        stderr.contains(" in the guard region 0x"),
        "{what}: the overflow report names no guard region:\n{stderr}"
    );
}

/// Sums 1..=n recursively, checking the stack at every level with
/// `maybe_grow(RED_ZONE, SEGMENT, ..)`.
pub fn deep_sum<const RED_ZONE: usize, const SEGMENT: usize>(n: u64) -> u64 {
    splitstack::maybe_grow(RED_ZONE, SEGMENT, || {
        if n == 0 {
            0
        } else {
            n + deep_sum::<RED_ZONE, SEGMENT>(std::hint::black_box(n - 1))
        }
    })
}

/// This process's resident memory in bytes (/proc/self/statm).
pub fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).expect("resident field").parse().unwrap();
    pages * splitstack::page_size()
}

/// The number of this process's memory mappings (/proc/self/maps).
pub fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps").lines().count()
}

/// Whether the kernel can read 8 bytes at `addr` of this process (`process_vm_readv`, which fails
/// with EFAULT, without a signal, on an inaccessible page or a guard region).
pub fn readable(addr: usize) -> bool {
    let mut word = 0u64;
    let local = libc::iovec { iov_base: (&mut word as *mut u64).cast(), iov_len: 8 };
    let remote = libc::iovec { iov_base: addr as *mut _, iov_len: 8 };
    // SAFETY: reads into a local; the kernel checks the remote range.
    unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) == 8 }
}

/// Whether `/proc/self/pagemap` describes this process's own addresses, by the proof the span
/// heap makes before it trusts the file (src/span_heap.rs): a page just written reads as present,
/// the untouched one after it as absent. Not so under qemu-user for a 32-bit guest, which the
/// emulator places at an offset in its own address space, so that the kernel's entries for the
/// guest's addresses describe other memory.
pub fn pagemap_describes_this_process() -> bool {
    use std::os::unix::fs::FileExt;
    let page = splitstack::page_size();
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: a fresh anonymous mapping of two pages, written in its first byte only, unmapped
    // before returning.
    unsafe {
        let map = libc::mmap(std::ptr::null_mut(), 2 * page, prot, flags, -1, 0);
        assert_ne!(map, libc::MAP_FAILED, "mapping two pages");
        map.cast::<u8>().write_volatile(1);
        let mut entries = [0u8; 16];
        let read = std::fs::File::open("/proc/self/pagemap")
            .and_then(|file| file.read_exact_at(&mut entries, (map as usize / page * 8) as u64));
        libc::munmap(map, 2 * page);
        let present = |bytes: &[u8]| u64::from_ne_bytes(bytes.try_into().unwrap()) & (3 << 62) != 0;
        read.is_ok() && present(&entries[..8]) && !present(&entries[8..])
    }
}
