#!/usr/bin/env bash
# Builds the Debian package `parley` into target/package/: both programs in
# one cargo build with profile $PACKAGE_PROFILE (default `release`), their
# man pages and shell completions (`cargo xtask docs`), then cargo-deb
# without building again (metadata: crates/parley-server/Cargo.toml).
# Installs cargo-deb into target/tools first if it is missing. Prints the
# package's path as its last line.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TERM_COLOR=never
profile=${PACKAGE_PROFILE:-release}
tools="$PWD/target/tools"
if [ ! -x "$tools/bin/cargo-deb" ]; then
    echo "tools/package/build.sh: installing cargo-deb into target/tools" >&2
    cargo install --locked --quiet --root "$tools" cargo-deb@3.8.0
fi
cargo build --locked --quiet --profile "$profile" -p parley-server -p parley-client --bins
rm -rf "target/$profile/parley-docs" target/package
cargo xtask docs "target/$profile/parley-docs" >/dev/null
# Debian wants man pages compressed; cargo-deb leaves files from the target
# directory as they are. -n: no name or time inside, the same bytes each build.
gzip -9n "target/$profile/parley-docs/man/"*.1
mkdir -p target/package
# The release profile keeps line tables for profiling (debug = 1): they go
# into a separate parley-dbgsym package instead of the binaries.
dbg=(--strip)
if [ "$profile" = release ]; then
    dbg=(--dbgsym)
fi
PATH="$tools/bin:$PATH" cargo deb --locked --quiet --no-build --profile "$profile" -p parley-server \
    "${dbg[@]}" --output target/package/ >&2
ls target/package/parley_*.deb
