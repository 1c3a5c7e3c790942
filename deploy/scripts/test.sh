#!/usr/bin/env bash
# Kestrel's whole test suite: `make test` runs this (the README's test command,
# and what CI runs through .ci/run).
#
#   1. gofmt and go vet over every module
#   2. go test -race over every module of the workspace
#   3. each module alone (GOWORK=off): build and short tests
#   4. the end-to-end tests (real binaries as processes, deploy/e2e)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
MODULES=(proto lib agent transfer judge deploy ops-meta ops-updater)

step() { printf '\n=== %s (%s)\n' "$*" "$(date +%H:%M:%S)"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

command -v go >/dev/null || fail "go is not on PATH (Go 1.26 lives at /usr/local/go/bin)"
for bin in redis-server mariadbd mariadb-install-db; do
	command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] ||
		fail "$bin is missing: install it with 'sudo apt-get install redis-server mariadb-server' (or run .ci/run, which does)"
done
export PATH=$PATH:/usr/sbin

step "gofmt"
unformatted=$(git ls-files '*.go' | xargs -r gofmt -l)
[ -z "$unformatted" ] || fail "gofmt would change: $unformatted"

step "go vet"
for m in "${MODULES[@]}"; do (cd "$m" && go vet ./...) || fail "go vet in $m"; done
(cd deploy && go vet -tags e2e ./...) || fail "go vet -tags e2e in deploy"

step "go test -race (workspace)"
for m in "${MODULES[@]}"; do
	echo "--- $m"
	(cd "$m" && go test -race -count=1 -timeout 20m ./...) || fail "go test -race in $m"
done

step "each module alone (GOWORK=off): build and short tests"
for m in "${MODULES[@]}"; do
	echo "--- $m"
	(cd "$m" && GOWORK=off go build ./... && GOWORK=off go test -short -count=1 -timeout 10m ./...) || fail "GOWORK=off build/test in $m"
done

step "end-to-end tests (deploy/e2e)"
e2elog=$(mktemp)
if ! (cd deploy && go test -tags e2e -race -count=1 -timeout 30m -v ./e2e/) >"$e2elog" 2>&1; then
	cat "$e2elog"
	fail "end-to-end tests"
fi
grep -E '^(--- |ok|PASS)' "$e2elog" || true
rm -f "$e2elog"

step "all tests passed"
