#!/usr/bin/env bash
# Installs, idempotently, what the test suite needs beyond a bare Rust toolchain, gcc and valgrind:
# the cross targets' Rust targets, cross gcc and libc, qemu-user, valgrind and the gungraun runner.
# Each step prints what it does; anything already present is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# The cross targets (README.md's targets table): each needs its Rust target, a C cross compiler
# and libc for cc and the linker, and an emulator (i686 runs natively on the x86-64 host).
for target in aarch64-unknown-linux-gnu i686-unknown-linux-gnu \
    armv7-unknown-linux-gnueabihf riscv64gc-unknown-linux-gnu; do
    if rustup target list --installed | grep -qx "$target"; then
        say "rust target $target: present"
    else
        say "rustup target add $target"
        rustup target add "$target"
    fi
done

need=()
want_cmd() { command -v "$1" >/dev/null || need+=("$2"); }
want_file() { [ -e "$1" ] || need+=("$2"); }
want_cmd aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
want_file /usr/aarch64-linux-gnu/include/stdio.h libc6-dev-arm64-cross
# 32-bit x86: the cross gcc and libc to build, the i386 runtime libraries to run natively
# (gcc-multilib would serve too, but conflicts with the other cross compilers on Debian 12).
want_cmd i686-linux-gnu-gcc gcc-i686-linux-gnu
want_file /usr/i686-linux-gnu/include/stdio.h libc6-dev-i386-cross
want_file /lib/ld-linux.so.2 libc6-i386
want_file /usr/lib32/libgcc_s.so.1 lib32gcc-s1
want_cmd arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf
want_file /usr/arm-linux-gnueabihf/include/stdio.h libc6-dev-armhf-cross
want_cmd riscv64-linux-gnu-gcc gcc-riscv64-linux-gnu
want_file /usr/riscv64-linux-gnu/include/stdio.h libc6-dev-riscv64-cross
want_cmd qemu-aarch64 qemu-user
want_cmd qemu-arm qemu-user
want_cmd qemu-riscv64 qemu-user
want_cmd valgrind valgrind
if [ "${#need[@]}" -eq 0 ]; then
    say "debian packages: present"
else
    mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
    say "apt-get update && apt-get install ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The instruction-count benches need the gungraun runner of exactly the version benches/Cargo.toml
# pins.
want=$(sed -n 's/^gungraun = "=\([0-9.]*\)".*/\1/p' benches/Cargo.toml)
have=$(gungraun-runner --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" = "$want" ]; then
    say "gungraun-runner $want: present"
else
    say "cargo install gungraun-runner --version $want --locked (had: ${have:-none})"
    cargo install gungraun-runner --version "$want" --locked
fi
