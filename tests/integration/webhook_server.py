"""A local HTTP server standing in for an alert webhook (http.server in a thread).

Every POST is kept as (path, headers, body bytes); the answer is 204, or
the status set in .status.
"""
import http.server
import json
import threading

from conftest import IO_TIMEOUT, wait_for


class WebhookServer:
    def __init__(self):
        self.posts = []
        self.status = 204
        self.lock = threading.Lock()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with hook.lock:
                    hook.posts.append((self.path, dict(self.headers), body))
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d/hook" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def received(self):
        with self.lock:
            return list(self.posts)

    def bodies(self):
        """The JSON bodies posted so far, oldest first."""
        return [json.loads(b.decode()) for _, _, b in self.received()]

    def wait(self, n, timeout=IO_TIMEOUT * 2):
        wait_for(lambda: len(self.received()) >= n, timeout,
                 what="%d webhook post(s)" % n)
        return self.bodies()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=IO_TIMEOUT)
