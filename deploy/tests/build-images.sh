#!/usr/bin/env bash
# Builds the launcher and model images for real on this machine, as CI does:
#
#   1. a Debian bookworm base made locally with debootstrap and `podman import` (no registry is
#      reachable here), cached as a tarball and as a podman image between runs;
#   2. deploy/Containerfile with that base as both BUILDER_IMAGE and RUNTIME_IMAGE, taking the
#      binaries built on the host (PREBUILT), the models and ONNX Runtime from a staged build
#      context: Debian's rustc is too old for the build stage and rustup cannot download here;
#   3. model/Containerfile with a gallery enrolled from the demo's two known faces.
#
# Usage: deploy/tests/build-images.sh    (env: FACEREC_IMAGE_WORKDIR, default /var/tmp/facerec-images;
#        FACEREC_IMAGE_BUILD=source builds the launcher through the Containerfile's Rust stage)
# Prints the image names it built; deploy/tests/images.sh checks them.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Outside the repository: the staged context holds the models from ../shared, which are never
# copied into the checkout.
work="${FACEREC_IMAGE_WORKDIR:-/var/tmp/facerec-images}"
base_image="localhost/facerec-base:bookworm"
launcher_image="localhost/facerec-launcher:ci"
model_version="${FACEREC_MODEL_VERSION:-2401010000}"
model_image="localhost/facerec-model:$model_version"
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
t0=$SECONDS
lap() { say "$1 ($((SECONDS - t0)) s so far)"; }

mkdir -p "$work"

# --- 1. base image (deploy/tests/base-image.sh, which deploy/test.sh also starts early) ---------
bash "$repo/deploy/tests/base-image.sh"
lap "base ready"

# --- 2. launcher image ---------------------------------------------------------------------------
# The host's binaries. FACEREC_IMAGE_PROFILE=release (the default) builds them as users do;
# deploy/test.sh passes `dev`, the profile its tests were just built in, so that the images reuse
# that build (only the crates whose features differ without the tests' dev-dependencies are
# compiled again, instead of a whole thin-LTO release build) and test the packaging: the same
# sources and features, less optimisation. Debug info is stripped when staged.
profile="${FACEREC_IMAGE_PROFILE:-release}"
case "$profile" in
    release) profile_dir=release ;;
    dev) profile_dir=debug ;;
    *) echo "build-images.sh: FACEREC_IMAGE_PROFILE must be release or dev, not '$profile'" >&2; exit 2 ;;
esac
bin_dir="$repo/target/$profile_dir"
say "building the $profile binaries on the host"
(cd "$repo" && cargo build --profile "$profile" --locked -p gst-facerec -p facerec-launcher -p facerec-model)
lap "binaries built"

model_dir=""
for d in "${FACEREC_MODEL_DIR:-}" "$repo/.cache/models" "$repo/../shared/models" /usr/share/facerec/models; do
    if [ -n "$d" ] && [ -f "$d/yunet_s_dynamic.onnx" ] && [ -f "$d/dlib_face_recognition_resnet_model_v1.onnx" ]; then
        model_dir="$(cd "$d" && pwd)"
        break
    fi
done
[ -n "$model_dir" ] || { echo "build-images.sh: no models found: run deploy/setup.sh" >&2; exit 1; }
ort_lib="$(readlink -f "${ORT_DYLIB_PATH:-$repo/.cache/onnxruntime/libonnxruntime.so}")"
[ -f "$ort_lib" ] || { echo "build-images.sh: no ONNX Runtime at $ort_lib: run deploy/setup.sh" >&2; exit 1; }

if [ "${FACEREC_IMAGE_BUILD:-prebuilt}" = source ]; then
    # The Containerfile's default path, as real users build: the Rust build stage compiles the
    # workspace, and ONNX Runtime comes from the PyPI wheel. No Rust image can be pulled here,
    # so the builder is the base plus a C compiler and this machine's Rust toolchain (rustup
    # cannot download one). Slow, a full release build in the container: opt-in, not in CI.
    builder="localhost/facerec-rust:host"
    if ! podman image exists "$builder"; then
        bctx="$work/builder-context"
        rm -rf "$bctx" && mkdir -p "$bctx"
        tar -C "$(rustc --print sysroot)" -cf "$bctx/toolchain.tar" bin lib
        # The host's trusted CAs, in case its HTTPS goes through a proxy with its own CA:
        # cargo and pip in the build stage reach crates.io and PyPI the way the host does.
        cp /etc/ssl/certs/ca-certificates.crt "$bctx/host-ca.crt"
        {
            echo "FROM $base_image"
            echo "RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates && rm -rf /var/lib/apt/lists/*"
            echo "ADD toolchain.tar /usr/local/rust/"
            echo "COPY host-ca.crt /usr/local/share/host-ca.crt"
            echo "ENV PATH=/usr/local/rust/bin:/usr/local/cargo/bin:/usr/sbin:/usr/bin:/sbin:/bin CARGO_HOME=/usr/local/cargo \\"
            echo "    CARGO_HTTP_CAINFO=/usr/local/share/host-ca.crt SSL_CERT_FILE=/usr/local/share/host-ca.crt PIP_CERT=/usr/local/share/host-ca.crt"
        } > "$bctx/Containerfile"
        say "podman build $builder (this machine's Rust toolchain)"
        podman build --isolation=chroot --pull=never -t "$builder" "$bctx" >"$work/builder-build.log" 2>&1 ||
            { tail -30 "$work/builder-build.log" >&2; exit 1; }
        rm -rf "$bctx"
    fi
    # The checkout's tracked and new files (no target/, no .cache/), plus the models.
    ctx="$work/source-context"
    rm -rf "$ctx" && mkdir -p "$ctx/.image-models"
    (cd "$repo" && git ls-files -co --exclude-standard -z | tar --null --ignore-failed-read -T - -cf -) | tar -x -C "$ctx"
    cp "$model_dir/yunet_s_dynamic.onnx" "$model_dir/dlib_face_recognition_resnet_model_v1.onnx" "$ctx/.image-models/"
    say "podman build $launcher_image (multi-stage, from source)"
    podman build --isolation=chroot --pull=never --format docker --layers \
        -f "$repo/deploy/Containerfile" \
        --build-arg BUILDER_IMAGE="$builder" \
        --build-arg RUNTIME_IMAGE="$base_image" \
        --build-arg MODELS_DIR=.image-models \
        -t "$launcher_image" "$ctx" >"$work/launcher-build.log" 2>&1 ||
        { tail -30 "$work/launcher-build.log" >&2; exit 1; }
else
    # The staged context mirrors what the Containerfile's build arguments name. Files are replaced
    # only when they changed, so podman's layer cache still hits on an unchanged tree.
    ctx="$work/launcher-context"
    mkdir -p "$ctx/prebuilt" "$ctx/models" "$ctx/ort"
    stage() { cmp -s "$1" "$2" || cp -f "$1" "$2"; }
    for f in facerec-launcher facerec-model libgstfacerec.so; do
        strip --strip-debug -o "$work/stripped-$f" "$bin_dir/$f"
        stage "$work/stripped-$f" "$ctx/prebuilt/$f"
        rm -f "$work/stripped-$f"
    done
    stage "$model_dir/yunet_s_dynamic.onnx" "$ctx/models/yunet_s_dynamic.onnx"
    stage "$model_dir/dlib_face_recognition_resnet_model_v1.onnx" "$ctx/models/dlib_face_recognition_resnet_model_v1.onnx"
    stage "$ort_lib" "$ctx/ort/libonnxruntime.so"

    say "podman build $launcher_image"
    podman build --isolation=chroot --pull=never --format docker --layers \
        -f "$repo/deploy/Containerfile" \
        --build-arg BUILDER_IMAGE="$base_image" \
        --build-arg RUNTIME_IMAGE="$base_image" \
        --build-arg PREBUILT=prebuilt \
        --build-arg MODELS_DIR=models \
        --build-arg ORT_LIB=context:ort/libonnxruntime.so \
        -t "$launcher_image" "$ctx" >"$work/launcher-build.log" 2>&1 ||
        { tail -30 "$work/launcher-build.log" >&2; exit 1; }
fi
lap "launcher image built"

# --- 3. model image ------------------------------------------------------------------------------
# The demo's gallery: its two known faces, named by file.
faces="${FACES_DIR:-$repo/../shared/testdata/face_recognition}"
known="$work/known-faces"
mctx="$work/model-context"
mkdir -p "$known" "$mctx"
ln -sf "$faces/lin-manuel-miranda.png" "$known/Lin-Manuel Miranda.png"
ln -sf "$faces/alex-lacamoire.png" "$known/Alex Lacamoire.png"
if [ ! -s "$mctx/model.data" ] || [ "$bin_dir/facerec-model" -nt "$mctx/model.data" ]; then
    say "enrolling the demo's known faces into $mctx/model.data"
    FACEREC_MODEL_DIR="$model_dir" ORT_DYLIB_PATH="$ort_lib" \
        "$bin_dir/facerec-model" train "$known" -o "$mctx/model.data"
fi
say "podman build $model_image"
podman build --isolation=chroot --pull=never --layers \
    -f "$repo/model/Containerfile" \
    --build-arg BASE_IMAGE="$base_image" \
    --build-arg MODEL_VERSION="$model_version" \
    -t "$model_image" "$mctx" >"$work/model-build.log" 2>&1 ||
    { tail -30 "$work/model-build.log" >&2; exit 1; }
lap "model image built"
# Earlier builds' untagged images; the layers the next build reuses stay.
podman image prune -f >/dev/null

echo "LAUNCHER_IMAGE=$launcher_image"
echo "MODEL_IMAGE=$model_image"
echo "MODEL_VERSION=$model_version"
echo "MODEL_DATA=$mctx/model.data"
