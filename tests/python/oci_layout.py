#!/usr/bin/env python3
"""Write a tiny, deterministic OCI image layout (stdlib only) for the DCT tests.

usage: oci_layout.py DIR TAG SEED

DIR gets an OCI image layout (oci-layout, index.json, blobs/sha256/...) holding one
image tagged TAG: one gzip'd tar layer with a single file `seed.txt` whose content is
SEED, an image config naming that layer's diff ID, and an OCI image manifest. The
same SEED always gives byte-identical blobs (fixed tar headers, gzip mtime 0), so the
same manifest digest; a different SEED gives a different one. `skopeo copy
oci:DIR:TAG docker://...` then pushes it (tests/src/dct.rs `push_image`).

Prints one JSON line: {"manifest_digest": "sha256:...", "manifest_size": N}
(the manifest as written here; the registry may serve other bytes if the copy
converted it, so the harness reads the digest back from the registry).
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def canonical(value):
    """Compact, key-sorted JSON bytes: stable across runs."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def layer_tar(seed):
    """An uncompressed tar with `seed.txt` = SEED and fixed metadata."""
    content = seed.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("seed.txt")
        info.size = len(content)
        info.mtime = 0
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def gzip_bytes(data):
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as stream:
        stream.write(data)
    return buffer.getvalue()


class Layout:
    def __init__(self, root):
        self.blobs = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.blobs, exist_ok=True)

    def blob(self, media_type, data):
        """Stores DATA as a blob; returns its OCI descriptor."""
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.blobs, digest), "wb") as out:
            out.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}


def main(argv):
    if len(argv) != 4:
        sys.exit("usage: oci_layout.py DIR TAG SEED")
    root, tag, seed = argv[1], argv[2], argv[3]
    layout = Layout(root)

    tar = layer_tar(seed)
    layer = layout.blob(OCI_LAYER_GZIP, gzip_bytes(tar))
    config = layout.blob(
        OCI_CONFIG,
        canonical(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": "1970-01-01T00:00:00Z",
                "config": {"Labels": {"tufkey.test.seed": seed}},
                "rootfs": {
                    "type": "layers",
                    "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()],
                },
            }
        ),
    )
    manifest_bytes = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": [layer],
        }
    )
    manifest = layout.blob(OCI_MANIFEST, manifest_bytes)

    index_path = os.path.join(root, "index.json")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    if os.path.exists(index_path):
        with open(index_path, "rb") as existing:
            index = json.load(existing)
    entry = dict(manifest, annotations={"org.opencontainers.image.ref.name": tag})
    index["manifests"] = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag
    ] + [entry]
    with open(index_path, "wb") as out:
        out.write(canonical(index))
    with open(os.path.join(root, "oci-layout"), "wb") as out:
        out.write(canonical({"imageLayoutVersion": "1.0.0"}))

    print(json.dumps({"manifest_digest": manifest["digest"], "manifest_size": manifest["size"]}))


if __name__ == "__main__":
    main(sys.argv)
