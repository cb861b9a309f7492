#!/usr/bin/env bash
# The demo without a server: enrol the demo's two known faces, then annotate every frame of the sample clip into JPEGs.
#   pipelines/demo.sh [--no-build] [deploy/setup.sh options, e.g. --no-apt]
# --no-build runs the plugin and facerec-model already in $BIN_DIR (default target/release)
# instead of building them; the tests use it to run this script on the binaries they built.
# INPUT (the clip), OUT_DIR (target/annotated) and DEMO_DIR (target/demo) may be set.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
build=1
setup_args=()
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        *) setup_args+=("$arg") ;;
    esac
done
bin="${BIN_DIR:-$repo/target/release}"
deploy/setup.sh ${setup_args[@]+"${setup_args[@]}"}
if [ "$build" = 1 ]; then
    cargo build --release --locked -p gst-facerec -p facerec-model
fi

clip="${INPUT:-$repo/../shared/testdata/face_recognition/short_hamilton_clip.mp4}"
out="${OUT_DIR:-$repo/target/annotated}"
demo="${DEMO_DIR:-$repo/target/demo}"
FACEREC_MODEL_BIN="$bin/facerec-model" DEMO_DIR="$demo" pipelines/demo-gallery.sh

rm -rf "$out"
export GST_PLUGIN_PATH="$bin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
INPUT="$clip" GALLERY="$demo/model.data" OUT_DIR="$out" "$repo/pipelines/file-to-jpeg.sh"
echo "annotated frames: $(ls "$out" | wc -l) JPEG files in $out"
