#!/usr/bin/env bash
# Enrols the demo's two known faces into $DEMO_DIR/model.data (default target/demo; needs target/release/facerec-model or $FACEREC_MODEL_BIN).
# The faces come from $FACES_DIR, else from pipelines/demo-assets.sh (../shared, .cache/demo, or a download).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
faces="${FACES_DIR:-}"
[ -n "$faces" ] || faces="$("$repo/pipelines/demo-assets.sh")"
work="${DEMO_DIR:-$repo/target/demo}"
mkdir -p "$work/known"
# The file name is the person's name, as in the original demo's face-images/ folder.
ln -sf "$faces/lin-manuel-miranda.png" "$work/known/Lin-Manuel Miranda.png"
ln -sf "$faces/alex-lacamoire.png" "$work/known/Alex Lacamoire.png"
"${FACEREC_MODEL_BIN:-$repo/target/release/facerec-model}" train "$work/known" -o "$work/model.data"
