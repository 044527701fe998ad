/*
 * table.h - aligned tables for human output.
 */
#ifndef KW_TABLE_H
#define KW_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include "common/macros.h"

/*
 * Print a header row and nrows rows of ncols cells (row-major, borrowed;
 * NULL prints "-") with every column starting at the same offset.  The last
 * column is not padded.  Cells are shown escaped (common/escape.h).
 */
void kw_table_print(FILE *f, size_t ncols, const char *const *headers,
    const char *const *cells, size_t nrows) KW_NONNULL(1, 3);

#endif
