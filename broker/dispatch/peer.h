/*
 * peer.h - one client connection as the dispatcher and the group commit see
 * it.  The event loop embeds it in its own connection (broker/core/daemon.h)
 * and owns it; the dispatcher reads the caller and keeps the counters.
 */
#ifndef KW_PEER_H
#define KW_PEER_H

#include <stdbool.h>
#include <stddef.h>

#include "rbac/rbac.h"

/* One client as the dispatcher sees it (part of the loop's connection). */
struct kw_peer {
	struct kw_caller caller;	/* from SO_PEERCRED; caller.user points at user */
	char user[64];
	bool greeted;			/* hello done */
	size_t pending;			/* replies held for the group commit or a worker */
	bool deferred;			/* a request is with a worker: read no more until it answers */
	bool internal;			/* the broker's own channel to a helper it started
					   (kw_loop_adopt): only KW_OP_INTERNAL requests, and
					   only here */
};

#endif
