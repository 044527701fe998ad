/*
 * trust.h - connecting to a broker the PAM module may send a code to.
 *
 * A code or a session token goes only to a broker that is what it claims
 * to be: the socket file must be a socket owned by root or by the broker's
 * user, and the process answering on it must run as the socket's owner
 * (SO_PEERCRED), so a socket someone else created or bound cannot collect
 * codes (pam_sss does the same with its pipe).
 */
#ifndef KW_PAM_TRUST_H
#define KW_PAM_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "client/keywarden.h"
#include "common/macros.h"

struct kw_trust {
	uid_t owner;		/* besides root, the uid that may own the socket */
};

/*
 * The owner to accept besides root: broker_uid when given (has_broker_uid),
 * else self (the module's effective uid, for a broker the user runs).
 */
void kw_trust_init(struct kw_trust *t, bool has_broker_uid, uid_t broker_uid, uid_t self)
	KW_NONNULL(1);

/*
 * Connect to the broker at path and check it is trusted.  On success
 * *ret_client is the caller's (kw_client_free).  KW_ERR_CONNECT when no
 * broker answers there, KW_ERR_DENIED when the socket or its peer is not
 * trusted, another KW_ERR_* from kw_client_connect; why gets a one-line
 * reason without secrets in every failure case.
 */
int kw_trust_connect(const struct kw_trust *t, const char *path, kw_client **ret_client,
    char *why, size_t why_len) KW_WUR KW_NONNULL(1, 2, 3, 4);

#endif
