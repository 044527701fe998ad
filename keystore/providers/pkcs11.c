/*
 * provider_pkcs11.c - the master key is an AES key inside an HSM, reached
 * through its PKCS#11 module; it never leaves the token.  The DEK is made
 * here (randombytes), or given to wrap, and sealed by the token with
 * CKM_AES_GCM.
 *
 * kmsKeyId is an RFC 7512 URI naming the token, the key and, as query
 * attributes, the module and where the PIN lives:
 *   pkcs11:token=keywarden;object=kek;type=secret
 *     ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/keywarden/hsm.pin
 * A PIN in the URI itself (pin-value) is refused: the URI is a setting that
 * `config list` shows.  The PIN file follows the passphrase file's rules
 * (private, owned by us or root, one trailing newline dropped).
 *
 * One session, logged in, lives as long as the provider.  The broker calls
 * the provider from one thread, so the session is never shared.
 *
 * Blob: "P11G" | IV (12) | ciphertext (32) | tag (16); the magic is the GCM
 * associated data.
 */
#include <errno.h>
#include <fcntl.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/log.h"
#include "keystore/providers/provider.h"

#define MAGIC		"P11G"
#define MAGIC_LEN	4
#define IV_LEN		12
#define TAG_LEN		16
#define BLOB_LEN	(MAGIC_LEN + IV_LEN + KW_DEK_LEN + TAG_LEN)
#define PIN_MAX		256
#define SETTING		"security.encryption.atRest.kmsKeyId"

struct p11 {
	CK_FUNCTION_LIST *mod;
	bool initialized;
	bool have_session;
	bool logged_in;		/* we logged in, so we log out */
	CK_SESSION_HANDLE session;
	CK_OBJECT_HANDLE key;
};

/* "CKR_PIN_INCORRECT" for rv; unknown codes as hex with the p11-kit text. */
static const char *
ckr_name(CK_RV rv, char *buf, size_t size)
{
#define N(x) { x, #x }
	static const struct { CK_RV rv; const char *name; } names[] = {
		N(CKR_OK), N(CKR_HOST_MEMORY), N(CKR_SLOT_ID_INVALID), N(CKR_GENERAL_ERROR),
		N(CKR_FUNCTION_FAILED), N(CKR_ARGUMENTS_BAD), N(CKR_CANT_LOCK),
		N(CKR_DATA_INVALID), N(CKR_DATA_LEN_RANGE), N(CKR_DEVICE_ERROR),
		N(CKR_DEVICE_MEMORY), N(CKR_DEVICE_REMOVED), N(CKR_ENCRYPTED_DATA_INVALID),
		N(CKR_ENCRYPTED_DATA_LEN_RANGE), N(CKR_FUNCTION_CANCELED),
		N(CKR_FUNCTION_NOT_SUPPORTED), N(CKR_KEY_HANDLE_INVALID), N(CKR_KEY_SIZE_RANGE),
		N(CKR_KEY_TYPE_INCONSISTENT), N(CKR_KEY_FUNCTION_NOT_PERMITTED),
		N(CKR_MECHANISM_INVALID), N(CKR_MECHANISM_PARAM_INVALID),
		N(CKR_OBJECT_HANDLE_INVALID), N(CKR_OPERATION_ACTIVE),
		N(CKR_OPERATION_NOT_INITIALIZED), N(CKR_PIN_INCORRECT), N(CKR_PIN_INVALID),
		N(CKR_PIN_LEN_RANGE), N(CKR_PIN_EXPIRED), N(CKR_PIN_LOCKED), N(CKR_SESSION_CLOSED),
		N(CKR_SESSION_COUNT), N(CKR_SESSION_HANDLE_INVALID), N(CKR_TOKEN_NOT_PRESENT),
		N(CKR_TOKEN_NOT_RECOGNIZED), N(CKR_USER_ALREADY_LOGGED_IN),
		N(CKR_USER_NOT_LOGGED_IN), N(CKR_USER_PIN_NOT_INITIALIZED),
		N(CKR_USER_TYPE_INVALID), N(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
		N(CKR_USER_TOO_MANY_TYPES), N(CKR_BUFFER_TOO_SMALL),
		N(CKR_CRYPTOKI_NOT_INITIALIZED), N(CKR_CRYPTOKI_ALREADY_INITIALIZED),
		N(CKR_LIBRARY_LOAD_FAILED), N(CKR_FUNCTION_REJECTED),
	};
#undef N
	size_t i;

	for (i = 0; i < KW_ELEMENTSOF(names); i++)
		if (names[i].rv == rv)
			return names[i].name;
	snprintf(buf, size, "CKR 0x%08lx: %s", (unsigned long)rv, p11_kit_strerror(rv));
	return buf;
}

/* err = "what (CKR_...)"; returns KW_ERR_IO. */
static int
hsm_error(char *err, size_t err_len, const char *what, CK_RV rv)
{
	char buf[128];

	snprintf(err, err_len, "%s (%s)", what, ckr_name(rv, buf, sizeof(buf)));
	return KW_ERR_IO;
}

static void
gcm_mechanism(CK_GCM_PARAMS *gp, CK_MECHANISM *m, unsigned char *iv)
{
	memset(gp, 0, sizeof(*gp));
	gp->pIv = iv;
	gp->ulIvLen = IV_LEN;
	gp->ulIvBits = IV_LEN * 8;
	gp->pAAD = (unsigned char *)MAGIC;
	gp->ulAADLen = MAGIC_LEN;
	gp->ulTagBits = TAG_LEN * 8;
	m->mechanism = CKM_AES_GCM;
	m->pParameter = gp;
	m->ulParameterLen = sizeof(*gp);
}

static int
p11_wrap(struct kw_provider *p, const unsigned char *dek, unsigned char **ret_blob,
    size_t *ret_len)
{
	struct p11 *s = p->priv;
	unsigned char *blob = malloc(BLOB_LEN);
	CK_ULONG out_len = KW_DEK_LEN + TAG_LEN;
	CK_GCM_PARAMS gp;
	CK_MECHANISM m;
	CK_RV rv;
	char err[256];
	int r = KW_ERR_NOMEM;

	if (!blob)
		goto out;
	memcpy(blob, MAGIC, MAGIC_LEN);
	randombytes_buf(blob + MAGIC_LEN, IV_LEN);
	gcm_mechanism(&gp, &m, blob + MAGIC_LEN);
	/* C_Encrypt takes a non-const buffer, but only reads it: no copy of the key. */
	if ((rv = s->mod->C_EncryptInit(s->session, &m, s->key)) != CKR_OK ||
	    (rv = s->mod->C_Encrypt(s->session, (unsigned char *)dek, KW_DEK_LEN,
	    blob + MAGIC_LEN + IV_LEN, &out_len)) != CKR_OK || out_len != KW_DEK_LEN + TAG_LEN) {
		r = hsm_error(err, sizeof(err), "HSM refused to wrap the data key",
		    rv != CKR_OK ? rv : CKR_FUNCTION_FAILED);
		kw_log_error("pkcs11 provider: %s", err);
		goto out;
	}
	*ret_blob = TAKE_PTR(blob);
	*ret_len = BLOB_LEN;
	r = 0;
 out:
	free(blob);
	return r;
}

static int
p11_new_dek(struct kw_provider *p, unsigned char *dek, unsigned char **ret_blob, size_t *ret_len)
{
	int r;

	randombytes_buf(dek, KW_DEK_LEN);
	if ((r = p11_wrap(p, dek, ret_blob, ret_len)) < 0)
		sodium_memzero(dek, KW_DEK_LEN);
	return r;
}

static int
p11_unwrap(struct kw_provider *p, const unsigned char *blob, size_t len, unsigned char *dek)
{
	struct p11 *s = p->priv;
	unsigned char iv[IV_LEN], ct[KW_DEK_LEN + TAG_LEN], out[KW_DEK_LEN + TAG_LEN];
	CK_ULONG out_len = sizeof(out);
	CK_GCM_PARAMS gp;
	CK_MECHANISM m;
	CK_RV rv;
	char err[256];

	if (len != BLOB_LEN || memcmp(blob, MAGIC, MAGIC_LEN) != 0) {
		kw_log_error("pkcs11 provider: the data key was not wrapped by an HSM "
		    "(wrong keySource, or a damaged file)");
		return KW_ERR_IO;
	}
	/* The module's prototypes take non-const buffers. */
	memcpy(iv, blob + MAGIC_LEN, IV_LEN);
	memcpy(ct, blob + MAGIC_LEN + IV_LEN, sizeof(ct));
	gcm_mechanism(&gp, &m, iv);
	if ((rv = s->mod->C_DecryptInit(s->session, &m, s->key)) != CKR_OK ||
	    (rv = s->mod->C_Decrypt(s->session, ct, sizeof(ct), out, &out_len)) != CKR_OK ||
	    out_len != KW_DEK_LEN) {
		sodium_memzero(out, sizeof(out));
		hsm_error(err, sizeof(err), "HSM refused to unwrap the data key",
		    rv != CKR_OK ? rv : CKR_FUNCTION_FAILED);
		kw_log_error("pkcs11 provider: %s", err);
		return KW_ERR_IO;
	}
	memcpy(dek, out, KW_DEK_LEN);
	sodium_memzero(out, sizeof(out));
	return 0;
}

static void
p11_close(struct kw_provider *p)
{
	struct p11 *s;

	if (!p)
		return;
	if ((s = p->priv)) {
		if (s->have_session) {
			if (s->logged_in)
				(void)s->mod->C_Logout(s->session);
			(void)s->mod->C_CloseSession(s->session);
		}
		if (s->initialized)
			(void)p11_kit_module_finalize(s->mod);
		if (s->mod)
			p11_kit_module_release(s->mod);
		free(s);
	}
	free(p);
}

static const struct kw_provider_ops p11_ops = {
	.name = "pkcs11",
	.new_dek = p11_new_dek,
	.wrap = p11_wrap,
	.unwrap = p11_unwrap,
	.close = p11_close,
};

/*
 * The PIN named by pin-source ("file:PATH", "file://PATH" or "/PATH") into
 * pin[PIN_MAX + 1] (the caller's sodium_malloc'd buffer) and *ret_len.
 */
static int
read_pin(const char *source, char *pin, size_t *ret_len, char *err, size_t err_len)
{
	const char *path = source;
	_cleanup_close_ int fd = -1;
	struct stat st;
	size_t len = 0;
	ssize_t n;

	if (strncmp(path, "file://", 7) == 0)
		path += 7;
	else if (strncmp(path, "file:", 5) == 0)
		path += 5;
	if (path[0] != '/') {
		snprintf(err, err_len, SETTING ": pin-source must be file:/absolute/path");
		return KW_ERR_CONFIG;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0 || fstat(fd, &st) < 0) {
		snprintf(err, err_len, "HSM PIN file %s: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) ||
	    (st.st_uid != geteuid() && st.st_uid != 0)) {
		snprintf(err, err_len, "HSM PIN file %s: must be a regular file owned by this user "
		    "or root, readable by no one else (chmod 600)", path);
		return KW_ERR_CONFIG;
	}
	while (len <= PIN_MAX) {
		n = read(fd, pin + len, PIN_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, err_len, "HSM PIN file %s: %s", path, strerror(errno));
			return KW_ERR_IO;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > 0 && pin[len - 1] == '\n')
		len--;
	if (len == 0 || len > PIN_MAX) {
		snprintf(err, err_len, "HSM PIN file %s: expected a PIN of 1 to %d bytes", path,
		    PIN_MAX);
		return KW_ERR_CONFIG;
	}
	*ret_len = len;
	return 0;
}

/* Length of a blank-padded PKCS#11 label without its padding. */
static int
label_len(const unsigned char *label, size_t size)
{
	while (size > 0 && label[size - 1] == ' ')
		size--;
	return (int)size;
}

/* The first slot whose module, slot and token match the URI. */
static int
find_slot(struct p11 *s, P11KitUri *uri, CK_SLOT_ID *ret_slot, CK_TOKEN_INFO *ret_token,
    char *err, size_t err_len)
{
	_cleanup_free_ CK_SLOT_ID *slots = NULL;
	CK_TOKEN_INFO *want = p11_kit_uri_get_token_info(uri);
	CK_SLOT_INFO si;
	CK_INFO info;
	CK_ULONG n = 0, i;
	CK_RV rv;

	if ((rv = s->mod->C_GetInfo(&info)) != CKR_OK)
		return hsm_error(err, err_len, "HSM module does not answer", rv);
	if (!p11_kit_uri_match_module_info(uri, &info)) {
		snprintf(err, err_len, SETTING ": the module at module-path is not the one the "
		    "URI names");
		return KW_ERR_CONFIG;
	}
	if ((rv = s->mod->C_GetSlotList(CK_TRUE, NULL, &n)) != CKR_OK ||
	    !(slots = calloc(n ? n : 1, sizeof(*slots))) ||
	    (rv = s->mod->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK)
		return hsm_error(err, err_len, "HSM slots cannot be listed",
		    rv != CKR_OK ? rv : CKR_HOST_MEMORY);
	for (i = 0; i < n; i++) {
		if (s->mod->C_GetSlotInfo(slots[i], &si) != CKR_OK ||
		    !p11_kit_uri_match_slot_info(uri, &si) ||
		    s->mod->C_GetTokenInfo(slots[i], ret_token) != CKR_OK ||
		    !p11_kit_uri_match_token_info(uri, ret_token))
			continue;
		*ret_slot = slots[i];
		return 0;
	}
	snprintf(err, err_len, "no HSM token matches " SETTING " (token \"%.*s\")",
	    label_len(want->label, sizeof(want->label)), (const char *)want->label);
	return KW_ERR_IO;
}

static int
login(struct p11 *s, P11KitUri *uri, const CK_TOKEN_INFO *token, char *err, size_t err_len)
{
	const char *source = p11_kit_uri_get_pin_source(uri);
	char *pin = NULL;
	size_t len = 0;
	CK_RV rv;
	int r;

	if (!source) {
		if (!(token->flags & CKF_LOGIN_REQUIRED))
			return 0;
		snprintf(err, err_len, SETTING ": the token needs a PIN: add "
		    "pin-source=file:/path/to/pin to the URI's query");
		return KW_ERR_CONFIG;
	}
	if (!(pin = sodium_malloc(PIN_MAX + 1))) {
		snprintf(err, err_len, "pkcs11 provider: out of memory");
		return KW_ERR_NOMEM;
	}
	if ((r = read_pin(source, pin, &len, err, err_len)) < 0)
		goto out;
	rv = s->mod->C_Login(s->session, CKU_USER, (unsigned char *)pin, len);
	/* Another provider of this process may hold the login: the token is shared. */
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		r = hsm_error(err, err_len, "HSM login failed", rv);
		goto out;
	}
	s->logged_in = rv == CKR_OK;
	r = 0;
 out:
	sodium_free(pin);	/* wipes */
	return r;
}

/* The one secret key the URI's object attributes name. */
static int
find_key(struct p11 *s, P11KitUri *uri, char *err, size_t err_len)
{
	CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
	CK_ATTRIBUTE tmpl[8], *attrs;
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0, nfound = 0, i;
	bool have_class = false;
	CK_RV rv;

	attrs = p11_kit_uri_get_attributes(uri, &n);
	if (n >= KW_ELEMENTSOF(tmpl)) {
		snprintf(err, err_len, SETTING ": too many object attributes");
		return KW_ERR_CONFIG;
	}
	for (i = 0; i < n; i++) {
		tmpl[i] = attrs[i];
		if (attrs[i].type != CKA_CLASS)
			continue;
		if (attrs[i].ulValueLen != sizeof(secret) ||
		    memcmp(attrs[i].pValue, &secret, sizeof(secret)) != 0) {
			snprintf(err, err_len, SETTING ": the key must be a secret key (type=secret)");
			return KW_ERR_CONFIG;
		}
		have_class = true;
	}
	if (!have_class)
		tmpl[n++] = (CK_ATTRIBUTE){ CKA_CLASS, &secret, sizeof(secret) };
	if ((rv = s->mod->C_FindObjectsInit(s->session, tmpl, n)) != CKR_OK)
		return hsm_error(err, err_len, "HSM key search failed", rv);
	rv = s->mod->C_FindObjects(s->session, found, KW_ELEMENTSOF(found), &nfound);
	(void)s->mod->C_FindObjectsFinal(s->session);
	if (rv != CKR_OK)
		return hsm_error(err, err_len, "HSM key search failed", rv);
	if (nfound != 1) {
		snprintf(err, err_len, nfound == 0 ? "no secret key in the HSM token matches "
		    SETTING : SETTING ": more than one key matches; name it by id= too");
		return KW_ERR_CONFIG;
	}
	s->key = found[0];
	return 0;
}

/* Load and initialise the module, then find the token, log in and find the key. */
static int
connect_hsm(struct p11 *s, P11KitUri *uri, char *err, size_t err_len)
{
	const char *module = p11_kit_uri_get_module_path(uri);
	CK_TOKEN_INFO token;
	CK_SLOT_ID slot = 0;
	CK_RV rv;
	int r;

	if (!module) {
		snprintf(err, err_len, SETTING ": add module-path=/path/to/module.so to the "
		    "URI's query");
		return KW_ERR_CONFIG;
	}
	if (!(s->mod = p11_kit_module_load(module, 0))) {
		snprintf(err, err_len, "cannot load the PKCS#11 module %.256s: %s", module,
		    p11_kit_message() ? p11_kit_message() : "unknown error");
		return KW_ERR_IO;
	}
	if ((rv = p11_kit_module_initialize(s->mod)) != CKR_OK)
		return hsm_error(err, err_len, "the PKCS#11 module failed to initialise", rv);
	s->initialized = true;
	if ((r = find_slot(s, uri, &slot, &token, err, err_len)) < 0)
		return r;
	if ((rv = s->mod->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL,
	    &s->session)) != CKR_OK)
		return hsm_error(err, err_len, "HSM session could not be opened", rv);
	s->have_session = true;
	if ((r = login(s, uri, &token, err, err_len)) < 0)
		return r;
	return find_key(s, uri, err, err_len);
}

/*
 * RFC 7512 spells the class of a secret key "secret-key"; our documentation
 * (and many a hand-written URI) says "type=secret", which p11-kit does not
 * know.  A copy of id with that one path attribute respelled, or NULL.
 */
static char *
respell_type(const char *id)
{
	static const char scheme[] = "pkcs11:", attr[] = "type=secret";
	const char *end = id + strcspn(id, "?"), *seg, *next;
	char *out;

	if (strncmp(id, scheme, strlen(scheme)) != 0)
		return strdup(id);
	for (seg = id + strlen(scheme); seg < end; seg = next + 1) {
		next = seg + strcspn(seg, ";?");
		if ((size_t)(next - seg) == strlen(attr) && memcmp(seg, attr, strlen(attr)) == 0)
			return asprintf(&out, "%.*s-key%s", (int)(next - id), id, next) < 0 ?
			    NULL : out;
		if (*next != ';')
			break;
	}
	return strdup(id);
}

static int
parse_uri(const char *id_setting, P11KitUri **ret_uri, char *err, size_t err_len)
{
	P11KitUri *uri = p11_kit_uri_new();
	_cleanup_free_ char *id = respell_type(id_setting);
	int pr;

	if (!uri || !id) {
		snprintf(err, err_len, "pkcs11 provider: out of memory");
		if (uri)
			p11_kit_uri_free(uri);
		return KW_ERR_NOMEM;
	}
	/* The URI is not echoed: a careless one might carry a PIN. */
	if (id[0] == '\0')
		snprintf(err, err_len, SETTING ": keySource pkcs11 needs a pkcs11: URI naming "
		    "the key");
	else if ((pr = p11_kit_uri_parse(id, P11_KIT_URI_FOR_OBJECT_ON_TOKEN_AND_MODULE,
	    uri)) != P11_KIT_URI_OK)
		snprintf(err, err_len, SETTING ": not a pkcs11: URI (%s)", p11_kit_uri_message(pr));
	else if (p11_kit_uri_any_unrecognized(uri))
		snprintf(err, err_len, SETTING ": the pkcs11: URI has attributes this "
		    "broker does not know");
	else if (p11_kit_uri_get_pin_value(uri))
		snprintf(err, err_len, SETTING ": pin-value puts the PIN in the configuration; "
		    "use pin-source=file:/path/to/pin");
	else {
		*ret_uri = uri;
		return 0;
	}
	p11_kit_uri_free(uri);
	return KW_ERR_CONFIG;
}

int
kw_provider_pkcs11_open(const struct kw_config *cfg, const char *dir,
    struct kw_provider **ret, char *err, size_t err_len)
{
	struct kw_provider *p = calloc(1, sizeof(*p));
	struct p11 *s = calloc(1, sizeof(*s));
	P11KitUri *uri = NULL;
	int r = KW_ERR_NOMEM;

	if (!p || !s) {
		snprintf(err, err_len, "pkcs11 provider: out of memory");
		free(s);
		goto out;
	}
	p->ops = &p11_ops;
	p->priv = s;
	if ((r = parse_uri(kw_config_str(cfg, SETTING), &uri, err, err_len)) < 0 ||
	    (r = connect_hsm(s, uri, err, err_len)) < 0)
		goto out;
	*ret = TAKE_PTR(p);
	r = 0;
 out:
	if (uri)
		p11_kit_uri_free(uri);
	p11_close(p);
	return r;
}
