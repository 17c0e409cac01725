#!/usr/bin/env bash
# Fuzzes the span heap and memclr for a bounded time: each target in fuzz/fuzz_targets runs under
# libFuzzer and AddressSanitizer for SECONDS (default 20) from the committed seeds (fuzz/seeds)
# plus whatever corpus earlier runs left in fuzz/corpus (git-ignored).
#
#     ci/fuzz.sh [SECONDS-PER-TARGET]
#
# Needs nightly Rust and cargo-fuzz; installs whichever is missing and skips what is there. If
# either cannot be installed, it prints "SKIPPED: <reason>" and exits 0: the step says it did not
# run, it never passes silently. A crash, a failed invariant, a leak or a timeout in any target
# fails the script (nonzero status) after every target has run, naming the reproducer files.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }
say() { printf '==> %s\n' "$*" >&2; }
run() { printf '+ %s\n' "$*" >&2; "$@"; }
skip() {
    printf '\nSKIPPED: %s\n' "$*" >&2
    exit 0
}

SECONDS_PER_TARGET=${1:-20}
case "$SECONDS_PER_TARGET" in
    '' | *[!0-9]* | 0)
        printf 'usage: %s [SECONDS-PER-TARGET] (a positive integer; got %q)\n' "$0" "$1" >&2
        exit 2
        ;;
esac

TARGETS=(span_heap memclr)

step "nightly Rust"
command -v rustup >/dev/null || skip "rustup is not installed, so nightly Rust cannot be; fuzzing not run"
if rustup toolchain list | grep -q '^nightly-'; then
    say "nightly toolchain: present ($(rustc +nightly --version))"
else
    run rustup toolchain install nightly --profile minimal ||
        skip "nightly Rust could not be installed (rustup toolchain install nightly failed); fuzzing not run"
fi

step "cargo-fuzz"
if have=$(cargo +nightly fuzz --version 2>/dev/null); then
    say "$have: present"
else
    run cargo install cargo-fuzz --locked ||
        run cargo +nightly install cargo-fuzz --locked ||
        skip "cargo-fuzz could not be installed (cargo install cargo-fuzz failed with stable and with nightly); fuzzing not run"
fi

step "build fuzz targets (nightly, AddressSanitizer, debug assertions)"
run cargo +nightly fuzz build

failed=()
for target in "${TARGETS[@]}"; do
    step "fuzz $target for ${SECONDS_PER_TARGET}s"
    # New inputs go to the first directory (git-ignored); the seeds are only read.
    run mkdir -p "fuzz/corpus/$target"
    corpora=("fuzz/corpus/$target")
    [ -d "fuzz/seeds/$target" ] && corpora+=("fuzz/seeds/$target")
    if ! run cargo +nightly fuzz run "$target" "${corpora[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    step "FAILED: ${failed[*]}"
    for target in "${failed[@]}"; do
        say "reproducers for $target (rerun one with: cargo +nightly fuzz run $target FILE):"
        ls -l "fuzz/artifacts/$target" >&2 2>/dev/null || say "  (none written: see the output above)"
    done
    exit 1
fi
step "fuzzing passed: ${TARGETS[*]}, ${SECONDS_PER_TARGET}s each"
