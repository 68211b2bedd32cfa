// SPDX-License-Identifier: Apache-2.0
//! MAA's Azure guest attestation protocol, `POST /attest/AzureGuest?api-version=2020-10-01`, as
//! Microsoft's C++ client sends it (Azure/confidential-computing-cvm-guest-attestation,
//! "CGA": `AttestationClientImpl.cpp` `CreatePayload`, `AttestationParameters.cpp`,
//! `TpmInfo.cpp`, `IsolationInfo.cpp`, `TpmUnseal.cpp`). Pure: the request body from values the
//! guest gathered ([`AttestationInfo`], [`request_body`]), the same body read back for the
//! emulator ([`parse_request`]), and the encrypted answer both ways ([`EncryptedToken`],
//! [`parse_answer`], [`answer_body`]). Decrypting the answer needs the TPM and AES-GCM, which
//! are `thimble_collect::attest`'s.
//!
//! Encodings, as CGA writes them (its Python sibling differs in places; CGA is followed):
//! - the body is `{"AttestationInfo": B64URL(JSON)}`, base64url without padding;
//! - inside, every binary field is standard base64 with padding; `OSVersionMajor` and
//!   `OSVersionMinor` are JSON numbers; `ClientPayload` values are base64 of the caller's
//!   strings;
//! - `PcrQuote` is the `TPMS_ATTEST` and `PcrSignature` the bare RSASSA signature (CGA's
//!   `UnpackPcrQuoteToRSA` strips the `TPM2B_ATTEST` size and the `TPMT_SIGNATURE` header
//!   before sending); `EncKeyCertifyInfo` and `EncKeyCertifyInfoSignature` likewise;
//!   `AikPub` and `EncKeyPub` are whole marshalled `TPM2B_PUBLIC`s;
//! - `IsolationInfo.Evidence` for SEV-SNP is `Proof` = B64(JSON `{"SnpReport": B64URL(report),
//!   "VcekCertChain": B64(PEM chain)}`) and `RunTimeData` = B64(the HCL runtime data); for TDX
//!   (CGA's Azure Local path) `Proof` = B64(TD quote).
//!
//! The answer is `{"token": B64URL(JSON {EncryptedInnerKey, EncryptionParams{BlockMode,
//! BlockPadding, Cipher, KeySizeInBits, Iv}, AuthenticationData, Jwt})}`: the JWT encrypted with
//! AES-GCM under an inner key, with the additional data [`TRANSPORT_KEY_AAD`], the GCM tag in
//! `AuthenticationData`, and the inner key encrypted (RSAES-PKCS1-v1_5) to the guest's
//! ephemeral TPM key `EncKeyPub`.

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};

use super::{MAX_ANSWER_BYTES, MessageError, Verifier};
use crate::azure::HclReport;
use crate::bundle::{Bundle, Evidence};
use crate::interop::{ExportError, Format};
use crate::snp::SnpReport;

/// The path and API version of the protocol.
pub const PATH: &str = "/attest/AzureGuest?api-version=2020-10-01";

/// `AttestationProtocolVersion` (CGA `AttestationParameters.h`).
pub const PROTOCOL_VERSION: &str = "2.0";

/// The AES-GCM additional data of the answer (CGA `TpmUnseal.cpp` `DecryptJwt`).
pub const TRANSPORT_KEY_AAD: &[u8] = b"Transport Key";

/// The answer's `BlockMode`, `BlockPadding` and `Cipher`, the only ones CGA decrypts.
pub const BLOCK_MODE: &str = "ChainingModeGCM";
/// See [`BLOCK_MODE`].
pub const BLOCK_PADDING: &str = "PKCS7";
/// See [`BLOCK_MODE`].
pub const CIPHER: &str = "AES";

/// `OSBuild` on Linux (CGA `g_os_build_str`).
pub const OS_BUILD_LINUX: &str = "NotApplication";

const WHAT_REQUEST: &str = "AzureGuest request";
const WHAT_ANSWER: &str = "AzureGuest answer";

/// Standard base64, padding optional on decode.
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// base64url, padding optional on decode (CGA writes none; its decoder takes either).
const URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The operating system fields (CGA `GetOSInfo`: os-release `NAME` and `VERSION_ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsInfo {
    /// `OSType`: `Linux`.
    pub os_type: String,
    /// `OSDistro`: os-release `NAME`.
    pub distro: String,
    /// `OSVersionMajor`.
    pub version_major: u32,
    /// `OSVersionMinor`.
    pub version_minor: u32,
    /// `OSBuild`: [`OS_BUILD_LINUX`].
    pub build: String,
}

/// One PCR of `TpmInfo.PCRs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcr {
    /// `Index`.
    pub index: u32,
    /// `Digest`: the SHA-256 value.
    pub digest: Vec<u8>,
}

/// `TpmInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmInfo {
    /// `AikCert`: the AK certificate, DER (NV `0x01C101D0`).
    pub aik_cert: Vec<u8>,
    /// `AikPub`: the AK's marshalled `TPM2B_PUBLIC`.
    pub aik_pub: Vec<u8>,
    /// `PcrQuote`: the quote's `TPMS_ATTEST`.
    pub pcr_quote: Vec<u8>,
    /// `PcrSignature`: the AK's RSASSA signature over it.
    pub pcr_signature: Vec<u8>,
    /// `EncKeyPub`: the ephemeral key's marshalled `TPM2B_PUBLIC`.
    pub enc_key_pub: Vec<u8>,
    /// `EncKeyCertifyInfo`: the `TPMS_ATTEST` of `TPM2_Certify` of the ephemeral key by the AK.
    pub enc_key_certify_info: Vec<u8>,
    /// `EncKeyCertifyInfoSignature`: the AK's RSASSA signature over it.
    pub enc_key_certify_info_signature: Vec<u8>,
    /// `PcrSet` and `PCRs`: the PCRs quoted, ascending.
    pub pcrs: Vec<Pcr>,
}

/// `IsolationInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Isolation {
    /// `SevSnp`.
    SevSnp {
        /// The SEV-SNP report from the HCL report.
        snp_report: Vec<u8>,
        /// `VcekCertChain`, decoded: PEM of the VCEK, ASK and ARK, as THIM serves them.
        vcek_cert_chain: String,
        /// `RunTimeData`: the HCL report's runtime data.
        runtime_data: Vec<u8>,
    },
    /// `Tdx`.
    Tdx {
        /// The TD quote.
        td_quote: Vec<u8>,
        /// `RunTimeData`: the HCL report's runtime data.
        runtime_data: Vec<u8>,
    },
}

impl Isolation {
    /// The HCL runtime data either kind carries.
    pub fn runtime_data(&self) -> &[u8] {
        match self {
            Isolation::SevSnp { runtime_data, .. } | Isolation::Tdx { runtime_data, .. } => {
                runtime_data
            }
        }
    }
}

/// What the `AttestationInfo` JSON holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationInfo {
    /// The operating system.
    pub os: OsInfo,
    /// `TcgLogs`: the TPM event log (`binary_bios_measurements`), empty when there is none.
    pub tcg_logs: Vec<u8>,
    /// `ClientPayload`: the caller's claims, name and value (MAA returns them in the token).
    pub client_payload: Vec<(String, String)>,
    /// `TpmInfo`.
    pub tpm: TpmInfo,
    /// `IsolationInfo`.
    pub isolation: Isolation,
}

// -------------------------------------------------------------------------------------------
// Wire forms
// -------------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct Body {
    #[serde(rename = "AttestationInfo")]
    attestation_info: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InfoJson {
    attestation_protocol_version: String,
    #[serde(rename = "OSType")]
    os_type: String,
    #[serde(rename = "OSDistro")]
    os_distro: String,
    #[serde(rename = "OSVersionMajor")]
    os_version_major: u32,
    #[serde(rename = "OSVersionMinor")]
    os_version_minor: u32,
    #[serde(rename = "OSBuild")]
    os_build: String,
    tcg_logs: String,
    client_payload: serde_json::Map<String, serde_json::Value>,
    tpm_info: TpmInfoJson,
    isolation_info: IsolationJson,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TpmInfoJson {
    aik_cert: String,
    aik_pub: String,
    pcr_quote: String,
    pcr_signature: String,
    enc_key_pub: String,
    enc_key_certify_info: String,
    enc_key_certify_info_signature: String,
    pcr_set: Vec<u32>,
    #[serde(rename = "PCRs")]
    pcrs: Vec<PcrJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PcrJson {
    index: u32,
    digest: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IsolationJson {
    #[serde(rename = "Type")]
    isolation_type: String,
    evidence: EvidenceJson,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EvidenceJson {
    proof: String,
    #[serde(rename = "RunTimeData")]
    run_time_data: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnpProofJson {
    snp_report: String,
    vcek_cert_chain: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptionParamsJson {
    block_mode: String,
    block_padding: String,
    cipher: String,
    key_size_in_bits: u32,
    iv: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TokenJson {
    encrypted_inner_key: String,
    encryption_params: EncryptionParamsJson,
    authentication_data: String,
    jwt: String,
}

// -------------------------------------------------------------------------------------------
// Request
// -------------------------------------------------------------------------------------------

/// The request body for `info`: `{"AttestationInfo": B64URL(JSON)}`.
pub fn request_body(info: &AttestationInfo) -> Vec<u8> {
    let (isolation_type, proof) = match &info.isolation {
        Isolation::SevSnp {
            snp_report,
            vcek_cert_chain,
            ..
        } => {
            let proof = serde_json::json!({
                "SnpReport": URL_SAFE_NO_PAD.encode(snp_report),
                "VcekCertChain": STANDARD.encode(vcek_cert_chain.as_bytes()),
            });
            ("SevSnp", STANDARD.encode(proof.to_string()))
        }
        Isolation::Tdx { td_quote, .. } => ("Tdx", STANDARD.encode(td_quote)),
    };
    let json = InfoJson {
        attestation_protocol_version: PROTOCOL_VERSION.to_owned(),
        os_type: STANDARD.encode(&info.os.os_type),
        os_distro: STANDARD.encode(&info.os.distro),
        os_version_major: info.os.version_major,
        os_version_minor: info.os.version_minor,
        os_build: STANDARD.encode(&info.os.build),
        tcg_logs: STANDARD.encode(&info.tcg_logs),
        client_payload: info
            .client_payload
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(STANDARD.encode(v))))
            .collect(),
        tpm_info: TpmInfoJson {
            aik_cert: STANDARD.encode(&info.tpm.aik_cert),
            aik_pub: STANDARD.encode(&info.tpm.aik_pub),
            pcr_quote: STANDARD.encode(&info.tpm.pcr_quote),
            pcr_signature: STANDARD.encode(&info.tpm.pcr_signature),
            enc_key_pub: STANDARD.encode(&info.tpm.enc_key_pub),
            enc_key_certify_info: STANDARD.encode(&info.tpm.enc_key_certify_info),
            enc_key_certify_info_signature: STANDARD
                .encode(&info.tpm.enc_key_certify_info_signature),
            pcr_set: info.tpm.pcrs.iter().map(|p| p.index).collect(),
            pcrs: info
                .tpm
                .pcrs
                .iter()
                .map(|p| PcrJson {
                    index: p.index,
                    digest: STANDARD.encode(&p.digest),
                })
                .collect(),
        },
        isolation_info: IsolationJson {
            isolation_type: isolation_type.to_owned(),
            evidence: EvidenceJson {
                proof,
                run_time_data: STANDARD.encode(info.isolation.runtime_data()),
            },
        },
    };
    // Plain data with string keys: serialization cannot fail.
    let inner = serde_json::to_vec(&json).unwrap_or_default();
    let body = Body {
        attestation_info: URL_SAFE_NO_PAD.encode(inner),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The `IsolationInfo` of an Azure bundle: the hardware evidence and the HCL runtime data, with
/// the VCEK chain for SEV-SNP from the bundle's endorsements.
pub fn isolation_from_bundle(bundle: &Bundle) -> Result<Isolation, ExportError> {
    let malformed = |reason: String| ExportError::Malformed {
        format: Format::Maa,
        reason,
    };
    match &bundle.evidence {
        Evidence::AzureSevSnp(e) => {
            let hcl = HclReport::parse(&e.hcl_report)
                .map_err(|err| malformed(format!("evidence.hcl_report: {err}")))?;
            let report = SnpReport::parse(hcl.hw_report())
                .map_err(|err| malformed(format!("the SEV-SNP report: {err}")))?;
            Ok(Isolation::SevSnp {
                snp_report: hcl.hw_report().to_vec(),
                vcek_cert_chain: crate::interop::maa::cert_chain_pem(bundle, &report)?,
                runtime_data: hcl.runtime_data_bytes().to_vec(),
            })
        }
        Evidence::AzureTdx(e) => {
            let hcl = HclReport::parse(&e.hcl_report)
                .map_err(|err| malformed(format!("evidence.hcl_report: {err}")))?;
            Ok(Isolation::Tdx {
                td_quote: e.tdx_quote.clone(),
                runtime_data: hcl.runtime_data_bytes().to_vec(),
            })
        }
        _ => Err(ExportError::Missing {
            format: Format::Maa,
            what: "an HCL report: the AzureGuest protocol is for Azure confidential VMs behind \
                   the paravisor"
                .to_owned(),
        }),
    }
}

fn request_error(reason: String) -> MessageError {
    MessageError::new(Verifier::Maa, WHAT_REQUEST, reason)
}

fn answer_error(reason: String) -> MessageError {
    MessageError::new(Verifier::Maa, WHAT_ANSWER, reason)
}

fn b64(field: &str, s: &str, err: fn(String) -> MessageError) -> Result<Vec<u8>, MessageError> {
    STANDARD_LENIENT
        .decode(s.trim())
        .map_err(|e| err(format!("`{field}` is not base64: {e}")))
}

fn from_json<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    what: &str,
    err: fn(String) -> MessageError,
) -> Result<T, MessageError> {
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(err(format!(
            "{what} is {} bytes, more than the {MAX_ANSWER_BYTES} accepted",
            bytes.len()
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| err(format!("{what}: {e}")))
}

/// Reads a request body back into [`AttestationInfo`] (the emulator's side), bounded by
/// [`MAX_ANSWER_BYTES`] at each level.
pub fn parse_request(body: &[u8]) -> Result<AttestationInfo, MessageError> {
    let e = request_error;
    let outer: Body = from_json(body, "the body", e)?;
    let inner = URL_LENIENT
        .decode(outer.attestation_info.trim())
        .map_err(|err| e(format!("`AttestationInfo` is not base64url: {err}")))?;
    let json: InfoJson = from_json(&inner, "AttestationInfo", e)?;
    if json.attestation_protocol_version != PROTOCOL_VERSION {
        return Err(e(format!(
            "AttestationProtocolVersion {:?}, not {PROTOCOL_VERSION:?}",
            json.attestation_protocol_version
        )));
    }
    let text = |field: &str, s: &str| -> Result<String, MessageError> {
        String::from_utf8(b64(field, s, e)?).map_err(|_| e(format!("`{field}` is not UTF-8")))
    };
    let mut client_payload = Vec::new();
    for (k, v) in &json.client_payload {
        let serde_json::Value::String(v) = v else {
            return Err(e(format!("ClientPayload `{k}` is not a string")));
        };
        client_payload.push((k.clone(), text("ClientPayload", v)?));
    }
    let t = &json.tpm_info;
    if t.pcr_set != t.pcrs.iter().map(|p| p.index).collect::<Vec<_>>() {
        return Err(e("`PcrSet` does not list the indices of `PCRs`".to_owned()));
    }
    let mut pcrs = Vec::with_capacity(t.pcrs.len());
    for p in &t.pcrs {
        pcrs.push(Pcr {
            index: p.index,
            digest: b64("PCRs.Digest", &p.digest, e)?,
        });
    }
    let tpm = TpmInfo {
        aik_cert: b64("AikCert", &t.aik_cert, e)?,
        aik_pub: b64("AikPub", &t.aik_pub, e)?,
        pcr_quote: b64("PcrQuote", &t.pcr_quote, e)?,
        pcr_signature: b64("PcrSignature", &t.pcr_signature, e)?,
        enc_key_pub: b64("EncKeyPub", &t.enc_key_pub, e)?,
        enc_key_certify_info: b64("EncKeyCertifyInfo", &t.enc_key_certify_info, e)?,
        enc_key_certify_info_signature: b64(
            "EncKeyCertifyInfoSignature",
            &t.enc_key_certify_info_signature,
            e,
        )?,
        pcrs,
    };
    let evidence = &json.isolation_info.evidence;
    let runtime_data = b64("RunTimeData", &evidence.run_time_data, e)?;
    let isolation = match json.isolation_info.isolation_type.as_str() {
        "SevSnp" => {
            let proof = b64("Proof", &evidence.proof, e)?;
            let proof: SnpProofJson = from_json(&proof, "Proof", e)?;
            Isolation::SevSnp {
                snp_report: URL_LENIENT
                    .decode(proof.snp_report.trim())
                    .map_err(|err| e(format!("`SnpReport` is not base64url: {err}")))?,
                vcek_cert_chain: text("VcekCertChain", &proof.vcek_cert_chain)?,
                runtime_data,
            }
        }
        "Tdx" => Isolation::Tdx {
            td_quote: b64("Proof", &evidence.proof, e)?,
            runtime_data,
        },
        other => return Err(e(format!("isolation type {other:?} is not SevSnp or Tdx"))),
    };
    Ok(AttestationInfo {
        os: OsInfo {
            os_type: text("OSType", &json.os_type)?,
            distro: text("OSDistro", &json.os_distro)?,
            version_major: json.os_version_major,
            version_minor: json.os_version_minor,
            build: text("OSBuild", &json.os_build)?,
        },
        tcg_logs: b64("TcgLogs", &json.tcg_logs, e)?,
        client_payload,
        tpm,
        isolation,
    })
}

// -------------------------------------------------------------------------------------------
// Answer
// -------------------------------------------------------------------------------------------

/// The token of an `AzureGuest` answer, still encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedToken {
    /// `EncryptedInnerKey`: the AES key, RSAES-PKCS1-v1_5 encrypted to `EncKeyPub`.
    pub encrypted_inner_key: Vec<u8>,
    /// `EncryptionParams.KeySizeInBits`.
    pub key_size_bits: u32,
    /// `EncryptionParams.Iv`: the GCM nonce.
    pub iv: Vec<u8>,
    /// `AuthenticationData`: the GCM tag.
    pub authentication_data: Vec<u8>,
    /// `Jwt`: the JWT, encrypted (without the tag).
    pub jwt: Vec<u8>,
}

/// The answer body for `token` (the emulator's side): `{"token": B64URL(JSON)}`.
pub fn answer_body(token: &EncryptedToken) -> Vec<u8> {
    let json = TokenJson {
        encrypted_inner_key: STANDARD.encode(&token.encrypted_inner_key),
        encryption_params: EncryptionParamsJson {
            block_mode: BLOCK_MODE.to_owned(),
            block_padding: BLOCK_PADDING.to_owned(),
            cipher: CIPHER.to_owned(),
            key_size_in_bits: token.key_size_bits,
            iv: STANDARD.encode(&token.iv),
        },
        authentication_data: STANDARD.encode(&token.authentication_data),
        jwt: STANDARD.encode(&token.jwt),
    };
    // Plain data with string keys: serialization cannot fail.
    let inner = serde_json::to_vec(&json).unwrap_or_default();
    serde_json::json!({ "token": URL_SAFE_NO_PAD.encode(inner) })
        .to_string()
        .into_bytes()
}

/// Reads an `AzureGuest` answer: `{"token": B64URL(JSON)}` with the parameters CGA decrypts
/// (AES-GCM, `PKCS7` named as CGA requires it although GCM pads nothing).
pub fn parse_answer(body: &[u8]) -> Result<EncryptedToken, MessageError> {
    let e = answer_error;
    let map = super::json_object(Verifier::Maa, WHAT_ANSWER, body)?;
    let token = super::string_member(Verifier::Maa, WHAT_ANSWER, &map, "token")?;
    let inner = URL_LENIENT
        .decode(token.trim())
        .map_err(|err| e(format!("`token` is not base64url: {err}")))?;
    let json: TokenJson = from_json(&inner, "the token", e)?;
    let p = &json.encryption_params;
    if p.block_mode != BLOCK_MODE || p.block_padding != BLOCK_PADDING || p.cipher != CIPHER {
        return Err(e(format!(
            "encryption {}/{}/{} is not {CIPHER}/{BLOCK_MODE}/{BLOCK_PADDING}",
            p.cipher, p.block_mode, p.block_padding
        )));
    }
    Ok(EncryptedToken {
        encrypted_inner_key: b64("EncryptedInnerKey", &json.encrypted_inner_key, e)?,
        key_size_bits: p.key_size_in_bits,
        iv: b64("Iv", &p.iv, e)?,
        authentication_data: b64("AuthenticationData", &json.authentication_data, e)?,
        jwt: b64("Jwt", &json.jwt, e)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(isolation: Isolation) -> AttestationInfo {
        AttestationInfo {
            os: OsInfo {
                os_type: "Linux".into(),
                distro: "Ubuntu".into(),
                version_major: 22,
                version_minor: 4,
                build: OS_BUILD_LINUX.into(),
            },
            tcg_logs: vec![1, 2, 3],
            client_payload: vec![("nonce".into(), "abcd".into())],
            tpm: TpmInfo {
                aik_cert: vec![0x30, 0],
                aik_pub: vec![0, 1, 9],
                pcr_quote: vec![0xff, 0x54],
                pcr_signature: vec![7; 256],
                enc_key_pub: vec![0, 2, 8, 8],
                enc_key_certify_info: vec![0xff, 0x54, 0x43],
                enc_key_certify_info_signature: vec![6; 256],
                pcrs: (0..8)
                    .map(|i| Pcr {
                        index: i,
                        digest: vec![i as u8; 32],
                    })
                    .collect(),
            },
            isolation,
        }
    }

    #[test]
    fn requests_round_trip_in_cga_encodings() {
        for isolation in [
            Isolation::SevSnp {
                snp_report: vec![0xfb; 1184],
                vcek_cert_chain: "-----BEGIN CERTIFICATE-----\n".into(),
                runtime_data: br#"{"keys":[]}"#.to_vec(),
            },
            Isolation::Tdx {
                td_quote: vec![4, 0, 2, 0],
                runtime_data: b"{}".to_vec(),
            },
        ] {
            let info = info(isolation);
            let body = request_body(&info);
            assert_eq!(parse_request(&body).unwrap(), info);
            let outer: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let encoded = outer["AttestationInfo"].as_str().unwrap();
            assert!(!encoded.contains('=') && !encoded.contains('+'));
            let inner: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap();
            assert_eq!(inner["AttestationProtocolVersion"], "2.0");
            assert_eq!(inner["OSType"], "TGludXg=");
            assert_eq!(inner["OSVersionMajor"], 22);
            assert_eq!(inner["ClientPayload"]["nonce"], "YWJjZA==");
            assert_eq!(inner["TpmInfo"]["PcrSet"][7], 7);
            assert_eq!(inner["TpmInfo"]["PCRs"][1]["Index"], 1);
        }
    }

    #[test]
    fn malformed_requests_are_refused() {
        let mut bad = info(Isolation::Tdx {
            td_quote: vec![1],
            runtime_data: vec![],
        });
        bad.tpm.pcrs.clear();
        let body = request_body(&bad);
        assert!(parse_request(&body).is_ok());
        assert!(parse_request(b"{}").is_err());
        assert!(parse_request(br#"{"AttestationInfo":"!!"}"#).is_err());
        let not_json = serde_json::json!({"AttestationInfo": URL_SAFE_NO_PAD.encode("x")});
        assert!(parse_request(not_json.to_string().as_bytes()).is_err());
    }

    #[test]
    fn answers_round_trip_and_refuse_other_ciphers() {
        let token = EncryptedToken {
            encrypted_inner_key: vec![1; 256],
            key_size_bits: 256,
            iv: vec![2; 12],
            authentication_data: vec![3; 16],
            jwt: b"ciphertext".to_vec(),
        };
        let body = answer_body(&token);
        assert_eq!(parse_answer(&body).unwrap(), token);
        let other = serde_json::json!({
            "EncryptedInnerKey": "AQ==",
            "EncryptionParams": {"BlockMode": "ChainingModeCBC", "BlockPadding": "PKCS7",
                                 "Cipher": "AES", "KeySizeInBits": 256, "Iv": "AA=="},
            "AuthenticationData": "AA==", "Jwt": "AA=="
        });
        let body = serde_json::json!({"token": URL_SAFE_NO_PAD.encode(other.to_string())});
        let err = parse_answer(body.to_string().as_bytes()).unwrap_err();
        assert!(err.reason.contains("ChainingModeCBC"), "{err}");
        assert!(parse_answer(br#"{"token": 5}"#).is_err());
    }
}
