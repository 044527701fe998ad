/*
 * commands_net.c - reading the arguments of network tools: which hosts
 * they reach, which files their options read or write, and which options
 * make them run something else (curl -K, ssh -o ProxyCommand, nc -e,
 * git -c core.sshCommand), which cannot be analysed.
 *
 * Each tool is a table of its options that take a value and what that
 * value is; an option we do not know is taken as a flag.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/commands.h"

enum val {
	V_SKIP,		/* a value of no interest (a header, a timeout) */
	V_HOST,		/* a host or URL reached (curl --url, ssh -J, curl -x) */
	V_READ,		/* a file read */
	V_WRITE,	/* a file written */
	V_DATA,		/* curl -d @FILE, -F name=@FILE: a file read when it says so */
	V_OPAQUE,	/* runs or loads something: cannot be analysed */
	V_SSHOPT,	/* ssh -o: opaque when it runs a command */
	V_GITCFG,	/* git -c: opaque when it runs a command */
};

struct opt {
	const char *name;	/* "-o" or "--output" */
	enum val val;
};

struct tool {
	const char *name;
	const struct opt *opts;
	enum { OPS_URLS, OPS_FIRST_HOST, OPS_COPY, OPS_SOCAT, OPS_GIT, OPS_HTTPIE } operands;
};

static const struct opt curl_opts[] = {
	{ "-o", V_WRITE }, { "--output", V_WRITE }, { "-T", V_READ }, { "--upload-file", V_READ },
	{ "-d", V_DATA }, { "--data", V_DATA }, { "--data-binary", V_DATA },
	{ "--data-raw", V_SKIP }, { "--data-ascii", V_DATA }, { "--data-urlencode", V_DATA },
	{ "--json", V_DATA }, { "-F", V_DATA }, { "--form", V_DATA }, { "-E", V_READ },
	{ "--cert", V_READ }, { "--key", V_READ }, { "--cacert", V_READ }, { "-b", V_SKIP },
	{ "--cookie", V_SKIP }, { "-c", V_WRITE }, { "--cookie-jar", V_WRITE },
	{ "-K", V_OPAQUE }, { "--config", V_OPAQUE }, { "-x", V_HOST }, { "--proxy", V_HOST },
	{ "--url", V_HOST }, { "--resolve", V_OPAQUE }, { "--connect-to", V_OPAQUE },
	{ "--dns-servers", V_OPAQUE }, { "--doh-url", V_OPAQUE }, { "--preproxy", V_HOST },
	{ "-H", V_SKIP }, { "--header", V_SKIP }, { "-A", V_SKIP }, { "--user-agent", V_SKIP },
	{ "-e", V_SKIP }, { "--referer", V_SKIP }, { "-u", V_SKIP }, { "--user", V_SKIP },
	{ "-X", V_SKIP }, { "--request", V_SKIP }, { "-w", V_SKIP }, { "--write-out", V_SKIP },
	{ "-m", V_SKIP }, { "--max-time", V_SKIP }, { "--connect-timeout", V_SKIP },
	{ "-r", V_SKIP }, { "--range", V_SKIP }, { "-U", V_SKIP }, { "--proxy-user", V_SKIP },
	{ "-C", V_SKIP }, { "--continue-at", V_SKIP }, { "-z", V_SKIP }, { "--retry", V_SKIP },
	{ "-Y", V_SKIP }, { "-y", V_SKIP }, { "--limit-rate", V_SKIP }, { "--oauth2-bearer", V_SKIP },
	{ "--max-filesize", V_SKIP }, { "--interface", V_SKIP }, { "-Q", V_SKIP },
	{ "--unix-socket", V_READ }, { "--trace", V_WRITE }, { "--trace-ascii", V_WRITE },
	{ "-D", V_WRITE }, { "--dump-header", V_WRITE }, { "--stderr", V_WRITE }, { NULL, V_SKIP },
};

static const struct opt wget_opts[] = {
	{ "-O", V_WRITE }, { "--output-document", V_WRITE }, { "-o", V_WRITE },
	{ "--output-file", V_WRITE }, { "-a", V_WRITE }, { "--append-output", V_WRITE },
	{ "-i", V_OPAQUE }, { "--input-file", V_OPAQUE }, { "-P", V_WRITE },
	{ "--directory-prefix", V_WRITE }, { "-e", V_OPAQUE }, { "--execute", V_OPAQUE },
	{ "--post-file", V_READ }, { "--body-file", V_READ }, { "--ca-certificate", V_READ },
	{ "--certificate", V_READ }, { "--private-key", V_READ }, { "--load-cookies", V_READ },
	{ "--save-cookies", V_WRITE }, { "-U", V_SKIP }, { "--user-agent", V_SKIP },
	{ "--header", V_SKIP }, { "--user", V_SKIP }, { "--password", V_SKIP }, { "-t", V_SKIP },
	{ "--tries", V_SKIP }, { "-T", V_SKIP }, { "--timeout", V_SKIP }, { "-w", V_SKIP },
	{ "--wait", V_SKIP }, { "-Q", V_SKIP }, { "-l", V_SKIP }, { "--level", V_SKIP },
	{ "-A", V_SKIP }, { "-R", V_SKIP }, { "-D", V_SKIP }, { "-X", V_SKIP }, { "-I", V_SKIP },
	{ "--post-data", V_SKIP }, { "--method", V_SKIP }, { "--body-data", V_SKIP },
	{ NULL, V_SKIP },
};

static const struct opt nc_opts[] = {
	{ "-e", V_OPAQUE }, { "-c", V_OPAQUE }, { "--exec", V_OPAQUE }, { "--sh-exec", V_OPAQUE },
	{ "--lua-exec", V_OPAQUE }, { "-x", V_HOST }, { "--proxy", V_HOST }, { "-p", V_SKIP },
	{ "-s", V_SKIP }, { "-w", V_SKIP }, { "-i", V_SKIP }, { "-q", V_SKIP }, { "-X", V_SKIP },
	{ "-I", V_SKIP }, { "-O", V_SKIP }, { "-T", V_SKIP }, { "-V", V_SKIP }, { "-W", V_SKIP },
	{ "-o", V_WRITE }, { "--output", V_WRITE }, { NULL, V_SKIP },
};

static const struct opt ssh_opts[] = {
	{ "-i", V_READ }, { "-F", V_READ }, { "-J", V_HOST }, { "-o", V_SSHOPT },
	{ "-S", V_SKIP }, { "-E", V_WRITE }, { "-b", V_SKIP }, { "-c", V_SKIP }, { "-D", V_SKIP },
	{ "-e", V_SKIP }, { "-I", V_OPAQUE }, { "-L", V_SKIP }, { "-l", V_SKIP }, { "-m", V_SKIP },
	{ "-O", V_SKIP }, { "-p", V_SKIP }, { "-P", V_SKIP }, { "-Q", V_SKIP }, { "-R", V_SKIP },
	{ "-W", V_SKIP }, { "-w", V_SKIP }, { "-B", V_SKIP }, { NULL, V_SKIP },
};

static const struct opt scp_opts[] = {
	{ "-i", V_READ }, { "-F", V_READ }, { "-J", V_HOST }, { "-o", V_SSHOPT },
	{ "-S", V_OPAQUE }, { "-c", V_SKIP }, { "-l", V_SKIP }, { "-P", V_SKIP }, { "-D", V_OPAQUE },
	{ "-e", V_OPAQUE }, { "--rsh", V_OPAQUE }, { "--rsync-path", V_OPAQUE },
	{ "--password-file", V_READ }, { "--files-from", V_READ }, { "--exclude-from", V_READ },
	{ "--include-from", V_READ }, { "--log-file", V_WRITE }, { "--exclude", V_SKIP },
	{ "--include", V_SKIP }, { "--filter", V_SKIP }, { "--chmod", V_SKIP }, { NULL, V_SKIP },
};

static const struct opt git_opts[] = {
	{ "-C", V_SKIP }, { "-c", V_GITCFG }, { "--config", V_GITCFG }, { "--exec-path", V_OPAQUE },
	{ "--upload-pack", V_OPAQUE }, { "-u", V_OPAQUE }, { "--receive-pack", V_OPAQUE },
	{ "--exec", V_OPAQUE }, { "--template", V_OPAQUE }, { "--config-env", V_OPAQUE },
	{ "-b", V_SKIP }, { "--branch", V_SKIP }, { "-o", V_SKIP }, { "--origin", V_SKIP },
	{ "--depth", V_SKIP }, { "-j", V_SKIP }, { "--jobs", V_SKIP }, { "--reference", V_SKIP },
	{ "--filter", V_SKIP }, { "--separate-git-dir", V_SKIP }, { "--push-option", V_SKIP },
	{ "-m", V_SKIP }, { "--message", V_SKIP }, { "-F", V_READ }, { "--file", V_READ },
	{ "--repo", V_HOST }, { "--remote", V_HOST }, { "--git-dir", V_SKIP },
	{ "--work-tree", V_SKIP }, { "--namespace", V_SKIP }, { NULL, V_SKIP },
};

static const struct opt httpie_opts[] = {
	{ "-o", V_WRITE }, { "--output", V_WRITE }, { "-a", V_SKIP }, { "--auth", V_SKIP },
	{ "--proxy", V_HOST }, { "--cert", V_READ }, { "--cert-key", V_READ },
	{ "--session", V_SKIP }, { "-A", V_SKIP }, { NULL, V_SKIP },
};

static const struct opt no_opts[] = { { NULL, V_SKIP } };

static const struct tool tools[] = {
	{ "curl", curl_opts, OPS_URLS }, { "wget", wget_opts, OPS_URLS },
	{ "http", httpie_opts, OPS_HTTPIE }, { "https", httpie_opts, OPS_HTTPIE },
	{ "nc", nc_opts, OPS_FIRST_HOST }, { "ncat", nc_opts, OPS_FIRST_HOST },
	{ "netcat", nc_opts, OPS_FIRST_HOST }, { "telnet", no_opts, OPS_FIRST_HOST },
	{ "ftp", no_opts, OPS_FIRST_HOST }, { "ssh", ssh_opts, OPS_FIRST_HOST },
	{ "sftp", ssh_opts, OPS_FIRST_HOST }, { "scp", scp_opts, OPS_COPY },
	{ "rsync", scp_opts, OPS_COPY }, { "socat", no_opts, OPS_SOCAT },
	{ "git", git_opts, OPS_GIT },
};

struct scan {
	struct kw_net_item *items;
	size_t n, max;
};

static void
emit(struct scan *s, enum kw_net_what what, const char *text)
{
	if (s->n >= s->max)
		return;
	if (s->n == s->max - 1 && what != KW_NET_OPAQUE) {
		what = KW_NET_OPAQUE;
		text = "too many operands to analyse";
	}
	s->items[s->n].what = what;
	snprintf(s->items[s->n].text, sizeof(s->items[s->n].text), "%s", text ? text : "");
	s->n++;
}

static bool
ci_contains(const char *hay, const char *needle)
{
	return strcasestr(hay, needle) != NULL;
}

/* An option's value, by what the tool's table says it is. */
static void
value(struct scan *s, const char *opt, enum val v, const char *text)
{
	const char *at;
	char why[160];

	switch (v) {
	case V_HOST:	emit(s, KW_NET_HOST, text); break;
	case V_READ:	emit(s, KW_NET_READ, text); break;
	case V_WRITE:	if (strcmp(text, "-") != 0) emit(s, KW_NET_WRITE, text); break;
	case V_DATA:
		/* "@file" and "name=@file" / "name=<file" upload a file. */
		if (text[0] == '@')
			emit(s, KW_NET_READ, text + 1);
		else if ((at = strstr(text, "=@")) || (at = strstr(text, "=<")))
			emit(s, KW_NET_READ, at + 2);
		else if ((at = strchr(text, '@')) && strcmp(opt, "--data-urlencode") == 0)
			emit(s, KW_NET_READ, at + 1);
		break;
	case V_SSHOPT:
		if (ci_contains(text, "ProxyCommand") || ci_contains(text, "LocalCommand") ||
		    ci_contains(text, "KnownHostsCommand") || ci_contains(text, "ProxyUseFdpass") ||
		    ci_contains(text, "PKCS11Provider") || ci_contains(text, "SecurityKeyProvider"))
			goto opaque;
		if (ci_contains(text, "ProxyJump") && strchr(text, '='))
			emit(s, KW_NET_HOST, strchr(text, '=') + 1);
		break;
	case V_GITCFG:
		if (ci_contains(text, "alias.") || ci_contains(text, "command") ||
		    ci_contains(text, "hookspath") || ci_contains(text, "pager") ||
		    ci_contains(text, "editor") || ci_contains(text, "helper") ||
		    ci_contains(text, "fsmonitor") || ci_contains(text, "askpass") ||
		    ci_contains(text, "proxy") || ci_contains(text, "insteadof") ||
		    ci_contains(text, "program") || ci_contains(text, "exec"))
			goto opaque;
		break;
	case V_OPAQUE:
		goto opaque;
	default:
		break;
	}
	return;
 opaque:
	snprintf(why, sizeof(why), "%.32s %.64s runs or loads something this policy cannot read",
	    opt, text);
	emit(s, KW_NET_OPAQUE, why);
}

static const struct opt *
find_opt(const struct opt *opts, const char *name, size_t len)
{
	for (; opts->name; opts++)
		if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
			return opts;
	return NULL;
}

/*
 * One option word at w[*i]: a long one ("--output=f", "--output f") or a
 * cluster of short ones ("-sSLo f", "-ofile").  Advances *i past a value.
 */
static void
option(struct scan *s, const struct tool *t, const struct kw_sh_word *w, size_t n, size_t *i)
{
	const char *a = w[*i].text, *eq;
	const struct opt *o;
	char name[3] = "-?";

	if (a[1] == '-') {
		eq = strchr(a, '=');
		if (!(o = find_opt(t->opts, a, eq ? (size_t)(eq - a) : strlen(a))))
			return;
		if (eq)
			value(s, o->name, o->val, eq + 1);
		else if (*i + 1 < n)
			value(s, o->name, o->val, w[++*i].text);
		return;
	}
	for (size_t k = 1; a[k]; k++) {
		name[1] = a[k];
		if (!(o = find_opt(t->opts, name, 2)))
			continue;
		if (a[k + 1])
			value(s, o->name, o->val, a + k + 1);
		else if (*i + 1 < n)
			value(s, o->name, o->val, w[++*i].text);
		return;
	}
}

/* scp/rsync: "host:path" or "user@host:path" is remote; anything else is local. */
static bool
remote_operand(const char *a)
{
	const char *colon = strchr(a, ':'), *slash = strchr(a, '/');

	if (strncmp(a, "rsync://", 8) == 0)
		return true;
	return colon && colon != a && (!slash || slash > colon);
}

static bool
url_like(const char *a)
{
	return strstr(a, "://") || remote_operand(a) || strchr(a, '@');
}

/* git SUBCOMMAND ...: the subcommands that reach a remote, and what they reach. */
static void
git_operands(struct scan *s, const char *const *ops, size_t n_ops)
{
	static const char *const remote_first[] = { "fetch", "pull", "push", "ls-remote", NULL };
	static const char *const dangerous_keys[] = { "alias.", "core.sshcommand",
		"core.hookspath", "core.pager", "core.editor", "core.fsmonitor", "credential.",
		"url.", "http.proxy", "core.gitproxy", "sequence.editor", "diff.external", NULL };
	const char *sub = n_ops ? ops[0] : "";

	if (strcmp(sub, "clone") == 0) {
		if (n_ops < 2)
			return;
		if (url_like(ops[1]) && strncmp(ops[1], "file://", 7) != 0)
			emit(s, KW_NET_HOST, ops[1]);
		else
			emit(s, KW_NET_READ, strncmp(ops[1], "file://", 7) == 0 ? ops[1] + 7 : ops[1]);
		if (n_ops > 2)
			emit(s, KW_NET_WRITE, ops[2]);
		return;
	}
	for (const char *const *r = remote_first; *r; r++)
		if (strcmp(sub, *r) == 0) {
			if (n_ops > 1 && url_like(ops[1]))
				emit(s, KW_NET_HOST, ops[1]);
			else
				emit(s, KW_NET_UNKNOWN, NULL);
			return;
		}
	if (strcmp(sub, "submodule") == 0 && n_ops > 1 &&
	    (strcmp(ops[1], "update") == 0 || strcmp(ops[1], "add") == 0 ||
	    strcmp(ops[1], "sync") == 0))
		emit(s, KW_NET_UNKNOWN, NULL);
	if (strcmp(sub, "config") == 0)
		for (size_t i = 1; i < n_ops; i++)
			for (const char *const *k = dangerous_keys; *k; k++)
				if (strncasecmp(ops[i], *k, strlen(*k)) == 0) {
					emit(s, KW_NET_OPAQUE, "git config of a key that runs "
					    "commands or redirects remotes");
					return;
				}
}

static void
operands(struct scan *s, const struct tool *t, const char *const *ops, size_t n_ops)
{
	const char *colon, *p;
	char host[300];

	switch (t->operands) {
	case OPS_URLS:
		for (size_t i = 0; i < n_ops; i++)
			emit(s, KW_NET_HOST, ops[i]);
		break;
	case OPS_HTTPIE:
		/* http [METHOD] URL [ITEM...]: the first operand that is not a method. */
		for (size_t i = 0; i < n_ops; i++) {
			for (p = ops[i]; *p >= 'A' && *p <= 'Z'; p++)
				;
			if (*p == '\0' && i == 0)
				continue;
			emit(s, KW_NET_HOST, ops[i]);
			break;
		}
		break;
	case OPS_FIRST_HOST:
		if (n_ops > 0)
			emit(s, KW_NET_HOST, ops[0]);
		else
			emit(s, KW_NET_UNKNOWN, NULL);
		break;
	case OPS_COPY:
		for (size_t i = 0; i < n_ops; i++)
			if (remote_operand(ops[i]))
				emit(s, KW_NET_HOST, ops[i]);
			else
				emit(s, i + 1 == n_ops && n_ops > 1 ? KW_NET_WRITE : KW_NET_READ, ops[i]);
		break;
	case OPS_SOCAT:
		for (size_t i = 0; i < n_ops; i++) {
			colon = strchr(ops[i], ':');
			if (strncasecmp(ops[i], "EXEC", 4) == 0 || strncasecmp(ops[i], "SYSTEM", 6) == 0)
				emit(s, KW_NET_OPAQUE, "socat runs a program");
			else if (colon && (strncasecmp(ops[i], "TCP", 3) == 0 ||
			    strncasecmp(ops[i], "UDP", 3) == 0 || strncasecmp(ops[i], "OPENSSL", 7) == 0 ||
			    strncasecmp(ops[i], "SSL", 3) == 0 || strncasecmp(ops[i], "SCTP", 4) == 0)) {
				snprintf(host, sizeof(host), "%s", colon + 1);
				if (strchr(host, ','))
					*strchr(host, ',') = '\0';
				if (host[0] && strchr(host, ':'))
					emit(s, KW_NET_HOST, host);
			}
		}
		break;
	case OPS_GIT:
		git_operands(s, ops, n_ops);
		break;
	}
}

size_t
kw_cmd_net_scan(const char *name, const struct kw_sh_word *w, size_t n,
    struct kw_net_item *items, size_t max)
{
	struct scan s = { .items = items, .max = max };
	const char *ops[128];
	const struct tool *t = NULL;
	size_t n_ops = 0;
	bool opts = true;

	for (size_t i = 0; i < KW_ELEMENTSOF(tools); i++)
		if (strcmp(tools[i].name, name) == 0)
			t = &tools[i];
	if (!t || max == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const char *a = w[i].text;
		if (opts && strcmp(a, "--") == 0) {
			opts = false;
			continue;
		}
		/* git's options after the subcommand are the subcommand's: same table. */
		if (opts && a[0] == '-' && a[1]) {
			option(&s, t, w, n, &i);
			continue;
		}
		/* ssh HOST COMMAND...: what follows the host runs over there. */
		if ((strcmp(name, "ssh") == 0) && n_ops == 1)
			break;
		if (n_ops == KW_ELEMENTSOF(ops)) {
			emit(&s, KW_NET_OPAQUE, "too many operands to analyse");
			break;
		}
		ops[n_ops++] = a;
	}
	operands(&s, t, ops, n_ops);
	return s.n;
}
