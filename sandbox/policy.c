/* policy.c - the broker's sandbox policy (placeholder until the kernel layer lands). */
#include <stdio.h>
#include <stdlib.h>

#include "common/errors.h"
#include "sandbox/sandbox.h"

int
kw_sandbox_policy_from_json(const json_t *obj, struct kw_sandbox_policy **ret, char *err,
    size_t err_len)
{
	(void)obj;
	*ret = NULL;
	snprintf(err, err_len, "the sandbox is not built yet");
	return KW_ERR_INVALID;
}

int
kw_sandbox_policy_tighten(struct kw_sandbox_policy *policy, const char *profile_file,
    const char *cwd, char *err, size_t err_len)
{
	(void)policy; (void)profile_file; (void)cwd;
	snprintf(err, err_len, "the sandbox is not built yet");
	return KW_ERR_INVALID;
}

void
kw_sandbox_policy_free(struct kw_sandbox_policy *policy)
{
	free(policy);
}
