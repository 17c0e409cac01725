#!/usr/bin/env bash
# Instruction-count gates: runs the gungraun benches of the hot paths and fails when a count
# exceeds its ceiling in ci/instruction_ceilings.txt. A count is a case's whole-process count less
# its rounds_0 case's: the instructions of its 1000 operations. Counts are exact for a given
# binary, so the ceilings are measured counts plus a small margin; a regression in the assembly or the hot
# paths around it cannot land unnoticed. x86-64 only (callgrind runs the host's binaries).
set -euo pipefail
cd "$(dirname "$0")/.."

ceilings=ci/instruction_ceilings.txt
out=target/instruction-gates.txt
mkdir -p target
: >"$out"
for bench in $(awk '!/^#/ && NF { print $1 }' "$ceilings" | sort -u); do
    printf '+ cargo bench --bench %s\n' "$bench" >&2
    cargo bench -q --bench "$bench" 2>&1 | tee -a "$out" >/dev/null
done

# The count is on the "Instructions:" line after the benchmark's header line.
count_of() {
    awk -v id="$1::" -v name="$2" -v c="$3" '
        index($0, id) && index($0, "::" name " " c ":") { found = 1; next }
        found && /Instructions:/ { split($2, a, "|"); print a[1]; exit }' "$out"
}

status=0
while read -r bench id case ceiling _; do
    case "$bench" in ''|'#'*) continue ;; esac
    # Whole-process counts (the benches set no entry point): what the operations cost is the
    # case's count less that of rounds_0, which runs the same process with no operation.
    total=$(count_of "$bench" "$id" "$case")
    base=$(count_of "$bench" "$id" rounds_0)
    if [ -z "$total" ] || [ -z "$base" ]; then
        printf 'FAIL %s %s %s: no count in the bench output\n' "$bench" "$id" "$case" >&2
        status=1
        continue
    fi
    count=$((total - base))
    if [ "$count" -gt "$ceiling" ]; then
        printf 'FAIL %s %s %s: %s instructions, ceiling %s\n' "$bench" "$id" "$case" "$count" "$ceiling" >&2
        status=1
    else
        printf 'ok   %s %s %s: %s instructions (ceiling %s)\n' "$bench" "$id" "$case" "$count" "$ceiling" >&2
    fi
done <"$ceilings"
exit "$status"
