// SPDX-License-Identifier: Apache-2.0
//! Where Intel's TDX collateral lives: the URLs of the TCB info, the QE identity, the PCK CRL and
//! the root CA CRL at Azure THIM and at Intel PCS (or a PCCS), of the local THIM PCK certificate
//! agent behind IMDS, and their inverse parsers, which the emulator in `thimble-sim` uses so that
//! a URL thimble should not build is refused there. Also the percent encoding of the issuer-chain
//! headers, and the reading of a QCNL service URL. Pure string work: fetching lives in
//! `thimble-collect`'s `intel` module.
//!
//! The URLs encode docs/formats.md §4.1–4.3. THIM and PCS name the same items differently, so both
//! shapes are built. Facts are tagged as in docs/formats.md §1: \[V\] read in source or a capture,
//! \[O\] seen in third-party clients, \[U\] unverified.

use std::fmt;
use std::str::FromStr;

/// The CA that issued the PCK certificate, which selects the PCK CRL: the PCK certificate's own
/// [`PckCaType`](super::PckCaType), under the name the PCS API gives the `ca=` parameter.
pub use super::pck::PckCaType as PckCa;

/// Azure's global collateral cache, thimble's default collateral service (docs/formats.md §4.1
/// \[V\]). Serving TDX items under `/tdx/` on this host is \[O\] (AZS `FmspcResolver`); DC uses the
/// regional host for TDX ([`regional_thim_base`]).
pub const DEFAULT_THIM_BASE: &str = "https://global.acccache.azure.net";
/// Intel PCS (docs/formats.md §4.1 \[V\]).
pub const DEFAULT_PCS_BASE: &str = "https://api.trustedservices.intel.com";
/// The Intel SGX Root CA CRL at its distribution point, DER. PCS v4 has no endpoint of its own
/// for it; QC fetches the CDP URL when the collateral service is PCS (docs/formats.md §4.3 \[V\]).
pub const DEFAULT_PCS_ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";
/// Path of [`DEFAULT_PCS_ROOT_CA_CRL_URL`], recognised by [`parse_collateral_target`].
pub const PCS_ROOT_CA_CRL_PATH: &str = "/IntelSGXRootCA.der";

/// `clientid` THIM collateral URLs carry (DC default, docs/formats.md §4.3 \[V\]).
pub const THIM_CLIENT_ID: &str = "production_client";
/// `api-version` of THIM TCB info and QE identity URLs (DC, docs/formats.md §4.3 \[V\]).
pub const THIM_COLLATERAL_API_VERSION: &str = "2018-10-01-preview";
/// `api-version` of the local THIM `pckcert` request (DC, QC Azure conf, docs/formats.md §4.2 \[V\]).
pub const THIM_PCKCERT_API_VERSION: &str = "2021-07-22-preview";
/// Directory of the local THIM PCK certificate endpoint below the IMDS base; QC's `local_pck_url`
/// names it with the trailing slash (docs/formats.md §4.1 \[V\]).
pub const THIM_PCKCERT_DIR: &str = "/metadata/THIM/sgx/certification/v4/";
/// Path of the local THIM PCK certificate endpoint below the IMDS base.
pub const THIM_PCKCERT_PATH: &str = "/metadata/THIM/sgx/certification/v4/pckcert";
/// IMDS instance metadata, whose `compute.location` names the THIM region (DC,
/// docs/formats.md §4.1 \[V\]).
pub const IMDS_INSTANCE_PATH: &str = "/metadata/instance";
/// `api-version` DC asks IMDS instance metadata with (docs/formats.md §4.1 \[V\]).
pub const IMDS_INSTANCE_API_VERSION: &str = "2021-02-01";

/// Issuer chain of TCB info, API v4 (docs/formats.md §4.4 \[V\]).
pub const TCB_INFO_ISSUER_CHAIN: &str = "TCB-Info-Issuer-Chain";
/// Issuer chain of TCB info, API v3; DC and QC accept both names (docs/formats.md §4.4 \[V\]).
pub const SGX_TCB_INFO_ISSUER_CHAIN: &str = "SGX-TCB-Info-Issuer-Chain";
/// Issuer chain of enclave (QE) identities, API v2 and later (docs/formats.md §4.4 \[V\]).
pub const ENCLAVE_IDENTITY_ISSUER_CHAIN: &str = "SGX-Enclave-Identity-Issuer-Chain";
/// Issuer chain of QE identity, API v1 (docs/formats.md §4.4 \[V\]).
pub const QE_IDENTITY_ISSUER_CHAIN: &str = "SGX-QE-Identity-Issuer-Chain";
/// Issuer chain of the PCK CRL, and of the root CA CRL in DC's THIM fetch (docs/formats.md §4.4
/// \[V\]).
pub const PCK_CRL_ISSUER_CHAIN: &str = "SGX-PCK-CRL-Issuer-Chain";
/// Issuer chain of a PCK certificate: a PCS header, or a key of THIM's JSON body
/// (docs/formats.md §4.2 \[V\]).
pub const PCK_CERT_ISSUER_CHAIN: &str = "SGX-PCK-Certificate-Issuer-Chain";

const SGX_V4: &str = "/sgx/certification/v4";
const TDX_V4: &str = "/tdx/certification/v4";

/// Key of the percent-encoded issuer chain in THIM's `pckcert` JSON; case-sensitive
/// (docs/formats.md §4.2 \[V\]).
pub const THIM_PCK_CHAIN_KEY: &str = "sgx-Pck-Certificate-Issuer-Chain";

/// One piece of Intel collateral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CollateralKind {
    /// The TDX TCB info of a platform (FMSPC), signed by Intel SGX TCB Signing.
    TcbInfo,
    /// The identity of the TD quoting enclave, signed by Intel SGX TCB Signing.
    QeIdentity,
    /// The CRL of the CA that issued the PCK certificate.
    PckCrl,
    /// The CRL of the Intel SGX Root CA.
    RootCaCrl,
    /// The platform's PCK certificate (from the local THIM agent).
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

impl PckCa {
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

/// The `ca=` value of a PCK CRL request was neither `processor` nor `platform`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a PCK CA name (processor or platform)")]
pub struct UnknownPckCa;

impl FromStr for PckCa {
    type Err = UnknownPckCa;

    fn from_str(s: &str) -> Result<Self, UnknownPckCa> {
        if s.eq_ignore_ascii_case("processor") {
            Ok(Self::Processor)
        } else if s.eq_ignore_ascii_case("platform") {
            Ok(Self::Platform)
        } else {
            Err(UnknownPckCa)
        }
    }
}

/// Common name of the Intel SGX Root CA, the issuer of the root CA CRL.
pub const ROOT_CA_COMMON_NAME: &str = "Intel SGX Root CA";

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
    /// Stable machine name, the `origin.kind` of the bundle's endorsements.
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
    Thim {
        /// Scheme and host (and port).
        base: String,
    },
    /// Intel PCS (or a PCCS) at `base`, with the root CA CRL fetched from `root_ca_crl_url`.
    Pcs {
        /// Scheme and host (and port).
        base: String,
        /// Where the root CA CRL comes from: Intel's distribution point for PCS itself, the
        /// `rootcacrl` endpoint for a PCCS.
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
/// api-version=2018-10-01-preview` (DC \[V\]). PCS: `{base}/tdx/certification/v4/tcb?fmspc={HEX}`
/// (PCS spec \[V\]; QC writes upper case \[V\]); no `update=`, so PCS answers with its `standard`
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
/// `api-version` (DC \[V\]); PCS takes no parameters (PCS spec \[V\]).
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
/// \[V\]); its body encoding is \[U\], see [`crate::crl::Crl::parse`]. PCS: `…/pckcrl?ca={ca}&encoding=der`
/// (PCS spec, QC \[V\]).
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
/// production_client` (DC \[V\]; body encoding \[U\]: PCCS's `rootcacrl` returns hex \[V QC\]). PCS:
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
    /// CPUSVN of the platform's TCB.
    pub cpu_svn: [u8; 16],
    /// PCESVN of the platform's TCB.
    pub pce_svn: u16,
    /// PCE ID.
    pub pce_id: u16,
    /// Encrypted PPID (384 bytes with RSA-3072); omitted from the URL when `None` or empty.
    pub encrypted_ppid: Option<Vec<u8>>,
}

/// `{local_pck_url}pckcert?qeid=…[&encrypted_ppid=…]&cpusvn=…&pcesvn=…&pceid=…&api-version=
/// 2021-07-22-preview`, then `extra_params` (QCNL's `custom_request_options.get_cert.params`).
///
/// Follows QC's request (docs/formats.md §4.2 \[V\]): upper-case hex, and `pcesvn` / `pceid` as
/// little-endian hex as the PCS spec says \[V\] and FX sends to THIM \[O\]; whether THIM also
/// accepts DC's big-endian form is \[U\]. An empty encrypted PPID is left out as DC and FX do,
/// where QC would send 384 zero bytes. An extra parameter named like a built-in one replaces its
/// value instead of repeating it, because IMDS rejects duplicate query parameters
/// (docs/formats.md §2 \[V\]).
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
/// (docs/formats.md §4.1 \[V DC\]). IMDS names regions like `eastus2` while third-party code uses
/// hosts like `useast2`; which form THIM resolves is \[U\].
pub fn regional_thim_base(location: &str) -> Result<String, InvalidRegion> {
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
        Err(InvalidRegion {
            location: location.to_owned(),
        })
    }
}

/// An IMDS `compute.location` that cannot be a host label of a regional THIM URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location:?} is not an Azure region name usable in a THIM host name")]
pub struct InvalidRegion {
    /// The location as IMDS gave it.
    pub location: String,
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
    /// The item asked for.
    pub kind: CollateralKind,
    /// THIM when the query carries `clientid` or the path is THIM's `rootcacrl`, else PCS.
    pub shape: ServiceKind,
    /// The FMSPC of a TCB info request.
    pub fmspc: Option<[u8; 6]>,
    /// The CA of a PCK CRL request.
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
    /// The platform identity the request names.
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
    /// No item lives at this path.
    #[error("no Intel collateral endpoint at {path}")]
    UnknownPath {
        /// The request's path.
        path: String,
    },
    /// A parameter the item needs is absent.
    #[error("query parameter {name} is missing")]
    MissingParameter {
        /// Its name.
        name: &'static str,
    },
    /// A parameter does not hold a value thimble would send.
    #[error("query parameter {name} has the invalid value {value:?}")]
    InvalidParameter {
        /// Its name.
        name: String,
        /// Its value, as received.
        value: String,
    },
    /// A parameter is repeated, which IMDS refuses.
    #[error("query parameter {name} appears more than once")]
    DuplicateParameter {
        /// Its name.
        name: String,
    },
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Splits a query into `(name, value)` pairs, in order and not percent-decoded. A repeated name
/// is an error, as IMDS treats it (docs/formats.md §2 \[V\]).
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
                let ca = value.parse().map_err(|_| invalid("ca", value))?;
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
    /// A `%` not followed by two hex digits.
    #[error("invalid percent escape at byte {offset}")]
    BadEscape {
        /// Byte offset of the `%`.
        offset: usize,
    },
    /// The decoded bytes are not text.
    #[error("the decoded bytes are not UTF-8")]
    NotUtf8,
}

/// Plain percent-decoding (RFC 3986), as DC's `curl_easy_unescape` does: `%XX` becomes the byte
/// `0xXX` and everything else, `+` included, stays as it is. Form decoding (`+` as space) would
/// corrupt the base64 of the certificates (docs/formats.md §4.4 \[V\]).
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
/// docs/formats.md §4.4 \[V\]). The emulator uses it; [`percent_decode`] inverts it.
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

/// The service a QCNL URL (`https://host/sgx/certification/v4/`) names.
impl CollateralService {
    /// The service a QCNL URL (`https://host/sgx/certification/v4/`) names, from the QCNL key `key`
    /// (`collateral_service` or `pccs_url`); how it was read goes into `notes`.
    pub fn from_qcnl_url(key: &str, url: &str, notes: &mut Vec<String>) -> CollateralService {
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
                matches!(regional_thim_base(bad), Err(InvalidRegion { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn qcnl_url_classification() {
        let mut notes = Vec::new();
        assert_eq!(
            CollateralService::from_qcnl_url(
                "collateral_service",
                "https://api.trustedservices.intel.com/sgx/certification/v4/",
                &mut notes
            ),
            CollateralService::pcs("https://api.trustedservices.intel.com")
        );
        assert_eq!(
            CollateralService::from_qcnl_url(
                "pccs_url",
                "https://global.acccache.azure.net/sgx/certification/v3/",
                &mut notes
            ),
            CollateralService::thim("https://global.acccache.azure.net")
        );
        assert!(notes.iter().any(|n| n.contains("API v3")));
        let pccs = CollateralService::from_qcnl_url(
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
}
