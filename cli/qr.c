/*
 * qr.c - QR codes in the terminal (see qr.h).
 *
 * Each character cell shows two modules, the upper one in the foreground
 * of U+2580 (upper half block) and the lower in U+2584: dark modules are
 * drawn, light ones are the background.  The colours are set explicitly
 * (black on bright white) instead of trusting the terminal's, because phone
 * scanners read dark-on-light codes and many terminals are light-on-dark.
 */
#include <errno.h>
#include <qrencode.h>
#include <stdbool.h>
#include <string.h>

#include "client/keywarden.h"
#include "cli/qr.h"

#define QUIET		4			/* modules of light margin (ISO 18004) */
#define COLOURS		"\033[30;107m"		/* black on bright white */
#define RESET		"\033[0m"

static bool
dark(const QRcode *q, int x, int y)
{
	/* The quiet zone and the row below an odd-sized code are light. */
	x -= QUIET;
	y -= QUIET;
	if (x < 0 || y < 0 || x >= q->width || y >= q->width)
		return false;
	return q->data[y * q->width + x] & 1;
}

int
kw_qr_print(FILE *f, const char *text)
{
	QRcode *q;
	int size;

	if (!(q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1)))
		return errno == ENOMEM ? KW_ERR_NOMEM : KW_ERR_INVALID;
	size = q->width + 2 * QUIET;
	for (int y = 0; y < size; y += 2) {
		fputs(COLOURS, f);
		for (int x = 0; x < size; x++) {
			bool top = dark(q, x, y), bottom = dark(q, x, y + 1);
			fputs(top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ", f);
		}
		/* Reset before the newline so the background does not run to the edge. */
		fputs(RESET "\n", f);
	}
	QRcode_free(q);
	return 0;
}
