# audit.sh - section_audit for run.sh (sourced): the audit trail's throughput.
#
# Audited requests per second through the broker (loadgen sending `check`,
# which is always recorded: a hash-chained, pseudonymised row committed with
# synchronous=FULL before the reply) at BENCH_AUDIT_CLIENTS connections,
# beside raw SQLite inserts of the same kind of row measured in the same run
# by bench/audit_raw on the same file system (the table and indexes copied
# from the bench broker's own audit.db, WAL, synchronous=FULL):
#   raw_each   one INSERT + COMMIT per row: a store without group commit
#   raw_batch  all rows in one transaction: what batching could reach at best
# Each run measures the broker, then the raw baselines (alternating the
# order), and each ratio is the median over runs of broker / raw.  With
# group commit the broker should pass raw_each as clients are added.
#
# Environment: BENCH_AUDIT_CLIENTS ("1 8 64"), BENCH_AUDIT_BATCH_ROWS (10000).

AUDIT_CLIENTS=${BENCH_AUDIT_CLIENTS:-"1 8 64"}
AUDIT_BATCH_ROWS=${BENCH_AUDIT_BATCH_ROWS:-10000}
AUDIT_RAW=$BUILD/bench/audit_raw
AUDIT_ARGS='{"action":"read","resource":"key/bench-audit"}'

# audit_rows: check records of this section in the bench broker's audit.db.
audit_rows() {
	sqlite3 -cmd ".timeout 10000" "file:$T/lib/audit.db?mode=ro" \
	    "SELECT count(*) FROM audit_log WHERE action = 'check' AND resource = 'key/bench-audit'"
}

# raw_run MODE LABEL: one audit_raw line (rows added to the same database).
raw_run() {
	local args=(--db "$T/audit_raw/audit.db" --schema-from "$T/lib/audit.db" --mode "$1"
	    --label "$2")
	if [ "$1" = each ]; then
		args+=(--seconds "$SECS" --warmup "$WARMUP")
	else
		args+=(--rows "$AUDIT_BATCH_ROWS")
	fi
	"$AUDIT_RAW" "${args[@]}" || die "audit_raw failed ($1)"
}

section_audit() {
	local c i rows="" sep="" before after
	local b_rps e_rps t_rps r_each r_batch b_p50 b_p99
	[ -x "$AUDIT_RAW" ] || die "$AUDIT_RAW is missing: run make -C bench"
	command -v sqlite3 >/dev/null || die "sqlite3 is missing (contrib/deps.sh installs it)"
	mkdir -p "$T/audit_raw"
	before=$(audit_rows)

	printf '\naudited requests (check, one in flight per connection) vs raw SQLite inserts of the same rows\n'
	printf '(WAL, synchronous=FULL, same file system; %s runs x %s s, medians; raw_batch = %s rows in one transaction)\n' \
	    "$RUNS" "$SECS" "$AUDIT_BATCH_ROWS"
	echo "clients   broker rec/s  raw 1 commit/row  ratio   raw 1 txn  ratio  broker p50/p99 µs"
	for c in $AUDIT_CLIENTS; do
		: >"$T/audit_b.runs"
		: >"$T/audit_e.runs"
		: >"$T/audit_t.runs"
		for ((i = 1; i <= RUNS; i++)); do
			if ((i % 2)); then
				measure broker "$BROKER_SOCK" "$c" --op check --args "$AUDIT_ARGS" \
				    >>"$T/audit_b.runs"
				raw_run each raw_each >>"$T/audit_e.runs"
				raw_run batch raw_batch >>"$T/audit_t.runs"
			else
				raw_run batch raw_batch >>"$T/audit_t.runs"
				raw_run each raw_each >>"$T/audit_e.runs"
				measure broker "$BROKER_SOCK" "$c" --op check --args "$AUDIT_ARGS" \
				    >>"$T/audit_b.runs"
			fi
		done
		b_rps=$(col "$T/audit_b.runs" rps | median)
		e_rps=$(col "$T/audit_e.runs" rps | median)
		t_rps=$(col "$T/audit_t.runs" rps | median)
		b_p50=$(col "$T/audit_b.runs" p50_us | median)
		b_p99=$(col "$T/audit_b.runs" p99_us | median)
		r_each=$(ratio_median "$T/audit_b.runs" "$T/audit_e.runs" rps)
		r_batch=$(ratio_median "$T/audit_b.runs" "$T/audit_t.runs" rps)
		printf '%7s %14.0f %17.0f %6.3f %11.0f %6.3f %18s\n' "$c" "$b_rps" "$e_rps" \
		    "$r_each" "$t_rps" "$r_batch" "$b_p50/$b_p99"
		rows+="$sep$(printf '{"clients": %s, "broker_rps": %s, "raw_each_rps": %s, "raw_batch_rps": %s, "ratio_each": %s, "ratio_batch": %s, "broker_p50_us": %s, "broker_p99_us": %s, "broker_rps_runs": %s, "raw_each_rps_runs": %s, "raw_batch_rps_runs": %s}' \
		    "$c" "$b_rps" "$e_rps" "$t_rps" "$r_each" "$r_batch" "$b_p50" "$b_p99" \
		    "$(json_list "$T/audit_b.runs" rps)" "$(json_list "$T/audit_e.runs" rps)" \
		    "$(json_list "$T/audit_t.runs" rps)")"
		sep=$',\n    '
	done
	after=$(audit_rows)
	# A figure for requests that were not recorded would measure nothing.
	[ "$after" -gt "$before" ] || die "the broker recorded no check records during the audit section"
	printf 'records written by the broker during this section: %s\n' "$((after - before))"
	json_key audit "[
    $rows
  ]"
	note "audit: ratio_each = median over runs of broker audited rec/s / raw SQLite rows/s with one INSERT+COMMIT per row (WAL, synchronous=FULL, same file system, run back to back); ratio_batch = the same over all $AUDIT_BATCH_ROWS rows in one transaction. Above 1 for ratio_each means group commit shares fsyncs between concurrent requests; ratio_batch is the ceiling batching could approach."
	note "audit: each broker request is a check (decision + record with pseudonym, SHA-256 chain link, compact JSON metadata); audit_raw fills its hash blobs without hashing."
}
