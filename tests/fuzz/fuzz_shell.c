/*
 * fuzz_shell.c - libFuzzer target for the bash command-line parser
 * (policy/shell/shell.h).
 *
 * The input is a command line.  Whatever kw_sh_parse makes of it must keep
 * the contract: 0, KW_ERR_INVALID (with a reason, and a script) or
 * KW_ERR_NOMEM (without one); every text NUL-terminated and no longer than
 * the input; a command at depth 0 exactly when it is a command of the line
 * itself, never deeper than KW_SH_MAX_DEPTH; a here-document's body only on
 * a here-document, and there on success.  A word with no flag (nothing
 * quoted, escaped or expanded) is a piece of the input as written.  And a
 * blank in front changes nothing: " " + line parses as line does.  A
 * broken invariant aborts, so the fuzzer reports it as a crash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "common/errors.h"
#include "policy/shell/shell.h"

/* The input without backslash-newlines and backslashes: where a plain word must be. */
static char *
unescaped(const char *data, size_t size)
{
	char *out = malloc(size + 1);
	size_t n = 0;

	CHECK(out != NULL);
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\\' && i + 1 < size && data[i + 1] == '\n')
			i++;
		else if (data[i] != '\\')
			out[n++] = data[i];
	}
	out[n] = '\0';
	return out;
}

static void
check_word(const struct kw_sh_word *w, size_t size, const char *plain_text)
{
	CHECK(w->text != NULL);
	/* strlen reads to the NUL: ASan reports a text without one. */
	size_t len = strlen(w->text);
	CHECK(len <= size);
	CHECK((w->flags & ~(unsigned)(KW_SH_DYNAMIC | KW_SH_GLOB | KW_SH_TILDE |
	    KW_SH_QUOTED)) == 0);
	if (w->flags == 0 && plain_text && !strchr(w->text, '\\'))
		CHECK(strstr(plain_text, w->text) != NULL);
}

static void
check_cmd(const struct kw_sh_cmd *c, size_t size, const char *plain_text)
{
	CHECK(c->depth <= KW_SH_MAX_DEPTH);
	CHECK(c->origin == KW_SH_TOP || c->origin == KW_SH_CMDSUB ||
	    c->origin == KW_SH_PROCSUB);
	CHECK((c->depth == 0) == (c->origin == KW_SH_TOP));
	CHECK(c->argc + c->n_assigns + c->n_redirs > 0);
	for (size_t i = 0; i < c->n_assigns; i++) {
		check_word(&c->assigns[i], size, NULL);
		CHECK(strchr(c->assigns[i].text, '=') != NULL);
	}
	for (size_t i = 0; i < c->argc; i++)
		check_word(&c->argv[i], size, plain_text);
	for (size_t i = 0; i < c->n_redirs; i++) {
		const struct kw_sh_redir *rd = &c->redirs[i];
		check_word(&rd->target, size, plain_text);
		CHECK(rd->fd >= -1);
		CHECK(rd->op <= KW_SH_R_HERESTRING);
		if (rd->op != KW_SH_R_HEREDOC) {
			CHECK(rd->body == NULL && !rd->body_expands && !rd->strip_tabs);
			continue;
		}
		CHECK(rd->body_expands == !(rd->target.flags & KW_SH_QUOTED));
		if (rd->body)
			CHECK(strlen(rd->body) <= size);
	}
}

static void
check_script(int r, const struct kw_sh_script *sc, size_t size, const char *plain_text)
{
	CHECK(r == 0 || r == KW_ERR_INVALID || r == KW_ERR_NOMEM);
	if (r == KW_ERR_NOMEM) {
		CHECK(sc == NULL);
		return;
	}
	CHECK(sc != NULL);
	CHECK(memchr(sc->error, '\0', sizeof(sc->error)) != NULL);
	CHECK((r == 0) == (sc->error[0] == '\0'));
	for (size_t i = 0; i < sc->n_cmds; i++) {
		check_cmd(&sc->cmds[i], size, plain_text);
		/* On success every here-document found its body. */
		for (size_t j = 0; r == 0 && j < sc->cmds[i].n_redirs; j++)
			if (sc->cmds[i].redirs[j].op == KW_SH_R_HEREDOC)
				CHECK(sc->cmds[i].redirs[j].body != NULL);
	}
}

static bool
same_word(const struct kw_sh_word *a, const struct kw_sh_word *b)
{
	return a->flags == b->flags && strcmp(a->text, b->text) == 0;
}

static bool
same_cmd(const struct kw_sh_cmd *a, const struct kw_sh_cmd *b)
{
	if (a->argc != b->argc || a->n_assigns != b->n_assigns || a->n_redirs != b->n_redirs ||
	    a->origin != b->origin || a->depth != b->depth || a->piped_in != b->piped_in ||
	    a->background != b->background)
		return false;
	for (size_t i = 0; i < a->argc; i++)
		if (!same_word(&a->argv[i], &b->argv[i]))
			return false;
	for (size_t i = 0; i < a->n_assigns; i++)
		if (!same_word(&a->assigns[i], &b->assigns[i]))
			return false;
	for (size_t i = 0; i < a->n_redirs; i++) {
		const struct kw_sh_redir *x = &a->redirs[i], *y = &b->redirs[i];
		if (x->op != y->op || x->fd != y->fd || !same_word(&x->target, &y->target) ||
		    x->body_expands != y->body_expands || x->strip_tabs != y->strip_tabs ||
		    (x->body == NULL) != (y->body == NULL) ||
		    (x->body && strcmp(x->body, y->body) != 0))
			return false;
	}
	return true;
}

/* " " + line parses as line does. */
static void
check_blank_in_front(const uint8_t *data, size_t size, int r, const struct kw_sh_script *sc)
{
	struct kw_sh_script *padded = NULL;
	char *text = malloc(size + 1);
	int r2;

	CHECK(text != NULL);
	text[0] = ' ';
	memcpy(text + 1, data, size);
	r2 = kw_sh_parse(text, size + 1, &padded);
	if (r == KW_ERR_NOMEM || r2 == KW_ERR_NOMEM)
		goto out;
	CHECK(r2 == r);
	CHECK(strcmp(padded->error, sc->error) == 0);
	CHECK(padded->n_cmds == sc->n_cmds);
	for (size_t i = 0; i < sc->n_cmds; i++)
		CHECK(same_cmd(&padded->cmds[i], &sc->cmds[i]));
 out:
	kw_sh_free(padded);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kw_sh_script *sc = NULL;
	char *plain_text = NULL;
	int r;

	if (size > KW_SH_MAX_LINE + 16)
		return 0;
	r = kw_sh_parse((const char *)data, size, &sc);
	if (!memchr(data, '\0', size))
		plain_text = unescaped((const char *)data, size);
	check_script(r, sc, size, plain_text);
	if (size < KW_SH_MAX_LINE && r != KW_ERR_NOMEM)
		check_blank_in_front(data, size, r, sc);
	kw_sh_free(sc);
	free(plain_text);
	return 0;
}
