"""The exceptions tufkey_signer raises, so callers can tell a bad URI, a key that
does not match, and a refusal by tufkeyd apart (and read the gRPC status of the
last)."""

from __future__ import annotations

import grpc


class TufkeyError(Exception):
    """Base class of every error tufkey_signer raises."""


class TufkeyUriError(TufkeyError, ValueError):
    """A ``tufkey:`` URI that cannot be used (securesystemslib expects ValueError)."""


class TufkeyKeyMismatchError(TufkeyError, ValueError):
    """The public key given to ``from_priv_key_uri`` is not the key tufkeyd holds
    under the URI's key ID."""


class TufkeyRpcError(TufkeyError):
    """tufkeyd answered an RPC with an error status, or could not be reached.

    Attributes:
        code: the gRPC status code (``grpc.StatusCode``).
        details: tufkeyd's message, which names what was wrong.
        rpc: the full method name, e.g. ``/tufkey.v1.Signing/SignRaw``.
        endpoint: where the daemon was called (socket path or ``host:port``).
    """

    def __init__(self, code: grpc.StatusCode, details: str, rpc: str, endpoint: str):
        self.code = code
        self.details = details
        self.rpc = rpc
        self.endpoint = endpoint
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"tufkeyd at {self.endpoint}: {self.rpc}: {self.code.name}: {self.details}"
        if self.code == grpc.StatusCode.UNAVAILABLE:
            text += (
                " (is tufkeyd running and listening there? Start it, or point the URI"
                " at its socket with ?socket=PATH or $TUFKEY_SOCK, or at its TCP"
                " listener with ?addr=HOST:PORT&ca=...&cert=...&key=...)"
            )
        return text
