/* env.c - the confined child's environment (placeholder until the kernel layer lands). */
#include <stdlib.h>

#include "sandbox/sandbox.h"

char **
kw_sandbox_env(const struct kw_sandbox_plan *plan, char *const environ_[], char *const keep[],
    size_t n_keep, char ***removed)
{
	(void)plan; (void)environ_; (void)keep; (void)n_keep;
	if (removed)
		*removed = NULL;
	return calloc(1, sizeof(char *));
}

void
kw_sandbox_env_free(char **env)
{
	free(env);
}
