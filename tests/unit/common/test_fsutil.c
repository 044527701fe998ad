/*
 * test_fsutil.c - the trust rule for what the broker reads (common/fsutil.h):
 * the directory chain (owners, group/other write, root's sticky directories
 * above but not as the one in use, links followed only when trusted), and
 * opens under a directory fd that refuse links, other users' files, files
 * others may write and what is not a regular file.
 *
 * Another user's files need root to make (chown to uid 2001, which need
 * not exist); those checks are skipped when the tests run unprivileged.
 * Each test works in a mkdtemp directory of its own under /tmp (root's and
 * sticky: the test of the chain relies on that being accepted above).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/errors.h"
#include "common/fsutil.h"
#include "tests/unit/support/fixture.h"

#define OTHER 2001	/* a uid that is neither root nor us */

static char *
in(const struct kw_test_fx *fx, const char *name)
{
	static char buf[4][256];
	static int n;
	char *p = buf[n++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", fx->dir, name);
	return p;
}

/* kw_check_dir_chain on path gives want; on a refusal err names `names`. */
static void
chain_is(const char *path, int want, const char *names)
{
	char err[1024] = "";
	int r = kw_check_dir_chain(path, err, sizeof(err));

	if (r != want)
		fail_msg("%s: %d, want %d (%s)", path, r, want, err);
	if (names && !strstr(err, names))
		fail_msg("%s: \"%s\" does not name %s", path, err, names);
}

static void
test_chain(void **state)
{
	struct kw_test_fx *fx = *state;
	char rel[512];

	/* /tmp is root's and sticky: fine above, not as the directory in use. */
	chain_is(fx->dir, 0, NULL);
	chain_is("/tmp", KW_ERR_CONFIG, "/tmp is writable by");
	chain_is(in(fx, "none/deeper"), KW_ERR_NOT_FOUND, in(fx, "none"));

	assert_int_equal(mkdir(in(fx, "open"), 0700), 0);
	assert_int_equal(mkdir(in(fx, "open/lib"), 0700), 0);
	chain_is(in(fx, "open/lib"), 0, NULL);
	assert_int_equal(chmod(in(fx, "open"), 0777), 0);
	chain_is(in(fx, "open/lib"), KW_ERR_CONFIG, in(fx, "open is writable by"));
	assert_int_equal(chmod(in(fx, "open"), 0770), 0);
	chain_is(in(fx, "open/lib"), KW_ERR_CONFIG, "its group");
	/* Sticky and root's: accepted above (when we are root, it is ours anyway). */
	assert_int_equal(chmod(in(fx, "open"), 01777), 0);
	chain_is(in(fx, "open/lib"), geteuid() == 0 ? 0 : KW_ERR_CONFIG, NULL);
	chain_is(in(fx, "open"), KW_ERR_CONFIG, "mode 1777");
	assert_int_equal(chmod(in(fx, "open"), 0755), 0);

	/* Through a link of ours, the target is checked; "." and ".." are followed. */
	assert_int_equal(symlink(in(fx, "open"), in(fx, "link")), 0);
	chain_is(in(fx, "link/lib"), 0, NULL);
	chain_is(in(fx, "link/./lib/../lib"), 0, NULL);
	assert_int_equal(chmod(in(fx, "open"), 0777), 0);
	chain_is(in(fx, "link/lib"), KW_ERR_CONFIG, in(fx, "open is writable by"));
	assert_int_equal(chmod(in(fx, "open"), 0755), 0);
	/* Relative to the current directory. */
	assert_int_equal(chdir(fx->dir), 0);
	snprintf(rel, sizeof(rel), "open/lib");
	chain_is(rel, 0, NULL);
	assert_int_equal(chdir("/"), 0);

	if (geteuid() != 0)
		return;
	assert_int_equal(lchown(in(fx, "link"), OTHER, OTHER), 0);
	chain_is(in(fx, "link/lib"), KW_ERR_CONFIG, "symbolic link owned by uid 2001");
	assert_int_equal(chown(in(fx, "open"), OTHER, OTHER), 0);
	chain_is(in(fx, "open/lib"), KW_ERR_CONFIG, in(fx, "open is owned by uid 2001"));
	assert_int_equal(chown(in(fx, "open"), 0, 0), 0);
	assert_int_equal(chown(in(fx, "open/lib"), OTHER, OTHER), 0);
	chain_is(in(fx, "open/lib"), KW_ERR_CONFIG, in(fx, "open/lib is owned by"));
}

static int
dir_fd(const struct kw_test_fx *fx)
{
	int fd = open(fx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

/* kw_open_private(dfd, name, flags) gives want; why says `says`. */
static void
open_is(int dfd, const char *name, int flags, int want, const char *says)
{
	char why[512] = "";
	int fd = kw_open_private(dfd, name, flags, 0600, why, sizeof(why));

	if (want == 0 ? fd < 0 : fd != want)
		fail_msg("%s: %d, want %d (%s)", name, fd, want, why);
	if (fd >= 0)
		close(fd);
	if (says && !strstr(why, says))
		fail_msg("%s: \"%s\" does not say %s", name, why, says);
}

static void
test_open_private(void **state)
{
	struct kw_test_fx *fx = *state;
	int dfd = dir_fd(fx);
	struct stat st;

	kw_test_write(in(fx, "mine"), "data", 4, 0600);
	open_is(dfd, "mine", O_RDONLY, 0, NULL);
	open_is(dfd, "absent", O_RDONLY, KW_ERR_NOT_FOUND, NULL);
	open_is(dfd, "made", O_RDWR | O_CREAT, 0, NULL);
	assert_int_equal(stat(in(fx, "made"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	assert_int_equal(symlink(in(fx, "mine"), in(fx, "link")), 0);
	open_is(dfd, "link", O_RDONLY, KW_ERR_CONFIG, "symbolic link");
	open_is(dfd, "link", O_WRONLY | O_CREAT | O_TRUNC, KW_ERR_CONFIG, "symbolic link");
	assert_int_equal(symlink(in(fx, "nowhere"), in(fx, "dangling")), 0);
	open_is(dfd, "dangling", O_WRONLY | O_CREAT, KW_ERR_CONFIG, "symbolic link");
	assert_int_equal(access(in(fx, "nowhere"), F_OK), -1);
	/* A FIFO is refused, and does not block the open. */
	assert_int_equal(mkfifo(in(fx, "fifo"), 0600), 0);
	open_is(dfd, "fifo", O_RDONLY, KW_ERR_CONFIG, "not a regular file");
	assert_int_equal(mkdir(in(fx, "dir"), 0700), 0);
	open_is(dfd, "dir", O_RDONLY, KW_ERR_CONFIG, "not a regular file");
	/* Writable by others: refused, and O_TRUNC did not truncate it. */
	kw_test_write(in(fx, "loose"), "data", 4, 0600);
	assert_int_equal(chmod(in(fx, "loose"), 0666), 0);
	open_is(dfd, "loose", O_WRONLY | O_TRUNC, KW_ERR_CONFIG, "mode 0666");
	assert_int_equal(stat(in(fx, "loose"), &st), 0);
	assert_int_equal(st.st_size, 4);
	/* Readable by others is not this rule's business (key files have their own). */
	assert_int_equal(chmod(in(fx, "loose"), 0644), 0);
	open_is(dfd, "loose", O_RDONLY, 0, NULL);

	if (geteuid() == 0) {
		assert_int_equal(chown(in(fx, "mine"), OTHER, OTHER), 0);
		open_is(dfd, "mine", O_RDONLY, KW_ERR_CONFIG, "owned by uid 2001");
		open_is(dfd, "mine", O_WRONLY | O_TRUNC, KW_ERR_CONFIG, NULL);
		assert_int_equal(stat(in(fx, "mine"), &st), 0);
		assert_int_equal(st.st_size, 4);
	}
	close(dfd);
}

static void
test_checks_without_opening(void **state)
{
	struct kw_test_fx *fx = *state;
	int dfd = dir_fd(fx);
	char why[512];
	struct stat st;

	kw_test_write(in(fx, "f"), "x", 1, 0600);
	assert_int_equal(kw_check_file_at(dfd, "f", &st, why, sizeof(why)), 0);
	assert_int_equal(st.st_size, 1);
	assert_int_equal(kw_check_file_at(dfd, "g", NULL, why, sizeof(why)), KW_ERR_NOT_FOUND);
	assert_int_equal(symlink("f", in(fx, "l")), 0);
	assert_int_equal(kw_check_file_at(dfd, "l", NULL, why, sizeof(why)), KW_ERR_CONFIG);
	assert_int_equal(chmod(in(fx, "f"), 0620), 0);
	assert_int_equal(kw_check_file_at(dfd, "f", NULL, why, sizeof(why)), KW_ERR_CONFIG);
	close(dfd);
}

static void
test_open_dir_private(void **state)
{
	struct kw_test_fx *fx = *state;
	int dfd = dir_fd(fx), fd;
	char why[512];
	struct stat st;
	mode_t old = umask(0);

	/* Made 0700 whatever the umask. */
	fd = kw_open_dir_private(dfd, "sub", 0700, why, sizeof(why));
	umask(old);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	close(fd);
	assert_int_equal(kw_open_dir_private(dfd, "none", 0, why, sizeof(why)), KW_ERR_NOT_FOUND);
	assert_int_equal(symlink("sub", in(fx, "link")), 0);
	assert_int_equal(kw_open_dir_private(dfd, "link", 0700, why, sizeof(why)), KW_ERR_CONFIG);
	assert_non_null(strstr(why, "symbolic link"));
	kw_test_write(in(fx, "file"), "x", 1, 0600);
	assert_int_equal(kw_open_dir_private(dfd, "file", 0700, why, sizeof(why)), KW_ERR_CONFIG);
	assert_int_equal(chmod(in(fx, "sub"), 01777), 0);
	assert_int_equal(kw_open_dir_private(dfd, "sub", 0, why, sizeof(why)), KW_ERR_CONFIG);
	assert_non_null(strstr(why, "writable by"));
	close(dfd);
}

static void
test_atomic_write_replaces_a_link(void **state)
{
	struct kw_test_fx *fx = *state;
	int dfd = dir_fd(fx);
	unsigned char *got;
	size_t len;
	struct stat st;

	kw_test_write(in(fx, "target"), "keep", 4, 0644);
	assert_int_equal(symlink(in(fx, "target"), in(fx, "name")), 0);
	assert_int_equal(kw_write_atomic_at(dfd, "name", "new", 3, 0600), 0);
	/* The link is replaced by a file; what it pointed at is untouched. */
	assert_int_equal(lstat(in(fx, "name"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	got = kw_test_read(in(fx, "target"), &len);
	assert_int_equal(len, 4);
	assert_memory_equal(got, "keep", 4);
	free(got);
	close(dfd);
}

static void
test_key_file(void **state)
{
	struct kw_test_fx *fx = *state;
	int dfd = dir_fd(fx);
	unsigned char key[32], k32[32];
	char why[512];

	memset(k32, 0x5a, sizeof(k32));
	assert_int_equal(kw_read_key_file(dfd, "k", key, 32, why, sizeof(why)), KW_ERR_NOT_FOUND);
	kw_test_write(in(fx, "k"), k32, 32, 0600);
	assert_int_equal(kw_read_key_file(dfd, "k", key, 32, why, sizeof(why)), 0);
	assert_memory_equal(key, k32, 32);
	assert_int_equal(chmod(in(fx, "k"), 0640), 0);
	assert_int_equal(kw_read_key_file(dfd, "k", key, 32, why, sizeof(why)), KW_ERR_IO);
	assert_non_null(strstr(why, "mode 0600"));
	assert_int_equal(chmod(in(fx, "k"), 0600), 0);
	if (geteuid() == 0) {
		assert_int_equal(chown(in(fx, "k"), OTHER, OTHER), 0);
		assert_int_equal(kw_read_key_file(dfd, "k", key, 32, why, sizeof(why)),
		    KW_ERR_CONFIG);
		assert_non_null(strstr(why, "owned by uid 2001"));
	}
	close(dfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chain, kw_test_setup, kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_open_private, kw_test_setup, kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_checks_without_opening, kw_test_setup, kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_open_dir_private, kw_test_setup, kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_atomic_write_replaces_a_link, kw_test_setup, kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_key_file, kw_test_setup, kw_test_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
