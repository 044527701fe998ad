/*
 * rules_net.c - deciding one outbound connection.
 *
 * allowOutbound false refuses every one; enforceHttps refuses plain
 * http://; a non-empty allowedHosts or allowedDomains confines the hosts
 * (a domain covers its subdomains).  A host that cannot be known before the
 * command runs (a git remote's name, a search) is asked about while the
 * hosts are confined.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/errors.h"
#include "policy/match.h"
#include "policy/policy_internal.h"

/* "api.anthropic.com" or "api.anthropic.com:443" in allowedHosts. */
static bool
host_listed(const struct kw_strs *hosts, const char *host)
{
	for (size_t i = 0; i < hosts->n; i++) {
		const char *h = hosts->v[i], *colon = strrchr(h, ':');
		size_t len = colon && !strchr(h, ']') ? (size_t)(colon - h) : strlen(h);
		if (strlen(host) == len && strncasecmp(host, h, len) == 0)
			return true;
	}
	return false;
}

static bool
domain_listed(const struct kw_strs *domains, const char *host)
{
	for (size_t i = 0; i < domains->n; i++)
		if (kw_host_within(host, domains->v[i]))
			return true;
	return false;
}

int
kw_decide_net(const struct kw_policy *p, struct kw_decision *d, const char *url_or_host,
    const char *how)
{
	struct kw_url u;
	bool confined = p->allowed_hosts.n > 0 || p->allowed_domains.n > 0;

	if (!p->allow_outbound)
		return kw_decision_add(d, KW_EFFECT_NET, url_or_host ? url_or_host : "",
		    KW_VERDICT_DENY, "security.network.allowOutbound",
		    "security.network.allowOutbound is false: %s may not reach the network", how);
	if (!url_or_host || !*url_or_host) {
		if (!confined)
			return kw_decision_add(d, KW_EFFECT_NET, "", KW_VERDICT_ALLOW, "",
			    "outbound connections are allowed");
		return kw_decision_add(d, KW_EFFECT_NET, "", KW_VERDICT_ASK,
		    "security.network.allowedHosts", "%s reaches a host that cannot be known "
		    "before it runs", how);
	}
	if (kw_url_parse(url_or_host, &u) < 0)
		return kw_decision_add(d, KW_EFFECT_NET, url_or_host, KW_VERDICT_DENY,
		    "security.network", "%s: \"%.96s\" is not a URL or host that can be read plainly",
		    how, url_or_host);
	if (p->enforce_https && strcmp(u.scheme, "http") == 0)
		return kw_decision_add(d, KW_EFFECT_NET, u.host, KW_VERDICT_DENY,
		    "security.network.enforceHttps", "plain http:// to %s is refused "
		    "(security.network.enforceHttps): use https://", u.host);
	if (confined && !host_listed(&p->allowed_hosts, u.host) &&
	    !domain_listed(&p->allowed_domains, u.host))
		return kw_decision_add(d, KW_EFFECT_NET, u.host, KW_VERDICT_DENY,
		    "security.network.allowedHosts", "%s is not an allowed host "
		    "(security.network.allowedHosts, allowedDomains)", u.host);
	return kw_decision_add(d, KW_EFFECT_NET, u.host, KW_VERDICT_ALLOW, "",
	    confined ? "an allowed host" : "outbound connections are allowed");
}
