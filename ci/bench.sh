#!/usr/bin/env bash
# Reproduces the README's comparison table: every criterion bench (splitstack against
# corosensei, context, generator, stacker and glibc memset, each group in one run) and every
# gungraun instruction-count bench. Criterion's HTML report lands in target/criterion/report/.
# Pass criterion arguments after `--`, e.g. `ci/bench.sh -- --measurement-time 3`.
set -euo pipefail
cd "$(dirname "$0")/.."

run() { printf '+ %s\n' "$*" >&2; "$@"; }

extra=()
if [ "${1:-}" = "--" ]; then shift; extra=("$@"); fi

run ci/setup.sh
printf '==> machine: %s, %s cores, load %s\n' \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(nproc)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" >&2
for bench in switch segments coroutine memclr; do
    if [ -f "benches/$bench.rs" ]; then
        run cargo bench --bench "$bench" -- "${extra[@]}"
    fi
done
for bench in switch_instructions segments_instructions coroutine_instructions; do
    if [ -f "benches/$bench.rs" ]; then
        run cargo bench --bench "$bench"
    fi
done
run cargo bench --bench span_heap
