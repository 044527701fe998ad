#!/bin/sh
# make run: a broker in the foreground on the embedded default under ./var.
#
# Everything lives in ./var (config.json, run/broker.sock, lib/), so a
# developer can try keywarden without root and without touching /etc.  The
# API proxy is on (broker.apiProxy.enabled), on loopback at 127.0.0.1:8788,
# forwarding to the real API: Claude Code can run with
# `keywarden exec --proxy -- claude` and never hold the key.
set -eu
BUILD=${1:-build}
VAR=$(pwd)/var

# The broker makes run/ (0755, so other users could reach the socket) and lib/ (0700).
umask 077
mkdir -p "$VAR"
chmod 755 "$VAR"
if [ ! -f "$VAR/config.json" ]; then
	cat > "$VAR/config.json" <<JSON
{
  "broker": {
    "socket": "$VAR/run/broker.sock",
    "dataDir": "$VAR/lib",
    "apiProxy": {
      "enabled": true,
      "listen": "127.0.0.1:8788"
    }
  }
}
JSON
fi
chmod 600 "$VAR/config.json"

# The uid the broker runs as owns it, as root owns a system broker: it
# administers without sudo.  Started as root, root registers the users.
OWNER=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
	WHO=USER
	AS="then, as USER (with the same export)"
else
	WHO=$OWNER
	AS="then"
fi

cat <<MSG
keywarden: starting the broker in the foreground (Ctrl-C stops it)
  config  $VAR/config.json
  socket  $VAR/run/broker.sock
  data    $VAR/lib
  owner   $OWNER (the uid it runs as: it administers this broker)

In another terminal, as $OWNER, try:
  export KEYWARDEN_SOCKET=$VAR/run/broker.sock KEYWARDEN_CONFIG=$VAR/config.json
  $BUILD/keywarden status
  $BUILD/keywarden admin user add $WHO --role developer    # scan the QR code it draws
$AS:
  $BUILD/keywarden login                 # the code your authenticator app shows
  $BUILD/keywarden key set anthropic     # the key at the hidden prompt
  $BUILD/keywarden key get anthropic
  sqlite3 $VAR/lib/audit.db 'SELECT seq, ts, user, action, resource, result FROM audit_named'

MSG
exec "$BUILD/keywardend" --config "$VAR/config.json"
