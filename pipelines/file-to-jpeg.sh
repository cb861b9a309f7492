#!/usr/bin/env bash
# Video file -> facerec -> annotated JPEG files (INPUT, GALLERY, OUT_DIR may be set; runs anywhere).
# Without INPUT: the sample clip, from pipelines/demo-assets.sh (../shared, .cache/demo, or a download).
set -euo pipefail
facerec=(facerec)
[ -n "${GALLERY:-}" ] && facerec+=(gallery="$GALLERY")
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "${INPUT:-}" ]; then
    assets="$("$here/demo-assets.sh")"
    INPUT="$assets/short_hamilton_clip.mp4"
fi
OUT_DIR="${OUT_DIR:-$here/../target/annotated}"
mkdir -p "$OUT_DIR"
exec gst-launch-1.0 -e filesrc location="$INPUT" ! decodebin ! videoconvert \
    ! "${facerec[@]}" ! videoconvert \
    ! jpegenc ! multifilesink location="$OUT_DIR/frame-%05d.jpg"
