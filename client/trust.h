/*
 * trust.h - the one broker trust check (libkeywarden internal; the public
 * entry is kw_client_connect_trusted in keywarden.h).
 *
 * A code, a session token or a key goes only to a broker that is what it
 * claims to be: the socket file must be a socket (not a symlink) owned by
 * root or by the one other uid the caller accepts (its own, or the
 * broker's user when configured), and the process answering on it must run
 * as the socket's owner (SO_PEERCRED), so a socket someone else created or
 * bound cannot collect secrets (pam_sss does the same with its pipe).  The
 * PAM module, the CLI and every program using libkeywarden share it.
 */
#ifndef KW_CLIENT_TRUST_H
#define KW_CLIENT_TRUST_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/macros.h"

/*
 * Before connecting: path must be a socket owned by root or by owner.  0
 * with *ret_owner set to the socket's owner; KW_ERR_CONNECT (errno set)
 * when there is nothing at path, KW_ERR_DENIED when it is no socket or
 * belongs to someone else.  why gets a one-line reason on failure.
 */
int kw_trust_check_path(const char *path, uid_t owner, uid_t *ret_owner, char *why,
    size_t why_len) KW_WUR KW_NONNULL(1, 3, 4);

/*
 * After connecting, before sending anything: the process answering on fd
 * must run as expected (the owner kw_trust_check_path found: the file may
 * have been replaced since).  0, KW_ERR_DENIED, or KW_ERR_IO when the
 * credentials cannot be read; why as above.
 */
int kw_trust_check_peer(int fd, const char *path, uid_t expected, char *why, size_t why_len)
	KW_WUR KW_NONNULL(2, 4);

#endif
