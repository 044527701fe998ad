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
def at64(rows): (rows | map(select(.clients == 64)) | .[0]) // (rows | last);
def clients(rows): rows | map(.clients | tostring) | join(" / ");
"Last run: \(.meta.date // "-"), \(.meta.cpus) CPUs (\(.meta.cpu_model // "-")), Linux \(.meta.kernel), load average \(.meta.loadavg_start) at the start; medians of \(.meta.runs) runs.",
"",
"| figure | beside (same run) | ratio | context | target |",
"|---|---|---|---|---|",
(.audit // {} | to_entries[] | .key as $op | .value as $rows | at64($rows) as $m |
  "| audited `\($op)` records/s, \(clients($rows)) clients | raw SQLite inserts of the same rows, 1,000 a transaction | \($rows | map(r(.ratio_batch)) | join(" / ")) | at \($m.clients): \(n($m.broker_rps))/s vs \(n($m.raw_batch_rps))/s, p50 \(n($m.broker_p50_us)) µs, p99/p50 \(r($m.p99_over_p50)) | ≥ 0.5 at 64; p99 < 3 × p50 |"),
(.status_roundtrips // [] | . as $rows | at64($rows) as $m | select(length > 0) |
  "| `status` round trips/s, \(clients($rows)) clients | the echo server | \($rows | map(r(.ratio)) | join(" / ")) | at \($m.clients): \(n($m.broker_rps))/s vs \(n($m.echo_rps))/s | |"),
(.process // null | select(. != null) |
  "| `keywarden key get` (root), whole process | an empty C program (spawn floor) | \(r(.key_get_over_floor)) | \(ms(.key_get_ms)) vs \(ms(.floor_ms)); `keywarden --version` alone \(r(.start_over_floor)) | ≤ 1.6 |",
  "| `keywarden hook claude` (Bash), whole process | the spawn floor | \(r(.hook_over_floor)) | \(ms(.hook_ms)); \(r(.hook_over_key_get)) × key get | ≤ 1.6 |",
  (if .secret_tool.ms != null then
    "| `keywarden key get` (root), whole process | `secret-tool lookup` (gnome-keyring) | \(r(.secret_tool.key_get_ratio)) | \(ms(.key_get_ms)) vs \(ms(.secret_tool.ms)) | |"
   else "| `keywarden key get` | `secret-tool lookup` | - | not measured: \(.secret_tool.why_missing) | |" end)),
(.login // null | select(. != null) |
  (.session_key_get // null | select(. != null) |
   "| `keywarden key get` as a logged-in user (cached session token) | the spawn floor | \(r(.ratio)) | \(ms(.key_get_ms)) vs \(ms(.floor_ms)) | ≤ 1.6 |"),
  "| PAM login (pamtester) through pam_keywarden | the same through pam_oath | \(r(.ratio)) | \(.keywarden_ms) ms vs \(.pam_oath_ms) ms | ≤ 1.0 |"),
(.memory.idle_rss // null | select(. != null) |
  "| broker RSS per 1,000 idle connections | the echo server (a 64 KiB buffer per client) | \(r(.ratio)) | \(.broker_kb_per_1000) kB; \(.broker.rss_kb | map(tostring) | join(" / ")) kB at \(.counts | map(tostring) | join(" / ")) | |"),
(.memory.audit_db // null | select(. != null) |
  "| audit.db bytes per million records | raw rows in the same schema | \(r(.ratio)) | \(.mb_per_million) MB (from \(.records) records, extrapolated) | ≤ 360 MB |")
' "$J"
