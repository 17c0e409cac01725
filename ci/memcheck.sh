#!/usr/bin/env bash
# Runs every host test binary under valgrind memcheck. Fails on any memcheck error, on a
# definite leak, and on valgrind's "client switching stacks?" warning, which would mean a stack
# was not registered. Tests that valgrind cannot run meaningfully (deliberate crashes in child
# processes re-run the test binary, which then runs outside valgrind) are still run.
set -euo pipefail
cd "$(dirname "$0")/.."

log_dir=target/memcheck
mkdir -p "$log_dir"
# Test harness binaries only ("test":true in the artifact's profile), not the examples that
# `cargo test` also builds.
bins=$(cargo test --release --no-run --message-format=json 2>/dev/null |
    grep '"test":true' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
status=0
for bin in $bins; do
    name=$(basename "$bin")
    log="$log_dir/$name.log"
    printf '+ valgrind --tool=memcheck %s\n' "$name" >&2
    # One test thread: valgrind tracks one current stack per process, so with two threads on
    # registered stacks a large frame on one can be taken for a switch from the other's stack and
    # its writes reported as invalid (see "Valgrind and errors" in the crate docs). valgrind runs
    # one thread at a time anyway, so this costs little.
    if ! valgrind --tool=memcheck --error-exitcode=99 --errors-for-leak-kinds=definite \
        --leak-check=full --log-file="$log" "$bin" --test-threads=1 -q >/dev/null 2>"$log.stderr"; then
        printf 'memcheck failed for %s; its log:\n' "$name" >&2
        cat "$log" "$log.stderr" >&2
        status=1
    elif grep -q "client switching stacks" "$log"; then
        printf 'valgrind saw an unregistered stack switch in %s:\n' "$name" >&2
        grep -B2 -A8 "client switching stacks" "$log" >&2
        status=1
    fi
done
exit "$status"
