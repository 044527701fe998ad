/*
 * wipe_alloc.c - jansson's buffers zeroed before they are freed (see
 * wipe_alloc.h).  Blocks come from plain malloc, so buffers jansson hands
 * out (json_dumps) may still be released with free(); the size to wipe is
 * what glibc says the block holds.
 */
#include <jansson.h>
#include <malloc.h>
#include <sodium.h>
#include <stdlib.h>

#include "common/wipe_alloc.h"

static void
wipe_free(void *p)
{
	if (!p)
		return;
	sodium_memzero(p, malloc_usable_size(p));
	free(p);
}

void
kw_json_wipe_on_free(void)
{
	json_set_alloc_funcs(malloc, wipe_free);
}
