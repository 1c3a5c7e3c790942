#!/usr/bin/env bash
# Builds the Debian base image kestrel-base:bookworm from Debian's packages
# (no registry is needed): debootstrap --variant=minbase into a folder,
# then docker import. Skipped when the image exists (the cache: about two
# minutes the first time, nothing after). Needs root (or sudo), debootstrap
# and a reachable Debian mirror ($DEBIAN_MIRROR, default deb.debian.org).
set -euo pipefail
image=${KESTREL_BASE_IMAGE:-kestrel-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if docker image inspect "$image" >/dev/null 2>&1; then
	echo "base image $image: cached"
	exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
if ! command -v debootstrap >/dev/null; then
	echo "base image: installing debootstrap" >&2
	$sudo apt-get install -y -qq debootstrap >/dev/null
fi
dir=$(mktemp -d /tmp/kestrel-base.XXXXXX)
trap '$sudo rm -rf "$dir"' EXIT
echo "base image $image: debootstrap bookworm from $mirror (about two minutes)"
$sudo debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 || {
	tail -20 "$dir.log" >&2
	exit 1
}
# Smaller and reproducible enough: no apt lists, docs or caches.
$sudo rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
$sudo tar -C "$dir" -c . | docker import \
	-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	-c 'CMD ["/bin/bash"]' - "$image" >/dev/null
rm -f "$dir.log"
echo "base image $image: built"
