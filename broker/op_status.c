/*
 * op_status.c - "status": is the broker there, which version, who am I.
 */
#include "keywarden.h"
#include "requests.h"

int
kw_op_status(struct kw_broker *b, struct kw_conn *c, json_t *args, json_t **ret_result,
    char *msg, size_t msg_len)
{
	*ret_result = json_pack("{s:s, s:i, s:s, s:{s:s, s:I, s:I, s:I}}",
	    "version", KW_VERSION,
	    "protocol", KW_PROTOCOL_VERSION,
	    "socket", b->socket_path,
	    "caller",
	    "user", c->caller.user,
	    "uid", (json_int_t)c->caller.uid,
	    "gid", (json_int_t)c->caller.gid,
	    "pid", (json_int_t)c->caller.pid);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}
