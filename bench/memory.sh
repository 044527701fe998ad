# memory.sh - section_memory for run.sh (sourced): what the broker keeps.
#
# (a) Resident memory with idle clients: a broker of its own (fresh data
#     directory, broker.maxClients raised) and the echo server, each given
#     BENCH_MEMORY_COUNTS idle connections in turn by bench/idleconns (every
#     connection has said hello and had its answer), VmRSS read after each
#     step.  The figure is RSS per 1,000 connections, from the first count
#     to the last, beside the echo server's (the cost of a socket and a
#     bare buffer).
# (b) audit.db bytes per million records: BENCH_MEMORY_RECORDS `check`
#     records written through that broker's real audit store (loadgen, 64
#     clients), the broker stopped, the WAL checkpointed into the file, then
#     (file size - size before) / records x 10^6: extrapolated from the
#     records measured, and said so.  Beside it the same number of rows
#     inserted raw by bench/audit_raw into the same schema (one transaction
#     per 1,000 rows), and each table's and index's share (dbstat).
#
# Environment: BENCH_MEMORY_COUNTS ("1 1000 4000"), BENCH_MEMORY_RECORDS (200000).

MEMORY_COUNTS=${BENCH_MEMORY_COUNTS:-"1 1000 4000"}
MEMORY_RECORDS=${BENCH_MEMORY_RECORDS:-200000}

# db_bytes FILE: the database's size with its WAL folded in.
db_bytes() {
	sqlite3 -cmd ".timeout 10000" "$1" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null ||
	    die "cannot checkpoint $1"
	stat -c %s "$1"
}

# rss_per_1000 JSON: (RSS at the last count - RSS at the first) per 1,000 connections, kB.
rss_per_1000() {
	jq -r '(.rss_kb[-1] - .rss_kb[0]) / (.counts[-1] - .counts[0]) * 1000 | . * 10 | round / 10' <<<"$1"
}

section_memory() {
	local d=$T/memory idx max b e b_per e_per ratio before after rows bytes per_m raw_per_m r_size
	local breakdown
	mkdir -p "$d"
	[ -x "$BUILD/bench/idleconns" ] || die "$BUILD/bench/idleconns is missing"
	max=${MEMORY_COUNTS##* }
	(umask 077 && printf '{"broker":{"socket":"%s","dataDir":"%s","maxClients":%d}}\n' \
	    "$d/broker.sock" "$d/lib" "$((max + 100))" >"$d/config.json")
	start_daemon keywardend-memory "$d/broker.sock" env -u NOTIFY_SOCKET \
	    -u KEYWARDEN_CONFIG -u KEYWARDEN_SOCKET "$BROKER" --config "$d/config.json"
	idx=$LAST_DAEMON
	b=$("$BUILD/bench/idleconns" --socket "$d/broker.sock" --pid "${DAEMON_PIDS[$idx]}" \
	    --counts "$MEMORY_COUNTS") || die "idleconns failed against the broker"
	e=$("$BUILD/bench/idleconns" --socket "$ECHO_SOCK" --pid "$ECHO_PID" \
	    --counts "$MEMORY_COUNTS") || die "idleconns failed against the echo server"
	b_per=$(rss_per_1000 "$b")
	e_per=$(rss_per_1000 "$e")
	ratio=$(awk -v a="$b_per" -v b="$e_per" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "null" }')
	printf '\nresident memory with idle connections (each has said hello; VmRSS, kB)\n'
	printf '%-12s %10s %s\n' "server" "none" "$(for c in $MEMORY_COUNTS; do printf '%10s ' "$c"; done)  per 1,000"
	printf '%-12s %10s %s %10s\n' "broker" "$(jq -r .rss0_kb <<<"$b")" \
	    "$(jq -r '.rss_kb[]' <<<"$b" | xargs printf '%10s ')" "$b_per"
	printf '%-12s %10s %s %10s\n' "echo" "$(jq -r .rss0_kb <<<"$e")" \
	    "$(jq -r '.rss_kb[]' <<<"$e" | xargs printf '%10s ')" "$e_per"
	printf 'ratio broker / echo per 1,000 connections: %s\n' "$ratio"

	# (b) audit.db growth through the real store, from a fresh database.
	before=$(db_bytes "$d/lib/audit.db")
	rows=$(sqlite3 "file:$d/lib/audit.db?mode=ro" "SELECT count(*) FROM audit_log")
	"$LOADGEN" --socket "$d/broker.sock" --clients 64 --requests "$MEMORY_RECORDS" \
	    --warmup 0 --label audit-size --op check \
	    --args '{"action":"read","resource":"key/bench-audit"}' >"$d/load.json" ||
	    die "loadgen failed writing $MEMORY_RECORDS records"
	stop_daemon "$idx"
	after=$(db_bytes "$d/lib/audit.db")
	rows=$(( $(sqlite3 "file:$d/lib/audit.db?mode=ro" "SELECT count(*) FROM audit_log") - rows ))
	[ "$rows" -gt 0 ] || die "no records were written for the audit size"
	bytes=$((after - before))
	per_m=$(awk -v b="$bytes" -v n="$rows" 'BEGIN { printf "%.1f", b / n * 1e6 / 1e6 }')
	breakdown=$(sqlite3 "file:$d/lib/audit.db?mode=ro" \
	    "SELECT name, sum(pgsize) FROM dbstat WHERE name = 'audit_log' OR name IN
	     (SELECT name FROM sqlite_master WHERE tbl_name = 'audit_log') GROUP BY name ORDER BY 2 DESC" |
	    awk -F'|' -v n="$rows" '{ printf "%s\"%s\": %.1f", (NR > 1 ? ", " : ""), $1, $2 / n }')
	# The baseline: the same number of rows inserted raw into the same schema.
	"$BUILD/bench/audit_raw" --db "$d/raw.db" --schema-from "$d/lib/audit.db" --mode batch \
	    --rows "$rows" --txn-rows 1000 --label raw-size >/dev/null || die "audit_raw failed (size)"
	raw_per_m=$(awk -v b="$(db_bytes "$d/raw.db")" -v n="$rows" 'BEGIN { printf "%.1f", b / n }')
	r_size=$(awk -v a="$per_m" -v b="$raw_per_m" 'BEGIN { printf "%.3f", a / b }')
	printf '\naudit.db size: %d check records written through the broker (%d bytes), extrapolated to 10^6 records\n' \
	    "$rows" "$bytes"
	printf '%-44s %10s MB\n' "broker audit.db per million records" "$per_m"
	printf '%-44s %10s MB\n' "raw rows, same schema, per million" "$raw_per_m"
	printf '%-44s %10s   (target: at most 360 MB per million)\n' "ratio broker / raw" "$r_size"
	printf 'bytes per record by table and index: %s\n' "$breakdown"
	json_key memory "$(printf '{
    "idle_rss": {"counts": %s, "broker": %s, "echo": %s, "broker_kb_per_1000": %s, "echo_kb_per_1000": %s, "ratio": %s},
    "audit_db": {"records": %d, "bytes": %d, "mb_per_million": %s, "raw_mb_per_million": %s, "ratio": %s, "bytes_per_record_by_object": {%s}, "extrapolated": true}
  }' "$(jq -c .counts <<<"$b")" "$b" "$e" "$b_per" "$e_per" "$ratio" "$rows" "$bytes" "$per_m" \
	    "$raw_per_m" "$r_size" "$breakdown")"
	note "memory: idle_rss = VmRSS of a broker of its own (fresh data directory) and of the echo server with the given numbers of idle connections, each after its hello; *_kb_per_1000 = (RSS at the last count - RSS at the first) per 1,000 connections."
	note "memory: audit_db = growth of a fresh audit.db (WAL checkpointed, MB = 10^6 bytes) over $rows check records written through the broker's audit store, extrapolated linearly to 10^6 records (not measured at 10^6); raw = the same number of rows inserted by audit_raw into the same schema. Target (issue 17): at most 360 MB per million."
}
