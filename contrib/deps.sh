#!/bin/sh
# Install the Debian packages keywarden builds and tests with.
#
# Idempotent and fast when everything is present: dpkg is asked first and
# apt-get only runs for what is missing.  Needs root (or sudo) to install.
set -eu

PKGS="build-essential pkg-config clang
libpam0g-dev liboath-dev libsecret-1-dev libsodium-dev libssl-dev zlib1g-dev
libcurl4-openssl-dev libsqlite3-dev sqlite3 libjansson-dev libcmocka-dev libpcre2-dev libseccomp-dev libmicrohttpd-dev
libqrencode-dev libpam-wrapper libpamtest0-dev pamtester oathtool libnss-wrapper libpam-oath
gnome-keyring libsecret-tools dbus softhsm2 opensc p11-kit libp11-kit-dev
keyutils libkeyutils-dev python3 python3-pytest python3-aiosmtpd python3-jsonschema faketime zbar-tools
libclang-rt-14-dev jq tmux"

# One dpkg-query for all packages; those not listed as installed are missing.
# shellcheck disable=SC2086
installed=$(dpkg-query -W -f='${Package} ${Status}\n' $PKGS 2>/dev/null |
	awk '$NF == "installed" { print $1 }')
# The Claude Code test installs the real CLI from npm: Node.js and npm come
# from Debian unless the machine already has them.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"

missing=""
for p in $PKGS; do
	case " $(echo $installed) " in
	*" $p "*) ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -z "$missing" ]; then
	[ "${1:-}" = "-q" ] || echo "deps: all packages present"
	exit 0
fi

echo "deps: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps: need root or sudo to install:$missing" >&2; exit 1; }
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
