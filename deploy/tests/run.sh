#!/usr/bin/env bash
# The deployment tests: manifests, Tekton pipelines and container images, checked offline on
# this machine. Installs what it needs (setup-tools.sh), builds both images for real
# (build-images.sh), then runs every check and ends with the line "N passed, M failed".
#
#   deploy/tests/run.sh                  everything
#   deploy/tests/run.sh --no-images      manifests and pipelines only
#
# The S3 publish/pull tests are Rust tests (model/tests/s3.rs) and run under `cargo test`.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
images=1
for arg in "$@"; do
    case "$arg" in
        --no-images) images=0 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

passed=0
failed=0
failures=()
start=$SECONDS
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# check NAME CMD...: runs CMD, shows its output indented, counts it.
check() {
    local name="$1" t0=$SECONDS
    shift
    if "$@" >"$log" 2>&1; then
        passed=$((passed + 1))
        printf 'PASS  %s (%d s)\n' "$name" $((SECONDS - t0))
        sed 's/^/      /' "$log"
    else
        failed=$((failed + 1))
        failures+=("$name")
        printf 'FAIL  %s (%d s)\n' "$name" $((SECONDS - t0))
        tail -40 "$log" | sed 's/^/      /'
    fi
}

py="$repo/.cache/deploy-venv/bin/python"
node_modules="$repo/.cache/deploy-node/node_modules"
check "install the offline validators (setup-tools.sh)" bash deploy/tests/setup-tools.sh

check "manifests: every kustomization renders" "$py" deploy/tests/manifests.py render
check "manifests: Kubernetes kinds valid against Kubernetes 1.27 and 1.33 schemas (strict)" \
    "$py" deploy/tests/manifests.py k8s-schema
check "manifests: Route, SCC and Tekton kinds valid against OpenShift's schemas (strict)" \
    "$py" deploy/tests/manifests.py crd-schema
check "manifests: least privilege, probes, limits, model and camera wiring" \
    "$py" deploy/tests/manifests.py policy
check "manifests: a privileged or probe-less Deployment (mutated copies) fails the checks" \
    "$py" deploy/tests/manifests.py mutations
check "argocd: the Application example is valid" \
    env NODE_PATH="$node_modules" node deploy/tests/argocd.mjs deploy/microshift/argocd/application.yaml
check "tekton: tekton-lint finds no error or warning in the tasks, pipelines and runs" \
    "$node_modules/.bin/tekton-lint" --color=false --max-warnings 0 'model/tekton/**/*.yaml'
check "demo assets: found in shared, else fetched (sha256 checked), else a test pattern, announced" \
    bash deploy/tests/demo-assets.sh

if [ "$images" = 1 ]; then
    check "images: build the launcher and model images (debootstrap base, podman build)" \
        bash deploy/tests/build-images.sh
    check "images: launcher image config (user 1001, port 8080, health check, entrypoint, files)" \
        bash deploy/tests/images.sh config
    check "images: gst-inspect-1.0 facerec in the launcher image" bash deploy/tests/images.sh gst-inspect
    check "images: facerec-launcher --help in the launcher image" bash deploy/tests/images.sh launcher-help
    check "images: the model image's command copies model.data into the mounted /model" \
        bash deploy/tests/images.sh model-copy
    check "images: model/Containerfile builds a linux/arm64 image without emulation" \
        bash deploy/tests/images.sh model-arm64
    check "images: facerec-model in the launcher image enrols faces (its ONNX Runtime and models)" \
        bash deploy/tests/images.sh enrol
    check "images: the launcher serves the clip from the image (probes, MJPEG, names) and stops on SIGTERM" \
        bash deploy/tests/images.sh serve
fi

echo
echo "deploy/tests: $((SECONDS - start)) s"
for f in "${failures[@]}"; do echo "failed: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
