//! The crate's one error type.

use std::fmt;

/// What went wrong, in a form a caller can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A size or count was zero, or so large that rounding it or adding a guard overflows.
    InvalidSize,
    /// The operating system refused memory (`mmap`, `mprotect`): see [`Error::os_error`].
    OutOfMemory,
    /// The operating system refused another mapping: `vm.max_map_count` is exhausted.
    MapCountLimit,
}

/// An error from splitstack: what was asked, and why it could not be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    os_error: Option<i32>,
}

impl Error {
    pub(crate) fn invalid_size(message: impl Into<String>) -> Error {
        Error { kind: ErrorKind::InvalidSize, message: message.into(), os_error: None }
    }

    /// An error for a failed memory system call (`mmap`, `mprotect`), classified: when the
    /// kernel said ENOMEM and this process holds about as many mappings as `vm.max_map_count`
    /// allows, the kind is [`ErrorKind::MapCountLimit`] and the message says so.
    pub(crate) fn os(what: impl Into<String>, err: std::io::Error) -> Error {
        let what = what.into();
        let os_error = err.raw_os_error();
        if os_error == Some(libc::ENOMEM) {
            if let Some((live, max)) = map_count() {
                // Each guarded stack costs two mappings, so "within a few of the limit" is full.
                if live + 4 >= max {
                    return Error {
                        kind: ErrorKind::MapCountLimit,
                        message: format!(
                            "{what}: {err}: this process has {live} memory mappings and \
                             vm.max_map_count is {max}; free some stacks or raise the limit"
                        ),
                        os_error,
                    };
                }
            }
        }
        Error { kind: ErrorKind::OutOfMemory, message: format!("{what}: {err}"), os_error }
    }

    /// What kind of failure this was.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The `errno` of the failed system call, if one failed.
    pub fn os_error(&self) -> Option<i32> {
        self.os_error
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "splitstack: {}", self.message)
    }
}

impl std::error::Error for Error {}

/// This process's live mapping count and the kernel's `vm.max_map_count`, when both can be read.
/// Called only after a failure, when the map count may be exhausted, so it must not need a new
/// mapping itself: /proc/self/maps is read through a fixed buffer on the stack and no heap
/// allocation grows (a large one would be an mmap).
fn map_count() -> Option<(usize, usize)> {
    use std::io::Read;
    let mut buf = [0u8; 4096];
    let mut max_file = std::fs::File::open("/proc/sys/vm/max_map_count").ok()?;
    let n = max_file.read(&mut buf).ok()?;
    let max = std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()?;
    let mut maps = std::fs::File::open("/proc/self/maps").ok()?;
    let mut live = 0;
    loop {
        let n = maps.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        live += buf[..n].iter().filter(|&&b| b == b'\n').count();
    }
    Some((live, max))
}
