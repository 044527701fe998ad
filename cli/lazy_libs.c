/*
 * lazy_libs.c - the functions the keywarden command takes from its rarely
 * needed libraries, as stubs that load the library on first use (see
 * lazylib.h for why).
 *
 * Each list names a function with its prototype as the library's header
 * declares it: the header is included, so a stub that disagrees with the
 * real declaration does not compile.  A function the CLI starts to call
 * from one of these libraries must be added here, or the link fails with
 * an undefined reference (the executable is not linked against them).  The
 * sonames come from the Makefile (KW_SONAME_*), read from the libraries the
 * build found, so the stubs load the ABI they were compiled against.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <gnu/lib-names.h>
#include <math.h>
#include <pcre2.h>
#include <qrencode.h>
#include <seccomp.h>
#include <security/pam_appl.h>
#include <zlib.h>

#include "cli/lazylib.h"

#if !defined(KW_SONAME_PCRE2) || !defined(KW_SONAME_SECCOMP) || !defined(KW_SONAME_PAM) || \
    !defined(KW_SONAME_QRENCODE) || !defined(KW_SONAME_Z)
#error "the Makefile passes the libraries' sonames (KW_SONAME_*)"
#endif

/*
 * LIST(X, XV) names the functions, XV for those returning void; LAZY_LIB
 * makes of it the library's index enum, name table and slots, and the stubs
 * (STUBS, given the library's two stub macros).
 */
#define LAZY_LIB(var, so, LIST)						\
	enum { LIST(KW_LAZY_INDEX, KW_LAZY_INDEX) };				\
	static const char *const var##_names[] = { LIST(KW_LAZY_NAME, KW_LAZY_NAME) }; \
	static void *var##_fns[sizeof(var##_names) / sizeof(var##_names[0])];	\
	static struct kw_lazylib var = {					\
		.soname = (so), .names = var##_names, .fns = var##_fns,	\
		.n = sizeof(var##_names) / sizeof(var##_names[0]),		\
	}

/* ---- PCRE2: the detection engine (scan, redact, hook's PostToolUse, doctor) ---- */

#define PCRE2_FNS(X, XV)							\
	X(pcre2_code *, pcre2_compile_8, (PCRE2_SPTR p, PCRE2_SIZE len, uint32_t opts,	\
	    int *err, PCRE2_SIZE *off, pcre2_compile_context *cc), (p, len, opts, err, off, cc)) \
	XV(void, pcre2_code_free_8, (pcre2_code *c), (c))			\
	X(int, pcre2_get_error_message_8, (int err, PCRE2_UCHAR *buf, PCRE2_SIZE len),	\
	    (err, buf, len))							\
	X(PCRE2_SIZE *, pcre2_get_ovector_pointer_8, (pcre2_match_data *md), (md))	\
	X(int, pcre2_jit_compile_8, (pcre2_code *c, uint32_t opts), (c, opts))	\
	X(int, pcre2_match_8, (const pcre2_code *c, PCRE2_SPTR s, PCRE2_SIZE len,	\
	    PCRE2_SIZE start, uint32_t opts, pcre2_match_data *md, pcre2_match_context *mc), \
	    (c, s, len, start, opts, md, mc))					\
	X(pcre2_match_context *, pcre2_match_context_create_8, (pcre2_general_context *g), (g)) \
	XV(void, pcre2_match_context_free_8, (pcre2_match_context *mc), (mc))	\
	X(pcre2_match_data *, pcre2_match_data_create_8, (uint32_t n,		\
	    pcre2_general_context *g), (n, g))					\
	XV(void, pcre2_match_data_free_8, (pcre2_match_data *md), (md))		\
	X(int, pcre2_set_match_limit_8, (pcre2_match_context *mc, uint32_t n), (mc, n)) \
	X(int, pcre2_substring_number_from_name_8, (const pcre2_code *c, PCRE2_SPTR name), \
	    (c, name))
LAZY_LIB(pcre2, KW_SONAME_PCRE2, PCRE2_FNS);
#define PCRE2_X(r, n, p, a)	KW_LAZY_STUB(pcre2, r, n, p, a)
#define PCRE2_XV(r, n, p, a)	KW_LAZY_STUB_VOID(pcre2, r, n, p, a)
PCRE2_FNS(PCRE2_X, PCRE2_XV)

/* libm: the detection engine's entropy. */
#define LIBM_FNS(X, XV)								\
	X(double, log2, (double x), (x))
LAZY_LIB(libm, LIBM_SO, LIBM_FNS);
#define LIBM_X(r, n, p, a)	KW_LAZY_STUB(libm, r, n, p, a)
LIBM_FNS(LIBM_X, LIBM_X)

/* ---- libseccomp: the sandbox (run, exec --sandbox, doctor) ---- */

#define SECCOMP_FNS(X, XV)							\
	X(int, seccomp_attr_set, (scmp_filter_ctx ctx, enum scmp_filter_attr attr,	\
	    uint32_t value), (ctx, attr, value))				\
	X(scmp_filter_ctx, seccomp_init, (uint32_t def_action), (def_action))	\
	X(int, seccomp_load, (const scmp_filter_ctx ctx), (ctx))		\
	X(int, seccomp_notify_alloc, (struct seccomp_notif **req,		\
	    struct seccomp_notif_resp **resp), (req, resp))			\
	X(int, seccomp_notify_fd, (const scmp_filter_ctx ctx), (ctx))		\
	XV(void, seccomp_notify_free, (struct seccomp_notif *req,		\
	    struct seccomp_notif_resp *resp), (req, resp))			\
	X(int, seccomp_notify_receive, (int fd, struct seccomp_notif *req), (fd, req)) \
	X(int, seccomp_notify_respond, (int fd, struct seccomp_notif_resp *resp), (fd, resp)) \
	XV(void, seccomp_release, (scmp_filter_ctx ctx), (ctx))		\
	X(int, seccomp_rule_add_array, (scmp_filter_ctx ctx, uint32_t action, int syscall, \
	    unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array),	\
	    (ctx, action, syscall, arg_cnt, arg_array))				\
	X(int, seccomp_syscall_resolve_name, (const char *name), (name))
LAZY_LIB(seccomp, KW_SONAME_SECCOMP, SECCOMP_FNS);
#define SECCOMP_X(r, n, p, a)	KW_LAZY_STUB(seccomp, r, n, p, a)
#define SECCOMP_XV(r, n, p, a)	KW_LAZY_STUB_VOID(seccomp, r, n, p, a)
SECCOMP_FNS(SECCOMP_X, SECCOMP_XV)

/* ---- PAM: login --pam-service (libpam brings libaudit and libcap-ng) ---- */

#define PAM_FNS(X, XV)								\
	X(int, pam_start, (const char *service, const char *user,		\
	    const struct pam_conv *conv, pam_handle_t **pamh), (service, user, conv, pamh)) \
	X(int, pam_end, (pam_handle_t *pamh, int status), (pamh, status))	\
	X(int, pam_authenticate, (pam_handle_t *pamh, int flags), (pamh, flags))	\
	X(int, pam_acct_mgmt, (pam_handle_t *pamh, int flags), (pamh, flags))	\
	X(int, pam_open_session, (pam_handle_t *pamh, int flags), (pamh, flags))	\
	X(int, pam_set_item, (pam_handle_t *pamh, int type, const void *item),	\
	    (pamh, type, item))							\
	X(const char *, pam_strerror, (pam_handle_t *pamh, int err), (pamh, err))
LAZY_LIB(pam, KW_SONAME_PAM, PAM_FNS);
#define PAM_X(r, n, p, a)	KW_LAZY_STUB(pam, r, n, p, a)
PAM_FNS(PAM_X, PAM_X)

/* ---- libqrencode: the enrollment QR code ---- */

#define QRENCODE_FNS(X, XV)							\
	X(QRcode *, QRcode_encodeString, (const char *string, int version,	\
	    QRecLevel level, QRencodeMode hint, int casesensitive),		\
	    (string, version, level, hint, casesensitive))			\
	XV(void, QRcode_free, (QRcode *qrcode), (qrcode))
LAZY_LIB(qrencode, KW_SONAME_QRENCODE, QRENCODE_FNS);
#define QRENCODE_X(r, n, p, a)	KW_LAZY_STUB(qrencode, r, n, p, a)
#define QRENCODE_XV(r, n, p, a)	KW_LAZY_STUB_VOID(qrencode, r, n, p, a)
QRENCODE_FNS(QRENCODE_X, QRENCODE_XV)

/* ---- zlib: reading compressed audit archives (admin audit verify) ---- */

#define Z_FNS(X, XV)								\
	X(int, gzbuffer, (gzFile file, unsigned size), (file, size))		\
	X(int, gzclose, (gzFile file), (file))					\
	X(int, gzdirect, (gzFile file), (file))					\
	X(const char *, gzerror, (gzFile file, int *errnum), (file, errnum))	\
	X(gzFile, gzopen, (const char *path, const char *mode), (path, mode))	\
	X(int, gzread, (gzFile file, voidp buf, unsigned len), (file, buf, len))
LAZY_LIB(zlib, KW_SONAME_Z, Z_FNS);
#define Z_X(r, n, p, a)		KW_LAZY_STUB(zlib, r, n, p, a)
Z_FNS(Z_X, Z_X)

void
kw_lazy_load_all(void)
{
	struct kw_lazylib *all[] = { &pcre2, &libm, &seccomp, &pam, &qrencode, &zlib };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		kw_lazy_load(all[i]);
}
