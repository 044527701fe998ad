/*
 * fixture.h - what the unit tests that work on real files share: a private
 * directory per test (or per group), the stores opened in it, and the few
 * file operations the tests make there.
 *
 * A struct kw_test_fx owns its directory, /tmp/kw-test-NAME.XXXXXX (0700),
 * which kw_test_fx_free removes with everything in it, and the state store
 * and broker secret a test opened in it.  The set-up calls return 0 or a
 * negative code and say why on stderr (a cmocka set-up reports only that it
 * failed); the file helpers are for test bodies and fail the running test
 * instead of returning, like the assert_* they stand beside.
 */
#ifndef KW_TEST_FIXTURE_H
#define KW_TEST_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/macros.h"

struct kw_secrets;
struct kw_state;

struct kw_test_fx {
	char dir[64];			/* the private directory */
	struct kw_state *state;		/* dir/state.db after kw_test_fx_state, else NULL */
	struct kw_secrets *secrets;	/* the broker secret after kw_test_fx_secrets, else NULL */
};

/*
 * A fixture with a new directory named after name (a short word); *ret_fx
 * is the caller's, for kw_test_fx_free.  0, or -errno with *ret_fx untouched.
 */
int kw_test_fx_new(const char *name, struct kw_test_fx **ret_fx) KW_WUR KW_NONNULL(1, 2);

/*
 * Close what fx opened and remove its directory and all in it (depth first,
 * links not followed).  0, or -errno when something stayed.  Accepts NULL.
 */
int kw_test_fx_free(struct kw_test_fx *fx);

/* Open (or create) dir/state.db as fx->state, owned by fx.  0 or a KW_ERR_* code. */
int kw_test_fx_state(struct kw_test_fx *fx) KW_WUR KW_NONNULL(1);

/* The built-in defaults (static; keySource local, for the broker secret). */
const struct kw_config *kw_test_defaults(void);

/* Open (or create) the broker secret in dir (wrapped by the local provider, the
   default) as fx->secrets, owned by fx.  0 or a KW_ERR_* code. */
int kw_test_fx_secrets(struct kw_test_fx *fx) KW_WUR KW_NONNULL(1);

/*
 * Write json to dir/config.json (0600) and load it the way the broker loads
 * its file.  *ret_cfg is the caller's (kw_config_free); 0 or a KW_ERR_* code.
 */
int kw_test_config(const struct kw_test_fx *fx, const char *json, struct kw_config **ret_cfg)
	KW_WUR KW_NONNULL(1, 2, 3);

/*
 * cmocka set-up and tear-down: *state is a bare struct kw_test_fx named
 * "unit" (the tear-down fails when its directory could not be removed).
 */
int kw_test_setup(void **state);
int kw_test_teardown(void **state);

/* ---- in a test body: these fail the test instead of returning an error ---- */

/* fx's dir/name; the caller's to free. */
char *kw_test_path(const struct kw_test_fx *fx, const char *name) KW_NONNULL(1, 2);

/* Create or truncate path, write len bytes of data, then fchmod to exactly mode. */
void kw_test_write(const char *path, const void *data, size_t len, mode_t mode)
	KW_NONNULL(1);

/* kw_test_write of a string, without its NUL. */
void kw_test_write_text(const char *path, const char *text, mode_t mode) KW_NONNULL(1, 2);

/* The whole file, NUL-terminated after its *ret_len bytes; the caller's to free. */
unsigned char *kw_test_read(const char *path, size_t *ret_len) KW_NONNULL(1);

/* path's permission bits (lstat: a link's own). */
mode_t kw_test_mode(const char *path) KW_NONNULL(1);

#endif
