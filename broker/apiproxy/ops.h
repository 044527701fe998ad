/*
 * ops.h - broker/apiproxy/'s requests: the proxy's own (answered on its
 * channel only) and the users' (a proxy token, the usage summary).
 */
#ifndef KW_APIPROXY_OPS_H
#define KW_APIPROXY_OPS_H

#include "broker/dispatch/dispatch.h"

/* Each fills *ret_result and returns 0, or returns an error with call->msg set. */
int kw_op_proxy_ready(struct kw_call *call, json_t **ret_result);
int kw_op_proxy_authorize(struct kw_call *call, json_t **ret_result);
int kw_op_proxy_refuse(struct kw_call *call, json_t **ret_result);
int kw_op_proxy_record(struct kw_call *call, json_t **ret_result);
int kw_op_key_proxy_token(struct kw_call *call, json_t **ret_result);
int kw_op_admin_usage(struct kw_call *call, json_t **ret_result);

#endif
