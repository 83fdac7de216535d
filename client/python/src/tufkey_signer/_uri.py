"""The ``tufkey:`` private key URI: which key tufkeyd holds, and where tufkeyd listens.

Forms::

    tufkey:KEYID                                   the default socket (below)
    tufkey:KEYID?socket=/path/to/tufkeyd.sock      a Unix socket
    tufkey:KEYID?addr=HOST:PORT&ca=CA.crt&cert=CLIENT.crt&key=CLIENT.key
                                                   TCP with mutual TLS

KEYID is a TUF (or Notary) key ID as ``tufkey key list`` shows it. The default
socket follows the same rule as tufkeyd and the ``tufkey`` CLI (proto/src/lib.rs,
``paths``): ``$TUFKEY_SOCK``, else ``$XDG_RUNTIME_DIR/tufkey/tufkeyd.sock``, else
``/run/tufkey/tufkeyd.sock``; an empty variable counts as unset. It is looked up
when the URI is opened, not when it is written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Union
from urllib.parse import quote, unquote, urlencode

from tufkey_signer.errors import TufkeyUriError

SCHEME = "tufkey"
SOCKET_ENV = "TUFKEY_SOCK"

_KEYID = re.compile(r"[0-9a-f]{64}")
_TLS_FILES = ("ca", "cert", "key")


def default_socket_path(env: Mapping[str, str] | None = None) -> str:
    """tufkeyd's socket when the URI names none (see the module docs)."""
    env = os.environ if env is None else env
    if env.get(SOCKET_ENV):
        return env[SOCKET_ENV]
    runtime_dir = env.get("XDG_RUNTIME_DIR") or "/run"
    return os.path.join(runtime_dir, "tufkey", "tufkeyd.sock")


@dataclass(frozen=True)
class UnixEndpoint:
    """tufkeyd's Unix socket (a relative path is made absolute)."""

    path: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", os.path.abspath(self.path))

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True)
class TlsEndpoint:
    """tufkeyd's TCP listener (``HOST:PORT``), with the files for mutual TLS: the CA
    that signed tufkeyd's certificate, this client's certificate and its key (paths,
    made absolute; read when connecting)."""

    addr: str
    ca: str
    cert: str
    key: str

    def __post_init__(self) -> None:
        for name in ("ca", "cert", "key"):
            object.__setattr__(self, name, os.path.abspath(getattr(self, name)))

    def __str__(self) -> str:
        return self.addr


Endpoint = Union[UnixEndpoint, TlsEndpoint]
"""Where tufkeyd listens."""


@dataclass(frozen=True)
class TufkeyUri:
    """A parsed ``tufkey:`` URI."""

    keyid: str
    endpoint: Endpoint

    @classmethod
    def parse(cls, uri: str, env: Mapping[str, str] | None = None) -> TufkeyUri:
        scheme, sep, rest = uri.partition(":")
        if scheme != SCHEME or not sep:
            raise TufkeyUriError(f"{uri!r} is not a tufkey: URI (expected tufkey:KEYID)")
        keyid, _, query = rest.partition("?")
        if not _KEYID.fullmatch(keyid):
            raise TufkeyUriError(
                f"{uri!r}: {keyid!r} is not a key ID (64 lowercase hex digits, as"
                " `tufkey key list` shows them)"
            )
        params = _query(uri, query)
        unknown = sorted(set(params) - {"socket", "addr", *_TLS_FILES})
        if unknown:
            raise TufkeyUriError(
                f"{uri!r}: unknown parameter(s) {', '.join(unknown)} (a tufkey: URI takes"
                " socket=PATH, or addr=HOST:PORT with ca=, cert= and key=)"
            )
        repeated = sorted(name for name, values in params.items() if len(values) > 1)
        if repeated:
            raise TufkeyUriError(f"{uri!r}: parameter(s) {', '.join(repeated)} given twice")
        values = {name: found[0] for name, found in params.items()}
        empty = sorted(name for name, value in values.items() if not value)
        if empty:
            raise TufkeyUriError(f"{uri!r}: parameter(s) {', '.join(empty)} are empty")
        return cls(keyid, _endpoint(uri, values, env))

    def __str__(self) -> str:
        return build_uri(self.keyid, self.endpoint)


def _query(uri: str, query: str) -> dict[str, list[str]]:
    """The query's parameters, percent-decoded (a ``+`` stays a ``+``: paths are not
    form fields)."""
    params: dict[str, list[str]] = {}
    for field in query.split("&") if query else []:
        name, sep, value = field.partition("=")
        if not sep:
            raise TufkeyUriError(f"{uri!r}: {field!r} is not NAME=VALUE")
        params.setdefault(unquote(name), []).append(unquote(value))
    return params


def _endpoint(uri: str, values: dict[str, str], env: Mapping[str, str] | None) -> Endpoint:
    if "addr" in values:
        if "socket" in values:
            raise TufkeyUriError(f"{uri!r}: give socket= or addr=, not both")
        missing = [name for name in _TLS_FILES if name not in values]
        if missing:
            raise TufkeyUriError(
                f"{uri!r}: addr= needs mutual TLS files; add"
                f" {', '.join(f'{name}=PATH' for name in missing)}"
                " (ca: the CA that signed tufkeyd's certificate; cert, key: this client's"
                " certificate and key)"
            )
        addr = values["addr"].removeprefix("https://")
        return TlsEndpoint(addr, values["ca"], values["cert"], values["key"])
    stray = [name for name in _TLS_FILES if name in values]
    if stray:
        raise TufkeyUriError(f"{uri!r}: {', '.join(stray)}= only go with addr=HOST:PORT")
    path = values.get("socket") or default_socket_path(env)
    return UnixEndpoint(path)


def build_uri(keyid: str, endpoint: Endpoint | None = None) -> str:
    """The URI for ``keyid`` at ``endpoint`` (None: the default socket, left implicit
    so the URI follows ``$TUFKEY_SOCK`` wherever it is used)."""
    if endpoint is None:
        return f"{SCHEME}:{keyid}"
    if isinstance(endpoint, UnixEndpoint):
        params = {"socket": endpoint.path}
    else:
        params = {
            "addr": endpoint.addr,
            "ca": endpoint.ca,
            "cert": endpoint.cert,
            "key": endpoint.key,
        }
    return f"{SCHEME}:{keyid}?{urlencode(params, quote_via=quote, safe='/:')}"
