#!/usr/bin/env bash
# Installs, idempotently, what the test suite needs beyond a bare Rust toolchain, gcc and valgrind:
# the aarch64 Rust target, the aarch64 cross gcc and libc, qemu-user, and the valgrind header.
# Each step prints what it does; anything already present is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    say "rust target aarch64-unknown-linux-gnu: present"
else
    say "rustup target add aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu
fi

need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/include/stdio.h ] || need+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v valgrind >/dev/null || need+=(valgrind)
if [ "${#need[@]}" -eq 0 ]; then
    say "debian packages: present"
else
    say "apt-get update && apt-get install ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The instruction-count benches need the gungraun runner of exactly the version Cargo.toml pins.
want=$(sed -n 's/^gungraun = "=\([0-9.]*\)".*/\1/p' Cargo.toml)
have=$(gungraun-runner --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" = "$want" ]; then
    say "gungraun-runner $want: present"
else
    say "cargo install gungraun-runner --version $want --locked (had: ${have:-none})"
    cargo install gungraun-runner --version "$want" --locked
fi
