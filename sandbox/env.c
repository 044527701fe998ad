/*
 * env.c - the confined child's environment: the caller's, minus what looks
 * like a secret and what would reach out of the sandbox, plus what the
 * sandbox sets (TMPDIR, the proxy variables, KEYWARDEN_SANDBOX), plus
 * what the caller hands in on purpose (last, so it wins).
 *
 * Secrets are recognised by the variable's name (case-insensitive words:
 * KEY, TOKEN, SECRET, ...) and by its value: the built-in secret rules of
 * policy/detect (an Anthropic, AWS, GitHub... key under an innocent name,
 * or in a URL's password) at their defaults.  Rules the administrator adds
 * (security.secrets.rules) are not used here: the broker's configuration
 * is not this layer's to read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/config.h"
#include "common/errors.h"
#include "policy/detect/detect.h"
#include "sandbox/plan_internal.h"

static const char *const kw_sb_secret_words[] = {
	"KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "COOKIE",
	"SESSION",
};

static bool
name_is(const char *entry, size_t len, const char *name)
{
	return strlen(name) == len && strncmp(entry, name, len) == 0;
}

/* Dropped whatever their value: they lead out of the sandbox (reported as removed). */
static const char *const kw_sb_dropped[] = {
	"KEYWARDEN_SOCKET", "DBUS_SESSION_BUS_ADDRESS", "SSH_AUTH_SOCK", "GNOME_KEYRING_CONTROL",
	"XDG_RUNTIME_DIR",
};

/* Replaced by the sandbox's own values, silently. */
static const char *const kw_sb_replaced[] = {
	"TMPDIR", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY",
	"no_proxy", "ALL_PROXY", "all_proxy", "KEYWARDEN_SANDBOX",
};

static bool
replaced(const char *entry, size_t len)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(kw_sb_replaced); i++)
		if (name_is(entry, len, kw_sb_replaced[i]))
			return true;
	return false;
}

static bool
dropped(const char *entry, size_t len)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(kw_sb_dropped); i++)
		if (name_is(entry, len, kw_sb_dropped[i]))
			return true;
	for (size_t i = 0; i < KW_ELEMENTSOF(kw_sb_secret_words); i++) {
		size_t wl = strlen(kw_sb_secret_words[i]);

		for (size_t k = 0; k + wl <= len; k++)
			if (strncasecmp(entry + k, kw_sb_secret_words[i], wl) == 0)
				return true;
	}
	return false;
}

/* A finding stops the scan: one is enough. */
static int
found(const struct kw_finding *f, const char *value, size_t len, void *ctx)
{
	(void)f; (void)value; (void)len; (void)ctx;
	return KW_ERR_DENIED;
}

/* The built-in secret rules, or NULL when they cannot be compiled (names still count). */
static struct kw_detector *
secret_rules(void)
{
	struct kw_config *cfg = kw_config_new_default();
	struct kw_detector *d = NULL;
	char err[256];

	if (cfg && kw_detector_compile(cfg, KW_DETECT_SECRETS, &d, err,
	    sizeof(err)) < 0)
		d = NULL;
	kw_config_free(cfg);
	return d;
}

static bool
value_is_secret(const struct kw_detector *d, const char *value)
{
	/* The shortest built-in rule's match is longer than this. */
	if (!d || strlen(value) < 16)
		return false;
	return kw_detect_buffer(d, value, strlen(value), found, NULL) == KW_ERR_DENIED;
}

static int
push(char ***env, size_t *n, char *s)
{
	char **e;

	if (!s || !(e = realloc(*env, (*n + 2) * sizeof(char *)))) {
		free(s);
		return -1;
	}
	*env = e;
	e[(*n)++] = s;
	e[*n] = NULL;
	return 0;
}

/* Take out an entry named as entry (NAME=...) is: getenv would find the first, not ours. */
static void
unset(char **env, size_t *n, const char *entry)
{
	size_t len = (size_t)(strchr(entry, '=') - entry), k = 0;

	for (size_t i = 0; i < *n; i++) {
		if (strncmp(env[i], entry, len) == 0 && env[i][len] == '=') {
			explicit_bzero(env[i], strlen(env[i]));
			free(env[i]);
			continue;
		}
		env[k++] = env[i];
	}
	*n = k;
	env[k] = NULL;
}

static int
push_fmt(char ***env, size_t *n, const char *name, const char *value)
{
	char *s;

	if (asprintf(&s, "%s=%s", name, value) < 0)
		return -1;
	return push(env, n, s);
}

static int
add_sandbox_vars(const struct kw_sandbox_plan *p, char ***env, size_t *n)
{
	static const char *const proxies[] = { "HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
	    "http_proxy" };
	char proxy[64];

	if (p->tmpdir && push_fmt(env, n, "TMPDIR", p->tmpdir) != 0)
		return -1;
	if (push_fmt(env, n, "KEYWARDEN_SANDBOX", kw_sandbox_plan_level(p)) != 0)
		return -1;
	if (p->net != KW_SB_NET_FILTERED)
		return 0;
	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%u", (unsigned)p->proxy_port);
	for (size_t i = 0; i < KW_ELEMENTSOF(proxies); i++)
		if (push_fmt(env, n, proxies[i], proxy) != 0)
			return -1;
	if (p->n_forwards && (push_fmt(env, n, "NO_PROXY", "127.0.0.1,localhost,::1") != 0 ||
	    push_fmt(env, n, "no_proxy", "127.0.0.1,localhost,::1") != 0))
		return -1;
	return 0;
}

char **
kw_sandbox_env(const struct kw_sandbox_plan *p, char *const environ_[], char *const keep[],
    size_t n_keep, char ***removed)
{
	char **env = NULL, **gone = NULL;
	size_t n = 0, n_gone = 0;
	struct kw_detector *det = secret_rules();

	if (!(env = calloc(1, sizeof(char *))))
		goto fail;
	if (removed && !(gone = calloc(1, sizeof(char *))))
		goto fail;
	for (size_t i = 0; environ_[i]; i++) {
		const char *eq = strchr(environ_[i], '=');
		size_t len = eq ? (size_t)(eq - environ_[i]) : strlen(environ_[i]);

		if (!eq || len == 0 || replaced(environ_[i], len))
			continue;
		if (dropped(environ_[i], len) || value_is_secret(det, eq + 1)) {
			if (gone && push(&gone, &n_gone, strndup(environ_[i], len)) != 0)
				goto fail;
			continue;
		}
		if (push(&env, &n, strdup(environ_[i])) != 0)
			goto fail;
	}
	if (add_sandbox_vars(p, &env, &n) != 0)
		goto fail;
	for (size_t i = 0; keep && i < n_keep; i++)
		if (keep[i] && strchr(keep[i], '=') && (unset(env, &n, keep[i]),
		    push(&env, &n, strdup(keep[i])) != 0))
			goto fail;
	if (removed)
		*removed = gone;
	kw_detector_free(det);
	return env;
 fail:
	kw_detector_free(det);
	kw_sandbox_env_free(env);
	kw_sandbox_env_free(gone);
	if (removed)
		*removed = NULL;
	return NULL;
}

void
kw_sandbox_env_free(char **env)
{
	if (!env)
		return;
	for (size_t i = 0; env[i]; i++) {
		explicit_bzero(env[i], strlen(env[i]));
		free(env[i]);
	}
	free(env);
}
