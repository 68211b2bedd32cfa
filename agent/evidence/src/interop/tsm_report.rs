// SPDX-License-Identifier: Apache-2.0
//! The tsm-report JSON and its CMW record: how veraison/ratsd hands configfs-tsm evidence to a
//! Veraison verifier, written from a stored bundle and read back.
//!
//! The tsm-report (media type [`MEDIA_TYPE`]; defined by the CDDL and the Go token type of
//! veraison/ratsd) is one JSON object holding what configfs-tsm returned, each blob in
//! unpadded base64url:
//!
//! ```json
//! {"provider":"sev_guest","outblob":"<report>","auxblob":"<certificate table>"}
//! ```
//!
//! For SEV-SNP, `outblob` is the 1184-byte report and `auxblob` the host's certificate table;
//! Veraison's SEVSNP scheme requires the table, so when the bundle has none it is built from the
//! endorsements, as for go-sev-guest ([`super::go_sev_guest`]). For TDX (`tdx_guest`),
//! `outblob` is the quote and there is no `auxblob`. Azure bundles did not come from
//! configfs-tsm and are not written. Reading accepts padded or unpadded base64url, ignores the
//! members thimble does not keep (`manifestblob`, `service_provider`), and trims white space
//! around `provider` as ratsd does (the configfs attribute ends with a newline).
//!
//! The CMW record (RATS conceptual message wrapper, JSON form; veraison/cmw) wraps those bytes:
//! `["application/vnd.veraison.tsm-report+json", "<unpadded base64url of the JSON>", 4]`, where
//! 4 is the indicator "evidence". Reading accepts the record with or without the indicator, and
//! ratsd's collection `{"__cmwc_t": "...", "tsm-report": <record>}`.
//!
//! Veraison checks that REPORT_DATA is its session nonce, so a stored bundle passes its
//! verification only when it was collected for that nonce; the form itself binds nothing. Pure:
//! bytes in and out.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};

use crate::bundle::{Bundle, Evidence, SevSnpEvidence, TdxEvidence};
use crate::snp::SnpReport;
use crate::tdx::TdxQuote;

use super::go_sev_guest::{self, MAX_AUXBLOB_LEN};
use super::snpguest::SnpParts;
use super::{ExportError, Exported, Format, ImportError, Imported};

/// The tsm-report JSON's media type, as the CMW record names it.
pub const MEDIA_TYPE: &str = "application/vnd.veraison.tsm-report+json";
/// The CMW indicator bit "evidence" (veraison/cmw `indicator.go`).
pub const CMW_INDICATOR_EVIDENCE: u64 = 4;
/// configfs-tsm's provider name for SEV-SNP.
pub const PROVIDER_SEV_GUEST: &str = "sev_guest";
/// configfs-tsm's provider name for TDX.
pub const PROVIDER_TDX_GUEST: &str = "tdx_guest";
/// The largest `outblob` read or written: a SEV-SNP report is 1184 bytes and a TDX quote, its
/// certification data included, under 16 KiB.
pub const MAX_OUTBLOB_LEN: usize = 64 << 10;
/// The largest tsm-report JSON read: both blobs at their limits, in base64, with room to spare.
pub const MAX_TSM_REPORT_LEN: usize = 256 << 10;
/// The largest CMW record or collection read: a tsm-report at its limit, in base64, and more.
pub const MAX_CMW_LEN: usize = 384 << 10;
/// The key of a CMW collection's type (veraison/cmw).
const CMWC_TYPE_KEY: &str = "__cmwc_t";

/// base64url, written without padding and read with or without it.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The JSON object, members in the documented order (ratsd's `TSMReport` writes `auxblob`
/// first; readers do not depend on the order).
#[derive(Serialize, Deserialize)]
struct TsmReportJson {
    provider: String,
    outblob: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auxblob: Option<String>,
}

/// Writes `bundle` as the tsm-report JSON (compact, no trailing newline). SEV-SNP and TDX
/// bundles only.
pub fn export(bundle: &Bundle) -> Result<Exported, ExportError> {
    to_json(bundle, Format::TsmReport).map(Exported::File)
}

/// Reads a tsm-report JSON: `sev_guest` gives SEV-SNP evidence (the report must parse; the
/// `auxblob` must parse as a certificate table, is kept as the evidence's `auxblob`, and its
/// certificates are also returned as `auxblob[i]`), `tdx_guest` TDX evidence (the quote
/// must parse).
pub fn import(bytes: &[u8]) -> Result<Imported, ImportError> {
    from_json(bytes, Format::TsmReport)
}

/// Writes `bundle` as a CMW JSON record wrapping its tsm-report JSON, with the evidence
/// indicator.
pub fn export_cmw(bundle: &Bundle) -> Result<Exported, ExportError> {
    let json = to_json(bundle, Format::Cmw)?;
    let record = serde_json::json!([MEDIA_TYPE, B64URL.encode(json), CMW_INDICATOR_EVIDENCE]);
    Ok(Exported::File(record.to_string().into_bytes()))
}

/// Reads a CMW JSON record of a tsm-report (indicator optional; when present it must include
/// evidence), or a CMW collection holding exactly one such record.
pub fn import_cmw(bytes: &[u8]) -> Result<Imported, ImportError> {
    const FORMAT: Format = Format::Cmw;
    let error = |reason: String| ImportError {
        format: FORMAT,
        reason,
    };
    if bytes.len() > MAX_CMW_LEN {
        return Err(error(format!(
            "the record is {} bytes, more than the {MAX_CMW_LEN} read",
            bytes.len()
        )));
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| error(format!("not JSON: {e}")))?;
    let (label, record) = match &value {
        serde_json::Value::Array(record) => ("the record".to_string(), record),
        serde_json::Value::Object(members) => {
            let records: Vec<(&String, &Vec<serde_json::Value>)> = members
                .iter()
                .filter(|(k, _)| k.as_str() != CMWC_TYPE_KEY)
                .filter_map(|(k, v)| match v {
                    serde_json::Value::Array(r) if is_tsm_record(r) => Some((k, r)),
                    _ => None,
                })
                .collect();
            match records.as_slice() {
                [(key, record)] => (format!("collection member {key:?}"), *record),
                [] => {
                    return Err(error(format!(
                        "the collection holds no record of media type {MEDIA_TYPE}"
                    )));
                }
                _ => {
                    return Err(error(format!(
                        "the collection holds several records of media type {MEDIA_TYPE}"
                    )));
                }
            }
        }
        _ => {
            return Err(error(
                "not a CMW JSON record (an array) or collection (an object)".to_string(),
            ));
        }
    };
    let (media_type, value, indicator) = match record.as_slice() {
        [t, v] => (t, v, None),
        [t, v, i] => (t, v, Some(i)),
        _ => {
            return Err(error(format!(
                "{label} has {} elements, not 2 or 3",
                record.len()
            )));
        }
    };
    let Some(media_type) = media_type.as_str() else {
        return Err(error(format!("{label}: its type is not a string")));
    };
    if !media_type.eq_ignore_ascii_case(MEDIA_TYPE) {
        return Err(error(format!(
            "{label}: media type {media_type:?} is not {MEDIA_TYPE}"
        )));
    }
    if let Some(indicator) = indicator {
        match indicator.as_u64() {
            Some(ind) if ind & CMW_INDICATOR_EVIDENCE != 0 => {}
            Some(ind) => {
                return Err(error(format!(
                    "{label}: indicator {ind} does not include evidence ({CMW_INDICATOR_EVIDENCE})"
                )));
            }
            None => {
                return Err(error(format!(
                    "{label}: the indicator is not an unsigned integer"
                )));
            }
        }
    }
    let Some(value) = value.as_str() else {
        return Err(error(format!("{label}: its value is not a string")));
    };
    let json = B64URL
        .decode(value)
        .map_err(|e| error(format!("{label}: its value is not base64url: {e}")))?;
    from_json(&json, FORMAT)
}

/// Whether a CMW record's type is the tsm-report's media type.
fn is_tsm_record(record: &[serde_json::Value]) -> bool {
    record
        .first()
        .and_then(serde_json::Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case(MEDIA_TYPE))
}

fn to_json(bundle: &Bundle, format: Format) -> Result<Vec<u8>, ExportError> {
    let report = match &bundle.evidence {
        Evidence::SevSnp(_) => {
            let parts = SnpParts::from_bundle(bundle, format)?;
            let auxblob = go_sev_guest::auxblob(&parts, format)?;
            TsmReportJson {
                provider: PROVIDER_SEV_GUEST.to_string(),
                outblob: B64URL.encode(&parts.report),
                auxblob: Some(B64URL.encode(auxblob)),
            }
        }
        Evidence::Tdx(e) => {
            TdxQuote::parse(&e.quote).map_err(|err| ExportError::Malformed {
                format,
                reason: format!("evidence.tdx_quote: {err}"),
            })?;
            if e.quote.len() > MAX_OUTBLOB_LEN {
                return Err(ExportError::Malformed {
                    format,
                    reason: format!(
                        "evidence.tdx_quote is {} bytes, more than the {MAX_OUTBLOB_LEN} an \
                         outblob may hold",
                        e.quote.len()
                    ),
                });
            }
            TsmReportJson {
                provider: PROVIDER_TDX_GUEST.to_string(),
                outblob: B64URL.encode(&e.quote),
                auxblob: None,
            }
        }
        _ => {
            return Err(ExportError::NotForTee {
                format,
                tee: bundle.tee(),
            });
        }
    };
    serde_json::to_vec(&report).map_err(|e| ExportError::Malformed {
        format,
        reason: e.to_string(),
    })
}

fn from_json(bytes: &[u8], format: Format) -> Result<Imported, ImportError> {
    let error = |reason: String| ImportError { format, reason };
    if bytes.len() > MAX_TSM_REPORT_LEN {
        return Err(error(format!(
            "the tsm-report is {} bytes, more than the {MAX_TSM_REPORT_LEN} read",
            bytes.len()
        )));
    }
    let json: TsmReportJson = serde_json::from_slice(bytes)
        .map_err(|e| error(format!("not a tsm-report JSON object: {e}")))?;
    let decode = |member: &str, text: &str, max: usize| {
        let bytes = B64URL
            .decode(text)
            .map_err(|e| error(format!("{member} is not base64url: {e}")))?;
        if bytes.len() > max {
            return Err(error(format!(
                "{member} is {} bytes, more than the {max} read",
                bytes.len()
            )));
        }
        Ok(bytes)
    };
    let outblob = decode("outblob", &json.outblob, MAX_OUTBLOB_LEN)?;
    let auxblob = match &json.auxblob {
        Some(text) => Some(decode("auxblob", text, MAX_AUXBLOB_LEN)?),
        None => None,
    }
    .filter(|a| !a.is_empty());
    match json.provider.trim() {
        PROVIDER_SEV_GUEST => {
            SnpReport::parse(&outblob).map_err(|e| error(format!("outblob: {e}")))?;
            let endorsements = match &auxblob {
                Some(table) => go_sev_guest::table_endorsements(table, "auxblob", format)?,
                None => Vec::new(),
            };
            Ok(Imported {
                evidence: Evidence::SevSnp(SevSnpEvidence {
                    report: outblob,
                    auxblob,
                }),
                endorsements,
                event_logs: Vec::new(),
            })
        }
        PROVIDER_TDX_GUEST => {
            TdxQuote::parse(&outblob).map_err(|e| error(format!("outblob: {e}")))?;
            if auxblob.is_some() {
                return Err(error(
                    "auxblob is present, but tdx_guest has none and thimble would drop it"
                        .to_string(),
                ));
            }
            Ok(Imported {
                evidence: Evidence::Tdx(TdxEvidence {
                    quote: outblob,
                    td_report: None,
                }),
                endorsements: Vec::new(),
                event_logs: Vec::new(),
            })
        }
        other => Err(error(format!(
            "provider {other:?} is not {PROVIDER_SEV_GUEST} or {PROVIDER_TDX_GUEST}"
        ))),
    }
}
