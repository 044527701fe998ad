/*
 * provider.c - choosing the master-key provider (see provider.h).
 */
#include <stdio.h>
#include <string.h>

#include "common/errors.h"
#include "keystore/providers/provider.h"

/* security.encryption.atRest.keySource names one of these. */
static const struct {
	const char *source;
	int (*open)(const struct kw_config *cfg, const char *dir, struct kw_provider **ret,
	    char *err, size_t err_len);
} providers[] = {
	{ .source = "local", .open = kw_provider_local_open },
	{ .source = "passphrase", .open = kw_provider_passphrase_open },
	{ .source = "pkcs11", .open = kw_provider_pkcs11_open },
	/* The security guide says "kms"; AWS KMS is the one we speak. */
	{ .source = "aws-kms", .open = kw_provider_awskms_open },
	{ .source = "kms", .open = kw_provider_awskms_open },
};

int
kw_provider_open(const struct kw_config *cfg, const char *data_dir,
    struct kw_provider **ret_provider, char *err, size_t err_len)
{
	const char *source = kw_config_str(cfg, "security.encryption.atRest.keySource");

	for (size_t i = 0; i < KW_ELEMENTSOF(providers); i++)
		if (strcmp(source, providers[i].source) == 0)
			return providers[i].open(cfg, data_dir, ret_provider, err, err_len);
	snprintf(err, err_len, "security.encryption.atRest.keySource: unknown provider \"%.32s\"",
	    source);
	return KW_ERR_CONFIG;
}

void
kw_provider_close(struct kw_provider *p)
{
	if (p)
		p->ops->close(p);
}
