#!/bin/sh
# kestrel/redis health check: PING on 127.0.0.1:6379 answers PONG (with the
# password the entrypoint was given, if any).
if [ -r /run/redis/password ]; then
	REDISCLI_AUTH=$(cat /run/redis/password)
	export REDISCLI_AUTH
fi
[ "$(redis-cli -h 127.0.0.1 -p "${REDIS_PORT:-6379}" ping 2>&1)" = PONG ]
