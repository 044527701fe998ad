/*
 * doctor.h - keywarden doctor: the security guide's checklist, run by a
 * user on their own machine.
 *
 * cmd_doctor.c parses the command, runs the checks, applies --fix and
 * prints the report; each other doctor_*.c is one group of checks:
 * doctor_keys.c (API keys in plaintext), doctor_perms.c (who may read
 * Claude Code's and keywarden's files), doctor_broker.c (what the broker
 * says: user, TOTP, session, audit, roles), doctor_claude.c (Claude
 * Code's wiring and the configuration's filtering), doctor_sandbox.c
 * (whether this kernel can apply the policy's sandbox) and
 * doctor_apiproxy.c (the API proxy: on, listening, forwarding safely).  A check adds one item
 * per finding, or one item saying it passed.
 */
#ifndef KW_DOCTOR_H
#define KW_DOCTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cli/cli.h"
#include "common/config.h"
#include "common/macros.h"

/* In the order of severity: the report's exit status is 1 when any item is FAIL. */
enum kw_dr_status {
	KW_DR_PASS,
	KW_DR_INFO,	/* nothing to judge: a feature not there yet, a note */
	KW_DR_SKIP,	/* could not be checked (no broker, not an admin) */
	KW_DR_WARN,
	KW_DR_FAIL,
};

struct kw_dr_item {
	char *check;			/* "api-key.dotenv", ... */
	enum kw_dr_status status;
	char *detail;			/* what was found; never a key's value */
	char *fix;			/* one line of what to do, or NULL */
	char *file;			/* where, or NULL */
	long line;			/* line in file, 0: none */
	char *value;			/* --fix only: the key found here (wiped when freed) */
};

/* Where the project is: the current directory and its parents up to the repo root. */
#define KW_DR_PROJECT_MAX 5

struct kw_dr {
	struct kw_cli *cli;
	bool keep_values;		/* --fix: items keep the keys they found */
	const char *home;		/* $HOME, else the password database's */
	char *project[KW_DR_PROJECT_MAX];	/* cwd first, then parents (malloc'd) */
	size_t n_project;
	bool repo_root;			/* project[n_project-1] holds .git */
	struct kw_config *cfg;		/* the configuration, or the defaults */
	char cfg_path[4096];
	int cfg_err;			/* kw_config_load's answer */
	char cfg_why[512];

	/* The broker, asked once (NULL: unreachable or not asked). */
	kw_client *client;
	bool broker_tried;
	json_t *status;			/* "status" */
	json_t *account;		/* "account", when registered */
	json_t *verify;			/* "audit.verify", when it was asked */
	char verify_err[512];

	/* Set by --fix once a key is imported: findings of it say so. */
	char *imported;			/* the value (wiped when freed) */
	char imported_name[80];
	long long imported_version;

	/* Claude Code's apiKeyHelper (kw_dr_read_helper). */
	char *helper_file;		/* the settings file that sets it, or NULL */
	char *helper_prog;		/* its program, when it runs keywarden key get */
	char *helper_key;		/* the key it asks keywarden for, or NULL */
	bool helper_proxy;		/* it asks for a proxy token (key get NAME --proxy) */

	struct kw_dr_item *items;
	size_t n_items, cap_items;
	bool oom;
};

/*
 * Add an item (detail from fmt; fix and file copied, either may be NULL).
 * Returns it, valid until the next add; NULL when out of memory (d->oom).
 */
struct kw_dr_item *kw_dr_add(struct kw_dr *d, const char *check, enum kw_dr_status status,
    const char *file, long line, const char *fix, const char *fmt, ...)
	KW_PRINTF(7, 8) KW_NONNULL(1, 2, 7);

/* malloc'd printf, NULL when out of memory. */
char *kw_dr_fmt(const char *fmt, ...) KW_PRINTF(1, 2) KW_NONNULL(1);

/*
 * Read a regular file of at most max bytes without blocking on a FIFO or
 * a device a project may have planted.  0 and *ret_data (NUL-terminated;
 * it may hold a key: wipe it, sodium_memzero over *ret_len, then free);
 * -1 with errno (ENOENT, EACCES, EFBIG when larger than max, EINVAL when
 * not a regular file).
 */
int kw_dr_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len)
	KW_WUR KW_NONNULL(1, 3, 4);

/* Free the items (wiping their values). */
void kw_dr_clear(struct kw_dr *d) KW_NONNULL(1);

/*
 * The key shape of an Anthropic API key starting at s ("sk-ant-" and at
 * least 20 of [A-Za-z0-9_-]): its length, or 0.
 */
size_t kw_dr_key_len(const char *s) KW_NONNULL(1);

/*
 * Find the apiKeyHelper Claude Code would use (managed settings, the
 * project's, the user's) and, when it runs `keywarden key get NAME`, NAME:
 * the key --fix imports into.
 */
void kw_dr_read_helper(struct kw_dr *d) KW_NONNULL(1);

/* The checks, in the report's order.  Each adds its items to d. */
void kw_dr_check_config(struct kw_dr *d) KW_NONNULL(1);
void kw_dr_check_keys(struct kw_dr *d) KW_NONNULL(1);
void kw_dr_check_perms(struct kw_dr *d) KW_NONNULL(1);
void kw_dr_check_broker(struct kw_dr *d) KW_NONNULL(1);
void kw_dr_check_claude(struct kw_dr *d) KW_NONNULL(1);
void kw_dr_check_filtering(struct kw_dr *d) KW_NONNULL(1);
void kw_dr_check_sandbox(struct kw_dr *d) KW_NONNULL(1);
void kw_dr_check_apiproxy(struct kw_dr *d) KW_NONNULL(1);

/*
 * --fix: make the files and directories of the permission checks that the
 * user owns private (directories 0700, files 0600, or 0700 when the owner
 * may execute them), telling each change on stderr.  The number changed.
 */
int kw_dr_fix_perms(struct kw_dr *d) KW_NONNULL(1);

/*
 * Ask the broker over the run's one connection (made on first use).  0 and
 * *ret_result a new reference, or a KW_ERR_* with a one-line reason in why
 * (KW_ERR_CONNECT: no broker, which kw_cli_connect has said on stderr).
 */
int kw_dr_call(struct kw_dr *d, const char *op, json_t *args, json_t **ret_result,
    char *why, size_t why_len) KW_NONNULL(1, 2, 4, 5);

/*
 * Whether the caller may do verb on resource, judged here from its roles
 * (the status reply) and the permissions the configuration gives them, so
 * that no refusal lands in the audit trail: 1 yes, 0 no, -1 cannot tell (a
 * role the configuration does not define, created from the command line).
 */
int kw_dr_may(struct kw_dr *d, const char *verb, const char *resource) KW_NONNULL(1, 2, 3);

/* The caller's user name for the broker (status), else the uid's. Static storage. */
const char *kw_dr_user(const struct kw_dr *d) KW_NONNULL(1);

/* The key --fix imports into when apiKeyHelper names none. */
#define KW_DR_KEY_DEFAULT "anthropic"

int kw_cmd_doctor(struct kw_cli *cli, int argc, char **argv);

#endif
