"""A real SMTP server for alert mail: aiosmtpd with its Mailbox handler.

Each message the broker sends lands as one file in DIR/new (a Maildir);
tests poll that directory with a deadline.  aiosmtpd adds X-MailFrom and
X-RcptTo headers with the envelope addresses.
"""
import email
import email.policy
import os
import socket
import subprocess

from conftest import IO_TIMEOUT, clean_env, end_process, wait_for


def free_port():
    """A TCP port nothing listens on right now (bound to 0, then released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class MailServer:
    """aiosmtpd on 127.0.0.1:port writing a Maildir at directory."""

    def __init__(self, directory):
        self.dir = directory
        self.port = free_port()
        self.url = "smtp://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(os.path.dirname(directory) or ".",
                                     "aiosmtpd.%d.log" % self.port), "wb")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:%d" % self.port,
             "-c", "aiosmtpd.handlers.Mailbox", directory],
            env=clean_env(), stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        wait_for(lambda: self.proc.poll() is not None or port_open(self.port), IO_TIMEOUT,
                 what="aiosmtpd listening on port %d" % self.port)
        assert self.proc.poll() is None, "aiosmtpd exited with %d" % self.proc.returncode

    def messages(self):
        """The messages delivered so far (email.message.EmailMessage), oldest first."""
        new = os.path.join(self.dir, "new")
        if not os.path.isdir(new):
            return []
        out = []
        for name in os.listdir(new):
            path = os.path.join(new, name)
            with open(path, "rb") as f:
                msg = email.message_from_binary_file(f, policy=email.policy.default)
            out.append((os.stat(path).st_mtime_ns, name, msg))
        return [m for _, _, m in sorted(out, key=lambda t: (t[0], t[1]))]

    def wait(self, n, timeout=IO_TIMEOUT * 2):
        """Wait until at least n messages arrived; returns all of them."""
        return wait_for(lambda: len(self.messages()) >= n and self.messages(), timeout,
                        what="%d alert mail(s) in %s/new" % (n, self.dir))

    def stop(self):
        end_process(self.proc, IO_TIMEOUT)
        self.log.close()


def body_text(msg):
    """The plain-text body of msg, as a str."""
    part = msg.get_body(preferencelist=("plain",)) or msg
    return part.get_content()
