#!/usr/bin/env bash
# Installs what the browser test (launcher/tests/browser/enrol.mjs) needs, into .cache/ (idempotent):
#   .cache/browser-node   puppeteer-core from npm, pinned; it drives Debian's Chromium
#                         (/usr/bin/chromium, apt-get install chromium), since downloading a
#                         browser build does not work here (PUPPETEER_SKIP_DOWNLOAD=1).
# 24.x is the newest line that still runs on Debian's Node 20 (25.x wants Node >= 22.12).
# Run the test with:
#   NODE_PATH=.cache/browser-node/node_modules node launcher/tests/browser/enrol.mjs URL TOKEN NAME
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
node_dir="$repo/.cache/browser-node"
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if [ ! -x /usr/bin/chromium ]; then
    echo "setup-browser.sh: /usr/bin/chromium is missing (apt-get install chromium)" >&2
    exit 1
fi
command -v node >/dev/null || { echo "setup-browser.sh: node is required (apt-get install nodejs npm)" >&2; exit 1; }
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 18 ]; then
    echo "setup-browser.sh: puppeteer-core 24 needs Node >= 18, this is $(node --version)" >&2
    exit 1
fi
node_packages=("puppeteer-core@24.43.1")
want="${node_packages[*]}"
if [ "$(cat "$node_dir/.packages" 2>/dev/null)" != "$want" ]; then
    command -v npm >/dev/null || { echo "setup-browser.sh: npm is required (apt-get install npm)" >&2; exit 1; }
    say "installing ${node_packages[*]} into $node_dir"
    rm -rf "$node_dir" && mkdir -p "$node_dir"
    (cd "$node_dir" && echo '{"private": true}' > package.json &&
        PUPPETEER_SKIP_DOWNLOAD=1 npm install --silent --no-audit --no-fund --loglevel=error \
            "${node_packages[@]}" >/dev/null)
    echo "$want" > "$node_dir/.packages"
fi
say "browser test tools ready: $node_dir, $(/usr/bin/chromium --version 2>/dev/null)"
