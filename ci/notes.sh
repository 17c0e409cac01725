#!/usr/bin/env bash
# Checks the GNU property notes of the assembled objects: every object of the x86-64 build must
# declare IBT and not SHSTK, every object of the AArch64 build BTI and not PAC (asm/asm.h says
# why each is claimed or not). The linker keeps a feature in a program only if every object has
# it, so one object without the note would make the crate unusable under IBT or BTI.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
# The host is built without --target, into target/release, and the cross target into
# target/<triple>/release: the directories the later test steps build into, so that they reuse
# these builds rather than this step making extra ones.
check() {
    local target=$1 want=$2 refuse=$3 dir out flags=() prefix=target
    if [ "$target" != "$(rustc -vV | sed -n 's/^host: //p')" ]; then
        flags=(--target "$target")
        prefix=target/$target
    fi
    printf '+ cargo build --release %s\n' "${flags[*]}" >&2
    cargo build -q --release "${flags[@]}"
    # The build script's newest output directory holds the objects cc assembled.
    dir=$(ls -td "$prefix"/release/build/splitstack-*/out | head -n 1)
    local objects=("$dir"/*.o)
    [ -e "${objects[0]}" ] || { printf 'FAIL %s: no objects in %s\n' "$target" "$dir" >&2; exit 1; }
    for object in "${objects[@]}"; do
        out=$(readelf -n "$object")
        name=$(basename "$object")
        if ! grep -q "feature: .*$want" <<<"$out"; then
            printf 'FAIL %s %s: no %s in its property note\n' "$target" "$name" "$want" >&2
            status=1
        elif grep -q "feature: .*$refuse" <<<"$out"; then
            printf 'FAIL %s %s: claims %s\n' "$target" "$name" "$refuse" >&2
            status=1
        else
            printf 'ok   %s %s: %s\n' "$target" "$name" "$(grep -o 'feature: .*' <<<"$out")" >&2
        fi
    done
}
check x86_64-unknown-linux-gnu IBT SHSTK
check aarch64-unknown-linux-gnu BTI PAC
exit "$status"
