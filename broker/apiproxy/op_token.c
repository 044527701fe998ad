/*
 * op_token.c - key.proxy_token: a token for keywarden-proxy that stands for
 * one key of the caller's session (never the key itself).  Recorded like a
 * key access, without the key or the token.
 */
#include <stdio.h>

#include <sodium.h>

#include "broker/apiproxy/apiproxy_internal.h"
#include "broker/apiproxy/ops.h"
#include "broker/apiproxy/tokens.h"
#include "common/clock.h"
#include "common/errors.h"

int
kw_op_key_proxy_token(struct kw_call *call, json_t **ret_result)
{
	struct kw_apiproxy *ap = call->svc->apiproxy;
	const char *name = kw_arg_str(call->args, "name");
	const char *listen = ap && ap->listen[0] ? ap->listen :
	    kw_config_str(call->svc->cfg, "broker.apiProxy.listen");
	char token[KW_TOKEN_MAX], exp[32], url[160];
	int r;

	if ((r = kw_proxy_token_make(call->svc->state, call->svc->secrets, call->session, name,
	    kw_now(), token)) < 0)
		return r;
	/* The public half names it in the record; the secret is nowhere but the reply. */
	json_object_set_new(call->meta, "token_id", json_stringn(token + 5, KW_PROXY_TOKEN_ID_LEN));
	snprintf(url, sizeof(url), "http://%s", listen);
	*ret_result = json_pack("{s:s, s:o, s:s, s:s, s:b}", "token", token,
	    "expires", call->session->expires < 0 ? json_null() :
	    json_string(kw_time_text(call->session->expires, exp)),
	    "base_url", url, "key", name,
	    "proxy_running", ap && ap->state == KW_AP_RUNNING);
	sodium_memzero(token, sizeof(token));
	return *ret_result ? 0 : KW_ERR_NOMEM;
}
