/*
 * lazylib.h - shared libraries the keywarden command loads only when a
 * command first calls into them.
 *
 * Every run of keywarden used to map and relocate all the libraries any
 * command needs (PCRE2, libseccomp, PAM with libaudit and libcap-ng,
 * libqrencode, zlib, libm) before main(), and for the commands Claude Code
 * runs on every tool call and API request -- hook claude, key get -- that
 * was most of their start-up cost (issue 17).  The executable is no longer
 * linked against those libraries: cli/lazy_libs.c defines each function the
 * CLI calls from them, with the library's own prototype, as a stub that
 * loads the library (dlopen, RTLD_NOW) the first time one of its functions
 * is called and then calls the real function.  The code that uses them
 * (policy/detect, sandbox/, cmd_login.c, qr.c, archive_verify.c) is
 * unchanged.
 *
 * Loading a library in a process that has forked with other threads
 * running, or in a child that must not allocate, is not safe: commands that
 * do that (run, exec --sandbox) have all of them loaded before they start
 * (kw_lazy_load_all, called by main for every command not marked
 * KW_CMD_LEAN).
 */
#ifndef KW_CLI_LAZYLIB_H
#define KW_CLI_LAZYLIB_H

#include <stddef.h>

/* One library: its soname and the functions the CLI takes from it. */
struct kw_lazylib {
	const char *soname;
	const char *const *names;	/* n function names */
	void **fns;			/* n slots, filled together on load */
	size_t n;
	int loaded;			/* atomic: fns are all set */
};

/*
 * The address of lib's i-th function, loading lib on the first call.  If
 * the library or one of its functions cannot be loaded, prints why on
 * stderr and exits with status 2 (the installation is broken; nothing this
 * command could do would be right).  Thread-safe.
 */
void *kw_lazy_fn(struct kw_lazylib *lib, size_t i);

/* Load lib now (as kw_lazy_fn, exiting on failure). */
void kw_lazy_load(struct kw_lazylib *lib);

/* Load every library cli/lazy_libs.c knows. */
void kw_lazy_load_all(void);

/*
 * The stubs' building blocks, for lists of X(RET, NAME, PARAMS, ARGS):
 * KW_LAZY_INDEX numbers the functions, KW_LAZY_NAME lists their names, and
 * KW_LAZY_STUB / KW_LAZY_STUB_VOID define NAME PARAMS as a call of the real
 * function through LIB's slot.
 */
#define KW_LAZY_INDEX(ret, name, params, args)	KW_LAZY_I_##name,
#define KW_LAZY_NAME(ret, name, params, args)	#name,
#define KW_LAZY_STUB(lib, ret, name, params, args)				\
	ret name params								\
	{									\
		return ((ret (*)params)kw_lazy_fn(&(lib), KW_LAZY_I_##name))args; \
	}
#define KW_LAZY_STUB_VOID(lib, ret, name, params, args)			\
	void name params							\
	{									\
		((void (*)params)kw_lazy_fn(&(lib), KW_LAZY_I_##name))args;	\
	}

#endif
