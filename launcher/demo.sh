#!/usr/bin/env bash
# The main job: enrol the demo's two known faces, then serve the sample clip, annotated, at
# http://127.0.0.1:8080/ (page, /cameras/clip/stream.mjpg for VLC, /api/events, /metrics).
# Ctrl-C (or SIGTERM) stops it. LISTEN, INPUT and FACES_DIR may be set.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
deploy/setup.sh "$@"
cargo build --release --locked -p facerec-model -p facerec-launcher

clip="${INPUT:-$repo/../shared/testdata/face_recognition/short_hamilton_clip.mp4}"
pipelines/demo-gallery.sh

exec target/release/facerec-launcher --listen "${LISTEN:-127.0.0.1:8080}" --gallery "$repo/target/demo/model.data" \
    --source "clip=file://$(realpath "$clip")?loop=true"
