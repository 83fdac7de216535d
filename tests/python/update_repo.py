#!/usr/bin/env python3
"""Update from a TUF repository with python-tuf's ngclient, as a client would.

usage: update_repo.py REPO_DIR TRUSTED_ROOT NAME=EXPECTED_FILE...

The repository (REPO_DIR/metadata/, REPO_DIR/targets/ with consistent-snapshot
file names) is served on a loopback HTTP server. A fresh Updater trusts
TRUSTED_ROOT (e.g. an old N.root.json: it must walk the root chain), refreshes,
then finds each NAME (through delegations too) and downloads it, comparing it
byte for byte with EXPECTED_FILE.

Exit 0 printing a JSON object of the trusted versions ({"root": N, ...}); exit 1
with the error on stderr on any failure.
"""

import json
import os
import sys

from verify_repo import refreshed_updater


def update(repo_dir, trusted_root, wanted):
    with open(trusted_root, "rb") as f:
        root = f.read()
    with refreshed_updater(repo_dir, root, "tufkey-update-") as (updater, local_meta):
        for name, expected in wanted:
            info = updater.get_targetinfo(name)
            if info is None:
                raise RuntimeError(f"target {name!r} not found")
            with open(updater.download_target(info), "rb") as f:
                got = f.read()
            with open(expected, "rb") as f:
                if got != f.read():
                    raise RuntimeError(f"target {name!r}: downloaded bytes differ")
        versions = {}
        for file in sorted(os.listdir(local_meta)):
            if not file.endswith(".json"):
                continue
            with open(os.path.join(local_meta, file), "rb") as f:
                versions[file[: -len(".json")]] = json.load(f)["signed"]["version"]
        return versions


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    wanted = [arg.split("=", 1) for arg in sys.argv[3:]]
    try:
        print(json.dumps(update(sys.argv[1], sys.argv[2], wanted)))
        return 0
    except Exception as e:  # noqa: BLE001 - any failure means "rejected"
        print(f"python-tuf: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
