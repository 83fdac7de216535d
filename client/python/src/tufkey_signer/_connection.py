"""A gRPC channel to tufkeyd and the two RPCs the signer needs (GetKey, SignRaw),
with every gRPC failure turned into a TufkeyRpcError that names the endpoint, the
RPC, the status code and tufkeyd's message.

The channel uses grpcio's default options: tufkeyd serves standard gRPC clients as
they come, over its Unix socket and over TCP with mutual TLS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc

from tufkey_signer._proto import tufkey_pb2, tufkey_pb2_grpc
from tufkey_signer._uri import Endpoint, TlsEndpoint, UnixEndpoint
from tufkey_signer.errors import TufkeyError, TufkeyRpcError

_Reply = TypeVar("_Reply")


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise TufkeyError(
            f"cannot read {what} {path!r} named by the tufkey: URI: {error}"
        ) from error


def _open_channel(endpoint: Endpoint) -> grpc.Channel:
    if isinstance(endpoint, UnixEndpoint):
        return grpc.insecure_channel(f"unix:{endpoint.path}")
    assert isinstance(endpoint, TlsEndpoint)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(endpoint.ca, "the CA certificate (ca=)"),
        private_key=_read(endpoint.key, "the client key (key=)"),
        certificate_chain=_read(endpoint.cert, "the client certificate (cert=)"),
    )
    return grpc.secure_channel(endpoint.addr, credentials)


class Connection:
    """An open channel to one tufkeyd. Close it with close() (or use ``with``)."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self._channel = _open_channel(endpoint)
        self._keys = tufkey_pb2_grpc.KeysStub(self._channel)
        self._signing = tufkey_pb2_grpc.SigningStub(self._channel)

    def get_key(self, keyid: str) -> tufkey_pb2.Key:
        """The key tufkeyd holds under a TUF or Notary key ID (public parts only)."""
        return self._call(
            "/tufkey.v1.Keys/GetKey", self._keys.GetKey, tufkey_pb2.GetKeyRequest(keyid=keyid)
        )

    def sign_raw(self, keyid: str, payload: bytes) -> tufkey_pb2.SignRawResponse:
        """A TUF signature (hex DER ECDSA over SHA-256 of ``payload``) by ``keyid``."""
        request = tufkey_pb2.SignRawRequest(
            keyid=keyid, payload=payload, format=tufkey_pb2.SIGNATURE_FORMAT_TUF
        )
        return self._call("/tufkey.v1.Signing/SignRaw", self._signing.SignRaw, request)

    def _call(self, rpc: str, method: Callable[..., _Reply], request: object) -> _Reply:
        try:
            return method(request)
        except grpc.RpcError as error:
            # Every RpcError a unary call raises is also a grpc.Call.
            code, details = error.code(), error.details() or ""
            raise TufkeyRpcError(code, details, rpc, str(self.endpoint)) from error

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
