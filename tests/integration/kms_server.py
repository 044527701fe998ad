#!/usr/bin/python3
"""
A stand-in for AWS KMS on 127.0.0.1, for the aws-kms provider's tests.

Speaks the KMS JSON protocol (POST /, X-Amz-Target: TrentService.OP,
Content-Type: application/x-amz-json-1.1) for GenerateDataKey, Encrypt and Decrypt,
with an AES-256-GCM key of its own (OpenSSL's libcrypto through ctypes, so
the test suite needs no Python package beyond the standard library).

Every request must carry a SigV4 signature, which is checked for real: the
Authorization header's shape (AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/
kms/aws4_request, SignedHeaders=..., Signature=64 hex), X-Amz-Date, and the
signature itself recomputed from the canonical request with the secret key
the server was given.  A request that fails gets 400 and a KMS-style error
({"__type": ..., "message": ...}).

Each request is appended to the --record file as one JSON line (method,
path, headers, body, op, status, error, signature_ok, credential, ...), so
tests can assert on what the client sent.

  kms_server.py --record FILE --access-key AKID --secret-key SECRET
                [--session-token TOKEN] [--region us-east-1]
                [--key-id ARN ...] [--aes-key-file FILE]

Prints the port it listens on (port 0: the kernel picks one) on stdout.
"""
import argparse
import base64
import ctypes
import ctypes.util
import datetime
import hashlib
import hmac
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTENT_TYPE = "application/x-amz-json-1.1"
AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([a-z0-9-]+)/kms/aws4_request,"
                     r"\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$")
AMZ_DATE_RE = re.compile(r"^(\d{8})T\d{6}Z$")
BLOB_MAGIC = b"KWTESTKMS1"


# --------------------------------------------------------------------------
# AES-256-GCM from libcrypto

_crypto = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
_crypto.EVP_CIPHER_CTX_new.restype = ctypes.c_void_p
_crypto.EVP_CIPHER_CTX_free.argtypes = [ctypes.c_void_p]
_crypto.EVP_aes_256_gcm.restype = ctypes.c_void_p
for _f in ("EVP_EncryptInit_ex", "EVP_DecryptInit_ex"):
    getattr(_crypto, _f).argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.c_char_p, ctypes.c_char_p]
for _f in ("EVP_EncryptUpdate", "EVP_DecryptUpdate"):
    getattr(_crypto, _f).argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, ctypes.c_int]
for _f in ("EVP_EncryptFinal_ex", "EVP_DecryptFinal_ex"):
    getattr(_crypto, _f).argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.POINTER(ctypes.c_int)]
_crypto.EVP_CIPHER_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                        ctypes.c_void_p]
EVP_CTRL_GCM_GET_TAG = 0x10
EVP_CTRL_GCM_SET_TAG = 0x11


def _gcm(encrypt, key, iv, aad, data, tag=None):
    """(output, tag) for encryption; output or None (bad tag) for decryption."""
    ctx = _crypto.EVP_CIPHER_CTX_new()
    try:
        pre = "EVP_Encrypt" if encrypt else "EVP_Decrypt"
        n = ctypes.c_int(0)
        out = ctypes.create_string_buffer(len(data) + 16)
        assert getattr(_crypto, pre + "Init_ex")(ctx, _crypto.EVP_aes_256_gcm(), None, key, iv) == 1
        assert getattr(_crypto, pre + "Update")(ctx, None, ctypes.byref(n), aad, len(aad)) == 1
        assert getattr(_crypto, pre + "Update")(ctx, out, ctypes.byref(n), data, len(data)) == 1
        total = n.value
        if not encrypt:
            tagbuf = ctypes.create_string_buffer(bytes(tag), 16)
            assert _crypto.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tagbuf) == 1
        ok = getattr(_crypto, pre + "Final_ex")(ctx, ctypes.byref(out, total), ctypes.byref(n))
        if not encrypt:
            return out.raw[:total] if ok == 1 else None
        assert ok == 1
        tagbuf = ctypes.create_string_buffer(16)
        assert _crypto.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tagbuf) == 1
        return out.raw[:total], tagbuf.raw
    finally:
        _crypto.EVP_CIPHER_CTX_free(ctx)


def seal(key, key_id, plaintext):
    """A blob: magic, key id (length-prefixed), IV, ciphertext, tag; key id bound as AAD."""
    kid = key_id.encode()
    iv = os.urandom(12)
    ct, tag = _gcm(True, key, iv, kid, plaintext)
    return BLOB_MAGIC + len(kid).to_bytes(2, "big") + kid + iv + ct + tag


def unseal(key, blob):
    """(key_id, plaintext), or None for anything that does not open."""
    if not blob.startswith(BLOB_MAGIC) or len(blob) < len(BLOB_MAGIC) + 2:
        return None
    p = len(BLOB_MAGIC)
    n = int.from_bytes(blob[p:p + 2], "big")
    kid, rest = blob[p + 2:p + 2 + n], blob[p + 2 + n:]
    if len(kid) != n or len(rest) < 12 + 16:
        return None
    pt = _gcm(False, key, rest[:12], kid, rest[12:-16], rest[-16:])
    return None if pt is None else (kid.decode(), pt)


# --------------------------------------------------------------------------
# SigV4, as AWS documents it (canonical request -> string to sign -> HMAC chain)

def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_expected(secret, method, path, query, headers, signed, body, amz_date, scope):
    """The hex signature for a request; headers: lower-case name -> raw value."""
    canon_headers = "".join("%s:%s\n" % (h, " ".join(headers.get(h, "").split()))
                            for h in signed)
    pairs = sorted(p.split("=", 1) if "=" in p else [p, ""] for p in query.split("&") if p)
    canon_query = "&".join("%s=%s" % (k, v) for k, v in pairs)
    creq = "\n".join([method, path or "/", canon_query, canon_headers, ";".join(signed),
                      hashlib.sha256(body).hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    date, region, service, term = scope.split("/")
    k = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, service, term):
        k = _hmac(k, part)
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


class KmsError(Exception):
    def __init__(self, type_, message, status=400):
        super().__init__(message)
        self.type = type_
        self.message = message
        self.status = status


class Handler(BaseHTTPRequestHandler):
    server_version = "kms-test"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the record file is the log
        pass

    def do_GET(self):
        self._handle()

    def do_PUT(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def _handle(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec = {"method": self.command, "path": self.path, "headers": headers,
               "body": body.decode("utf-8", "replace"), "op": None, "signature_ok": False,
               "credential": None, "signed_headers": None}
        try:
            self._check_signature(rec, headers, body)
            reply = self._dispatch(rec, headers, body)
            status, doc = 200, reply
        except KmsError as e:
            status = e.status
            doc = {"__type": "com.amazonaws.kms#" + e.type, "message": e.message}
            rec["error"] = e.type + ": " + e.message
        except Exception as e:  # a bug here must show in the record, not hang the client
            status = 500
            doc = {"__type": "com.amazonaws.kms#KMSInternalException", "message": repr(e)}
            rec["error"] = "KMSInternalException: " + repr(e)
        rec["status"] = status
        data = json.dumps(doc).encode()
        rec["reply"] = data.decode()
        self.server.record(rec)
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _check_signature(self, rec, headers, body):
        cfg = self.server.cfg
        auth = headers.get("authorization", "")
        m = AUTH_RE.match(auth)
        if not m:
            raise KmsError("IncompleteSignatureException",
                           "Authorization is not AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/"
                           "kms/aws4_request, SignedHeaders=..., Signature=<64 hex>: %r" % auth)
        akid, date, region, signed, sig = m.groups()
        rec["credential"] = "%s/%s/%s/kms/aws4_request" % (akid, date, region)
        rec["signed_headers"] = signed
        amz_date = headers.get("x-amz-date", "")
        dm = AMZ_DATE_RE.match(amz_date)
        if not dm or dm.group(1) != date:
            raise KmsError("IncompleteSignatureException",
                           "X-Amz-Date %r missing or not of the credential's date" % amz_date)
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
        if abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) > 900:
            raise KmsError("InvalidSignatureException", "X-Amz-Date is more than 15 min off")
        names = signed.split(";")
        if names != sorted(names) or "host" not in names or "x-amz-date" not in names:
            raise KmsError("IncompleteSignatureException",
                           "SignedHeaders must be sorted and include host and x-amz-date: %r"
                           % signed)
        for h in headers:
            if h.startswith("x-amz-") and h not in names:
                raise KmsError("IncompleteSignatureException", "header %s is not signed" % h)
        if akid != cfg.access_key:
            raise KmsError("UnrecognizedClientException", "unknown access key %r" % akid)
        if region != cfg.region:
            raise KmsError("InvalidSignatureException",
                           "credential region %r, this endpoint is %r" % (region, cfg.region))
        if (cfg.session_token or None) != headers.get("x-amz-security-token"):
            raise KmsError("UnrecognizedClientException", "security token missing or wrong")
        path, _, query = self.path.partition("?")
        scope = "%s/%s/kms/aws4_request" % (date, region)
        want = sigv4_expected(cfg.secret_key, self.command, path, query, headers, names, body,
                              amz_date, scope)
        if not hmac.compare_digest(want, sig):
            raise KmsError("InvalidSignatureException",
                           "The request signature we calculated does not match the signature "
                           "you provided")
        rec["signature_ok"] = True

    def _dispatch(self, rec, headers, body):
        cfg = self.server.cfg
        if self.command != "POST" or self.path != "/":
            raise KmsError("UnknownOperationException", "POST / only")
        if headers.get("content-type") != CONTENT_TYPE:
            raise KmsError("SerializationException",
                           "Content-Type must be %s" % CONTENT_TYPE)
        target = headers.get("x-amz-target", "")
        op = target[len("TrentService."):] if target.startswith("TrentService.") else None
        rec["op"] = op
        try:
            req = json.loads(body.decode())
            assert isinstance(req, dict)
        except (ValueError, AssertionError):
            raise KmsError("SerializationException", "body is not a JSON object")
        key_id = req.get("KeyId")
        if key_id is not None and cfg.key_ids and key_id not in cfg.key_ids:
            raise KmsError("NotFoundException", "Key '%s' does not exist" % key_id)
        if op == "GenerateDataKey":
            if not key_id:
                raise KmsError("ValidationException", "KeyId is required")
            if req.get("KeySpec") != "AES_256" and req.get("NumberOfBytes") != 32:
                raise KmsError("ValidationException", "KeySpec AES_256 expected")
            dek = os.urandom(32)
            return {"KeyId": key_id,
                    "Plaintext": base64.b64encode(dek).decode(),
                    "CiphertextBlob": base64.b64encode(seal(cfg.aes_key, key_id, dek)).decode()}
        if op == "Encrypt":
            if not key_id:
                raise KmsError("ValidationException", "KeyId is required")
            try:
                plaintext = base64.b64decode(req.get("Plaintext") or "", validate=True)
            except ValueError:
                raise KmsError("SerializationException", "Plaintext is not base64")
            if not 1 <= len(plaintext) <= 4096:
                raise KmsError("ValidationException",
                               "Plaintext must be 1 to 4096 bytes, not %d" % len(plaintext))
            return {"KeyId": key_id,
                    "CiphertextBlob": base64.b64encode(seal(cfg.aes_key, key_id,
                                                            plaintext)).decode(),
                    "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}
        if op == "Decrypt":
            try:
                blob = base64.b64decode(req.get("CiphertextBlob") or "", validate=True)
            except ValueError:
                raise KmsError("SerializationException", "CiphertextBlob is not base64")
            opened = unseal(cfg.aes_key, blob)
            if opened is None:
                raise KmsError("InvalidCiphertextException", "")
            blob_key, dek = opened
            if key_id is not None and key_id != blob_key:
                raise KmsError("IncorrectKeyException",
                               "The key ID in the request does not identify the key that "
                               "encrypted the ciphertext")
            return {"KeyId": blob_key, "Plaintext": base64.b64encode(dek).decode(),
                    "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}
        raise KmsError("UnknownOperationException", "unknown target %r" % target)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, cfg):
        super().__init__(("127.0.0.1", 0), Handler)
        self.cfg = cfg
        self.lock = threading.Lock()

    def record(self, rec):
        with self.lock, open(self.cfg.record, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--record", required=True, help="append one JSON line per request here")
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret-key", required=True)
    ap.add_argument("--session-token", default="")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--key-id", action="append", default=[], dest="key_ids",
                    help="the key ARNs that exist (default: any)")
    ap.add_argument("--aes-key-file", help="keep the server's AES key here across runs")
    cfg = ap.parse_args()
    if cfg.aes_key_file and os.path.exists(cfg.aes_key_file):
        with open(cfg.aes_key_file, "rb") as f:
            cfg.aes_key = f.read()
    else:
        cfg.aes_key = os.urandom(32)
        if cfg.aes_key_file:
            fd = os.open(cfg.aes_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(cfg.aes_key)
    assert len(cfg.aes_key) == 32
    srv = Server(cfg)
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    sys.exit(main())
