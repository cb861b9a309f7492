#!/usr/bin/env bash
# Runs every fuzz target: `deploy/fuzz/run.sh [SECONDS_PER_TARGET | -runs=N]` (default 30 s each,
# the CI smoke). Needs cargo-fuzz and the nightly toolchain (deploy/setup.sh --test-tools).
# The committed corpora in corpus/<target>/ are the seeds; new inputs found by a run go to a
# scratch copy, so a smoke run never changes the checkout. A crash leaves its input in
# artifacts/<target>/ and fails the script.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."
fuzz=(cargo +nightly fuzz)
limit="${1:-30}"
case "$limit" in
    -runs=*) budget=("$limit") ;;
    *) budget=("-max_total_time=$limit") ;;
esac
targets=(gallery source_uri config_file metadata_yaml)
"${fuzz[@]}" build --fuzz-dir deploy/fuzz
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# One libFuzzer process per target, as many at once as there are cores: each is single-threaded,
# so every target still gets its whole time budget on one core.
run_target() {
    local t="$1" log="$scratch/$1.log"
    mkdir -p "$scratch/$t" "$here/artifacts/$t"
    cp -r "$here/corpus/$t/." "$scratch/$t/" 2>/dev/null || true
    if "${fuzz[@]}" run --fuzz-dir deploy/fuzz "$t" "$scratch/$t" -- "${budget[@]}" -max_len=65536 \
        -artifact_prefix="$here/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
        runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
        echo "fuzz $t: $runs inputs, no crash"
    else
        echo "fuzz $t: FAILED" >&2
        tail -n 40 "$log" >&2
        return 1
    fi
}
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n || true; done
    { run_target "$t" || touch "$scratch/$t.failed"; } &
done
wait
! compgen -G "$scratch/*.failed" >/dev/null
