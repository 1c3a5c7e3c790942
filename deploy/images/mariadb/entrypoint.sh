#!/bin/bash
# kestrel/mariadb entrypoint. On the first start of mariadbd (the default
# command; a command starting with "-" gets mariadbd in front) with an
# empty /var/lib/mysql, it initializes the data directory and, from the
# environment (each *_PASSWORD also as *_PASSWORD_FILE, a file holding it):
#   MARIADB_DATABASE        creates this database
#   MARIADB_USER            creates this user (from any host) with
#   MARIADB_PASSWORD        this password and every right on MARIADB_DATABASE
#   MARIADB_ROOT_PASSWORD   lets root@localhost log in with it too
# root@localhost and mysql@localhost otherwise log in only through the
# socket, as those system users (unix_socket). Later starts leave the data
# as it is. Other commands run as they are.
set -euo pipefail
die() { echo "kestrel-mariadb: $*" >&2; exit 1; }

# secret NAME prints $NAME, or the content of the file $NAME_FILE.
secret() {
	local file=${1}_FILE
	if [ -n "${!file:-}" ]; then
		cat "${!file}" || die "cannot read $file=${!file}"
	else
		printf '%s' "${!1:-}"
	fi
}
sql_string() { local s=${1//\\/\\\\}; printf "'%s'" "${s//\'/\'\'}"; }
sql_ident() { printf '`%s`' "${1//\`/\`\`}"; }

initialize() {
	local datadir=/var/lib/mysql sock=/run/mysqld/init.sock db=${MARIADB_DATABASE:-} user=${MARIADB_USER:-} pass root
	pass=$(secret MARIADB_PASSWORD)
	root=$(secret MARIADB_ROOT_PASSWORD)
	if [ -n "$user" ] && [ -z "$pass" ]; then
		die "MARIADB_USER=$user needs MARIADB_PASSWORD or MARIADB_PASSWORD_FILE"
	fi
	echo "kestrel-mariadb: first start: initializing $datadir" >&2
	# --user: the second all-privilege account (unix_socket) is mysql@localhost, who runs this.
	mariadb-install-db --datadir="$datadir" --user=mysql --skip-test-db --auth-root-authentication-method=socket >/dev/null ||
		die "mariadb-install-db failed"
	mariadbd --datadir="$datadir" --skip-networking --socket="$sock" &
	local pid=$! i
	for i in $(seq 120); do
		mariadb-admin --socket="$sock" ping --silent 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || die "the setup server exited"
		sleep 0.5
	done
	{
		if [ -n "$db" ]; then
			echo "CREATE DATABASE IF NOT EXISTS $(sql_ident "$db");"
		fi
		if [ -n "$user" ]; then
			echo "CREATE USER $(sql_string "$user")@'%' IDENTIFIED BY $(sql_string "$pass");"
			if [ -n "$db" ]; then
				echo "GRANT ALL ON $(sql_ident "$db").* TO $(sql_string "$user")@'%';"
			fi
		fi
		if [ -n "$root" ]; then
			echo "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD($(sql_string "$root"));"
		fi
		echo "FLUSH PRIVILEGES;"
	} | mariadb --socket="$sock" || die "the setup SQL failed"
	mariadb-admin --socket="$sock" shutdown
	wait "$pid" || true
	echo "kestrel-mariadb: initialized${db:+ (database $db)}${user:+ (user $user)}" >&2
}

case ${1:-} in
-*) set -- mariadbd "$@" ;;
esac
case " $* " in
*" --version "* | *" -V "* | *" --help "* | *" -? "*) ;; # asks, runs nothing
*) if [ "${1:-}" = mariadbd ] && [ ! -d /var/lib/mysql/mysql ]; then initialize; fi ;;
esac
unset MARIADB_PASSWORD MARIADB_ROOT_PASSWORD
exec "$@"
