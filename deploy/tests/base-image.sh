#!/usr/bin/env bash
# The Debian bookworm base of the CI images, made locally: debootstrap (minbase) from the host's
# own mirror and suites, imported into podman as localhost/facerec-base:bookworm. No registry is
# reachable here. Cached as a tarball and as the podman image; safe to run again (and to run
# while other work goes on: deploy/test.sh starts it in the background early, since it mostly
# waits on the network and the disk). Installs podman and debootstrap if missing.
#
# Usage: deploy/tests/base-image.sh    (env: FACEREC_IMAGE_WORKDIR, default /var/tmp/facerec-images)
set -euo pipefail
work="${FACEREC_IMAGE_WORKDIR:-/var/tmp/facerec-images}"
base_image="localhost/facerec-base:bookworm"
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
mkdir -p "$work"

# --- tools ---------------------------------------------------------------------------------------
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- the base image ----------------------------------------------------------------------------
# The host's own mirror and suites (bookworm, -updates, -security), so the image gets the same
# package versions as the machine the binaries were built on.
sources=/etc/apt/sources.list.d/debian.sources
mirror="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$sources" 2>/dev/null || true)"
mirror="${mirror:-http://deb.debian.org/debian}"
base_tar="$work/debian-bookworm-minbase.tar"
if podman image exists "$base_image"; then
    say "base image $base_image already present"
else
    if [ ! -s "$base_tar" ]; then
        say "debootstrap bookworm (minbase) from $mirror"
        rootfs="$work/rootfs-base"
        rm -rf "$rootfs" "$base_tar.part"
        debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
            { tail -20 "$work/debootstrap.log" >&2; exit 1; }
        if [ -f "$sources" ]; then
            cp "$sources" "$rootfs/etc/apt/sources.list.d/debian.sources"
            rm -f "$rootfs/etc/apt/sources.list"
        fi
        chroot "$rootfs" apt-get clean
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
        tar -C "$rootfs" -cf "$base_tar.part" .
        mv "$base_tar.part" "$base_tar"
        rm -rf "$rootfs"
    fi
    say "importing $base_tar as $base_image"
    podman import --quiet "$base_tar" "$base_image" >/dev/null
fi

