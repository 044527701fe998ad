/*
 * scan_finding.c - what a scan keeps of a finding instead of its value: a
 * preview too short to give it away, and a hash that names it in a
 * baseline and in SARIF fingerprints.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli/scan.h"

const char *
kw_scan_level_name(enum kw_scan_level level)
{
	switch (level) {
	case KW_SCAN_ERROR:
		return "error";
	case KW_SCAN_WARNING:
		return "warning";
	case KW_SCAN_NOTE:
		break;
	}
	return "note";
}

void
kw_scan_hash(const char *rule, const char *value, size_t len, char *out)
{
	crypto_hash_sha256_state st;
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)rule, strlen(rule) + 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)value, len);
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(out, KW_SCAN_HASH_HEX, h, sizeof(h));
	sodium_memzero(&st, sizeof(st));
}

void
kw_scan_preview(const char *value, size_t len, char *out, size_t out_len)
{
	/* A quarter at most, so a short value keeps most of itself hidden. */
	size_t keep = len / 4 < 4 ? len / 4 : 4;
	char head[5];

	for (size_t i = 0; i < keep; i++)
		head[i] = value[i] > ' ' && value[i] < 0x7f ? value[i] : '*';
	head[keep] = '\0';
	snprintf(out, out_len, "%s\xe2\x80\xa6(%zu)", head, len);
}

void
kw_scan_result_clear(struct kw_scan_result *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->findings[i].file);
		free(r->findings[i].rule);
	}
	free(r->findings);
	json_decref(r->skipped);
	r->findings = NULL;
	r->skipped = NULL;
	r->n = r->cap = 0;
}
