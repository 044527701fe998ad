/*
 * launch.c - run the command under the plan.  A forked child applies the
 * layers in the order sandbox_internal.h gives (each failing closed: the
 * child writes why and exits 127, the command never runs unconfined),
 * hands the parent the fds it must serve (the exec guard's notification
 * fd, the network listeners) over a socketpair, and execs once the parent
 * has run the ready hook and said "go".  The parent serves those fds on
 * threads of their own until the child ends, except the broker relay's
 * listener, which goes to the caller's relay hook (cli/ serves it: the
 * sandbox does not talk to the broker).
 *
 * The child stays in the caller's process group and keeps the terminal,
 * so job control (^Z, ^C) reaches it as it would reach any command; the
 * parent ignores SIGINT and SIGQUIT meanwhile (as system(3) does) and
 * passes SIGTERM and SIGHUP on.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/errors.h"
#include "sandbox/sandbox_internal.h"

#define KW_SB_MAX_LISTENERS	64

/* The child's one message: "ready" with fds, or an error and its reason. */
struct kw_sb_msg {
	char tag;			/* 'R' ready, 'D' a layer refused, 'I' other failure */
	bool has_notify;		/* the first fd is the exec guard's */
	unsigned n_listeners;		/* the fds after it, in order */
	struct { unsigned short port; bool is_proxy, is_relay; } l[KW_SB_MAX_LISTENERS];
	char text[512];
};

static volatile sig_atomic_t kw_sb_child;

static void
forward_signal(int sig)
{
	if (kw_sb_child > 0)
		kill((pid_t)kw_sb_child, sig);
}

/* ---- the child ---- */

static void __attribute__((noreturn))
child_fail(int sock, char tag, const char *text)
{
	struct kw_sb_msg m = { .tag = tag };

	snprintf(m.text, sizeof(m.text), "%s", text);
	(void)!send(sock, &m, sizeof(m), MSG_NOSIGNAL);
	_exit(127);
}

static int
send_ready(int sock, int notify_fd, const struct kw_sb_listener *ls, size_t n)
{
	struct kw_sb_msg m = { .tag = 'R', .has_notify = notify_fd >= 0, .n_listeners = n };
	int fds[KW_SB_MAX_LISTENERS + 1];
	size_t nfd = 0;
	char cbuf[CMSG_SPACE(sizeof(fds))];
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (notify_fd >= 0)
		fds[nfd++] = notify_fd;
	for (size_t i = 0; i < n; i++) {
		m.l[i].port = ls[i].port;
		m.l[i].is_proxy = ls[i].is_proxy;
		m.l[i].is_relay = ls[i].is_relay;
		fds[nfd++] = ls[i].fd;
	}
	if (nfd) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(m) ? 0 : -errno;
}

/* Keep 0-2 and sock; everything else the caller had open stays out of the sandbox. */
static int
close_inherited(int sock)
{
	if (sock < 3 && (sock = fcntl(sock, F_DUPFD_CLOEXEC, 3)) < 0)
		_exit(127);
	if (sock > 3 && syscall(SYS_close_range, 3, sock - 1, 0) != 0)
		for (int fd = 3; fd < sock; fd++)
			close(fd);
	if (syscall(SYS_close_range, sock + 1, ~0U, 0) != 0) {
		/* Before Linux 5.9: one by one, up to the limit on open files. */
		long max = sysconf(_SC_OPEN_MAX);

		for (long fd = sock + 1; fd < (max > 0 && max < (1 << 20) ? max : 65536); fd++)
			close((int)fd);
	}
	return sock;
}

static void __attribute__((noreturn))
child_main(const struct kw_sandbox_plan *p, char *const argv[], char *const envp[], int sock)
{
	struct kw_sb_listener ls[KW_SB_MAX_LISTENERS];
	size_t n = 0;
	char err[512] = "", go;
	int notify_fd = -1;

	sock = close_inherited(sock);
	if (p->netns && p->n_forwards + 2 > KW_SB_MAX_LISTENERS)
		child_fail(sock, 'I', "netns: too many forwarded ports");
	if ((p->userns && kw_sb_ns_enter(p, err, sizeof(err)) != 0) ||
	    (p->mountns && kw_sb_ns_mount(p, err, sizeof(err)) != 0) ||
	    (p->netns && kw_sb_ns_loopback(err, sizeof(err)) != 0) ||
	    (p->netns && (p->net == KW_SB_NET_FILTERED || p->n_forwards || p->relay) &&
	    kw_sb_net_child_listen(p, ls, &n, err, sizeof(err)) != 0))
		child_fail(sock, 'D', err);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		child_fail(sock, 'D', "no_new_privs refused");
	if (kw_sb_landlock_apply(p, err, sizeof(err)) != 0 ||
	    kw_sb_seccomp_apply(p, &notify_fd, err, sizeof(err)) != 0)
		child_fail(sock, 'D', err);
	if (send_ready(sock, notify_fd, ls, n) != 0)
		_exit(127);
	if (notify_fd >= 0)
		close(notify_fd);
	for (size_t i = 0; i < n; i++)
		close(ls[i].fd);
	if (recv(sock, &go, 1, 0) != 1 || go != 'G')
		_exit(127);	/* the parent said no, or is gone */
	execve(kw_sb_plan_exec_path(p), argv, envp);
	snprintf(err, sizeof(err), "exec %.200s: %s", kw_sb_plan_exec_path(p), strerror(errno));
	child_fail(sock, 'I', err);
}

/* ---- the parent ---- */

struct kw_sb_serve {
	const struct kw_sandbox_plan *plan;
	int notify_fd;
	int relay_fd;		/* the relay's listener, until the relay hook takes it */
	struct kw_sb_listener ls[KW_SB_MAX_LISTENERS + 1];
	size_t n;
	int stop[2];
	pthread_t guard, net;
	bool guard_on, net_on;
};

static void *
guard_thread(void *arg)
{
	struct kw_sb_serve *s = arg;

	kw_sb_exec_guard_serve(s->notify_fd, s->stop[0]);
	return NULL;
}

static void *
net_thread(void *arg)
{
	struct kw_sb_serve *s = arg;

	kw_sb_net_serve(s->plan, s->ls, s->n, s->stop[0]);
	return NULL;
}

/* The child's message; fds land in s.  0, or -1 when the child failed (m->text says why). */
static int
receive(int sock, struct kw_sb_msg *m, struct kw_sb_serve *s)
{
	int fds[KW_SB_MAX_LISTENERS + 1];
	char cbuf[CMSG_SPACE(sizeof(fds))];
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
	    .msg_controllen = sizeof(cbuf) };
	size_t nfd = 0, k = 0;
	ssize_t got;

	memset(m, 0, sizeof(*m));
	while ((got = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); got > 0 && c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(fds, CMSG_DATA(c), nfd * sizeof(int));
		}
	if (got != (ssize_t)sizeof(*m) || m->tag != 'R' || m->n_listeners > KW_SB_MAX_LISTENERS ||
	    nfd != m->has_notify + m->n_listeners) {
		for (size_t i = 0; i < nfd; i++)
			close(fds[i]);
		if (got <= 0)
			snprintf(m->text, sizeof(m->text), "the sandboxed child ended before it "
			    "was ready");
		m->text[sizeof(m->text) - 1] = '\0';
		return -1;
	}
	if (m->has_notify)
		s->notify_fd = fds[k++];
	for (unsigned i = 0; i < m->n_listeners; i++, k++) {
		/* The relay is the caller's to serve, never the network filter's. */
		if (m->l[i].is_relay && s->relay_fd < 0) {
			s->relay_fd = fds[k];
			continue;
		} else if (m->l[i].is_relay) {
			close(fds[k]);
			continue;
		}
		s->ls[s->n++] = (struct kw_sb_listener){ .fd = fds[k], .port = m->l[i].port,
		    .is_proxy = m->l[i].is_proxy };
	}
	return 0;
}

static int
start_serving(struct kw_sb_serve *s)
{
	const struct kw_sandbox_plan *p = s->plan;

	/* Without a namespace of its own, the filter listens where the plan bound it. */
	if (!p->netns && p->net == KW_SB_NET_FILTERED && p->proxy_fd >= 0) {
		int fd = fcntl(p->proxy_fd, F_DUPFD_CLOEXEC, 3);

		if (fd < 0)
			return KW_ERR_IO;
		s->ls[s->n++] = (struct kw_sb_listener){ .fd = fd, .port = p->proxy_port,
		    .is_proxy = true };
	}
	if (!p->netns && p->relay && p->relay_fd >= 0 &&
	    (s->relay_fd = fcntl(p->relay_fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return KW_ERR_IO;
	if (pipe2(s->stop, O_CLOEXEC) != 0)
		return KW_ERR_IO;
	if (s->notify_fd >= 0) {
		if (pthread_create(&s->guard, NULL, guard_thread, s) != 0)
			return KW_ERR_IO;
		s->guard_on = true;
	}
	if (s->n > 0) {
		if (pthread_create(&s->net, NULL, net_thread, s) != 0)
			return KW_ERR_IO;
		s->net_on = true;
	}
	return 0;
}

static void
stop_serving(struct kw_sb_serve *s)
{
	if (s->stop[1] >= 0)
		(void)!write(s->stop[1], "x", 1);
	if (s->guard_on)
		pthread_join(s->guard, NULL);
	if (s->net_on)
		pthread_join(s->net, NULL);
	else
		for (size_t i = 0; i < s->n; i++)
			close(s->ls[i].fd);
	if (s->notify_fd >= 0)
		close(s->notify_fd);
	if (s->relay_fd >= 0)
		close(s->relay_fd);
	if (s->stop[0] >= 0)
		close(s->stop[0]);
	if (s->stop[1] >= 0)
		close(s->stop[1]);
}

/* The relay's listener goes to the caller's hook, which owns it from now on. */
static int
hand_relay(struct kw_sb_serve *s, kw_sandbox_relay_fn relay, void *arg)
{
	int fd = s->relay_fd;

	s->relay_fd = -1;
	return relay(arg, fd);
}

static int
wait_child(pid_t pid)
{
	int status = 0;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 127;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 127;
}

int
kw_sandbox_launch(const struct kw_sandbox_plan *p, char *const argv[], char *const envp[],
    kw_sandbox_ready_fn ready, void *ready_arg, kw_sandbox_relay_fn relay, void *relay_arg,
    int *ret_status, char *err, size_t err_len)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, fwd = { .sa_handler = forward_signal,
	    .sa_flags = SA_RESTART }, old[4];
	static const int sigs[4] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP };
	struct kw_sb_serve s = { .plan = p, .notify_fd = -1, .relay_fd = -1, .stop = { -1, -1 } };
	struct kw_sb_msg m;
	int sv[2], r = 0;
	pid_t pid;

	*ret_status = 127;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		snprintf(err, err_len, "socketpair: %s", strerror(errno));
		return KW_ERR_IO;
	}
	for (int i = 0; i < 4; i++)
		sigaction(sigs[i], i < 2 ? &ign : &fwd, &old[i]);
	if ((pid = fork()) == 0) {
		for (int i = 0; i < 4; i++)
			sigaction(sigs[i], &old[i], NULL);
		close(sv[0]);
		child_main(p, argv, envp, sv[1]);
	}
	close(sv[1]);
	if (pid < 0) {
		snprintf(err, err_len, "fork: %s", strerror(errno));
		r = KW_ERR_IO;
		goto out;
	}
	kw_sb_child = pid;
	if (receive(sv[0], &m, &s) != 0) {
		snprintf(err, err_len, "sandbox: %s", m.text);
		r = m.tag == 'I' ? KW_ERR_IO : KW_ERR_DENIED;
		wait_child(pid);
		goto out;
	}
	if (start_serving(&s) != 0) {
		snprintf(err, err_len, "sandbox: cannot start serving the child: %s",
		    strerror(errno));
		r = KW_ERR_IO;
	} else if (p->relay && relay && s.relay_fd < 0) {
		snprintf(err, err_len, "sandbox: the broker relay's socket is missing");
		r = KW_ERR_INTERNAL;
	} else if (p->relay && relay && (r = hand_relay(&s, relay, relay_arg)) != 0) {
		snprintf(err, err_len, "sandbox: the broker relay did not start; not started");
	} else if (ready && (r = ready(ready_arg)) != 0) {
		snprintf(err, err_len, "sandbox: the run was not recorded; not started");
	}
	if (r != 0 || send(sv[0], "G", 1, MSG_NOSIGNAL) != 1) {
		kill(pid, SIGKILL);
		wait_child(pid);
		r = r ? r : KW_ERR_IO;
		goto out;
	}
	/* The socket closes at exec (CLOEXEC); a message means exec failed. */
	if (recv(sv[0], &m, sizeof(m), 0) == (ssize_t)sizeof(m)) {
		m.text[sizeof(m.text) - 1] = '\0';
		snprintf(err, err_len, "sandbox: %s", m.text);
		r = KW_ERR_IO;
	}
	*ret_status = wait_child(pid);
 out:
	kw_sb_child = 0;
	stop_serving(&s);
	close(sv[0]);
	for (int i = 0; i < 4; i++)
		sigaction(sigs[i], &old[i], NULL);
	return r;
}
