/*
 * test_shell.c - the bash command-line parser (policy/shell/shell.h): for a
 * line, the exact commands it would run, with their words, flags,
 * redirections, origin and depth; the errors; and the golden corpus
 * tests/policy/shell-golden.txt (path from KW_SH_GOLDEN, else relative to
 * the top of the tree, where make unit runs).
 *
 * A parse is compared in one text form, a line per command:
 *
 *   cmd[DEPTH,ORIGIN(,pipe)(,bg)] +ASSIGN... WORD... ; REDIR ; ...
 *
 * ORIGIN is top, sub or proc.  A word is its text with a space, a backslash
 * and control bytes escaped (\  \\ \n \t \xHH), then {DGTQ} for its flags
 * (dynamic, glob, tilde, quoted) when it has any.  A redirection is FD OP
 * TARGET with FD "&" for &> and &>>, and for a here-document its body and
 * "expands" when the body's $( ) would run ("(none)" when the line ended first).  A line that does not parse
 * ends with "error: REASON"; one with no command is "(no commands)".
 *
 * `build/tests/test_shell --render < FILE` prints the form for FILE's text
 * (for writing new golden cases; each must be checked by hand against bash).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/errors.h"
#include "policy/shell/shell.h"

struct out {
	char *s;
	size_t len, cap;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		o->cap = (o->len + n + 1) * 2;
		o->s = realloc(o->s, o->cap);
		assert_non_null(o->s);
	}
	memcpy(o->s + o->len, s, n);
	o->len += n;
	o->s[o->len] = '\0';
}

static void
puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void
put_escaped(struct out *o, const char *s)
{
	char hex[8];

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == ' ' || c == '\\')
			put(o, "\\", 1), put(o, s, 1);
		else if (c == '\n')
			puts_(o, "\\n");
		else if (c == '\t')
			puts_(o, "\\t");
		else if (c < 0x20 || c == 0x7f) {
			snprintf(hex, sizeof(hex), "\\x%02x", c);
			puts_(o, hex);
		} else
			put(o, s, 1);
	}
}

static void
put_word(struct out *o, const struct kw_sh_word *w)
{
	if (w->text[0] == '\0')
		puts_(o, "''");
	put_escaped(o, w->text);
	if (!w->flags)
		return;
	puts_(o, "{");
	if (w->flags & KW_SH_DYNAMIC)
		puts_(o, "D");
	if (w->flags & KW_SH_GLOB)
		puts_(o, "G");
	if (w->flags & KW_SH_TILDE)
		puts_(o, "T");
	if (w->flags & KW_SH_QUOTED)
		puts_(o, "Q");
	puts_(o, "}");
}

static const char *const redir_ops[] = {
	[KW_SH_R_IN] = "<", [KW_SH_R_OUT] = ">", [KW_SH_R_APPEND] = ">>",
	[KW_SH_R_INOUT] = "<>", [KW_SH_R_DUP] = ">&", [KW_SH_R_HEREDOC] = "<<",
	[KW_SH_R_HERESTRING] = "<<<",
};

static void
put_redir(struct out *o, const struct kw_sh_redir *rd)
{
	char fd[16];

	snprintf(fd, sizeof(fd), "%d", rd->fd);
	puts_(o, " ; ");
	puts_(o, rd->fd == -1 ? "&" : fd);
	puts_(o, redir_ops[rd->op]);
	if (rd->strip_tabs)
		puts_(o, "-");
	puts_(o, " ");
	put_word(o, &rd->target);
	if (rd->op != KW_SH_R_HEREDOC) {
		assert_null(rd->body);
		return;
	}
	puts_(o, " body=");
	if (rd->body)
		put_escaped(o, rd->body);
	else
		puts_(o, "(none)");	/* the line ended before it */
	if (rd->body_expands)
		puts_(o, " expands");
}

static const char *const origins[] = {
	[KW_SH_TOP] = "top", [KW_SH_CMDSUB] = "sub", [KW_SH_PROCSUB] = "proc",
};

static void
put_cmd(struct out *o, const struct kw_sh_cmd *c)
{
	char head[64];

	snprintf(head, sizeof(head), "cmd[%u,%s%s%s]", c->depth, origins[c->origin],
	    c->piped_in ? ",pipe" : "", c->background ? ",bg" : "");
	puts_(o, head);
	for (size_t i = 0; i < c->n_assigns; i++) {
		puts_(o, " +");
		put_word(o, &c->assigns[i]);
	}
	for (size_t i = 0; i < c->argc; i++) {
		puts_(o, " ");
		put_word(o, &c->argv[i]);
	}
	for (size_t i = 0; i < c->n_redirs; i++)
		put_redir(o, &c->redirs[i]);
	puts_(o, "\n");
}

/* The parse of text in the form above (the caller frees it). */
static char *
render(const char *text, size_t len)
{
	struct kw_sh_script *sc = NULL;
	struct out o = { 0 };
	int r = kw_sh_parse(text, len, &sc);

	assert_non_null(sc);
	assert_true(r == 0 || r == KW_ERR_INVALID);
	for (size_t i = 0; i < sc->n_cmds; i++)
		put_cmd(&o, &sc->cmds[i]);
	if (r == 0) {
		assert_string_equal(sc->error, "");
		if (sc->n_cmds == 0)
			puts_(&o, "(no commands)\n");
	} else {
		assert_true(sc->error[0] != '\0');
		puts_(&o, "error: ");
		puts_(&o, sc->error);
		puts_(&o, "\n");
	}
	kw_sh_free(sc);
	return o.s;
}

static void
check(const char *text, const char *want)
{
	char *got = render(text, strlen(text));

	if (strcmp(got, want) != 0)
		fail_msg("for: %s\nwant:\n%sgot:\n%s", text, want, got);
	free(got);
}

static void
test_quote_removal(void **state)
{
	check("\"r\"m -rf", "cmd[0,top] rm{Q} -rf\n");
	check("r\\m", "cmd[0,top] rm{Q}\n");
	check("'rm'", "cmd[0,top] rm{Q}\n");
	check("'r''m' x", "cmd[0,top] rm{Q} x\n");
	check("echo 'a \"b\" $c'", "cmd[0,top] echo a\\ \"b\"\\ $c{Q}\n");
	/* Inside "...", a backslash quotes only $ ` \ " and newline. */
	check("echo \"\\\" \\\\ \\$x \\` \\a\"", "cmd[0,top] echo \"\\ \\\\\\ $x\\ `\\ \\\\a{Q}\n");
	check("echo \"$HOME/x\"", "cmd[0,top] echo $HOME/x{DQ}\n");
	/* $'...' decodes; a NUL ends the string, as for bash. */
	check("$'\\x72m' $'a\\tb\\n' $'\\101\\'' $'\\u00e9' $'a\\0b'c $'\\z'",
	    "cmd[0,top] rm{Q} a\\tb\\n{Q} A'{Q} \xc3\xa9{Q} ac{Q} \\\\z{Q}\n");
	check("echo $\"hi $(id)\"", "cmd[1,sub] id\ncmd[0,top] echo hi\\ $(id){DQ}\n");
	/* Backslash-newline joins lines, also inside a word and a keyword. */
	check("r\\\nm x \\\n -f", "cmd[0,top] rm x -f\n");
	check("i\\\nf true; then :; fi", "cmd[0,top] true\ncmd[0,top] :\n");
	check("echo a\\;rm x", "cmd[0,top] echo a;rm{Q} x\n");
	check("echo ''", "cmd[0,top] echo ''{Q}\n");
	check("echo \\", "cmd[0,top] echo \\\\\n");
}

static void
test_operators(void **state)
{
	check("ls; rm -rf /", "cmd[0,top] ls\ncmd[0,top] rm -rf /\n");
	check("ls && rm x || rm y", "cmd[0,top] ls\ncmd[0,top] rm x\ncmd[0,top] rm y\n");
	check("ls | sh", "cmd[0,top] ls\ncmd[0,top,pipe] sh\n");
	check("ls |& sh | cat", "cmd[0,top] ls\ncmd[0,top,pipe] sh\ncmd[0,top,pipe] cat\n");
	check("ls & rm x", "cmd[0,top,bg] ls\ncmd[0,top] rm x\n");
	check("a && b & c", "cmd[0,top,bg] a\ncmd[0,top,bg] b\ncmd[0,top] c\n");
	check("ls\nrm x\n\n", "cmd[0,top] ls\ncmd[0,top] rm x\n");
	check("! ls | wc", "cmd[0,top] ls\ncmd[0,top,pipe] wc\n");
	check("ls &&\n rm x |\n sh", "cmd[0,top] ls\ncmd[0,top] rm x\ncmd[0,top,pipe] sh\n");
	check("time -p ls", "cmd[0,top] ls\n");
	check("coproc rm x", "cmd[0,top,bg] rm x\n");
	check("ls;rm;", "cmd[0,top] ls\ncmd[0,top] rm\n");
}

static void
test_compounds(void **state)
{
	check("{ rm x; }", "cmd[0,top] rm x\n");
	check("(rm x)", "cmd[0,top] rm x\n");
	check("( (a) ; b )", "cmd[0,top] a\ncmd[0,top] b\n");
	check("if a; then b; elif c; then d; else e; fi",
	    "cmd[0,top] a\ncmd[0,top] b\ncmd[0,top] c\ncmd[0,top] d\ncmd[0,top] e\n");
	check("while read l; do rm \"$l\"; done < list",
	    "cmd[0,top] read l\ncmd[0,top] rm $l{DQ}\ncmd[0,top] ; 0< list\n");
	check("until a; do b; done", "cmd[0,top] a\ncmd[0,top] b\n");
	check("for f in a $(ls); do rm $f; done",
	    "cmd[1,sub] ls\ncmd[0,top] rm $f{D}\n");
	check("for f\ndo rm; done", "cmd[0,top] rm\n");
	check("for ((i=0; i<$(n); i++)); do x; done", "cmd[1,sub] n\ncmd[0,top] x\n");
	check("for x in a; { y; }", "cmd[0,top] y\n");
	check("select x in a b; do rm $x; done", "cmd[0,top] rm $x{D}\n");
	check("case $(a) in\n x|y) rm b;;\n (*) c;& z) ;;& esac",
	    "cmd[1,sub] a\ncmd[0,top] rm b\ncmd[0,top] c\n");
	check("case x in esac", "(no commands)\n");
	check("f() { rm x; }; f", "cmd[0,top] rm x\ncmd[0,top] f\n");
	check("function g { rm x; }", "cmd[0,top] rm x\n");
	check("function h ( ) ( rm x )", "cmd[0,top] rm x\n");
	check("f ()\n{ a; } > log", "cmd[0,top] a\ncmd[0,top] ; 1> log\n");
	/* Keywords only where a command starts. */
	check("echo if then fi done { }", "cmd[0,top] echo if then fi done { }\n");
	check("\"if\" x", "cmd[0,top] if{Q} x\n");
	check("in x", "cmd[0,top] in x\n");
	check("{ a; b; } > out 2>&1 &",
	    "cmd[0,top,bg] a\ncmd[0,top,bg] b\ncmd[0,top,bg] ; 1> out ; 2>& 1\n");
	check("ls | while read l; do eval \"$l\"; done",
	    "cmd[0,top] ls\ncmd[0,top,pipe] read l\ncmd[0,top,pipe] eval $l{DQ}\n");
}

static void
test_test_and_arith_commands(void **state)
{
	check("[[ -f x ]] && rm y", "cmd[0,top] [[ -f x ]]\ncmd[0,top] rm y\n");
	check("[[ $x =~ ^(a|b)$ && y < z || ( a ) ]]",
	    "cmd[0,top] [[ $x{D} =~ ^(a|b)$ && y < z || ( a ) ]]\n");
	check("[[ $(rm x) ]]", "cmd[1,sub] rm x\ncmd[0,top] [[ $(rm\\ x){D} ]]\n");
	check("[[ x ]] > f", "cmd[0,top] [[ x ]] ; 1> f\n");
	check("(( i++ )) && ((x=(1+2)*3))", "cmd[0,top] (( i++ ))\ncmd[0,top] (( x=(1+2)*3 ))\n");
	check("(( $(rm x) ))", "cmd[1,sub] rm x\ncmd[0,top] (( $(rm\\ x){D} ))\n");
	/* "((" that does not close with "))" is two subshells. */
	check("((ls); rm x)", "cmd[0,top] ls\ncmd[0,top] rm x\n");
	check("[ -f x ]", "cmd[0,top] [ -f x ]\n");
}

static void
test_substitutions(void **state)
{
	check("$(rm x)", "cmd[1,sub] rm x\ncmd[0,top] $(rm\\ x){D}\n");
	check("`rm x`", "cmd[1,sub] rm x\ncmd[0,top] `rm\\ x`{D}\n");
	check("echo \"$(rm x)\"", "cmd[1,sub] rm x\ncmd[0,top] echo $(rm\\ x){DQ}\n");
	check("echo \"`rm x`\"", "cmd[1,sub] rm x\ncmd[0,top] echo `rm\\ x`{DQ}\n");
	check("cat <(rm x) >(tee y)",
	    "cmd[1,proc] rm x\ncmd[1,proc] tee y\ncmd[0,top] cat <(rm\\ x){D} >(tee\\ y){D}\n");
	check("a $(b $(c) `d`)",
	    "cmd[2,sub] c\ncmd[2,sub] d\ncmd[1,sub] b $(c){D} `d`{D}\ncmd[0,top] a $(b\\ $(c)\\ `d`){D}\n");
	check("echo `echo \\`rm x\\``",
	    "cmd[2,sub] rm x\ncmd[1,sub] echo `rm\\ x`{D}\ncmd[0,top] echo `echo\\ \\\\`rm\\ x\\\\``{D}\n");
	check("$((1+$(rm x)))", "cmd[1,sub] rm x\ncmd[0,top] $((1+$(rm\\ x))){D}\n");
	/* $(( that does not close with )) is a $( holding a subshell. */
	check("echo $((ls); rm x)",
	    "cmd[1,sub] ls\ncmd[1,sub] rm x\ncmd[0,top] echo $((ls);\\ rm\\ x){D}\n");
	check("echo $(echo \")\" ')' \\))",
	    "cmd[1,sub] echo ){Q} ){Q} ){Q}\ncmd[0,top] echo $(echo\\ \")\"\\ ')'\\ \\\\)){D}\n");
	check("echo $(case x in a) rm y;; esac)",
	    "cmd[1,sub] rm y\ncmd[0,top] echo $(case\\ x\\ in\\ a)\\ rm\\ y;;\\ esac){D}\n");
	check("echo ${x:-$(rm y)}", "cmd[1,sub] rm y\ncmd[0,top] echo ${x:-$(rm\\ y)}{D}\n");
	check("ls | echo $(sh)", "cmd[0,top] ls\ncmd[1,sub,pipe] sh\ncmd[0,top,pipe] echo $(sh){D}\n");
	check("export A=$(rm x) B=`id`",
	    "cmd[1,sub] rm x\ncmd[1,sub] id\ncmd[0,top] export A=$(rm\\ x){D} B=`id`{D}\n");
}

static void
test_expansion_flags(void **state)
{
	check("echo $V ${V} ${V:-x} $1 $@ $? $$ ${#a[@]} $",
	    "cmd[0,top] echo $V{D} ${V}{D} ${V:-x}{D} $1{D} $@{D} $?{D} $${D} ${#a[@]}{D} $\n");
	check("ls *.c a? [ab] a[ ] ]", "cmd[0,top] ls *.c{G} a?{G} [ab]{G} a[ ] ]\n");
	check("ls \"*\" '?' \\*", "cmd[0,top] ls *{Q} ?{Q} *{Q}\n");
	check("cd ~ ~/x ~u/y a~ \"~\"", "cmd[0,top] cd ~{T} ~/x{T} ~u/y{T} a~ ~{Q}\n");
	check("echo {a,b} x{1..3} {} {a} \"{a,b}\"",
	    "cmd[0,top] echo {a,b}{G} x{1..3}{G} {} {a} {a,b}{Q}\n");
	check("find . -exec rm {} \\;", "cmd[0,top] find . -exec rm {} ;{Q}\n");
}

static void
test_redirections(void **state)
{
	check("ls 2>/dev/null >&2 <&0 3>&- 4<>f &>g &>>h >>i >|j >&k 5>&6- <in",
	    "cmd[0,top] ls ; 2> /dev/null ; 1>& 2 ; 0>& 0 ; 3>& - ; 4<> f ; &> g ; &>> h"
	    " ; 1>> i ; 1> j ; &> k ; 5>& 6- ; 0< in\n");
	check("> f", "cmd[0,top] ; 1> f\n");
	check("cat <<<$(rm x)", "cmd[1,sub] rm x\ncmd[0,top] cat ; 0<<< $(rm\\ x){D}\n");
	check("echo > $(rm x)", "cmd[1,sub] rm x\ncmd[0,top] echo ; 1> $(rm\\ x){D}\n");
	/* N is a descriptor only right before the operator; 2>(...) is a word. */
	check("echo 2 >f 2>(rm x)",
	    "cmd[1,proc] rm x\ncmd[0,top] echo 2 2>(rm\\ x){D} ; 1> f\n");
}

static void
test_heredocs(void **state)
{
	check("cat > /etc/x <<EOF\nhello $(id)\nEOF",
	    "cmd[0,top] cat ; 1> /etc/x ; 0<< EOF body=hello\\ $(id)\\n expands\n"
	    "cmd[1,sub] id\n");
	check("cat <<'EOF'\n$(rm x)\nEOF\n", "cmd[0,top] cat ; 0<< EOF{Q} body=$(rm\\ x)\\n\n");
	check("cat <<\"E\"F\nx\nEF", "cmd[0,top] cat ; 0<< EF{Q} body=x\\n\n");
	check("cat <<-EOF\n\t\ta\n\tEOF\n", "cmd[0,top] cat ; 0<<- EOF body=a\\n expands\n");
	check("cat <<A <<B; echo x\na\nA\nb\nB\necho after",
	    "cmd[0,top] cat ; 0<< A body=a\\n expands ; 0<< B body=b\\n expands\n"
	    "cmd[0,top] echo x\ncmd[0,top] echo after\n");
	check("cat <<A | sh\nrm x\nA", "cmd[0,top] cat ; 0<< A body=rm\\ x\\n expands\n"
	    "cmd[0,top,pipe] sh\n");
	check("cat <<EOF\n`rm x`\nEOF", "cmd[0,top] cat ; 0<< EOF body=`rm\\ x`\\n expands\n"
	    "cmd[1,sub] rm x\n");
	check("x=$(cat <<EOF\n$(id)\nEOF\n)",
	    "cmd[1,sub] cat ; 0<< EOF body=$(id)\\n expands\ncmd[2,sub] id\n"
	    "cmd[0,top] +x=$(cat\\ <<EOF\\n$(id)\\nEOF\\n){D}\n");
	check("cat <<EOF\nEOFx\n", "cmd[0,top] cat ; 0<< EOF body=(none) expands\n"
	    "error: unterminated here-document (no line 'EOF')\n");
	check("cat <<EOF", "cmd[0,top] cat ; 0<< EOF body=(none) expands\n"
	    "error: unterminated here-document (no newline after <<EOF)\n");
}

static void
test_assignments(void **state)
{
	check("FOO=1 rm x", "cmd[0,top] +FOO=1 rm x\n");
	check("A=1 B+=2 C[1]=3 cmd D=4", "cmd[0,top] +A=1 +B+=2 +C[1]=3 cmd D=4\n");
	check("x=1", "cmd[0,top] +x=1\n");
	check("\"A\"=1 x", "cmd[0,top] A=1{Q} x\n");
	check("1A=2", "cmd[0,top] 1A=2\n");
	check("a=(1 $(rm x) 3) b=2 cmd",
	    "cmd[1,sub] rm x\ncmd[0,top] +a=(1\\ $(rm\\ x)\\ 3){D} +b=2 cmd\n");
	check("A=* B={a,b} ls", "cmd[0,top] +A=* +B={a,b} ls\n");
	check("x=$(rm y) ls", "cmd[1,sub] rm y\ncmd[0,top] +x=$(rm\\ y){D} ls\n");
}

static void
test_comments(void **state)
{
	check("ls # ; rm x", "cmd[0,top] ls\n");
	check("ls #x\nrm y", "cmd[0,top] ls\ncmd[0,top] rm y\n");
	check("ls a#b", "cmd[0,top] ls a#b\n");
	check("ls;#x", "cmd[0,top] ls\n");
	check("# only\n  # comments", "(no commands)\n");
	check("", "(no commands)\n");
	check(" \n\t\n", "(no commands)\n");
}

static void
test_errors(void **state)
{
	check("echo \"abc", "error: unterminated \"\n");
	check("echo 'abc", "error: unterminated '\n");
	check("echo $'abc", "error: unterminated $'\n");
	check("ls; echo $(ls", "cmd[0,top] ls\ncmd[1,sub] ls\nerror: unterminated $(\n");
	check("echo `ls", "error: unterminated `\n");
	check("echo ${x", "error: unterminated ${\n");
	check("cat <(ls", "cmd[1,proc] ls\nerror: unterminated process substitution\n");
	check("(ls", "cmd[0,top] ls\nerror: missing ')'\n");
	check("ls)", "cmd[0,top] ls\nerror: unexpected ')'\n");
	check("{ ls", "cmd[0,top] ls\nerror: missing '}'\n");
	check("{ ls }", "cmd[0,top] ls }\nerror: missing '}'\n");
	check("ls; }", "cmd[0,top] ls\nerror: unexpected '}'\n");
	check("fi", "error: unexpected 'fi'\n");
	check("done", "error: unexpected 'done'\n");
	check("esac", "error: unexpected 'esac'\n");
	check("if true; rm x; fi", "cmd[0,top] true\ncmd[0,top] rm x\nerror: unexpected 'fi'\n");
	check("if true; then rm x", "cmd[0,top] true\ncmd[0,top] rm x\nerror: missing 'fi'\n");
	check("while true; rm x; done",
	    "cmd[0,top] true\ncmd[0,top] rm x\nerror: unexpected 'done'\n");
	check("for x in a b", "error: missing 'do'\n");
	check("case x in a) ls", "cmd[0,top] ls\nerror: missing 'esac'\n");
	check(";", "error: unexpected ';'\n");
	check("ls;;", "cmd[0,top] ls\nerror: unexpected ';;'\n");
	check("ls |", "cmd[0,top] ls\nerror: unexpected end of line\n");
	check("ls & ;", "cmd[0,top,bg] ls\nerror: unexpected ';'\n");
	check("ls >", "error: a redirection without a target\n");
	check("[[ a ; ]]", "error: unexpected ';' in [[ ]]\n");
	/* "((" without "))" is two subshells, as for bash; for (( has no such reading. */
	check("(( 1 )", "cmd[0,top] 1\nerror: missing ')'\n");
	check("for ((i=0; do x; done", "error: missing '))'\n");
	check("echo a (", "cmd[0,top] echo a\nerror: unexpected '('\n");
	check("echo (", "error: expected ')' after '('\n");
}

static void
test_limits(void **state)
{
	struct kw_sh_script *sc = NULL;
	char *text = malloc(KW_SH_MAX_LINE + 2);

	/* Eight levels of substitution parse; a ninth is refused. */
	check("$($($($($($($($(x))))))))",
	    "cmd[8,sub] x\ncmd[7,sub] $(x){D}\ncmd[6,sub] $($(x)){D}\n"
	    "cmd[5,sub] $($($(x))){D}\ncmd[4,sub] $($($($(x)))){D}\n"
	    "cmd[3,sub] $($($($($(x))))){D}\ncmd[2,sub] $($($($($($(x)))))){D}\n"
	    "cmd[1,sub] $($($($($($($(x))))))){D}\ncmd[0,top] $($($($($($($($(x)))))))){D}\n");
	check("$($($($($($($($($(x)))))))))", "error: nested too deeply\n");
	check("{ { { { { { { { { x; }; }; }; }; }; }; }; }; }", "error: nested too deeply\n");
	check("if a; then while b; do { (c); }; done; fi",
	    "cmd[0,top] a\ncmd[0,top] b\ncmd[0,top] c\n");

	/* A NUL byte, and more than KW_SH_MAX_LINE bytes. */
	assert_int_equal(kw_sh_parse("ls\0rm x", 7, &sc), KW_ERR_INVALID);
	assert_int_equal(sc->n_cmds, 0);
	assert_string_equal(sc->error, "a NUL byte");
	kw_sh_free(sc);
	assert_non_null(text);
	memset(text, 'a', KW_SH_MAX_LINE + 1);
	assert_int_equal(kw_sh_parse(text, KW_SH_MAX_LINE, &sc), 0);
	assert_int_equal(sc->n_cmds, 1);
	assert_int_equal(strlen(sc->cmds[0].argv[0].text), KW_SH_MAX_LINE);
	kw_sh_free(sc);
	assert_int_equal(kw_sh_parse(text, KW_SH_MAX_LINE + 1, &sc), KW_ERR_INVALID);
	assert_int_equal(sc->n_cmds, 0);
	assert_non_null(strstr(sc->error, "longer than"));
	kw_sh_free(sc);
	free(text);
	kw_sh_free(NULL);
}

/* The fields the text form does not show as such. */
static void
test_fields(void **state)
{
	struct kw_sh_script *sc = NULL;
	const struct kw_sh_cmd *c;

	static const char text[] = "A=1 cat <<-'E' 2>&1 &\n\tb\n\tE";

	assert_int_equal(kw_sh_parse(text, strlen(text), &sc), 0);
	assert_int_equal(sc->n_cmds, 1);
	c = &sc->cmds[0];
	assert_int_equal(c->n_assigns, 1);
	assert_string_equal(c->assigns[0].text, "A=1");
	assert_int_equal(c->argc, 1);
	assert_string_equal(c->argv[0].text, "cat");
	assert_int_equal(c->argv[0].flags, 0);
	assert_int_equal(c->n_redirs, 2);
	assert_int_equal(c->redirs[0].op, KW_SH_R_HEREDOC);
	assert_int_equal(c->redirs[0].fd, 0);
	assert_string_equal(c->redirs[0].target.text, "E");
	assert_int_equal(c->redirs[0].target.flags, KW_SH_QUOTED);
	assert_string_equal(c->redirs[0].body, "b\n");
	assert_false(c->redirs[0].body_expands);
	assert_true(c->redirs[0].strip_tabs);
	assert_int_equal(c->redirs[1].op, KW_SH_R_DUP);
	assert_int_equal(c->redirs[1].fd, 2);
	assert_string_equal(c->redirs[1].target.text, "1");
	assert_null(c->redirs[1].body);
	assert_int_equal(c->origin, KW_SH_TOP);
	assert_int_equal(c->depth, 0);
	assert_true(c->background);
	assert_false(c->piped_in);
	assert_string_equal(sc->error, "");
	kw_sh_free(sc);
}

/*
 * A 10 KB line of quotes and substitutions (831 commands) parses in about
 * 0.3 ms (a few under ASan).  The bound is loose for a loaded machine but
 * far below what code quadratic in the line's length would take.
 */
static void
test_speed(void **state)
{
	static const char unit[] = "echo \"a $(ls -l) b\" 'c' x\\ y | cat; ";
	char *text = malloc(KW_SH_MAX_LINE + 1);
	struct kw_sh_script *sc = NULL;
	size_t n = 0, per = sizeof(unit) - 1;
	struct timespec a, b;
	long ns;

	assert_non_null(text);
	while (n + per <= KW_SH_MAX_LINE)
		memcpy(text + n, unit, per), n += per;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(kw_sh_parse(text, n, &sc), 0);
		assert_int_equal(sc->n_cmds, 3 * (n / per));
		kw_sh_free(sc);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	ns = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
	free(text);
	if (ns / 20 > 20 * 1000000L)
		fail_msg("%ld us per 10 KB parse", ns / 20 / 1000);
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	struct out o = { 0 };
	char chunk[4096];
	size_t n;

	if (!f)
		fail_msg("cannot open %s (run from the top of the tree or set KW_SH_GOLDEN)", path);
	put(&o, "", 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		put(&o, chunk, n);
	fclose(f);
	return o.s;
}

/*
 * One case of the golden file from *cursor: lines "> TEXT" (">" alone is an
 * empty line) make the input, joined by newlines; the lines after them up
 * to a blank line are the expected form.  Lines starting with "#" between
 * cases are comments.  0 at the end of the file.
 */
static int
next_case(char **cursor, struct out *input, struct out *want)
{
	char *line, *s = *cursor;
	int state = 0;	/* 0 before a case, 1 in its input, 2 in its expectation */

	input->len = want->len = 0;
	put(input, "", 0);
	put(want, "", 0);
	while (*s) {
		line = s;
		s += strcspn(s, "\n");
		if (*s)
			*s++ = '\0';
		if (state == 0 && (line[0] == '#' || line[0] == '\0'))
			continue;
		if (state < 2 && line[0] == '>') {
			if (state == 1)
				put(input, "\n", 1);
			puts_(input, line[1] == ' ' ? line + 2 : line + 1);
			state = 1;
			continue;
		}
		if (line[0] == '\0')
			break;
		assert_int_equal(state >= 1, 1);
		puts_(want, line);
		puts_(want, "\n");
		state = 2;
	}
	*cursor = s;
	return state == 2;
}

static void
test_golden_corpus(void **state)
{
	const char *path = getenv("KW_SH_GOLDEN");
	char *text = read_file(path ? path : "tests/policy/shell-golden.txt"), *cursor = text;
	struct out input = { 0 }, want = { 0 };
	int cases = 0, failed = 0;

	while (next_case(&cursor, &input, &want)) {
		char *got = render(input.s, input.len);
		cases++;
		if (strcmp(got, want.s) != 0) {
			failed++;
			print_error("golden case %d:\n> %s\nwant:\n%sgot:\n%s\n", cases, input.s,
			    want.s, got);
		}
		free(got);
	}
	free(text);
	free(input.s);
	free(want.s);
	assert_int_equal(failed, 0);
	assert_true(cases >= 150);
}

/* Render stdin's text (see the top of the file). */
static int
render_stdin(void)
{
	struct out in = { 0 };
	char chunk[4096];
	size_t n;
	char *got;

	put(&in, "", 0);
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		put(&in, chunk, n);
	if (in.len > 0 && in.s[in.len - 1] == '\n')
		in.len--;
	got = render(in.s, in.len);
	fputs(got, stdout);
	free(got);
	free(in.s);
	return 0;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote_removal),
		cmocka_unit_test(test_operators),
		cmocka_unit_test(test_compounds),
		cmocka_unit_test(test_test_and_arith_commands),
		cmocka_unit_test(test_substitutions),
		cmocka_unit_test(test_expansion_flags),
		cmocka_unit_test(test_redirections),
		cmocka_unit_test(test_heredocs),
		cmocka_unit_test(test_assignments),
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_speed),
		cmocka_unit_test(test_golden_corpus),
	};

	if (argc > 1 && strcmp(argv[1], "--render") == 0)
		return render_stdin();
	return cmocka_run_group_tests_name("shell", tests, NULL, NULL);
}
