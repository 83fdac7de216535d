#!/usr/bin/env python3
"""Check the signatures on one TUF metadata file with python-tuf.

usage: verify_signatures.py METADATA KEYS_JSON

KEYS_JSON maps key IDs to TUF key JSON ({"keytype": ..., "scheme": ..., "keyval":
...}). Loads METADATA with `Metadata.from_bytes` and, for every key, verifies its
signature over the canonical `signed` (python-tuf's CanonicalJSONSerializer, i.e.
securesystemslib's encode_canonical). Prints one JSON object:
{"signed_by": [keyids with a valid signature], "keyids": [every signature's keyid,
in document order]}. Exits 1 if any listed key has no valid signature.
"""

import json
import sys

from tuf.api.metadata import Key, Metadata
from tuf.api.serialization.json import CanonicalJSONSerializer


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: verify_signatures.py METADATA KEYS_JSON", file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        md = Metadata.from_bytes(f.read())
    keys = json.loads(sys.argv[2])
    data = CanonicalJSONSerializer().serialize(md.signed)
    valid = []
    for keyid, key_json in keys.items():
        key = Key.from_dict(keyid, dict(key_json))
        signature = md.signatures.get(keyid)
        if signature is None:
            print(f"no signature by {keyid}", file=sys.stderr)
            continue
        try:
            key.verify_signature(signature, data)
        except Exception as error:  # python-tuf raises UnverifiedSignatureError
            print(f"signature by {keyid} does not verify: {error}", file=sys.stderr)
            continue
        valid.append(keyid)
    print(json.dumps({"signed_by": valid, "keyids": list(md.signatures)}))
    return 0 if len(valid) == len(keys) else 1


if __name__ == "__main__":
    sys.exit(main())
