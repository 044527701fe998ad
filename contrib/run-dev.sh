#!/bin/sh
# make run: a broker in the foreground on the embedded default under ./var.
#
# Everything lives in ./var (config.json, run/broker.sock, lib/), so a
# developer can try keywarden without root and without touching /etc.
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
    "dataDir": "$VAR/lib"
  }
}
JSON
fi
chmod 600 "$VAR/config.json"

cat <<MSG
keywarden: starting the broker in the foreground (Ctrl-C stops it)
  config  $VAR/config.json
  socket  $VAR/run/broker.sock
  data    $VAR/lib

In another terminal, try:
  export KEYWARDEN_SOCKET=$VAR/run/broker.sock KEYWARDEN_CONFIG=$VAR/config.json
  $BUILD/keywarden status
  $BUILD/keywarden config get security.session.timeout
  sqlite3 $VAR/lib/audit.db 'SELECT ts, user, action, result FROM audit_log'

MSG
exec "$BUILD/keywardend" --config "$VAR/config.json"
