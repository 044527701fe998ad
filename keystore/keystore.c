/*
 * keystore.c - choosing the backend, and what every backend shares.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "keystore.h"
#include "keywarden.h"

int
kw_keystore_open(const struct kw_config *cfg, const char *data_dir, struct kw_keystore **ret_ks,
    char *err, size_t err_len)
{
	const char *source = kw_config_str(cfg, "api.keySource");

	if (strcmp(source, "file") == 0)
		return kw_keystore_file_open(cfg, data_dir, ret_ks, err, err_len);
	if (strcmp(source, "keychain") == 0)
		return kw_keystore_keychain_open(cfg, data_dir, ret_ks, err, err_len);
	snprintf(err, err_len, "api.keySource: unknown key source \"%.32s\"", source);
	return KW_ERR_CONFIG;
}

void
kw_keystore_close(struct kw_keystore *ks)
{
	if (ks)
		ks->ops->close(ks);
}

void
kw_keystore_free_value(unsigned char *value, size_t len)
{
	/* sodium_free wipes the whole allocation; len is for callers' symmetry. */
	(void)len;
	sodium_free(value);
}

bool
kw_key_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64 || name[0] == '-' || name[0] == '.')
		return false;
	for (; *name; name++)
		if (!((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z') ||
		    (*name >= '0' && *name <= '9') || strchr("._-", *name)))
			return false;
	return true;
}
