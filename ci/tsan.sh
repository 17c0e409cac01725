#!/usr/bin/env bash
# ThreadSanitizer over the multi-thread tests and the stack-switching tests (the span heap,
# stress, segments, coroutines, the robustness cases with their forks and panics, and
# corosensei's ported tests): nightly's
# -Zsanitizer=thread with -Zbuild-std (std rebuilt with TSan, so that its atomics and locks are
# seen), and the `tsan` feature, which runs each coroutine as a TSan fiber and announces every
# coroutine switch with __tsan_switch_to_fiber. Fails on any test failure or TSan report.
#
# Skipped tests, each for a reason that is TSan's, not splitstack's:
# - the deep-recursion tests (1,000,000 levels of maybe_grow, on the thread, in a coroutine
#   and the doubling check; 200,000 levels on a coroutine's parent stack) recurse far deeper than
#   TSan's shadow call stack (65,536 frames per thread), which TSan does not grow: it faults past
#   its end, with or without splitstack;
# Where nightly or rust-src cannot be installed, says so and skips (exit 0).
set -euo pipefail
cd "$(dirname "$0")/.."

run() { printf '+ %s\n' "$*" >&2; "$@"; }

if ! rustup toolchain list | grep -q '^nightly'; then
    if ! run rustup toolchain install nightly --profile minimal; then
        printf 'SKIPPED: nightly Rust could not be installed; the TSan run needs it\n' >&2
        exit 0
    fi
fi
if ! rustup component list --toolchain nightly --installed | grep -q '^rust-src'; then
    if ! run rustup component add rust-src --toolchain nightly; then
        printf 'SKIPPED: rust-src (for -Zbuild-std) could not be installed; the TSan run needs it\n' >&2
        exit 0
    fi
fi
host=$(rustc -vV | sed -n 's/^host: //p')
log=target/tsan-tests.log
mkdir -p target
status=0
RUSTFLAGS="-Zsanitizer=thread" CARGO_TARGET_DIR=target/tsan \
    run cargo +nightly test -Zbuild-std --release --features tsan --target "$host" \
    --test span_heap --test stress --test segments --test coroutine --test robustness \
    --test corosensei_ported --test coroutine_stacks --test scoped --no-fail-fast -- \
    --skip a_million_levels_of_maybe_grow \
    --skip maybe_grow_doubles_the_stack_it_leaves \
    --skip maybe_grow_on_the_parent_stack_grows_from_the_parents_bounds \
    >"$log" 2>&1 || status=$?
grep -E '^test result|Running ' "$log" >&2 || true
reports=$(grep -c 'WARNING: ThreadSanitizer' "$log" || true)
if [ "$status" -ne 0 ] || [ "$reports" -ne 0 ]; then
    printf 'TSan run failed (exit %s, %s reports); the log:\n' "$status" "$reports" >&2
    cat "$log" >&2
    exit 1
fi
printf 'TSan: every test passed, no reports\n' >&2
