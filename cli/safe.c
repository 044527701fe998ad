/*
 * safe.c - printing text the CLI did not write itself (see cli.h,
 * kw_cli_safe): everything from the broker or from a file goes through here
 * on its way to a terminal.
 */
#include <errno.h>
#include <malloc.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/escape.h"

#define SLOTS 8

static char *slot[SLOTS];
static size_t next;

/* The text may be a secret (key get at a terminal, an enrollment): wiped. */
static void
wipe_slot(char **p)
{
	if (*p) {
		sodium_memzero(*p, malloc_usable_size(*p));
		free(*p);
		*p = NULL;
	}
}

static void
wipe_slots(void)
{
	for (size_t i = 0; i < SLOTS; i++)
		wipe_slot(&slot[i]);
}

const char *
kw_cli_safe(const char *s)
{
	static bool registered;
	int saved = errno;	/* callers print strerror(errno) beside it */
	size_t n;
	char *out;

	if (!s)
		return "";
	if (!registered)
		registered = atexit(wipe_slots) == 0;
	n = kw_escaped_len(s) + 1;
	if (!(out = malloc(n))) {
		errno = saved;
		return "(out of memory)";
	}
	kw_escape(s, out, n);
	wipe_slot(&slot[next]);
	slot[next] = out;
	next = (next + 1) % SLOTS;
	errno = saved;
	return out;
}

void
kw_cli_print_data(const char *s)
{
	/* For a program, the bytes as they are; for a person, nothing that acts on the terminal. */
	printf("%s\n", isatty(STDOUT_FILENO) ? kw_cli_safe(s) : s ? s : "");
}
