/*
 * match.h - the matchers the policy is built from: gitignore-style globs,
 * path resolution, and URL/host parsing with domain matching.  Pure except
 * for kw_path_resolve, which may ask the file system (realpath(3), lstat(2))
 * when told to.
 */
#ifndef KW_POLICY_MATCH_H
#define KW_POLICY_MATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

/*
 * Whether path (absolute, normalised: no "//", ".", "..", no trailing "/")
 * matches a gitignore-style pattern:
 *   - "*" matches any run of characters except "/", "?" one character
 *     except "/", "[...]" a class ("[!...]" / "[^...]" negated, ranges);
 *   - "**" as a whole segment matches any number of segments (zero too):
 *     "**\/.env", "a/**\/b", "dir/**";
 *   - a pattern with no "/" (other than a trailing one) matches the last
 *     segment at any depth ("*.pem", ".env"): it is read as "**\/PATTERN";
 *   - a pattern with a "/" is anchored at the root ("/etc/*.conf");
 *   - "\\" escapes the next character.
 * Case-sensitive.  Never recurses without bound (patterns of up to 4 KB
 * and paths of up to PATH_MAX are matched in time linear in their product).
 */
bool kw_glob_match(const char *pattern, const char *path) KW_WUR KW_NONNULL(1, 2);

/*
 * Whether path is dir or lies under it (both absolute and normalised):
 * "/etc" covers "/etc" and "/etc/passwd", not "/etcetera".  "/" covers all.
 */
bool kw_path_within(const char *path, const char *dir) KW_WUR KW_NONNULL(1, 2);

/*
 * Lexically normalise an absolute path into out (size outlen): collapse
 * "//", drop ".", resolve ".." (never above "/"), drop a trailing "/".
 * 0, or KW_ERR_INVALID (not absolute, or too long for out).
 */
int kw_path_normalise(const char *path, char *out, size_t outlen) KW_WUR KW_NONNULL(1, 2);

/* What resolving a path found. */
struct kw_resolved {
	char lexical[4096];	/* cwd + ~ + .. applied, symlinks not followed */
	char real[4096];	/* symlinks followed: realpath(3) of the longest
				   existing prefix with the rest appended; equals
				   lexical when the file system was not asked */
	bool exists;		/* the whole path exists (lstat) */
	bool is_link;		/* lexical names a symbolic link (or passes through one) */
};

/*
 * Resolve path as a tool would open it: "~" and "~/..." become home, a
 * relative path is taken from cwd (absolute), then normalised.  When fs is
 * true the file system is asked (lstat, realpath) to fill ->real and
 * ->exists; otherwise ->real = ->lexical.  "~user/..." is not expanded
 * (KW_ERR_INVALID: the caller decides).  0, or KW_ERR_INVALID (empty path,
 * relative cwd, too long).
 */
int kw_path_resolve(const char *path, const char *cwd, const char *home, bool fs,
    struct kw_resolved *ret) KW_WUR KW_NONNULL(1, 2, 3, 5);

/* A URL or "host[:port]" taken apart. */
struct kw_url {
	char scheme[16];	/* "https", "http", "ssh", "git", ... lower case; "" if none */
	char host[256];		/* lower case, no brackets, no trailing "." */
	int port;		/* -1 when not given */
};

/*
 * Parse a URL ("https://user:pw@Host.example:8443/x?y"), a scp-like
 * "user@host:path", or a bare "host[:port]" into *ret.  IPv6 literals in
 * brackets.  0, or KW_ERR_INVALID when no host can be read (also for
 * userinfo or host tricks such as "https://a.com\\@b.com", control
 * characters, or a host over 253 characters).
 */
int kw_url_parse(const char *text, struct kw_url *ret) KW_WUR KW_NONNULL(1, 2);

/*
 * Whether host (lower case) equals domain or is a subdomain of it:
 * "api.anthropic.com" is within "anthropic.com"; "evilanthropic.com" and
 * "anthropic.com.evil.net" are not.  A leading "." or "*." on domain is
 * ignored.  Case-insensitive.
 */
bool kw_host_within(const char *host, const char *domain) KW_WUR KW_NONNULL(1, 2);

#endif
