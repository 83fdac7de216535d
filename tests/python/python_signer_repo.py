#!/usr/bin/env python3
"""Build a TUF repository with python-tuf's Metadata API, every role signed by
tufkeyd through the `tufkey:` securesystemslib signer (client/python).

usage: python_signer_repo.py REPO_DIR --root KEYID --targets KEYID
           --snapshot KEYID --timestamp KEYID
           [--socket PATH | --addr HOST:PORT --ca FILE --cert FILE --tls-key FILE]
           [--public-key-of ROLE=OTHER_ROLE]

Each role's key comes from `TufkeySigner.import_(KEYID, endpoint)` (its URI and its
securesystemslib key, read from tufkeyd with GetKey); each signer from
`Signer.from_priv_key_uri(uri, key)`, i.e. through the scheme `import tufkey_signer`
registers, and each role is signed with python-tuf's unchanged `Metadata.sign()`.
Without --socket or --addr the URIs are plain `tufkey:KEYID` and find the daemon by
the default rule ($TUFKEY_SOCK, ...). --public-key-of makes ROLE's signer get
OTHER_ROLE's public key (the mistake the signer must refuse with a clear error).

Writes REPO_DIR/metadata/ (1.root.json, root.json, 1.targets.json, targets.json,
1.snapshot.json, snapshot.json, timestamp.json; consistent snapshots) and
REPO_DIR/targets/ (each target as NAME and as SHA256.NAME). Prints one JSON line
{"uris": {role: uri}, "keyids": {role: keyid}} and exits 0; on any error prints
one line to stderr and exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from datetime import datetime, timedelta, timezone

from securesystemslib.signer import Signer
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

import tufkey_signer

ROLES = ("root", "targets", "snapshot", "timestamp")
TARGETS = {
    "hello.txt": b"hello from a python-tuf repository signed by tufkeyd\n",
    "app-1.0.tar.gz": bytes(range(256)) * 16,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo")
    for role in ROLES:
        parser.add_argument(f"--{role}", required=True, metavar="KEYID")
    parser.add_argument("--socket")
    parser.add_argument("--addr")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--public-key-of", metavar="ROLE=OTHER_ROLE")
    return parser.parse_args()


def endpoint(args: argparse.Namespace):
    if args.addr:
        return tufkey_signer.TlsEndpoint(args.addr, args.ca, args.cert, args.tls_key)
    if args.socket:
        return tufkey_signer.UnixEndpoint(args.socket)
    return None


def write(md: Metadata, path: str) -> None:
    md.to_file(path, JSONSerializer(compact=False))


def build(args: argparse.Namespace) -> dict:
    where = endpoint(args)
    imported = {
        role: tufkey_signer.TufkeySigner.import_(getattr(args, role), where) for role in ROLES
    }
    public_key_for = {role: imported[role][1] for role in ROLES}
    if args.public_key_of:
        role, other = args.public_key_of.split("=")
        public_key_for[role] = imported[other][1]
    signers = {
        role: Signer.from_priv_key_uri(imported[role][0], public_key_for[role]) for role in ROLES
    }

    meta_dir = os.path.join(args.repo, "metadata")
    targets_dir = os.path.join(args.repo, "targets")
    os.makedirs(meta_dir)
    os.makedirs(targets_dir)
    now = datetime.now(timezone.utc).replace(microsecond=0)

    root = Metadata(Root(expires=now + timedelta(days=365), consistent_snapshot=True))
    for role in ROLES:
        root.signed.add_key(imported[role][1], role)

    targets = Metadata(Targets(expires=now + timedelta(days=90)))
    for name, data in TARGETS.items():
        targets.signed.targets[name] = TargetFile.from_data(name, data, ["sha256"])
        digest = hashlib.sha256(data).hexdigest()
        for file_name in (name, f"{digest}.{name}"):
            with open(os.path.join(targets_dir, file_name), "wb") as f:
                f.write(data)

    snapshot = Metadata(Snapshot(expires=now + timedelta(days=7)))
    timestamp = Metadata(Timestamp(expires=now + timedelta(days=1)))

    root.sign(signers["root"])
    write(root, os.path.join(meta_dir, "1.root.json"))
    write(root, os.path.join(meta_dir, "root.json"))

    targets.sign(signers["targets"])
    write(targets, os.path.join(meta_dir, "1.targets.json"))
    write(targets, os.path.join(meta_dir, "targets.json"))

    snapshot.signed.meta["targets.json"] = MetaFile(version=targets.signed.version)
    snapshot.sign(signers["snapshot"])
    write(snapshot, os.path.join(meta_dir, "1.snapshot.json"))
    write(snapshot, os.path.join(meta_dir, "snapshot.json"))

    timestamp.signed.snapshot_meta = MetaFile(version=snapshot.signed.version)
    timestamp.sign(signers["timestamp"])
    write(timestamp, os.path.join(meta_dir, "timestamp.json"))

    for signer in signers.values():
        signer.close()
    return {
        "uris": {role: imported[role][0] for role in ROLES},
        "keyids": {role: imported[role][1].keyid for role in ROLES},
    }


def main() -> int:
    args = parse_args()
    try:
        print(json.dumps(build(args)))
        return 0
    except (tufkey_signer.TufkeyError, UnsignedMetadataError) as error:
        print(f"python_signer_repo.py: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
