/*
 * prompt.c - secret input (see prompt.h).
 */
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "client/keywarden.h"
#include "cli/prompt.h"

static int
read_tty_line(const char *prompt, size_t max, char **ret)
{
	struct termios old, quiet;
	char *buf;
	size_t len = 0;
	int r = 0;

	if (!(buf = malloc(max + 1)))
		return KW_ERR_NOMEM;
	if (tcgetattr(STDIN_FILENO, &old) < 0) {
		free(buf);
		return KW_ERR_IO;
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	fputs(prompt, stderr);
	fflush(stderr);
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0) {
		free(buf);
		return KW_ERR_IO;
	}
	for (;;) {
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
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputc('\n', stderr);
	buf[len] = '\0';
	if (r < 0) {
		kw_secret_free(buf);
		return r;
	}
	*ret = buf;
	return 0;
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
	sodium_memzero(secret, strlen(secret));
	free(secret);
}
