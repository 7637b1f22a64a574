#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ against the committed seed corpus.
#
#   scripts/fuzz.sh smoke            ~20 s per target (a quick sanitized run)
#   scripts/fuzz.sh long [seconds]   default 600 s per target
#
# Every run fuzzes a scratch copy of fuzz/corpus/<target> (under fuzz/target,
# git-ignored) so the committed seeds only change on purpose. Any panic,
# timeout or memory-limit breach exits non-zero and leaves the input in
# fuzz/artifacts/<target>/; reproduce it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a <target> fuzz/artifacts/<target>/<file>
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
TARGETS=(envelope invoice)

mode=${1:-smoke}
case "$mode" in
smoke) seconds=20 ;;
long) seconds=${2:-600} ;;
*)
    echo "usage: $0 smoke | long [seconds]" >&2
    exit 2
    ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root/fuzz"

# cargo-fuzz passes -Z flags (sanitizers, coverage) that stable rustc only
# accepts with RUSTC_BOOTSTRAP; this keeps CI on the stable toolchain.
export RUSTC_BOOTSTRAP=1

if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# One optimized build (release with debug assertions, so arithmetic
# overflow panics) for all targets; the runs below reuse its binaries.
cargo fuzz build -O -a
host=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="$root/fuzz/target/$host/release"

failed=()
for target in "${TARGETS[@]}"; do
    scratch="$root/fuzz/target/scratch-corpus/$target"
    artifacts="$root/fuzz/artifacts/$target"
    rm -rf "$scratch"
    mkdir -p "$scratch" "$artifacts"
    cp "$root/fuzz/corpus/$target/"* "$scratch/"
    echo "== fuzz $target: $seconds s"
    # The limits turn unbounded work into failures: a single input may take
    # 10 s, one allocation 512 MB, the whole process 1 GB. max_len is above
    # the largest seed (deep nesting, a 200-line order).
    if ! "$bin_dir/$target" "$scratch" \
        -max_total_time="$seconds" \
        -timeout=10 \
        -rss_limit_mb=1024 \
        -malloc_limit_mb=512 \
        -max_len=65536 \
        -print_final_stats=1 \
        -artifact_prefix="$artifacts/"; then
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "fuzzing found problems in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz $mode: no crashes in ${TARGETS[*]}"
