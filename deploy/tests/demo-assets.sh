#!/usr/bin/env bash
# pipelines/demo-assets.sh, the one place that finds or fetches the demo's clip and two faces:
# (a) shared present: used in place, no network; (b) shared hidden: downloaded from a local copy
# (python3 -m http.server on loopback) into the cache, sha256 checked, a damaged cached file is
# fetched again, and a later run needs no server; (c) a tampered copy is refused and leaves
# nothing; (d) an unreachable URL says why; (e) pipelines/demo.sh then falls back to a test
# pattern, announced, and still writes its JPEGs (needs the plugin that `cargo test` built:
# target/debug/deps/libgstfacerec.so, or $BIN_DIR/libgstfacerec.so). No Rust build here.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
script="$repo/pipelines/demo-assets.sh"
real="${FACEREC_SHARED_DIR:-$repo/../shared}/testdata/face_recognition"
files=(short_hamilton_clip.mp4 lin-manuel-miranda.png alex-lacamoire.png)
for f in "${files[@]}"; do
    [ -f "$real/$f" ] || { echo "demo-assets test: $real/$f is missing (set FACEREC_SHARED_DIR)" >&2; exit 1; }
done
tmp="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
# expect WHAT GOT WANT
expect() { [ "$2" = "$3" ] || fail "$1:"$'\n'"  got:  $2"$'\n'"  want: $3"; }
# run_assets ENV...: runs the script with ENV, into $rc, $out, $err.
run_assets() {
    rc=0
    env "$@" "$script" >"$tmp/out" 2>"$tmp/err" || rc=$?
    out="$(cat "$tmp/out")"
    err="$(cat "$tmp/err")"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
listing() { find "$1" -mindepth 1 -printf '%f\n' | LC_ALL=C sort | tr '\n' ' '; }
hidden="$tmp/hidden" # a shared folder without the test data
mkdir -p "$hidden"
unreachable=http://127.0.0.1:9

# (a) Shared present: its folder, nothing fetched, no cache made (the URL would fail).
mkdir -p "$tmp/shared/testdata/face_recognition"
for f in "${files[@]}"; do ln -s "$real/$f" "$tmp/shared/testdata/face_recognition/$f"; done
run_assets FACEREC_SHARED_DIR="$tmp/shared" FACEREC_DEMO_CACHE="$tmp/cache-a" FACEREC_DEMO_URL="$unreachable"
expect "(a) exit" "$rc" 0
expect "(a) folder" "$out" "$tmp/shared/testdata/face_recognition"
expect "(a) stderr" "$err" ""
[ ! -e "$tmp/cache-a" ] || fail "(a) a cache was made: $(listing "$tmp/cache-a")"
echo "ok (a) shared present: used in place, no download"

# A local copy of upstream: good/ as published, bad/ with the clip changed, bad3/ with the third
# file changed.
www="$tmp/www"
mkdir -p "$www/good" "$www/bad" "$www/bad3"
for f in "${files[@]}"; do
    cp "$real/$f" "$www/good/$f"
    cp "$real/$f" "$www/bad/$f"
    cp "$real/$f" "$www/bad3/$f"
done
printf 'x' >>"$www/bad/short_hamilton_clip.mp4"
printf 'x' >>"$www/bad3/alex-lacamoire.png"
: >"$tmp/server.log"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$www" >"$tmp/server.log" 2>&1 &
server=$!
port=""
for _ in $(seq 100); do
    port="$(sed -n 's/^Serving HTTP on 127.0.0.1 port \([0-9]*\) .*/\1/p' "$tmp/server.log")"
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || fail "the HTTP server did not start: $(cat "$tmp/server.log")"
base="http://127.0.0.1:$port"

# (b) Shared hidden: the three files downloaded into the cache, checked, nothing else left.
cache="$tmp/cache-b"
run_assets FACEREC_SHARED_DIR="$hidden" FACEREC_DEMO_CACHE="$cache" FACEREC_DEMO_URL="$base/good/"
expect "(b) exit" "$rc" 0
expect "(b) folder" "$out" "$cache"
expect "(b) stderr" "$err" "demo-assets: fetched short_hamilton_clip.mp4, lin-manuel-miranda.png, alex-lacamoire.png from $base/good into $cache (sha256 checked)"
expect "(b) cache" "$(listing "$cache")" "alex-lacamoire.png lin-manuel-miranda.png short_hamilton_clip.mp4 "
for f in "${files[@]}"; do expect "(b) $f" "$(sha "$cache/$f")" "$(sha "$real/$f")"; done
expect "(b) requests" "$(grep -c '"GET /good/' "$tmp/server.log")" 3
# A damaged cached file is fetched again, alone.
printf 'x' >>"$cache/lin-manuel-miranda.png"
run_assets FACEREC_SHARED_DIR="$hidden" FACEREC_DEMO_CACHE="$cache" FACEREC_DEMO_URL="$base/good"
expect "(b) damaged: exit" "$rc" 0
expect "(b) damaged: stderr" "$err" "demo-assets: fetched lin-manuel-miranda.png from $base/good into $cache (sha256 checked)"
expect "(b) damaged: sha256" "$(sha "$cache/lin-manuel-miranda.png")" "$(sha "$real/lin-manuel-miranda.png")"
expect "(b) damaged: requests" "$(grep -c '"GET /good/' "$tmp/server.log")" 4

# (c) A tampered clip: refused, the cache left empty.
cache="$tmp/cache-c"
bad_sha="$(sha "$www/bad/short_hamilton_clip.mp4")"
run_assets FACEREC_SHARED_DIR="$hidden" FACEREC_DEMO_CACHE="$cache" FACEREC_DEMO_URL="$base/bad"
expect "(c) exit" "$rc" 3
expect "(c) stdout" "$out" ""
expect "(c) stderr" "$err" "demo-assets: no short_hamilton_clip.mp4, lin-manuel-miranda.png, alex-lacamoire.png in $hidden/testdata/face_recognition or $cache, and fetching $base/bad/short_hamilton_clip.mp4 failed: sha256 mismatch: expected 0b5ff4c55a4cd69f79956f312681730881fe1e2a9e6146e75c31636dffcc7e28, got $bad_sha"
expect "(c) cache" "$(listing "$cache")" ""
# The third file tampered: the two good ones stay (checked), the bad one leaves nothing.
cache="$tmp/cache-c3"
bad_sha="$(sha "$www/bad3/alex-lacamoire.png")"
run_assets FACEREC_SHARED_DIR="$hidden" FACEREC_DEMO_CACHE="$cache" FACEREC_DEMO_URL="$base/bad3"
expect "(c3) exit" "$rc" 3
expect "(c3) stderr" "$err" "demo-assets: no alex-lacamoire.png in $hidden/testdata/face_recognition or $cache, and fetching $base/bad3/alex-lacamoire.png failed: sha256 mismatch: expected affd4bba70510b20286c5b392e6a73ef149f4dff02105a09e19ce80d7d138707, got $bad_sha"
expect "(c3) cache" "$(listing "$cache")" "lin-manuel-miranda.png short_hamilton_clip.mp4 "
echo "ok (c) a tampered download is refused with the sha256 message and leaves nothing"

# (b, again) The server gone: the cache alone serves, silently.
kill "$server"
wait "$server" 2>/dev/null || true
server=""
cache="$tmp/cache-b"
run_assets FACEREC_SHARED_DIR="$hidden" FACEREC_DEMO_CACHE="$cache" FACEREC_DEMO_URL="$base/good"
expect "(b) cached: exit" "$rc" 0
expect "(b) cached: folder" "$out" "$cache"
expect "(b) cached: stderr" "$err" ""
echo "ok (b) shared hidden: downloaded from a local copy, checked, then served from the cache"

# (d) Nothing reachable: curl's reason (the time it took masked).
cache="$tmp/cache-d"
run_assets FACEREC_SHARED_DIR="$hidden" FACEREC_DEMO_CACHE="$cache" FACEREC_DEMO_URL="$unreachable"
expect "(d) exit" "$rc" 3
expect "(d) stdout" "$out" ""
expect "(d) stderr" "$(sed -E 's/after [0-9]+ ms/after N ms/' <<<"$err")" "demo-assets: no short_hamilton_clip.mp4, lin-manuel-miranda.png, alex-lacamoire.png in $hidden/testdata/face_recognition or $cache, and fetching $unreachable/short_hamilton_clip.mp4 failed: (7) Failed to connect to 127.0.0.1 port 9 after N ms: Couldn't connect to server"
expect "(d) cache" "$(listing "$cache")" ""
echo "ok (d) an unreachable URL: the reason is given"

# (e) pipelines/demo.sh in that state: announced, then a test pattern annotated into JPEGs.
plugin="${BIN_DIR:-${CARGO_TARGET_DIR:-$repo/target}/debug/deps}/libgstfacerec.so"
[ -f "$plugin" ] || fail "(e) $plugin is missing: run cargo test -p gst-facerec first, or set BIN_DIR"
# The plugin alone in a folder: GStreamer scans every library in the plugin path.
mkdir -p "$tmp/bin"
ln -s "$plugin" "$tmp/bin/libgstfacerec.so"
rc=0
env -u INPUT -u FACES_DIR BIN_DIR="$tmp/bin" OUT_DIR="$tmp/annotated" DEMO_DIR="$tmp/demo" \
    GST_REGISTRY="$tmp/registry.bin" GST_PLUGIN_PATH= FACEREC_SHARED_DIR="$hidden" \
    FACEREC_DEMO_CACHE="$cache" FACEREC_DEMO_URL="$unreachable" \
    "$repo/pipelines/demo.sh" --no-apt --no-build >"$tmp/out" 2>"$tmp/err" || rc=$?
expect "(e) exit" "$rc" 0
expect "(e) summary" "$(tail -1 "$tmp/out")" "annotated frames: 60 JPEG files in $tmp/annotated"
expect "(e) stderr" "$(sed -E 's/after [0-9]+ ms/after N ms/' "$tmp/err")" "demo-assets: no short_hamilton_clip.mp4, lin-manuel-miranda.png, alex-lacamoire.png in $hidden/testdata/face_recognition or $cache, and fetching $unreachable/short_hamilton_clip.mp4 failed: (7) Failed to connect to 127.0.0.1 port 9 after N ms: Couldn't connect to server
pipelines/demo.sh: running without them: annotating 60 frames of videotestsrc pattern=ball instead of the sample clip, no face is known"
expect "(e) frames" "$(find "$tmp/annotated" -name 'frame-*.jpg' -size +1k | wc -l)" 60
echo "ok (e) pipelines/demo.sh falls back to a test pattern, announced, and writes 60 JPEGs"
