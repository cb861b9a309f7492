#!/usr/bin/env bash
# Finds the demo's sample clip and two known faces, or fetches them; prints the folder that holds
# short_hamilton_clip.mp4, lin-manuel-miranda.png and alex-lacamoire.png.
#
#   dir="$(pipelines/demo-assets.sh)"
#
# Looks in $FACEREC_SHARED_DIR/testdata/face_recognition (default: ../shared beside the
# repository), then in the cache $FACEREC_DEMO_CACHE (default .cache/demo), then downloads what
# the cache lacks from $FACEREC_DEMO_URL (default: the face_recognition project's examples, MIT,
# pinned by commit). Each download goes to a temporary file in the cache, is checked against its
# sha256 and only then renamed into place, so a failed or tampered download leaves nothing.
# Exit 3 when the files cannot be had: one line on stderr says what is missing, where it looked,
# the URL tried and why it failed (the demo scripts then fall back to a test pattern).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${FACEREC_SHARED_DIR:-$repo/../shared}/testdata/face_recognition"
cache="${FACEREC_DEMO_CACHE:-$repo/.cache/demo}"
url="${FACEREC_DEMO_URL:-https://raw.githubusercontent.com/ageitgey/face_recognition/2e2dccea9dd0ce730c8d464d0f67c6eebb40c9d1/examples}"
url="${url%/}"
files=(short_hamilton_clip.mp4 lin-manuel-miranda.png alex-lacamoire.png)
# The shared copies' values, which are upstream's files at that commit.
declare -A sha256=(
    [short_hamilton_clip.mp4]=0b5ff4c55a4cd69f79956f312681730881fe1e2a9e6146e75c31636dffcc7e28
    [lin-manuel-miranda.png]=1f29c132951d7741431b32aaaf569d79a11bc690b04b843f12b7e306f080599a
    [alex-lacamoire.png]=affd4bba70510b20286c5b392e6a73ef149f4dff02105a09e19ce80d7d138707
)

# 1. The shared test data: read-only and trusted, used in place.
if [ -f "$shared/${files[0]}" ] && [ -f "$shared/${files[1]}" ] && [ -f "$shared/${files[2]}" ]; then
    echo "$shared"
    exit 0
fi

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# 2. The cache: a file counts only if it still has its sha256 (a damaged one is fetched again).
missing=()
for f in "${files[@]}"; do
    if ! [ -f "$cache/$f" ] || [ "$(sha_of "$cache/$f")" != "${sha256[$f]}" ]; then
        missing+=("$f")
    fi
done
if [ ${#missing[@]} = 0 ]; then
    echo "$cache"
    exit 0
fi

# 3. Download, one file at a time; the first failure ends the attempt (without network, every
# file would fail the same way, each after its timeout).
tmp=""
trap 'rm -f "$tmp"' EXIT
fetch() {
    local f="$1" err got
    if ! mkdir -p "$cache" 2>/dev/null || ! tmp="$(mktemp "$cache/.$f.XXXXXX" 2>/dev/null)"; then
        reason="cannot write to $cache"
        return 1
    fi
    # Bounded: 10 s to connect, 120 s in all, so a machine without network does not hang.
    if ! err="$(curl -fsSL --connect-timeout 10 --max-time 120 -o "$tmp" "$url/$f" 2>&1)"; then
        err="${err##*curl: }"
        reason="${err//$'\n'/ }"
        return 1
    fi
    got="$(sha_of "$tmp")"
    if [ "$got" != "${sha256[$f]}" ]; then
        reason="sha256 mismatch: expected ${sha256[$f]}, got $got"
        return 1
    fi
    # (errexit is off in a function called from `if`: each step is checked.)
    if ! chmod 644 "$tmp" || ! mv -f "$tmp" "$cache/$f"; then
        reason="cannot write to $cache"
        return 1
    fi
    tmp=""
}
fetched=()
for f in "${missing[@]}"; do
    reason=""
    if ! fetch "$f"; then
        rm -f "$tmp"
        tmp=""
        left=("${missing[@]:${#fetched[@]}}")
        list="$(IFS=,; echo "${left[*]}")"
        echo "demo-assets: no ${list//,/, } in $shared or $cache, and fetching $url/$f failed: $reason" >&2
        exit 3
    fi
    fetched+=("$f")
done
list="$(IFS=,; echo "${fetched[*]}")"
echo "demo-assets: fetched ${list//,/, } from $url into $cache (sha256 checked)" >&2
echo "$cache"
