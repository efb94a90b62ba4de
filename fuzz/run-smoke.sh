#!/usr/bin/env bash
# Smoke-runs every libFuzzer target of fuzz/ for FUZZ_SECONDS (default 30) seconds each,
# starting from its committed seed corpus fuzz/corpus/<target>, and fails if any target
# crashes (panic, overflow, allocation over the limit, leak, timeout).
#
# Usage, from anywhere:  bash fuzz/run-smoke.sh [TARGET...]
#   FUZZ_SECONDS=N       seconds per target (default 30)
#   FUZZ_SEED=N          libFuzzer's random seed, for a repeatable run (CI sets it)
#   FUZZ_GROW_CORPUS=1   let libFuzzer add new inputs to fuzz/corpus/<target> itself (the
#                        default writes them to fuzz/target/corpus/<target>, which is ignored, so
#                        the committed seeds stay small)
#   FUZZ_MALLOC_LIMIT_MB=N  largest single allocation before libFuzzer calls it a crash (default
#                        256; the largest documented limit a decoder may allocate for is the
#                        16 MiB frame)
#
# Needs cargo-fuzz (installed here with `cargo install cargo-fuzz --locked` if missing) and
# uses RUSTC_BOOTSTRAP=1 so that the stable toolchain accepts the sanitizer flags.
# libFuzzer's final stats line of each target is summarized at the end; crash inputs are left
# in fuzz/artifacts/<target>/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
FUZZ_MALLOC_LIMIT_MB="${FUZZ_MALLOC_LIMIT_MB:-256}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: installing it (cargo install cargo-fuzz --locked)" >&2
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

start=$SECONDS
echo "building ${#targets[@]} fuzz targets" >&2
cargo fuzz build

logs=fuzz/target/smoke-logs
mkdir -p "$logs"
failed=()
summary=()
for t in "${targets[@]}"; do
    seeds="fuzz/corpus/$t"
    if [ "${FUZZ_GROW_CORPUS:-0}" = 1 ]; then
        corpora=("$seeds")
    else
        work="fuzz/target/corpus/$t"
        mkdir -p "$work"
        corpora=("$work" "$seeds")
    fi
    echo "=== $t: ${FUZZ_SECONDS}s" >&2
    status=0
    cargo fuzz run "$t" "${corpora[@]}" -- \
        -max_total_time="$FUZZ_SECONDS" \
        -malloc_limit_mb="$FUZZ_MALLOC_LIMIT_MB" \
        -print_final_stats=1 \
        ${FUZZ_SEED:+-seed="$FUZZ_SEED"} \
        >"$logs/$t.log" 2>&1 || status=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$logs/$t.log" | tail -n 1 || true)
    execs=$(grep -E '^stat::number_of_executed_units:' "$logs/$t.log" | awk '{print $2}' | tail -n 1 || true)
    if [ "$status" -ne 0 ]; then
        failed+=("$t")
        summary+=("$t: FAILED (exit $status), see $logs/$t.log and fuzz/artifacts/$t/")
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|^artifact_prefix|Test unit written' "$logs/$t.log" >&2 || true
    else
        summary+=("$t: ${execs:-?} execs; ${done_line:-no DONE line}")
    fi
done

echo >&2
echo "fuzz smoke summary (${FUZZ_SECONDS}s per target, $((SECONDS - start))s in all including the build):" >&2
printf '  %s\n' "${summary[@]}" >&2
if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashed: ${failed[*]}" >&2
    exit 1
fi
