#!/usr/bin/env bash
# Checks the images deploy/tests/build-images.sh built, by running what they hold. `podman run`
# cannot work in this sandbox (setrlimit is refused), so each image's filesystem is exported
# and its programs run under chroot, in a private mount namespace that mimics the pod: read-only
# root, a tmpfs on /tmp, the shared "emptyDir" on /model, the admin password "Secret" read-only
# on /etc/facerec/admin, the non-root user 1001 with group 0, and the image's own environment.
#
#   deploy/tests/images.sh CHECK      CHECK: config | gst-inspect | launcher-help | model-copy |
#                                            model-arm64 | enrol | serve
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="${FACEREC_IMAGE_WORKDIR:-/var/tmp/facerec-images}"
launcher_image="localhost/facerec-launcher:ci"
model_version="${FACEREC_MODEL_VERSION:-2401010000}"
model_image="localhost/facerec-model:$model_version"
clip="${FACEREC_CLIP:-$repo/../shared/testdata/face_recognition/short_hamilton_clip.mp4}"
faces="$work/known-faces"

fail() { echo "FAILED: $*" >&2; exit 1; }

# The image's filesystem, exported once per image ID (older exports are removed).
rootfs() {
    local image="$1" id dir
    id="$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null)" ||
        fail "$image not built: run deploy/tests/build-images.sh"
    local tag
    tag="$(echo "${image#localhost/}" | tr -c 'a-z0-9\n' '-')"
    dir="$work/rootfs/$tag-${id:0:12}"
    if [ ! -f "$dir/.complete" ]; then
        rm -rf "$work/rootfs/$tag"-*
        mkdir -p "$dir"
        local cid
        cid="$(podman create --no-healthcheck "$image" /bin/true)"
        podman export "$cid" | tar -x -C "$dir"
        podman rm "$cid" >/dev/null
        touch "$dir/.complete"
    fi
    echo "$dir"
}

# The image's Config.Env, one VAR=value per line.
image_env() {
    podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$1" | sed '/^$/d'
}

# in_image IMAGE ROOT [--model DIR] [--media DIR] [--data DIR] [--secret DIR] [--rw] -- CMD...:
# runs CMD as the pod would (--secret: read-only on /etc/facerec/admin, as the Secret volume).
in_image() {
    local image="$1" root="$2"
    shift 2
    local model="" media="" data="" secret="" ro=1
    while [ "$1" != "--" ]; do
        case "$1" in
            --model) model="$2"; shift 2 ;;
            --media) media="$2"; shift 2 ;;
            --data) data="$2"; shift 2 ;;
            --secret) secret="$2"; shift 2 ;;
            --rw) ro=0; shift ;;
            *) fail "in_image: unknown option $1" ;;
        esac
    done
    shift
    local -a env_args=()
    while IFS= read -r line; do env_args+=("$line"); done < <(image_env "$image")
    # Mount points the runtime would create.
    mkdir -p "$root/model" "$root/media" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" \
        "$root/var/lib/facerec" "$root/etc/facerec/admin"
    # In a subshell (a `$(...)` or a background job) exec, so that the job's PID is the
    # program's and signals reach it.
    local run=()
    [ "$BASHPID" = "$$" ] || run=(exec)
    ROOT="$root" MODEL="$model" MEDIA="$media" DATA="$data" SECRET="$secret" RO="$ro" \
        "${run[@]}" unshare --mount --propagation private -- bash -c '
        set -e
        mount --bind "$ROOT" "$ROOT"
        mount --rbind /dev "$ROOT/dev"
        mount -t proc proc "$ROOT/proc" 2>/dev/null || mount --rbind /proc "$ROOT/proc"
        mount --rbind /sys "$ROOT/sys"
        mount -t tmpfs -o mode=1777,size=64m tmpfs "$ROOT/tmp"
        [ -z "$MODEL" ] || mount --bind "$MODEL" "$ROOT/model"
        [ -z "$MEDIA" ] || mount --bind -o ro "$MEDIA" "$ROOT/media"
        [ -z "$DATA" ] || mount --bind "$DATA" "$ROOT/var/lib/facerec"
        [ -z "$SECRET" ] || mount --bind -o ro "$SECRET" "$ROOT/etc/facerec/admin"
        [ "$RO" = 0 ] || mount -o remount,bind,ro "$ROOT"
        exec chroot --userspec=1001:0 "$ROOT" "$@"
    ' in_image env -i "${env_args[@]}" "$@"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

check_config() {
    local cfg
    cfg="$(podman image inspect --format \
        'user={{.Config.User}} entrypoint={{json .Config.Entrypoint}} ports={{json .Config.ExposedPorts}} health={{json .Config.Healthcheck}}' \
        "$launcher_image")"
    echo "$launcher_image: $cfg"
    [[ "$cfg" == *"user=1001 "* ]] || fail "the launcher image does not run as user 1001"
    [[ "$cfg" == *'entrypoint=["/usr/bin/facerec-launcher"]'* ]] || fail "the entrypoint is not facerec-launcher"
    [[ "$cfg" == *'"8080/tcp"'* ]] || fail "port 8080 is not exposed"
    [[ "$cfg" == *"/healthz"* ]] || fail "no HEALTHCHECK on /healthz (build with --format docker)"
    image_env "$launcher_image" | grep -qx 'GST_PLUGIN_PATH=/usr/lib/facerec/gstreamer-1.0' ||
        fail "GST_PLUGIN_PATH is not /usr/lib/facerec/gstreamer-1.0"
    local root
    root="$(rootfs "$launcher_image")"
    for f in usr/bin/facerec-launcher usr/bin/facerec-model usr/lib/facerec/gstreamer-1.0/libgstfacerec.so \
        usr/lib/facerec/libonnxruntime.so usr/share/facerec/models/yunet_s_dynamic.onnx \
        usr/share/facerec/models/dlib_face_recognition_resnet_model_v1.onnx; do
        [ -s "$root/$f" ] || fail "/$f missing from the launcher image"
    done
    ! [ -e "$root/usr/bin/cargo" ] || fail "the runtime image carries a Rust toolchain"
    local label
    label="$(podman image inspect --format '{{index .Config.Labels "io.facerec.model.version"}} user={{.Config.User}}' "$model_image")"
    [ "$label" = "$model_version user=1001" ] || fail "model image label/user: '$label'"
    echo "$model_image: version label $model_version, user 1001"
    podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'facerec-(launcher|model)' || true
}

check_gst_inspect() {
    local root out
    root="$(rootfs "$launcher_image")"
    out="$(in_image "$launcher_image" "$root" -- gst-inspect-1.0 facerec 2>&1)" ||
        fail "gst-inspect-1.0 facerec in the image: $out"
    grep -q "gallery" <<<"$out" && grep -q "provider" <<<"$out" ||
        fail "gst-inspect-1.0 facerec did not list the element's properties: $out"
    grep -E "^ *(Filename|Version|License)" <<<"$out" | sed 's/^ */  /'
    # The elements the launcher's source pipelines use are in the image too.
    local missing=()
    for e in v4l2src souphttpsrc rtspsrc multipartdemux jpegdec jpegenc decodebin videoconvert \
        videorate appsink qtdemux avdec_h264; do
        in_image "$launcher_image" "$root" -- gst-inspect-1.0 --exists "$e" || missing+=("$e")
    done
    [ ${#missing[@]} -eq 0 ] || fail "GStreamer elements missing from the image: ${missing[*]}"
    echo "facerec and the source elements the launcher uses are all present"
}

check_launcher_help() {
    local root out
    root="$(rootfs "$launcher_image")"
    out="$(in_image "$launcher_image" "$root" -- facerec-launcher --help 2>&1)" ||
        fail "facerec-launcher --help: $out"
    for flag in --listen --source --config --gallery --provider --max-fps --mdns; do
        grep -q -- "$flag" <<<"$out" || fail "facerec-launcher --help does not mention $flag"
    done
    echo "facerec-launcher --help runs in the image and lists the contract's flags"
}

# The init container's command, exactly as the image declares it, fills the emptyDir.
check_model_copy() {
    local root empty cmd
    root="$(rootfs "$model_image")"
    empty="$work/emptydir"
    rm -rf "$empty" && mkdir -p "$empty" && chmod 0777 "$empty"
    local -a cmd_args=()
    while IFS= read -r line; do cmd_args+=("$line"); done < <(
        podman image inspect --format '{{range .Config.Cmd}}{{println .}}{{end}}' "$model_image" | sed '$d')
    [ ${#cmd_args[@]} -gt 0 ] || fail "the model image has no command"
    in_image "$model_image" "$root" --model "$empty" -- "${cmd_args[@]}" || fail "the model image's command failed"
    cmp "$empty/model.data" "$work/model-context/model.data" || fail "model.data copied wrongly"
    [ "$(cat "$empty/model.version")" = "$model_version" ] || fail "model.version is not $model_version"
    [ "$(stat -c %u "$empty/model.data")" = 1001 ] || fail "model.data is not owned by the pod user"
    ! ls -A "$empty" | grep -q tmp || fail "a temporary file was left in the emptyDir"
    echo "the model image's command copied model.data ($(stat -c %s "$empty/model.data") bytes) and model.version into /model"
}

# The delivery pipeline builds the Jetson's arm64 model image on an x86-64 cluster: that works
# without emulation only because model/Containerfile runs nothing. Proved with an arm64 base
# that could not run anything here (one file, no binaries).
check_model_arm64() {
    local base="localhost/facerec-test-empty:arm64" image="localhost/facerec-model-test:arm64"
    local tiny="$work/arm64-base"
    rm -rf "$tiny" && mkdir -p "$tiny/rootfs/etc"
    echo "root:x:0:0:root:/:/sbin/nologin" > "$tiny/rootfs/etc/passwd"
    tar -C "$tiny/rootfs" -cf "$tiny/base.tar" .
    podman import --quiet --arch arm64 "$tiny/base.tar" "$base" >/dev/null
    podman build --isolation=chroot --pull=never --platform linux/arm64 \
        -f "$repo/model/Containerfile" --build-arg BASE_IMAGE="$base" \
        --build-arg MODEL_VERSION="$model_version" -t "$image" "$work/model-context" >"$tiny/build.log" 2>&1 ||
        { tail -20 "$tiny/build.log" >&2; fail "arm64 build of model/Containerfile"; }
    local arch
    arch="$(podman image inspect --format '{{.Os}}/{{.Architecture}} {{index .Config.Labels "io.facerec.model.version"}}' "$image")"
    podman rmi "$image" "$base" >/dev/null
    rm -rf "$tiny"
    [ "$arch" = "linux/arm64 $model_version" ] || fail "built $arch, expected linux/arm64 $model_version"
    echo "model/Containerfile built a linux/arm64 image on $(uname -m) with no emulation"
}

# The image's own facerec-model, ONNX Runtime and models enrol the demo's faces.
check_enrol() {
    local root out
    root="$(rootfs "$launcher_image")"
    local scratch="$work/enrol"
    rm -rf "$scratch" && mkdir -p "$scratch/known" && chmod 0777 "$scratch"
    cp "$faces"/*.png "$scratch/known/" 2>/dev/null || cp -L "$faces"/* "$scratch/known/"
    out="$(in_image "$launcher_image" "$root" --model "$scratch" -- \
        facerec-model train /model/known -o /model/model.data 2>&1)" || fail "facerec-model train in the image: $out"
    out="$(in_image "$launcher_image" "$root" --model "$scratch" -- facerec-model inspect /model/model.data 2>&1)" ||
        fail "facerec-model inspect: $out"
    grep -q "Lin-Manuel Miranda" <<<"$out" && grep -q "Alex Lacamoire" <<<"$out" ||
        fail "the enrolled gallery lacks the demo's people: $out"
    echo "facerec-model in the image enrolled the demo's two faces with the image's ONNX Runtime and models"
}

# The Deployment in miniature: the launcher from the image, as user 1001 on a read-only root,
# with sign-in on and the admin password from a read-only file (the Deployment's Secret), reads
# the gallery the model image copied, streams the sample clip to a signed-in client, answers
# the probes without credentials, and exits within the Deployment's grace period on SIGTERM.
check_serve() {
    [ -f "$clip" ] || fail "sample clip $clip missing"
    local root empty port log pid
    root="$(rootfs "$launcher_image")"
    empty="$work/emptydir"
    [ -s "$empty/model.data" ] || check_model_copy >/dev/null
    local media="$work/media"
    mkdir -p "$media" && cp -f "$clip" "$media/clip.mp4"
    port="$(free_port)"
    log="$work/launcher.log"
    # The data folder on a writable volume of its own, as the Deployment's PVC, under the
    # read-only root; owned by the image's user.
    local data="$work/data"
    rm -rf "$data" && mkdir -p "$data" && chown 1001:0 "$data"
    # The admin password, as the Secret volume holds it (a file written with a trailing newline,
    # which the launcher strips), readable by any user, on a read-only mount.
    local secret="$work/admin-secret" password
    password="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
    rm -rf "$secret" && mkdir -p "$secret" && chmod 0755 "$secret"
    printf '%s\n' "$password" > "$secret/password" && chmod 0444 "$secret/password"
    in_image "$launcher_image" "$root" --model "$empty" --media "$media" --data "$data" \
        --secret "$secret" -- \
        env FACEREC_LISTEN="127.0.0.1:$port" FACEREC_GALLERY=/model/model.data \
        FACEREC_ADMIN_PASSWORD_FILE=/etc/facerec/admin/password \
        FACEREC_SOURCES="cam0=file:///media/clip.mp4?loop=true" FACEREC_PROVIDER=cpu \
        /usr/bin/facerec-launcher >"$log" 2>&1 &
    pid=$!
    # Whatever happens, the launcher does not outlive the check.
    trap 'kill -KILL $pid 2>/dev/null || true' EXIT
    local base="http://127.0.0.1:$port" ready=""
    for _ in $(seq 1 120); do
        kill -0 $pid 2>/dev/null || { cat "$log" >&2; fail "the launcher exited early"; }
        if curl -fsS -o /dev/null "$base/readyz" 2>/dev/null; then ready=1; break; fi
        sleep 0.5
    done
    [ -n "$ready" ] || { tail -20 "$log" >&2; fail "/readyz not ready within 60 s"; }
    [ "$(curl -fsS "$base/healthz")" = ok ] || fail "/healthz did not answer ok"
    echo "/healthz ok, /readyz ready (no credentials)"
    # Sign-in is on by default: the API wants credentials, and takes the Secret's password.
    local code
    code="$(curl -sS -o /dev/null -w '%{http_code}' "$base/api/cameras")"
    [ "$code" = 401 ] || fail "GET /api/cameras without credentials answered $code, not 401"
    code="$(curl -sS -o /dev/null -w '%{http_code}' -u "admin:$password" "$base/api/cameras")"
    [ "$code" = 200 ] || fail "GET /api/cameras as admin (Basic, the password file's) answered $code, not 200"
    echo "GET /api/cameras: 401 without credentials, 200 as admin with the password file's password"

    # One MJPEG part, and a recognition event naming someone from the gallery that the init
    # container delivered: read as they arrive, until found or a deadline.
    FACEREC_TEST_BASIC="admin:$password" python3 - "$base" <<'PY' || fail "see above"
import base64, os, sys, time, urllib.request

base = sys.argv[1]
basic = "Basic " + base64.b64encode(os.environ["FACEREC_TEST_BASIC"].encode()).decode()


def get(path, timeout):
    """GET base + path, signed in as admin (HTTP Basic)."""
    request = urllib.request.Request(base + path, headers={"Authorization": basic})
    return urllib.request.urlopen(request, timeout=timeout)


with get("/cameras/cam0/stream.mjpg", 15) as r:
    kind = r.headers.get("Content-Type", "")
    assert kind.startswith("multipart/x-mixed-replace"), f"stream Content-Type {kind!r}"
    data, soi, eoi = b"", b"\xff\xd8", b"\xff\xd9"
    while not (data.find(soi) >= 0 and data.find(eoi, data.find(soi) + 2) >= 0):
        chunk = r.read1(65536)
        assert chunk, f"stream ended after {len(data)} bytes without a JPEG"
        data += chunk
    start = data.find(soi)
    size = data.find(eoi, start + 2) + 2 - start
    print(f"MJPEG stream ({kind.split(';')[0]}): first frame, {size} bytes of JPEG")

deadline = time.time() + 30
with get("/api/events", 30) as r:
    while time.time() < deadline:
        line = r.readline()
        assert line, "event stream ended"
        if b'"Lin-Manuel Miranda"' in line:
            print("recognition events name Lin-Manuel Miranda (gallery from the model image)")
            break
    else:
        sys.exit("FAILED: Lin-Manuel Miranda was not recognised within 30 s")

# The event is in the history on the data volume, with its face crop.
with get("/api/history?name=Lin-Manuel%20Miranda&limit=1", 10) as r:
    import json
    events = json.load(r)["events"]
assert events and events[0]["face_url"], f"no stored event with a face crop: {events}"
with get(events[0]["face_url"], 10) as r:
    crop = r.read()
assert crop[:2] == b"\xff\xd8", "the face crop is not a JPEG"
print(f"history: event {events[0]['id']} stored with a {len(crop)}-byte face crop")
PY
    [ -s "$data/events.db" ] && ls "$data/crops/"*.jpg >/dev/null 2>&1 \
        || fail "no events.db or face crop on the data volume"
    echo "data volume: events.db and $(ls "$data/crops" | wc -l) face crop(s) written by uid 1001"

    local grace start elapsed status
    grace="$("$repo/.cache/deploy-venv/bin/python" "$repo/deploy/tests/manifests.py" termination-grace x86)"
    start=$(date +%s.%N)
    kill -TERM $pid
    status=0
    for _ in $(seq 1 $((grace * 10))); do
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 $pid 2>/dev/null; then
        fail "the launcher was still running ${grace} s after SIGTERM (terminationGracePeriodSeconds)"
    fi
    wait $pid || status=$?
    elapsed=$(python3 -c "import time; print(f'{time.time() - $start:.2f}')")
    trap - EXIT
    [ "$status" = 0 ] || { tail -5 "$log" >&2; fail "the launcher exited with status $status after SIGTERM"; }
    echo "SIGTERM: exited with status 0 in ${elapsed} s (grace period ${grace} s)"
}

case "${1:-}" in
    config) check_config ;;
    gst-inspect) check_gst_inspect ;;
    launcher-help) check_launcher_help ;;
    model-copy) check_model_copy ;;
    model-arm64) check_model_arm64 ;;
    enrol) check_enrol ;;
    serve) check_serve ;;
    *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
