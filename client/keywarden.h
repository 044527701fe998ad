/*
 * keywarden.h - the public client API of keywarden (libkeywarden).
 *
 * libkeywarden is the one implementation of the keywarden wire protocol.
 * The keywarden CLI and pam_keywarden use it, and so can any program:
 *
 *	kw_client *c = NULL;
 *	json_t *res = NULL;
 *	if (kw_client_connect(NULL, &c) == 0 &&
 *	    kw_client_call(c, "status", NULL, &res, NULL) == 0)
 *		... use res ...
 *	json_decref(res);
 *	kw_client_free(c);
 *
 * Every function returns 0 on success or a negative KW_ERR_* code.  Output
 * parameters (ret_*) are set only on success unless stated otherwise.
 * The wire format is described in keywarden(7)-style prose in keywardend(8),
 * section PROTOCOL.
 */
#ifndef KEYWARDEN_H
#define KEYWARDEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

/* KW_ERR_* and their names (installed as keywarden/errors.h). */
#include "common/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KW_PROTOCOL_VERSION	1
/* Largest frame body either side accepts; checked before allocating. */
#define KW_FRAME_MAX		(64 * 1024)


typedef struct kw_client kw_client;

/*
 * Socket path a client should use when none is given: $KEYWARDEN_SOCKET,
 * then the default /run/keywarden/broker.sock.  Static or environment
 * storage; do not free.
 */
const char *kw_default_socket(void);

/*
 * Connect to the broker at socket_path (NULL: kw_default_socket()), check
 * that it is trusted, and do the version handshake.  Trusted means: the
 * path is a socket (not a symlink) owned by root or by the caller's
 * effective uid, and the process answering on it runs as the socket's
 * owner (SO_PEERCRED); nothing, not even the handshake, is sent before.  So
 * a socket another user made cannot collect tokens or keys, wherever
 * $KEYWARDEN_SOCKET points.  On success *ret_client is owned by the caller
 * and must be released with kw_client_free().  Returns KW_ERR_CONNECT when
 * nothing listens there (errno says why), KW_ERR_DENIED when the socket or
 * its peer is not trusted, KW_ERR_VERSION when the broker speaks another
 * version.
 */
int kw_client_connect(const char *socket_path, kw_client **ret_client)
	__attribute__((warn_unused_result));

/*
 * kw_client_connect for a broker that runs as broker_uid, neither root nor
 * the caller (the PAM module's broker_uid=, the CLI's broker.uid): root and
 * broker_uid are trusted, and no one else.  why (NULL: not wanted) gets a
 * one-line reason on every failure, without secrets.
 */
int kw_client_connect_trusted(const char *socket_path, uid_t broker_uid,
    kw_client **ret_client, char *why, size_t why_len)
	__attribute__((warn_unused_result));

/* Close the connection and free the client.  Accepts NULL. */
void kw_client_free(kw_client *c);

/*
 * Send request `op` with `args` (borrowed; NULL means {}) and wait for its
 * reply.  On success *ret_result holds a new reference to the "result"
 * object.  On an error reply the function returns the error's code and, if
 * ret_message is not NULL, stores a malloc'd copy of the broker's message in
 * *ret_message (the caller frees it) -- the only output set on failure.
 */
int kw_client_call(kw_client *c, const char *op, json_t *args,
    json_t **ret_result, char **ret_message)
	__attribute__((warn_unused_result));

/*
 * Attach a session token to every later request on c (copied, and wiped
 * when replaced or freed; NULL clears).  0 or KW_ERR_NOMEM.
 */
int kw_client_set_session(kw_client *c, const char *token);

/*
 * The token cache: where `keywarden login` keeps the session token for the
 * broker at socket_path, so later commands can use it.  The kernel user
 * keyring first (a key that expires after timeout_s), else a 0600 file under
 * $XDG_RUNTIME_DIR/keywarden/.  Never the environment.  $KEYWARDEN_TOKEN_CACHE
 * chooses: "keyring" (default, file as fallback) or "file"; another value is
 * KW_ERR_CONFIG.  socket_path NULL means kw_default_socket(); timeout_s 0
 * means no expiry.
 * kw_session_store: KW_ERR_INVALID for an empty token or one with a newline.
 * kw_session_load: *ret_token is malloc'd, the caller wipes and frees it;
 * KW_ERR_NOT_FOUND when nothing (unexpired) is cached.
 * kw_session_forget: removes the token from both places; 0 when none is left.
 */
int kw_session_store(const char *socket_path, const char *token, unsigned timeout_s);
int kw_session_load(const char *socket_path, char **ret_token);
int kw_session_forget(const char *socket_path);

/*
 * How long the token cache should keep the token of a successful "login"
 * (result: its result object, borrowed): until the session's absolute end
 * ("expires"), or for its idle timeout ("idle_timeout") when it has none or
 * the clocks disagree, else an hour.  Seconds, never 0.
 */
unsigned kw_session_lifetime(json_t *login_result);

/*
 * The uid of the process at the other end of c's socket (SO_PEERCRED, as
 * recorded when the connection was made), so a caller can check it talks to
 * the broker's user before it sends a secret.  0 or KW_ERR_IO.
 */
int kw_client_peer_uid(const kw_client *c, uid_t *ret_uid)
	__attribute__((warn_unused_result));

/* Protocol version and server string the broker announced in the handshake. */
int kw_client_server_version(const kw_client *c);
const char *kw_client_server_name(const kw_client *c);

/* Library version string, e.g. "0.1.0"; static storage. */
const char *kw_version(void);

#ifdef __cplusplus
}
#endif

#endif
