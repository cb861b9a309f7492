#!/usr/bin/env bash
# Video file -> facerec -> annotated JPEG files (INPUT, GALLERY, OUT_DIR may be set; runs anywhere).
set -euo pipefail
facerec=(facerec)
[ -n "${GALLERY:-}" ] && facerec+=(gallery="$GALLERY")
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INPUT="${INPUT:-$here/../../shared/testdata/face_recognition/short_hamilton_clip.mp4}"
OUT_DIR="${OUT_DIR:-$here/../target/annotated}"
mkdir -p "$OUT_DIR"
exec gst-launch-1.0 -e filesrc location="$INPUT" ! decodebin ! videoconvert \
    ! "${facerec[@]}" ! videoconvert \
    ! jpegenc ! multifilesink location="$OUT_DIR/frame-%05d.jpg"
