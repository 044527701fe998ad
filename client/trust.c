/*
 * trust.c - is the broker at a socket the broker (see trust.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "client/keywarden.h"
#include "client/trust.h"

int
kw_trust_check_path(const char *path, uid_t owner, uid_t *ret_owner, char *why, size_t why_len)
{
	struct stat st;

	/* lstat: a symlink is not followed to a socket someone else chose. */
	if (lstat(path, &st) < 0) {
		int saved = errno;
		snprintf(why, why_len, "%s: %s", path, strerror(saved));
		errno = saved;
		return KW_ERR_CONNECT;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, why_len, "%s is not a socket", path);
		return KW_ERR_DENIED;
	}
	if (st.st_uid != 0 && st.st_uid != owner) {
		snprintf(why, why_len, "%s is owned by uid %u, not by root or uid %u", path,
		    (unsigned)st.st_uid, (unsigned)owner);
		return KW_ERR_DENIED;
	}
	*ret_owner = st.st_uid;
	return 0;
}

int
kw_trust_check_peer(int fd, const char *path, uid_t expected, char *why, size_t why_len)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred)) {
		snprintf(why, why_len, "%s: cannot read the peer's credentials", path);
		return KW_ERR_IO;
	}
	/*
	 * What counts is who answers: a broker impostor would have to be
	 * root or the trusted owner already.
	 */
	if (cred.uid != expected) {
		snprintf(why, why_len, "%s: the process answering runs as uid %u, the socket "
		    "is owned by uid %u", path, (unsigned)cred.uid, (unsigned)expected);
		return KW_ERR_DENIED;
	}
	return 0;
}
