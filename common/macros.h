/*
 * Small helpers every part of keywarden uses: scope-bound cleanup and
 * compiler attributes.  Header only.
 */
#ifndef KW_MACROS_H
#define KW_MACROS_H

#include <stdlib.h>
#include <unistd.h>

#define KW_WUR		__attribute__((warn_unused_result))
#define KW_NONNULL(...)	__attribute__((nonnull(__VA_ARGS__)))
#define KW_PRINTF(a, b)	__attribute__((format(printf, a, b)))
#define KW_UNUSED	__attribute__((unused))

#define KW_ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Hand a pointer to a new owner: returns it and leaves NULL behind. */
#define TAKE_PTR(p) ({				\
	__typeof__(p) _take_tmp = (p);		\
	(p) = NULL;				\
	_take_tmp;				\
})

static inline void
kw_freep(void *p)
{
	free(*(void **)p);
}

static inline void
kw_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define _cleanup_(f)	__attribute__((cleanup(f)))
#define _cleanup_free_	_cleanup_(kw_freep)
#define _cleanup_close_	_cleanup_(kw_closep)

#endif
