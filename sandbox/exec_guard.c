/*
 * exec_guard.c - the parent's answer to the child's execve calls when
 * allowExec is false: the seccomp filter sends each one here (user
 * notification); the first is the command itself and goes on (CONTINUE:
 * the kernel runs it as if unfiltered), every later one, from any process
 * under the filter, fails with EPERM.  One decision, no path inspection,
 * so there is nothing to race.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>

#include <seccomp.h>
#include <linux/seccomp.h>

#include "sandbox/sandbox_internal.h"

void
kw_sb_exec_guard_serve(int notify_fd, int stop_fd)
{
	struct seccomp_notif *req = NULL;
	struct seccomp_notif_resp *resp = NULL;
	bool first = true;
	int failures = 0;

	if (seccomp_notify_alloc(&req, &resp) != 0)
		return;	/* unanswered execve calls then fail (ENOSYS once the fd closes) */
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = notify_fd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN },
		};

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL))
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		/* The kernel wants a zeroed buffer (EINVAL otherwise). */
		memset(req, 0, sizeof(*req));
		if (seccomp_notify_receive(notify_fd, req) != 0) {
			if (++failures > 1000)
				break;	/* not a passing race: stop rather than spin */
			continue;	/* the caller died meanwhile, or a signal */
		}
		failures = 0;
		resp->id = req->id;
		resp->val = 0;
		if (first) {
			resp->error = 0;
			resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
			first = false;
		} else {
			resp->error = -EPERM;
			resp->flags = 0;
		}
		(void)seccomp_notify_respond(notify_fd, resp);
	}
	seccomp_notify_free(req, resp);
}
