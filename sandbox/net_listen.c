/*
 * net_listen.c - the listening sockets of the sandbox's network, made by
 * the child inside its fresh network namespace (loopback up, nothing
 * else): the CONNECT filter on 127.0.0.1:KW_SB_PROXY_PORT_NETNS, the
 * caller's broker relay on 127.0.0.1:KW_SB_RELAY_PORT_NETNS, and one
 * socket per forwarded port on 127.0.0.1:PORT.  The child hands them to
 * the parent (SCM_RIGHTS), which accepts on them from its own namespace
 * (net_serve.c): a socket belongs to the namespace it was made in, so the
 * confined program reaches these and nothing else.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/sandbox_internal.h"

#define LISTEN_BACKLOG	64

/* One TCP listener on 127.0.0.1:port; 0 with *ret_fd, or -errno with err. */
static int
listen_loopback(unsigned short port, const char *what, int *ret_fd, char *err, size_t err_len)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	const char *step = "socket";
	int one = 1, fd, r;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		step = "SO_REUSEADDR";
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0) {
			step = "bind";
			if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
				step = "listen";
				if (listen(fd, LISTEN_BACKLOG) == 0) {
					*ret_fd = fd;
					return 0;
				}
			}
		}
	}
	r = -errno;
	snprintf(err, err_len, "%s on 127.0.0.1:%u inside the sandbox's network namespace: %s: %s",
	    what, port, step, strerror(-r));
	if (fd >= 0)
		close(fd);
	return r;
}

int
kw_sb_net_child_listen(const struct kw_sandbox_plan *plan, struct kw_sb_listener *out, size_t *n,
    char *err, size_t err_len)
{
	size_t k = 0;
	int r = 0, fd;

	*n = 0;
	if (plan->net == KW_SB_NET_FILTERED) {
		if ((r = listen_loopback(KW_SB_PROXY_PORT_NETNS, "the network filter (proxy)", &fd,
		    err, err_len)) < 0)
			goto out;
		out[k++] = (struct kw_sb_listener){ .fd = fd, .port = KW_SB_PROXY_PORT_NETNS,
		    .is_proxy = true };
	}
	if (plan->relay) {
		if ((r = listen_loopback(KW_SB_RELAY_PORT_NETNS, "the broker relay", &fd, err,
		    err_len)) < 0)
			goto out;
		out[k++] = (struct kw_sb_listener){ .fd = fd, .port = KW_SB_RELAY_PORT_NETNS,
		    .is_relay = true };
	}
	for (size_t i = 0; i < plan->n_forwards; i++) {
		if (plan->forward_ports[i] == 0) {
			snprintf(err, err_len, "forwarded port 0 is not a port");
			r = -EINVAL;
			goto out;
		}
		if ((r = listen_loopback(plan->forward_ports[i], "a forwarded port", &fd, err,
		    err_len)) < 0)
			goto out;
		out[k++] = (struct kw_sb_listener){ .fd = fd, .port = plan->forward_ports[i],
		    .is_proxy = false };
	}
	*n = k;
	return 0;
 out:
	while (k > 0)
		close(out[--k].fd);
	return r;
}
