/*
 * heap.c - the proxy's heap: glibc held to two arenas, and what a burst of
 * connections freed handed back to the kernel as their threads end
 * (proxy/DESIGN.md, "Memory").
 *
 * glibc gives each thread that allocates under contention an arena of its
 * own, up to 8 per core, and keeps what a thread freed in that arena rather
 * than returning it.  The proxy runs a thread per client connection, mostly
 * blocked on the network, so a burst of streams left each arena at its own
 * high-water mark and RSS climbed from round to round.  Two arenas (one per
 * core on the machines this serves, which have few) bound that; allocation
 * is a small part of a call's cost next to TLS and the network.
 *
 * Even in two arenas glibc returns only the top of a heap by itself, so the
 * freed middle of a burst stayed resident (about 100 MB after 1,000
 * streams).  So each time the connection threads alive fall to half their
 * number since the last time (a burst of 1,000 ending: about ten times, the
 * last with only the idle keep-alive connections left), malloc_trim gives
 * the free pages back.  Not at every exit: it walks the free lists under
 * the arena's lock.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>

#include "common/errors.h"
#include "proxy/proxy.h"

/* A key per connection thread: its destructor counts the thread's exit. */
static pthread_key_t conn_thread;
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
/* Connection threads alive, and their most since memory was last given back. */
static unsigned conn_threads, conn_peak;

static void
on_thread_exit(void *unused)
{
	bool trim;

	(void)unused;
	pthread_mutex_lock(&conn_lock);
	conn_threads--;
	trim = conn_threads * 2 <= conn_peak;
	if (trim)
		conn_peak = conn_threads;
	pthread_mutex_unlock(&conn_lock);
	if (trim)
		(void)malloc_trim(0);
}

int
kw_proxy_heap_setup(void)
{
	(void)mallopt(M_ARENA_MAX, 2);
	/*
	 * malloc_trim sets glibc's allocator up on first use, and that setup
	 * is not safe from two threads at once (it marks itself done before
	 * the main arena is ready).  It is first use when a sanitizer's
	 * allocator stands in for glibc's (mallopt is then the sanitizer's,
	 * and nothing else calls into glibc's heap): two connection threads
	 * ending together trimmed at once and one read the half-made arena
	 * (SEGV in mtrim under ASan).  Done here, while one thread runs.
	 */
	(void)malloc_trim(0);
	return pthread_key_create(&conn_thread, on_thread_exit) == 0 ? 0 : KW_ERR_NOMEM;
}

void
kw_proxy_heap_thread_seen(void)
{
	if (pthread_getspecific(conn_thread))
		return;
	if (pthread_setspecific(conn_thread, &conn_thread) != 0)
		return;
	pthread_mutex_lock(&conn_lock);
	if (++conn_threads > conn_peak)
		conn_peak = conn_threads;
	pthread_mutex_unlock(&conn_lock);
}
