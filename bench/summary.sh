#!/bin/bash
# summary.sh - the README's performance table from a bench.json (make bench
# writes build/bench.json): one markdown row per figure issue 17 asks for,
# the ratio first, the absolute numbers beside it only as context.
#
#   bench/summary.sh [build/bench.json]
set -euo pipefail

J=${1:-$(dirname "$0")/../build/bench.json}
[ -r "$J" ] || { echo "summary: no $J (run make bench)" >&2; exit 1; }

jq -r '
def r(x): if x == null then "-" else (x * 1000 | round / 1000 | tostring) end;
def n(x): if x == null then "-" else (x | round | tostring) end;
def ms(x): if x == null then "-" else ((x * 100 | round / 100 | tostring) + " ms") end;
"Measured \(.meta.date // "-") on \(.meta.cpus) CPUs (\(.meta.cpu_model // "-")), Linux \(.meta.kernel); medians of \(.meta.runs) runs.",
"",
"| figure | ratio | keywarden | baseline (same run) | target |",
"|---|---|---|---|---|",
(.audit // {} | to_entries[] | .key as $op | .value[] |
  "| audited `\($op)`, \(.clients) clients: records/s vs raw SQLite inserts (1,000 rows a transaction) | \(r(.ratio_batch)) | \(n(.broker_rps))/s, p50 \(n(.broker_p50_us)) µs, p99/p50 \(r(.p99_over_p50)) | \(n(.raw_batch_rps))/s | \(if .clients == 64 then "≥ 0.5; p99/p50 < 3" else "" end) |"),
(.status_roundtrips // [] | .[] |
  "| `status`, \(.clients) clients: round trips/s vs the echo server | \(r(.ratio)) | \(n(.broker_rps))/s, p50/p99 \(n(.broker_p50_us))/\(n(.broker_p99_us)) µs | \(n(.echo_rps))/s | |"),
(.process // null | select(. != null) |
  (if .start_ms != null then "| `keywarden --version` (the CLI starting, no broker) vs the spawn floor | \(r(.start_over_floor)) | \(ms(.start_ms)) | \(ms(.floor_ms)) | |" else empty end),
  "| `keywarden key get` whole process vs the spawn floor (empty C program) | \(r(.key_get_over_floor)) | \(ms(.key_get_ms)) | \(ms(.floor_ms)) | ≤ 1.6 |",
  "| `keywarden hook claude` (Bash) whole process vs the spawn floor | \(r(.hook_over_floor)) | \(ms(.hook_ms)) | \(ms(.floor_ms)) | ≤ 1.6 |",
  (if .secret_tool.ms != null then
    "| `keywarden key get` vs `secret-tool lookup` (gnome-keyring) | \(r(.secret_tool.key_get_ratio)) | \(ms(.key_get_ms)) | \(ms(.secret_tool.ms)) | |",
    "| `keywarden hook claude` vs `secret-tool lookup` | \(r(.secret_tool.hook_ratio)) | \(ms(.hook_ms)) | \(ms(.secret_tool.ms)) | |"
   else "| `secret-tool lookup` | - | | not measured: \(.secret_tool.why_missing) | |" end)),
(.login // null | select(. != null) |
  "| PAM login (pamtester) through pam_keywarden vs pam_oath | \(r(.ratio)) | \(.keywarden_ms) ms | \(.pam_oath_ms) ms | ≤ 1.0 |",
  (.session_key_get // null | select(. != null) |
   "| `keywarden key get` as a logged-in user (cached session token) vs the spawn floor | \(r(.ratio)) | \(ms(.key_get_ms)) | \(ms(.floor_ms)) | ≤ 1.6 |")),
(.memory.idle_rss // null | select(. != null) |
  "| broker RSS per 1,000 idle connections vs the echo server (\(.counts | map(tostring) | join(", ")) connections) | \(r(.ratio)) | \(.broker_kb_per_1000) kB (\(.broker.rss_kb | map(tostring) | join(" / ")) kB) | \(.echo_kb_per_1000) kB | |"),
(.memory.audit_db // null | select(. != null) |
  "| audit.db per million records (\(.records) written, extrapolated) vs raw rows, same schema | \(r(.ratio)) | \(.mb_per_million) MB | \(.raw_mb_per_million) MB | ≤ 360 MB |")
' "$J"
