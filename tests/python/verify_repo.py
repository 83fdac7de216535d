#!/usr/bin/env python3
"""Verify a TUF repository on disk with python-tuf's ngclient.

usage: verify_repo.py REPO_DIR

REPO_DIR must contain metadata/ (1.root.json, root.json, timestamp.json,
snapshot.json, targets.json) and targets/.  The repository is served on a
loopback HTTP server (127.0.0.1, ephemeral port); a fresh Updater trusts
metadata/1.root.json, refreshes, then downloads every target listed in
targets.json and compares it byte for byte with REPO_DIR/targets/<path>.

Exit 0 with a one-line summary on stdout on success; exit 1 with the error
text on stderr on any failure (bad signature, hash mismatch, ...).
"""

import contextlib
import functools
import http.server
import json
import os
import sys
import tempfile
import threading
import traceback


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass


@contextlib.contextmanager
def refreshed_updater(repo_dir: str, trusted_root: bytes, prefix: str):
    """Serves REPO_DIR (metadata/, targets/) on a loopback HTTP server and yields
    (updater, local metadata dir) for a fresh python-tuf Updater that trusts
    `trusted_root` and has refreshed. Shared with update_repo.py."""
    # Imported here so a missing dependency is reported like any other failure.
    from tuf.ngclient import Updater

    handler = functools.partial(_QuietHandler, directory=os.path.abspath(repo_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with tempfile.TemporaryDirectory(prefix=prefix) as work:
            local_meta = os.path.join(work, "metadata")
            local_targets = os.path.join(work, "targets")
            os.mkdir(local_meta)
            os.mkdir(local_targets)
            updater = Updater(
                metadata_dir=local_meta,
                metadata_base_url=f"{base}/metadata/",
                target_dir=local_targets,
                target_base_url=f"{base}/targets/",
                bootstrap=trusted_root,
            )
            updater.refresh()
            yield updater, local_meta
    finally:
        server.shutdown()
        server.server_close()


def verify(repo_dir: str) -> str:
    repo_dir = os.path.abspath(repo_dir)
    meta_dir = os.path.join(repo_dir, "metadata")
    with open(os.path.join(meta_dir, "1.root.json"), "rb") as f:
        trusted_root = f.read()

    with refreshed_updater(repo_dir, trusted_root, "tufkey-verify-") as (updater, local_meta):
        # The list of targets comes from the metadata the updater has just
        # verified, not from the files on disk.
        with open(os.path.join(local_meta, "targets.json"), "rb") as f:
            listed = sorted(json.load(f)["signed"]["targets"])
        if not listed:
            raise RuntimeError("targets.json lists no targets")
        total = 0
        for path in listed:
            info = updater.get_targetinfo(path)
            if info is None:
                raise RuntimeError(f"target {path!r} not found by the updater")
            got_path = updater.download_target(info)
            with open(got_path, "rb") as f:
                got = f.read()
            with open(os.path.join(repo_dir, "targets", path), "rb") as f:
                want = f.read()
            if got != want:
                raise RuntimeError(f"target {path!r}: downloaded bytes differ")
            total += len(got)

        versions = []
        for role in ("root", "timestamp", "snapshot", "targets"):
            # The updater caches each metadata file only after verifying it.
            with open(os.path.join(local_meta, f"{role}.json"), "rb") as f:
                versions.append(f"{role} v{json.load(f)['signed']['version']}")
        return (
            f"python-tuf ok: {', '.join(versions)}, "
            f"{len(listed)} targets ({total} bytes) downloaded and verified"
        )


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        print(verify(sys.argv[1]))
        return 0
    except Exception as e:  # noqa: BLE001 - any failure means "rejected"
        if os.environ.get("TUFKEY_VERIFY_TRACEBACK"):
            traceback.print_exc()
        print(f"python-tuf rejected the repository: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
