#!/usr/bin/env bash
# The main job: enrol the demo's two known faces, then serve the sample clip, annotated, at
# http://127.0.0.1:8080/ (page, /cameras/clip/stream.mjpg for VLC, /api/events, /metrics).
# Ctrl-C (or SIGTERM) stops it.
#
#   launcher/demo.sh [SETUP_OPTIONS] [-- LAUNCHER_OPTIONS]
#
# SETUP_OPTIONS go to deploy/setup.sh (e.g. --no-apt), LAUNCHER_OPTIONS to facerec-launcher
# (e.g. -- --mdns). LISTEN, INPUT and FACES_DIR may be set. FACEREC_BIN_DIR=DIR runs the
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

# As pipelines/demo-gallery.sh does, with the binary in $bin: the file name is the
# person's name, as in the original demo's face-images/ folder.
faces="${FACES_DIR:-$repo/../shared/testdata/face_recognition}"
work="$repo/target/demo"
mkdir -p "$work/known"
ln -sf "$faces/lin-manuel-miranda.png" "$work/known/Lin-Manuel Miranda.png"
ln -sf "$faces/alex-lacamoire.png" "$work/known/Alex Lacamoire.png"
"$bin/facerec-model" train "$work/known" -o "$work/model.data"

clip="${INPUT:-$repo/../shared/testdata/face_recognition/short_hamilton_clip.mp4}"
# exec: the launcher takes over this process, so Ctrl-C and SIGTERM reach it directly and no
# child is left behind.
exec "$bin/facerec-launcher" --listen "${LISTEN:-127.0.0.1:8080}" --gallery "$work/model.data" \
    --source "clip=file://$(realpath "$clip")?loop=true" "$@"
