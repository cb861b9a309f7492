#!/usr/bin/env bash
# Jetson CSI camera (NVMM) -> nvvidconv to RGBA system memory -> facerec on TensorRT -> window (not runnable off-Jetson).
set -euo pipefail
facerec=(facerec)
[ -n "${GALLERY:-}" ] && facerec+=(gallery="$GALLERY")
exec gst-launch-1.0 nvarguscamerasrc sensor-id="${SENSOR_ID:-0}" \
    ! 'video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1' \
    ! nvvidconv ! video/x-raw,format=RGBA \
    ! "${facerec[@]}" provider="${PROVIDER:-tensorrt}" live=true \
    ! nvvidconv ! 'video/x-raw(memory:NVMM)' ! nv3dsink sync=false
