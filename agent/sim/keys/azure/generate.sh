#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Regenerates the simulated Azure vTPM keys in this directory (test keys only).
#
#   ak.pk8          the vTPM attestation key (HCLAkPub): RSA-2048, e = 65537, unencrypted PKCS#8
#                   DER, the form ring's RsaKeyPair::from_pkcs8 loads. agent/sim/src/azure_sim.rs
#                   signs TPM quotes with it and derives its JWK from it.
#   null_decrypt_1.pk8, null_decrypt_2.pk8
#                   the fake vTPM's null-hierarchy decryption keys: RSA-2048, e = 65537,
#                   unencrypted PKCS#8 DER. agent/sim/src/rsa_sim.rs loads them with the rsa crate;
#                   TPM2_CreatePrimary hands them out one per template, TPM2_RSA_Decrypt uses them.
#   ek_modulus.hex  the modulus of the endorsement key (HCLEkPub), hex, e = 65537. Only the public
#                   part is used (the runtime data lists it; nothing encrypts to it), so the
#                   private key is thrown away. It is RSA-512, not RSA-2048 like a real EK: two
#                   2048-bit moduli and the 64 bytes of user data alone fill the 812 bytes the
#                   runtime data may take for the HCL report to fit swtpm's 2048-byte NV index.
#
# Usage: sh agent/sim/keys/azure/generate.sh        (needs the OpenSSL 3 CLI)

set -eu

OUT=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM

# genpkey's DER output is PKCS#1 for RSA keys; ring wants PKCS#8, hence the conversion.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -pkeyopt rsa_keygen_pubexp:65537 \
    -out "$WORK/ak.pem"
openssl pkcs8 -topk8 -nocrypt -in "$WORK/ak.pem" -outform DER -out "$OUT/ak.pk8"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:512 -pkeyopt rsa_keygen_pubexp:65537 \
    -out "$WORK/ek.pem"
openssl rsa -in "$WORK/ek.pem" -noout -modulus | sed 's/^Modulus=//' | tr 'A-F' 'a-f' \
    >"$OUT/ek_modulus.hex"

for n in 1 2; do
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -pkeyopt rsa_keygen_pubexp:65537 \
        -out "$WORK/null_$n.pem"
    openssl pkcs8 -topk8 -nocrypt -in "$WORK/null_$n.pem" -outform DER -out "$OUT/null_decrypt_$n.pk8"
done
