/*
 * fixture.c - the unit tests' private directories and what is opened in
 * them (fixture.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/login/secrets.h"
#include "broker/store/state.h"
#include "common/errors.h"
#include "common/fsutil.h"
#include "tests/unit/support/fixture.h"

int
kw_test_fx_new(const char *name, struct kw_test_fx **ret_fx)
{
	struct kw_test_fx *fx = calloc(1, sizeof(*fx));
	int n;

	if (!fx)
		return -ENOMEM;
	n = snprintf(fx->dir, sizeof(fx->dir), "/tmp/kw-test-%s.XXXXXX", name);
	if (n < 0 || (size_t)n >= sizeof(fx->dir)) {
		free(fx);
		return -ENAMETOOLONG;
	}
	if (!mkdtemp(fx->dir)) {
		n = -errno;
		free(fx);
		return n;
	}
	*ret_fx = fx;
	return 0;
}

static int
remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

int
kw_test_fx_free(struct kw_test_fx *fx)
{
	int r = 0;

	if (!fx)
		return 0;
	kw_state_close(fx->state);
	kw_secrets_free(fx->secrets);
	/* Depth first, not following links: only what the test made goes. */
	if (nftw(fx->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
		r = -errno;
		fprintf(stderr, "kw_test_fx_free: %s not removed: %s\n", fx->dir, strerror(errno));
	}
	free(fx);
	return r;
}

int
kw_test_fx_state(struct kw_test_fx *fx)
{
	char err[512] = "";
	int r;

	if ((r = kw_state_open(fx->dir, &fx->state, err, sizeof(err))) != 0)
		fprintf(stderr, "kw_test_fx_state: %s\n", err);
	return r;
}

const struct kw_config *
kw_test_defaults(void)
{
	static struct kw_config *cfg;
	char err[256];

	if (!cfg && kw_config_parse("{}", 2, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "kw_test_defaults: %s\n", err);
		abort();
	}
	return cfg;
}

int
kw_test_fx_secrets(struct kw_test_fx *fx)
{
	char err[512] = "";
	int r;

	if ((r = kw_secrets_open(kw_test_defaults(), fx->dir, false, &fx->secrets, err,
	    sizeof(err))) != 0)
		fprintf(stderr, "kw_test_fx_secrets: %s\n", err);
	return r;
}

int
kw_test_config(const struct kw_test_fx *fx, const char *json, struct kw_config **ret_cfg)
{
	_cleanup_free_ char *path = NULL;
	char err[1024] = "";
	int fd, r;

	if (asprintf(&path, "%s/config.json", fx->dir) < 0) {
		path = NULL;
		return KW_ERR_NOMEM;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return KW_ERR_IO;
	r = kw_write_all(fd, json, strlen(json));
	if (close(fd) < 0)
		r = KW_ERR_IO;
	if (r == 0 && (r = kw_config_load(path, false, ret_cfg, err, sizeof(err))) != 0)
		fprintf(stderr, "kw_test_config: %s\n", err);
	return r;
}

int
kw_test_setup(void **state)
{
	struct kw_test_fx *fx = NULL;
	int r;

	if ((r = kw_test_fx_new("unit", &fx)) != 0) {
		fprintf(stderr, "kw_test_setup: %s\n", strerror(-r));
		return -1;
	}
	*state = fx;
	return 0;
}

int
kw_test_teardown(void **state)
{
	int r = kw_test_fx_free(*state);

	*state = NULL;
	return r == 0 ? 0 : -1;
}

char *
kw_test_path(const struct kw_test_fx *fx, const char *name)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", fx->dir, name) > 0);
	return p;
}

void
kw_test_write(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	if (len)
		assert_int_equal(kw_write_all(fd, data, len), 0);
	/* fchmod, not the umask: the test decides the exact mode. */
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

void
kw_test_write_text(const char *path, const char *text, mode_t mode)
{
	kw_test_write(path, text, strlen(text), mode);
}

unsigned char *
kw_test_read(const char *path, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *data = NULL;
	size_t len = 0;

	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	assert_int_equal(kw_read_fd(fd, 64u << 20, &data, &len), 0);
	close(fd);
	if (ret_len)
		*ret_len = len;
	return (unsigned char *)data;
}

mode_t
kw_test_mode(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		fail_msg("lstat %s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}
