#!/usr/bin/env bash
# Runs the browser checks of the page against mock-server.mjs (no launcher, models or GStreamer):
# page.mjs at a phone's width, then enrol.mjs at desktop and phone widths (sign-in off), then
# auth.mjs with sign-in on (an admin and a viewer), each on a fresh mock.
# Needs deploy/tests/setup-browser.sh first. Screenshots go to $1 (default a temporary folder).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
shots="${1:-$(mktemp -d)}"
mkdir -p "$shots"
token="mock-token"
mock_pid=""
stop_mock() { if [ -n "$mock_pid" ]; then kill "$mock_pid" 2>/dev/null || true; wait "$mock_pid" 2>/dev/null || true; mock_pid=""; fi; }
trap stop_mock EXIT
# Any arguments go to the mock (--users for sign-in).
start_mock() {
    stop_mock
    local log="$shots/mock.log"
    # Emptied here, not by the background redirection, so the last mock's URL is never read.
    : > "$log"
    node "$here/mock-server.mjs" --port 0 --token "$token" --quiet "$@" > "$log" 2>&1 &
    mock_pid=$!
    for _ in $(seq 50); do
        url="$(sed -n 's/^listening on //p' "$log")"
        [ -n "$url" ] && return 0
        sleep 0.1
    done
    echo "run-mock.sh: the mock server did not start: $(cat "$log")" >&2
    exit 1
}
passed=0 failed=0
run() {
    local what="$1"; shift
    echo "--- $what"
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "--- $what FAILED"; fi
}
start_mock; run "page.mjs (390x844)" node "$here/page.mjs" "$url" "$token" "$shots"
start_mock; run "enrol.mjs (1280x900)" env SCREENSHOT="$shots/enrol-desktop.png" node "$here/enrol.mjs" "$url" "$token" "Miranda"
start_mock; run "enrol.mjs (390x844)" env VIEWPORT=390x844 SCREENSHOT="$shots/enrol-phone.png" node "$here/enrol.mjs" "$url" "$token" "Zoë \"Z\" <&>"
admin_password="mock-admin-pw" viewer_password="mock-viewer-pw"
start_mock --users "admin:$admin_password:admin,watcher:$viewer_password:viewer"
run "auth.mjs (sign-in on)" node "$here/auth.mjs" "$url" "$admin_password" watcher "$viewer_password" "$shots"
echo "screenshots: $shots"
echo "browser: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
