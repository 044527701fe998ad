/*
 * qr.h - QR codes drawn in the terminal, for enrolling an authenticator app.
 */
#ifndef KW_QR_H
#define KW_QR_H

#include <stdio.h>

#include "common/macros.h"

/*
 * Draw text as a QR code (libqrencode, error correction level M) on f: two
 * module rows per line with UTF-8 half blocks, a 4-module quiet zone, black
 * on white set with ANSI colours so it scans on dark terminals too.
 * 0, KW_ERR_NOMEM or KW_ERR_INVALID (text too long for a QR code).
 */
int kw_qr_print(FILE *f, const char *text) KW_NONNULL(1, 2);

#endif
