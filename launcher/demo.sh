#!/usr/bin/env bash
# The main job: enrol the demo's two known faces, then serve the sample clip, annotated, at
# http://127.0.0.1:8080/ (page, /cameras/clip/stream.mjpg for VLC, /api/events, /metrics),
# behind sign-in: it prints the URL and the admin password to use.
# Ctrl-C (or SIGTERM) stops it.
#
#   launcher/demo.sh [SETUP_OPTIONS] [-- LAUNCHER_OPTIONS]
#
# SETUP_OPTIONS go to deploy/setup.sh (e.g. --no-apt), LAUNCHER_OPTIONS to facerec-launcher
# (e.g. -- --mdns). LISTEN, INPUT (the clip) and FACES_DIR (the two faces) may be set; otherwise
# pipelines/demo-assets.sh finds them in ../shared or .cache/demo, or downloads them. Without them
# the demo still serves: camera "clip" becomes a test pattern, with no known faces (announced on
# stderr). FACEREC_BIN_DIR=DIR runs the facerec-model and facerec-launcher already built in DIR
# instead of building release ones (the tests run it with their own build).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
setup_args=()
while [ $# -gt 0 ]; do
    arg="$1"
    shift
    [ "$arg" = -- ] && break
    setup_args+=("$arg")
done
deploy/setup.sh "${setup_args[@]}"

if [ -n "${FACEREC_BIN_DIR:-}" ]; then
    bin="$FACEREC_BIN_DIR"
else
    cargo build --release --locked -p facerec-model -p facerec-launcher
    bin="${CARGO_TARGET_DIR:-$repo/target}/release"
fi

# The clip and the two faces (pipelines/demo-inputs.sh says how they are found).
# shellcheck source=SCRIPTDIR/../pipelines/demo-inputs.sh
source "$repo/pipelines/demo-inputs.sh"
demo_inputs launcher/demo.sh serving 'camera "clip" shows test://?pattern=ball instead of the sample clip'

# The demo's two known faces, enrolled by the same script as pipelines/demo.sh uses.
work="$repo/target/demo"
gallery=()
if [ -n "$faces" ]; then
    FACES_DIR="$faces" DEMO_DIR="$work" FACEREC_MODEL_BIN="$bin/facerec-model" pipelines/demo-gallery.sh
    gallery=(--gallery "$work/model.data")
fi
if [ -n "$clip" ]; then
    source="clip=file://$(realpath "$clip")?loop=true"
else
    source="clip=test://?pattern=ball"
fi
# Sign-in is on: the demo's admin password is made once, kept beside its gallery (readable by
# this user only), and said here with the URL.
password_file="$work/admin-password"
if [ ! -s "$password_file" ]; then
    mkdir -p "$work"
    (umask 077 && head -c 12 /dev/urandom | base64 | tr '+/' '-_' >"$password_file")
fi
echo "launcher/demo.sh: open http://${LISTEN:-127.0.0.1:8080}/ and sign in as admin with password $(cat "$password_file")"
# exec: the launcher takes over this process, so Ctrl-C and SIGTERM reach it directly and no
# child is left behind.
exec "$bin/facerec-launcher" --listen "${LISTEN:-127.0.0.1:8080}" ${gallery[@]+"${gallery[@]}"} \
    --source "$source" --admin-password-file "$password_file" "$@"
