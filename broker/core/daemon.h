/*
 * broker.h - the broker's process-wide state and the connection type the
 * event loop and the request handlers share.
 */
#ifndef KW_BROKER_H
#define KW_BROKER_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/audit/audit.h"
#include "broker/dispatch/batch.h"
#include "common/config.h"
#include "client/frame.h"
#include "keystore/keystore.h"
#include "rbac/rbac.h"
#include "broker/login/secrets.h"

struct kw_conn {
	int fd;
	struct kw_caller caller;
	char user[64];			/* storage for caller.user */
	struct kw_frame_reader rd;
	uint8_t in[16384];		/* bytes read but not yet framed */
	size_t in_len;
	uint8_t *out;			/* replies not yet written */
	size_t out_len, out_off;
	bool greeted;			/* hello done */
	bool closing;			/* close once out is flushed */
	size_t pending;			/* replies held for the group commit */
	int64_t frame_start_ms;		/* when the partial frame began */
	int64_t out_start_ms;		/* when out became non-empty */
	int64_t last_active_ms;
	struct kw_conn *prev, *next;
};

struct kw_broker {
	struct kw_config *cfg;		/* owned */
	const char *socket_path;	/* borrowed from cfg */
	const char *data_dir;		/* borrowed from cfg */
	sqlite3 *state;			/* owned */
	struct kw_audit *audit;		/* owned */
	struct kw_secrets *secrets;	/* owned, sodium_malloc'd */
	struct kw_keystore *keystore;	/* owned: where API key values live */
	struct kw_monitor *monitor;	/* owned: alerts and incidents */
	struct kw_batch batch;		/* this turn's group commit */
	long long next_prune_at;	/* Unix seconds of the next retention run */
	int listen_fd;
	int lock_fd;
	int epoll_fd;
	int signal_fd;
	struct kw_conn *conns;		/* list of open connections */
	size_t n_conns;
	size_t max_conns;
	int64_t client_timeout_ms;
	int64_t idle_timeout_ms;
	bool accept_paused;		/* out of descriptors: listener muted */
	bool stopping;
};

/* Monotonic milliseconds, for deadlines. */
int64_t kw_now_ms(void);

#endif
