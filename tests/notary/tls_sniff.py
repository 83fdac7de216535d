#!/usr/bin/env python3
"""tls_sniff.py — see exactly what a TLS client (notary-server's gRPC client) offers.

Listens on 127.0.0.1:PORT with DIR/signer.crt (+ optional client-cert requirement from
DIR/ca.crt), reads each connection's ClientHello (MSG_PEEK) and prints the SNI, offered
TLS versions, cipher suites, groups, signature algorithms and ALPN, then completes the
handshake and prints what was negotiated and the client certificate's subject. It does
not speak HTTP/2, so the client's RPC then fails; that is expected.

    python3 tests/notary/tls_sniff.py --certs DIR --port PORT [--max-tls 1.2] [--count 1]
Stdlib only (python3 ssl).
"""
import argparse
import socket
import ssl
import struct

SUITES = {0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384",
          0x1303: "TLS_CHACHA20_POLY1305_SHA256", 0xc02b: "ECDHE_ECDSA_AES_128_GCM_SHA256",
          0xc02c: "ECDHE_ECDSA_AES_256_GCM_SHA384", 0xc02f: "ECDHE_RSA_AES_128_GCM_SHA256",
          0xc030: "ECDHE_RSA_AES_256_GCM_SHA384", 0xcca8: "ECDHE_RSA_CHACHA20_POLY1305",
          0xcca9: "ECDHE_ECDSA_CHACHA20_POLY1305", 0xc009: "ECDHE_ECDSA_AES_128_CBC_SHA",
          0xc00a: "ECDHE_ECDSA_AES_256_CBC_SHA", 0xc013: "ECDHE_RSA_AES_128_CBC_SHA",
          0xc014: "ECDHE_RSA_AES_256_CBC_SHA", 0x009c: "RSA_AES_128_GCM_SHA256",
          0x009d: "RSA_AES_256_GCM_SHA384", 0x002f: "RSA_AES_128_CBC_SHA",
          0x0035: "RSA_AES_256_CBC_SHA", 0x000a: "RSA_3DES_EDE_CBC_SHA", 0x0005: "RSA_RC4_128_SHA",
          0xc012: "ECDHE_RSA_3DES_EDE_CBC_SHA", 0xc007: "ECDHE_ECDSA_RC4_128_SHA",
          0xc011: "ECDHE_RSA_RC4_128_SHA", 0xc023: "ECDHE_ECDSA_AES_128_CBC_SHA256",
          0xc027: "ECDHE_RSA_AES_128_CBC_SHA256", 0x003c: "RSA_AES_128_CBC_SHA256"}
GROUPS = {23: "P-256", 24: "P-384", 25: "P-521", 29: "X25519", 30: "X448"}
SIGALGS = {0x0403: "ecdsa_secp256r1_sha256", 0x0503: "ecdsa_secp384r1_sha384",
           0x0603: "ecdsa_secp521r1_sha512", 0x0804: "rsa_pss_rsae_sha256",
           0x0805: "rsa_pss_rsae_sha384", 0x0806: "rsa_pss_rsae_sha512", 0x0807: "ed25519",
           0x0401: "rsa_pkcs1_sha256", 0x0501: "rsa_pkcs1_sha384", 0x0601: "rsa_pkcs1_sha512",
           0x0201: "rsa_pkcs1_sha1", 0x0203: "ecdsa_sha1"}
VERSIONS = {0x0304: "TLS1.3", 0x0303: "TLS1.2", 0x0302: "TLS1.1", 0x0301: "TLS1.0"}


def parse_client_hello(b):
    out = {}
    if len(b) < 9 or b[0] != 22 or b[5] != 1:
        return {"error": "not a ClientHello"}
    p = 9
    out["legacy_version"] = VERSIONS.get(struct.unpack(">H", b[p:p + 2])[0], "?")
    p += 2 + 32
    p += 1 + b[p]
    n = struct.unpack(">H", b[p:p + 2])[0]; p += 2
    out["cipher_suites"] = [SUITES.get(c, hex(c)) for c in struct.unpack(f">{n // 2}H", b[p:p + n])]
    p += n
    p += 1 + b[p]
    end = p + 2 + struct.unpack(">H", b[p:p + 2])[0]; p += 2
    out["extensions"] = []
    while p + 4 <= min(end, len(b)):
        t, ln = struct.unpack(">HH", b[p:p + 4]); d = b[p + 4:p + 4 + ln]; p += 4 + ln
        out["extensions"].append(t)
        if t == 0:
            out["sni"] = d[5:].decode()
        elif t == 10:
            out["groups"] = [GROUPS.get(g, g) for g in struct.unpack(f">{len(d) // 2 - 1}H", d[2:])]
        elif t == 13:
            out["signature_algorithms"] = [SIGALGS.get(s, hex(s)) for s in struct.unpack(f">{len(d) // 2 - 1}H", d[2:])]
        elif t == 16:
            q, alpn = 2, []
            while q < len(d):
                alpn.append(d[q + 1:q + 1 + d[q]].decode()); q += 1 + d[q]
            out["alpn"] = alpn
        elif t == 43:
            out["supported_versions"] = [VERSIONS.get(v, hex(v)) for v in struct.unpack(f">{d[0] // 2}H", d[1:1 + d[0]])]
    out.setdefault("sni", None)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--certs", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--max-tls", choices=["1.2", "1.3"], default="1.3")
    ap.add_argument("--no-client-auth", action="store_true")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--bind", default="127.0.0.1")
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{a.certs}/signer.crt", f"{a.certs}/signer.key")
    if not a.no_client_auth:
        ctx.load_verify_locations(f"{a.certs}/ca.crt")
        ctx.verify_mode = ssl.CERT_REQUIRED
    if a.max_tls == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    srv = socket.create_server((a.bind, a.port))
    print(f"tls_sniff: listening on {a.bind}:{a.port}", flush=True)
    for _ in range(a.count):
        conn, peer = srv.accept()
        conn.settimeout(10)
        hello = b""
        for _ in range(50):
            hello = conn.recv(16384, socket.MSG_PEEK)
            if len(hello) >= 5 and len(hello) >= 5 + struct.unpack(">H", hello[3:5])[0]:
                break
        for k, v in parse_client_hello(hello).items():
            print(f"ClientHello {k}: {v}", flush=True)
        try:
            t = ctx.wrap_socket(conn, server_side=True)
            cert = t.getpeercert()
            subj = dict(x[0] for x in cert.get("subject", ())) if cert else None
            print(f"negotiated: {t.version()} {t.cipher()[0]} alpn={t.selected_alpn_protocol()} "
                  f"client cert subject={subj}", flush=True)
            t.close()
        except (ssl.SSLError, OSError) as e:
            print(f"handshake failed: {e}", flush=True)
            conn.close()


if __name__ == "__main__":
    main()
