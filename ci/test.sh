#!/usr/bin/env bash
# The whole test suite, as README.md gives it and as .ci/run calls it: installs what is missing
# (ci/setup.sh), then checks formatting, lints both targets, builds the docs, runs the tests on
# the host, under valgrind memcheck, and on AArch64 under qemu-user, holds the hot paths to
# their instruction-count ceilings, runs the tests under AddressSanitizer and under
# ThreadSanitizer, and fuzzes the span heap and memclr briefly. Prints each step; the first failure stops it with a nonzero
# status.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }
run() { printf '+ %s\n' "$*" >&2; "$@"; }

AARCH64=aarch64-unknown-linux-gnu

step "setup"
run ci/setup.sh

step "format"
run cargo fmt --check

step "lint (x86_64 and aarch64)"
run cargo clippy --all-targets -- -D warnings
run cargo clippy --all-targets --target "$AARCH64" -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" run cargo doc --no-deps

step "security notes: IBT / BTI declared by every assembled object (readelf -n)"
run ci/notes.sh

step "tests: x86_64 host"
run cargo test --release

step "tests: x86_64 under valgrind memcheck"
run ci/memcheck.sh

step "tests: aarch64 under qemu-user"
run cargo test --release --target "$AARCH64"

step "instruction-count gates (x86_64, callgrind)"
run ci/instruction_gates.sh

step "tests under AddressSanitizer (nightly; skipped with a message where it cannot be installed)"
run ci/asan.sh

step "tests under ThreadSanitizer (nightly + rust-src; skipped with a message where they cannot be installed)"
run ci/tsan.sh

step "fuzzing: a short bounded pass per target (nightly + cargo-fuzz; skipped with a message where they cannot be installed)"
run ci/fuzz.sh 10

step "all checks passed"
