/*
 * features.c - the list of the broker's features (see features.h).
 */
#include "broker/accounts/ops.h"
#include "broker/alerts/ops.h"
#include "broker/apiproxy/apiproxy.h"
#include "broker/audit/ops.h"
#include "broker/features.h"
#include "broker/keys/ops.h"
#include "broker/login/ops.h"
#include "broker/policy/ops.h"
#include "common/log.h"

static const struct {
	const char *name;
	int (*plug)(struct kw_dispatcher *d, struct kw_services *svc);
} features[] = {
	{ .name = "accounts", .plug = kw_accounts_register },
	{ .name = "login", .plug = kw_login_register },
	{ .name = "keys", .plug = kw_keys_register },
	{ .name = "audit", .plug = kw_audit_register },
	{ .name = "alerts", .plug = kw_alerts_register },
	{ .name = "policy", .plug = kw_policy_register },
	{ .name = "apiproxy", .plug = kw_apiproxy_register },
};

int
kw_features_register(struct kw_dispatcher *d, struct kw_services *svc)
{
	int r;

	for (size_t i = 0; i < KW_ELEMENTSOF(features); i++)
		if ((r = features[i].plug(d, svc)) < 0) {
			kw_log_error("feature %s: cannot plug in", features[i].name);
			return r;
		}
	return 0;
}
