/*
 * ops.h - broker/policy/: tool calls decided by the policy.
 *
 * DESIGN: an agent's tool call (Claude Code's PreToolUse hook, through
 * `keywarden hook claude`) is the request "policy.check".  The policy
 * (policy/, compiled from the configuration at start and on reload: 
 * svc->policy) turns it into effects -- commands run, files read or
 * written, hosts reached -- and decides each; the caller's roles must
 * grant the permission each effect needs (execute:command/NAME,
 * read:file/PATH, write:file/PATH, read:host/NAME), and a session is
 * needed as for any permissioned request, so an administrator's revoke or
 * lock stops the agent's next tool call.  Recorded as the seed's actions
 * (file_read, file_write, file_delete, command_execute, api_call).
 */
#ifndef KW_POLICY_OPS_H
#define KW_POLICY_OPS_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "broker/dispatch/dispatch.h"
#include "common/macros.h"

/* Add policy's requests to d.  0 or an error. */
int kw_policy_register(struct kw_dispatcher *d, struct kw_services *svc) KW_WUR KW_NONNULL(1, 2);

/* "policy.check": fill *ret_result or fail with call->msg set. */
int kw_op_policy_check(struct kw_call *call, json_t **ret_result);

/* "policy.detector" and "policy.redact" (op_redact.c): the hook's redaction. */
int kw_op_policy_detector(struct kw_call *call, json_t **ret_result);
int kw_op_policy_redact(struct kw_call *call, json_t **ret_result);

/*
 * "sandbox.begin" and "sandbox.report" (op_sandbox.c): the policy
 * `keywarden run` applies with the kernel, and the record of each run.
 */
int kw_op_sandbox_begin(struct kw_call *call, json_t **ret_result);
int kw_op_sandbox_report(struct kw_call *call, json_t **ret_result);

/*
 * The home of uid from the password database the broker trusts (never the
 * caller's $HOME), for "~" in the policy.  0 or KW_ERR_NOT_FOUND.
 */
int kw_policy_home_of(uid_t uid, char *home, size_t len) KW_WUR KW_NONNULL(2);

#endif
