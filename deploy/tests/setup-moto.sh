#!/usr/bin/env bash
# Installs moto's S3 server (PyPI `moto[server]`) into .cache/moto-venv for the S3 tests in
# model/tests/s3.rs, which look for $FACEREC_MOTO_SERVER, then .cache/moto-venv/bin/moto_server,
# then moto_server on PATH; and the openssl command, for their HTTPS test. Idempotent: the
# stamp, written last, names the pinned requirement, so an interrupted install is redone and a
# finished one costs nothing.
set -euo pipefail
# The HTTPS test in model/tests/s3.rs makes its private CA with the openssl command.
if ! command -v openssl >/dev/null; then
    echo "==> installing openssl (apt)"
    apt-get install -y --no-install-recommends openssl >/dev/null
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$repo/.cache/moto-venv"
requirement="moto[server]==5.2.5" # pinned: CI tests against one known server behaviour
stamp="$venv/.requirement"
if [ -x "$venv/bin/moto_server" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$requirement" ]; then
    echo "==> moto already installed in $venv"
    exit 0
fi
echo "==> installing $requirement into $venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement"
echo "$requirement" > "$stamp"
