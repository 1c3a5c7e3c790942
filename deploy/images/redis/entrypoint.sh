#!/bin/sh
# kestrel/redis entrypoint. For redis-server (the default command; a
# command starting with "-" gets redis-server in front) it writes
# /run/redis/kestrel.conf, readable only by redis, and adds
# "--include /run/redis/kestrel.conf" after the command's own arguments (a
# config file first, then options, as redis-server takes them):
#   REDIS_PASSWORD_FILE  a file holding the password (a mounted secret), or
#   REDIS_PASSWORD       the password itself
# set requirepass there; without either there is no password (and
# redis-server's protected mode refuses clients from other hosts). Other
# commands run as they are.
set -eu
case ${1:-} in
-*) set -- redis-server "$@" ;;
esac
if [ "${1:-}" = redis-server ]; then
	shift
	umask 077
	conf=/run/redis/kestrel.conf
	pw=${REDIS_PASSWORD:-}
	if [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
		pw=$(cat "$REDIS_PASSWORD_FILE")
	fi
	: >"$conf"
	rm -f /run/redis/password
	if [ -n "$pw" ]; then
		esc=$(printf '%s' "$pw" | sed 's/\\/\\\\/g; s/"/\\"/g')
		printf 'requirepass "%s"\n' "$esc" >"$conf"
		printf '%s' "$pw" >/run/redis/password # for kestrel-redis-health
	fi
	unset REDIS_PASSWORD pw esc
	set -- redis-server "$@" --include "$conf"
fi
exec "$@"
