/*
 * session_cache.c - where a session token waits between commands (see
 * keywarden.h, kw_session_store).
 *
 * The kernel user keyring is the first choice: the key never touches a
 * disk, and the kernel drops it when its timeout runs out.  When the keyring
 * cannot be used (no keyring support, quota full, a sandbox forbidding
 * keyctl), the token goes to $XDG_RUNTIME_DIR/keywarden/session-HEX, a
 * 0600 file in a 0700 directory on the tmpfs the user's login owns.
 *
 * KEYWARDEN_TOKEN_CACHE selects the place: "keyring" (the default) or
 * "file" (for systems where the keyring is not wanted at all).
 *
 * Both places are named after the first 16 hex digits of SHA-256 of the
 * socket path, so tokens of two brokers on one machine never mix.  The path
 * is hashed as given: callers pass the path they connect to.
 */
#include <errno.h>
#include <fcntl.h>
#include <keyutils.h>
#include <limits.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/keywarden.h"

#define KW_SESSION_DESC_PREFIX	"keywarden:session:"
#define KW_SESSION_HEX		16
/* A token is ~80 characters; anything far larger is not one of ours. */
#define KW_SESSION_TOKEN_MAX	1024
#define KW_SESSION_FILE_MAX	(KW_SESSION_TOKEN_MAX + 64)

/*
 * The key is readable by the user, not only by possessors: a command run
 * from another session keyring of the same user (su -, a systemd unit, a
 * new tmux server) must find the login's token, just as it could read the
 * 0600 fallback file.  Other users get nothing.
 */
#define KW_SESSION_KEY_PERM \
	(KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_READ | KEY_USR_WRITE | KEY_USR_SEARCH | \
	 KEY_USR_SETATTR)

enum cache_mode { CACHE_KEYRING, CACHE_FILE };

static int
cache_mode(enum cache_mode *ret_mode)
{
	const char *s = getenv("KEYWARDEN_TOKEN_CACHE");

	if (!s || !*s || strcmp(s, "keyring") == 0)
		*ret_mode = CACHE_KEYRING;
	else if (strcmp(s, "file") == 0)
		*ret_mode = CACHE_FILE;
	else
		return KW_ERR_CONFIG;
	return 0;
}

/*
 * "keywarden:session:" + 16 hex digits of SHA-256(socket path).  The path is
 * made canonical first, so the PAM module's socket= and the CLI's resolved
 * path name the same cache entry however each spelled it.
 */
static void
make_names(const char *socket_path, char desc[static 64], char hex[static KW_SESSION_HEX + 1])
{
	unsigned char digest[crypto_hash_sha256_BYTES];
	char *canon;

	if (!socket_path)
		socket_path = kw_default_socket();
	canon = realpath(socket_path, NULL);
	if (canon)
		socket_path = canon;
	crypto_hash_sha256(digest, (const unsigned char *)socket_path, strlen(socket_path));
	free(canon);
	sodium_bin2hex(hex, KW_SESSION_HEX + 1, digest, KW_SESSION_HEX / 2);
	snprintf(desc, 64, "%s%s", KW_SESSION_DESC_PREFIX, hex);
}

static void
wipe_free(char *s, size_t len)
{
	if (s) {
		sodium_memzero(s, len);
		free(s);
	}
}

static bool
token_ok(const char *token)
{
	size_t n = strnlen(token, KW_SESSION_TOKEN_MAX + 1);

	/* The file keeps the token on one line; NUL-free is implied by strnlen. */
	return n > 0 && n <= KW_SESSION_TOKEN_MAX && !memchr(token, '\n', n);
}

/* ---- kernel keyring ------------------------------------------------------ */

static int
keyring_store(const char *desc, const char *token, unsigned timeout_s)
{
	key_serial_t id;

	id = add_key("user", desc, token, strlen(token), KEY_SPEC_USER_KEYRING);
	if (id < 0)
		return KW_ERR_IO;
	/* Without the timeout the token would outlive the session: no key at all then. */
	if (keyctl_setperm(id, KW_SESSION_KEY_PERM) < 0 ||
	    keyctl_set_timeout(id, timeout_s) < 0) {
		int saved = errno;
		if (keyctl_invalidate(id) < 0)
			(void)keyctl_unlink(id, KEY_SPEC_USER_KEYRING);
		errno = saved;
		return KW_ERR_IO;
	}
	return 0;
}

/* 0 with a key, KW_ERR_NOT_FOUND when none (or expired/revoked), KW_ERR_IO. */
static int
keyring_find(const char *desc, key_serial_t *ret_id)
{
	long id = keyctl_search(KEY_SPEC_USER_KEYRING, "user", desc, 0);

	if (id >= 0) {
		*ret_id = (key_serial_t)id;
		return 0;
	}
	if (errno == ENOKEY || errno == EKEYEXPIRED || errno == EKEYREVOKED)
		return KW_ERR_NOT_FOUND;
	return KW_ERR_IO;
}

static int
keyring_load(const char *desc, char **ret_token)
{
	key_serial_t id;
	void *buf = NULL;
	long n;
	int r;

	if ((r = keyring_find(desc, &id)) < 0)
		return r;
	if ((n = keyctl_read_alloc(id, &buf)) < 0)
		return (errno == EKEYEXPIRED || errno == EKEYREVOKED || errno == ENOKEY) ?
		    KW_ERR_NOT_FOUND : KW_ERR_IO;
	/* keyctl_read_alloc NUL-terminates; a key with a NUL or newline is not a token. */
	if (n == 0 || (size_t)n > KW_SESSION_TOKEN_MAX || strlen(buf) != (size_t)n ||
	    !token_ok(buf)) {
		wipe_free(buf, (size_t)n);
		return KW_ERR_NOT_FOUND;
	}
	*ret_token = buf;	/* transferred */
	return 0;
}

/*
 * 0 when no key is left: there was none, the keyring cannot be searched (so
 * nothing can have been stored there), or the keys found are gone now.
 */
static int
keyring_forget(const char *desc)
{
	key_serial_t id;

	/* Loop: the search also finds keys in keyrings linked below @u. */
	for (int i = 0; i < 8; i++) {
		if (keyring_find(desc, &id) < 0)
			return 0;
		if (keyctl_invalidate(id) < 0 && keyctl_unlink(id, KEY_SPEC_USER_KEYRING) < 0)
			return KW_ERR_IO;
	}
	return KW_ERR_IO;
}

/* ---- fallback file ------------------------------------------------------- */

/*
 * Open (creating when `create`) $XDG_RUNTIME_DIR/keywarden and check it is
 * ours and private.  Returns an O_DIRECTORY fd or a negative code; the
 * files are then reached with *at() calls, so a symlink swapped in later
 * cannot redirect them.
 */
static int
open_cache_dir(bool create)
{
	const char *run = getenv("XDG_RUNTIME_DIR");
	char path[PATH_MAX];
	struct stat st;
	int fd;

	if (!run || run[0] != '/') {
		errno = ENOENT;
		return create ? KW_ERR_CONFIG : KW_ERR_NOT_FOUND;
	}
	if (snprintf(path, sizeof(path), "%s/keywarden", run) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return KW_ERR_IO;
	}
	if (create && mkdir(path, 0700) < 0 && errno != EEXIST)
		return KW_ERR_IO;
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT ? KW_ERR_NOT_FOUND : KW_ERR_IO;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (st.st_uid != geteuid()) {
		errno = EPERM;
		goto fail;
	}
	/* mkdir honours the umask only downwards; tighten a directory we own. */
	if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0)
		goto fail;
	return fd;
 fail:
	{
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return KW_ERR_IO;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return KW_ERR_IO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * File format: the expiry as seconds since the epoch (0: none), a newline,
 * the token, a newline.  Written to a temporary name and renamed, so a
 * reader sees the old token or the new one.
 */
static int
file_store(const char *hex, const char *token, unsigned timeout_s)
{
	char name[64], tmp[96], *buf = NULL;
	long long expiry = timeout_s ? (long long)time(NULL) + timeout_s : 0;
	int dfd = -1, fd = -1, len, r;

	snprintf(name, sizeof(name), "session-%s", hex);
	if ((dfd = open_cache_dir(true)) < 0)
		return dfd;
	if ((len = asprintf(&buf, "%lld\n%s\n", expiry, token)) < 0) {
		buf = NULL;
		r = KW_ERR_NOMEM;
		goto out;
	}
	for (int i = 0; ; i++) {
		uint32_t rnd = randombytes_random();
		snprintf(tmp, sizeof(tmp), ".%s.%08x", name, rnd);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST || i == 16)
			break;
	}
	if (fd < 0) {
		r = KW_ERR_IO;
		goto out;
	}
	if ((r = write_all(fd, buf, (size_t)len)) < 0 || fchmod(fd, 0600) < 0 ||
	    fsync(fd) < 0 || renameat(dfd, tmp, dfd, name) < 0) {
		int saved = errno;
		(void)unlinkat(dfd, tmp, 0);
		errno = saved;
		r = KW_ERR_IO;
		goto out;
	}
	r = 0;
 out:
	if (buf)
		wipe_free(buf, (size_t)len);
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return r;
}

/* Parse "EXPIRY\nTOKEN\n"; ret_token points into buf. */
static bool
parse_file(char *buf, long long *ret_expiry, char **ret_token)
{
	char *end, *nl;
	long long expiry;

	if (buf[0] < '0' || buf[0] > '9')
		return false;
	errno = 0;
	expiry = strtoll(buf, &end, 10);
	if (errno || *end != '\n')
		return false;
	end++;
	if (!(nl = strchr(end, '\n')) || nl[1] != '\0')
		return false;
	*nl = '\0';
	if (!token_ok(end))
		return false;
	*ret_expiry = expiry;
	*ret_token = end;
	return true;
}

static int
file_load(const char *hex, char **ret_token)
{
	char name[64], *buf = NULL, *tok, *copy;
	long long expiry;
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int dfd, fd = -1, r;

	snprintf(name, sizeof(name), "session-%s", hex);
	if ((dfd = open_cache_dir(false)) < 0)
		return dfd;
	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		r = errno == ENOENT ? KW_ERR_NOT_FOUND : KW_ERR_IO;
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		r = KW_ERR_IO;
		goto out;
	}
	/* A file someone else could have written or read is not trusted. */
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) ||
	    st.st_size > KW_SESSION_FILE_MAX) {
		errno = EPERM;
		r = KW_ERR_IO;
		goto out;
	}
	if (!(buf = calloc(1, KW_SESSION_FILE_MAX + 1))) {
		r = KW_ERR_NOMEM;
		goto out;
	}
	while (len < KW_SESSION_FILE_MAX &&
	    ((n = read(fd, buf + len, KW_SESSION_FILE_MAX - len)) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	if (!parse_file(buf, &expiry, &tok) || (expiry && expiry <= (long long)time(NULL))) {
		/* Expired or damaged: useless to anyone, so it goes now. */
		(void)unlinkat(dfd, name, 0);
		r = KW_ERR_NOT_FOUND;
		goto out;
	}
	if (!(copy = strdup(tok))) {
		r = KW_ERR_NOMEM;
		goto out;
	}
	*ret_token = copy;	/* transferred */
	r = 0;
 out:
	if (buf)
		wipe_free(buf, KW_SESSION_FILE_MAX + 1);
	if (fd >= 0)
		close(fd);
	close(dfd);
	return r;
}

static int
file_forget(const char *hex)
{
	char name[64];
	int dfd, r = 0;

	snprintf(name, sizeof(name), "session-%s", hex);
	if ((dfd = open_cache_dir(false)) < 0)
		return dfd == KW_ERR_NOT_FOUND || dfd == KW_ERR_CONFIG ? 0 : dfd;
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		r = KW_ERR_IO;
	close(dfd);
	return r;
}

/* ---- public API ---------------------------------------------------------- */

int
kw_session_store(const char *socket_path, const char *token, unsigned timeout_s)
{
	char desc[64], hex[KW_SESSION_HEX + 1];
	enum cache_mode mode;
	int r;

	if (!token || !token_ok(token))
		return KW_ERR_INVALID;
	if (sodium_init() < 0)
		return KW_ERR_INTERNAL;
	if ((r = cache_mode(&mode)) < 0)
		return r;
	make_names(socket_path, desc, hex);
	if (mode == CACHE_KEYRING) {
		if ((r = keyring_store(desc, token, timeout_s)) == 0) {
			/* A token left in the file by an earlier fallback must not shadow this one. */
			(void)file_forget(hex);
			return 0;
		}
		/* ENOSYS, EACCES, EDQUOT, EPERM (seccomp): the file is the way out. */
	}
	return file_store(hex, token, timeout_s);
}

int
kw_session_load(const char *socket_path, char **ret_token)
{
	char desc[64], hex[KW_SESSION_HEX + 1];
	enum cache_mode mode;
	int r;

	if (!ret_token)
		return KW_ERR_INVALID;
	if ((r = cache_mode(&mode)) < 0)
		return r;
	make_names(socket_path, desc, hex);
	if (mode == CACHE_KEYRING) {
		if ((r = keyring_load(desc, ret_token)) == 0)
			return 0;
		/* The store may have fallen back to the file; look there too. */
	}
	return file_load(hex, ret_token);
}

int
kw_session_forget(const char *socket_path)
{
	char desc[64], hex[KW_SESSION_HEX + 1];
	int r, rf;

	make_names(socket_path, desc, hex);
	/* Both places, whatever the mode: logging out must leave no token behind. */
	r = keyring_forget(desc);
	rf = file_forget(hex);
	return r < 0 ? r : rf;
}

/* Seconds from now until an RFC 3339 UTC time, or 0 if it cannot be read or has passed. */
static unsigned
seconds_until(const char *rfc3339)
{
	struct tm tm = { 0 };
	time_t t, now = time(NULL);

	if (!rfc3339 || !strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	t = timegm(&tm);
	if (t == (time_t)-1 || t <= now)
		return 0;
	return t - now > UINT_MAX ? UINT_MAX : (unsigned)(t - now);
}

unsigned
kw_session_lifetime(json_t *login_result)
{
	unsigned s = seconds_until(json_string_value(json_object_get(login_result, "expires")));
	json_int_t idle = json_integer_value(json_object_get(login_result, "idle_timeout"));

	if (s > 0)
		return s;
	return idle > 0 && idle < UINT_MAX ? (unsigned)idle : 3600;
}
