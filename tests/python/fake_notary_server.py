#!/usr/bin/env python3
"""A stand-in Notary server for the DCT bad-input tests (stdlib http.server + ssl).

usage: fake_notary_server.py CERT KEY FILES_DIR STATE_DIR

Serves HTTPS on 127.0.0.1 (a free port the OS picks) with CERT/KEY and:
  GET /v2/                               200 {} (the client's API ping)
  GET /_notary_server/health             200 {}
  GET /v2/<gun>/_trust/tuf/<file>        FILES_DIR/<gun>/<file> if it exists (e.g.
                                         root.json, targets/releases.json,
                                         timestamp.key); for <role>.<sha256>.json
                                         and <version>.<role>.json, else
                                         FILES_DIR/<gun>/<role>.json if its sha256 /
                                         signed.version matches; otherwise 404
  POST / PUT / DELETE anything           400, and counted
  anything else                          404
so a test can hand a client metadata signed by a key it should refuse, and prove
afterwards that nothing was published (no POST reached the server).

STATE_DIR/requests.log gets one line per request, "METHOD PATH", flushed at once;
STATE_DIR/port is written (atomically) once the socket listens. Runs until killed.
"""

import hashlib
import http.server
import json
import os
import ssl
import sys
import threading

TUF_MARKER = "/_trust/tuf/"


class Handler(http.server.BaseHTTPRequestHandler):
    files_dir = ""
    log_path = ""
    log_lock = threading.Lock()
    protocol_version = "HTTP/1.1"

    def record(self):
        with self.log_lock, open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"{self.command} {self.path}\n")
            log.flush()

    def reply(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def served_file(self):
        """The file under FILES_DIR this GET names, or None."""
        path = self.path.split("?", 1)[0]
        if not path.startswith("/v2/") or TUF_MARKER not in path:
            return None
        gun, name = path[len("/v2/") :].split(TUF_MARKER, 1)
        parts = gun.split("/") + name.split("/")
        if any(part in ("", ".", "..") for part in parts):
            return None
        candidate = os.path.join(self.files_dir, *parts)
        if os.path.isfile(candidate):
            return candidate
        return self.by_checksum_or_version(candidate)

    @staticmethod
    def by_checksum_or_version(candidate):
        """`ROLE.<sha256>.json` or `<version>.ROLE.json` (what notary clients fetch
        after reading the snapshot / during root rotation): `ROLE.json` if its sha256
        or its signed.version is the one asked for, like notary-server's store."""
        folder, name = os.path.split(candidate)
        pieces = name.split(".")
        if len(pieces) != 3 or pieces[2] != "json":
            return None
        first, second = pieces[0], pieces[1]
        if len(second) == 64 and all(c in "0123456789abcdef" for c in second):
            current = os.path.join(folder, first + ".json")
            if os.path.isfile(current):
                with open(current, "rb") as data:
                    if hashlib.sha256(data.read()).hexdigest() == second:
                        return current
            return None
        if first.isdigit():
            current = os.path.join(folder, second + ".json")
            if os.path.isfile(current):
                with open(current, "rb") as data:
                    try:
                        version = json.load(data)["signed"]["version"]
                    except (ValueError, KeyError, TypeError):
                        return None
                if version == int(first):
                    return current
        return None

    def do_GET(self):
        self.record()
        if self.path in ("/v2/", "/v2", "/_notary_server/health"):
            self.reply(200, b"{}")
            return
        found = self.served_file()
        if found is None:
            self.reply(404, json.dumps({"errors": [{"code": "METADATA_NOT_FOUND"}]}).encode())
            return
        with open(found, "rb") as data:
            self.reply(200, data.read())

    def refuse_write(self):
        self.record()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.reply(400, json.dumps({"errors": [{"code": "FAKE_SERVER_REFUSES_WRITES"}]}).encode())

    do_POST = refuse_write
    do_PUT = refuse_write
    do_DELETE = refuse_write

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


def main(argv):
    if len(argv) != 5:
        sys.exit("usage: fake_notary_server.py CERT KEY FILES_DIR STATE_DIR")
    cert, key, files_dir, state_dir = argv[1:]
    Handler.files_dir = files_dir
    Handler.log_path = os.path.join(state_dir, "requests.log")
    open(Handler.log_path, "w", encoding="utf-8").close()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)

    port_file = os.path.join(state_dir, "port")
    with open(port_file + ".tmp", "w", encoding="utf-8") as out:
        out.write(str(server.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
