#!/usr/bin/env bash
# Jetson CSI camera (NVMM) -> facerec on TensorRT, reading and drawing on the NVMM surfaces -> window (not runnable off-Jetson).
set -euo pipefail
facerec=(facerec)
[ -n "${GALLERY:-}" ] && facerec+=(gallery="$GALLERY")
camera=(nvarguscamerasrc sensor-id="${SENSOR_ID:-0}"
    ! 'video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1')
# A plugin built with `--features nvmm` offers memory:NVMM on its pads: frames stay in NVMM
# (nvvidconv makes pitch-linear RGBA on the VIC; facerec maps it through libnvbufsurface.so).
# A plugin built without it gets RGBA copied to system memory, as before.
if gst-inspect-1.0 facerec 2>/dev/null | grep -q 'memory:NVMM'; then
    input=(nvvidconv ! 'video/x-raw(memory:NVMM),format=RGBA')
else
    echo "facerec was built without --features nvmm: copying frames to system memory" >&2
    input=(nvvidconv ! video/x-raw,format=RGBA)
fi
exec gst-launch-1.0 "${camera[@]}" ! "${input[@]}" \
    ! "${facerec[@]}" provider="${PROVIDER:-tensorrt}" live=true \
    ! nvvidconv ! 'video/x-raw(memory:NVMM)' ! nv3dsink sync=false
