"""Sign TUF metadata from Python with keys held by tufkeyd.

Importing this package registers the ``tufkey:`` private key URI scheme with
securesystemslib (``SIGNER_FOR_URI_SCHEME``), so python-tuf signs unchanged::

    import tufkey_signer  # registers tufkey:
    from securesystemslib.signer import Signer

    uri, key = tufkey_signer.TufkeySigner.import_(keyid)
    root.add_key(key, "targets")
    metadata.sign(Signer.from_priv_key_uri(uri, key))

URI forms: ``tufkey:KEYID``, ``tufkey:KEYID?socket=PATH``,
``tufkey:KEYID?addr=HOST:PORT&ca=PATH&cert=PATH&key=PATH`` (see README.md).
"""

from securesystemslib.signer import SIGNER_FOR_URI_SCHEME

from tufkey_signer._signer import TufkeySigner
from tufkey_signer._uri import TlsEndpoint, TufkeyUri, UnixEndpoint, build_uri, default_socket_path
from tufkey_signer.errors import (
    TufkeyError,
    TufkeyKeyMismatchError,
    TufkeyRpcError,
    TufkeyUriError,
)

SIGNER_FOR_URI_SCHEME[TufkeySigner.SCHEME] = TufkeySigner

__all__ = [
    "TlsEndpoint",
    "TufkeyError",
    "TufkeyKeyMismatchError",
    "TufkeyRpcError",
    "TufkeySigner",
    "TufkeyUri",
    "TufkeyUriError",
    "UnixEndpoint",
    "build_uri",
    "default_socket_path",
]
