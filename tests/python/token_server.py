#!/usr/bin/env python3
"""A Docker registry token service for the end-to-end tests (docker distribution's
"token" auth, which notary-server uses): HTTPS, checks HTTP basic credentials and
issues ES256 JWTs that notary-server's token access controller accepts.

    token_server.py --cert server.crt --key server.key --bundle OUT.pem \
        --issuer ISSUER --username USER --log ISSUED.log

The password comes from $TOKEN_SERVER_PASSWORD (not argv). At start it makes a
fresh P-256 token-signing key and a self-signed CA certificate for it, writes the
certificate to --bundle (notary-server's `rootcertbundle`), listens on 127.0.0.1 on
a free port and prints `LISTENING <port>` on stdout.

GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=..][&account=USER]:
  * no credentials at all: 200 with an anonymous token granting nothing (`sub` "",
    `access` []), as Docker Hub does for a public pull; notary-server then answers 401
    and a client such as `notary list` retries with its login. Logged `ANONYMOUS`;
  * wrong basic credentials, or `account` naming another user: 401;
  * else 200 `{"token": JWT, "access_token": JWT, "expires_in": 300, "issued_at"}`,
    the JWT header `{"typ":"JWT","alg":"ES256","x5c":[cert]}`, claims iss, sub, aud
    (= service), exp, nbf, iat, jti and `access` granting every requested action.
Each issued token appends one line `ISSUED <scope...>` to --log (tests count them).
"""

import argparse
import base64
import datetime
import hmac
import http.server
import json
import os
import secrets
import ssl
import sys
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signing_identity():
    """A P-256 key and a self-signed CA certificate for it (the rootcertbundle)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tufkey test token issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def parse_scope(scope: str):
    """`repository:NAME:a,b` -> (type, NAME, [a, b]); NAME may contain ':'."""
    kind, rest = scope.split(":", 1)
    name, actions = rest.rsplit(":", 1)
    return kind, name, [a for a in actions.split(",") if a]


def make_token(key, cert, issuer, service, subject, scopes):
    header = {
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()],
    }
    now = int(time.time())
    access = []
    for scope in scopes:
        kind, name, actions = parse_scope(scope)
        access.append({"type": kind, "name": name, "actions": actions})
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": service,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": secrets.token_hex(16),
        "access": access,
    }
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signing_input + "." + b64url(signature)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    password = os.environ["TOKEN_SERVER_PASSWORD"]

    key, cert = signing_identity()
    with open(args.bundle, "wb") as bundle:
        bundle.write(cert.public_bytes(serialization.Encoding.PEM))

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="tufkey test tokens"')
            self.end_headers()
            self.wfile.write(data)

        def authenticated(self):
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return False
            try:
                user, _, given = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
            return hmac.compare_digest(user, args.username) and hmac.compare_digest(given, password)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/token":
                return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "no such path"}]})
            query = urllib.parse.parse_qs(url.query)
            scopes = query.get("scope", [])
            service = query.get("service", [""])[0]
            if "Authorization" not in self.headers and "account" not in query:
                token = make_token(key, cert, args.issuer, service, "", [])
                with open(args.log, "a") as log:
                    log.write("ANONYMOUS " + " ".join(scopes) + "\n")
                return self.reply(200, {"token": token, "access_token": token,
                                        "expires_in": 300})
            account = query.get("account", [args.username])[0]
            if not self.authenticated() or account != args.username:
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
            token = make_token(key, cert, args.issuer, service, args.username, scopes)
            with open(args.log, "a") as log:
                log.write("ISSUED " + " ".join(scopes) + "\n")
            issued_at = datetime.datetime.now(datetime.timezone.utc).isoformat()
            self.reply(200, {"token": token, "access_token": token, "expires_in": 300,
                             "issued_at": issued_at})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"LISTENING {server.server_address[1]}", flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
