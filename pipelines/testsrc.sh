#!/usr/bin/env bash
# Test pattern -> facerec -> SINK (default autovideosink): checks the element runs, finds no faces.
set -euo pipefail
facerec=(facerec)
[ -n "${GALLERY:-}" ] && facerec+=(gallery="$GALLERY")
exec gst-launch-1.0 videotestsrc num-buffers="${NUM_BUFFERS:-300}" pattern=ball \
    ! video/x-raw,width=640,height=360,framerate=30/1 ! videoconvert \
    ! "${facerec[@]}" ! videoconvert ! ${SINK:-autovideosink}
