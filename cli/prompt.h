/*
 * prompt.h - reading a secret from the user without it touching argv or
 * the terminal's echo.
 */
#ifndef KW_PROMPT_H
#define KW_PROMPT_H

#include <stddef.h>

#include "common/macros.h"

/*
 * Read one secret: at a terminal, prompt on stderr and read a line with echo
 * off; otherwise read all of stdin (at most max bytes).  Trailing newlines
 * are dropped.  *ret_secret is the caller's and must be released with
 * kw_secret_free.  0, KW_ERR_IO, KW_ERR_INVALID (too long or empty).
 */
int kw_read_secret(const char *prompt, size_t max, char **ret_secret)
	KW_WUR KW_NONNULL(1, 3);

/* Wipe and free a secret from kw_read_secret.  Accepts NULL. */
void kw_secret_free(char *secret);

#endif
