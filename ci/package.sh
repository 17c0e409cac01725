#!/usr/bin/env bash
# Checks that the package builds and passes its tests from the files it ships alone (Cargo.toml's
# `include` list). `cargo package` packs the crate, unpacks it into target/package/ and builds the
# library there; this script then builds every target of the unpacked crate (the benches, then
# what `cargo test` builds: the library, tests/ and the examples), so one that needs a file the
# package leaves out fails here, and runs its tests: the library's unit tests, tests/, the
# examples' tests and the README's doctests.
#
# The benches are compiled, not run: they read no file of the package, the gungraun ones need
# gungraun-runner and valgrind, and the criterion ones, even in test mode, take most of a minute
# (benches/million creates a million coroutines). ci/bench.sh and ci/instruction_gates.sh run
# them from the checkout.
#
# The unpacked crate builds into the checkout's target directory, so the release dependencies
# are built once for this step and the host tests after it. Cargo names a path package's units
# relative to its workspace root, so the unpacked splitstack and the checkout's share file names:
# each rebuilds splitstack itself (not its dependencies) after the other has built.
#
# Cost, measured on 2 shared cores with CARGO_BUILD_JOBS=1: 100 to 130 s where the release
# dependencies are built, nearly all of it rebuilding splitstack's library, tests, examples and
# benches (`cargo package` unpacks fresh files every run) and about 25 s running the tests; 4.5
# minutes on a fresh target directory, the extra 2.5 building the release dependencies that the
# host tests then reuse.
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

run cargo package --allow-dirty
export CARGO_TARGET_DIR=$target_dir
printf '+ cd %s (CARGO_TARGET_DIR=%s)\n' "$unpacked" "$CARGO_TARGET_DIR" >&2
cd "$unpacked"
run cargo test --release --locked --benches --no-run
run cargo test --release --locked
