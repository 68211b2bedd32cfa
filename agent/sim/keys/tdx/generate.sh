#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Regenerates the simulated Intel SGX/TDX PKI in this directory (test keys only).
#
# The PKI imitates Intel's as it appears in a TDX quote and in the DCAP collateral:
#   Root CA       P-256, self-signed, CN=Intel SGX Root CA, 2018-05-21..2049-12-31,
#                 CA:TRUE pathlen:1, keyCertSign + cRLSign
#   PCK CA        P-256, issued by the root, CN=Intel SGX PCK Platform CA, 2018-05-21..2049-12-31,
#                 CA:TRUE pathlen:0
#   TCB Signing   P-256, issued by the root, CN=Intel SGX TCB Signing, 2024-01-01..2049-12-31,
#                 signs the TCB info and the QE identity
#   PCK           P-256, issued by the PCK CA, CN=Intel SGX PCK Certificate, 2024-01-01..2049-12-31,
#                 carrying the Intel SGX extension (1.2.840.113741.1.13.1) with the layout of a
#                 real Platform-CA PCK certificate: PPID, TCB (17 CPUSVN components as INTEGERs,
#                 PCESVN, CPUSVN as a 16-byte OCTET STRING), PCE-ID, FMSPC, SGX type (ENUMERATED,
#                 1 = Scalable), PlatformInstanceID and Configuration (dynamicPlatform, cachedKeys,
#                 SMTEnabled)
#   Attestation   P-256 key of the simulated quoting enclave (no certificate: the QE report,
#                 signed by the PCK key, binds it)
# Every signature is ECDSA with SHA-256, as Intel signs. Names are shaped like Intel's (CN, O, L,
# ST, C; C a PrintableString, the rest UTF8String), with O saying "thimble SIMULATION" so nobody
# mistakes these for Intel certificates. CRL distribution points name an .invalid host.
# Both CRLs are empty, version 2 with a CRL number and an authority key identifier like Intel's,
# and valid 2024-01-01..2049-12-31 so that they never go stale in a simulation.
#
# The platform (SIM_* in agent/sim/src/tdx_signer.rs must stay equal to these):
#   FMSPC 00513D000000, PCE-ID 0000, CPUSVN 03030202050000000000000000000000, PCESVN 13,
#   PPID = first 16 bytes of sha256("thimble simulated PPID"),
#   PlatformInstanceID = first 16 bytes of sha256("thimble simulated platform instance").
#
# Outputs (all committed):
#   root_ca.der pck_ca.der tcb_signing.der pck.der   the certificates, DER
#   pck.pk8 tcb_signing.pk8 attestation.pk8         private keys, unencrypted PKCS#8 DER (load in
#                                                    ring as ECDSA P-256)
#   pck_crl.der root_ca_crl.der                      the CRLs, DER
#   pck_chain.pem                                    PCK, PCK CA, root (certification data type 5)
#   pck_crl_issuer_chain.pem                         PCK CA, root (SGX-PCK-CRL-Issuer-Chain)
#   tcb_signing_chain.pem                            TCB Signing, root (TCB-Info-Issuer-Chain and
#                                                    SGX-Enclave-Identity-Issuer-Chain)
# The root and PCK CA private keys are thrown away; rerunning regenerates every file.
#
# Usage: sh agent/sim/keys/tdx/generate.sh        (needs the OpenSSL 3 CLI)

set -eu

OUT=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM
cd "$WORK"

# The simulated platform.
FMSPC=00513D000000
PCE_ID=0000
CPUSVN="3 3 2 2 5 0 0 0 0 0 0 0 0 0 0 0"
PCESVN=13
first16() { printf '%s' "$1" | openssl dgst -sha256 -r | cut -c1-32; }
PPID=$(first16 'thimble simulated PPID')
PLATFORM_INSTANCE_ID=$(first16 'thimble simulated platform instance')
CPUSVN_HEX=$(for c in $CPUSVN; do printf '%02X' "$c"; done)

DN_TAIL="/O=thimble SIMULATION (not Intel Corporation)/L=Santa Clara/ST=CA/C=US"
ROOT_DN="/CN=Intel SGX Root CA$DN_TAIL"
PCK_CA_DN="/CN=Intel SGX PCK Platform CA$DN_TAIL"
TCB_DN="/CN=Intel SGX TCB Signing$DN_TAIL"
PCK_DN="/CN=Intel SGX PCK Certificate$DN_TAIL"

ROOT_CRL_URI="URI:https://certificates.thimble-sim.invalid/IntelSGXRootCA.der"
PCK_CRL_URI="URI:https://api.thimble-sim.invalid/sgx/certification/v4/pckcrl?ca=platform&encoding=der"

cat >openssl.cnf <<CNF
[ req ]
distinguished_name = req_dn
prompt = no
string_mask = utf8only
[ req_dn ]
CN = unused

[ ca ]
default_ca = sim_ca
[ sim_ca ]
database = $WORK/index.txt
serial = $WORK/serial
new_certs_dir = $WORK/issued
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
default_md = sha256
[ policy_any ]
organizationName = optional
localityName = optional
stateOrProvinceName = optional
countryName = optional
commonName = supplied

# Extensions in the order Intel's certificates list them.
# (The root's own key identifier must exist before OpenSSL can copy it into the authority key
# identifier, so the root lists it first.)
[ root_ext ]
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = $ROOT_CRL_URI
keyUsage = critical, keyCertSign, cRLSign
basicConstraints = critical, CA:TRUE, pathlen:1

[ pck_ca_ext ]
authorityKeyIdentifier = keyid:always
crlDistributionPoints = $ROOT_CRL_URI
subjectKeyIdentifier = hash
keyUsage = critical, keyCertSign, cRLSign
basicConstraints = critical, CA:TRUE, pathlen:0

[ tcb_signing_ext ]
authorityKeyIdentifier = keyid:always
crlDistributionPoints = $ROOT_CRL_URI
subjectKeyIdentifier = hash
keyUsage = critical, digitalSignature, nonRepudiation
basicConstraints = critical, CA:FALSE

[ pck_ext ]
authorityKeyIdentifier = keyid:always
crlDistributionPoints = $PCK_CRL_URI
subjectKeyIdentifier = hash
keyUsage = critical, digitalSignature, nonRepudiation
basicConstraints = critical, CA:FALSE
1.2.840.113741.1.13.1 = ASN1:SEQUENCE:sgx_extensions

# CRL number 1 then the authority key identifier, as in Intel's CRLs (OpenSSL's own crlnumber
# would come last).
[ crl_ext ]
2.5.29.20 = ASN1:INTEGER:1
authorityKeyIdentifier = keyid:always

# The Intel SGX extension (SGX PCK Certificate and CRL Profile): a SEQUENCE of (OID, value)
# SEQUENCEs; TCB and Configuration nest another such list.
[ sgx_extensions ]
ppid = SEQUENCE:sgx_ppid
tcb = SEQUENCE:sgx_tcb
pceid = SEQUENCE:sgx_pceid
fmspc = SEQUENCE:sgx_fmspc
sgxtype = SEQUENCE:sgx_type
platforminstanceid = SEQUENCE:sgx_platform_instance_id
configuration = SEQUENCE:sgx_configuration

[ sgx_ppid ]
oid = OID:1.2.840.113741.1.13.1.1
value = FORMAT:HEX,OCTETSTRING:$PPID

[ sgx_tcb ]
oid = OID:1.2.840.113741.1.13.1.2
value = SEQUENCE:sgx_tcb_components

[ sgx_pceid ]
oid = OID:1.2.840.113741.1.13.1.3
value = FORMAT:HEX,OCTETSTRING:$PCE_ID

[ sgx_fmspc ]
oid = OID:1.2.840.113741.1.13.1.4
value = FORMAT:HEX,OCTETSTRING:$FMSPC

[ sgx_type ]
oid = OID:1.2.840.113741.1.13.1.5
value = ENUMERATED:1

[ sgx_platform_instance_id ]
oid = OID:1.2.840.113741.1.13.1.6
value = FORMAT:HEX,OCTETSTRING:$PLATFORM_INSTANCE_ID

[ sgx_configuration ]
oid = OID:1.2.840.113741.1.13.1.7
value = SEQUENCE:sgx_configuration_flags

[ sgx_configuration_flags ]
dynamicplatform = SEQUENCE:sgx_dynamic_platform
cachedkeys = SEQUENCE:sgx_cached_keys
smtenabled = SEQUENCE:sgx_smt_enabled

[ sgx_dynamic_platform ]
oid = OID:1.2.840.113741.1.13.1.7.1
value = BOOLEAN:TRUE

[ sgx_cached_keys ]
oid = OID:1.2.840.113741.1.13.1.7.2
value = BOOLEAN:TRUE

[ sgx_smt_enabled ]
oid = OID:1.2.840.113741.1.13.1.7.3
value = BOOLEAN:TRUE

[ sgx_tcb_components ]
CNF

# TCB: components 1..16 are the CPUSVN bytes as INTEGERs, 17 is PCESVN, 18 the CPUSVN itself.
i=1
for c in $CPUSVN; do
    printf 'comp%02d = SEQUENCE:sgx_tcb_comp%02d\n' "$i" "$i" >>openssl.cnf
    i=$((i + 1))
done
printf 'pcesvn = SEQUENCE:sgx_tcb_pcesvn\ncpusvn = SEQUENCE:sgx_tcb_cpusvn\n' >>openssl.cnf
i=1
for c in $CPUSVN; do
    printf '\n[ sgx_tcb_comp%02d ]\noid = OID:1.2.840.113741.1.13.1.2.%d\nvalue = INTEGER:%d\n' \
        "$i" "$i" "$c" >>openssl.cnf
    i=$((i + 1))
done
cat >>openssl.cnf <<CNF

[ sgx_tcb_pcesvn ]
oid = OID:1.2.840.113741.1.13.1.2.17
value = INTEGER:$PCESVN

[ sgx_tcb_cpusvn ]
oid = OID:1.2.840.113741.1.13.1.2.18
value = FORMAT:HEX,OCTETSTRING:$CPUSVN_HEX
CNF

reset_db() {
    rm -rf issued index.txt index.txt.* serial serial.*
    mkdir issued
    : >index.txt
    printf '%s\n' "$1" >serial
}

# A positive 20-byte serial, the length Intel uses.
serial() { printf '%s' "$(openssl rand -hex 20 | sed 's/^./4/')"; }

# sign CA_KEY CSR START END EXT_SECTION OUT_DER (-selfsign | -cert CA_PEM)
sign() {
    ca_key=$1 csr=$2 start=$3 end=$4 ext=$5 out=$6
    shift 6
    reset_db "$(serial)"
    openssl ca -batch -config openssl.cnf -notext -preserveDN -utf8 -md sha256 \
        -startdate "$start" -enddate "$end" -extensions "$ext" \
        -keyfile "$ca_key" "$@" -in "$csr" -out cert.pem 2>ca.log || { cat ca.log >&2; exit 1; }
    openssl x509 -in cert.pem -outform der -out "$out"
    openssl x509 -in cert.pem -out "${out%.der}.pem"
}

# gencrl CA_KEY CA_PEM OUT_DER: an empty CRL.
gencrl() {
    reset_db 01
    openssl ca -batch -config openssl.cnf -gencrl -md sha256 -crlexts crl_ext \
        -crl_lastupdate 20240101000000Z -crl_nextupdate 20491231235959Z \
        -keyfile "$1" -cert "$2" -out crl.pem 2>ca.log || { cat ca.log >&2; exit 1; }
    openssl crl -in crl.pem -outform der -out "$3"
}

# P-256 keys. PKCS#8 from OpenSSL omits the inner curve parameters and keeps the public key,
# which is the form ring's EcdsaKeyPair::from_pkcs8 accepts.
ec_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve -out "$1"
}
pk8() { openssl pkcs8 -topk8 -nocrypt -in "$1" -outform der -out "$2"; }
csr() { openssl req -new -config openssl.cnf -utf8 -key "$1" -subj "$2" -out "$3"; }

ec_key root.key
csr root.key "$ROOT_DN" root.csr
sign root.key root.csr 180521104510Z 491231235959Z root_ext root_ca.der -selfsign

ec_key pck_ca.key
csr pck_ca.key "$PCK_CA_DN" pck_ca.csr
sign root.key pck_ca.csr 180521105010Z 491231235959Z pck_ca_ext pck_ca.der -cert root_ca.pem

ec_key tcb_signing.key
pk8 tcb_signing.key tcb_signing.pk8
csr tcb_signing.key "$TCB_DN" tcb_signing.csr
sign root.key tcb_signing.csr 240101000000Z 491231235959Z tcb_signing_ext tcb_signing.der \
    -cert root_ca.pem

ec_key pck.key
pk8 pck.key pck.pk8
csr pck.key "$PCK_DN" pck.csr
sign pck_ca.key pck.csr 240101000000Z 491231235959Z pck_ext pck.der -cert pck_ca.pem

ec_key attestation.key
pk8 attestation.key attestation.pk8

gencrl root.key root_ca.pem root_ca_crl.der
gencrl pck_ca.key pck_ca.pem pck_crl.der

# Self-check before anything is copied out.
openssl verify -x509_strict -CAfile root_ca.pem -untrusted pck_ca.pem pck.pem >/dev/null
openssl verify -x509_strict -CAfile root_ca.pem tcb_signing.pem >/dev/null
crl_verifies() {
    openssl crl -inform der -in "$1" -noout -verify -CAfile "$2" 2>&1 | grep -q '^verify OK$'
}
crl_verifies pck_crl.der pck_ca.pem
crl_verifies root_ca_crl.der root_ca.pem
if crl_verifies pck_crl.der root_ca.pem; then
    echo "generate.sh: the PCK CRL unexpectedly verifies under the root" >&2
    exit 1
fi

cat pck.pem pck_ca.pem root_ca.pem >pck_chain.pem
cat pck_ca.pem root_ca.pem >pck_crl_issuer_chain.pem
cat tcb_signing.pem root_ca.pem >tcb_signing_chain.pem

for f in root_ca.der pck_ca.der tcb_signing.der pck.der pck.pk8 tcb_signing.pk8 attestation.pk8 \
    pck_crl.der root_ca_crl.der pck_chain.pem pck_crl_issuer_chain.pem tcb_signing_chain.pem; do
    cp "$f" "$OUT/$f"
done
echo "generate.sh: wrote the simulated Intel PKI to $OUT"
