/*
 * plan_net.c - the plan's network: none, only the CONNECT filter's hosts,
 * or open; how it is enforced (a network namespace when user namespaces
 * work, else Landlock's TCP rules plus seccomp's refusal of other
 * sockets); and the claude profile's API endpoint (a loopback stand-in is
 * forwarded, a remote one must be admitted by the host lists); and the
 * port of the caller's broker relay (req->relay).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/errors.h"
#include "policy/match.h"
#include "sandbox/plan_internal.h"

static int
add_forward(struct kw_sandbox_plan *p, unsigned short port)
{
	unsigned short *f;

	for (size_t i = 0; i < p->n_forwards; i++)
		if (p->forward_ports[i] == port)
			return 0;
	if (!(f = realloc(p->forward_ports, (p->n_forwards + 1) * sizeof(*f))))
		return KW_ERR_NOMEM;
	p->forward_ports = f;
	f[p->n_forwards++] = port;
	return 0;
}

static bool
host_admitted(const struct kw_sandbox_policy *policy, const char *host)
{
	for (size_t i = 0; i < policy->n_hosts; i++)
		if (strcasecmp(policy->allowed_hosts[i], host) == 0)
			return true;
	for (size_t i = 0; i < policy->n_domains; i++)
		if (kw_host_within(host, policy->allowed_domains[i]))
			return true;
	return false;
}

/* The claude profile's API: a loopback http stand-in is forwarded; else it must be admitted. */
static int
claude_api(struct kw_sb_plan_priv *pp, const struct kw_sandbox_policy *policy,
    const struct kw_sandbox_request *req)
{
	struct kw_url u;
	const char *url = req->api_base_url && *req->api_base_url ? req->api_base_url :
	    "https://api.anthropic.com";

	if (kw_url_parse(url, &u) != 0)
		return kw_sb_plan_warn(pp, "ANTHROPIC_BASE_URL is not a URL the sandbox can read: "
		    "the API is not reachable from inside");
	if (strcmp(u.scheme, "http") == 0 && (strcmp(u.host, "127.0.0.1") == 0 ||
	    strcmp(u.host, "localhost") == 0 || strcmp(u.host, "::1") == 0))
		return add_forward(&pp->pub, (unsigned short)(u.port > 0 ? u.port : 80));
	if (pp->pub.net == KW_SB_NET_OPEN)
		return 0;
	if (pp->pub.net == KW_SB_NET_FILTERED && host_admitted(policy, u.host))
		return 0;	/* already in the filter's lists */
	return kw_sb_plan_warn(pp, "the API host %s is not in allowedHosts/allowedDomains (or "
	    "allowNetwork is false): the command cannot reach it", u.host);
}

/* A listener on 127.0.0.1 of our namespace, any free port; 0 with *fd and *port. */
static int
bind_loopback(const char *what, int *ret_fd, unsigned short *ret_port, char *err,
    size_t err_len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		snprintf(err, err_len, "cannot listen on 127.0.0.1 for %s: %s", what,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return KW_ERR_IO;
	}
	*ret_fd = fd;
	*ret_port = ntohs(sa.sin_port);
	return 0;
}

/* Without a network namespace, the filter listens in ours: bound now, served by launch. */
static int
bind_proxy(struct kw_sandbox_plan *p, char *err, size_t err_len)
{
	return bind_loopback("the network filter", &p->proxy_fd, &p->proxy_port, err, err_len);
}

/*
 * The broker relay's port: inside a network namespace the child listens
 * on the fixed one (launch); else the plan binds one here, on the host's
 * loopback, which is why the relay asks for a token before anything.
 */
static int
plan_relay(struct kw_sandbox_plan *p, char *err, size_t err_len)
{
	p->relay = true;
	if (p->netns) {
		p->relay_port = KW_SB_RELAY_PORT_NETNS;
		return 0;
	}
	return bind_loopback("the broker relay", &p->relay_fd, &p->relay_port, err, err_len);
}

static int plan_net(struct kw_sb_plan_priv *pp, const struct kw_sandbox_policy *policy,
    const struct kw_sandbox_caps *caps, const struct kw_sandbox_request *req, char *err,
    size_t err_len);

int
kw_sb_plan_net(struct kw_sb_plan_priv *pp, const struct kw_sandbox_policy *policy,
    const struct kw_sandbox_caps *caps, const struct kw_sandbox_request *req, char *err,
    size_t err_len)
{
	int r = plan_net(pp, policy, caps, req, err, err_len);

	return r == 0 && req->relay ? plan_relay(&pp->pub, err, err_len) : r;
}

static int
plan_net(struct kw_sb_plan_priv *pp, const struct kw_sandbox_policy *policy,
    const struct kw_sandbox_caps *caps, const struct kw_sandbox_request *req, char *err,
    size_t err_len)
{
	struct kw_sandbox_plan *p = &pp->pub;
	int r = 0;

	(void)caps;
	if (!policy->allow_network)
		p->net = KW_SB_NET_NONE;
	else if (policy->n_hosts || policy->n_domains)
		p->net = KW_SB_NET_FILTERED;
	else
		p->net = KW_SB_NET_OPEN;
	for (size_t i = 0; r == 0 && p->net == KW_SB_NET_FILTERED && i < policy->n_hosts; i++)
		r = kw_sb_strv_add(&p->allowed_hosts, &p->n_hosts, policy->allowed_hosts[i]);
	for (size_t i = 0; r == 0 && p->net == KW_SB_NET_FILTERED && i < policy->n_domains; i++)
		r = kw_sb_strv_add(&p->allowed_domains, &p->n_domains, policy->allowed_domains[i]);
	if (r == 0 && policy->profile && strcmp(policy->profile, "claude") == 0)
		r = claude_api(pp, policy, req);
	if (r != 0 || p->net == KW_SB_NET_OPEN)
		return r;
	if (p->userns) {
		p->netns = true;
		if (p->net == KW_SB_NET_FILTERED)
			p->proxy_port = KW_SB_PROXY_PORT_NETNS;
		return 0;
	}
	if (p->landlock_abi < 4)
		return kw_sb_plan_missing(pp, "network: allowNetwork is %s, which needs user "
		    "namespaces or Landlock ABI 4 (TCP rules); this machine has neither (%s)",
		    policy->allow_network ? "limited to allowedHosts/allowedDomains" : "false",
		    caps->why_not);
	p->landlock_net = true;
	return p->net == KW_SB_NET_FILTERED ? bind_proxy(p, err, err_len) : 0;
}
