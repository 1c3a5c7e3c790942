#!/usr/bin/env bash
# Runs every image build.sh made, once, and fails on the first that does
# not work:
#   - each Kestrel image: -version prints "<binary> <version>" with the
#     version of its tag, it runs as 10001:10001 and carries the CA
#     certificates; -healthcheck exits 0 against a live /healthz and 1
#     against a closed port (from inside the image, as compose's checks run);
#   - kestrel/nats with its default command: a JetStream server whose own
#     HEALTHCHECK turns healthy;
#   - kestrel/redis with a password from a file: healthy, NOAUTH without
#     it, PONG with it from another container, appendonly on;
#   - kestrel/mariadb with a database, user and password file: healthy, the
#     user logs in from another container, a restart keeps data and user.
#
# Usage: deploy/images/check.sh [tag]   (default: latest)
# About a minute; needs only docker. Cleans up its containers and network.
set -euo pipefail
prefix=${IMAGE_PREFIX:-kestrel}
tag=${1:-latest}
run=kestrel-check-$$
tmp=$(mktemp -d /tmp/kestrel-check.XXXXXX)
containers=()
cleanup() {
	[ ${#containers[@]} -eq 0 ] || docker rm -f "${containers[@]}" >/dev/null 2>&1 || true
	docker network rm "$run" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
ok() { printf 'check: ok    %s\n' "$*"; }
fail() {
	printf 'check: FAIL  %s\n' "$*" >&2
	exit 1
}
# healthy CONTAINER: waits (up to 90 s) for docker's health status "healthy".
healthy() {
	local s
	for _ in $(seq 180); do
		s=$(docker inspect -f '{{.State.Health.Status}}' "$1")
		[ "$s" = healthy ] && return 0
		[ "$(docker inspect -f '{{.State.Running}}' "$1")" = true ] || {
			docker logs "$1" 2>&1 | tail -20 >&2
			fail "$1 exited"
		}
		sleep 0.5
	done
	docker logs "$1" 2>&1 | tail -20 >&2
	fail "$1 not healthy after 90 s (status $s)"
}
start() { # start NAME docker-run-args...: a detached container on the check network
	local name=$1
	shift
	containers+=("$run-$name")
	docker run -d --name "$run-$name" --network "$run" --network-alias "$name" "$@" >/dev/null
}

docker network create "$run" >/dev/null

# NATS first: the live /healthz every Kestrel image's -healthcheck is tried on.
start nats "$prefix/nats:$tag"
healthy "$run-nats"
ok "$prefix/nats:$tag: default command (JetStream, monitoring on 8222) healthy"

for pair in kestrel-agent:agent kestrel-transfer:transfer kestrel-judge:judge kestrel-nats:nats \
	ops-meta:ops-meta ops-updater:ops-updater kestrel-loadgen:loadgen; do
	bin=${pair%%:*} image=$prefix/${pair#*:}:$tag
	version=$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.version"}}' "$image")
	got=$(docker run --rm "$image" -version)
	[ "$got" = "$bin $version" ] || fail "$image -version: got \"$got\", want \"$bin $version\""
	vtag=$(printf '%s' "$version" | tr -c 'A-Za-z0-9_.-' '-')
	[ "$(docker image inspect -f '{{.Id}}' "$prefix/${pair#*:}:$vtag")" = "$(docker image inspect -f '{{.Id}}' "$image")" ] ||
		fail "$image is not also tagged :$vtag"
	user=$(docker image inspect -f '{{.Config.User}}' "$image")
	[ "$user" = 10001:10001 ] || fail "$image runs as \"$user\", want 10001:10001"
	id=$(docker create "$image")
	if ! docker cp "$id:/etc/ssl/certs/ca-certificates.crt" "$tmp/ca.crt" ||
		! grep -q 'BEGIN CERTIFICATE' "$tmp/ca.crt"; then
		docker rm "$id" >/dev/null
		fail "$image has no CA certificates"
	fi
	docker rm "$id" >/dev/null
	if [ "$bin" != kestrel-loadgen ]; then # a one-shot client: it has no -healthcheck
		docker run --rm --network "container:$run-nats" "$image" -healthcheck http://127.0.0.1:8222/healthz ||
			fail "$image -healthcheck on a live /healthz"
		set +e
		out=$(docker run --rm --network "container:$run-nats" "$image" -healthcheck http://127.0.0.1:1/health 2>&1)
		code=$?
		set -e
		[ $code = 1 ] || fail "$image -healthcheck on a closed port exited $code: $out"
	fi
	ok "$image: $got, user 10001:10001, CA certificates$([ "$bin" = kestrel-loadgen ] || echo ", -healthcheck 0 live / 1 closed")"
done

# Redis with AUTH from a secret file.
printf 'p4ss"w\\rd' >"$tmp/redis-password"
chmod 0644 "$tmp/redis-password"
start redis -v "$tmp/redis-password:/run/secrets/redis-password:ro" -e REDIS_PASSWORD_FILE=/run/secrets/redis-password "$prefix/redis:$tag"
healthy "$run-redis"
got=$(docker exec "$run-redis" redis-cli ping 2>&1 || true)
case $got in *NOAUTH*) ;; *) fail "$prefix/redis: PING without the password answered \"$got\"" ;; esac
got=$(docker run --rm --network "$run" -e REDISCLI_AUTH='p4ss"w\rd' "$prefix/redis:$tag" redis-cli -h redis ping)
[ "$got" = PONG ] || fail "$prefix/redis: PING with the password from another container answered \"$got\""
got=$(docker exec -e REDISCLI_AUTH='p4ss"w\rd' "$run-redis" redis-cli config get appendonly | tail -1)
[ "$got" = yes ] || fail "$prefix/redis: appendonly $got"
[ "$(docker exec "$run-redis" id -un)" = redis ] || fail "$prefix/redis does not run as redis"
ok "$prefix/redis:$tag: healthy, NOAUTH without the password, PONG with it over the network, appendonly yes, user redis"

# MariaDB: database and user from the environment, the password from a file.
printf "s3'cr\`et" >"$tmp/db-password"
chmod 0644 "$tmp/db-password"
start mariadb -v "$tmp/db-password:/run/secrets/db-password:ro" -e MARIADB_DATABASE=kestrel -e MARIADB_USER=opsmeta \
	-e MARIADB_PASSWORD_FILE=/run/secrets/db-password "$prefix/mariadb:$tag"
healthy "$run-mariadb"
got=$(docker run --rm --network "$run" --entrypoint mariadb "$prefix/mariadb:$tag" -h mariadb -u opsmeta "-ps3'cr\`et" kestrel -N -e 'SELECT DATABASE(), CURRENT_USER()')
[ "$got" = "$(printf 'kestrel\topsmeta@%%')" ] || fail "$prefix/mariadb: the user's query answered \"$got\""
if docker run --rm --network "$run" --entrypoint mariadb "$prefix/mariadb:$tag" -h mariadb -u opsmeta -pwrong kestrel -e 'SELECT 1' >/dev/null 2>&1; then
	fail "$prefix/mariadb: a wrong password was accepted"
fi
[ "$(docker exec "$run-mariadb" id -un)" = mysql ] || fail "$prefix/mariadb does not run as mysql"
docker exec "$run-mariadb" mariadb kestrel -e 'CREATE TABLE kept (x INT); INSERT INTO kept VALUES (42)'
docker restart "$run-mariadb" >/dev/null
healthy "$run-mariadb"
got=$(docker run --rm --network "$run" --entrypoint mariadb "$prefix/mariadb:$tag" -h mariadb -u opsmeta "-ps3'cr\`et" kestrel -N -e 'SELECT x FROM kept')
[ "$got" = 42 ] || fail "$prefix/mariadb: after a restart the data is gone or the user cannot log in (\"$got\")"
[ "$(docker logs "$run-mariadb" 2>&1 | grep -c 'first start: initializing')" = 1 ] || fail "$prefix/mariadb initialized twice"
ok "$prefix/mariadb:$tag: healthy, database kestrel and user opsmeta from the environment and a password file, wrong password refused, user mysql, data and user kept across a restart (initialized once)"
echo "check: all images run"
