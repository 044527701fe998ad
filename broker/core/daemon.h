/*
 * daemon.h - the event loop's own state: the listening socket, the
 * connections and the descriptors it waits on.
 *
 * DESIGN: broker/core/ is the daemon without any feature: it accepts
 * clients (SO_PEERCRED), frames their bytes, hands each frame to the
 * dispatcher, sends the replies the dispatcher releases after its group
 * commit, enforces deadlines, runs the timers features registered and
 * collects work finished off the loop.  It includes nothing from the
 * feature folders; features reach it only through broker/dispatch/.
 */
#ifndef KW_DAEMON_H
#define KW_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/dispatch/dispatch.h"
#include "client/frame.h"

struct kw_uid_counts;

struct kw_conn {
	struct kw_peer peer;		/* what the dispatcher sees (first: see conn_of) */
	int fd;
	struct kw_frame_reader rd;
	uint8_t in[16384];		/* bytes read but not yet framed */
	size_t in_len;
	uint8_t *out;			/* replies not yet written (kept while small) */
	size_t out_len, out_off, out_cap;
	uint32_t events;		/* the epoll interest set now */
	bool closing;			/* close once out is flushed */
	int64_t frame_start_ms;		/* when the partial frame began */
	int64_t out_start_ms;		/* when out became non-empty */
	int64_t last_active_ms;
	int64_t accepted_ms;		/* when it was accepted (the hello deadline) */
	bool counted;			/* counted against its uid (not a privileged caller) */
	struct kw_conn *prev, *next;
};

struct kw_daemon {
	struct kw_dispatcher *d;	/* borrowed: where frames go */
	const char *socket_path;	/* borrowed */
	int listen_fd;
	int lock_fd;
	int epoll_fd;
	int signal_fd;
	struct kw_conn *conns;		/* list of open connections */
	size_t n_conns;
	size_t max_conns;
	/* One user cannot take every connection: each uid may hold max_per_uid,
	   and all of them together max_conns - reserved.  uid 0 (sshd's and
	   sudo's PAM module) and own_uid (the broker's user) are not counted. */
	size_t max_per_uid;
	size_t reserved;
	uid_t own_uid;
	size_t n_counted;		/* connections counted against their uid */
	struct kw_uid_counts *per_uid;	/* made and freed by kw_loop_run */
	int64_t client_timeout_ms;
	int64_t idle_timeout_ms;
	int64_t hello_timeout_ms;	/* a new connection's time to complete hello */
	bool accept_paused;		/* out of descriptors: listener muted */
	bool stopping;
	/*
	 * SIGHUP asks for on_reload(b, reload_ctx), which the loop calls between
	 * two turns -- after a turn's replies went out, before the next wait --
	 * never inside one.  It may change the settings above (timeouts, limits)
	 * and what the dispatcher's services hold.  NULL: SIGHUP is ignored.
	 */
	void (*on_reload)(struct kw_daemon *b, void *ctx);
	void *reload_ctx;
	bool reload_pending;
};

#endif
