"""securesystemslib's canonical JSON as a long-lived oracle for the differential test.

Reads one document a line (base64 of its UTF-8 JSON text) on stdin and answers each
with one line: `ok <base64 of encode_canonical(json.loads(text)) as UTF-8>` or
`err <one-line reason>`. Exactly what python-tuf does to the `signed` part of
metadata before it verifies a signature (`CanonicalJSONSerializer`). Flushes after
every answer so the caller may ask one document at a time.
"""

import base64
import json
import sys

from securesystemslib.formats import encode_canonical


def answer(line: bytes) -> bytes:
    try:
        document = json.loads(base64.b64decode(line).decode("utf-8"))
        canonical = encode_canonical(document).encode("utf-8")
    except Exception as error:  # the caller compares verdicts, not error types
        reason = repr(error).replace("\n", " ")[:200]
        return b"err " + reason.encode("utf-8", "backslashreplace") + b"\n"
    return b"ok " + base64.b64encode(canonical) + b"\n"


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        line = stdin.readline()
        if not line:
            return
        stdout.write(answer(line.strip()))
        stdout.flush()


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main()
