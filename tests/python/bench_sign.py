#!/usr/bin/env python3
"""Benchmark python-tuf: load, sign and write one metadata file.

usage: bench_sign.py METADATA_JSON PRIVATE_KEY_PEM OUT

Loads METADATA_JSON with tuf.api.metadata.Metadata.from_file, signs it with a
securesystemslib CryptoSigner for the given ECDSA P-256 private key (PEM,
PKCS#8 or SEC1, unencrypted; or encrypted with the passphrase in
TUFKEY_BENCH_KEY_PASSWORD), replacing any existing signatures, and writes it
with to_file.  Prints one JSON line: the elapsed seconds of the whole thing
("seconds") and of each phase, plus the key ID python-tuf used.
"""

import json
import os
import sys
import time


def main() -> int:
    if len(sys.argv) != 4:
        print("usage: bench_sign.py METADATA_JSON PRIVATE_KEY_PEM OUT", file=sys.stderr)
        return 2
    src, key_pem, out = sys.argv[1:]

    t0 = time.perf_counter()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import Metadata

    t_import = time.perf_counter()
    with open(key_pem, "rb") as f:
        password = os.environ.get("TUFKEY_BENCH_KEY_PASSWORD")
        private_key = load_pem_private_key(f.read(), password.encode() if password else None)
    signer = CryptoSigner(private_key)  # public key + ecdsa-sha2-nistp256 scheme derived

    t_key = time.perf_counter()
    md = Metadata.from_file(src)
    t_load = time.perf_counter()
    sig = md.sign(signer, append=False)
    t_sign = time.perf_counter()
    md.to_file(out)
    t_write = time.perf_counter()

    print(
        json.dumps(
            {
                "tool": "python-tuf",
                "seconds": round(t_write - t0, 4),
                "import_seconds": round(t_import - t0, 4),
                "key_seconds": round(t_key - t_import, 4),
                "load_seconds": round(t_load - t_key, 4),
                "sign_seconds": round(t_sign - t_load, 4),
                "write_seconds": round(t_write - t_sign, 4),
                "targets": len(getattr(md.signed, "targets", {}) or {}),
                "input_bytes": os.path.getsize(src),
                "output_bytes": os.path.getsize(out),
                "keyid": sig.keyid,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
