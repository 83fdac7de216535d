"""Unit tests of tufkey_signer without a daemon: the tufkey: URI (its forms, the
default socket rule, the same as proto/src/lib.rs `paths`, the errors for URIs that
cannot work), the public key check, and the scheme's registration with
securesystemslib. Run: python -m unittest discover -s tests
(with tufkey_signer installed)."""

import unittest

import grpc
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.signer import SIGNER_FOR_URI_SCHEME, Signer, SSlibKey

import tufkey_signer
from tufkey_signer import (
    TlsEndpoint,
    TufkeyKeyMismatchError,
    TufkeyRpcError,
    TufkeySigner,
    TufkeyUri,
    TufkeyUriError,
    UnixEndpoint,
    build_uri,
    default_socket_path,
)
from tufkey_signer._signer import _check_same_key

KEYID = "4d370730e04b8b5de008d1a40c683f786846b255f0cbe264cfe1d93d4dff5462"


class DefaultSocket(unittest.TestCase):
    def test_tufkey_sock_wins(self):
        env = {"TUFKEY_SOCK": "/tmp/x.sock", "XDG_RUNTIME_DIR": "/run/user/7"}
        self.assertEqual(default_socket_path(env), "/tmp/x.sock")

    def test_xdg_runtime_dir_next(self):
        env = {"TUFKEY_SOCK": "", "XDG_RUNTIME_DIR": "/run/user/7"}
        self.assertEqual(default_socket_path(env), "/run/user/7/tufkey/tufkeyd.sock")

    def test_run_last(self):
        self.assertEqual(default_socket_path({"XDG_RUNTIME_DIR": ""}), "/run/tufkey/tufkeyd.sock")


class Parse(unittest.TestCase):
    def test_plain_key_id_uses_the_default_socket(self):
        uri = TufkeyUri.parse(f"tufkey:{KEYID}", env={"TUFKEY_SOCK": "/s/d.sock"})
        self.assertEqual(uri.keyid, KEYID)
        self.assertEqual(uri.endpoint, UnixEndpoint("/s/d.sock"))

    def test_socket(self):
        uri = TufkeyUri.parse(f"tufkey:{KEYID}?socket=/a%20b/t.sock", env={})
        self.assertEqual(uri.endpoint, UnixEndpoint("/a b/t.sock"))

    def test_mutual_tls(self):
        uri = TufkeyUri.parse(
            f"tufkey:{KEYID}?addr=10.0.0.2:4443&ca=/p/ca.crt&cert=/p/c.crt&key=/p/c.key"
        )
        want = TlsEndpoint("10.0.0.2:4443", "/p/ca.crt", "/p/c.crt", "/p/c.key")
        self.assertEqual(uri.endpoint, want)

    def test_plus_is_a_plus_in_paths(self):
        uri = TufkeyUri.parse(f"tufkey:{KEYID}?socket=/tmp/a+b.sock", env={})
        self.assertEqual(uri.endpoint, UnixEndpoint("/tmp/a+b.sock"))

    def test_https_prefix_is_accepted_as_the_cli_writes_it(self):
        uri = TufkeyUri.parse(f"tufkey:{KEYID}?addr=https://h:1&ca=/c&cert=/d&key=/e")
        self.assertEqual(uri.endpoint.addr, "h:1")

    def test_relative_paths_become_absolute(self):
        endpoint = TlsEndpoint("h:1", "ca.crt", "c.crt", "c.key")
        self.assertTrue(all(p.startswith("/") for p in (endpoint.ca, endpoint.cert, endpoint.key)))
        self.assertTrue(UnixEndpoint("t.sock").path.startswith("/"))

    def test_build_round_trips(self):
        for endpoint in (UnixEndpoint("/x y/t.sock"), TlsEndpoint("h:1", "/a&b", "/c=d", "/e?f")):
            uri = build_uri(KEYID, endpoint)
            self.assertEqual(TufkeyUri.parse(uri), TufkeyUri(KEYID, endpoint))
        self.assertEqual(build_uri(KEYID), f"tufkey:{KEYID}")

    def assert_refused(self, uri, *needles):
        with self.assertRaises(TufkeyUriError) as caught:
            TufkeyUri.parse(uri, env={})
        self.assertIsInstance(caught.exception, ValueError)
        for needle in needles:
            self.assertIn(needle, str(caught.exception))

    def test_refusals_name_the_fix(self):
        self.assert_refused(f"hv:{KEYID}", "not a tufkey: URI")
        self.assert_refused("tufkey:targets", "'targets' is not a key ID", "tufkey key list")
        self.assert_refused(f"tufkey:{KEYID.upper()}", "not a key ID")
        self.assert_refused(f"tufkey:{KEYID}?sock=/x", "unknown parameter(s) sock", "socket=PATH")
        self.assert_refused(f"tufkey:{KEYID}?socket=/x&socket=/y", "socket given twice")
        self.assert_refused(f"tufkey:{KEYID}?socket=", "socket are empty")
        self.assert_refused(f"tufkey:{KEYID}?socket", "'socket' is not NAME=VALUE")
        self.assert_refused(f"tufkey:{KEYID}?socket=/x&addr=h:1&ca=/a&cert=/b&key=/c", "not both")
        self.assert_refused(f"tufkey:{KEYID}?addr=h:1&ca=/a", "add cert=PATH, key=PATH")
        self.assert_refused(f"tufkey:{KEYID}?socket=/x&ca=/a", "ca= only go with addr=")


class KeyCheck(unittest.TestCase):
    """The check from_priv_key_uri makes between the key it is given and tufkeyd's."""

    @staticmethod
    def new_key(keyid=None):
        public = ec.generate_private_key(ec.SECP256R1()).public_key()
        key = SSlibKey.from_crypto(public, scheme="ecdsa-sha2-nistp256")
        if keyid is not None:
            key = SSlibKey(keyid, key.keytype, key.scheme, key.keyval)
        return key

    def test_the_same_key_passes(self):
        held = self.new_key()
        _check_same_key("tufkey:x", SSlibKey.from_dict(held.keyid, held.to_dict()), held)

    def test_another_key_is_refused(self):
        held, given = self.new_key(), self.new_key()
        with self.assertRaises(TufkeyKeyMismatchError) as caught:
            _check_same_key("tufkey:x", given, held)
        self.assertIn(f"is not the key tufkeyd holds as {held.keyid}", str(caught.exception))
        self.assertIn(given.keyid, str(caught.exception))

    def test_a_key_without_a_readable_pem_is_refused(self):
        held = self.new_key()
        given = SSlibKey(held.keyid, held.keytype, held.scheme, {"public": "not a PEM"})
        with self.assertRaises(TufkeyKeyMismatchError):
            _check_same_key("tufkey:x", given, held)

    def test_the_same_key_under_another_key_id_is_refused(self):
        held = self.new_key()
        given = SSlibKey("f" * 64, held.keytype, held.scheme, held.keyval)
        with self.assertRaises(TufkeyKeyMismatchError) as caught:
            _check_same_key("tufkey:x", given, held)
        self.assertIn(f"under another key ID, {'f' * 64}", str(caught.exception))


class Registration(unittest.TestCase):
    def test_importing_registers_the_scheme(self):
        self.assertIs(SIGNER_FOR_URI_SCHEME["tufkey"], TufkeySigner)

    def test_signer_api_dispatches_to_tufkey_and_reports_an_absent_daemon(self):
        key = SSlibKey(KEYID, "ecdsa", "ecdsa-sha2-nistp256", {"public": "unused"})
        with self.assertRaises(TufkeyRpcError) as caught:
            Signer.from_priv_key_uri(f"tufkey:{KEYID}?socket=/nonexistent/tufkeyd.sock", key)
        error = caught.exception
        self.assertEqual(error.code, grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(error.rpc, "/tufkey.v1.Keys/GetKey")
        self.assertIn("/nonexistent/tufkeyd.sock", str(error))
        self.assertIn("is tufkeyd running", str(error))

    def test_public_api(self):
        for name in tufkey_signer.__all__:
            self.assertTrue(hasattr(tufkey_signer, name), name)


if __name__ == "__main__":
    unittest.main()
