/*
 * progress.h - one line of progress on stderr while a long operation runs,
 * redrawn in place and cleared (or kept) at the end.  Drawn only when stderr
 * is a terminal: piped or redirected, nothing is written, so scripts see only
 * the command's normal output.  Independent of --json, whose value is on
 * stdout.
 */
#ifndef KW_CLI_PROGRESS_H
#define KW_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/macros.h"

/* Redraws at most this often; the first draw is immediate. */
#define KW_PROGRESS_EVERY_MS 200

struct kw_progress {
	bool on;		/* stderr is a terminal (and the caller wants it) */
	bool drawn;		/* something is on the line */
	bool pending;		/* text has changed since it was drawn */
	int64_t last_ms;	/* when it was last drawn; 0: never */
	char text[160];		/* the latest text, drawn or not */
};

/* A progress line that draws only if stderr is a terminal and want is true. */
void kw_progress_init(struct kw_progress *p, bool want) KW_NONNULL(1);

/*
 * Set the text (printf format; foreign strings through kw_cli_safe) and
 * draw it if it changed and the last draw is KW_PROGRESS_EVERY_MS old.
 * Nothing off a terminal.
 */
void kw_progress_show(struct kw_progress *p, const char *fmt, ...)
	KW_NONNULL(1, 2) KW_PRINTF(2, 3);

/* Leave the latest text on its own line (keep) or clear the line. */
void kw_progress_end(struct kw_progress *p, bool keep) KW_NONNULL(1);

#endif
