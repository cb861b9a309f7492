#!/usr/bin/env bash
# Installs the dependency guards, cargo-deny and cargo-machete, from crates.io into
# .cache/cargo-tools (pinned, --locked). Idempotent: the stamp, written last, names the pinned
# versions, so an interrupted install is redone and a finished one costs nothing.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
root="$repo/.cache/cargo-tools"
tools=("cargo-deny@0.20.2" "cargo-machete@0.9.2")
stamp="$root/.installed"
if [ "$(cat "$stamp" 2>/dev/null)" = "${tools[*]}" ] \
    && [ -x "$root/bin/cargo-deny" ] && [ -x "$root/bin/cargo-machete" ]; then
    echo "==> ${tools[*]} already installed in $root"
    exit 0
fi
for tool in "${tools[@]}"; do
    echo "==> installing $tool into $root"
    # A separate target folder, so that the workspace's own build is not invalidated.
    CARGO_TARGET_DIR="$root/build" cargo install --quiet --locked --root "$root" "$tool"
done
rm -rf "$root/build"
echo "${tools[*]}" > "$stamp"
