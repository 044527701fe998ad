/*
 * progress.c - the one progress line of the CLI (see progress.h).
 */
#include <stdarg.h>
#include <stdio.h>
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
	va_list ap;
	int64_t now;

	if (!p->on)
		return;
	va_start(ap, fmt);
	vsnprintf(p->text, sizeof(p->text), fmt, ap);
	va_end(ap);
	now = kw_mono_ms();
	if (p->drawn && now - p->last_ms < KW_PROGRESS_EVERY_MS)
		return;
	p->last_ms = now;
	p->drawn = true;
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
