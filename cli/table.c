/*
 * table.c - aligned tables (see table.h).
 */
#include <string.h>

#include "cli/table.h"

#define GAP 2

static const char *
cell(const char *const *cells, size_t i)
{
	return cells[i] ? cells[i] : "-";
}

void
kw_table_print(FILE *f, size_t ncols, const char *const *headers, const char *const *cells,
    size_t nrows)
{
	size_t width[16] = { 0 };

	if (ncols == 0 || ncols > 16)
		return;
	for (size_t c = 0; c < ncols; c++) {
		width[c] = strlen(headers[c]);
		for (size_t r = 0; r < nrows; r++) {
			size_t w = strlen(cell(cells, r * ncols + c));
			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t r = 0; r <= nrows; r++) {
		for (size_t c = 0; c < ncols; c++) {
			const char *s = r == 0 ? headers[c] : cell(cells, (r - 1) * ncols + c);
			if (c + 1 < ncols)
				fprintf(f, "%-*s", (int)(width[c] + GAP), s);
			else
				fprintf(f, "%s\n", s);
		}
	}
}
