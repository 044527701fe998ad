# audit.sh - section_audit for run.sh (sourced): the audited hot path.
#
# Audited requests per second through the broker -- loadgen sending `check`
# (a decision) and `key.get` (a key read and decrypt), each always recorded:
# a hash-chained, pseudonymised row committed with synchronous=FULL before
# the reply -- at BENCH_AUDIT_CLIENTS connections, beside raw SQLite inserts
# of the same kind of row measured in the same run by bench/audit_raw on the
# same file system (the table and indexes copied from the bench broker's own
# audit.db, WAL, synchronous=FULL):
#   raw_each   one INSERT + COMMIT per row: a store without group commit
#   raw_batch  BENCH_AUDIT_BATCH_ROWS rows, one transaction per
#              BENCH_AUDIT_TXN_ROWS (1,000): what group commit could reach
#              if the broker did nothing but insert (issue 17's baseline;
#              target at 64 clients: broker / raw_batch >= 0.5)
# Each run measures the broker, then the raw baselines (alternating the
# order), and each ratio is the median over runs of broker / raw.  Beside
# them the broker's p50 and p99 round trip and p99/p50 (target under 3).
#
# Environment: BENCH_AUDIT_CLIENTS (BENCH_CLIENTS), BENCH_AUDIT_OPS
# ("check key.get"), BENCH_AUDIT_BATCH_ROWS (10000), BENCH_AUDIT_TXN_ROWS (1000).

AUDIT_CLIENTS=${BENCH_AUDIT_CLIENTS:-$CLIENTS}
AUDIT_OPS=${BENCH_AUDIT_OPS:-"check key.get"}
AUDIT_BATCH_ROWS=${BENCH_AUDIT_BATCH_ROWS:-10000}
AUDIT_TXN_ROWS=${BENCH_AUDIT_TXN_ROWS:-1000}
AUDIT_RAW=$BUILD/bench/audit_raw

# audit_op_args OP: the request's args; audit_op_where OP: its records.
audit_op_args() {
	case $1 in
	check) echo '{"action":"read","resource":"key/bench-audit"}' ;;
	key.get) echo '{"name":"anthropic"}' ;;
	*) die "audit: no arguments known for op $1" ;;
	esac
}

audit_op_resource() {
	case $1 in
	check) echo key/bench-audit ;;
	key.get) echo key/anthropic ;;
	esac
}

# audit_rows OP: OP's records in the bench broker's audit.db.
audit_rows() {
	sqlite3 -cmd ".timeout 10000" "file:$T/lib/audit.db?mode=ro" \
	    "SELECT count(*) FROM audit_log WHERE action = '$1' AND resource = '$(audit_op_resource "$1")'"
}

# raw_run MODE LABEL OP: one audit_raw line (rows added to the same database).
raw_run() {
	local args=(--db "$T/audit_raw/audit.db" --schema-from "$T/lib/audit.db" --mode "$1"
	    --label "$2" --action "$3" --resource "$(audit_op_resource "$3")")
	if [ "$1" = each ]; then
		args+=(--seconds "$SECS" --warmup "$WARMUP")
	else
		args+=(--rows "$AUDIT_BATCH_ROWS" --txn-rows "$AUDIT_TXN_ROWS")
	fi
	"$AUDIT_RAW" "${args[@]}" || die "audit_raw failed ($1)"
}

# audit_op OP: the table rows for OP; appends OP's JSON to AUDIT_JSON.
audit_op() {
	local op=$1 args c i rows="" sep="" before after
	local b_rps e_rps t_rps r_each r_batch b_p50 b_p99 tail
	args=$(audit_op_args "$op")
	before=$(audit_rows "$op")
	for c in $AUDIT_CLIENTS; do
		: >"$T/audit_b.runs"
		: >"$T/audit_e.runs"
		: >"$T/audit_t.runs"
		for ((i = 1; i <= RUNS; i++)); do
			if ((i % 2)); then
				measure broker "$BROKER_SOCK" "$c" --op "$op" --args "$args" \
				    >>"$T/audit_b.runs"
				raw_run each raw_each "$op" >>"$T/audit_e.runs"
				raw_run batch raw_batch "$op" >>"$T/audit_t.runs"
			else
				raw_run batch raw_batch "$op" >>"$T/audit_t.runs"
				raw_run each raw_each "$op" >>"$T/audit_e.runs"
				measure broker "$BROKER_SOCK" "$c" --op "$op" --args "$args" \
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
		tail=$(paste <(col "$T/audit_b.runs" p99_us) <(col "$T/audit_b.runs" p50_us) |
		    awk '{ if ($2 > 0) printf "%.3f\n", $1 / $2 }' | median)
		printf '%-8s %7s %11.0f %11.0f %6.3f %11.0f %6.3f %17s %7.2f\n' "$op" "$c" \
		    "$b_rps" "$e_rps" "$r_each" "$t_rps" "$r_batch" "$b_p50/$b_p99" "$tail"
		rows+="$sep$(printf '{"clients": %s, "broker_rps": %s, "raw_each_rps": %s, "raw_batch_rps": %s, "ratio_each": %s, "ratio_batch": %s, "broker_p50_us": %s, "broker_p99_us": %s, "p99_over_p50": %s, "broker_rps_runs": %s, "raw_each_rps_runs": %s, "raw_batch_rps_runs": %s}' \
		    "$c" "$b_rps" "$e_rps" "$t_rps" "$r_each" "$r_batch" "$b_p50" "$b_p99" "$tail" \
		    "$(json_list "$T/audit_b.runs" rps)" "$(json_list "$T/audit_e.runs" rps)" \
		    "$(json_list "$T/audit_t.runs" rps)")"
		sep=$',\n      '
	done
	after=$(audit_rows "$op")
	# A figure for requests that were not recorded would measure nothing.
	[ "$after" -gt "$before" ] || die "the broker recorded no $op records during the audit section"
	AUDIT_RECORDS+="$op: $((after - before)) "
	AUDIT_JSON+="$AUDIT_SEP\"$op\": [
      $rows
    ]"
	AUDIT_SEP=$',\n    '
}

section_audit() {
	local op
	[ -x "$AUDIT_RAW" ] || die "$AUDIT_RAW is missing: run make -C bench"
	command -v sqlite3 >/dev/null || die "sqlite3 is missing (contrib/deps.sh installs it)"
	mkdir -p "$T/audit_raw"
	ensure_bench_key

	printf '\naudited requests (one in flight per connection) vs raw SQLite inserts of the same rows\n'
	printf '(WAL, synchronous=FULL, same file system; %s runs x %s s, medians; raw batch = %s rows, %s to a transaction)\n' \
	    "$RUNS" "$SECS" "$AUDIT_BATCH_ROWS" "$AUDIT_TXN_ROWS"
	echo "op       clients broker rec/s raw 1/commit ratio  raw batch  ratio broker p50/p99 µs p99/p50"
	AUDIT_JSON=""
	AUDIT_SEP=""
	AUDIT_RECORDS=""
	for op in $AUDIT_OPS; do
		audit_op "$op"
	done
	printf 'records written by the broker during this section: %s\n' "$AUDIT_RECORDS"
	printf '(targets at 64 clients: ratio to raw batch at least 0.5, p99/p50 under 3)\n'
	json_key audit "{
    $AUDIT_JSON
  }"
	note "audit: per op (check, key.get), ratio_batch = median over runs of broker audited rec/s / raw SQLite rows/s inserting $AUDIT_BATCH_ROWS rows $AUDIT_TXN_ROWS to a transaction (WAL, synchronous=FULL, same file system, the broker's own table and indexes, run back to back); ratio_each = the same with one INSERT+COMMIT per row (above 1: group commit shares fsyncs). p99_over_p50 = median over runs of the broker's p99 / p50 round trip. Targets (issue 17) at 64 clients: ratio_batch >= 0.5, p99_over_p50 < 3."
	note "audit: a check is a decision + record (pseudonym, SHA-256 chain link, compact JSON metadata); a key.get also reads and decrypts the key (AES-256-GCM) and updates last_used; audit_raw fills its hash blobs without hashing."
}
