/*
 * sandbox_relay.h - `keywarden run`'s broker relay: what lets Claude
 * Code's hook (`keywarden hook claude`) and apiKeyHelper (`keywarden key
 * get NAME`) reach the broker from inside the sandbox, and nothing more.
 *
 * Inside, socket(AF_UNIX) is refused and the broker's socket is hidden, on
 * purpose: a confined agent must not ask the broker for other keys.  So
 * the parent -- the user's own process, outside -- listens on a loopback
 * TCP port the sandbox can reach (launch hands it the listener) and
 * passes, on broker connections of its own carrying the user's session,
 * only the ops the hook needs: status, policy.check, policy.detector,
 * policy.redact, and key.get for the names given with --relay-key.
 * Anything else is answered "denied" by the relay itself.  A connection
 * must first send "KWRELAY TOKEN\n" with the run's random token (handed
 * to the child in KEYWARDEN_RELAY): without a network namespace the port
 * is on the host's loopback, where other local users could reach it.
 */
#ifndef KW_CLI_SANDBOX_RELAY_H
#define KW_CLI_SANDBOX_RELAY_H

#include <stddef.h>

#include "cli/cli.h"

/* The variable that carries "127.0.0.1:PORT:TOKEN" into the sandbox. */
#define KW_RELAY_ENV		"KEYWARDEN_RELAY"
/* Hex digits of the token (32 random bytes). */
#define KW_RELAY_TOKEN_HEX	64
/* What every refused op is told. */
#define KW_RELAY_REFUSED	"keywarden run: the sandbox's relay passes only policy " \
				"checks (and keys named with --relay-key)"

struct kw_cli_relay;

/*
 * A relay for one run, not serving yet: makes the token.  keys (n_keys
 * names, borrowed for the relay's life) are the key.get names it passes;
 * level (borrowed likewise) is the sandbox's level, which every
 * policy.check it passes carries as "sandboxed" (the relay knows the call
 * came from inside; what the caller wrote there is replaced).
 * 0 with *ret, or KW_ERR_NOMEM.
 */
int kw_cli_relay_new(struct kw_cli *cli, char *const *keys, size_t n_keys, const char *level,
    struct kw_cli_relay **ret) KW_WUR KW_NONNULL(1, 4, 5);

/*
 * "KEYWARDEN_RELAY=127.0.0.1:PORT:TOKEN" for the child's environment, in
 * out (room for 128 bytes; the caller wipes it).  0, or KW_ERR_INVALID
 * when it does not fit.
 */
int kw_cli_relay_env(const struct kw_cli_relay *relay, unsigned short port, char *out,
    size_t out_len) KW_WUR KW_NONNULL(1, 3);

/*
 * The launcher's relay hook (kw_sandbox_relay_fn): serve listen_fd (owned
 * from here on) on threads of the relay's own until kw_cli_relay_free.
 * 0, or KW_ERR_IO when the thread cannot start.
 */
int kw_cli_relay_serve(void *relay, int listen_fd);

/* Stop serving, wait for the threads, close everything, wipe the token.  NULL is fine. */
void kw_cli_relay_free(struct kw_cli_relay *relay);

/*
 * Inside the sandbox: connect to the relay KEYWARDEN_RELAY names (spec is
 * its value), authenticate with its token, and run the usual handshake.
 * 0 with *ret (no session attached: the relay attaches the user's), or
 * KW_ERR_INVALID (the variable is malformed), KW_ERR_CONNECT (errno set),
 * or the handshake's error; why says which.
 */
int kw_cli_relay_connect(const char *spec, kw_client **ret, char *why, size_t why_len)
    KW_WUR KW_NONNULL(1, 2, 3);

#endif
