/* net_serve.c - the parent's network filter (placeholder until it lands). */
#include <unistd.h>

#include "sandbox/sandbox_internal.h"

void
kw_sb_net_serve(const struct kw_sandbox_plan *plan, struct kw_sb_listener *listeners, size_t n,
    int stop_fd)
{
	(void)plan; (void)stop_fd;
	for (size_t i = 0; i < n; i++)
		close(listeners[i].fd);
}

bool
kw_sb_host_allowed(const struct kw_sandbox_plan *plan, const char *host)
{
	(void)plan; (void)host;
	return false;
}
