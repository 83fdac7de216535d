"""TufkeySigner: a securesystemslib Signer whose private keys stay in tufkeyd.

python-tuf's ``Metadata.sign()`` (and anything else built on securesystemslib's
Signer API) hands the canonical bytes to ``sign()``; they go to tufkeyd's
``tufkey.v1.Signing/SignRaw`` with format TUF, and the hex DER ECDSA signature comes
back under the key's TUF key ID. tufkeyd holds the private key (in its encrypted
keystore or on a YubiKey); no private key material ever passes through here.
"""

from __future__ import annotations

import json

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from securesystemslib.signer import Key, SecretsHandler, Signature, Signer, SSlibKey

from tufkey_signer._connection import Connection
from tufkey_signer._proto import tufkey_pb2
from tufkey_signer._uri import SCHEME, Endpoint, TufkeyUri, build_uri
from tufkey_signer.errors import TufkeyError, TufkeyKeyMismatchError


def _spki_der(pem: object) -> bytes | None:
    """The DER SubjectPublicKeyInfo of a PEM public key; None if it is not one."""
    if not isinstance(pem, str):
        return None
    try:
        return load_pem_public_key(pem.encode()).public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, UnsupportedAlgorithm):
        return None


def _sslib_key(held: tufkey_pb2.Key) -> SSlibKey:
    """The securesystemslib key for a key tufkeyd reported, under its TUF key ID."""
    return SSlibKey.from_dict(held.keyid, json.loads(held.tuf_key_json))


def _check_same_key(uri: str, given: Key, held: SSlibKey) -> None:
    fix = (
        f"use the key TufkeySigner.import_({held.keyid!r}) returns (the one to list in"
        " the TUF metadata), or the URI of the key that metadata lists"
    )
    held_der = _spki_der(held.keyval.get("public"))
    if held_der is None:
        raise TufkeyError(f"{uri}: tufkeyd reported key {held.keyid} without a PEM public key")
    same_material = (
        given.keytype == held.keytype
        and given.scheme == held.scheme
        and _spki_der(given.keyval.get("public")) == held_der
    )
    if not same_material:
        raise TufkeyKeyMismatchError(
            f"{uri}: the public key given (key ID {given.keyid}, {given.keytype}/{given.scheme})"
            f" is not the key tufkeyd holds as {held.keyid} ({held.keytype}/{held.scheme}): {fix}"
        )
    if given.keyid != held.keyid:
        raise TufkeyKeyMismatchError(
            f"{uri}: the public key given is tufkeyd's key {held.keyid} but under another"
            f" key ID, {given.keyid}: signatures would carry {held.keyid}, which that"
            f" metadata does not list; {fix}"
        )


class TufkeySigner(Signer):
    """Signs with a key held by tufkeyd. Build it with ``Signer.from_priv_key_uri``
    (``tufkey:`` URIs are registered when ``tufkey_signer`` is imported); see
    ``tufkey_signer._uri`` for the URI forms. ``import_`` gives the URI and public
    key of a tufkeyd key for adding it to TUF metadata.
    """

    SCHEME = SCHEME

    def __init__(self, uri: str, public_key: SSlibKey, connection: Connection):
        self._uri = uri
        self._public_key = public_key
        self._connection = connection

    @classmethod
    def from_priv_key_uri(
        cls,
        priv_key_uri: str,
        public_key: Key,
        secrets_handler: SecretsHandler | None = None,
    ) -> TufkeySigner:
        """Connects to tufkeyd and checks that it holds ``public_key`` under the URI's
        key ID (TufkeyKeyMismatchError otherwise). ``secrets_handler`` is not used:
        tufkeyd itself holds the keystore passphrase and YubiKey PINs (`tufkey
        unlock`, `tufkey device unlock`)."""
        del secrets_handler
        parsed = TufkeyUri.parse(priv_key_uri)
        connection = Connection(parsed.endpoint)
        try:
            held = _sslib_key(connection.get_key(parsed.keyid))
            _check_same_key(priv_key_uri, public_key, held)
        except BaseException:
            connection.close()
            raise
        return cls(priv_key_uri, held, connection)

    @classmethod
    def import_(cls, keyid: str, endpoint: Endpoint | None = None) -> tuple[str, SSlibKey]:
        """The private key URI and the public key (as securesystemslib's SSlibKey,
        under its TUF key ID) of tufkeyd's key ``keyid`` (a TUF or Notary key ID), at
        ``endpoint`` (tufkey_signer.UnixEndpoint / TlsEndpoint; None: the default
        socket, left out of the URI). Add the key to a role with python-tuf's
        ``Root.add_key(key, role)`` and sign with ``Signer.from_priv_key_uri(uri, key)``.
        """
        uri = build_uri(keyid, endpoint)
        with Connection(TufkeyUri.parse(uri).endpoint) as connection:
            key = _sslib_key(connection.get_key(keyid))
        if key.keyid != keyid:
            # A Notary key ID was given: name the key by its TUF key ID from here on.
            uri = build_uri(key.keyid, endpoint)
        return uri, key

    @property
    def public_key(self) -> SSlibKey:
        return self._public_key

    def sign(self, payload: bytes) -> Signature:
        """Signs ``payload`` in tufkeyd (SignRaw, format TUF). Raises TufkeyRpcError
        with tufkeyd's status when it refuses (locked keystore, YubiKey absent or
        needing its PIN, policy...)."""
        reply = self._connection.sign_raw(self._public_key.keyid, payload)
        if reply.keyid != self._public_key.keyid or reply.format != tufkey_pb2.SIGNATURE_FORMAT_TUF:
            raise TufkeyError(
                f"{self._uri}: tufkeyd answered SignRaw with a"
                f" {tufkey_pb2.SignatureFormat.Name(reply.format)} signature by {reply.keyid!r};"
                f" a TUF signature by {self._public_key.keyid} was asked for"
            )
        return Signature(reply.keyid, reply.signature)

    def close(self) -> None:
        """Closes the channel to tufkeyd; the signer cannot sign afterwards."""
        self._connection.close()
