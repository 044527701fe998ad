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
 * matches a gitignore-style pattern.  (To keep this comment open, "*" then
 * "/" is written "*\/", and "/" then "*" as two strings side by side, as
 * C would join them: "a/" "*".)
 *   - "*" matches any run of characters except "/", "?" one character
 *     except "/", "[...]" a class ("[!...]" / "[^...]" negated, ranges by
 *     byte value, "]" first is a member, a reversed range matches nothing,
 *     no "[:alpha:]" names); a "[" that does not close within its segment
 *     is an ordinary character;
 *   - "**" as a whole segment matches any number of segments (zero too):
 *     "**\/.env", "a/" "**\/b", "dir/" "**"; inside a segment ("a**b") it is
 *     a plain "*"; "**" alone matches every path, "/" too;
 *   - a pattern with no "/" (other than a trailing one) matches the last
 *     segment at any depth ("*.pem", ".env"): it is read as "**\/PATTERN";
 *   - a pattern with a "/" is anchored at the root; the leading "/" may be
 *     left out ("etc/" "*.conf" is "/etc/" "*.conf");
 *   - a pattern that matches a directory matches all under it, as ignoring
 *     a directory ignores its contents: "**\/.git" matches "/r/.git/config",
 *     "/etc" matches "/etc/passwd" (every pattern ends in an implicit
 *     "/" "**");
 *   - a trailing "/" ("build/") would mean "directories only"; with no way
 *     to tell here, it matches the name and all under it, like "build";
 *   - "\\" escapes the next character, in a class too; segments are cut
 *     at every "/" first, so a "\\" cannot escape one, and a "\\" ending a
 *     segment stands for itself; "//" in a pattern is one "/";
 *   - "" matches nothing; "/" matches everything.
 * Case-sensitive, byte-wise (no locale).  Never recurses: patterns of up
 * to 4 KB and paths of up to PATH_MAX are matched in time linear in the
 * product of their lengths, whatever the pattern ("*a*a*b", "**\/" "**\/x").
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
 * relative cwd or home, too long).  *ret is untouched on failure.
 *
 * With fs, ->real is what the kernel would reach, which ->lexical is not
 * when a ".." follows a link ("link/../x" is "x" lexically, but the
 * parent of link's target really): the path as written is resolved, not
 * ->lexical.  A link whose target does not exist is followed too (a write
 * through it creates the target), up to 40 links.  ->exists is lstat of
 * the path as written (a dangling link exists).  ->is_link is set when a
 * prefix of ->lexical is a link, a dangling link was followed, or ->real
 * differs from ->lexical.
 */
int kw_path_resolve(const char *path, const char *cwd, const char *home, bool fs,
    struct kw_resolved *ret) KW_WUR KW_NONNULL(1, 2, 3, 5);

/*
 * Directories one decision found to exist and pass through no link, so the
 * next path under them is not walked from the root again.  Valid for one
 * decision only (the file system changes): start it zeroed, drop it after.
 */
#define KW_PATH_CACHE_SLOTS 8
struct kw_path_cache {
	char dir[KW_PATH_CACHE_SLOTS][256];
	size_t next;
};

/* kw_path_resolve, remembering plain directories in cache (NULL: none). */
int kw_path_resolve_cached(const char *path, const char *cwd, const char *home, bool fs,
    struct kw_path_cache *cache, struct kw_resolved *ret) KW_WUR KW_NONNULL(1, 2, 3, 6);

/* A URL or "host[:port]" taken apart. */
struct kw_url {
	char scheme[16];	/* "https", "http", "ssh", "git", ... lower case; "" if none */
	char host[256];		/* lower case, no brackets, no trailing "." */
	int port;		/* -1 when not given */
};

/*
 * Parse a URL ("https://user:pw@Host.example:8443/x?y"), a scp-like
 * "user@host:path", or a bare "host[:port]" into *ret (untouched on
 * failure).  0, or KW_ERR_INVALID when no host can be read plainly.
 *   - a scheme is a letter, then letters, digits, "+", "-", "." before
 *     "://"; without one, ->scheme is "" ("host", "host:443", "host/x"),
 *     or "ssh" when a ":" after the host is followed by anything but a
 *     port ("git@github.com:org/repo.git", "host:path");
 *   - the authority ends at the first "/", "?" or "#"; userinfo runs to
 *     its last "@" ("https://a.com@b.com" names b.com); a "\\" in it is
 *     refused ("https://a.com\\@b.com": readers disagree on it);
 *   - a host is letters, digits, "-", "_" and "." (punycode for IDNA),
 *     no empty label, none starting with "-", at most 253 characters once
 *     one trailing "." is dropped; it is lower-cased; "[v6]" literals are
 *     hex digits, ":" and "." (no zone);
 *   - a host whose last label is numeric must be a plain dotted quad
 *     ("2130706433", "0x7f.1", "010.0.0.1" are refused);
 *   - a port is 1..65535 in decimal; an empty or other port is refused;
 *   - refused too: control characters anywhere, "%" in the host, no host
 *     ("file:///x", "/abs/path", "./file", "-x", ""), "host://x" with a
 *     scheme that is not one.
 */
int kw_url_parse(const char *text, struct kw_url *ret) KW_WUR KW_NONNULL(1, 2);

/*
 * Whether host (lower case) equals domain or is a subdomain of it:
 * "api.anthropic.com" is within "anthropic.com"; "evilanthropic.com" and
 * "anthropic.com.evil.net" are not.  A leading "." or "*." on domain is
 * ignored, and so is one trailing ".".  Case-insensitive.  An address (a
 * host of digits and dots, or with a ":") is within only itself: "10.0.0.1"
 * is not within "0.1".  An empty domain contains nothing.
 */
bool kw_host_within(const char *host, const char *domain) KW_WUR KW_NONNULL(1, 2);

#endif
