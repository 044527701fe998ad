"""
Test certificates made with the `openssl` command in a directory of the
test's own (../shared/TESTING.md, "TLS with a test CA").

The API proxy verifies the upstream's certificate against the system's CA
store plus `security.network.caFile`; the tests serve the stand-in Messages
API over real TLS, so they need a CA the proxy is told to trust and
certificates it must refuse:

    ca = TestCA(directory)          # makes everything at once (P-256, 2 days)
    ca.ca_pem                       # the CA to put in security.network.caFile
    ca.server                       # (cert, key) for 127.0.0.1 and localhost
    ca.other_server                 # (cert, key) for the same names, signed by
                                    #   an unrelated CA (a "wrong certificate")
    ca.mismatch_server              # (cert, key) signed by the test CA for
                                    #   wrong.example only (a name mismatch)
    ca.other_ca_pem                 # the unrelated CA itself

Certificates are 0644 in a 0755 directory: the broker (root) and its proxy
read them, and so do the test users' tools (curl --cacert); private keys are
0600 (only the test process, which serves them, reads those).
"""
import os
import subprocess

DAYS = "2"


def openssl(*args, cwd):
    cp = subprocess.run(["openssl"] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True, timeout=60)
    if cp.returncode != 0:
        raise AssertionError("openssl %s failed (%d):\n%s" % (" ".join(args), cp.returncode,
                                                             cp.stderr))
    return cp.stdout


def make_ca(directory, name, cn):
    """A self-signed EC P-256 CA: (pem, key) paths."""
    pem = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", pem, "-days", DAYS, "-subj", "/CN=" + cn,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return pem, key


def make_leaf(directory, name, ca, cn, san):
    """A server certificate signed by ca ((pem, key)) for the subjectAltName
    san ("DNS:localhost,IP:127.0.0.1"): (cert, key) paths."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n"
                "basicConstraints=CA:FALSE\n" % san)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + cn, cwd=directory)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-out", cert, "-days", DAYS, "-extfile", ext, cwd=directory)
    return cert, key


class TestCA:
    __test__ = False        # not a pytest test class

    def __init__(self, directory):
        self.dir = os.path.join(directory, "tls")
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        os.chmod(self.dir, 0o755)
        ca = make_ca(self.dir, "ca", "keywarden test CA")
        other = make_ca(self.dir, "other-ca", "unrelated test CA")
        self.ca_pem, self.ca_key = ca
        self.other_ca_pem = other[0]
        names = "DNS:localhost,IP:127.0.0.1"
        self.server = make_leaf(self.dir, "server", ca, "localhost", names)
        self.other_server = make_leaf(self.dir, "other-server", other, "localhost", names)
        self.mismatch_server = make_leaf(self.dir, "mismatch-server", ca, "wrong.example",
                                         "DNS:wrong.example")
        for n in os.listdir(self.dir):
            os.chmod(os.path.join(self.dir, n), 0o600 if n.endswith(".key") else 0o644)
