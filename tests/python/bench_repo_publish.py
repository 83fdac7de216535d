#!/usr/bin/env python3
"""The python-tuf side of scripts/bench-repo-publish.sh: a release as python-tuf's
Metadata API makes it, for comparison with `tufkey repo publish`.

usage:
  bench_repo_publish.py init REPO KEY_PEM FILES_DIR
  bench_repo_publish.py publish REPO KEY_PEM FILES_DIR

`init` creates REPO/metadata (1.root.json, 1.targets.json, 1.snapshot.json,
timestamp.json; consistent snapshots) with every file under FILES_DIR as a target
named by its file name, and copies each one to REPO/targets/<sha256>.<name> (what
`tufkey repo add` does without --relative-to). `publish` does what a release does:
loads the current targets, adds every file under FILES_DIR (hash, copy under its
hash), writes targets N+1, snapshot N+1 and timestamp, each signed with the one
ECDSA P-256 key in KEY_PEM (every role shares it: the benchmark measures the
release work, not key management). Prints one JSON line with the seconds spent.
"""

import json
import os
import shutil
import sys
import time
from datetime import datetime, timedelta, timezone


def main() -> int:
    if len(sys.argv) != 5 or sys.argv[1] not in ("init", "publish"):
        print(__doc__, file=sys.stderr)
        return 2
    action, repo, key_pem, files_dir = sys.argv[1:]

    t0 = time.perf_counter()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import (
        Metadata,
        MetaFile,
        Root,
        Snapshot,
        TargetFile,
        Targets,
        Timestamp,
    )

    t_import = time.perf_counter()
    with open(key_pem, "rb") as f:
        signer = CryptoSigner(load_pem_private_key(f.read(), None))
    metadata_dir = os.path.join(repo, "metadata")
    targets_dir = os.path.join(repo, "targets")
    now = datetime.now(timezone.utc).replace(microsecond=0)

    def add_targets(targets: Targets) -> int:
        added = 0
        for dirpath, _, names in os.walk(files_dir):
            for name in names:
                path = os.path.join(dirpath, name)
                # Named by file name, stored flat: what `tufkey repo add` does
                # without --relative-to, so both tools lay out the same files.
                target = TargetFile.from_file(name, path, ["sha256"])
                targets.targets[name] = target
                digest = target.hashes["sha256"]
                shutil.copyfile(path, os.path.join(targets_dir, f"{digest}.{name}"))
                added += 1
        return added

    def write(md: Metadata, name: str) -> None:
        md.sign(signer, append=False)
        md.to_file(os.path.join(metadata_dir, name))

    if action == "init":
        os.makedirs(metadata_dir)
        os.makedirs(targets_dir)
        root = Root(expires=now + timedelta(days=365))
        for role in ("root", "targets", "snapshot", "timestamp"):
            root.add_key(signer.public_key, role)
        write(Metadata(root), "1.root.json")
        targets_md = Metadata(Targets(expires=now + timedelta(days=90)))
        snapshot_md = Metadata(Snapshot(expires=now + timedelta(days=7)))
        timestamp_md = Metadata(Timestamp(expires=now + timedelta(days=1)))
    else:
        timestamp_md = Metadata.from_file(os.path.join(metadata_dir, "timestamp.json"))
        snapshot_version = timestamp_md.signed.snapshot_meta.version
        snapshot_md = Metadata.from_file(
            os.path.join(metadata_dir, f"{snapshot_version}.snapshot.json")
        )
        targets_version = snapshot_md.signed.meta["targets.json"].version
        targets_md = Metadata.from_file(
            os.path.join(metadata_dir, f"{targets_version}.targets.json")
        )
        for md, days in ((targets_md, 90), (snapshot_md, 7), (timestamp_md, 1)):
            md.signed.version += 1
            md.signed.expires = now + timedelta(days=days)

    t_loaded = time.perf_counter()
    added = add_targets(targets_md.signed)
    write(targets_md, f"{targets_md.signed.version}.targets.json")
    snapshot_md.signed.meta["targets.json"] = MetaFile(targets_md.signed.version)
    write(snapshot_md, f"{snapshot_md.signed.version}.snapshot.json")
    timestamp_md.signed.snapshot_meta = MetaFile(snapshot_md.signed.version)
    write(timestamp_md, "timestamp.json")
    t_end = time.perf_counter()

    print(
        json.dumps(
            {
                "tool": "python-tuf",
                "action": action,
                "added": added,
                "targets": len(targets_md.signed.targets),
                "seconds": round(t_end - t_import, 4),
                "load_seconds": round(t_loaded - t_import, 4),
                "import_seconds": round(t_import - t0, 4),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
