/*
 * enroll.c - showing a TOTP enrollment once (see enroll.h).
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/enroll.h"
#include "cli/qr.h"

static const char *
str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return kw_cli_safe(s ? s : "?");
}

void
kw_enroll_print(json_t *e, bool force_qr)
{
	json_t *codes = json_object_get(e, "recovery_codes"), *c;
	const char *uri = json_string_value(json_object_get(e, "otpauth_uri"));
	size_t i;

	printf("\nTOTP enrollment for %s\n", str(e, "user"));
	printf("Scan the QR code with an authenticator app, or enter the secret by hand.\n\n");
	printf("otpauth URI  %s\n", kw_cli_safe(uri ? uri : "?"));
	fflush(stdout);
	/* A QR code piped into a file or a script is noise; --qr asks for it anyway. */
	if (uri && (force_qr || isatty(STDOUT_FILENO))) {
		putchar('\n');
		if (kw_qr_print(stdout, uri) < 0)
			fprintf(stderr, "keywarden: could not draw the QR code; use the URI or the secret\n");
		putchar('\n');
	}
	printf("secret       %s  (base32; SHA1, 6 digits, 30 s)\n\n", str(e, "secret"));
	printf("Recovery codes (each works once instead of a code; they are shown only this\n"
	    "once, so store them somewhere safe now):\n");
	/* Two to a line, the way they would be written down. */
	json_array_foreach(codes, i, c) {
		bool last = i % 2 == 1 || i + 1 == json_array_size(codes);
		const char *code = json_string_value(c);
		printf(last ? "%s\n" : "  %-14s", kw_cli_safe(code ? code : "?"));
	}
	fflush(stdout);
}

/* jansson frees strings without clearing them; the object is about to go. */
static void
wipe_string(json_t *s)
{
	const char *v = json_string_value(s);

	if (v)
		sodium_memzero((char *)v, json_string_length(s));
}

void
kw_enroll_wipe(json_t *e)
{
	json_t *c;
	size_t i;

	if (!json_is_object(e))
		return;
	wipe_string(json_object_get(e, "secret"));
	wipe_string(json_object_get(e, "otpauth_uri"));
	json_array_foreach(json_object_get(e, "recovery_codes"), i, c)
		wipe_string(c);
}
