#!/usr/bin/env bash
# The demo without a server: enrol the demo's two known faces, then annotate every frame of the sample clip into JPEGs.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
deploy/setup.sh "$@"
cargo build --release --locked -p gst-facerec -p facerec-model

clip="${INPUT:-$repo/../shared/testdata/face_recognition/short_hamilton_clip.mp4}"
out="${OUT_DIR:-$repo/target/annotated}"
pipelines/demo-gallery.sh

rm -rf "$out"
export GST_PLUGIN_PATH="$repo/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
INPUT="$clip" GALLERY="$repo/target/demo/model.data" OUT_DIR="$out" "$repo/pipelines/file-to-jpeg.sh"
echo "annotated frames: $(ls "$out" | wc -l) JPEG files in $out"
