/*
 * provider.c - choosing the master-key provider (see provider.h).
 */
#include <stdio.h>
#include <string.h>

#include "keywarden.h"
#include "provider.h"

int
kw_provider_open(const struct kw_config *cfg, const char *keystore_dir,
    struct kw_provider **ret_provider, char *err, size_t err_len)
{
	const char *source = kw_config_str(cfg, "security.encryption.atRest.keySource");

	if (strcmp(source, "local") == 0)
		return kw_provider_local_open(cfg, keystore_dir, ret_provider, err, err_len);
	if (strcmp(source, "passphrase") == 0)
		return kw_provider_passphrase_open(cfg, keystore_dir, ret_provider, err, err_len);
	if (strcmp(source, "pkcs11") == 0)
		return kw_provider_pkcs11_open(cfg, keystore_dir, ret_provider, err, err_len);
	/* The security guide says "kms"; AWS KMS is the one we speak. */
	if (strcmp(source, "aws-kms") == 0 || strcmp(source, "kms") == 0)
		return kw_provider_awskms_open(cfg, keystore_dir, ret_provider, err, err_len);
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
