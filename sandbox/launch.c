/* launch.c - run the command under the plan (placeholder until the kernel layer lands). */
#include <stdio.h>

#include "common/errors.h"
#include "sandbox/sandbox.h"

int
kw_sandbox_launch(const struct kw_sandbox_plan *plan, char *const argv[], char *const envp[],
    kw_sandbox_ready_fn ready, void *ready_arg, int *ret_status, char *err, size_t err_len)
{
	(void)plan; (void)argv; (void)envp; (void)ready; (void)ready_arg;
	*ret_status = 127;
	snprintf(err, err_len, "the sandbox is not built yet");
	return KW_ERR_INVALID;
}
