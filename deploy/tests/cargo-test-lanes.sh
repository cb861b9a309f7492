#!/usr/bin/env bash
# `cargo test --workspace`, built once and run as two lanes at once:
#   live:  the launcher's integration tests, which drive a real launcher on the clip and wait
#          on real time (a camera plays at its own rate) about as much as they compute; within
#          the lane they stay one binary, and one launcher, at a time (`serial()`);
#   other: every other test (unit, integration and doc tests of all crates).
# Both lanes select the whole workspace, so they share one feature resolution and one build:
# nothing is compiled twice. The "other" lane's targets come from `cargo metadata`, so a new
# test file lands in a lane without an edit here. Each line of output starts with its lane's
# name; the script fails if either lane does.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
live_package=facerec-launcher

cargo test --locked --workspace --no-run

mapfile -t lanes < <(cargo metadata --locked --format-version 1 --no-deps | python3 -c '
import json, sys
live_package = sys.argv[1]
live, other = [], []
for p in json.load(sys.stdin)["packages"]:
    for t in p["targets"]:
        if "test" in t["kind"]:
            (live if p["name"] == live_package else other).append("--test=" + t["name"])
print(" ".join(live))
print(" ".join(other))
' "$live_package")
read -ra live_args <<<"${lanes[0]}"
read -ra other_args <<<"${lanes[1]}"
[ ${#live_args[@]} -gt 0 ] && [ ${#other_args[@]} -gt 0 ] || { echo "cargo-test-lanes.sh: an empty lane" >&2; exit 1; }

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
# Streams the lane's output with its name in front of each line, and records its exit status.
lane() {
    local name="$1" start=$SECONDS
    shift
    { local rc=0; "$@" 2>&1 || rc=$?; echo "$rc $((SECONDS - start))" >"$logs/$name.status"; } |
        sed -u "s/^/[$name] /"
}
lane live cargo test --locked --workspace --no-fail-fast "${live_args[@]}" &
lane other bash -c 'rc=0
    cargo test --locked --workspace --no-fail-fast --lib --bins "$@" || rc=$?
    cargo test --locked --workspace --no-fail-fast --doc || rc=$?
    exit $rc' _ "${other_args[@]}" &
wait
status=0
for name in live other; do
    read -r rc took <"$logs/$name.status"
    echo "==> lane $name: exit $rc after $took s"
    [ "$rc" = 0 ] || status=1
done
exit $status
