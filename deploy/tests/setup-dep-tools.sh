#!/usr/bin/env bash
# Installs the dependency guards, cargo-deny and cargo-machete, from crates.io into
# .cache/cargo-tools (pinned, --locked). Idempotent: the stamp, written last, names the pinned
# versions, so an interrupted install is redone and a finished one costs nothing.
#
# No registry this machine kind reaches ships a build of either (PyPI's cargo-deny is 0.14), so
# they are compiled, but without their release profile (cargo-deny's is fat LTO with one codegen
# unit: 6 of this phase's 8 minutes on 2 cores). Unoptimised, both check this workspace in under
# 3 s; see tool_profile in deploy/tests/tool-profile.sh.
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
source "$repo/deploy/tests/tool-profile.sh"
echo "==> installing ${tools[*]} into $root"
# One target folder for both (they share most dependencies), apart from the workspace's build.
CARGO_TARGET_DIR="$root/build" tool_profile cargo install --quiet --locked --root "$root" "${tools[@]}"

rm -rf "$root/build"
echo "${tools[*]}" > "$stamp"
