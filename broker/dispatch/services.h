/*
 * services.h - what a request handler, a timer or an observer may use: the
 * settings and the stores, never the daemon (its sockets, connections and
 * event loop stay in broker/core/).
 *
 * broker/main.c opens each service and fills one struct kw_services; every
 * call carries a pointer to it.  The pointers are owned by main.c and live
 * as long as the broker runs (cfg and roles are replaced by a reload).  The state store is reached only through the
 * named functions of broker/store/ (a second store implements the same).
 */
#ifndef KW_SERVICES_H
#define KW_SERVICES_H

#include <jansson.h>
#include <sys/types.h>

#include "common/config.h"

struct kw_apiproxy;
struct kw_audit;
struct kw_batch;
struct kw_detector;
struct kw_keystore;
struct kw_monitor;
struct kw_policy;
struct kw_roles;
struct kw_secrets;
struct kw_state;

struct kw_services {
	struct kw_config *cfg;		/* the configuration in force: the one the broker
					   started with, or the last one a SIGHUP swapped
					   in between two turns (broker/reload.h) -- never
					   keep a pointer into it across turns */
	const char *config_path;	/* the file it was read from (--config, ...) */
	const char *data_dir;		/* broker.dataDir (borrowed from cfg; a reload
					   that would change it is refused) */
	const char *socket_path;	/* broker.socket (likewise) */
	uid_t uid;			/* the uid the broker runs as: its callers own the
					   broker as root does (rbac.h, kw_caller.owner) */
	struct kw_state *state;		/* state.db: users, sessions, locks, keys' metadata */
	struct kw_audit *audit;		/* audit.db: the hash-chained trail */
	struct kw_secrets *secrets;	/* key material derived for sessions and TOTP */
	struct kw_keystore *keystore;	/* where API key values live */
	struct kw_monitor *monitor;	/* alerts and incidents (may be NULL in tests) */
	struct kw_roles *roles;		/* roles compiled for decisions (accounts/roles.h) */
	struct kw_policy *policy;	/* the policy settings compiled for tool calls
					   (policy/policy.h; replaced by a reload) */
	struct kw_detector *detector;	/* secret rules and filters, compiled
					   (policy/detect/detect.h; replaced by a reload) */
	struct kw_batch *batch;		/* this turn's group commit (dispatch/batch.h) */
	struct kw_apiproxy *apiproxy;	/* the API proxy's supervisor (broker/apiproxy/), made
					   when the feature registers; NULL in tests */
	json_t *status_parts;		/* what features add to the status reply, one key
					   each ("api_proxy"); owned by main.c, may be NULL */
};

#endif
