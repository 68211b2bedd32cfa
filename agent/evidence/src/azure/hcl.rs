// SPDX-License-Identifier: Apache-2.0
//! The HCL report: what Azure's paravisor stores at vTPM NV index `0x01400001`. It is the IGVM
//! attestation request the paravisor sent to the host for the vTPM's AK certificate
//! (`IgvmAttestRequestBase` with request version 1), kept for the guest to read. All integers are
//! little-endian; offsets in hex:
//!
//! - `0x000`, 32 bytes: header: `signature` `"HCLA"`, `version`, `report_size`, `request_type`,
//!   `status`, 3 reserved `u32`;
//! - `0x020`, 1184 bytes: hardware report slot: the SEV-SNP `ATTESTATION_REPORT` (1184 bytes) or
//!   the TDX `TDREPORT_STRUCT` (its first 1024 bytes, the rest zero);
//! - `0x4c0`, 20 bytes: IGVM request data: `data_size`, `version`, `report_type` (2 SNP, 4 TDX;
//!   1 VBS and 3 TVM carry no hardware report thimble checks), `report_data_hash_type` (1 SHA-256, 2 SHA-384,
//!   3 SHA-512), `variable_data_size`;
//! - `0x4d4`, `variable_data_size` bytes: the runtime data, UTF-8 JSON (request version 2 puts a
//!   4-byte capability bitmap first);
//! - zero padding to the NV index size (2600 bytes in every vector).
//!
//! Sources: microsoft/openvmm `openhcl/openhcl_attestation_protocol/src/igvm_attest/get.rs`
//! (`IgvmAttestRequestHeader`, `IgvmAttestRequestData`, `IgvmAttestReportType`,
//! `IgvmAttestHashType`, `runtime_claims`) and its vTPM copy for NV `0x01400001` ("based on …
//! with IgvmAttestRequestVersion as VERSION_1"); kinvolk/azure-cvm-tooling
//! `az-cvm-vtpm/src/hcl/mod.rs` (the same header, the hardware report slot sized for the larger
//! SNP report, `HCLAkPub`). Checked against every vector in `tests/vectors/azure`: header version
//! 1 (SNP) or 2 (TDX), `request_type` 2 (AK certificate request), `report_size` = 32 + 1184 + 20 +
//! `variable_data_size`, request data version 1, hash type SHA-256.
//!
//! Only the hardware report is signed, and the only part of the rest it vouches for is the
//! runtime data, through REPORT_DATA = hash(runtime data) ‖ zeros. So the header and request data
//! are framing: they are parsed to find the parts and checked only where a wrong value would make
//! the parse ambiguous; reserved words and padding are kept but not required to be zero (nothing
//! signs them, and rejecting them would refuse real evidence for no gain). The runtime data is kept
//! byte for byte, because the binding is a hash of exactly those bytes, and parsed separately
//! ([`HclReport::runtime_data`]) so that a verifier can check the binding first.

use std::ops::Range;

use crate::digest::{Sha256, Sha384, Sha512};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, Serializer};
use thiserror::Error;

use crate::snp::report::SNP_REPORT_LEN;
use crate::snp::{ReportError, SnpReport};
use crate::tdx::td_report::TD_REPORT_LEN;
use crate::tdx::{TdReport, TdReportError};

/// The largest HCL report parsed: the NV index holding it is 2600 bytes on Azure; the runtime
/// data JSON is parsed from it, so its size is bounded.
pub const MAX_HCL_REPORT_LEN: usize = 64 << 10;

/// `"HCLA"` (openvmm `ATTESTATION_SIGNATURE` 0x414c4348, little-endian).
pub const HCL_SIGNATURE: [u8; 4] = *b"HCLA";
/// Size of the header.
pub const HCL_HEADER_LEN: usize = 0x20;
/// Where the hardware report starts.
pub const HW_REPORT_OFFSET: usize = 0x20;
/// The hardware report slot is sized for the largest report, the SNP one.
pub const HW_REPORT_SLOT_LEN: usize = SNP_REPORT_LEN;
/// Where the IGVM request data starts.
pub const REQUEST_DATA_OFFSET: usize = HW_REPORT_OFFSET + HW_REPORT_SLOT_LEN;
/// Size of the IGVM request data (five `u32`).
pub const REQUEST_DATA_LEN: usize = 20;
/// Size of `IgvmAttestRequestDataExt`, present from request version 2.
pub const REQUEST_DATA_EXT_LEN: usize = 4;
/// Where the runtime data starts with request version 1 (0x4d4).
pub const RUNTIME_DATA_OFFSET: usize = REQUEST_DATA_OFFSET + REQUEST_DATA_LEN;
/// The `kid` of the vTPM attestation key in the runtime data.
pub const AK_PUB_KID: &str = "HCLAkPub";
/// The `kid` of the vTPM endorsement key in the runtime data.
pub const EK_PUB_KID: &str = "HCLEkPub";

/// Why an HCL report could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HclError {
    /// The input is larger than [`MAX_HCL_REPORT_LEN`]; nothing was parsed.
    #[error("HCL report is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Its length.
        len: usize,
        /// [`MAX_HCL_REPORT_LEN`].
        max: usize,
    },
    /// A part runs past the end of the input.
    #[error("HCL report is truncated: {what} needs bytes {start}..{end} but there are {len}")]
    Truncated {
        /// The part.
        what: &'static str,
        /// Where it starts.
        start: usize,
        /// Where it would end.
        end: usize,
        /// Length of the input.
        len: usize,
    },
    /// The header does not start with [`HCL_SIGNATURE`].
    #[error("HCL report signature is {found:02x?}, expected \"HCLA\"")]
    Signature {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// `report_type` is not SNP (2) or TDX (4).
    #[error("HCL report type {value} is not supported (2 = SEV-SNP, 4 = TDX; 1 = VBS, 3 = TVM)")]
    ReportType {
        /// As read.
        value: u32,
    },
    /// `report_data_hash_type` is not 1, 2 or 3.
    #[error(
        "HCL report data hash type {value} is not supported (1 = SHA-256, 2 = SHA-384, 3 = SHA-512)"
    )]
    HashType {
        /// As read.
        value: u32,
    },
    /// The request data `version` is not 1 or 2.
    #[error("IGVM request data version {version} is not supported (1 or 2)")]
    RequestVersion {
        /// As read.
        version: u32,
    },
    /// `data_size` is not the request data's size (with the version 2 extension) plus
    /// `variable_data_size`.
    #[error(
        "IGVM request data size {data_size} does not fit request version {version} with {variable_data_size} bytes of runtime data"
    )]
    DataSize {
        /// As read.
        data_size: u32,
        /// As read.
        version: u32,
        /// As read.
        variable_data_size: u32,
    },
}

/// Why the runtime data JSON is not what the paravisor writes.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuntimeDataError {
    /// Not JSON, or a member of the wrong type (or given twice).
    #[error("runtime data is not JSON of the expected shape: {reason}")]
    Json {
        /// The JSON parser's message.
        reason: String,
    },
    /// An RSA key's `n` or `e` is not base64url.
    #[error("runtime data key {kid:?}: {field} is not base64url")]
    Base64 {
        /// The key's `kid` (empty when it has none).
        kid: String,
        /// `n` or `e`.
        field: &'static str,
    },
    /// `user-data` is not hex.
    #[error("runtime data user-data is not hex")]
    UserDataHex,
    /// No key has the `kid` asked for.
    #[error("runtime data has no {kid} key")]
    MissingKey {
        /// The `kid` asked for.
        kid: &'static str,
    },
    /// Several keys have the `kid` asked for.
    #[error("runtime data has more than one {kid} key")]
    DuplicateKey {
        /// The `kid` asked for.
        kid: &'static str,
    },
    /// The key with the `kid` asked for is not `kty` `RSA` with both `n` and `e`.
    #[error("runtime data key {kid} is not an RSA key with n and e")]
    NotRsa {
        /// The `kid` asked for.
        kid: &'static str,
    },
}

/// The hardware report inside (IGVM `report_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HclReportType {
    /// `SNP_VM_REPORT` (2): an SEV-SNP `ATTESTATION_REPORT`.
    Snp,
    /// `TDX_VM_REPORT` (4): a TDX `TDREPORT_STRUCT`, which needs a quote to be verified.
    Tdx,
}

impl HclReportType {
    fn from_u32(value: u32) -> Result<HclReportType, HclError> {
        match value {
            2 => Ok(HclReportType::Snp),
            4 => Ok(HclReportType::Tdx),
            _ => Err(HclError::ReportType { value }),
        }
    }

    /// Size of the hardware report of this type.
    pub fn report_len(self) -> usize {
        match self {
            HclReportType::Snp => SNP_REPORT_LEN,
            HclReportType::Tdx => TD_REPORT_LEN,
        }
    }
}

/// How REPORT_DATA is derived from the runtime data (IGVM `report_data_hash_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashType {
    /// 1: SHA-256 (the only one seen on Azure).
    Sha256,
    /// 2: SHA-384.
    Sha384,
    /// 3: SHA-512.
    Sha512,
}

impl HashType {
    fn from_u32(value: u32) -> Result<HashType, HclError> {
        match value {
            1 => Ok(HashType::Sha256),
            2 => Ok(HashType::Sha384),
            3 => Ok(HashType::Sha512),
            _ => Err(HclError::HashType { value }),
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashType::Sha256 => Sha256::digest(data).to_vec(),
            HashType::Sha384 => Sha384::digest(data).to_vec(),
            HashType::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// The header (`IgvmAttestRequestHeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HclHeader {
    /// Header version: 1 on the SEV-SNP vectors, 2 on the TDX one.
    pub version: u32,
    /// Bytes of the request that are in use, from the start of the header.
    pub report_size: u32,
    /// 2 (`AK_CERT_REQUEST`) in every vector.
    pub request_type: u32,
    /// Status word of the request (not interpreted).
    pub status: u32,
    /// Reserved words, kept and not required to be zero.
    pub reserved: [u32; 3],
}

/// The IGVM request data (`IgvmAttestRequestData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IgvmRequestData {
    /// Bytes of the request data, itself included, up to the end of the runtime data.
    pub data_size: u32,
    /// Request data version: 1, or 2 with a 4-byte capability bitmap before the runtime data.
    pub version: u32,
    /// The hardware report in the report slot.
    pub report_type: HclReportType,
    /// The hash of the runtime data that REPORT_DATA holds.
    pub report_data_hash_type: HashType,
    /// Size of the runtime data in bytes.
    pub variable_data_size: u32,
}

/// A parsed HCL report. The header and request data are decoded; the hardware report and the
/// runtime data are ranges of the bytes received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HclReport {
    raw: Vec<u8>,
    /// The header, decoded.
    pub header: HclHeader,
    /// The IGVM request data, decoded.
    pub request_data: IgvmRequestData,
    /// Where the hardware report is in the bytes received (the start of the slot, as long as
    /// the report type's report).
    pub hw_report_range: Range<usize>,
    /// Where the runtime data is in the bytes received.
    pub runtime_data_range: Range<usize>,
}

fn slice<'a>(b: &'a [u8], what: &'static str, r: Range<usize>) -> Result<&'a [u8], HclError> {
    b.get(r.clone()).ok_or(HclError::Truncated {
        what,
        start: r.start,
        end: r.end,
        len: b.len(),
    })
}

fn u32_at(b: &[u8], what: &'static str, off: usize) -> Result<u32, HclError> {
    let s = slice(b, what, off..off + 4)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Ok(u32::from_le_bytes(a))
}

impl HclReport {
    /// Parses the contents of NV index `0x01400001`: the header, the hardware report's place and
    /// the runtime data's. Never parses the runtime data JSON (see [`HclReport::runtime_data`]).
    pub fn parse(bytes: &[u8]) -> Result<HclReport, HclError> {
        if bytes.len() > MAX_HCL_REPORT_LEN {
            return Err(HclError::TooLarge {
                len: bytes.len(),
                max: MAX_HCL_REPORT_LEN,
            });
        }
        let sig = slice(bytes, "header", 0..HCL_HEADER_LEN)?;
        let found = [sig[0], sig[1], sig[2], sig[3]];
        if found != HCL_SIGNATURE {
            return Err(HclError::Signature { found });
        }
        let header = HclHeader {
            version: u32_at(bytes, "header", 0x04)?,
            report_size: u32_at(bytes, "header", 0x08)?,
            request_type: u32_at(bytes, "header", 0x0c)?,
            status: u32_at(bytes, "header", 0x10)?,
            reserved: [
                u32_at(bytes, "header", 0x14)?,
                u32_at(bytes, "header", 0x18)?,
                u32_at(bytes, "header", 0x1c)?,
            ],
        };
        slice(
            bytes,
            "hardware report",
            HW_REPORT_OFFSET..REQUEST_DATA_OFFSET,
        )?;
        let rd = |off: usize| u32_at(bytes, "IGVM request data", REQUEST_DATA_OFFSET + off);
        let data_size = rd(0x00)?;
        let version = rd(0x04)?;
        let report_type = HclReportType::from_u32(rd(0x08)?)?;
        let report_data_hash_type = HashType::from_u32(rd(0x0c)?)?;
        let variable_data_size = rd(0x10)?;
        let ext_len = match version {
            1 => 0,
            2 => REQUEST_DATA_EXT_LEN,
            _ => return Err(HclError::RequestVersion { version }),
        };
        // data_size covers the request data, the extension and the runtime data; it is the one
        // place the framing states the extension's presence, so it must agree.
        let expected = (REQUEST_DATA_LEN + ext_len) as u64 + u64::from(variable_data_size);
        if u64::from(data_size) != expected {
            return Err(HclError::DataSize {
                data_size,
                version,
                variable_data_size,
            });
        }
        let start = RUNTIME_DATA_OFFSET + ext_len;
        let end = start.saturating_add(variable_data_size as usize);
        slice(bytes, "runtime data", start..end)?;
        Ok(HclReport {
            raw: bytes.to_vec(),
            header,
            request_data: IgvmRequestData {
                data_size,
                version,
                report_type,
                report_data_hash_type,
                variable_data_size,
            },
            hw_report_range: HW_REPORT_OFFSET..HW_REPORT_OFFSET + report_type.report_len(),
            runtime_data_range: start..end,
        })
    }

    /// The exact bytes received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The hardware report's type (from the request data).
    pub fn report_type(&self) -> HclReportType {
        self.request_data.report_type
    }

    /// The hardware report: 1184 bytes (SNP) or 1024 bytes (TDX), as received.
    pub fn hw_report(&self) -> &[u8] {
        &self.raw[self.hw_report_range.clone()]
    }

    /// The runtime data as received: the bytes REPORT_DATA binds.
    pub fn runtime_data_bytes(&self) -> &[u8] {
        &self.raw[self.runtime_data_range.clone()]
    }

    /// The digest of the runtime data under the report's hash type.
    pub fn runtime_data_digest(&self) -> Vec<u8> {
        self.request_data
            .report_data_hash_type
            .digest(self.runtime_data_bytes())
    }

    /// The REPORT_DATA the hardware report must carry: the runtime data digest, zero-padded.
    pub fn expected_report_data(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        let d = self.runtime_data_digest();
        // Every hash type's digest is at most 64 bytes (SHA-512).
        out[..d.len()].copy_from_slice(&d);
        out
    }

    /// The runtime data JSON, parsed.
    pub fn runtime_data(&self) -> Result<RuntimeData, RuntimeDataError> {
        RuntimeData::parse(self.runtime_data_bytes())
    }

    /// The SEV-SNP report, for an SNP HCL report.
    pub fn snp_report(&self) -> Option<Result<SnpReport, ReportError>> {
        (self.report_type() == HclReportType::Snp).then(|| SnpReport::parse(self.hw_report()))
    }

    /// The TD report, for a TDX HCL report.
    pub fn td_report(&self) -> Option<Result<TdReport, TdReportError>> {
        (self.report_type() == HclReportType::Tdx).then(|| TdReport::parse(self.hw_report()))
    }
}

/// An RSA public key from a JWK: big-endian modulus and exponent as the JWK encodes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    /// The modulus, big-endian, as the JWK gives it (leading zeros kept).
    pub n: Vec<u8>,
    /// The public exponent, big-endian.
    pub e: Vec<u8>,
}

impl RsaPublicKey {
    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        let n = strip_leading_zeros(&self.n);
        n.first()
            .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize)
    }
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[i..]
}

/// One key of the runtime data `keys` array (RFC 7517 JWK; RSA members per RFC 7518 §6.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    /// Key ID, e.g. [`AK_PUB_KID`] or [`EK_PUB_KID`].
    pub kid: Option<String>,
    /// Key type, `RSA` for the vTPM keys.
    pub kty: String,
    /// Permitted operations (`sign`, `encrypt`), as given; not enforced.
    pub key_ops: Vec<String>,
    /// `n` and `e`, when the key is an RSA key that has both.
    pub rsa: Option<RsaPublicKey>,
}

impl Serialize for Jwk {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Jwk", 5)?;
        st.serialize_field("kid", &self.kid)?;
        st.serialize_field("kty", &self.kty)?;
        st.serialize_field("key_ops", &self.key_ops)?;
        st.serialize_field(
            "n",
            &self.rsa.as_ref().map(|k| URL_SAFE_NO_PAD.encode(&k.n)),
        )?;
        st.serialize_field(
            "e",
            &self.rsa.as_ref().map(|k| URL_SAFE_NO_PAD.encode(&k.e)),
        )?;
        st.end()
    }
}

/// `vm-configuration` (openvmm `AttestationVmConfig`). Every member is optional here: older
/// paravisors write fewer of them (the SNP vectors have four, the TDX one six).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct VmConfiguration {
    /// `current-time`: a time stamp the paravisor writes (not interpreted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_time: Option<i64>,
    /// Base64url hash of the provisioning certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cert_thumbprint: Option<String>,
    /// `console-enabled`: the serial console is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_enabled: Option<bool>,
    /// `interactive-console-enabled`: the interactive serial console is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive_console_enabled: Option<bool>,
    /// `secure-boot`: UEFI Secure Boot is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_boot: Option<bool>,
    /// `tpm-enabled`: the vTPM is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm_enabled: Option<bool>,
    /// `tpm-persisted`: the vTPM's state is persisted across boots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm_persisted: Option<bool>,
    /// `filtered-vpci-devices-allowed`: vPCI devices that pass the device filter may be
    /// assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtered_vpci_devices_allowed: Option<bool>,
    /// `vmUniqueId`: the VM's unique ID in Azure.
    #[serde(
        rename = "vmUniqueId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub vm_unique_id: Option<String>,
}

/// The runtime data JSON (openvmm `RuntimeClaims`): the vTPM keys, the VM configuration and the
/// user data. Member names are Azure's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeData {
    #[serde(skip)]
    raw: Vec<u8>,
    /// `keys`: the vTPM keys (`HCLAkPub`, `HCLEkPub`), as JWKs.
    pub keys: Vec<Jwk>,
    /// `vm-configuration`, when present.
    #[serde(rename = "vm-configuration", skip_serializing_if = "Option::is_none")]
    pub vm_configuration: Option<VmConfiguration>,
    /// `user-data`, hex in the JSON: the 64 bytes a guest wrote to NV `0x01400002` before the
    /// report was made (zeros for the boot-time report).
    #[serde(
        rename = "user-data",
        serialize_with = "hex_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_data: Option<Vec<u8>>,
}

fn hex_opt<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

#[derive(Deserialize)]
struct RawJwk {
    #[serde(default)]
    kid: Option<String>,
    kty: String,
    #[serde(default)]
    key_ops: Vec<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

// Unknown members are ignored: the paravisor adds members over time. Duplicate members are
// refused by serde, so a second `keys` cannot shadow the first.
#[derive(Deserialize)]
struct RawRuntimeData {
    #[serde(default)]
    keys: Vec<RawJwk>,
    #[serde(rename = "vm-configuration", default)]
    vm_configuration: Option<VmConfiguration>,
    #[serde(rename = "user-data", default)]
    user_data: Option<String>,
}

fn b64url(s: &str, kid: &str, field: &'static str) -> Result<Vec<u8>, RuntimeDataError> {
    // RFC 7515 §2: base64url without padding; a padded value is tolerated.
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| RuntimeDataError::Base64 {
            kid: kid.to_string(),
            field,
        })
}

impl RuntimeData {
    /// Parses the runtime data JSON.
    pub fn parse(bytes: &[u8]) -> Result<RuntimeData, RuntimeDataError> {
        let raw: RawRuntimeData =
            serde_json::from_slice(bytes).map_err(|e| RuntimeDataError::Json {
                reason: e.to_string(),
            })?;
        let keys = raw
            .keys
            .into_iter()
            .map(|k| {
                let kid = k.kid.clone().unwrap_or_default();
                let rsa = match (&k.n, &k.e) {
                    (Some(n), Some(e)) if k.kty == "RSA" => Some(RsaPublicKey {
                        n: b64url(n, &kid, "n")?,
                        e: b64url(e, &kid, "e")?,
                    }),
                    _ => None,
                };
                Ok(Jwk {
                    kid: k.kid,
                    kty: k.kty,
                    key_ops: k.key_ops,
                    rsa,
                })
            })
            .collect::<Result<Vec<_>, RuntimeDataError>>()?;
        // Azure writes the hex in upper case; both cases are accepted.
        let user_data = raw
            .user_data
            .map(|h| hex::decode(h).map_err(|_| RuntimeDataError::UserDataHex))
            .transpose()?;
        Ok(RuntimeData {
            raw: bytes.to_vec(),
            keys,
            vm_configuration: raw.vm_configuration,
            user_data,
        })
    }

    /// The exact bytes received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    fn rsa_key(&self, kid: &'static str) -> Result<&RsaPublicKey, RuntimeDataError> {
        let mut found = self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid));
        let key = found.next().ok_or(RuntimeDataError::MissingKey { kid })?;
        // Two keys with one kid would leave the choice of key to whoever wrote the JSON.
        if found.next().is_some() {
            return Err(RuntimeDataError::DuplicateKey { kid });
        }
        key.rsa.as_ref().ok_or(RuntimeDataError::NotRsa { kid })
    }

    /// The vTPM attestation key (`HCLAkPub`), which signs TPM quotes.
    pub fn ak_pub(&self) -> Result<&RsaPublicKey, RuntimeDataError> {
        self.rsa_key(AK_PUB_KID)
    }

    /// The vTPM endorsement key (`HCLEkPub`).
    pub fn ek_pub(&self) -> Result<&RsaPublicKey, RuntimeDataError> {
        self.rsa_key(EK_PUB_KID)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNP_V2: &[u8] =
        include_bytes!("../../../../tests/vectors/azure/snp-hcl-milan-v2/hcl_report.bin");
    const SNP_V3_V2: &[u8] =
        include_bytes!("../../../../tests/vectors/azure/snp-hcl-milan-v3-v2/hcl_report.bin");
    const TDX: &[u8] =
        include_bytes!("../../../../tests/vectors/azure/tdx-hcl-v4-outofdate/hcl_report.bin");

    fn put(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// A minimal report: SNP slot of zeros and `runtime` as the runtime data.
    fn synthetic(runtime: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; RUNTIME_DATA_OFFSET];
        b[..4].copy_from_slice(b"HCLA");
        put(&mut b, 4, 1);
        put(&mut b, 8, (RUNTIME_DATA_OFFSET + runtime.len()) as u32);
        put(&mut b, 0x0c, 2);
        put(
            &mut b,
            REQUEST_DATA_OFFSET,
            (REQUEST_DATA_LEN + runtime.len()) as u32,
        );
        put(&mut b, REQUEST_DATA_OFFSET + 4, 1);
        put(&mut b, REQUEST_DATA_OFFSET + 8, 2);
        put(&mut b, REQUEST_DATA_OFFSET + 12, 1);
        put(&mut b, REQUEST_DATA_OFFSET + 16, runtime.len() as u32);
        b.extend_from_slice(runtime);
        b.resize(2600, 0);
        b
    }

    #[test]
    fn snp_vector_layout() {
        let r = HclReport::parse(SNP_V2).unwrap();
        assert_eq!(r.header.version, 1);
        assert_eq!(r.header.request_type, 2);
        assert_eq!(r.header.report_size, 2346);
        assert_eq!(r.report_type(), HclReportType::Snp);
        assert_eq!(r.request_data.report_data_hash_type, HashType::Sha256);
        assert_eq!(r.request_data.data_size, 1130);
        assert_eq!(r.hw_report_range, 0x20..0x4c0);
        assert_eq!(r.runtime_data_range, 0x4d4..0x4d4 + 1110);
        assert_eq!(r.runtime_data_range.end, r.header.report_size as usize);
        let snp = r.snp_report().unwrap().unwrap();
        assert_eq!(snp.report_data, r.expected_report_data());
        assert!(r.td_report().is_none());

        let rt = r.runtime_data().unwrap();
        assert_eq!(rt.as_bytes(), r.runtime_data_bytes());
        assert_eq!(rt.ak_pub().unwrap().bits(), 2048);
        assert_eq!(rt.ak_pub().unwrap().e, [1, 0, 1]);
        assert_eq!(rt.ek_pub().unwrap().bits(), 2048);
        let vm = rt.vm_configuration.as_ref().unwrap();
        assert_eq!(vm.secure_boot, Some(true));
        assert_eq!(vm.tpm_enabled, Some(true));
        assert_eq!(vm.console_enabled, Some(true));
        assert_eq!(
            vm.vm_unique_id.as_deref(),
            Some("911B0EF8-9DBA-48B0-B275-4E4DF2D39252")
        );
        assert_eq!(rt.user_data.as_deref(), Some(&[0u8; 64][..]));
    }

    #[test]
    fn user_data_is_decoded() {
        let r = HclReport::parse(SNP_V3_V2).unwrap();
        let u = r.runtime_data().unwrap().user_data.unwrap();
        assert_eq!(u.len(), 64);
        assert_eq!(hex::encode(&u[..4]), "982f5c6e");
        assert_eq!(u[48..], [0u8; 16]);
    }

    #[test]
    fn tdx_vector_layout() {
        let r = HclReport::parse(TDX).unwrap();
        assert_eq!(r.header.version, 2);
        assert_eq!(r.report_type(), HclReportType::Tdx);
        assert_eq!(r.hw_report().len(), 1024);
        // The rest of the slot is zero.
        assert!(TDX[0x20 + 1024..0x4c0].iter().all(|&b| b == 0));
        let td = r.td_report().unwrap().unwrap();
        assert_eq!(td.report_data, r.expected_report_data());
        assert_eq!(td.td_attributes, [0; 8]);
        let vm = r.runtime_data().unwrap().vm_configuration.unwrap();
        assert_eq!(vm.tpm_persisted, Some(false));
        assert!(vm.root_cert_thumbprint.is_some());
    }

    #[test]
    fn truncations_are_errors() {
        for len in [0, 3, 4, 31, 32, 0x4bf, 0x4c0, 0x4d3, 0x4d4, 0x4d4 + 1109] {
            assert!(
                matches!(
                    HclReport::parse(&SNP_V2[..len]),
                    Err(HclError::Truncated { .. })
                ),
                "{len}"
            );
        }
        assert!(HclReport::parse(&SNP_V2[..0x4d4 + 1110]).is_ok());
    }

    #[test]
    fn framing_errors() {
        let mut b = SNP_V2.to_vec();
        b[0] = b'X';
        assert!(matches!(
            HclReport::parse(&b),
            Err(HclError::Signature { .. })
        ));
        for (value, want) in [(1, "VBS"), (3, "TVM"), (0, "")] {
            let mut b = SNP_V2.to_vec();
            put(&mut b, REQUEST_DATA_OFFSET + 8, value);
            let e = HclReport::parse(&b).unwrap_err();
            assert_eq!(e, HclError::ReportType { value });
            assert!(e.to_string().contains(want));
        }
        let mut b = SNP_V2.to_vec();
        put(&mut b, REQUEST_DATA_OFFSET + 12, 9);
        assert_eq!(HclReport::parse(&b), Err(HclError::HashType { value: 9 }));
        let mut b = SNP_V2.to_vec();
        put(&mut b, REQUEST_DATA_OFFSET + 4, 3);
        assert_eq!(
            HclReport::parse(&b),
            Err(HclError::RequestVersion { version: 3 })
        );
        let mut b = SNP_V2.to_vec();
        put(&mut b, REQUEST_DATA_OFFSET, 1131);
        assert!(matches!(
            HclReport::parse(&b),
            Err(HclError::DataSize { .. })
        ));
        // A huge runtime data size points past the end, whatever data_size says.
        let mut b = SNP_V2.to_vec();
        put(&mut b, REQUEST_DATA_OFFSET + 16, u32::MAX - 20);
        put(&mut b, REQUEST_DATA_OFFSET, u32::MAX);
        assert!(matches!(
            HclReport::parse(&b),
            Err(HclError::Truncated { .. })
        ));
    }

    #[test]
    fn request_version_2_has_a_capability_word() {
        let json = br#"{"keys":[]}"#;
        let mut b = synthetic(&[]);
        b.truncate(RUNTIME_DATA_OFFSET);
        put(
            &mut b,
            REQUEST_DATA_OFFSET,
            (REQUEST_DATA_LEN + 4 + json.len()) as u32,
        );
        put(&mut b, REQUEST_DATA_OFFSET + 4, 2);
        put(&mut b, REQUEST_DATA_OFFSET + 16, json.len() as u32);
        b.extend_from_slice(&[7, 0, 0, 0]);
        b.extend_from_slice(json);
        let r = HclReport::parse(&b).unwrap();
        assert_eq!(r.runtime_data_bytes(), json);
    }

    #[test]
    fn hash_types_pad_report_data() {
        let mut b = synthetic(b"{}");
        for (v, len) in [(1u32, 32usize), (2, 48), (3, 64)] {
            put(&mut b, REQUEST_DATA_OFFSET + 12, v);
            let r = HclReport::parse(&b).unwrap();
            let rd = r.expected_report_data();
            assert_eq!(rd[..len], r.runtime_data_digest()[..]);
            assert!(rd[len..].iter().all(|&x| x == 0));
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u32;
        for len in [0usize, 1, 40, 0x4d4, 0x600, 2600] {
            let mut b = vec![0u8; len];
            for x in b.iter_mut() {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *x = (seed >> 24) as u8;
            }
            let _ = HclReport::parse(&b);
            if len >= 4 {
                b[..4].copy_from_slice(b"HCLA");
            }
            let _ = HclReport::parse(&b);
            let _ = RuntimeData::parse(&b);
        }
    }

    #[test]
    fn runtime_data_errors() {
        let e = |s: &str| RuntimeData::parse(s.as_bytes()).unwrap_err();
        assert!(matches!(e("not json"), RuntimeDataError::Json { .. }));
        assert!(matches!(e(r#"{"keys":{}}"#), RuntimeDataError::Json { .. }));
        assert!(matches!(
            e(r#"{"keys":[],"keys":[]}"#),
            RuntimeDataError::Json { .. }
        ));
        assert!(matches!(
            e(r#"{"keys":[{"kid":"HCLAkPub","kty":"RSA","n":"!!","e":"AQAB"}]}"#),
            RuntimeDataError::Base64 { .. }
        ));
        assert_eq!(e(r#"{"user-data":"0g"}"#), RuntimeDataError::UserDataHex);
        assert!(matches!(
            e(r#"{"vm-configuration":{"secure-boot":"yes"}}"#),
            RuntimeDataError::Json { .. }
        ));

        let ak = |s: &str| RuntimeData::parse(s.as_bytes()).unwrap().ak_pub().cloned();
        assert_eq!(
            ak(r#"{"keys":[]}"#),
            Err(RuntimeDataError::MissingKey { kid: AK_PUB_KID })
        );
        assert_eq!(
            ak(r#"{"keys":[{"kid":"HCLAkPub","kty":"EC","x":"AA"}]}"#),
            Err(RuntimeDataError::NotRsa { kid: AK_PUB_KID })
        );
        let one = r#"{"kid":"HCLAkPub","kty":"RSA","n":"AQID","e":"AQAB"}"#;
        assert_eq!(
            ak(&format!(r#"{{"keys":[{one},{one}]}}"#)),
            Err(RuntimeDataError::DuplicateKey { kid: AK_PUB_KID })
        );
        let k = ak(&format!(r#"{{"keys":[{one}],"extra":1}}"#)).unwrap();
        assert_eq!(k.n, [1, 2, 3]);
        assert_eq!(k.bits(), 17);
    }

    #[test]
    fn claims_use_azure_names() {
        let r = HclReport::parse(SNP_V2).unwrap();
        let v = serde_json::to_value(r.runtime_data().unwrap()).unwrap();
        assert_eq!(v["keys"][0]["kid"], "HCLAkPub");
        assert!(v["keys"][0]["n"].as_str().unwrap().starts_with("qR7LqAAB"));
        assert_eq!(v["vm-configuration"]["secure-boot"], true);
        assert_eq!(v["user-data"], "00".repeat(64));
    }
}
