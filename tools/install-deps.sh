#!/bin/sh
# install-deps.sh - the Debian 12 packages mailgate needs to build, test and demo.
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
	build-essential autoconf automake libtool pkg-config \
	libssl-dev libpam0g-dev libconfuse-dev check libpam-wrapper \
	dovecot-imapd dovecot-pop3d curl openssl ca-certificates python3 procps man-db groff-base clang
