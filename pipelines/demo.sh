#!/usr/bin/env bash
# The demo without a server: enrol the demo's two known faces, then annotate every frame of the sample clip into JPEGs.
#   pipelines/demo.sh [--no-build] [deploy/setup.sh options, e.g. --no-apt]
# --no-build runs the plugin and facerec-model already in $BIN_DIR (default target/release)
# instead of building them; the tests use it to run this script on the binaries they built.
# INPUT (the clip), FACES_DIR (the two faces), OUT_DIR (target/annotated) and DEMO_DIR
# (target/demo) may be set. Without INPUT and FACES_DIR, pipelines/demo-assets.sh finds them in
# ../shared or .cache/demo, or downloads them; when it cannot, the demo annotates a short test
# pattern instead, with no known faces (announced on stderr).
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

# The clip and the two faces (pipelines/demo-inputs.sh says how they are found).
# shellcheck source=SCRIPTDIR/demo-inputs.sh
source "$repo/pipelines/demo-inputs.sh"
demo_inputs pipelines/demo.sh running "annotating 60 frames of videotestsrc pattern=ball instead of the sample clip"

out="${OUT_DIR:-$repo/target/annotated}"
demo="${DEMO_DIR:-$repo/target/demo}"
gallery=""
if [ -n "$faces" ]; then
    FACES_DIR="$faces" FACEREC_MODEL_BIN="$bin/facerec-model" DEMO_DIR="$demo" pipelines/demo-gallery.sh
    gallery="$demo/model.data"
fi

rm -rf "$out"
export GST_PLUGIN_PATH="$bin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
if [ -n "$clip" ]; then
    INPUT="$clip" GALLERY="$gallery" OUT_DIR="$out" "$repo/pipelines/file-to-jpeg.sh"
else
    # The sample clip's size and rate, so the output looks like the real demo's.
    mkdir -p "$out"
    facerec=(facerec)
    [ -n "$gallery" ] && facerec+=(gallery="$gallery")
    gst-launch-1.0 -e videotestsrc num-buffers=60 pattern=ball \
        ! video/x-raw,width=640,height=360,framerate=30/1 ! videoconvert \
        ! "${facerec[@]}" ! videoconvert \
        ! jpegenc ! multifilesink location="$out/frame-%05d.jpg"
fi
echo "annotated frames: $(find "$out" -maxdepth 1 -name "frame-*.jpg" | wc -l) JPEG files in $out"
