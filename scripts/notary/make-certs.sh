#!/usr/bin/env bash
# make-certs.sh DIR — test PKI for the Notary end-to-end environment (openssl CLI only).
#
# All keys are ECDSA P-256, written as unencrypted PEM PKCS#8 ("BEGIN PRIVATE KEY"),
# which both Go's crypto/tls (notary 0.7, go1.19) and rustls read. Certificates are
# PEM X.509 v3, valid 825 days, SHA-256 signatures. Files written into DIR:
#
#   ca.crt / ca.key                      test CA ("tufkey test CA"); trust anchor for
#                                        everything below except other-*
#   signer.crt / signer.key              TLS server cert for the signing service
#                                        (notary-signer or tufkeyd): CN=notary-signer,
#                                        SAN DNS:localhost, DNS:notary-signer, IP:127.0.0.1,
#                                        EKU serverAuth
#   server-client.crt / server-client.key  TLS client cert notary-server presents to the
#                                        signer (CN=notary-server, EKU clientAuth)
#   server.crt / server.key              TLS server cert of notary-server for the notary
#                                        CLI: CN=notary-server, SAN DNS:localhost,
#                                        DNS:notary-server, IP:127.0.0.1, EKU serverAuth
#   client.crt / client.key              a second client cert from ca (CN=tufkey-test-client,
#                                        EKU clientAuth) for load tools / direct gRPC tests
#   other-ca.crt / other-ca.key          an unrelated CA ("tufkey other CA")
#   other-client.crt / other-client.key  client cert signed by other-ca (CN=notary-server,
#                                        EKU clientAuth): must be REFUSED by the signer
#   signer-chain.crt                     signer.crt followed by ca.crt
#
# Existing files in DIR are overwritten. Exit non-zero on any openssl failure.
set -euo pipefail
DIR=${1:?usage: make-certs.sh DIR}
mkdir -p "$DIR"
cd "$DIR"
umask 077
DAYS=825

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# mkca NAME CN
mkca() {
  newkey "$1.key"
  openssl req -new -x509 -sha256 -days 3650 -key "$1.key" -out "$1.crt" -subj "/O=tufkey tests/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash"
}

# mkleaf NAME CA CN EKU [SAN]
mkleaf() {
  local name=$1 ca=$2 cn=$3 eku=$4 san=${5:-}
  newkey "$name.key"
  openssl req -new -sha256 -key "$name.key" -out "$name.csr" -subj "/O=tufkey tests/CN=$cn"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid,issuer"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } > "$name.ext"
  openssl x509 -req -sha256 -days "$DAYS" -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

mkca ca "tufkey test CA"
mkleaf signer ca notary-signer serverAuth "DNS:localhost,DNS:notary-signer,IP:127.0.0.1"
mkleaf server-client ca notary-server clientAuth
mkleaf server ca notary-server serverAuth "DNS:localhost,DNS:notary-server,IP:127.0.0.1"
mkleaf client ca tufkey-test-client clientAuth
mkca other-ca "tufkey other CA"
mkleaf other-client other-ca notary-server clientAuth
cat signer.crt ca.crt > signer-chain.crt

# Certs are public; keys stay 0600.
chmod 644 ./*.crt
for c in signer server-client server client; do
  openssl verify -CAfile ca.crt "$c.crt" >/dev/null
done
openssl verify -CAfile other-ca.crt other-client.crt >/dev/null
if openssl verify -CAfile ca.crt other-client.crt >/dev/null 2>&1; then
  echo "make-certs.sh: other-client.crt unexpectedly verifies against ca.crt" >&2; exit 1
fi
echo "make-certs.sh: wrote test PKI to $(pwd)"
