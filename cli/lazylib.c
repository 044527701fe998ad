/*
 * lazylib.c - loading a library the first time the CLI calls into it (see
 * lazylib.h).
 *
 * A library is opened with RTLD_NOW (as the executable's -z now would have
 * bound it) and RTLD_GLOBAL (as linking would have made its symbols
 * visible: PAM modules that do not name libpam rely on it), and all the
 * functions the CLI takes from it are looked up at once, so a missing one
 * is found before the first call rather than in the middle of a command;
 * a function an LD_PRELOADed library interposes is taken from it, as the
 * linker's binding would have done.
 * A failure ends the process: the library is part of the installation.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/lazylib.h"

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static void
fail(const struct kw_lazylib *lib, const char *what)
{
	const char *why = dlerror();

	fprintf(stderr, "keywarden: cannot load %s%s%s: %s (is it installed?)\n", lib->soname,
	    what ? ", function " : "", what ? what : "", why ? why : "unknown error");
	exit(KW_EXIT_USAGE);
}

/*
 * name as a linked call would have found it: in the global scope, where an
 * LD_PRELOADed library comes first (pam_wrapper's pam_start in the tests,
 * any interposer in the field), else in the library itself.  The global
 * scope could only give back our own stub if the executable exported it;
 * then the library's own function is taken instead.
 */
static void *
lookup(void *h, const char *name)
{
	void *f = dlsym(RTLD_DEFAULT, name);
	Dl_info found, self;

	if (!f || (dladdr(f, &found) && dladdr((void *)kw_lazy_fn, &self) &&
	    found.dli_fbase == self.dli_fbase))
		f = dlsym(h, name);
	return f;
}

void
kw_lazy_load(struct kw_lazylib *lib)
{
	void *h;

	if (__atomic_load_n(&lib->loaded, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&load_lock);
	if (!lib->loaded) {
		if (!(h = dlopen(lib->soname, RTLD_NOW | RTLD_GLOBAL)))
			fail(lib, NULL);
		/* The handle stays open for the life of the process. */
		for (size_t i = 0; i < lib->n; i++)
			if (!(lib->fns[i] = lookup(h, lib->names[i])))
				fail(lib, lib->names[i]);
		__atomic_store_n(&lib->loaded, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&load_lock);
}

void *
kw_lazy_fn(struct kw_lazylib *lib, size_t i)
{
	kw_lazy_load(lib);
	return lib->fns[i];
}
