#!/usr/bin/env bash
# The multi-thread tests that ThreadSanitizer can follow, under nightly's -Zsanitizer=thread
# with -Zbuild-std: the span heap's (threads sharing one heap) and the coroutine stress test
# (threads each running their own coroutines). Not in ci/test.sh: rebuilding std with TSan takes
# about 5 minutes, beyond CI's budget.
#
# Not covered: tests/segments.rs crashes TSan itself ("CHECK failed: sanitizer_allocator_
# secondary.h ... IsAligned"), because splitstack does not announce its segment switches to TSan
# (__tsan_switch_to_fiber); see README. Where nightly or rust-src cannot be installed, says so
# and skips (exit 0).
set -euo pipefail
cd "$(dirname "$0")/.."

run() { printf '+ %s\n' "$*" >&2; "$@"; }

if ! rustup toolchain list | grep -q '^nightly'; then
    if ! run rustup toolchain install nightly --profile minimal; then
        printf 'SKIPPED: nightly Rust could not be installed\n' >&2
        exit 0
    fi
fi
if ! rustup component list --toolchain nightly --installed | grep -q '^rust-src'; then
    if ! run rustup component add rust-src --toolchain nightly; then
        printf 'SKIPPED: rust-src (for -Zbuild-std) could not be installed\n' >&2
        exit 0
    fi
fi
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-Zsanitizer=thread" CARGO_TARGET_DIR=target/tsan \
    run cargo +nightly test -Zbuild-std --release --target "$host" \
    --test span_heap --test stress
