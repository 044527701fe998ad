/*
 * escape.h - text from outside (the broker, a file, another PAM module) made
 * safe to show on a terminal.
 *
 * C0 control characters, DEL, C1 controls (U+0080..U+009F, which some
 * terminals act on as CSI and OSC) and bytes that are not UTF-8 are written
 * as \xHH; everything else, printable UTF-8 included, is kept.  So a
 * message, a record or a file can neither move the cursor, nor retitle the
 * window, nor rewrite what was printed before it.  The one escaper of the
 * CLI and the PAM module.
 */
#ifndef KW_ESCAPE_H
#define KW_ESCAPE_H

#include <stddef.h>

#include "common/macros.h"

/* Length of s escaped, without the terminating NUL. */
size_t kw_escaped_len(const char *s) KW_NONNULL(1);

/*
 * s escaped into out (out_len bytes, at least 1), NUL-terminated; cut
 * before the first character or escape that does not fit.  Returns out.
 */
char *kw_escape(const char *s, char *out, size_t out_len) KW_NONNULL(1, 2);

#endif
