#!/usr/bin/env bash
# The main job until the launcher lands: enrol the demo's two known faces, then annotate every frame of the sample clip into JPEGs.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
deploy/setup.sh "$@"
cargo build --release --locked -p gst-facerec -p facerec-model

clip="${INPUT:-$repo/../shared/testdata/face_recognition/short_hamilton_clip.mp4}"
faces="${FACES_DIR:-$repo/../shared/testdata/face_recognition}"
out="${OUT_DIR:-$repo/target/annotated}"
work="$repo/target/demo"
mkdir -p "$work/known"
# The file name is the person's name, as in the original demo's face-images/ folder.
ln -sf "$faces/lin-manuel-miranda.png" "$work/known/Lin-Manuel Miranda.png"
ln -sf "$faces/alex-lacamoire.png" "$work/known/Alex Lacamoire.png"
target/release/facerec-model train "$work/known" -o "$work/model.data"

rm -rf "$out"
export GST_PLUGIN_PATH="$repo/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
INPUT="$clip" GALLERY="$work/model.data" OUT_DIR="$out" "$repo/pipelines/file-to-jpeg.sh"
echo "annotated frames: $(ls "$out" | wc -l) JPEG files in $out"
