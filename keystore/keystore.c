/*
 * keystore.c - choosing the backend, and what every backend shares.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "keystore/keystore.h"
#include "common/errors.h"

/* api.keySource names one of these. */
static const struct {
	const char *source;
	int (*open)(const struct kw_config *cfg, const char *data_dir,
	    struct kw_keystore **ret_ks, char *err, size_t err_len);
} backends[] = {
	{ .source = "file", .open = kw_keystore_file_open },
	{ .source = "keychain", .open = kw_keystore_keychain_open },
};

int
kw_keystore_open(const struct kw_config *cfg, const char *data_dir, struct kw_keystore **ret_ks,
    char *err, size_t err_len)
{
	const char *source = kw_config_str(cfg, "api.keySource");

	for (size_t i = 0; i < KW_ELEMENTSOF(backends); i++)
		if (strcmp(source, backends[i].source) == 0)
			return backends[i].open(cfg, data_dir, ret_ks, err, err_len);
	snprintf(err, err_len, "api.keySource: unknown key source \"%.32s\"", source);
	return KW_ERR_CONFIG;
}

void
kw_keystore_close(struct kw_keystore *ks)
{
	if (ks)
		ks->ops->close(ks);
}
