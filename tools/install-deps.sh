#!/bin/sh
# install-deps.sh - the Debian 12 packages mailgate needs to build, test and demo.
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
	build-essential autoconf automake libtool pkg-config \
	libssl-dev libpam0g-dev libconfuse-dev check libpam-wrapper libevent-dev \
	dovecot-imapd dovecot-pop3d curl openssl ca-certificates python3 procps man-db groff-base clang \
	nginx libnginx-mod-mail iproute2 passwd fail2ban
# The user mailgated's session children run as (session_user): it owns nothing.
getent passwd mailgate-session >/dev/null || \
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
		--user-group mailgate-session
