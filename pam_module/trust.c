/*
 * trust.c - a connection only to a trusted broker (see trust.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "pam_module/trust.h"

void
kw_trust_init(struct kw_trust *t, bool has_broker_uid, uid_t broker_uid, uid_t self)
{
	t->owner = has_broker_uid ? broker_uid : self;
}

static bool
owner_ok(const struct kw_trust *t, uid_t uid)
{
	return uid == 0 || uid == t->owner;
}

int
kw_trust_connect(const struct kw_trust *t, const char *path, kw_client **ret_client,
    char *why, size_t why_len)
{
	kw_client *c = NULL;
	struct stat st;
	uid_t peer;
	int r;

	/* lstat: a symlink is not followed to a socket someone else chose. */
	if (lstat(path, &st) < 0) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		return KW_ERR_CONNECT;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, why_len, "%s is not a socket", path);
		return KW_ERR_DENIED;
	}
	if (!owner_ok(t, st.st_uid)) {
		snprintf(why, why_len, "%s is owned by uid %u, not by root or uid %u",
		    path, (unsigned)st.st_uid, (unsigned)t->owner);
		return KW_ERR_DENIED;
	}
	if ((r = kw_client_connect(path, &c)) < 0) {
		if (r == KW_ERR_CONNECT)
			snprintf(why, why_len, "%s: %s", path, strerror(errno));
		else
			snprintf(why, why_len, "%s: %s", path, kw_strerror(r));
		return r;
	}
	/*
	 * The file may have been replaced since lstat; what counts is who
	 * answers.  Its uid must be the owner just checked, so a broker
	 * impostor would have to be root or the broker's user already.
	 */
	if ((r = kw_client_peer_uid(c, &peer)) < 0) {
		snprintf(why, why_len, "%s: cannot read the peer's credentials", path);
		goto fail;
	}
	if (peer != st.st_uid) {
		snprintf(why, why_len, "%s: the process answering runs as uid %u, "
		    "the socket is owned by uid %u", path, (unsigned)peer, (unsigned)st.st_uid);
		r = KW_ERR_DENIED;
		goto fail;
	}
	*ret_client = c;
	return 0;
 fail:
	kw_client_free(c);
	return r;
}
