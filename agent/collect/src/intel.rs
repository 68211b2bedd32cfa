// SPDX-License-Identifier: Apache-2.0
//! Intel TDX collateral: the TCB info and QE identity (PCS API v4), the PCK CRL of the quote's PCK
//! CA and the Intel SGX Root CA CRL, fetched concurrently from Azure THIM or Intel PCS, plus the
//! PCK certificate from the local THIM agent behind IMDS for quotes that carry no PCK chain.
//!
//! Three layers, from pure to I/O:
//! - URL builders and their inverse parsers (used by the emulator in `thimble-sim`), which encode
//!   docs/formats.md §4.1–4.3. THIM and PCS name the same items differently, so both shapes are
//!   built. Facts are tagged as in docs/formats.md §1: [V] read in source or a capture, [O] seen in
//!   third-party clients, [U] unverified.
//! - Configuration: thimble's own settings merged over `/etc/sgx_default_qcnl.conf` ([`qcnl`]),
//!   the file operators already maintain for Intel's quote provider library, with the winning
//!   source of each setting recorded so that a bundle can say where its endpoints came from.
//! - Fetching through [`Fetch`], so that every request gets the same per-request timeout,
//!   retries, deadline and size cap as the AMD endorsements.
//!
//! Nothing here judges the collateral: signatures, chains and validity belong to
//! `thimble-verify`. Each answer is only checked to be the item that was asked for (parseable,
//! right `id`, FMSPC or CA), so that a misrouted or truncated answer fails here, naming the item
//! and URL, rather than later as an unexplained signature error. Bodies are kept byte for byte:
//! Intel's signatures cover the exact bytes of `tcbInfo` and `enclaveIdentity`.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use thimble_evidence::cert_file::pem_certificates;
use thimble_evidence::time_fmt::format_unix;
use x509_parser::prelude::{CertificateRevocationList, FromDer, X509Certificate};

use crate::http::{Fetch, FetchError, HttpConfig, HttpResponse};

/// Azure's global collateral cache, thimble's default collateral service (docs/formats.md §4.1
/// [V]). Serving TDX items under `/tdx/` on this host is [O] (AZS `FmspcResolver`); DC uses the
/// regional host for TDX ([`regional_thim_base`]).
pub const DEFAULT_THIM_BASE: &str = "https://global.acccache.azure.net";
/// Intel PCS (docs/formats.md §4.1 [V]).
pub const DEFAULT_PCS_BASE: &str = "https://api.trustedservices.intel.com";
/// The Intel SGX Root CA CRL at its distribution point, DER. PCS v4 has no endpoint of its own
/// for it; QC fetches the CDP URL when the collateral service is PCS (docs/formats.md §4.3 [V]).
pub const DEFAULT_PCS_ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";
/// Path of [`DEFAULT_PCS_ROOT_CA_CRL_URL`], recognised by [`parse_collateral_target`].
pub const PCS_ROOT_CA_CRL_PATH: &str = "/IntelSGXRootCA.der";
/// IMDS base address (docs/formats.md §2 [V]).
pub const DEFAULT_IMDS_BASE: &str = crate::endorse::DEFAULT_IMDS_BASE;
/// `clientid` THIM collateral URLs carry (DC default, docs/formats.md §4.3 [V]).
pub const THIM_CLIENT_ID: &str = "production_client";
/// `api-version` of THIM TCB info and QE identity URLs (DC, docs/formats.md §4.3 [V]).
pub const THIM_COLLATERAL_API_VERSION: &str = "2018-10-01-preview";
/// `api-version` of the local THIM `pckcert` request (DC, QC Azure conf, docs/formats.md §4.2 [V]).
pub const THIM_PCKCERT_API_VERSION: &str = "2021-07-22-preview";
/// Directory of the local THIM PCK certificate endpoint below the IMDS base; QC's `local_pck_url`
/// names it with the trailing slash (docs/formats.md §4.1 [V]).
pub const THIM_PCKCERT_DIR: &str = "/metadata/THIM/sgx/certification/v4/";
/// Path of the local THIM PCK certificate endpoint below the IMDS base.
pub const THIM_PCKCERT_PATH: &str = "/metadata/THIM/sgx/certification/v4/pckcert";
/// IMDS instance metadata, whose `compute.location` names the THIM region (DC,
/// docs/formats.md §4.1 [V]).
pub const IMDS_INSTANCE_PATH: &str = "/metadata/instance";
/// `api-version` DC asks IMDS instance metadata with (docs/formats.md §4.1 [V]).
pub const IMDS_INSTANCE_API_VERSION: &str = "2021-02-01";
/// Where QCNL reads its configuration unless `$QCNL_CONF_PATH` says otherwise
/// (docs/formats.md §4.1 [V]).
pub const DEFAULT_QCNL_CONF_PATH: &str = "/etc/sgx_default_qcnl.conf";
/// Environment variable that moves the QCNL configuration file (docs/formats.md §4.1 [V]).
pub const QCNL_CONF_PATH_ENV: &str = "QCNL_CONF_PATH";

/// Issuer chain of TCB info, API v4 (docs/formats.md §4.4 [V]).
pub const TCB_INFO_ISSUER_CHAIN: &str = "TCB-Info-Issuer-Chain";
/// Issuer chain of TCB info, API v3; DC and QC accept both names (docs/formats.md §4.4 [V]).
pub const SGX_TCB_INFO_ISSUER_CHAIN: &str = "SGX-TCB-Info-Issuer-Chain";
/// Issuer chain of enclave (QE) identities, API v2 and later (docs/formats.md §4.4 [V]).
pub const ENCLAVE_IDENTITY_ISSUER_CHAIN: &str = "SGX-Enclave-Identity-Issuer-Chain";
/// Issuer chain of QE identity, API v1 (docs/formats.md §4.4 [V]).
pub const QE_IDENTITY_ISSUER_CHAIN: &str = "SGX-QE-Identity-Issuer-Chain";
/// Issuer chain of the PCK CRL, and of the root CA CRL in DC's THIM fetch (docs/formats.md §4.4
/// [V]).
pub const PCK_CRL_ISSUER_CHAIN: &str = "SGX-PCK-CRL-Issuer-Chain";
/// Issuer chain of a PCK certificate: a PCS header, or a key of THIM's JSON body
/// (docs/formats.md §4.2 [V]).
pub const PCK_CERT_ISSUER_CHAIN: &str = "SGX-PCK-Certificate-Issuer-Chain";

const SGX_V4: &str = "/sgx/certification/v4";
const TDX_V4: &str = "/tdx/certification/v4";

/// Key of the percent-encoded issuer chain in THIM's `pckcert` JSON; case-sensitive
/// (docs/formats.md §4.2 [V]).
const THIM_PCK_CHAIN_KEY: &str = "sgx-Pck-Certificate-Issuer-Chain";

/// One piece of Intel collateral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CollateralKind {
    TcbInfo,
    QeIdentity,
    PckCrl,
    RootCaCrl,
    PckCert,
}

impl CollateralKind {
    /// Stable machine name, for bundles and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TcbInfo => "tcb_info",
            Self::QeIdentity => "qe_identity",
            Self::PckCrl => "pck_crl",
            Self::RootCaCrl => "root_ca_crl",
            Self::PckCert => "pck_cert",
        }
    }

    /// Response headers that may carry the issuer chain, preferred name first.
    pub fn issuer_chain_headers(self) -> &'static [&'static str] {
        match self {
            Self::TcbInfo => &[TCB_INFO_ISSUER_CHAIN, SGX_TCB_INFO_ISSUER_CHAIN],
            Self::QeIdentity => &[ENCLAVE_IDENTITY_ISSUER_CHAIN, QE_IDENTITY_ISSUER_CHAIN],
            Self::PckCrl | Self::RootCaCrl => &[PCK_CRL_ISSUER_CHAIN],
            Self::PckCert => &[PCK_CERT_ISSUER_CHAIN],
        }
    }
}

impl fmt::Display for CollateralKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TcbInfo => "TDX TCB info",
            Self::QeIdentity => "TD QE identity",
            Self::PckCrl => "PCK CRL",
            Self::RootCaCrl => "Intel SGX Root CA CRL",
            Self::PckCert => "PCK certificate",
        })
    }
}

/// The CA that issued the PCK certificate, which selects the PCK CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PckCa {
    Processor,
    Platform,
}

impl PckCa {
    /// The `ca=` query value (docs/formats.md §4.3, PCS spec [V]).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processor => "processor",
            Self::Platform => "platform",
        }
    }

    /// Common name of the CA, which is also the issuer of its CRL.
    pub fn common_name(self) -> &'static str {
        match self {
            Self::Processor => "Intel SGX PCK Processor CA",
            Self::Platform => "Intel SGX PCK Platform CA",
        }
    }
}

impl fmt::Display for PckCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PckCa {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        if s.eq_ignore_ascii_case("processor") {
            Ok(Self::Processor)
        } else if s.eq_ignore_ascii_case("platform") {
            Ok(Self::Platform)
        } else {
            Err(())
        }
    }
}

/// Common name of the Intel SGX Root CA, the issuer of the root CA CRL.
const ROOT_CA_COMMON_NAME: &str = "Intel SGX Root CA";

/// Who served an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServiceKind {
    /// Azure THIM's collateral cache (global or regional).
    Thim,
    /// Intel PCS, or a PCCS speaking its API.
    Pcs,
    /// The THIM agent behind IMDS (PCK certificates only).
    LocalThim,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Thim => "thim",
            Self::Pcs => "pcs",
            Self::LocalThim => "imds-thim",
        }
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where TCB info, QE identity and the CRLs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CollateralService {
    /// Azure THIM, e.g. [`DEFAULT_THIM_BASE`] or a [`regional_thim_base`]; `base` is scheme and
    /// host (and port), without a path.
    Thim { base: String },
    /// Intel PCS (or a PCCS) at `base`, with the root CA CRL fetched from `root_ca_crl_url`.
    Pcs {
        base: String,
        root_ca_crl_url: String,
    },
}

impl CollateralService {
    /// THIM at `base`.
    pub fn thim(base: impl Into<String>) -> Self {
        Self::Thim { base: base.into() }
    }

    /// PCS at `base`, with the root CA CRL from Intel's distribution point.
    pub fn pcs(base: impl Into<String>) -> Self {
        Self::Pcs {
            base: base.into(),
            root_ca_crl_url: DEFAULT_PCS_ROOT_CA_CRL_URL.to_owned(),
        }
    }

    /// Which URL shapes the service speaks.
    pub fn kind(&self) -> ServiceKind {
        match self {
            Self::Thim { .. } => ServiceKind::Thim,
            Self::Pcs { .. } => ServiceKind::Pcs,
        }
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        match self {
            Self::Thim { base } | Self::Pcs { base, .. } => trim_base(base),
        }
    }
}

impl Default for CollateralService {
    fn default() -> Self {
        Self::thim(DEFAULT_THIM_BASE)
    }
}

impl fmt::Display for CollateralService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Thim { .. } => write!(f, "Azure THIM at {}", self.base()),
            Self::Pcs {
                root_ca_crl_url, ..
            } => write!(
                f,
                "Intel PCS API at {} (root CA CRL from {root_ca_crl_url})",
                self.base()
            ),
        }
    }
}

fn trim_base(base: &str) -> &str {
    base.trim_end_matches('/')
}

// ---------------------------------------------------------------------------------------------
// URL builders

/// TDX TCB info for `fmspc`.
///
/// THIM: `{base}/tdx/certification/v4/tcb?fmspc={lowerhex}&clientid=production_client&
/// api-version=2018-10-01-preview` (DC [V]). PCS: `{base}/tdx/certification/v4/tcb?fmspc={HEX}`
/// (PCS spec [V]; QC writes upper case [V]); no `update=`, so PCS answers with its `standard`
/// default.
pub fn tcb_info_url(service: &CollateralService, fmspc: &[u8; 6]) -> String {
    let base = service.base();
    match service {
        CollateralService::Thim { .. } => format!(
            "{base}{TDX_V4}/tcb?fmspc={}&clientid={THIM_CLIENT_ID}&api-version={THIM_COLLATERAL_API_VERSION}",
            hex::encode(fmspc)
        ),
        CollateralService::Pcs { .. } => {
            format!("{base}{TDX_V4}/tcb?fmspc={}", hex::encode_upper(fmspc))
        }
    }
}

/// TD QE identity: `{base}/tdx/certification/v4/qe/identity`, with THIM's `clientid` and
/// `api-version` (DC [V]); PCS takes no parameters (PCS spec [V]).
pub fn qe_identity_url(service: &CollateralService) -> String {
    let base = service.base();
    match service {
        CollateralService::Thim { .. } => format!(
            "{base}{TDX_V4}/qe/identity?clientid={THIM_CLIENT_ID}&api-version={THIM_COLLATERAL_API_VERSION}"
        ),
        CollateralService::Pcs { .. } => format!("{base}{TDX_V4}/qe/identity"),
    }
}

/// PCK CRL of `ca`. The path stays `/sgx/` for TDX on both services.
///
/// THIM: `…/pckcrl?ca={ca}&clientid=production_client`, no `encoding` and no `api-version` (DC
/// [V]); its body encoding is [U], see [`normalise_crl`]. PCS: `…/pckcrl?ca={ca}&encoding=der`
/// (PCS spec, QC [V]).
pub fn pck_crl_url(service: &CollateralService, ca: PckCa) -> String {
    let base = service.base();
    match service {
        CollateralService::Thim { .. } => {
            format!("{base}{SGX_V4}/pckcrl?ca={ca}&clientid={THIM_CLIENT_ID}")
        }
        CollateralService::Pcs { .. } => format!("{base}{SGX_V4}/pckcrl?ca={ca}&encoding=der"),
    }
}

/// Intel SGX Root CA CRL. THIM: `{base}/sgx/certification/v4/rootcacrl?clientid=
/// production_client` (DC [V]; body encoding [U]: PCCS's `rootcacrl` returns hex [V QC]). PCS:
/// the configured distribution-point URL.
pub fn root_ca_crl_url(service: &CollateralService) -> String {
    match service {
        CollateralService::Thim { .. } => format!(
            "{}{SGX_V4}/rootcacrl?clientid={THIM_CLIENT_ID}",
            service.base()
        ),
        CollateralService::Pcs {
            root_ca_crl_url, ..
        } => root_ca_crl_url.clone(),
    }
}

/// The local THIM PCK certificate endpoint under `imds_base` (with its trailing slash, as QC's
/// `local_pck_url` is written).
pub fn default_local_pck_url(imds_base: &str) -> String {
    format!("{}{THIM_PCKCERT_DIR}", trim_base(imds_base))
}

/// What identifies a platform's PCK certificate; the fields of the quote's certification data
/// (type 2 or 3) or of a PCK certificate request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PckCertId {
    /// QE3 ID, 16 bytes.
    pub qe_id: [u8; 16],
    pub cpu_svn: [u8; 16],
    pub pce_svn: u16,
    pub pce_id: u16,
    /// Encrypted PPID (384 bytes with RSA-3072); omitted from the URL when `None` or empty.
    pub encrypted_ppid: Option<Vec<u8>>,
}

/// `{local_pck_url}pckcert?qeid=…[&encrypted_ppid=…]&cpusvn=…&pcesvn=…&pceid=…&api-version=
/// 2021-07-22-preview`, then `extra_params` (QCNL's `custom_request_options.get_cert.params`).
///
/// Follows QC's request (docs/formats.md §4.2 [V]): upper-case hex, and `pcesvn` / `pceid` as
/// little-endian hex as the PCS spec says [V] and FX sends to THIM [O]; whether THIM also
/// accepts DC's big-endian form is [U]. An empty encrypted PPID is left out as DC and FX do,
/// where QC would send 384 zero bytes. An extra parameter named like a built-in one replaces its
/// value instead of repeating it, because IMDS rejects duplicate query parameters
/// (docs/formats.md §2 [V]).
pub fn pck_cert_url(
    local_pck_url: &str,
    id: &PckCertId,
    extra_params: &[(String, String)],
) -> String {
    let mut params: Vec<(String, String)> = vec![("qeid".into(), hex::encode_upper(id.qe_id))];
    if let Some(ppid) = id.encrypted_ppid.as_deref().filter(|p| !p.is_empty()) {
        params.push(("encrypted_ppid".into(), hex::encode_upper(ppid)));
    }
    params.push(("cpusvn".into(), hex::encode_upper(id.cpu_svn)));
    params.push(("pcesvn".into(), hex::encode_upper(id.pce_svn.to_le_bytes())));
    params.push(("pceid".into(), hex::encode_upper(id.pce_id.to_le_bytes())));
    params.push(("api-version".into(), THIM_PCKCERT_API_VERSION.into()));
    for (name, value) in extra_params {
        match params.iter_mut().find(|(n, _)| n == name) {
            Some(existing) => existing.1.clone_from(value),
            None => params.push((name.clone(), value.clone())),
        }
    }
    let query: Vec<String> = params.iter().map(|(n, v)| format!("{n}={v}")).collect();
    format!("{}/pckcert?{}", trim_base(local_pck_url), query.join("&"))
}

/// `https://{region}.thim.azure.net` for an IMDS `compute.location`, lower-cased as DC does
/// (docs/formats.md §4.1 [V DC]). IMDS names regions like `eastus2` while third-party code uses
/// hosts like `useast2`; which form THIM resolves is [U].
pub fn regional_thim_base(location: &str) -> Result<String, IntelFetchError> {
    let region = location.trim().to_ascii_lowercase();
    // The region becomes a host label: anything else could redirect the request to another host.
    let valid = !region.is_empty()
        && region.len() <= 63
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if valid {
        Ok(format!("https://{region}.thim.azure.net"))
    } else {
        Err(IntelFetchError::InvalidLocation {
            location: location.to_owned(),
        })
    }
}

/// The region of a [`regional_thim_base`] URL, if it is one.
pub fn parse_regional_thim_base(url: &str) -> Option<String> {
    let host = url.strip_prefix("https://")?.trim_end_matches('/');
    let region = host.strip_suffix(".thim.azure.net")?;
    (!region.is_empty() && !region.contains(['.', '/'])).then(|| region.to_owned())
}

/// `{imds}/metadata/instance?api-version=2021-02-01`.
pub fn imds_instance_url(imds_base: &str) -> String {
    format!(
        "{}{IMDS_INSTANCE_PATH}?api-version={IMDS_INSTANCE_API_VERSION}",
        trim_base(imds_base)
    )
}

// ---------------------------------------------------------------------------------------------
// Inverse parsers (for the emulator)

/// A collateral request recognised from its path and query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollateralTarget {
    pub kind: CollateralKind,
    /// THIM when the query carries `clientid` or the path is THIM's `rootcacrl`, else PCS.
    pub shape: ServiceKind,
    pub fmspc: Option<[u8; 6]>,
    pub ca: Option<PckCa>,
    /// Every query parameter, in order, not percent-decoded.
    pub params: Vec<(String, String)>,
}

impl CollateralTarget {
    /// The value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }
}

/// A PCK certificate request recognised from its path and query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PckCertTarget {
    pub id: PckCertId,
    /// Every query parameter, in order, not percent-decoded.
    pub params: Vec<(String, String)>,
}

impl PckCertTarget {
    /// The value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }
}

/// Why a request path or query is not one thimble would send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    #[error("no Intel collateral endpoint at {path}")]
    UnknownPath { path: String },
    #[error("query parameter {name} is missing")]
    MissingParameter { name: &'static str },
    #[error("query parameter {name} has the invalid value {value:?}")]
    InvalidParameter { name: String, value: String },
    #[error("query parameter {name} appears more than once")]
    DuplicateParameter { name: String },
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Splits a query into `(name, value)` pairs, in order and not percent-decoded. A repeated name
/// is an error, as IMDS treats it (docs/formats.md §2 [V]).
pub fn parse_query(query: Option<&str>) -> Result<Vec<(String, String)>, TargetError> {
    let mut params: Vec<(String, String)> = Vec::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if params.iter().any(|(n, _)| n == name) {
            return Err(TargetError::DuplicateParameter {
                name: name.to_owned(),
            });
        }
        params.push((name.to_owned(), value.to_owned()));
    }
    Ok(params)
}

fn required<'a>(
    params: &'a [(String, String)],
    name: &'static str,
) -> Result<&'a str, TargetError> {
    param(params, name).ok_or(TargetError::MissingParameter { name })
}

fn invalid(name: &str, value: &str) -> TargetError {
    TargetError::InvalidParameter {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

fn hex_array<const N: usize>(name: &str, value: &str) -> Result<[u8; N], TargetError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(value, &mut out).map_err(|_| invalid(name, value))?;
    Ok(out)
}

/// Inverse of [`tcb_info_url`], [`qe_identity_url`], [`pck_crl_url`] and [`root_ca_crl_url`]:
/// what a request for `path` (without the query) and `query` asks for.
pub fn parse_collateral_target(
    path: &str,
    query: Option<&str>,
) -> Result<CollateralTarget, TargetError> {
    let params = parse_query(query)?;
    let thim_query = param(&params, "clientid").is_some();
    let shape = if thim_query {
        ServiceKind::Thim
    } else {
        ServiceKind::Pcs
    };
    let target = |kind, shape, fmspc, ca, params| CollateralTarget {
        kind,
        shape,
        fmspc,
        ca,
        params,
    };
    if path == PCS_ROOT_CA_CRL_PATH {
        return Ok(target(
            CollateralKind::RootCaCrl,
            ServiceKind::Pcs,
            None,
            None,
            params,
        ));
    }
    if let Some(rest) = path.strip_prefix(TDX_V4) {
        match rest {
            "/tcb" => {
                let value = required(&params, "fmspc")?;
                let fmspc = hex_array::<6>("fmspc", value)?;
                return Ok(target(
                    CollateralKind::TcbInfo,
                    shape,
                    Some(fmspc),
                    None,
                    params,
                ));
            }
            "/qe/identity" => {
                return Ok(target(
                    CollateralKind::QeIdentity,
                    shape,
                    None,
                    None,
                    params,
                ));
            }
            _ => {}
        }
    }
    if let Some(rest) = path.strip_prefix(SGX_V4) {
        match rest {
            "/pckcrl" => {
                let value = required(&params, "ca")?;
                let ca = value.parse().map_err(|()| invalid("ca", value))?;
                return Ok(target(
                    CollateralKind::PckCrl,
                    shape,
                    None,
                    Some(ca),
                    params,
                ));
            }
            "/rootcacrl" => {
                return Ok(target(
                    CollateralKind::RootCaCrl,
                    ServiceKind::Thim,
                    None,
                    None,
                    params,
                ));
            }
            _ => {}
        }
    }
    Err(TargetError::UnknownPath {
        path: path.to_owned(),
    })
}

/// Inverse of [`pck_cert_url`] for a request to `path` ([`THIM_PCKCERT_PATH`] below an IMDS base).
pub fn parse_pck_cert_target(
    path: &str,
    query: Option<&str>,
) -> Result<PckCertTarget, TargetError> {
    if path != THIM_PCKCERT_PATH {
        return Err(TargetError::UnknownPath {
            path: path.to_owned(),
        });
    }
    let params = parse_query(query)?;
    let qe_id = hex_array::<16>("qeid", required(&params, "qeid")?)?;
    let cpu_svn = hex_array::<16>("cpusvn", required(&params, "cpusvn")?)?;
    let pce_svn = u16::from_le_bytes(hex_array::<2>("pcesvn", required(&params, "pcesvn")?)?);
    let pce_id = u16::from_le_bytes(hex_array::<2>("pceid", required(&params, "pceid")?)?);
    let encrypted_ppid = match param(&params, "encrypted_ppid") {
        None => None,
        Some(v) => Some(hex::decode(v).map_err(|_| invalid("encrypted_ppid", v))?),
    };
    Ok(PckCertTarget {
        id: PckCertId {
            qe_id,
            cpu_svn,
            pce_svn,
            pce_id,
            encrypted_ppid,
        },
        params,
    })
}

// ---------------------------------------------------------------------------------------------
// Percent encoding of issuer-chain headers

/// A percent-encoded header value that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PercentDecodeError {
    #[error("invalid percent escape at byte {offset}")]
    BadEscape { offset: usize },
    #[error("the decoded bytes are not UTF-8")]
    NotUtf8,
}

/// Plain percent-decoding (RFC 3986), as DC's `curl_easy_unescape` does: `%XX` becomes the byte
/// `0xXX` and everything else, `+` included, stays as it is. Form decoding (`+` as space) would
/// corrupt the base64 of the certificates (docs/formats.md §4.4 [V]).
pub fn percent_decode(s: &str) -> Result<String, PercentDecodeError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PercentDecodeError::BadEscape { offset: i });
            };
            // Two hex digits fit a byte.
            out.push(((hi << 4) | lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PercentDecodeError::NotUtf8)
}

/// Percent-encodes every byte except RFC 3986's unreserved characters, with upper-case hex, the
/// way PCS encodes its issuer-chain headers (space `%20`, LF `%0A`, `+` `%2B`, `/` `%2F`, `=` `%3D`;
/// docs/formats.md §4.4 [V]). The emulator uses it; [`percent_decode`] inverts it.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// CRL bodies

/// How a body was encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyEncoding {
    Json,
    Der,
    Pem,
    /// Hex text of DER, as PCCS's `rootcacrl` answers (docs/formats.md §4.3 [V QC]).
    Hex,
}

impl BodyEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Der => "der",
            Self::Pem => "pem",
            Self::Hex => "hex",
        }
    }
}

impl fmt::Display for BodyEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CRL body brought to DER, with the fields thimble records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlInfo {
    pub der: Vec<u8>,
    pub encoding: BodyEncoding,
    /// Common name of the issuer, if it has one.
    pub issuer_common_name: Option<String>,
    /// `thisUpdate`, RFC 3339.
    pub this_update: String,
    /// `nextUpdate`, RFC 3339.
    pub next_update: Option<String>,
}

/// Recognises a CRL body as PEM, hex or DER and parses it. Which of these THIM sends is an open
/// question (docs/formats.md §4.5, §7 item 3 [U]), so the encoding is sniffed as §4.5 describes:
/// `-----BEGIN X509 CRL-----` is PEM, only hex digits is hex-encoded DER, anything else DER.
pub fn normalise_crl(body: &[u8]) -> Result<CrlInfo, String> {
    let trimmed = body.trim_ascii();
    let (encoding, der) = if trimmed.starts_with(b"-----BEGIN") {
        let (_, pem) = x509_parser::pem::parse_x509_pem(trimmed)
            .map_err(|e| format!("PEM body does not decode: {e}"))?;
        if pem.label != "X509 CRL" {
            return Err(format!("PEM block is {:?}, not \"X509 CRL\"", pem.label));
        }
        (BodyEncoding::Pem, pem.contents)
    } else if !trimmed.is_empty() && trimmed.iter().all(u8::is_ascii_hexdigit) {
        let der = hex::decode(trimmed).map_err(|e| format!("hex body does not decode: {e}"))?;
        (BodyEncoding::Hex, der)
    } else {
        (BodyEncoding::Der, body.to_vec())
    };
    let (issuer_common_name, this_update, next_update) = {
        let (rest, crl) = CertificateRevocationList::from_der(&der)
            .map_err(|e| format!("not an X.509 CRL ({encoding}): {e}"))?;
        if !rest.is_empty() {
            return Err(format!("{} bytes follow the CRL ({encoding})", rest.len()));
        }
        let issuer_common_name = crl
            .issuer()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        (
            issuer_common_name,
            format_unix(crl.last_update().timestamp()),
            crl.next_update().map(|t| format_unix(t.timestamp())),
        )
    };
    Ok(CrlInfo {
        der,
        encoding,
        issuer_common_name,
        this_update,
        next_update,
    })
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// Request options QCNL applies to one kind of request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Extra query parameters, appended as `&name=value` without escaping, as QCNL does.
    pub params: Vec<(String, String)>,
}

/// QCNL's `custom_request_options`. Only `get_cert` (the PCK certificate request) has an effect,
/// as in QCNL (docs/formats.md §4.1 [V]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomRequestOptions {
    pub get_cert: RequestOptions,
}

/// Retry settings in QCNL's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Retries after the first attempt.
    pub times: u32,
    /// Wait between attempts; zero keeps the client's own exponential backoff, as QCNL falls back
    /// to 1, 2, 4 … s (docs/formats.md §4.6 [V]).
    pub delay: Duration,
}

/// Settings given to thimble itself (flags or its configuration file). `None` defers to
/// `sgx_default_qcnl.conf`, then to the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntelSettings {
    pub service: Option<CollateralService>,
    pub imds_base: Option<String>,
    pub local_pck_url: Option<String>,
    pub retry: Option<Retry>,
    pub custom_request_options: Option<CustomRequestOptions>,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettingSource {
    /// thimble's flags or configuration.
    Flag,
    /// `sgx_default_qcnl.conf`.
    Qcnl,
    /// thimble's built-in default.
    Default,
}

impl SettingSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flag => "flag",
            Self::Qcnl => "qcnl",
            Self::Default => "default",
        }
    }
}

impl fmt::Display for SettingSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The winning source of each setting of an [`IntelCollateralConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingSources {
    pub service: SettingSource,
    pub imds_base: SettingSource,
    pub local_pck_url: SettingSource,
    pub retry: SettingSource,
    pub custom_request_options: SettingSource,
}

/// The resolved Intel collateral configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntelCollateralConfig {
    pub service: CollateralService,
    pub imds_base: String,
    /// Directory URL of the local THIM PCK certificate endpoint (QCNL's `local_pck_url`).
    pub local_pck_url: String,
    /// `None` keeps the HTTP client's own retry policy.
    pub retry: Option<Retry>,
    pub custom_request_options: CustomRequestOptions,
    pub source_of_each_setting: SettingSources,
    /// How the QCNL file was interpreted, where that needed a choice.
    pub notes: Vec<String>,
}

impl Default for IntelCollateralConfig {
    fn default() -> Self {
        Self::resolve(&IntelSettings::default(), None)
    }
}

impl IntelCollateralConfig {
    /// Merges `explicit` settings over `qcnl` over the defaults, setting by setting.
    ///
    /// The collateral service comes from QCNL's `collateral_service`, else its `pccs_url` (QCNL
    /// itself falls back the same way, docs/formats.md §4.1 [V]). An explicit IMDS base also moves
    /// the local PCK URL unless that is given explicitly too: an operator who points thimble at
    /// another IMDS means it for every IMDS request, whatever the QCNL file says.
    pub fn resolve(explicit: &IntelSettings, qcnl: Option<&qcnl::QcnlConfig>) -> Self {
        let mut notes = Vec::new();
        let qcnl_service = qcnl.and_then(|q| {
            let (key, url) = match (&q.collateral_service, &q.pccs_url) {
                (Some(url), _) => ("collateral_service", url),
                (None, Some(url)) => ("pccs_url", url),
                (None, None) => return None,
            };
            Some(service_from_qcnl_url(key, url, &mut notes))
        });
        let (service, service_source) = match (&explicit.service, qcnl_service) {
            (Some(s), _) => (s.clone(), SettingSource::Flag),
            (None, Some(s)) => (s, SettingSource::Qcnl),
            (None, None) => (CollateralService::default(), SettingSource::Default),
        };

        let (imds_base, imds_source) = match &explicit.imds_base {
            Some(b) => (b.clone(), SettingSource::Flag),
            None => (DEFAULT_IMDS_BASE.to_owned(), SettingSource::Default),
        };

        let qcnl_pck = qcnl.and_then(|q| q.local_pck_url.clone());
        let (local_pck_url, pck_source) = match (&explicit.local_pck_url, &explicit.imds_base) {
            (Some(url), _) => (url.clone(), SettingSource::Flag),
            (None, Some(imds)) => (default_local_pck_url(imds), SettingSource::Flag),
            (None, None) => match qcnl_pck {
                Some(url) => (url, SettingSource::Qcnl),
                None => (default_local_pck_url(&imds_base), SettingSource::Default),
            },
        };

        let qcnl_retry = qcnl.and_then(|q| {
            if q.retry_times.is_none() && q.retry_delay_secs.is_none() {
                return None;
            }
            // QCNL's own defaults for the half that is missing: no retry, no fixed delay.
            Some(Retry {
                times: q.retry_times.unwrap_or(0),
                delay: Duration::from_secs(u64::from(q.retry_delay_secs.unwrap_or(0))),
            })
        });
        let (retry, retry_source) = match (explicit.retry, qcnl_retry) {
            (Some(r), _) => (Some(r), SettingSource::Flag),
            (None, Some(r)) => (Some(r), SettingSource::Qcnl),
            (None, None) => (None, SettingSource::Default),
        };

        let qcnl_options = qcnl.and_then(|q| q.custom_request_options.clone());
        let (custom_request_options, options_source) =
            match (&explicit.custom_request_options, qcnl_options) {
                (Some(o), _) => (o.clone(), SettingSource::Flag),
                (None, Some(o)) => (o, SettingSource::Qcnl),
                (None, None) => (CustomRequestOptions::default(), SettingSource::Default),
            };

        if let Some(q) = qcnl {
            notes.extend(q.ignored.iter().map(|i| format!("qcnl: ignored {i}")));
        }
        Self {
            service,
            imds_base,
            local_pck_url,
            retry,
            custom_request_options,
            source_of_each_setting: SettingSources {
                service: service_source,
                imds_base: imds_source,
                local_pck_url: pck_source,
                retry: retry_source,
                custom_request_options: options_source,
            },
            notes,
        }
    }

    /// One line per setting, with its source, then the notes: for the bundle's endorsement log.
    pub fn describe(&self) -> Vec<String> {
        let s = &self.source_of_each_setting;
        let retry = match self.retry {
            None => "the HTTP client's policy".to_owned(),
            Some(r) => format!("{} retries, {:?} apart", r.times, r.delay),
        };
        let options = &self.custom_request_options.get_cert;
        let mut lines = vec![
            format!("intel collateral service: {} ({})", self.service, s.service),
            format!("imds: {} ({})", self.imds_base, s.imds_base),
            format!(
                "local THIM PCK certificate URL: {} ({})",
                self.local_pck_url, s.local_pck_url
            ),
            format!("intel retry: {retry} ({})", s.retry),
            format!(
                "PCK certificate request options: {} header(s), {} parameter(s) ({})",
                options.headers.len(),
                options.params.len(),
                s.custom_request_options
            ),
        ];
        lines.extend(self.notes.iter().cloned());
        lines
    }

    /// `base` with the retry settings applied: `times` retries, waits of about `delay` (the
    /// client's equal jitter puts each wait between half the delay and the delay, where QCNL
    /// waits exactly). The overall deadline still bounds everything: QCNL's sample
    /// `retry_times: 6, retry_delay: 10` would otherwise wait a minute.
    pub fn http_config(&self, base: &HttpConfig) -> HttpConfig {
        let mut config = base.clone();
        if let Some(retry) = self.retry {
            config.max_attempts = retry.times.saturating_add(1);
            if !retry.delay.is_zero() {
                config.backoff_base = retry.delay;
                config.max_backoff = retry.delay;
            }
        }
        config
    }
}

/// The service a QCNL URL (`https://host/sgx/certification/v4/`) names.
fn service_from_qcnl_url(key: &str, url: &str, notes: &mut Vec<String>) -> CollateralService {
    let trimmed = url.trim().trim_end_matches('/');
    // QCNL URLs name the SGX API directory; thimble builds both /sgx/ and /tdx/ paths from the
    // host part.
    let (base, version) = match trimmed
        .find("/sgx/certification/")
        .or_else(|| trimmed.find("/tdx/certification/"))
    {
        Some(pos) => {
            let version = trimmed[pos..].rsplit('/').next().unwrap_or_default();
            (&trimmed[..pos], Some(version))
        }
        None => (trimmed, None),
    };
    if let Some(v) = version.filter(|v| *v != "v4") {
        notes.push(format!(
            "qcnl {key} names API {v}; thimble asks for API v4 at the same host"
        ));
    }
    let host = base
        .split_once("://")
        .map_or(base, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let service = if host == "api.trustedservices.intel.com" {
        CollateralService::pcs(base)
    } else if host.ends_with(".azure.net") {
        CollateralService::thim(base)
    } else {
        // A PCCS mirrors the PCS API; its root CA CRL endpoint answers hex (PCCS API 3.0) or may
        // need `crl?uri=` (3.1) (docs/formats.md §4.3 [V QC]); `rootcacrl` is tried and the body
        // sniffed.
        notes.push(format!(
            "qcnl {key} {url} is neither Intel PCS nor Azure THIM: treated as a PCCS speaking the PCS API"
        ));
        CollateralService::Pcs {
            base: base.to_owned(),
            root_ca_crl_url: format!("{base}{SGX_V4}/rootcacrl"),
        }
    };
    notes.push(format!("collateral service from qcnl {key} {url}"));
    service
}

/// `/etc/sgx_default_qcnl.conf`, Intel's quote-provider configuration.
pub mod qcnl {
    use std::ffi::OsStr;
    use std::io;
    use std::path::{Path, PathBuf};

    use serde_json::{Map, Value};

    use super::{CustomRequestOptions, DEFAULT_QCNL_CONF_PATH, RequestOptions};

    /// The two formats QCNL reads.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub enum QcnlFormat {
        /// JSON with comments, current since DCAP 1.13.
        #[default]
        Json,
        /// `NAME=VALUE` lines with `#` comments, read by QCNL when the file is not JSON.
        Legacy,
    }

    /// The settings of a QCNL file that thimble uses or reports. Keys whose value has the wrong
    /// type are skipped, as QCNL skips them, and listed in `ignored`.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct QcnlConfig {
        pub format: QcnlFormat,
        pub pccs_url: Option<String>,
        pub collateral_service: Option<String>,
        pub local_pck_url: Option<String>,
        pub pccs_api_version: Option<String>,
        pub use_secure_cert: Option<bool>,
        pub retry_times: Option<u32>,
        pub retry_delay_secs: Option<u32>,
        pub custom_request_options: Option<CustomRequestOptions>,
        /// What was skipped and why, e.g. `retry_times: not a non-negative integer`.
        pub ignored: Vec<String>,
    }

    /// Why a QCNL file could not be read.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum QcnlError {
        #[error("cannot read the QCNL configuration {path}")]
        Read {
            path: PathBuf,
            #[source]
            source: io::Error,
        },
        #[error("QCNL configuration {path}")]
        InFile {
            path: PathBuf,
            #[source]
            source: Box<QcnlError>,
        },
        #[error("not valid JSON at line {line}, column {column}: {reason}")]
        Json {
            line: usize,
            column: usize,
            reason: String,
        },
        #[error("the comment opened at line {line} is not closed")]
        UnterminatedComment { line: usize },
        #[error("the top level is not a JSON object")]
        NotAnObject,
    }

    /// The configuration path: `$QCNL_CONF_PATH` when set and not empty, else
    /// [`DEFAULT_QCNL_CONF_PATH`] (docs/formats.md §4.1 [V]).
    pub fn conf_path(env_value: Option<&OsStr>) -> PathBuf {
        match env_value {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => PathBuf::from(DEFAULT_QCNL_CONF_PATH),
        }
    }

    /// Reads and parses `path`; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<QcnlConfig>, QcnlError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(QcnlError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        parse(&text).map(Some).map_err(|e| QcnlError::InFile {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    /// Parses a QCNL file. A file whose first non-blank character is `{` is JSON, where QCNL's
    /// parser (rapidjson with `kParseCommentsFlag`) allows `//` and `/* */` comments; trailing
    /// commas are tolerated too, since a hand-edited file often has one and the intent is
    /// clear. Anything else is the legacy `NAME=VALUE` format.
    pub fn parse(text: &str) -> Result<QcnlConfig, QcnlError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim_start().starts_with('{') {
            parse_json(text)
        } else {
            Ok(parse_legacy(text))
        }
    }

    fn parse_json(text: &str) -> Result<QcnlConfig, QcnlError> {
        let plain = strip_comments_and_trailing_commas(text)?;
        let value: Value = serde_json::from_str(&plain).map_err(|e| QcnlError::Json {
            line: e.line(),
            column: e.column(),
            reason: e.to_string(),
        })?;
        let Value::Object(map) = value else {
            return Err(QcnlError::NotAnObject);
        };
        let mut ignored = Vec::new();
        let use_secure_cert = match map.get("use_secure_cert") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                ignored.push("use_secure_cert: not a boolean".into());
                None
            }
        };
        let custom_request_options = match map.get("custom_request_options") {
            None => None,
            Some(Value::Object(o)) => Some(custom_options(o, &mut ignored)),
            Some(_) => {
                ignored.push("custom_request_options: not an object".into());
                None
            }
        };
        let c = QcnlConfig {
            format: QcnlFormat::Json,
            pccs_url: string(&map, "pccs_url", &mut ignored),
            collateral_service: string(&map, "collateral_service", &mut ignored),
            local_pck_url: string(&map, "local_pck_url", &mut ignored),
            pccs_api_version: string(&map, "pccs_api_version", &mut ignored),
            use_secure_cert,
            retry_times: count(&map, "retry_times", &mut ignored),
            retry_delay_secs: count(&map, "retry_delay", &mut ignored),
            custom_request_options,
            ignored,
        };
        Ok(c)
    }

    fn string(map: &Map<String, Value>, key: &str, ignored: &mut Vec<String>) -> Option<String> {
        match map.get(key) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                ignored.push(format!("{key}: not a string"));
                None
            }
        }
    }

    fn count(map: &Map<String, Value>, key: &str, ignored: &mut Vec<String>) -> Option<u32> {
        let value = map.get(key)?;
        match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                ignored.push(format!("{key}: not a non-negative integer"));
                None
            }
        }
    }

    fn custom_options(o: &Map<String, Value>, ignored: &mut Vec<String>) -> CustomRequestOptions {
        let mut options = CustomRequestOptions::default();
        for (name, value) in o {
            if name != "get_cert" {
                ignored.push(format!(
                    "custom_request_options.{name}: only get_cert is used"
                ));
                continue;
            }
            let Value::Object(get_cert) = value else {
                ignored.push("custom_request_options.get_cert: not an object".into());
                continue;
            };
            options.get_cert = RequestOptions {
                headers: string_pairs(get_cert, "headers", ignored),
                params: string_pairs(get_cert, "params", ignored),
            };
        }
        options
    }

    /// String members of object `key`; QCNL skips members that are not strings.
    fn string_pairs(
        o: &Map<String, Value>,
        key: &str,
        ignored: &mut Vec<String>,
    ) -> Vec<(String, String)> {
        match o.get(key) {
            None => Vec::new(),
            Some(Value::Object(members)) => members
                .iter()
                .filter_map(|(name, value)| match value {
                    Value::String(s) => Some((name.clone(), s.clone())),
                    _ => {
                        ignored.push(format!(
                            "custom_request_options.get_cert.{key}.{name}: not a string"
                        ));
                        None
                    }
                })
                .collect(),
            Some(_) => {
                ignored.push(format!(
                    "custom_request_options.get_cert.{key}: not an object"
                ));
                Vec::new()
            }
        }
    }

    /// Blanks out comments and trailing commas, keeping every newline so that JSON error
    /// positions still point into the original text.
    fn strip_comments_and_trailing_commas(text: &str) -> Result<String, QcnlError> {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut in_string = false;
        // Position in `out` of a comma followed so far only by blanks.
        let mut pending_comma: Option<usize> = None;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if in_string {
                out.push(b);
                if b == b'\\' {
                    if let Some(&next) = bytes.get(i + 1) {
                        out.push(next);
                        i += 1;
                    }
                } else if b == b'"' {
                    in_string = false;
                }
                i += 1;
                continue;
            }
            match (b, bytes.get(i + 1)) {
                (b'/', Some(b'/')) => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        out.push(b' ');
                        i += 1;
                    }
                    continue;
                }
                (b'/', Some(b'*')) => {
                    let line = 1 + bytes[..i].iter().filter(|&&c| c == b'\n').count();
                    let Some(len) = bytes[i + 2..].windows(2).position(|w| w == b"*/") else {
                        return Err(QcnlError::UnterminatedComment { line });
                    };
                    let end = i + 2 + len + 2;
                    out.extend(
                        bytes[i..end]
                            .iter()
                            .map(|&c| if c == b'\n' { b'\n' } else { b' ' }),
                    );
                    i = end;
                    continue;
                }
                (b'"', _) => {
                    in_string = true;
                    pending_comma = None;
                }
                (b',', _) => pending_comma = Some(out.len()),
                (b'}' | b']', _) => {
                    if let Some(p) = pending_comma.take() {
                        out[p] = b' ';
                    }
                }
                (c, _) if c.is_ascii_whitespace() => {}
                _ => pending_comma = None,
            }
            out.push(b);
            i += 1;
        }
        // Only ASCII bytes were replaced, and only with ASCII, so the text is still UTF-8.
        String::from_utf8(out).map_err(|_| QcnlError::Json {
            line: 0,
            column: 0,
            reason: "not UTF-8 after removing comments".into(),
        })
    }

    /// The legacy format, read as QCNL's `QcnlConfigLegacy` does: whitespace removed, `#` lines
    /// skipped, `NAME=VALUE` with upper-case names.
    fn parse_legacy(text: &str) -> QcnlConfig {
        let mut c = QcnlConfig {
            format: QcnlFormat::Legacy,
            ..QcnlConfig::default()
        };
        for raw in text.lines() {
            let line: String = raw.chars().filter(|ch| !ch.is_whitespace()).collect();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let number = |ignored: &mut Vec<String>| match value.parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    ignored.push(format!("{name}: not a non-negative integer"));
                    None
                }
            };
            match name {
                "PCCS_URL" => c.pccs_url = Some(value.to_owned()),
                "COLLATERAL_SERVICE" => c.collateral_service = Some(value.to_owned()),
                "LOCAL_PCK_URL" => c.local_pck_url = Some(value.to_owned()),
                "PCCS_API_VERSION" => c.pccs_api_version = Some(value.to_owned()),
                "USE_SECURE_CERT" => {
                    c.use_secure_cert = Some(!value.eq_ignore_ascii_case("false"));
                }
                "RETRY_TIMES" => c.retry_times = number(&mut c.ignored),
                "RETRY_DELAY" => c.retry_delay_secs = number(&mut c.ignored),
                _ => {}
            }
        }
        c
    }
}

// ---------------------------------------------------------------------------------------------
// Fetching

/// One fetched item, as it goes into the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedItem {
    pub kind: CollateralKind,
    pub source: ServiceKind,
    pub url: String,
    /// The body exactly as received.
    pub body: Vec<u8>,
    pub body_encoding: BodyEncoding,
    /// The DER of a CRL or certificate, whatever `body_encoding`; `None` for JSON items.
    pub der: Option<Vec<u8>>,
    /// When the response arrived, RFC 3339.
    pub retrieved_at: String,
    /// Attempts the HTTP client needed.
    pub attempts: u32,
    /// The `Cache-Control` response header, verbatim.
    pub cache_control: Option<String>,
    /// `nextUpdate` of the JSON body or of the CRL, RFC 3339.
    pub next_update: Option<String>,
    /// The percent-decoded issuer chain, leaf-most CA first.
    pub issuer_chain_pem: Option<String>,
    /// The header (or THIM JSON key) that carried the issuer chain.
    pub issuer_chain_header: Option<String>,
}

/// TDX collateral for one quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxCollateralItems {
    pub tcb_info: FetchedItem,
    pub qe_identity: FetchedItem,
    pub pck_crl: FetchedItem,
    pub root_ca_crl: FetchedItem,
    /// One line per item: where it came from and what it held.
    pub log: Vec<String>,
}

impl TdxCollateralItems {
    /// The four items, in a fixed order.
    pub fn items(&self) -> [&FetchedItem; 4] {
        [
            &self.tcb_info,
            &self.qe_identity,
            &self.pck_crl,
            &self.root_ca_crl,
        ]
    }
}

/// A PCK certificate from the local THIM agent (or a PCS-shaped answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PckCertResponse {
    /// The response as received; `der` is the PCK certificate and `issuer_chain_pem` its chain.
    pub item: FetchedItem,
    /// The PCK certificate, PEM, ending with a newline (THIM leaves it out, docs/formats.md §4.2).
    pub pck_cert_pem: String,
    pub pck_cert_der: Vec<u8>,
    /// The issuer chain as DER, in the order received (PCK CA, then root).
    pub chain_der: Vec<Vec<u8>>,
    /// `sgx-Tcbm` / `SGX-TCBm`, for diagnostics only: its PCESVN byte order is ambiguous
    /// (docs/formats.md §4.2).
    pub tcbm: Option<String>,
    /// `SGX-FMSPC` (PCS only).
    pub fmspc: Option<String>,
    /// `SGX-PCK-Certificate-CA-Type` (PCS only).
    pub ca_type: Option<String>,
    /// THIM's `cacheMaxAge`, else `Cache-Control: max-age`.
    pub cache_max_age_secs: Option<u64>,
}

/// Why Intel collateral could not be fetched. Every variant that concerns an item names it and
/// its URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntelFetchError {
    #[error("cannot fetch the {item} from {url}")]
    Fetch {
        item: CollateralKind,
        url: String,
        #[source]
        source: FetchError,
    },
    #[error("the {item} from {url} is not the expected JSON: {reason}")]
    MalformedJson {
        item: CollateralKind,
        url: String,
        reason: String,
    },
    #[error("the {item} from {url} is not the item asked for: {reason}")]
    WrongItem {
        item: CollateralKind,
        url: String,
        reason: String,
    },
    #[error("the {item} from {url} is not a usable CRL: {reason}")]
    MalformedCrl {
        item: CollateralKind,
        url: String,
        reason: String,
    },
    #[error("the {item} from {url} is not a usable PCK certificate answer: {reason}")]
    MalformedPckCert {
        item: CollateralKind,
        url: String,
        reason: String,
    },
    #[error("the {item} response from {url} has no issuer chain ({} header)", .headers.join(" or "))]
    MissingIssuerChain {
        item: CollateralKind,
        url: String,
        headers: Vec<String>,
    },
    #[error("the issuer chain of the {item} from {url} ({header}) is unusable: {reason}")]
    BadIssuerChain {
        item: CollateralKind,
        url: String,
        header: String,
        reason: String,
    },
    #[error("fetching the {item} from {url} stopped unexpectedly")]
    Worker { item: CollateralKind, url: String },
    #[error("cannot read the Azure location from IMDS {url}")]
    ImdsFetch {
        url: String,
        #[source]
        source: FetchError,
    },
    #[error("IMDS {url} gave no usable compute.location: {reason}")]
    ImdsLocation { url: String, reason: String },
    #[error("{location:?} is not an Azure region name usable in a THIM host name")]
    InvalidLocation { location: String },
    #[error("{} of the TDX collateral items failed: {}", .errors.len(), .errors.iter().map(error_chain).collect::<Vec<_>>().join("; "))]
    Several { errors: Vec<IntelFetchError> },
}

impl IntelFetchError {
    /// The item concerned, when there is exactly one.
    pub fn item(&self) -> Option<CollateralKind> {
        match self {
            Self::Fetch { item, .. }
            | Self::MalformedJson { item, .. }
            | Self::WrongItem { item, .. }
            | Self::MalformedCrl { item, .. }
            | Self::MalformedPckCert { item, .. }
            | Self::MissingIssuerChain { item, .. }
            | Self::BadIssuerChain { item, .. }
            | Self::Worker { item, .. } => Some(*item),
            _ => None,
        }
    }
}

/// The error and its sources, `: `-separated, for errors aggregated into one message.
fn error_chain(e: &IntelFetchError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What the four answers must match.
struct Expected<'a> {
    fmspc: &'a [u8; 6],
    ca: PckCa,
}

/// Fetches the TDX TCB info for `fmspc`, the TD QE identity, the PCK CRL of `ca` and the root CA
/// CRL from `cfg.service`, the four requests in parallel (each is a separate HTTP round trip with
/// its own retries, and together they would otherwise take four times as long). All four are
/// needed to verify a quote, so any failure fails the call; when several fail, the error lists
/// them all.
pub fn fetch_tdx_collateral(
    cfg: &IntelCollateralConfig,
    fetch: &(dyn Fetch + Sync),
    fmspc: &[u8; 6],
    ca: PckCa,
) -> Result<TdxCollateralItems, IntelFetchError> {
    let service = &cfg.service;
    let jobs = [
        (CollateralKind::TcbInfo, tcb_info_url(service, fmspc)),
        (CollateralKind::QeIdentity, qe_identity_url(service)),
        (CollateralKind::PckCrl, pck_crl_url(service, ca)),
        (CollateralKind::RootCaCrl, root_ca_crl_url(service)),
    ];
    let expected = Expected { fmspc, ca };
    let source = service.kind();
    let results: Vec<Result<FetchedItem, IntelFetchError>> = std::thread::scope(|scope| {
        let expected = &expected;
        let handles: Vec<_> = jobs
            .iter()
            .map(|(kind, url)| {
                let work = move || fetch_item(fetch, source, *kind, url, expected);
                // Without a thread (resource exhaustion) the item is fetched in this one: slower,
                // but not a failure.
                let spawned = std::thread::Builder::new()
                    .name(format!("intel-{}", kind.as_str()))
                    .spawn_scoped(scope, work);
                (*kind, url, spawned)
            })
            .collect();
        handles
            .into_iter()
            .map(|(kind, url, spawned)| match spawned {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(IntelFetchError::Worker {
                        item: kind,
                        url: url.clone(),
                    })
                }),
                Err(_) => fetch_item(fetch, source, kind, url, expected),
            })
            .collect()
    });

    let mut items = Vec::with_capacity(4);
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(item) => items.push(item),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == 1 {
        if let Some(e) = errors.pop() {
            return Err(e);
        }
    }
    if !errors.is_empty() {
        return Err(IntelFetchError::Several { errors });
    }
    let [tcb_info, qe_identity, pck_crl, root_ca_crl]: [FetchedItem; 4] = match items.try_into() {
        Ok(four) => four,
        // Four jobs and no error give four items.
        Err(_) => {
            return Err(IntelFetchError::Worker {
                item: CollateralKind::TcbInfo,
                url: tcb_info_url(service, fmspc),
            });
        }
    };
    let mut log = vec![format!(
        "intel collateral: {service} ({})",
        cfg.source_of_each_setting.service
    )];
    for item in [&tcb_info, &qe_identity, &pck_crl, &root_ca_crl] {
        log.push(log_line(item));
    }
    Ok(TdxCollateralItems {
        tcb_info,
        qe_identity,
        pck_crl,
        root_ca_crl,
        log,
    })
}

fn log_line(item: &FetchedItem) -> String {
    format!(
        "{}: {} from {} ({} attempt(s), {}, next update {}, cache-control {})",
        item.kind.as_str(),
        item.source,
        item.url,
        item.attempts,
        item.body_encoding,
        item.next_update.as_deref().unwrap_or("none"),
        item.cache_control.as_deref().unwrap_or("none"),
    )
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    format_unix(secs)
}

fn fetch_item(
    fetch: &(dyn Fetch + Sync),
    source: ServiceKind,
    kind: CollateralKind,
    url: &str,
    expected: &Expected<'_>,
) -> Result<FetchedItem, IntelFetchError> {
    let response = fetch
        .get(url, &[])
        .map_err(|source| IntelFetchError::Fetch {
            item: kind,
            url: url.to_owned(),
            source,
        })?;
    let (body_encoding, der, next_update) = match kind {
        CollateralKind::TcbInfo | CollateralKind::QeIdentity => {
            let next_update = check_json(kind, url, &response.body, expected)?;
            (BodyEncoding::Json, None, next_update)
        }
        _ => {
            let crl = check_crl(kind, url, &response.body, expected)?;
            (crl.encoding, Some(crl.der), crl.next_update)
        }
    };
    // A root CA CRL from Intel's distribution point comes without headers: the root signs it.
    let chain_required = kind != CollateralKind::RootCaCrl;
    let chain = issuer_chain(kind, url, &response, chain_required)?;
    let (issuer_chain_header, issuer_chain_pem) = chain.unzip();
    let cache_control = response.header("cache-control").map(str::to_owned);
    Ok(FetchedItem {
        kind,
        source,
        url: url.to_owned(),
        body: response.body,
        body_encoding,
        der,
        retrieved_at: rfc3339(response.fetched_at),
        attempts: response.attempts,
        cache_control,
        next_update,
        issuer_chain_pem,
        issuer_chain_header,
    })
}

/// Checks a TCB info or QE identity body; returns its `nextUpdate`.
fn check_json(
    kind: CollateralKind,
    url: &str,
    body: &[u8],
    expected: &Expected<'_>,
) -> Result<Option<String>, IntelFetchError> {
    let malformed = |reason: String| IntelFetchError::MalformedJson {
        item: kind,
        url: url.to_owned(),
        reason,
    };
    let wrong = |reason: String| IntelFetchError::WrongItem {
        item: kind,
        url: url.to_owned(),
        reason,
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    let (key, want_id) = if kind == CollateralKind::TcbInfo {
        ("tcbInfo", "TDX")
    } else {
        ("enclaveIdentity", "TD_QE")
    };
    let Some(inner) = value.get(key).and_then(Value::as_object) else {
        return Err(malformed(format!("no {key} object")));
    };
    if !value.get("signature").is_some_and(Value::is_string) {
        return Err(malformed("no signature string".into()));
    }
    match inner.get("id").and_then(Value::as_str) {
        Some(id) if id == want_id => {}
        Some(id) => return Err(wrong(format!("{key}.id is {id:?}, not {want_id:?}"))),
        None => return Err(malformed(format!("no {key}.id"))),
    }
    if kind == CollateralKind::TcbInfo {
        let want = hex::encode_upper(expected.fmspc);
        match inner.get("fmspc").and_then(Value::as_str) {
            Some(f) if f.eq_ignore_ascii_case(&want) => {}
            Some(f) => return Err(wrong(format!("tcbInfo.fmspc is {f}, not {want}"))),
            None => return Err(malformed("no tcbInfo.fmspc".into())),
        }
    }
    Ok(inner
        .get("nextUpdate")
        .and_then(Value::as_str)
        .map(str::to_owned))
}

fn check_crl(
    kind: CollateralKind,
    url: &str,
    body: &[u8],
    expected: &Expected<'_>,
) -> Result<CrlInfo, IntelFetchError> {
    let crl = normalise_crl(body).map_err(|reason| IntelFetchError::MalformedCrl {
        item: kind,
        url: url.to_owned(),
        reason,
    })?;
    let want = if kind == CollateralKind::PckCrl {
        expected.ca.common_name()
    } else {
        ROOT_CA_COMMON_NAME
    };
    if crl.issuer_common_name.as_deref() != Some(want) {
        return Err(IntelFetchError::WrongItem {
            item: kind,
            url: url.to_owned(),
            reason: format!(
                "the CRL is issued by {:?}, not {want:?}",
                crl.issuer_common_name
                    .as_deref()
                    .unwrap_or("(no common name)")
            ),
        });
    }
    Ok(crl)
}

/// The percent-decoded issuer chain of `response`, with the header that carried it.
fn issuer_chain(
    kind: CollateralKind,
    url: &str,
    response: &HttpResponse,
    required: bool,
) -> Result<Option<(String, String)>, IntelFetchError> {
    let headers = kind.issuer_chain_headers();
    let found = headers
        .iter()
        .find_map(|name| response.header(name).map(|value| (*name, value)));
    let Some((header, encoded)) = found else {
        if required {
            return Err(IntelFetchError::MissingIssuerChain {
                item: kind,
                url: url.to_owned(),
                headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            });
        }
        return Ok(None);
    };
    let pem = decode_chain(kind, url, header, encoded)?;
    Ok(Some((header.to_owned(), pem)))
}

/// Percent-decodes an issuer chain and checks that it is a non-empty list of certificates.
fn decode_chain(
    kind: CollateralKind,
    url: &str,
    header: &str,
    encoded: &str,
) -> Result<String, IntelFetchError> {
    let bad = |reason: String| IntelFetchError::BadIssuerChain {
        item: kind,
        url: url.to_owned(),
        header: header.to_owned(),
        reason,
    };
    let pem = percent_decode(encoded).map_err(|e| bad(e.to_string()))?;
    let ders = pem_certificates(&pem).map_err(|e| bad(e.to_string()))?;
    if ders.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    for (i, der) in ders.iter().enumerate() {
        X509Certificate::from_der(der)
            .map_err(|e| bad(format!("certificate {i} does not parse: {e}")))?;
    }
    Ok(pem)
}

/// Fetches the PCK certificate for `id` from the local THIM agent, `{local_pck_url}pckcert`,
/// with `Metadata: true` and `api-version=2021-07-22-preview` plus the configured
/// `custom_request_options.get_cert` (docs/formats.md §4.1–4.2 [V]).
///
/// `fetch` must be a client without a proxy ([`crate::http::HttpConfig::use_proxy_env`] false),
/// as IMDS requires (docs/formats.md §2 [V]). The answer may be THIM's JSON (`pckCert`,
/// percent-encoded `sgx-Pck-Certificate-Issuer-Chain`, `sgx-Tcbm`, `cacheMaxAge`) or PCS's PEM
/// body with headers; QCNL accepts both (docs/formats.md §4.2 [V]) and so does this.
pub fn fetch_pck_cert(
    cfg: &IntelCollateralConfig,
    fetch: &dyn Fetch,
    id: &PckCertId,
) -> Result<PckCertResponse, IntelFetchError> {
    let options = &cfg.custom_request_options.get_cert;
    let url = pck_cert_url(&cfg.local_pck_url, id, &options.params);
    // IMDS rejects a request without `Metadata: true` (docs/formats.md §2 [V]); a configured
    // header may add to it but not replace it.
    let mut headers: Vec<(&str, &str)> = vec![("Metadata", "true")];
    headers.extend(
        options
            .headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("metadata"))
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    let response = fetch
        .get(&url, &headers)
        .map_err(|source| IntelFetchError::Fetch {
            item: CollateralKind::PckCert,
            url: url.clone(),
            source,
        })?;
    parse_pck_cert_response(&url, response)
}

/// The fields of a PCK certificate answer, in THIM's JSON form or PCS's PEM-and-headers form.
struct RawPckAnswer {
    encoding: BodyEncoding,
    pem: String,
    chain_header: &'static str,
    encoded_chain: String,
    tcbm: Option<String>,
    fmspc: Option<String>,
    ca_type: Option<String>,
    cache_max_age: Option<u64>,
}

fn parse_pck_cert_response(
    url: &str,
    response: HttpResponse,
) -> Result<PckCertResponse, IntelFetchError> {
    let kind = CollateralKind::PckCert;
    let malformed = |reason: String| IntelFetchError::MalformedPckCert {
        item: kind,
        url: url.to_owned(),
        reason,
    };
    let max_age_header = response
        .header("cache-control")
        .and_then(crate::http::cache_max_age);
    let header = |name: &str| response.header(name).map(str::to_owned);
    let raw = if response.body.trim_ascii_start().starts_with(b"{") {
        let value: Value =
            serde_json::from_slice(&response.body).map_err(|e| malformed(e.to_string()))?;
        let field = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        // `cacheMaxAge` is parsed with `stoi` by DC, so a string or a number
        // (docs/formats.md §4.2 [U]).
        let cache = match value.get("cacheMaxAge") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        RawPckAnswer {
            encoding: BodyEncoding::Json,
            pem: field("pckCert").ok_or_else(|| malformed("no pckCert string".into()))?,
            chain_header: THIM_PCK_CHAIN_KEY,
            encoded_chain: field(THIM_PCK_CHAIN_KEY)
                .ok_or_else(|| malformed(format!("no {THIM_PCK_CHAIN_KEY} string")))?,
            tcbm: field("sgx-Tcbm"),
            fmspc: None,
            ca_type: None,
            cache_max_age: cache.or(max_age_header),
        }
    } else {
        let pem = std::str::from_utf8(&response.body)
            .map_err(|_| malformed("the body is neither JSON nor PEM text".into()))?;
        RawPckAnswer {
            encoding: BodyEncoding::Pem,
            pem: pem.to_owned(),
            chain_header: PCK_CERT_ISSUER_CHAIN,
            encoded_chain: header(PCK_CERT_ISSUER_CHAIN).ok_or_else(|| {
                IntelFetchError::MissingIssuerChain {
                    item: kind,
                    url: url.to_owned(),
                    headers: vec![PCK_CERT_ISSUER_CHAIN.to_owned()],
                }
            })?,
            tcbm: header("SGX-TCBm"),
            fmspc: header("SGX-FMSPC"),
            ca_type: header("SGX-PCK-Certificate-CA-Type"),
            cache_max_age: max_age_header,
        }
    };
    let RawPckAnswer {
        encoding,
        pem,
        chain_header,
        encoded_chain,
        tcbm,
        fmspc,
        ca_type,
        cache_max_age,
    } = raw;
    let ders = pem_certificates(&pem).map_err(|e| malformed(format!("pckCert: {e}")))?;
    let [pck_cert_der] = <[Vec<u8>; 1]>::try_from(ders).map_err(|ders| {
        malformed(format!(
            "pckCert holds {} certificates, not one",
            ders.len()
        ))
    })?;
    X509Certificate::from_der(&pck_cert_der)
        .map_err(|e| malformed(format!("pckCert does not parse: {e}")))?;
    let chain_pem = decode_chain(kind, url, chain_header, &encoded_chain)?;
    let chain_der = pem_certificates(&chain_pem).map_err(|e| malformed(e.to_string()))?;
    let mut pck_cert_pem = pem;
    // DC appends the newline THIM leaves out, so that certificate and chain concatenate.
    if !pck_cert_pem.ends_with('\n') {
        pck_cert_pem.push('\n');
    }
    let item = FetchedItem {
        kind,
        source: ServiceKind::LocalThim,
        url: url.to_owned(),
        retrieved_at: rfc3339(response.fetched_at),
        attempts: response.attempts,
        cache_control: response.header("cache-control").map(str::to_owned),
        body: response.body,
        body_encoding: encoding,
        der: Some(pck_cert_der.clone()),
        next_update: None,
        issuer_chain_pem: Some(chain_pem),
        issuer_chain_header: Some(chain_header.to_owned()),
    };
    Ok(PckCertResponse {
        item,
        pck_cert_pem,
        pck_cert_der,
        chain_der,
        tcbm,
        fmspc,
        ca_type,
        cache_max_age_secs: cache_max_age,
    })
}

/// Reads the VM's Azure region from IMDS instance metadata (`compute.location`, DC [V]), for
/// [`regional_thim_base`].
pub fn fetch_imds_location(fetch: &dyn Fetch, imds_base: &str) -> Result<String, IntelFetchError> {
    let url = imds_instance_url(imds_base);
    let response =
        fetch
            .get(&url, &[("Metadata", "true")])
            .map_err(|source| IntelFetchError::ImdsFetch {
                url: url.clone(),
                source,
            })?;
    let bad = |reason: String| IntelFetchError::ImdsLocation {
        url: url.clone(),
        reason,
    };
    let value: Value = serde_json::from_slice(&response.body).map_err(|e| bad(e.to_string()))?;
    value
        .pointer("/compute/location")
        .and_then(Value::as_str)
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| bad("no compute.location string".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FMSPC: [u8; 6] = [0xb0, 0xc0, 0x6f, 0, 0, 0];

    #[test]
    fn percent_decoding_of_a_captured_pcs_header() {
        // Pieces of a real PCS issuer-chain header (GT's captured headers, docs/formats.md §4.4):
        // its start, a certificate boundary and its end.
        let head = "-----BEGIN%20CERTIFICATE-----%0AMIICljCCAj2gAwIBAgIVAJVvXc29G%2BHpQEnJ1PQzzgFXC95UMAoGCCqGSM49BAMC%0A";
        assert_eq!(
            percent_decode(head).unwrap(),
            "-----BEGIN CERTIFICATE-----\nMIICljCCAj2gAwIBAgIVAJVvXc29G+HpQEnJ1PQzzgFXC95UMAoGCCqGSM49BAMC\n"
        );
        let tail = "%0A-----END%20CERTIFICATE-----%0A-----BEGIN%20CERTIFICATE-----%0AMIICjzCC";
        assert_eq!(
            percent_decode(tail).unwrap(),
            "\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIICjzCC"
        );
        assert_eq!(
            percent_decode("qI%3D%0A-----END%20CERTIFICATE-----%0A").unwrap(),
            "qI=\n-----END CERTIFICATE-----\n"
        );
        // `+` is a base64 character here, not a space; lower-case escapes are valid.
        assert_eq!(percent_decode("a+b%2fc%2Bd").unwrap(), "a+b/c+d");
        assert_eq!(percent_decode("plain").unwrap(), "plain");
    }

    #[test]
    fn percent_decoding_rejects_bad_escapes() {
        assert_eq!(
            percent_decode("abc%2"),
            Err(PercentDecodeError::BadEscape { offset: 3 })
        );
        assert_eq!(
            percent_decode("%zz"),
            Err(PercentDecodeError::BadEscape { offset: 0 })
        );
        assert_eq!(percent_decode("%FF%FE"), Err(PercentDecodeError::NotUtf8));
    }

    #[test]
    fn percent_encoding_matches_pcs_and_round_trips() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIC+/x=\n-----END CERTIFICATE-----\n";
        let encoded = percent_encode(pem);
        assert_eq!(
            encoded,
            "-----BEGIN%20CERTIFICATE-----%0AMIIC%2B%2Fx%3D%0A-----END%20CERTIFICATE-----%0A"
        );
        assert_eq!(percent_decode(&encoded).unwrap(), pem);
    }

    #[test]
    fn pcs_urls() {
        let pcs = CollateralService::pcs("https://pcs.example/");
        assert_eq!(
            tcb_info_url(&pcs, &FMSPC),
            "https://pcs.example/tdx/certification/v4/tcb?fmspc=B0C06F000000"
        );
        assert_eq!(
            qe_identity_url(&pcs),
            "https://pcs.example/tdx/certification/v4/qe/identity"
        );
        assert_eq!(
            pck_crl_url(&pcs, PckCa::Platform),
            "https://pcs.example/sgx/certification/v4/pckcrl?ca=platform&encoding=der"
        );
        assert_eq!(root_ca_crl_url(&pcs), DEFAULT_PCS_ROOT_CA_CRL_URL);
    }

    #[test]
    fn thim_urls() {
        let thim = CollateralService::thim("https://useast.thim.azure.net");
        assert_eq!(
            tcb_info_url(&thim, &FMSPC),
            "https://useast.thim.azure.net/tdx/certification/v4/tcb?fmspc=b0c06f000000&clientid=production_client&api-version=2018-10-01-preview"
        );
        assert_eq!(
            qe_identity_url(&thim),
            "https://useast.thim.azure.net/tdx/certification/v4/qe/identity?clientid=production_client&api-version=2018-10-01-preview"
        );
        assert_eq!(
            pck_crl_url(&thim, PckCa::Processor),
            "https://useast.thim.azure.net/sgx/certification/v4/pckcrl?ca=processor&clientid=production_client"
        );
        assert_eq!(
            root_ca_crl_url(&thim),
            "https://useast.thim.azure.net/sgx/certification/v4/rootcacrl?clientid=production_client"
        );
    }

    /// Splits a URL into path and query, as a server sees it.
    fn target(url: &str) -> (String, Option<String>) {
        let rest = url.split_once("://").unwrap().1;
        let path_and_query = &rest[rest.find('/').unwrap()..];
        match path_and_query.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (path_and_query.to_owned(), None),
        }
    }

    #[test]
    fn collateral_urls_parse_back() {
        for service in [
            CollateralService::pcs("http://127.0.0.1:1"),
            CollateralService::thim("http://127.0.0.1:1"),
        ] {
            for ca in [PckCa::Processor, PckCa::Platform] {
                let cases = [
                    (tcb_info_url(&service, &FMSPC), CollateralKind::TcbInfo),
                    (qe_identity_url(&service), CollateralKind::QeIdentity),
                    (pck_crl_url(&service, ca), CollateralKind::PckCrl),
                    (root_ca_crl_url(&service), CollateralKind::RootCaCrl),
                ];
                for (url, kind) in cases {
                    let (path, query) = target(&url);
                    let t = parse_collateral_target(&path, query.as_deref()).unwrap();
                    assert_eq!(t.kind, kind, "{url}");
                    assert_eq!(t.shape, service.kind(), "{url}");
                    match kind {
                        CollateralKind::TcbInfo => assert_eq!(t.fmspc, Some(FMSPC)),
                        CollateralKind::PckCrl => assert_eq!(t.ca, Some(ca)),
                        _ => assert_eq!((t.fmspc, t.ca), (None, None)),
                    }
                }
            }
        }
    }

    #[test]
    fn collateral_target_errors() {
        let p = parse_collateral_target;
        assert!(matches!(
            p("/tdx/certification/v4/tcb", None),
            Err(TargetError::MissingParameter { name: "fmspc" })
        ));
        assert!(matches!(
            p("/tdx/certification/v4/tcb", Some("fmspc=XYZ")),
            Err(TargetError::InvalidParameter { .. })
        ));
        assert!(matches!(
            p("/sgx/certification/v4/pckcrl", Some("ca=other")),
            Err(TargetError::InvalidParameter { .. })
        ));
        assert!(matches!(
            p(
                "/sgx/certification/v4/pckcrl",
                Some("ca=platform&ca=processor")
            ),
            Err(TargetError::DuplicateParameter { .. })
        ));
        assert!(matches!(
            p("/sgx/certification/v4/tcb", Some("fmspc=B0C06F000000")),
            Err(TargetError::UnknownPath { .. })
        ));
    }

    fn pck_id(ppid: Option<Vec<u8>>) -> PckCertId {
        PckCertId {
            qe_id: [0xab; 16],
            cpu_svn: [0x01; 16],
            pce_svn: 0x000d,
            pce_id: 0x0000,
            encrypted_ppid: ppid,
        }
    }

    #[test]
    fn pck_cert_url_shape_and_inverse() {
        let local = default_local_pck_url("http://169.254.169.254");
        assert_eq!(
            local,
            "http://169.254.169.254/metadata/THIM/sgx/certification/v4/"
        );
        let url = pck_cert_url(&local, &pck_id(None), &[]);
        assert_eq!(
            url,
            format!(
                "http://169.254.169.254{THIM_PCKCERT_PATH}?qeid={}&cpusvn={}&pcesvn=0D00&pceid=0000&api-version=2021-07-22-preview",
                "AB".repeat(16),
                "01".repeat(16)
            )
        );
        let (path, query) = target(&url);
        let parsed = parse_pck_cert_target(&path, query.as_deref()).unwrap();
        assert_eq!(parsed.id, pck_id(None));
        assert_eq!(parsed.param("api-version"), Some(THIM_PCKCERT_API_VERSION));

        let with_ppid = pck_cert_url(&local, &pck_id(Some(vec![0x5a; 384])), &[]);
        let (path, query) = target(&with_ppid);
        let parsed = parse_pck_cert_target(&path, query.as_deref()).unwrap();
        assert_eq!(parsed.id.encrypted_ppid, Some(vec![0x5a; 384]));
        assert!(with_ppid.contains("&encrypted_ppid=5A5A"));
        // An empty PPID is left out rather than sent empty.
        assert!(!pck_cert_url(&local, &pck_id(Some(Vec::new())), &[]).contains("encrypted_ppid"));
    }

    #[test]
    fn extra_pck_params_replace_rather_than_repeat() {
        let extra = vec![
            ("api-version".to_owned(), "2021-07-22-preview".to_owned()),
            ("region".to_owned(), "x".to_owned()),
        ];
        let url = pck_cert_url("http://127.0.0.1/v4/", &pck_id(None), &extra);
        assert_eq!(url.matches("api-version=").count(), 1);
        assert!(url.ends_with("&api-version=2021-07-22-preview&region=x"));
        let (_, query) = target(&url);
        assert!(parse_query(query.as_deref()).is_ok());
    }

    #[test]
    fn regional_thim() {
        assert_eq!(
            regional_thim_base("EastUS2").unwrap(),
            "https://eastus2.thim.azure.net"
        );
        assert_eq!(
            parse_regional_thim_base("https://eastus2.thim.azure.net/").as_deref(),
            Some("eastus2")
        );
        assert_eq!(parse_regional_thim_base(DEFAULT_THIM_BASE), None);
        for bad in ["", "evil.com/x", "a b", "-x", "x.y"] {
            assert!(
                matches!(
                    regional_thim_base(bad),
                    Err(IntelFetchError::InvalidLocation { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn crl_sniffing_rejects_garbage() {
        assert!(normalise_crl(b"").is_err());
        assert!(normalise_crl(b"not a crl").is_err());
        assert!(normalise_crl(b"abcd").is_err());
        let err = normalise_crl(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .unwrap_err();
        assert!(err.contains("CERTIFICATE"), "{err}");
    }

    #[test]
    fn qcnl_json_with_comments_and_trailing_commas() {
        let text = r#"{
  // pccs_url is "quoted" here: // is not a comment inside a string
  "pccs_url": "https://pccs.example:8081/sgx/certification/v4/", /* block
  comment */ "retry_times": 2,
  "local_pck_url": "http://10.0.0.1//path",
  "custom_request_options": { "get_cert": { "headers": { "metadata": "true", }, }, },
}"#;
        let c = qcnl::parse(text).unwrap();
        assert_eq!(c.format, qcnl::QcnlFormat::Json);
        assert_eq!(
            c.pccs_url.as_deref(),
            Some("https://pccs.example:8081/sgx/certification/v4/")
        );
        assert_eq!(c.local_pck_url.as_deref(), Some("http://10.0.0.1//path"));
        assert_eq!(c.retry_times, Some(2));
        let options = c.custom_request_options.unwrap();
        assert_eq!(
            options.get_cert.headers,
            vec![("metadata".to_owned(), "true".to_owned())]
        );
    }

    #[test]
    fn qcnl_errors_point_at_the_line() {
        // The missing comma of QC's own sgx_default_qcnl_intelpcs.conf sample.
        let text = "{\n  // c\n  \"pccs_url\": \"x\"\n  \"retry_times\": 6\n}\n";
        match qcnl::parse(text) {
            Err(qcnl::QcnlError::Json { line, .. }) => assert_eq!(line, 4),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            qcnl::parse("{ /* open"),
            Err(qcnl::QcnlError::UnterminatedComment { line: 1 })
        ));
    }

    #[test]
    fn qcnl_conf_path() {
        use std::ffi::OsStr;
        assert_eq!(
            qcnl::conf_path(None),
            std::path::PathBuf::from(DEFAULT_QCNL_CONF_PATH)
        );
        assert_eq!(
            qcnl::conf_path(Some(OsStr::new(""))),
            std::path::PathBuf::from(DEFAULT_QCNL_CONF_PATH)
        );
        assert_eq!(
            qcnl::conf_path(Some(OsStr::new("/tmp/q.conf"))),
            std::path::PathBuf::from("/tmp/q.conf")
        );
    }

    #[test]
    fn qcnl_url_classification() {
        let mut notes = Vec::new();
        assert_eq!(
            service_from_qcnl_url(
                "collateral_service",
                "https://api.trustedservices.intel.com/sgx/certification/v4/",
                &mut notes
            ),
            CollateralService::pcs("https://api.trustedservices.intel.com")
        );
        assert_eq!(
            service_from_qcnl_url(
                "pccs_url",
                "https://global.acccache.azure.net/sgx/certification/v3/",
                &mut notes
            ),
            CollateralService::thim("https://global.acccache.azure.net")
        );
        assert!(notes.iter().any(|n| n.contains("API v3")));
        let pccs = service_from_qcnl_url(
            "pccs_url",
            "https://localhost:8081/sgx/certification/v4/",
            &mut notes,
        );
        assert_eq!(
            pccs,
            CollateralService::Pcs {
                base: "https://localhost:8081".into(),
                root_ca_crl_url: "https://localhost:8081/sgx/certification/v4/rootcacrl".into(),
            }
        );
    }

    #[test]
    fn retry_maps_onto_the_http_config() {
        let mut cfg = IntelCollateralConfig::default();
        let base = HttpConfig::default();
        assert_eq!(cfg.http_config(&base), base);
        cfg.retry = Some(Retry {
            times: 6,
            delay: Duration::from_secs(5),
        });
        let c = cfg.http_config(&base);
        assert_eq!(c.max_attempts, 7);
        assert_eq!(c.backoff_base, Duration::from_secs(5));
        assert_eq!(c.max_backoff, Duration::from_secs(5));
        assert_eq!(c.deadline, base.deadline);
        cfg.retry = Some(Retry {
            times: 0,
            delay: Duration::ZERO,
        });
        let c = cfg.http_config(&base);
        assert_eq!(c.max_attempts, 1);
        assert_eq!(c.backoff_base, base.backoff_base);
    }
}
