/*
 * progress.c - the one progress line of the CLI (see progress.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/progress.h"
#include "common/clock.h"

void
kw_progress_init(struct kw_progress *p, bool want)
{
	*p = (struct kw_progress){ .on = want && isatty(STDERR_FILENO) };
}

void
kw_progress_show(struct kw_progress *p, const char *fmt, ...)
{
	char text[sizeof(p->text)];
	va_list ap;
	int64_t now;

	if (!p->on)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (strcmp(text, p->text) != 0) {
		memcpy(p->text, text, sizeof(text));
		p->pending = true;
	}
	/* The same text is not drawn again; a new one at most every KW_PROGRESS_EVERY_MS. */
	now = kw_mono_ms();
	if (!p->pending || (p->drawn && now - p->last_ms < KW_PROGRESS_EVERY_MS))
		return;
	p->last_ms = now;
	p->drawn = true;
	p->pending = false;
	/* \033[K: a shorter text must not leave the tail of a longer one. */
	fprintf(stderr, "\r\033[K%s", p->text);
	fflush(stderr);
}

void
kw_progress_end(struct kw_progress *p, bool keep)
{
	if (!p->on)
		return;
	if (keep)
		fprintf(stderr, "\r\033[K%s\n", p->text);
	else if (p->drawn)
		fputs("\r\033[K", stderr);
	fflush(stderr);
	p->drawn = false;
}
