"""
The API proxy's transport security, end to end (issue 16): the real broker
spawns the real keywarden-proxy (apiproxy_support.py), alice asks for a proxy
token with the real CLI (`keywarden key get anthropic --proxy`), and her
calls go through the proxy to the stand-in Messages API over real TLS, with
certificates made by openssl in the test (tls_ca.py).

Each way the upstream can be wrong is refused with a clear error, and the
key is never sent to it:
  - an upstream that offers only TLS 1.2 (inTransit.protocol TLS1.3): the
    call gets a 502 api_error naming TLS; the handshake fails at the stand-in;
  - a certificate from another CA, and one for another name: 502 naming the
    certificate; nothing reaches the stand-in;
  - a host outside security.network.allowedHosts, and an http:// upstream
    under enforceHttps: the broker refuses to start, with the proxy's reason;
  - verifyCertificates false: the start warns (and the unverified upstream
    is then reached).
And through a corporate CONNECT proxy (connect_proxy.py) with basic auth
from ${PROXY_USER}/${PROXY_PASS} in the broker's environment: the proxy's
log shows the CONNECT to the upstream and the credentials it got; wrong
credentials give a clear error; the expanded password is in no log, audit
record, configuration file or configuration output.
"""
import json
import os
import ssl

import pytest

from anthropic_server import AnthropicServer
from apiproxy_support import KEY, REPLY, apiproxy, tls_ca, upstream  # noqa: F401
from conftest import IO_TIMEOUT, wait_for
from connect_proxy import ConnectProxy
from users import USERS, id_broker  # noqa: F401


def alice_token(kw):
    """A proxy token from the real CLI as alice (what apiKeyHelper would print)."""
    cp = kw.as_alice("key", "get", "anthropic", "--proxy")
    assert cp.returncode == 0, cp
    token = cp.stdout.strip()
    assert token.startswith("kwp1_") and KEY not in cp.stdout, cp.stdout
    return token


def api_error(status, text, want_status, kind):
    assert status == want_status, (status, text)
    doc = json.loads(text)
    assert doc["type"] == "error" and doc["error"]["type"] == kind, doc
    assert doc["error"]["message"].startswith("keywarden"), doc
    return doc["error"]["message"]


def stand_in(tmpdir, name, tls, **kw):
    return AnthropicServer(os.path.join(tmpdir, name + ".jsonl"), reply_text=REPLY,
                           expect_key=KEY, tls=tls, **kw).start()


def everything_text(kw):
    """The broker's stderr (its proxy's included), every audit record, the
    configuration file and the data directory's files, as one text."""
    parts = [kw.b.stderr(), json.dumps(kw.b.audit_rows())]
    with open(kw.b.config_path) as f:
        parts.append(f.read())
    for root, _, files in os.walk(kw.b.datadir):
        for n in files:
            with open(os.path.join(root, n), "rb") as f:
                parts.append(f.read().decode("latin-1"))
    return "\n".join(parts)


# --------------------------------------------------------------------------
# The baseline: TLS 1.3 to a certificate of the test CA works
# --------------------------------------------------------------------------

def test_tls13_upstream_with_the_test_ca_gets_the_key(apiproxy):
    kw = apiproxy()
    status, _, text = kw.call(alice_token(kw))
    assert status == 200, text
    assert json.loads(text)["content"][0]["text"] == REPLY
    reqs = kw.server.messages()
    assert len(reqs) == 1 and reqs[0]["x-api-key"] == KEY, reqs
    assert reqs[0]["tls"] == "TLSv1.3", reqs
    assert "kwp1_" not in json.dumps(reqs), "the proxy token reached the API"


# --------------------------------------------------------------------------
# Refused per call: the upstream's TLS
# --------------------------------------------------------------------------

def test_a_tls12_only_upstream_is_refused(apiproxy, tls_ca, tmpdir_short):
    srv = stand_in(tmpdir_short, "tls12", tls_ca.server, max_version=ssl.TLSVersion.TLSv1_2)
    try:
        kw = apiproxy(server=srv)
        status, _, text = kw.call(alice_token(kw))
        msg = api_error(status, text, 502, "api_error")
        assert "TLS" in msg or "SSL" in msg or "protocol" in msg, msg
        assert srv.requests() == [], "a request reached the TLS 1.2 upstream"
        assert srv.tls_failures(), "the stand-in saw no failed handshake"
    finally:
        srv.stop()


@pytest.mark.parametrize("which,words", [
    ("other_server", ("certificate", "issuer", "verify")),
    ("mismatch_server", ("certificate", "name", "subject", "verify")),
], ids=["other-ca", "name-mismatch"])
def test_a_certificate_the_proxy_cannot_trust_is_refused(apiproxy, tls_ca, tmpdir_short,
                                                         which, words):
    srv = stand_in(tmpdir_short, which, getattr(tls_ca, which))
    try:
        kw = apiproxy(server=srv)
        status, _, text = kw.call(alice_token(kw))
        msg = api_error(status, text, 502, "api_error")
        assert any(w in msg for w in words), msg
        assert srv.requests() == [], "the key went to an upstream the proxy cannot trust"
    finally:
        srv.stop()


# --------------------------------------------------------------------------
# Refused at start: where the upstream is
# --------------------------------------------------------------------------

def test_a_host_outside_allowed_hosts_is_refused_at_start(apiproxy, upstream):
    kw = apiproxy(start=False, extra={"security": {"network": {
        "allowedHosts": ["api.anthropic.com"]}}})
    err = kw.start_refused()
    assert "allowedHosts" in err and "127.0.0.1" in err, err
    assert upstream.requests() == []


def test_an_http_upstream_under_enforce_https_is_refused_at_start(apiproxy, tmpdir_short):
    plain = AnthropicServer(os.path.join(tmpdir_short, "plain.jsonl"), expect_key=KEY).start()
    try:
        kw = apiproxy(start=False, server=plain)
        assert plain.url.startswith("http://")
        err = kw.start_refused()
        assert "enforceHttps" in err and "plain HTTP" in err, err
        assert plain.requests() == []
    finally:
        plain.stop()


def test_verify_certificates_false_warns_at_start(apiproxy, tls_ca, tmpdir_short):
    srv = stand_in(tmpdir_short, "unverified", tls_ca.other_server)
    try:
        kw = apiproxy(server=srv, extra={"security": {"network": {
            "verifyCertificates": False}}})
        assert "verifyCertificates" in kw.b.stderr() and "NOT verified" in kw.b.stderr(), \
            kw.b.stderr()
        # And it does what it warns of: the certificate of another CA is accepted.
        status, _, text = kw.call(alice_token(kw))
        assert status == 200, text
        assert srv.messages()[0]["x-api-key"] == KEY
    finally:
        srv.stop()


# --------------------------------------------------------------------------
# Through a corporate proxy with basic auth from the environment
# --------------------------------------------------------------------------

PROXY_USER = "kwproxyuser"
PROXY_PASS = "Pr0xy-Pa55-" + "x7Qz" * 4


def corporate(px):
    return {"api": {"proxy": {
        "enabled": True, "host": "127.0.0.1", "port": px.port, "protocol": "http",
        "auth": {"type": "basic", "username": "${PROXY_USER}",
                 "password": "${PROXY_PASS}"}}}}


def test_through_a_connect_proxy_with_basic_auth(apiproxy, upstream, tmpdir_short):
    px = ConnectProxy(os.path.join(tmpdir_short, "connect.jsonl"),
                      auth=(PROXY_USER, PROXY_PASS)).start()
    try:
        kw = apiproxy(extra=corporate(px), env={"PROXY_USER": PROXY_USER,
                                               "PROXY_PASS": PROXY_PASS})
        status, _, text = kw.call(alice_token(kw))
        assert status == 200, text
        assert upstream.messages()[0]["x-api-key"] == KEY
        log = px.requests()
        assert log and all(e["target"] == "127.0.0.1:%d" % upstream.port for e in log), log
        assert log[-1]["auth"] == "ok" and log[-1]["user"] == PROXY_USER, log
        assert log[-1]["status"] == 200, log

        # The password never appears expanded: not in the broker's or the
        # proxy's output, the audit trail, the data directory or the config file,
        # nor in what the CLI shows of the configuration.
        assert PROXY_PASS not in everything_text(kw)
        for args in (("config", "get", "api.proxy.auth.password"), ("config", "list"),
                     ("config", "list", "--json"), ("status", "--json")):
            cp = kw.b.cli(*args, env={"KEYWARDEN_CONFIG": kw.b.config_path})
            assert PROXY_PASS not in cp.stdout + cp.stderr, args
    finally:
        px.stop()


def test_wrong_proxy_credentials_give_a_clear_error(apiproxy, upstream, tmpdir_short):
    px = ConnectProxy(os.path.join(tmpdir_short, "connect.jsonl"),
                      auth=(PROXY_USER, PROXY_PASS)).start()
    try:
        wrong = "not-" + PROXY_PASS
        kw = apiproxy(extra=corporate(px), env={"PROXY_USER": PROXY_USER,
                                               "PROXY_PASS": wrong})
        status, _, text = kw.call(alice_token(kw))
        msg = api_error(status, text, 502, "api_error")
        assert "407" in msg or "proxy" in msg.lower(), msg
        assert upstream.requests() == [], "the call went past a proxy that refused it"
        log = px.requests()
        assert log and log[-1]["auth"] == "wrong" and log[-1]["status"] == 407, log
        assert wrong not in everything_text(kw) and wrong not in text
    finally:
        px.stop()


# --------------------------------------------------------------------------
# What the CLI shows of the running proxy
# --------------------------------------------------------------------------

def test_status_and_doctor_see_the_running_proxy(apiproxy):
    kw = apiproxy()
    cp = kw.as_alice("status")
    assert cp.returncode == 0, cp
    line = [l for l in cp.stdout.splitlines() if l.startswith("api proxy")]
    assert line and "127.0.0.1:%d" % kw.port in line[0] and "(running)" in line[0], cp.stdout
    doc = json.loads(kw.as_alice("status", "--json").stdout)
    assert doc["api_proxy"]["listen"] == "127.0.0.1:%d" % kw.port, doc
    assert doc["api_proxy"]["running"] is True, doc

    # doctor, with alice's copy of the broker's configuration.
    conf = os.path.join(kw.alice.home, "keywarden.json")
    with open(kw.b.config_path) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text)
    os.chown(conf, *USERS["alice"])
    os.chmod(conf, 0o600)
    cp = kw.as_alice("doctor", "--json", env={"HOME": kw.alice.home, "KEYWARDEN_CONFIG": conf})
    items = json.loads(cp.stdout)
    items = items["result"] if isinstance(items, dict) else items
    got = {it["check"]: it["status"] for it in items if it["check"].startswith("api-proxy")}
    assert got == {"api-proxy": "pass", "api-proxy.listen": "pass",
                   "api-proxy.upstream": "pass", "api-proxy.tls": "pass"}, items
    # The proxy stopped: doctor says nothing accepts there.
    kw.b.stop()
    cp = kw.as_alice("doctor", "--json", env={"HOME": kw.alice.home, "KEYWARDEN_CONFIG": conf})
    items = json.loads(cp.stdout)["result"]
    listen = [it for it in items if it["check"] == "api-proxy.listen"]
    assert listen and listen[0]["status"] == "fail", items


# --------------------------------------------------------------------------
# An upstream that takes the connection and never answers the handshake
# --------------------------------------------------------------------------

def connections(srv, what, count):
    """The stand-in's connections that went `what`, once there are count of
    them (a stalled one is told when the proxy hangs it up, which the
    proxy's answer may come before)."""
    def seen():
        found = [e for e in srv.events() if e.split(" ", 1)[1].startswith(what)]
        return found if len(found) >= count else None
    found = wait_for(seen, IO_TIMEOUT, what="%d connections %s: %s" % (count, what, srv.events()))
    assert len(found) == count, srv.events()
    return found


def test_a_stalled_handshake_is_tried_once_more_on_a_new_connection(apiproxy, tls_ca,
                                                                     tmpdir_short):
    """The first connection upstream is taken and its TLS hello never
    answered: the proxy gives it its connect budget, then makes the call
    again on a new connection, which is served -- one call upstream, not
    two, and the broker's log says what happened."""
    srv = stand_in(tmpdir_short, "stall-once", tls_ca.server, stall_first=1)
    try:
        kw = apiproxy(server=srv)
        status, _, text = kw.call(alice_token(kw), timeout=60)
        assert status == 200, text
        assert json.loads(text)["content"][0]["text"] == REPLY
        connections(srv, "stalled", 1)
        connections(srv, "handshake done", 1)
        assert len(srv.messages()) == 1, srv.messages()
        assert "trying once more on a new connection" in kw.b.stderr(), kw.b.stderr()
        rows = wait_for(lambda: kw.api_calls() or None, IO_TIMEOUT, what="the call's record")
        assert [r["result"] for r in rows] == ["success"], rows
    finally:
        srv.stop()


def test_an_upstream_that_never_answers_gets_two_attempts_then_a_clear_502(
        apiproxy, tls_ca, tmpdir_short):
    """Both attempts stall: the call gets the Messages API's error shape
    naming the timeout, nothing reached upstream as a request, and the proxy
    (the same process) serves the next call."""
    srv = stand_in(tmpdir_short, "stall-twice", tls_ca.server, stall_first=2)
    try:
        kw = apiproxy(server=srv)
        token = alice_token(kw)
        status, _, text = kw.call(token, timeout=60)
        message = api_error(status, text, 502, "api_error")
        assert "upstream timed out" in message, message
        connections(srv, "stalled", 2)
        assert srv.messages() == [], srv.messages()
        status, _, text = kw.call(token, timeout=60)
        assert status == 200, text
        assert len(srv.messages()) == 1
    finally:
        srv.stop()
