/* connect_parse.c - one CONNECT request head (placeholder until the filter lands). */
#include "sandbox/sandbox_internal.h"

int
kw_sb_connect_parse(const char *buf, size_t len, struct kw_sb_connect_req *req)
{
	(void)buf; (void)len; (void)req;
	return -400;
}
