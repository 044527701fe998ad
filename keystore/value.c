/*
 * value.c - the memory a key's value is handed out in (see backends/backend.h).
 *
 * A value must not reach swap or a core dump, so it lives in locked memory
 * (sodium_malloc: mlock, guard pages, wiped on free).  But sodium_malloc
 * maps and sodium_free unmaps a region each time: about a dozen system
 * calls and a TLB shootdown on every CPU per key read, which was most of
 * what `key.get` cost the broker.  So values are handed out from a few
 * slots of one locked region, kept for the process's life; a slot is
 * wiped as it is given back.  A value larger than a slot, or one asked for
 * while every slot is out, gets a region of its own as before.  The slots
 * share their region's guard pages rather than having their own: values
 * are written only by the backends, at the length they asked for.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <sodium.h>

#include "keystore/backends/backend.h"

#define SLOT_SIZE	4096
#define SLOTS		16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *region;		/* SLOTS * SLOT_SIZE, sodium_malloc'd once */
static bool region_failed;		/* sodium_malloc refused once: do not retry */
static uint32_t used;			/* bit i: slot i is out */

static unsigned char *
take_slot(void)
{
	unsigned char *p = NULL;

	pthread_mutex_lock(&lock);
	if (!region && !region_failed && !(region = sodium_malloc((size_t)SLOTS * SLOT_SIZE)))
		region_failed = true;
	if (region)
		for (unsigned i = 0; i < SLOTS; i++)
			if (!(used & (1u << i))) {
				used |= 1u << i;
				p = region + (size_t)i * SLOT_SIZE;
				break;
			}
	pthread_mutex_unlock(&lock);
	return p;
}

unsigned char *
kw_keystore_alloc_value(size_t len)
{
	unsigned char *p;

	if (len + 1 <= SLOT_SIZE && (p = take_slot()))
		return p;
	return sodium_malloc(len + 1);
}

void
kw_keystore_free_value(unsigned char *value, size_t len)
{
	bool slot;

	(void)len;
	if (!value)
		return;
	/* region is set under the lock by whichever thread came first. */
	pthread_mutex_lock(&lock);
	slot = region && value >= region && value < region + (size_t)SLOTS * SLOT_SIZE;
	pthread_mutex_unlock(&lock);
	if (slot) {
		size_t i = (size_t)(value - region) / SLOT_SIZE;
		/* The whole slot: the length a caller gives may be shorter than was written. */
		sodium_memzero(region + i * SLOT_SIZE, SLOT_SIZE);
		pthread_mutex_lock(&lock);
		used &= ~(1u << i);
		pthread_mutex_unlock(&lock);
		return;
	}
	/* sodium_free wipes the whole allocation. */
	sodium_free(value);
}
