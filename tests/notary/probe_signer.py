#!/usr/bin/env python3
"""probe_signer.py — probe a Notary-signer-compatible gRPC service and print what it does.

Works against the real notary-signer (scripts/notary/start-signer.sh) and, later, tufkeyd
listening with the same certificates: the printed FACT lines are the wire behaviour
notary-server relies on, and every CHECK line must pass (exit 1 otherwise).

    python3 -m venv /tmp/grpcvenv
    /tmp/grpcvenv/bin/pip install grpcio grpcio-tools grpcio-health-checking cryptography
    /tmp/grpcvenv/bin/python tests/notary/probe_signer.py --addr 127.0.0.1:PORT --certs DIR \
        [--name localhost] [--bench 2000] [--concurrency 16] [--crash-tests]

DIR is a scripts/notary/make-certs.sh directory (ca.crt, client.crt/.key, other-client.*).
The .proto below restates notary 0.7's proto/signer.proto wire shape (package `proto`);
stubs are generated into a temp dir with grpc_tools at run time.
"""
import argparse
import atexit
import base64
import concurrent.futures
import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils as asym_utils
from cryptography.exceptions import InvalidSignature

PROTO = """
syntax = "proto3";
package proto;
service KeyManagement {
  rpc CreateKey(CreateKeyRequest) returns (PublicKey) {}
  rpc DeleteKey(KeyID) returns (Void) {}
  rpc GetKeyInfo(KeyID) returns (GetKeyInfoResponse) {}
}
service Signer { rpc Sign(SignatureRequest) returns (Signature) {} }
message CreateKeyRequest { string algorithm = 1; string gun = 2; string role = 3; }
message KeyInfo { KeyID keyID = 1; Algorithm algorithm = 2; }
message KeyID { string ID = 1; }
message Algorithm { string algorithm = 1; }
message GetKeyInfoResponse { KeyInfo keyInfo = 1; bytes publicKey = 2; string role = 3; }
message PublicKey { KeyInfo keyInfo = 1; bytes publicKey = 2; }
message Signature { KeyInfo keyInfo = 1; Algorithm algorithm = 2; bytes content = 3; }
message SignatureRequest { KeyID keyID = 1; bytes content = 2; }
message Void {}
"""

FAILED = []


def fact(msg):
    print(f"FACT  {msg}")


def check(name, ok, detail=""):
    print(f"CHECK {'ok  ' if ok else 'FAIL'} {name}{(': ' + detail) if detail else ''}")
    if not ok:
        FAILED.append(name)


def load_stubs():
    from grpc_tools import protoc
    d = tempfile.mkdtemp(prefix="notary-proto-")
    atexit.register(shutil.rmtree, d, True)
    with open(os.path.join(d, "notary_signer.proto"), "w") as f:
        f.write(PROTO)
    rc = protoc.main(["protoc", f"-I{d}", f"--python_out={d}", f"--grpc_python_out={d}",
                      os.path.join(d, "notary_signer.proto")])
    if rc != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, d)
    return importlib.import_module("notary_signer_pb2"), importlib.import_module("notary_signer_pb2_grpc")


def channel(addr, certs, name, client="client"):
    rd = lambda p: open(os.path.join(certs, p), "rb").read()
    if client:
        creds = grpc.ssl_channel_credentials(rd("ca.crt"), rd(f"{client}.key"), rd(f"{client}.crt"))
    else:
        creds = grpc.ssl_channel_credentials(rd("ca.crt"))
    opts = [("grpc.ssl_target_name_override", name)] if name else []
    return grpc.secure_channel(addr, creds, options=opts)


def notary_key_id(keytype, public_der):
    canon = json.dumps({"keytype": keytype, "keyval": {"private": None,
                        "public": base64.b64encode(public_der).decode()}},
                       separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(canon.encode()).hexdigest()


def code_of(fn):
    try:
        fn()
        return "OK"
    except grpc.RpcError as e:
        return f"{e.code().name} ({e.details()})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--certs", required=True)
    ap.add_argument("--name", default="localhost", help="TLS name to verify (SAN in signer.crt)")
    ap.add_argument("--bench", type=int, default=0, help="number of Sign calls to time")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--crash-tests", action="store_true",
                    help="also send a Sign without keyID (kills notary-signer 0.7; tufkeyd must survive)")
    a = ap.parse_args()
    pb, pbg = load_stubs()

    ch = channel(a.addr, a.certs, a.name)
    grpc.channel_ready_future(ch).result(timeout=10)
    km, sg, hc = pbg.KeyManagementStub(ch), pbg.SignerStub(ch), health_pb2_grpc.HealthStub(ch)

    # ---- health (what notary-server's client checks)
    for svc in ("", "grpc.health.v1.Health.KeyManagement", "grpc.health.v1.Health.Signer",
                "grpc.health.v1.Health.Overall", "proto.KeyManagement", "proto.Signer"):
        try:
            st = health_pb2.HealthCheckResponse.ServingStatus.Name(
                hc.Check(health_pb2.HealthCheckRequest(service=svc), timeout=5).status)
        except grpc.RpcError as e:
            st = e.code().name
        fact(f"Health/Check service={svc!r} -> {st}")
        if svc in ("grpc.health.v1.Health.KeyManagement", "grpc.health.v1.Health.Signer"):
            check(f"health {svc} SERVING", st == "SERVING", st)

    # ---- CreateKey
    gun, role = "example.com/probe/app", "timestamp"
    pk = km.CreateKey(pb.CreateKeyRequest(algorithm="ecdsa", gun=gun, role=role), timeout=10)
    kid, alg = pk.keyInfo.keyID.ID, pk.keyInfo.algorithm.algorithm
    fact(f"CreateKey(algorithm='ecdsa', gun, role='timestamp') -> keyID={kid} algorithm={alg!r} "
         f"publicKey={len(pk.publicKey)} bytes")
    pub = serialization.load_der_public_key(pk.publicKey)
    check("CreateKey publicKey is DER SPKI P-256", isinstance(pub, ec.EllipticCurvePublicKey)
          and pub.curve.name == "secp256r1")
    check("CreateKey algorithm == 'ecdsa'", alg == "ecdsa", alg)
    want = notary_key_id("ecdsa", pk.publicKey)
    check("keyID == sha256(canonical {keytype:ecdsa,keyval:{private:null,public:b64(DER)}})",
          kid == want, f"{kid} vs {want}")
    for bad in ("", "ECDSA", "rsa", "ecdsa-x509", "nonsense"):
        fact(f"CreateKey(algorithm={bad!r}) -> "
             + code_of(lambda: km.CreateKey(pb.CreateKeyRequest(algorithm=bad, gun=gun, role=role), timeout=10)))
    fact("CreateKey(algorithm='ed25519') -> " + code_of(
        lambda: km.CreateKey(pb.CreateKeyRequest(algorithm="ed25519", gun=gun, role="snapshot"), timeout=10)))
    fact("CreateKey(algorithm='ecdsa', gun='', role='') -> " + code_of(
        lambda: km.CreateKey(pb.CreateKeyRequest(algorithm="ecdsa"), timeout=10)))

    # ---- GetKeyInfo
    gi = km.GetKeyInfo(pb.KeyID(ID=kid), timeout=10)
    fact(f"GetKeyInfo -> keyInfo.keyID={gi.keyInfo.keyID.ID} algorithm={gi.keyInfo.algorithm.algorithm!r} "
         f"role={gi.role!r} publicKey same as CreateKey: {gi.publicKey == pk.publicKey}")
    check("GetKeyInfo role == role given to CreateKey", gi.role == role, repr(gi.role))
    check("GetKeyInfo publicKey/keyID/algorithm match", gi.publicKey == pk.publicKey
          and gi.keyInfo.keyID.ID == kid and gi.keyInfo.algorithm.algorithm == "ecdsa")
    unknown = "0" * 64
    c = code_of(lambda: km.GetKeyInfo(pb.KeyID(ID=unknown), timeout=10))
    fact(f"GetKeyInfo(unknown) -> {c}")
    check("GetKeyInfo(unknown) NOT_FOUND", c.startswith("NOT_FOUND"), c)

    # ---- Sign
    msg = b'{"_type":"Timestamp","probe":true}'
    s = sg.Sign(pb.SignatureRequest(keyID=pb.KeyID(ID=kid), content=msg), timeout=10)
    fact(f"Sign -> content={len(s.content)} bytes algorithm={s.algorithm.algorithm!r} "
         f"keyInfo.keyID={s.keyInfo.keyID.ID} keyInfo.algorithm={s.keyInfo.algorithm.algorithm!r}")
    check("Sign reply is 64 bytes", len(s.content) == 64, str(len(s.content)))
    r, ss = int.from_bytes(s.content[:32], "big"), int.from_bytes(s.content[32:], "big")
    der = asym_utils.encode_dss_signature(r, ss)

    def verifies(data, prehashed):
        try:
            if prehashed:
                pub.verify(der, data, ec.ECDSA(asym_utils.Prehashed(hashes.SHA256())))
            else:
                pub.verify(der, data, ec.ECDSA(hashes.SHA256()))
            return True
        except InvalidSignature:
            return False
    check("Sign = ECDSA P-256 over SHA-256(content), raw r||s", verifies(msg, False))
    digest = hashlib.sha256(msg).digest()
    s2 = sg.Sign(pb.SignatureRequest(keyID=pb.KeyID(ID=kid), content=digest), timeout=10)
    r2, q2 = int.from_bytes(s2.content[:32], "big"), int.from_bytes(s2.content[32:], "big")
    der = asym_utils.encode_dss_signature(r2, q2)
    fact("Sign(32-byte content) is again hashed by the signer (not treated as a digest): "
         f"{verifies(digest, False) and not verifies(digest, True)}")
    fact("Sign(empty content) -> " + code_of(lambda: sg.Sign(pb.SignatureRequest(keyID=pb.KeyID(ID=kid), content=b""), timeout=10)))
    c = code_of(lambda: sg.Sign(pb.SignatureRequest(keyID=pb.KeyID(ID=unknown), content=msg), timeout=10))
    fact(f"Sign(unknown key) -> {c}")
    check("Sign(unknown) NOT_FOUND", c.startswith("NOT_FOUND"), c)
    fact("Sign(keyID.ID='') -> " + code_of(lambda: sg.Sign(pb.SignatureRequest(keyID=pb.KeyID(ID=""), content=msg), timeout=10)))

    # ---- DeleteKey
    k2 = km.CreateKey(pb.CreateKeyRequest(algorithm="ecdsa", gun=gun, role="snapshot"), timeout=10).keyInfo.keyID.ID
    fact("DeleteKey(existing) -> " + code_of(lambda: km.DeleteKey(pb.KeyID(ID=k2), timeout=10)))
    c = code_of(lambda: km.GetKeyInfo(pb.KeyID(ID=k2), timeout=10))
    fact(f"GetKeyInfo(after delete) -> {c}")
    check("deleted key is gone", c.startswith("NOT_FOUND"), c)
    fact("DeleteKey(unknown) -> " + code_of(lambda: km.DeleteKey(pb.KeyID(ID=unknown), timeout=10)))

    # ---- mTLS enforcement
    for label, client in (("no client cert", None), ("other CA's client cert", "other-client")):
        c2 = channel(a.addr, a.certs, a.name, client)
        res = code_of(lambda: health_pb2_grpc.HealthStub(c2).Check(health_pb2.HealthCheckRequest(), timeout=5))
        fact(f"Health/Check with {label} -> {res}")
        check(f"{label} refused", res != "OK", res)
        c2.close()

    # ---- optional Sign throughput (bounded)
    if a.bench > 0:
        req = pb.SignatureRequest(keyID=pb.KeyID(ID=kid), content=msg * 30)
        t0 = time.perf_counter()
        for _ in range(min(a.bench, 1000)):
            sg.Sign(req, timeout=10)
        n1 = min(a.bench, 1000)
        seq = n1 / (time.perf_counter() - t0)
        lock, left = threading.Lock(), [a.bench]

        def worker():
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                sg.Sign(req, timeout=10)
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(a.concurrency) as ex:
            for f in [ex.submit(worker) for _ in range(a.concurrency)]:
                f.result()
        par = a.bench / (time.perf_counter() - t0)
        fact(f"bench: {n1} sequential Sign: {seq:.0f}/s; {a.bench} Sign at concurrency "
             f"{a.concurrency} on one channel: {par:.0f}/s (content {len(req.content)} bytes; "
             "Python client, likely client-bound)")

    if a.crash_tests:
        # notary-signer 0.7 dereferences the absent keyID: the whole process panics (SIGSEGV).
        # A compatible implementation must answer INVALID_ARGUMENT and keep running.
        fact("Sign(keyID field absent) -> " + code_of(lambda: sg.Sign(pb.SignatureRequest(content=msg), timeout=10)))
        fact("GetKeyInfo(empty KeyID message) -> " + code_of(lambda: km.GetKeyInfo(pb.KeyID(), timeout=10)))
        time.sleep(0.5)
        alive = code_of(lambda: hc.Check(health_pb2.HealthCheckRequest(), timeout=5))
        fact(f"service still answers after the malformed Sign: {alive}")
        check("survives Sign without keyID", alive == "OK", alive)

    ch.close()
    if FAILED:
        print(f"probe_signer: {len(FAILED)} check(s) failed: {FAILED}")
        sys.exit(1)
    print("probe_signer: all checks passed")


if __name__ == "__main__":
    main()
