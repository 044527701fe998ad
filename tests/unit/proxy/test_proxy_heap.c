/*
 * test_proxy_heap.c - the proxy's heap (proxy/heap.c): connection threads
 * that end together give memory back as their number halves, every exit is
 * counted, and no thread reads a half-made arena.  Each round is a fresh
 * child process (glibc's allocator is set up once per process, and the race
 * was in that setup): it runs kw_proxy_heap_setup, starts a burst of
 * threads that each count themselves and end at the same moment, and must
 * exit 0.  The race exists only under a sanitizer: without the setup's
 * first malloc_trim, ASan crashed a child within 5 to 50 rounds.  In a
 * plain build glibc's allocator is already set up by the test's own
 * mallocs, so there only the counting is checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/heap.c"

#define ROUNDS  200
#define THREADS 16

static pthread_barrier_t together;

static void *
connection(void *unused)
{
	void *p;

	kw_proxy_heap_thread_seen();
	kw_proxy_heap_thread_seen();	/* a second request on the same connection */
	p = malloc(64 * 1024);
	free(p);
	pthread_barrier_wait(&together);
	return unused;
}

static int
one_burst(void)
{
	pthread_t t[THREADS];

	if (kw_proxy_heap_setup() != 0)
		return 2;
	pthread_barrier_init(&together, NULL, THREADS);
	for (int i = 0; i < THREADS; i++)
		if (pthread_create(&t[i], NULL, connection, NULL) != 0)
			return 3;
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	/* Every exit was counted: the last one left none alive and none at the peak. */
	return conn_threads == 0 && conn_peak == 0 ? 0 : 4;
}

static void
test_threads_ending_together(void **state)
{
	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		int status;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0)
			_exit(one_burst());
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("round %d: the child %s %d", round,
			    WIFEXITED(status) ? "exited" : "died of signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_ending_together),
	};

	return cmocka_run_group_tests_name("proxy heap", tests, NULL, NULL);
}
