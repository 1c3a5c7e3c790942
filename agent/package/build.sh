#!/bin/sh
# build.sh <bindir> <distdir> — the fleet package of kestrel-agent.
#
# Writes <distdir>/kestrel-agent-<version>.tar.gz holding, at its root:
#   kestrel-agent   the binary from <bindir>
#   agent.yaml      the default config (agent/package/agent.yaml)
#   control         start|stop|restart|status|tail (agent/package/control)
# and the sidecars .sha256 and .md5 (sha256sum/md5sum format, file name only),
# plus .sig when SIGN_KEY names an ed25519 private key file (signed with
# <bindir>/ops-meta sign sign).
#
# VERSION (default: git describe) is made safe for a file name and for
# ops-meta, which reads the version after the last "-<digit>" of the name:
# it starts with a digit and has no "-<digit>" inside.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: VERSION=<v> [SIGN_KEY=<private key file>] $0 <bindir> <distdir>" >&2
	exit 2
fi
bindir=$1
distdir=$2
here=$(cd "$(dirname "$0")" && pwd -P)
name=kestrel-agent

raw=${VERSION:-}
if [ -z "$raw" ]; then
	raw=$(git -C "$here" describe --tags --always --dirty 2>/dev/null || echo dev)
fi
version=$(printf '%s' "$raw" | sed \
	-e 's/[^A-Za-z0-9._+-]/_/g' \
	-e 's/^[vV]\([0-9]\)/\1/' \
	-e 's/-\([0-9]\)/_\1/g')
case "$version" in
[0-9]*) ;;
*) version="0+$version" ;;
esac
version=$(printf '%s' "$version" | cut -c1-100)

fail() {
	echo "build.sh: $*" >&2
	exit 1
}

[ -x "$bindir/$name" ] || fail "no executable $bindir/$name: run 'make build' first"
[ -f "$here/control" ] || fail "missing $here/control"
[ -f "$here/agent.yaml" ] || fail "missing $here/agent.yaml"
if [ -n "${SIGN_KEY:-}" ]; then
	[ -r "$SIGN_KEY" ] || fail "SIGN_KEY=$SIGN_KEY is not a readable file"
	[ -x "$bindir/ops-meta" ] || fail "SIGN_KEY is set but $bindir/ops-meta is missing: run 'make build' (it signs with 'ops-meta sign sign')"
fi

mkdir -p "$distdir"
distdir=$(cd "$distdir" && pwd -P)
stage=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM

cp "$bindir/$name" "$stage/$name"
cp "$here/agent.yaml" "$stage/agent.yaml"
cp "$here/control" "$stage/control"
chmod 0755 "$stage/$name" "$stage/control"
chmod 0644 "$stage/agent.yaml"
printf '%s\n' "$version" >"$stage/VERSION"

file="$name-$version.tar.gz"
out="$distdir/$file"
rm -f "$out" "$out.sha256" "$out.md5" "$out.sig"
# Files at the root, owned by root, no absolute paths: what ops-updater unpacks.
(cd "$stage" && tar --owner=0 --group=0 --numeric-owner -cf - control "$name" agent.yaml VERSION 2>/dev/null ||
	tar -cf - control "$name" agent.yaml VERSION) | gzip -9n >"$out.tmp"
mv "$out.tmp" "$out"

if [ -n "${SIGN_KEY:-}" ]; then
	# Writes .sha256, .md5 and .sig.
	"$bindir/ops-meta" sign sign -key "$SIGN_KEY" "$out" >/dev/null || fail "signing $out failed"
	[ -s "$out.sig" ] || fail "ops-meta sign did not write $out.sig"
else
	(cd "$distdir" && sha256sum "$file" >"$file.sha256" && md5sum "$file" >"$file.md5")
fi
echo "$out"
