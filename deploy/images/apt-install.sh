#!/bin/sh
# Installs Debian packages inside an image build (the Redis and MariaDB
# Dockerfiles): bookworm, bookworm-updates and bookworm-security from the
# base image's mirror, no recommends, no service started, no apt lists,
# caches or docs left in the layer.
set -eu
mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)
mirror=${mirror:-http://deb.debian.org/debian}
case $mirror in
*/debian) security=${mirror%/debian}/debian-security ;;
*) security=http://deb.debian.org/debian-security ;;
esac
cat >/etc/apt/sources.list.d/kestrel.list <<LIST
deb $mirror bookworm-updates main
deb $security bookworm-security main
LIST
# No daemon starts during the build (the container has no init).
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@" >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /var/log/apt/* /var/log/dpkg.log /usr/sbin/policy-rc.d
