/*
 * records.c - audit records (from audit.query, incident.report, user.export)
 * as a table for people: seq, time, user, action, resource, result and a
 * short rendering of the details (kw_table_print escapes what would act on a
 * terminal).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"

/* Details shown in a table cell, in bytes. */
#define DETAILS_MAX 60
/* What a sealed record that did not open says (cmd_admin_audit.c sets it). */
#define SEALED_ERROR "cannot open with this key"

/* s for a table cell, cut at max bytes with "..."; malloc'd (the table escapes it). */
static char *
cell_text(const char *s, size_t max)
{
	size_t n = strlen(s), keep = n;
	char *out;

	if (n > max) {
		keep = max;
		while (keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80)
			keep--;
	}
	if (!(out = malloc(keep + 4)))
		return NULL;
	memcpy(out, s, keep);
	strcpy(out + keep, keep < n ? "..." : "");
	return out;
}

static char *
details_cell(json_t *meta)
{
	json_t *sealed = json_object_get(meta, "sealed");
	char *s, *cell;

	if (json_is_string(sealed))
		return strdup(json_object_get(meta, "error") ? "(sealed; " SEALED_ERROR ")" :
		    "(sealed)");
	if (!meta || json_object_size(meta) == 0)
		return strdup("-");
	/* ASCII: a detail cannot smuggle terminal controls in as UTF-8. */
	if (!(s = json_dumps(meta, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY)))
		return NULL;
	cell = cell_text(s, DETAILS_MAX);
	free(s);
	return cell;
}

static char *
field_cell(json_t *rec, const char *key)
{
	json_t *v = json_object_get(rec, key);
	char num[32];

	if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		return strdup(num);
	}
	if (!json_is_string(v) || !*json_string_value(v))
		return strdup("-");
	return cell_text(json_string_value(v), 128);
}

void
kw_cli_print_records(FILE *f, json_t *records)
{
	static const char *const headers[] = { "SEQ", "TIME", "USER", "ACTION", "RESOURCE",
	    "RESULT", "DETAILS" };
	static const char *const keys[] = { "seq", "timestamp", "user", "action", "resource",
	    "result" };
	const size_t ncols = KW_ELEMENTSOF(headers);
	size_t n = json_array_size(records), i;
	char **cells = calloc(n * ncols + 1, sizeof(*cells));
	json_t *rec;

	if (!cells)
		return;
	json_array_foreach(records, i, rec) {
		for (size_t c = 0; c < KW_ELEMENTSOF(keys); c++)
			cells[i * ncols + c] = field_cell(rec, keys[c]);
		cells[i * ncols + ncols - 1] = details_cell(json_object_get(rec, "metadata"));
	}
	kw_table_print(f, ncols, headers, (const char *const *)cells, n);
	for (i = 0; i < n * ncols; i++)
		free(cells[i]);
	free(cells);
}
