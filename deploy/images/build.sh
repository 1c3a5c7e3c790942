#!/usr/bin/env bash
# Builds Kestrel's container images with nothing pulled from a registry
# (`make images` runs it after `make build`):
#
#   kestrel/{agent,transfer,judge,nats,ops-meta,ops-updater,loadgen}:<version> and :latest
#       FROM scratch: the static binary from bin/ (checked: CGO_ENABLED=0),
#       the host's CA certificates, /etc/passwd and /etc/group with the
#       non-root user kestrel (10001:10001), /data (owned by it, the working
#       directory) and /tmp; <version> is what the binary's -version prints.
#   kestrel/redis, kestrel/mariadb:<debian package version> and :latest
#       FROM kestrel-base:bookworm (base.sh: debootstrap + docker import),
#       redis-server / mariadb-server from Debian's packages (apt inside
#       docker build), each with a small entrypoint for secrets from files.
#
# Usage: deploy/images/build.sh [bin-dir]   (default: bin)
# Environment: IMAGE_PREFIX (default kestrel), IMAGES_NO_CACHE=1 rebuilds
# the Redis and MariaDB layers (fresh packages from the mirror),
# DEBIAN_MIRROR (base.sh).
#
# Cached: base.sh skips an existing base image and docker's layer cache
# skips unchanged layers, so a second run takes seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "${1:-bin}" && pwd)
prefix=${IMAGE_PREFIX:-kestrel}
ca=${CA_CERTIFICATES:-/etc/ssl/certs/ca-certificates.crt}
# The classic builder: it takes FROM kestrel-base:bookworm from the local
# image store and never asks a registry (set DOCKER_BUILDKIT=1 to try BuildKit).
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}

start=$(date +%s)
say() { printf 'images: %s\n' "$*"; }
die() { printf 'images: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker is not installed (apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "cannot talk to the Docker daemon (is it running? are you root or in the docker group?)"
[ -r "$ca" ] || die "no CA certificates at $ca (apt-get install ca-certificates, or set CA_CERTIFICATES)"

# build NAME ARGS... runs docker build ARGS; its output (and the classic
# builder's deprecation notice) is shown only when it fails.
build() {
	local name=$1
	shift
	docker build "$@" >"$ctx/build.log" 2>&1 || {
		cat "$ctx/build.log" >&2
		die "docker build of $name failed"
	}
}

# A docker tag: [A-Za-z0-9_.-], at most 128, not starting with . or -.
tag_of() { local t; t=$(printf '%s' "$1" | tr -c 'A-Za-z0-9_.-' '-'); t=${t#[.-]}; printf '%s' "${t:0:128}"; }

# The binaries: name in bin/, image name, HTTP port and health path (- for
# none), default arguments (JSON array, "" for none).
kestrel_images=(
	"kestrel-agent     agent       1988 /health  [\"-c\",\"/etc/kestrel/agent.yaml\"]"
	"kestrel-transfer  transfer    6060 /health  [\"-c\",\"/etc/kestrel/transfer.yaml\"]"
	"kestrel-judge     judge       6081 /health  [\"-c\",\"/etc/kestrel/judge.yaml\"]"
	"kestrel-nats      nats        8222 /healthz [\"-addr\",\"0.0.0.0:4222\",\"-store\",\"/data/jetstream\",\"-http\",\"0.0.0.0:8222\"]"
	"ops-meta          ops-meta    2000 /health  [\"-c\",\"/etc/kestrel/ops-meta.yaml\"]"
	"ops-updater       ops-updater 2001 /health  [\"-c\",\"/etc/kestrel/ops-updater.yaml\"]"
	"kestrel-loadgen   loadgen     -    -        \"\""
)

ctx=$(mktemp -d /tmp/kestrel-images.XXXXXX)
trap 'rm -rf "$ctx"' EXIT

# The files every scratch image shares (one layer, stored once).
mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/tmp" "$ctx/data"
chmod 1777 "$ctx/rootfs/tmp"
cp "$ca" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
cat >"$ctx/rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
kestrel:x:10001:10001:kestrel:/data:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOF
cat >"$ctx/rootfs/etc/group" <<'EOF'
root:x:0:
kestrel:x:10001:
nogroup:x:65534:
EOF
echo 'hosts: files dns' >"$ctx/rootfs/etc/nsswitch.conf"
chmod 0644 "$ctx/rootfs/etc/passwd" "$ctx/rootfs/etc/group" "$ctx/rootfs/etc/nsswitch.conf"
# Same content, same modification time: docker's cache key for COPY
# includes it, so fix it (the CA file's copy would be new every run).
find "$ctx/rootfs" "$ctx/data" -exec touch -h -d @0 {} +

built=()
for line in "${kestrel_images[@]}"; do
	read -r name image port health cmd <<<"$line"
	b="$bin/$name"
	[ -x "$b" ] || die "$b is missing: run make build first"
	# Static: scratch has no libc. make build sets CGO_ENABLED=0; check it.
	"${GO:-go}" version -m "$b" | grep -q 'CGO_ENABLED=0' ||
		die "$b was not built with CGO_ENABLED=0 (a scratch image needs a static binary): run make build"
	version=$("$b" -version | awk '{print $2}')
	[ -n "$version" ] || die "$b -version printed no version"
	tag=$(tag_of "$version")
	dir="$ctx/$name"
	mkdir -p "$dir"
	cp -a "$ctx/rootfs" "$ctx/data" "$dir/"
	cp "$b" "$dir/$name"
	touch -d @0 "$dir/$name" # the cache follows the binary's content, not its build time
	{
		echo "FROM scratch"
		echo "COPY rootfs/ /"
		echo "COPY --chown=10001:10001 data/ /data/"
		echo "USER 10001:10001"
		echo "WORKDIR /data"
		if [ "$port" != - ]; then
			echo "EXPOSE $port"
			[ "$name" = kestrel-nats ] && echo "EXPOSE 4222 6222"
			echo "HEALTHCHECK --interval=10s --timeout=6s --start-period=20s --retries=3 CMD [\"/usr/local/bin/$name\", \"-healthcheck\", \"http://127.0.0.1:$port$health\"]"
		fi
		echo "ENTRYPOINT [\"/usr/local/bin/$name\"]"
		[ "$cmd" = '""' ] || echo "CMD $cmd"
		# Last, so a new binary rebuilds only these two steps.
		echo "COPY $name /usr/local/bin/$name"
		echo "LABEL org.opencontainers.image.title=\"$name\" org.opencontainers.image.version=\"$version\" org.opencontainers.image.source=\"https://github.com/kestrel-mon/kestrel\""
	} >"$dir/Dockerfile"
	t0=$(date +%s)
	build "$prefix/$image" -t "$prefix/$image:$tag" -t "$prefix/$image:latest" "$dir"
	say "$prefix/$image:$tag ($(($(date +%s) - t0)) s)"
	built+=("$prefix/$image:$tag")
done

# Redis and MariaDB from the project's own Debian base image.
"$here/base.sh"
nocache=()
[ "${IMAGES_NO_CACHE:-}" = 1 ] && nocache=(--no-cache)
for image in redis mariadb; do
	case $image in
	redis) pkg=redis-server ;;
	mariadb) pkg=mariadb-server ;;
	esac
	t0=$(date +%s)
	build "$prefix/$image" "${nocache[@]}" -t "$prefix/$image:latest" -f "$here/$image/Dockerfile" "$here"
	# Tagged with the Debian package's version (without its epoch), as the image carries it.
	version=$(docker run --rm --entrypoint dpkg-query "$prefix/$image:latest" -W -f '${Version}' "$pkg")
	tag=$(tag_of "${version#*:}")
	docker tag "$prefix/$image:latest" "$prefix/$image:$tag"
	say "$prefix/$image:$tag ($pkg $version, $(($(date +%s) - t0)) s)"
	built+=("$prefix/$image:$tag")
done

say "built in $(($(date +%s) - start)) s:"
for i in "${built[@]}"; do
	printf '  %-40s %s\n' "$i" "$(docker image inspect -f '{{.Size}}' "$i" | awk '{printf "%.1f MB", $1/1e6}')"
done
