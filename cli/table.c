/*
 * table.c - aligned tables (see table.h).
 */
#include <stdlib.h>
#include <string.h>

#include "cli/table.h"
#include "common/escape.h"

#define GAP 2

/* The cell as shown: "-" for NULL, escaped (malloc'd; NULL on ENOMEM). */
static char *
shown(const char *s)
{
	size_t n;
	char *out;

	if (!s)
		s = "-";
	n = kw_escaped_len(s) + 1;
	return (out = malloc(n)) ? kw_escape(s, out, n) : NULL;
}

void
kw_table_print(FILE *f, size_t ncols, const char *const *headers, const char *const *cells,
    size_t nrows)
{
	size_t width[16] = { 0 }, n = ncols * nrows;
	char **text;

	if (ncols == 0 || ncols > 16 || !(text = calloc(n + 1, sizeof(*text))))
		return;
	/* Cells come from the broker: nothing in them may act on the terminal. */
	for (size_t i = 0; i < n; i++)
		if (!(text[i] = shown(cells[i])))
			goto out;
	for (size_t c = 0; c < ncols; c++) {
		width[c] = strlen(headers[c]);
		for (size_t r = 0; r < nrows; r++) {
			size_t w = strlen(text[r * ncols + c]);
			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t r = 0; r <= nrows; r++) {
		for (size_t c = 0; c < ncols; c++) {
			const char *s = r == 0 ? headers[c] : text[(r - 1) * ncols + c];
			if (c + 1 < ncols)
				fprintf(f, "%-*s", (int)(width[c] + GAP), s);
			else
				fprintf(f, "%s\n", s);
		}
	}
 out:
	for (size_t i = 0; i < n; i++)
		free(text[i]);
	free(text);
}
