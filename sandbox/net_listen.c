/* net_listen.c - the child's listeners (placeholder until the network filter lands). */
#include <errno.h>
#include <stdio.h>

#include "sandbox/sandbox_internal.h"

int
kw_sb_net_child_listen(const struct kw_sandbox_plan *plan, struct kw_sb_listener *out, size_t *n,
    char *err, size_t err_len)
{
	(void)plan; (void)out;
	*n = 0;
	snprintf(err, err_len, "the network filter is not built yet");
	return -ENOSYS;
}
