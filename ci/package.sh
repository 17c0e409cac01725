#!/usr/bin/env bash
# Checks that the package builds and passes its tests from the files it ships alone (Cargo.toml's
# `include` list). `cargo package` packs the crate; this script unpacks it into target/package/
# (where Cargo keeps the unpacked crate out of the workspace), then builds what `cargo test`
# builds of it (the library, tests/ and the examples), so one that needs a file the package
# leaves out fails here, and runs its tests: the library's unit tests, tests/, the examples'
# tests and the README's doctests. The benches are the workspace's splitstack-benches package,
# not part of the crate.
#
# The unpacked crate builds into a target directory of its own (target/package-build), and
# `cargo package` builds nothing (`--no-verify`: the build here verifies it). Cargo names a path
# package's units relative to its workspace root, so in the checkout's target directory the
# unpacked splitstack and the checkout's would share units, and the build script's unit would
# keep the unpacked copy's sources as its inputs: a later change to src/layout.rs or build/ in
# the checkout would leave the build script stale, and its offsets.h with it, so that the
# assembly would read the old offsets while the Rust side checks the new ones.
#
# Cost: nearly all of it building splitstack's library, tests and examples and its few release
# dependencies (the benches' are another package's), and about 25 s running the tests.
#
# `--allow-dirty` packs the working tree as it is, uncommitted changes included, as the rest of
# the test suite tests it.
set -euo pipefail
cd "$(dirname "$0")/.."

run() { printf '+ %s\n' "$*" >&2; "$@"; }

target_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}")
# The [package] table's name and version come first in Cargo.toml.
name=$(sed -n 's/^name = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
unpacked=$target_dir/package/$name-$version

run cargo package --allow-dirty --no-verify --package "$name"
rm -rf "$unpacked"
run tar -xzf "$unpacked.crate" -C "$target_dir/package"
export CARGO_TARGET_DIR=$target_dir/package-build
printf '+ cd %s (CARGO_TARGET_DIR=%s)\n' "$unpacked" "$CARGO_TARGET_DIR" >&2
cd "$unpacked"
run cargo test --release --locked
