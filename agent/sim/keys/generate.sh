#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Regenerates the simulated AMD SEV-SNP certificate chain in this directory (test keys only).
#
# The chain imitates AMD's Milan chain as served by AMD KDS and Azure THIM:
#   ARK  RSA-4096, self-signed, CN=ARK-Milan, serial 0x10000, 2020-10-22..2045-10-22
#   ASK  RSA-4096, issued by the ARK, CN=SEV-Milan, serial 0x10001, same validity
#   VCEK P-384, issued by the ASK, CN=SEV-VCEK, serial 0, 2023-01-01..2030-01-01, carrying the
#        AMD extensions under 1.3.6.1.4.1.3704.1 (structVersion, productName, the eight SPLs and
#        hwID as raw 64 bytes, exactly like the real certificates)
# Every signature is RSASSA-PSS with SHA-384, MGF1-SHA-384 and a 48-byte salt, as AMD signs.
# O and OU say "thimble SIMULATION" so nobody mistakes these for AMD certificates.
#
# Outputs (all committed):
#   ark.der ask.der vcek.der     the chain, DER
#   vcek.pk8                     VCEK private key, unencrypted PKCS#8 DER (loads in ring)
#   vcek_other_chip.der          hwID = sha512("thimble other chip")
#   vcek_expired.der             notAfter 2021-01-01
#   vcek_other_tcb.der           ucodeSPL = 116
#   vcek_forged.der              right extensions and issuer name, signed by a key that is not the ASK
#   ask_ark.pem                  ASK then ARK, PEM (the order of KDS cert_chain / THIM certificateChain)
#   thim.json                    a THIM /metadata/THIM/amd/certification body for the chain
#   crl.der                      the ARK's CRL as KDS serves it: empty, 2024-01-01..2045-01-01
#   crl_ask_revoked.der          an older CRL (2023-06-01..2045-01-01) that revokes the ASK
#   crl_other_scope.der          revokes the ASK, but its Issuing Distribution Point names the
#                                VLEK CRL, which does not cover the ASK
#   crl_delta.der                revokes the ASK in a delta CRL (critical Delta CRL Indicator)
# Every CRL is signed by the ARK like AMD's (RSASSA-PSS as above; Authority Key Identifier and CRL
# Number extensions). The simulated chain has no ASVK/VLEK, so there is no VLEK-side CRL.
# The ARK, ASK and forging private keys are thrown away; rerunning regenerates every file.
#
# Usage: sh agent/sim/keys/generate.sh        (needs the OpenSSL 3 CLI)

set -eu

OUT=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM
cd "$WORK"

# Simulated chip identities (SIM_CHIP_ID in agent/sim/src/signer.rs must stay equal to the first).
CHIP_ID=$(printf '%s' 'thimble simulated chip' | openssl dgst -sha512 -r | cut -d' ' -f1)
OTHER_CHIP_ID=$(printf '%s' 'thimble other chip' | openssl dgst -sha512 -r | cut -d' ' -f1)

# Reported TCB of the simulated guest (Milan layout [bl, tee, 0, 0, 0, 0, snp, ucode]).
BL_SPL=3
TEE_SPL=0
SNP_SPL=8
UCODE_SPL=115

# Names shaped like AMD's (OU, C, L, ST, O, CN in this order; C is a PrintableString, the rest
# UTF8String), with the organisation marking the simulation.
DN_BASE="/OU=thimble SIMULATION test root/C=US/L=Santa Clara/ST=CA/O=thimble SIMULATION (not Advanced Micro Devices)"
ARK_DN="$DN_BASE/CN=ARK-Milan"
ASK_DN="$DN_BASE/CN=SEV-Milan"
VCEK_DN="$DN_BASE/CN=SEV-VCEK"

CRL_URI="URI:https://kds.thimble-sim.invalid/vcek/v1/Milan/crl"
VLEK_CRL_URI="URI:https://kds.thimble-sim.invalid/vlek/v1/Milan/crl"

PSS="-md sha384 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:48 -sigopt rsa_mgf1_md:sha384"

cat >openssl.cnf <<CNF
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused

[ ca ]
default_ca = sim_ca
[ sim_ca ]
database = $WORK/index.txt
serial = $WORK/serial
new_certs_dir = $WORK/issued
crlnumber = $WORK/crlnumber
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
[ policy_any ]
organizationalUnitName = optional
countryName = optional
localityName = optional
stateOrProvinceName = optional
organizationName = optional
commonName = supplied

[ ark_ext ]
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
basicConstraints = critical, CA:TRUE
crlDistributionPoints = $CRL_URI

[ ask_ext ]
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign
crlDistributionPoints = $CRL_URI

# CRL extensions: what AMD's KDS CRLs carry, and nothing else.
[ crl_ext ]
authorityKeyIdentifier = keyid:always
[ crl_other_scope_ext ]
authorityKeyIdentifier = keyid:always
issuingDistributionPoint = critical, @vlek_idp
[ vlek_idp ]
fullname = $VLEK_CRL_URI
[ crl_delta_ext ]
authorityKeyIdentifier = keyid:always
2.5.29.27 = critical, ASN1:INTEGER:1
CNF

# vcek_ext NAME HWID_HEX UCODE_SPL: the AMD extension set, in the order real VCEKs list it, and
# nothing else (OpenSSL 3 would add key identifiers that real VCEKs do not carry). hwID uses DER:
# so the 64 bytes are the whole extnValue content, not an inner OCTET STRING.
vcek_ext() {
    cat >>openssl.cnf <<CNF

[ $1 ]
1.3.6.1.4.1.3704.1.1 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.2 = ASN1:IA5STRING:Milan-B0
1.3.6.1.4.1.3704.1.3.1 = ASN1:INTEGER:$BL_SPL
1.3.6.1.4.1.3704.1.3.2 = ASN1:INTEGER:$TEE_SPL
1.3.6.1.4.1.3704.1.3.4 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.5 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.6 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.7 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.3 = ASN1:INTEGER:$SNP_SPL
1.3.6.1.4.1.3704.1.3.8 = ASN1:INTEGER:$3
1.3.6.1.4.1.3704.1.4 = DER:$2
subjectKeyIdentifier = none
authorityKeyIdentifier = none
CNF
}
vcek_ext vcek_ext "$CHIP_ID" "$UCODE_SPL"
vcek_ext vcek_other_chip_ext "$OTHER_CHIP_ID" "$UCODE_SPL"
vcek_ext vcek_other_tcb_ext "$CHIP_ID" 116

reset_db() {
    rm -rf issued index.txt index.txt.* serial serial.*
    mkdir issued
    : >index.txt
    printf '%s\n' "$1" >serial
}

# sign CA_KEY CSR SERIAL_HEX START END EXT_SECTION OUT_DER (-selfsign | -cert CA_PEM)
sign() {
    ca_key=$1 csr=$2 serial=$3 start=$4 end=$5 ext=$6 out=$7
    shift 7
    reset_db "$serial"
    # shellcheck disable=SC2086 # $PSS is a word list on purpose
    openssl ca -batch -config openssl.cnf -notext -preserveDN -utf8 $PSS \
        -startdate "$start" -enddate "$end" -extensions "$ext" \
        -keyfile "$ca_key" "$@" -in "$csr" -out cert.pem 2>ca.log || { cat ca.log >&2; exit 1; }
    openssl x509 -in cert.pem -outform der -out "$out"
}

rsa_key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out "$1" 2>/dev/null; }
csr() { openssl req -new -config openssl.cnf -utf8 -key "$1" -subj "$2" -out "$3"; }

# ARK: self-signed.
rsa_key ark.key
csr ark.key "$ARK_DN" ark.csr
sign ark.key ark.csr 010000 201022172305Z 451022172305Z ark_ext ark.der -selfsign
openssl x509 -inform der -in ark.der -out ark.pem

# ASK: issued by the ARK.
rsa_key ask.key
csr ask.key "$ASK_DN" ask.csr
sign ark.key ask.csr 010001 201022182420Z 451022182420Z ask_ext ask.der -cert ark.pem
openssl x509 -inform der -in ask.der -out ask.pem

# VCEK key (P-384). PKCS#8 from OpenSSL omits the inner curve parameters and keeps the public key,
# which is the form ring's EcdsaKeyPair::from_pkcs8 accepts.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -pkeyopt ec_param_enc:named_curve -out vcek.key
openssl pkcs8 -topk8 -nocrypt -in vcek.key -outform der -out vcek.pk8
csr vcek.key "$VCEK_DN" vcek.csr

VCEK_START=230101000000Z
VCEK_END=300101000000Z
sign ask.key vcek.csr 00 $VCEK_START $VCEK_END vcek_ext vcek.der -cert ask.pem
sign ask.key vcek.csr 00 $VCEK_START $VCEK_END vcek_other_chip_ext vcek_other_chip.der -cert ask.pem
sign ask.key vcek.csr 00 201101000000Z 210101000000Z vcek_ext vcek_expired.der -cert ask.pem
sign ask.key vcek.csr 00 $VCEK_START $VCEK_END vcek_other_tcb_ext vcek_other_tcb.der -cert ask.pem

# Forged VCEK: a stranger key wearing the ASK's name.
rsa_key forger.key
csr forger.key "$ASK_DN" forger.csr
sign forger.key forger.csr 010001 201022182420Z 451022182420Z ask_ext forger.der -selfsign
openssl x509 -inform der -in forger.der -out forger.pem
sign forger.key vcek.csr 00 $VCEK_START $VCEK_END vcek_ext vcek_forged.der -cert forger.pem

# Self-check before anything is copied out (not -x509_strict: like the real ones, the VCEK has no
# authority key identifier).
openssl x509 -inform der -in vcek.der -out vcek.pem
openssl verify -CAfile ark.pem -untrusted ask.pem vcek.pem >/dev/null
openssl x509 -inform der -in vcek_forged.der -out vcek_forged.pem
if openssl verify -CAfile ark.pem -untrusted ask.pem vcek_forged.pem >/dev/null 2>&1; then
    echo "generate.sh: forged VCEK unexpectedly verifies" >&2
    exit 1
fi

cat ask.pem ark.pem >ask_ark.pem

# crl OUT_DER LAST_UPDATE NEXT_UPDATE CRL_NUMBER EXT_SECTION [REVOKED_SERIAL_HEX REVOKED_AT]: a CRL
# issued by the ARK, with fixed dates so that the tests stay deterministic.
crl() {
    out=$1 last=$2 next=$3 number=$4 ext=$5
    rm -f index.txt index.txt.* crlnumber crlnumber.*
    : >index.txt
    if [ $# -ge 7 ]; then
        printf 'R\t451022182420Z\t%s\t%s\tunknown\t%s\n' "$7" "$6" "$ASK_DN" >index.txt
    fi
    printf '%s\n' "$number" >crlnumber
    # shellcheck disable=SC2086 # $PSS is a word list on purpose
    openssl ca -gencrl -batch -config openssl.cnf $PSS -keyfile ark.key -cert ark.pem \
        -crl_lastupdate "$last" -crl_nextupdate "$next" -crlexts "$ext" \
        -out crl.pem 2>ca.log || { cat ca.log >&2; exit 1; }
    openssl crl -in crl.pem -outform der -out "$out"
    openssl crl -inform der -in "$out" -CAfile ark.pem -noout 2>/dev/null ||
        { echo "generate.sh: $out does not verify under the ARK" >&2; exit 1; }
}
ASK_SERIAL=010001
crl crl.der 240101000000Z 450101000000Z 02 crl_ext
crl crl_ask_revoked.der 230601000000Z 450101000000Z 01 crl_ext "$ASK_SERIAL" 230601000000Z
crl crl_other_scope.der 240101000000Z 450101000000Z 03 crl_other_scope_ext "$ASK_SERIAL" 230601000000Z
crl crl_delta.der 240101000000Z 450101000000Z 04 crl_delta_ext "$ASK_SERIAL" 230601000000Z

# THIM body: compact JSON, keys in the order the real service sends them. tcbm is the reported
# TCB read as a little-endian u64, printed most significant byte first (docs/formats.md §3).
json_pem() { awk '{ printf "%s\\n", $0 }' "$1"; }
TCBM=$(printf '%02x%02x00000000%02x%02x' "$UCODE_SPL" "$SNP_SPL" "$TEE_SPL" "$BL_SPL")
{
    printf '{"vcekCert":"'
    json_pem vcek.pem
    printf '","tcbm":"%s","certificateChain":"' "$TCBM"
    json_pem ask_ark.pem
    printf '","cacheControl":"86400"}'
} >thim.json

for f in ark.der ask.der vcek.der vcek.pk8 vcek_other_chip.der vcek_expired.der \
    vcek_other_tcb.der vcek_forged.der ask_ark.pem thim.json \
    crl.der crl_ask_revoked.der crl_other_scope.der crl_delta.der; do
    cp "$f" "$OUT/$f"
done
echo "generate.sh: wrote the simulated chain to $OUT"
