#!/usr/bin/env bash
# USB/V4L2 camera -> facerec (live mode, never stalls the camera) -> window (DEVICE, GALLERY may be set).
set -euo pipefail
facerec=(facerec)
[ -n "${GALLERY:-}" ] && facerec+=(gallery="$GALLERY")
exec gst-launch-1.0 v4l2src device="${DEVICE:-/dev/video0}" ! videoconvert \
    ! "${facerec[@]}" live=true ! videoconvert ! autovideosink sync=false
