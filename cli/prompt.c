/*
 * prompt.c - secret input (see prompt.h).
 *
 * While echo is off, a signal that ends the process (Ctrl-C, kill, a hangup)
 * must not leave the user's terminal without echo: the handler puts the
 * saved settings back (tcsetattr is async-signal-safe) and the read stops;
 * the line read so far is wiped, the old handlers return, and the signal is
 * raised again, so the process ends as that signal wants.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "client/keywarden.h"
#include "cli/prompt.h"

static const int restore_on[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

static struct termios saved_tty;
static volatile sig_atomic_t caught;

static void
on_signal(int sig)
{
	int saved = errno;

	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	caught = sig;
	errno = saved;
}

/* Catch the signals of restore_on (no SA_RESTART: read returns EINTR). */
static int
catch_signals(struct sigaction old[])
{
	struct sigaction sa = { .sa_handler = on_signal };
	size_t i;

	sigemptyset(&sa.sa_mask);
	for (i = 0; i < KW_ELEMENTSOF(restore_on); i++)
		sigaddset(&sa.sa_mask, restore_on[i]);
	caught = 0;
	for (i = 0; i < KW_ELEMENTSOF(restore_on); i++)
		if (sigaction(restore_on[i], &sa, &old[i]) < 0)
			goto undo;
	return 0;
 undo:
	while (i-- > 0)
		(void)sigaction(restore_on[i], &old[i], NULL);
	return KW_ERR_IO;
}

static void
release_signals(const struct sigaction old[])
{
	for (size_t i = 0; i < KW_ELEMENTSOF(restore_on); i++)
		(void)sigaction(restore_on[i], &old[i], NULL);
	/* Died of it, as it would have without us (the terminal is right again). */
	if (caught)
		raise(caught);
}

static int
read_tty_line(const char *prompt, size_t max, char **ret)
{
	struct sigaction old[KW_ELEMENTSOF(restore_on)];
	struct termios quiet;
	char *buf;
	size_t len = 0;
	int r = 0;

	if (!(buf = malloc(max + 1)))
		return KW_ERR_NOMEM;
	if (tcgetattr(STDIN_FILENO, &saved_tty) < 0 || catch_signals(old) < 0) {
		free(buf);
		return KW_ERR_IO;
	}
	quiet = saved_tty;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	fputs(prompt, stderr);
	fflush(stderr);
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0) {
		r = KW_ERR_IO;
		goto out;
	}
	while (!caught) {
		char ch;
		ssize_t n = read(STDIN_FILENO, &ch, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || ch == '\n')
			break;
		if (len == max) {
			r = KW_ERR_INVALID;
			continue;	/* drain the line, keep nothing more */
		}
		buf[len++] = ch;
	}
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	fputc('\n', stderr);
	if (caught)
		r = KW_ERR_IO;
 out:
	buf[len] = '\0';
	if (r < 0) {
		sodium_memzero(buf, max + 1);
		free(buf);
	} else {
		*ret = buf;
	}
	release_signals(old);
	return r;
}

int
kw_read_secret(const char *prompt, size_t max, char **ret_secret)
{
	char *s = NULL;
	size_t len;
	int r;

	if (isatty(STDIN_FILENO))
		r = read_tty_line(prompt, max, &s);
	else
		r = kw_read_fd(STDIN_FILENO, max, &s, &len);
	if (r < 0)
		return r;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
	if (len == 0) {
		kw_secret_free(s);
		return KW_ERR_INVALID;
	}
	*ret_secret = s;
	return 0;
}

void
kw_secret_free(char *secret)
{
	if (!secret)
		return;
	/* The whole block: a NUL in what was read must not hide the rest of it. */
	sodium_memzero(secret, malloc_usable_size(secret));
	free(secret);
}
