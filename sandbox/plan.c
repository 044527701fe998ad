/* plan.c - what will be applied (placeholder until the kernel layer lands). */
#include <stdio.h>
#include <stdlib.h>

#include "common/errors.h"
#include "sandbox/sandbox.h"

int
kw_sandbox_plan_build(const struct kw_sandbox_policy *policy, const struct kw_sandbox_caps *caps,
    const struct kw_sandbox_request *req, struct kw_sandbox_plan **ret, char *err, size_t err_len)
{
	(void)policy; (void)caps; (void)req;
	*ret = NULL;
	snprintf(err, err_len, "the sandbox is not built yet");
	return KW_ERR_INVALID;
}

void
kw_sandbox_plan_free(struct kw_sandbox_plan *plan)
{
	free(plan);
}

json_t *
kw_sandbox_plan_json(const struct kw_sandbox_plan *plan)
{
	(void)plan;
	return json_object();
}

const char *
kw_sandbox_plan_level(const struct kw_sandbox_plan *plan)
{
	(void)plan;
	return "none";
}
