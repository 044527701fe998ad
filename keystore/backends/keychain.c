/*
 * backend_keychain.c - the keychain backend: API keys in the desktop's
 * Secret Service (GNOME Keyring, KeePassXC, ...) through libsecret.
 *
 * One item per key, with the attributes secret-tool users know:
 *
 *	service = api.keychainService	for "anthropic", the default key
 *	service = keywarden:NAME	for any other name
 *	account = the broker's user name
 *
 * The schema does not match on its name (SECRET_SCHEMA_DONT_MATCH_NAME), so
 * `secret-tool store service anthropic-api-key account alice` replaces our
 * item and `secret-tool lookup ...` finds it.  Attributes are not
 * confidential, so nothing else goes in them.
 *
 * The keychain holds one value per key, not versions.  Which version the
 * item holds is remembered in data_dir/keystore/keychain-versions.json (no
 * values, mode 0600): a put replaces the item and records its version, a
 * get or destroy of any other version finds nothing -- which is what the
 * broker needs when an old version's grace ends after the item was
 * replaced.  A key with no record (the file lost, or an item made by hand)
 * answers for whatever version is asked.
 *
 * The ops have no error text, so Secret Service failures are logged here.
 */
#include <errno.h>
#include <fcntl.h>
#include <libsecret/secret.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/names.h"
#include "keystore/backends/backend.h"
#include "common/errors.h"
#include "common/log.h"

#define DEFAULT_KEY	"anthropic"
#define VERSIONS_MAX	(1024 * 1024)

static const SecretSchema kw_keychain_schema = {
	.name = "org.keywarden.ApiKey",
	.flags = SECRET_SCHEMA_DONT_MATCH_NAME,
	.attributes = {
		{ "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "account", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ NULL, 0 },
	},
};

struct keychain {
	SecretService *service;	/* held so every call reuses one connection */
	char *default_service;	/* api.keychainService */
	char *account;
	char versions_path[4200];
	json_t *versions;	/* name -> version the item holds */
};

/* The item's service attribute for a key name, into buf. */
static int
service_for(const struct keychain *k, const char *name, char *buf, size_t len)
{
	int n;

	if (!kw_name_ok(KW_NAME_KEY, name))
		return KW_ERR_INVALID;
	n = strcmp(name, DEFAULT_KEY) == 0 ? snprintf(buf, len, "%s", k->default_service) :
	    snprintf(buf, len, "keywarden:%s", name);
	return n > 0 && (size_t)n < len ? 0 : KW_ERR_INVALID;
}

/* The version the item of name holds, 0 when not known. */
static int
held_version(const struct keychain *k, const char *name)
{
	return (int)json_integer_value(json_object_get(k->versions, name));
}

static int
save_versions(const struct keychain *k)
{
	char *text = json_dumps(k->versions, JSON_COMPACT | JSON_SORT_KEYS);
	int r = 0;

	if (!text)
		return KW_ERR_NOMEM;
	if (kw_write_atomic(k->versions_path, text, strlen(text), 0600) < 0) {
		kw_log_error("%s: %s", k->versions_path, strerror(errno));
		r = KW_ERR_IO;
	}
	free(text);
	return r;
}

/* Record (or with version 0 forget) the version name's item holds. */
static int
note_version(struct keychain *k, const char *name, int version)
{
	int r;

	r = version > 0 ? json_object_set_new(k->versions, name, json_integer(version)) :
	    json_object_del(k->versions, name);
	if (r < 0 && version > 0)
		return KW_ERR_NOMEM;
	return save_versions(k);
}

static void
log_gerror(const char *what, const char *name, GError *gerr)
{
	kw_log_error("keychain: %s %.64s: %.200s", what, name,
	    gerr ? gerr->message : "refused by the Secret Service");
}

static int
keychain_put(struct kw_keystore *ks, const char *name, int version, const unsigned char *value,
    size_t len)
{
	struct keychain *k = ks->priv;
	GError *gerr = NULL;
	char service[128], label[96], *text = NULL;
	int r;

	if ((r = service_for(k, name, service, sizeof(service))) < 0 || version < 1 ||
	    len == 0 || len > KW_KEY_VALUE_MAX)
		return KW_ERR_INVALID;
	/* The Secret Service's password API carries text. */
	if (memchr(value, '\0', len) || !g_utf8_validate((const char *)value, (gssize)len, NULL))
		return KW_ERR_INVALID;
	if (!(text = sodium_malloc(len + 1)))
		return KW_ERR_NOMEM;
	memcpy(text, value, len);
	text[len] = '\0';
	snprintf(label, sizeof(label), "keywarden: %s", name);
	/* Same attributes: the Secret Service replaces the item in place. */
	if (!secret_password_store_sync(&kw_keychain_schema, SECRET_COLLECTION_DEFAULT, label,
	    text, NULL, &gerr, "service", service, "account", k->account, NULL)) {
		log_gerror("cannot store", name, gerr);
		r = KW_ERR_IO;
	} else {
		r = note_version(k, name, version);
	}
	g_clear_error(&gerr);
	sodium_free(text);
	return r;
}

static int
keychain_get(struct kw_keystore *ks, const char *name, int version, unsigned char **ret_value,
    size_t *ret_len)
{
	struct keychain *k = ks->priv;
	GError *gerr = NULL;
	unsigned char *copy;
	char service[128], *found;
	size_t len;
	int r, held = held_version(k, name);

	if ((r = service_for(k, name, service, sizeof(service))) < 0 || version < 1)
		return KW_ERR_INVALID;
	/* The item was replaced since that version: it is gone. */
	if (held > 0 && held != version)
		return KW_ERR_NOT_FOUND;
	found = secret_password_lookup_sync(&kw_keychain_schema, NULL, &gerr, "service", service,
	    "account", k->account, NULL);
	if (!found) {
		r = gerr ? KW_ERR_IO : KW_ERR_NOT_FOUND;
		if (gerr)
			log_gerror("cannot read", name, gerr);
		g_clear_error(&gerr);
		return r;
	}
	len = strlen(found);
	/*
	 * `echo KEY | secret-tool store ...` keeps the newline; the CLI trims
	 * it from what it reads too, so the key is the same either way.
	 */
	while (len > 0 && (found[len - 1] == '\n' || found[len - 1] == '\r'))
		len--;
	r = KW_ERR_IO;
	if (len == 0 || len > KW_KEY_VALUE_MAX) {
		kw_log_error("keychain: the item for %.64s holds %s", name,
		    len ? "more than a key's worth" : "an empty value");
		goto out;
	}
	r = KW_ERR_NOMEM;
	if (!(copy = kw_keystore_alloc_value(len)))
		goto out;
	memcpy(copy, found, len);
	copy[len] = '\0';
	*ret_value = copy;
	*ret_len = len;
	r = 0;
 out:
	secret_password_free(found);	/* wipes */
	return r;
}

static int
keychain_destroy(struct kw_keystore *ks, const char *name, int version)
{
	struct keychain *k = ks->priv;
	GError *gerr = NULL;
	char service[128];
	gboolean cleared;
	int r, held = held_version(k, name);

	if ((r = service_for(k, name, service, sizeof(service))) < 0 || version < 1)
		return KW_ERR_INVALID;
	/* A replaced version went with the replacement; the item is another's. */
	if (held > 0 && held != version)
		return KW_ERR_NOT_FOUND;
	cleared = secret_password_clear_sync(&kw_keychain_schema, NULL, &gerr, "service", service,
	    "account", k->account, NULL);
	if (gerr) {
		log_gerror("cannot delete", name, gerr);
		g_clear_error(&gerr);
		return KW_ERR_IO;
	}
	if (held > 0 && (r = note_version(k, name, 0)) < 0)
		return r;
	return cleared ? 0 : KW_ERR_NOT_FOUND;
}

static void
keychain_free(struct keychain *k)
{
	if (!k)
		return;
	if (k->service) {
		g_object_unref(k->service);
		secret_service_disconnect();
	}
	json_decref(k->versions);
	free(k->default_service);
	free(k->account);
	free(k);
}

static void
keychain_close(struct kw_keystore *ks)
{
	if (!ks)
		return;
	keychain_free(ks->priv);
	free(ks);
}

static const struct kw_keystore_ops keychain_ops = {
	.name = "keychain",
	.one_value = true,
	.put = keychain_put,
	.get = keychain_get,
	.destroy = keychain_destroy,
	.close = keychain_close,
};

/* data_dir/keystore/keychain-versions.json, or an empty record. */
static int
load_versions(struct keychain *k, const char *data_dir, char *err, size_t err_len)
{
	char dir[4096], why[384], *text = NULL;
	_cleanup_close_ int ddfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int kfd = -1;
	size_t len = 0;
	int fd, r;

	snprintf(dir, sizeof(dir), "%s/keystore", data_dir);
	snprintf(k->versions_path, sizeof(k->versions_path), "%s/keychain-versions.json", dir);
	/* keystore/ and the file must be the broker's, not links (fsutil.h). */
	if (ddfd < 0) {
		snprintf(err, err_len, "%s: %s", data_dir, strerror(errno));
		return KW_ERR_IO;
	}
	if ((kfd = kw_open_dir_private(ddfd, "keystore", 0700, why, sizeof(why))) < 0) {
		snprintf(err, err_len, "%s: %s", dir, why);
		return kfd == KW_ERR_CONFIG ? kfd : KW_ERR_IO;
	}
	if ((fd = kw_open_private(kfd, "keychain-versions.json", O_RDONLY, 0, why,
	    sizeof(why))) < 0) {
		if (fd != KW_ERR_NOT_FOUND) {
			snprintf(err, err_len, "%s: %s", k->versions_path, why);
			return fd;
		}
		return (k->versions = json_object()) ? 0 : KW_ERR_NOMEM;
	}
	r = kw_read_fd(fd, VERSIONS_MAX, &text, &len);
	close(fd);
	if (r == 0)
		k->versions = json_loadb(text, len, 0, NULL);
	/* (json_is_object() evaluates its argument twice.) */
	if (r == 0 && !json_is_object(k->versions))
		r = KW_ERR_IO;
	free(text);
	if (r < 0)
		snprintf(err, err_len, "%s: cannot be read, or is not a JSON object",
		    k->versions_path);
	return r;
}

int
kw_keystore_keychain_open(const struct kw_config *cfg, const char *data_dir,
    struct kw_keystore **ret_ks, char *err, size_t err_len)
{
	struct kw_keystore *ks = calloc(1, sizeof(*ks));
	struct keychain *k = calloc(1, sizeof(*k));
	struct passwd *pw;
	GError *gerr = NULL;
	sigset_t all, old;
	int r = KW_ERR_NOMEM;

	if (!ks || !k ||
	    !(k->default_service = strdup(kw_config_str(cfg, "api.keychainService"))))
		goto fail;
	r = KW_ERR_CONFIG;
	if (!*k->default_service || strlen(k->default_service) > 100) {
		snprintf(err, err_len, "api.keychainService: expected a service name of 1 to 100 "
		    "characters");
		goto fail;
	}
	r = KW_ERR_IO;
	errno = 0;
	if (!(pw = getpwuid(geteuid()))) {
		snprintf(err, err_len, "keychain: no user name for uid %u: %s",
		    (unsigned)geteuid(), errno ? strerror(errno) : "not in the user database");
		goto fail;
	}
	if (!(k->account = strdup(pw->pw_name))) {
		r = KW_ERR_NOMEM;
		goto fail;
	}
	if ((r = load_versions(k, data_dir, err, err_len)) < 0)
		goto fail;
	/*
	 * Fail at start, not at the first key: is there a Secret Service to talk
	 * to?  Connecting starts GDBus's worker thread; it must not take the
	 * signals the broker waits for on its signalfd, whenever that is set up.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	k->service = secret_service_get_sync(SECRET_SERVICE_NONE, NULL, &gerr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!k->service) {
		snprintf(err, err_len, "keychain: cannot reach the Secret Service on the session "
		    "bus (DBUS_SESSION_BUS_ADDRESS): %.200s", gerr ? gerr->message : "unknown error");
		g_clear_error(&gerr);
		r = KW_ERR_IO;
		goto fail;
	}
	ks->ops = &keychain_ops;
	ks->priv = k;
	*ret_ks = ks;
	return 0;
 fail:
	if (r == KW_ERR_NOMEM)
		snprintf(err, err_len, "keychain: out of memory");
	keychain_free(k);
	free(ks);
	return r;
}
