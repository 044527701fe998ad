/*
 * output.c - what a command leaves for a program to read: with --json, one
 * JSON value on stdout, whatever happened (keywarden(1), JSON OUTPUT).
 *
 * A command hands its result to kw_cli_print_json; the failures it reports
 * go through kw_cli_error, kw_cli_fail or kw_cli_usage, which print the one
 * line on stderr and keep it.  kw_cli_finish, at the end of main, prints
 * the result, with {"error": {"code", "message"}} added when the command
 * failed (an object of its own when there was no result).
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static json_t *result;		/* the command's JSON result, until kw_cli_finish */
static char error_code[32];
static char error_message[512];

/* Print v as one JSON text: indented, ASCII only, DEL escaped; the text wiped after. */
static void
emit(json_t *v)
{
	/*
	 * ASCII, so no C1 control goes out raw; jansson escapes C0 but not
	 * DEL, which is done here (the text may hold a key: wiped after).
	 */
	char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY |
	    JSON_ENSURE_ASCII);

	if (!text)
		return;
	for (const char *p = text; *p; ) {
		size_t n = strcspn(p, "\x7f");
		fwrite(p, 1, n, stdout);
		if (!p[n])
			break;
		fputs("\\u007f", stdout);
		p += n + 1;
	}
	fputc('\n', stdout);
	sodium_memzero(text, strlen(text));
	free(text);
}

void
kw_cli_print_json(json_t *v)
{
	/* One value per run: an earlier one (never expected) goes out as it was. */
	if (result)
		emit(result);
	json_decref(result);
	/*
	 * A copy: callers wipe what they printed (an enrollment's secret) as
	 * soon as they are done with it.  The JSON allocator wipes the copy.
	 */
	result = json_deep_copy(v);
}

void
kw_cli_record_error(const char *code, const char *message)
{
	snprintf(error_code, sizeof(error_code), "%s", code);
	snprintf(error_message, sizeof(error_message), "%s", message);
}

int
kw_cli_fail(int err, const char *what, const char *fmt, ...)
{
	char message[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	fprintf(stderr, "keywarden: %s: %s\n", what, message);
	kw_cli_record_error(kw_error_name(err), message);
	return kw_cli_exit_for(err);
}

void
kw_cli_error(const char *what, int err, const char *message)
{
	const char *text = message ? message : kw_strerror(err);
	const char *hint = "";
	char line[512];

	/*
	 * One line, always: apiKeyHelper callers show stderr as it is.  The
	 * broker's session messages already say to log in; say it where not.
	 */
	if (err == KW_ERR_SESSION && !strstr(text, "keywarden login"))
		hint = kw_cli_session_attached() ?
		    "; the cached session is no longer valid: run keywarden login" :
		    "; run keywarden login";
	snprintf(line, sizeof(line), "%s%s%s", err == KW_ERR_DENIED ? "denied: " : "", text, hint);
	fprintf(stderr, "keywarden: %s: %s\n", what, kw_cli_safe(line));
	kw_cli_record_error(kw_error_name(err), line);
}

/* The code a failure without a recorded reason gets, from its exit status. */
static const char *
code_for_exit(int ex)
{
	return ex == KW_EXIT_USAGE ? "usage" : ex == KW_EXIT_UNREACHABLE ? "unreachable" :
	    "failed";
}

void
kw_cli_finish(struct kw_cli *cli, int ex)
{
	json_t *out = result, *error;

	result = NULL;
	if (!cli->json || ex == KW_EXIT_OK) {
		if (out)
			emit(out);
		json_decref(out);
		return;
	}
	error = json_pack("{s:s, s:s}", "code", error_code[0] ? error_code : code_for_exit(ex),
	    "message", error_message[0] ? error_message : "failed (the reason is on stderr)");
	/* A result that is not an object (a list of records) is kept beside the error. */
	if (out && !json_is_object(out)) {
		json_t *wrap = json_pack("{s:o}", "result", out);
		out = wrap;
	}
	if (!out)
		out = json_object();
	if (out && error)
		json_object_set(out, "error", error);
	if (out)
		emit(out);
	json_decref(error);
	json_decref(out);
}
