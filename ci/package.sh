#!/usr/bin/env bash
# Checks that the package builds and passes its tests from the files it ships alone (Cargo.toml's
# `include` list). `cargo package` packs the crate, unpacks it into target/package/ and builds the
# library there; this script then builds what `cargo test` builds of the unpacked crate (the
# library, tests/ and the examples), so one that needs a file the package leaves out fails here,
# and runs its tests: the library's unit tests, tests/, the examples' tests and the README's
# doctests. The benches are the workspace's splitstack-benches package, not part of the crate.
#
# The unpacked crate builds into the checkout's target directory, so the release dependencies
# are built once for this step and the host tests after it. Cargo names a path package's units
# relative to its workspace root, so the unpacked splitstack and the checkout's share file names:
# each rebuilds splitstack itself (not its dependencies) after the other has built.
#
# Cost: nearly all of it rebuilding splitstack's library, tests and examples (`cargo package`
# unpacks fresh files every run; the release dependencies, few now that the benches' are
# another package's, are built once for this step and the host tests after it), and about 25 s
# running the tests.
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

run cargo package --allow-dirty --package "$name"
export CARGO_TARGET_DIR=$target_dir
printf '+ cd %s (CARGO_TARGET_DIR=%s)\n' "$unpacked" "$CARGO_TARGET_DIR" >&2
cd "$unpacked"
run cargo test --release --locked
