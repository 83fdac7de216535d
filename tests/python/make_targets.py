#!/usr/bin/env python3
"""Write a large unsigned TUF targets.json for benchmarks.

usage: make_targets.py N OUT

Writes {"signed": {...targets metadata...}, "signatures": []} with N targets
named pkg/file-00001.tar.gz ... with realistic lengths and sha256 hashes and a
`custom` object on some of them.  Deterministic: the same N gives the same
bytes.  Compact JSON; N=100000 gives about 15 MB.
"""

import json
import random
import sys


def make(n: int) -> dict:
    rng = random.Random(0x7F4B)  # fixed seed: reproducible output
    targets = {}
    width = max(5, len(str(n)))
    for i in range(1, n + 1):
        name = f"pkg/file-{i:0{width}d}.tar.gz"
        entry = {
            "length": rng.randint(1_000, 50_000_000),
            "hashes": {"sha256": rng.randbytes(32).hex()},
        }
        if i % 5 == 0:
            entry["custom"] = {
                "component": f"component-{i % 97}",
                "release": f"1.{i % 13}.{i % 7}",
                "arch": ("amd64", "arm64", "riscv64")[i % 3],
            }
        targets[name] = entry
    return {
        "signed": {
            "_type": "targets",
            "spec_version": "1.0.31",
            "version": 1,
            "expires": "2099-01-01T00:00:00Z",
            "targets": targets,
        },
        "signatures": [],
    }


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: make_targets.py N OUT", file=sys.stderr)
        return 2
    n = int(sys.argv[1])
    with open(sys.argv[2], "w", encoding="ascii") as f:
        json.dump(make(n), f, separators=(",", ":"))
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
