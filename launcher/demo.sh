#!/usr/bin/env bash
# The main job: enrol the demo's two known faces, then serve the sample clip, annotated, at
# http://127.0.0.1:8080/ (page, /cameras/clip/stream.mjpg for VLC, /api/events, /metrics).
# Ctrl-C (or SIGTERM) stops it.
#
#   launcher/demo.sh [SETUP_OPTIONS] [-- LAUNCHER_OPTIONS]
#
# SETUP_OPTIONS go to deploy/setup.sh (e.g. --no-apt), LAUNCHER_OPTIONS to facerec-launcher
# (e.g. -- --mdns). LISTEN, INPUT and FACES_DIR (read by pipelines/demo-gallery.sh) may be set. FACEREC_BIN_DIR=DIR runs the
# facerec-model and facerec-launcher already built in DIR instead of building release ones
# (the tests run it with their own build).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
setup_args=()
while [ $# -gt 0 ]; do
    arg="$1"
    shift
    [ "$arg" = -- ] && break
    setup_args+=("$arg")
done
deploy/setup.sh "${setup_args[@]}"

if [ -n "${FACEREC_BIN_DIR:-}" ]; then
    bin="$FACEREC_BIN_DIR"
else
    cargo build --release --locked -p facerec-model -p facerec-launcher
    bin="${CARGO_TARGET_DIR:-$repo/target}/release"
fi

# The demo's two known faces, enrolled by the same script as pipelines/demo.sh uses.
work="$repo/target/demo"
DEMO_DIR="$work" FACEREC_MODEL_BIN="$bin/facerec-model" pipelines/demo-gallery.sh

clip="${INPUT:-$repo/../shared/testdata/face_recognition/short_hamilton_clip.mp4}"
# exec: the launcher takes over this process, so Ctrl-C and SIGTERM reach it directly and no
# child is left behind.
exec "$bin/facerec-launcher" --listen "${LISTEN:-127.0.0.1:8080}" --gallery "$work/model.data" \
    --source "clip=file://$(realpath "$clip")?loop=true" "$@"
