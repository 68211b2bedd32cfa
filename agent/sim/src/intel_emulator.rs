// SPDX-License-Identifier: Apache-2.0
//! An HTTP emulator of the Intel collateral services thimble uses for TDX: Intel PCS API v4 and
//! Azure THIM's collateral cache, in both URL shapes (docs/formats.md §4.3), the local THIM PCK
//! certificate agent behind IMDS (§4.2), and IMDS instance metadata for the Azure region (§4.1).
//!
//! It is a [`Routes`] service on the server of [`crate::emulator`], so it listens on loopback
//! only, enforces the same IMDS contract (`Metadata: true` on `/metadata/…`, no
//! `X-Forwarded-For`) and takes the same [`crate::emulator::Fault`]s. Answers are the configured
//! bytes, unchanged, with the issuer chain percent-encoded into a header the way PCS sends it:
//! PCS's header names for PCS-shaped requests, the lower-case names a third-party live test saw
//! from THIM for THIM-shaped ones (docs/formats.md §4.4 \[O\]). Requests are parsed with the inverse
//! URL parsers of `thimble_evidence::tdx::pcs`, so a URL thimble should not build gets a 400 or 404
//! here rather than an answer.

use std::io;

use thimble_evidence::tdx::pcs::{
    CollateralKind, CollateralTarget, ENCLAVE_IDENTITY_ISSUER_CHAIN, IMDS_INSTANCE_PATH,
    PCK_CRL_ISSUER_CHAIN, PckCa, ServiceKind, TCB_INFO_ISSUER_CHAIN, THIM_PCKCERT_API_VERSION,
    THIM_PCKCERT_PATH, TargetError, parse_collateral_target, parse_pck_cert_target, parse_query,
    percent_encode,
};

use crate::emulator::{Emulator, FaultRule, RecordedRequest, Reply, Routes};

/// Body IMDS sends for a missing or unknown `api-version` (docs/formats.md §2 \[V\]; that the THIM
/// `pckcert` path answers the same way is \[U\]).
pub const BAD_API_VERSION_BODY: &str =
    "Bad request. api-version is invalid or was not specified in the request.";

/// One collateral item as served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServedItem {
    /// The body, sent byte for byte.
    pub body: Vec<u8>,
    /// PEM chain, sent percent-encoded in the item's issuer-chain header; `None` sends no header.
    pub issuer_chain_pem: Option<String>,
}

/// What the Intel emulator serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntelEmulatorConfig {
    /// `(FMSPC, item)`: the TDX TCB info for `…/tdx/certification/v4/tcb?fmspc=`. Any other
    /// FMSPC gets 404, as from PCS.
    pub tcb_info: Vec<([u8; 6], ServedItem)>,
    /// `…/tdx/certification/v4/qe/identity`.
    pub qe_identity: Option<ServedItem>,
    /// `(CA, item)`: `…/sgx/certification/v4/pckcrl?ca=`.
    pub pck_crl: Vec<(PckCa, ServedItem)>,
    /// THIM's `…/sgx/certification/v4/rootcacrl` and PCS's distribution point
    /// `/IntelSGXRootCA.der` (which never carries an issuer chain).
    pub root_ca_crl: Option<ServedItem>,
    /// Body of the local THIM `/metadata/THIM/sgx/certification/v4/pckcert`; see
    /// [`thim_pck_cert_body`].
    pub pck_cert: Option<Vec<u8>>,
    /// `compute.location` of `/metadata/instance`; `None` answers 404.
    pub imds_location: Option<String>,
    /// `Cache-Control` sent with every collateral answer (DC requires one, docs/formats.md §4.4).
    pub cache_control: Option<String>,
    /// Faults, tried in order; the first matching rule with uses left applies.
    pub faults: Vec<FaultRule>,
}

impl IntelEmulatorConfig {
    /// Starts serving on `127.0.0.1` at an ephemeral port.
    pub fn start(self) -> io::Result<Emulator> {
        Emulator::start_routes(self)
    }

    fn collateral(&self, target: &CollateralTarget) -> Reply {
        let item = match target.kind {
            CollateralKind::TcbInfo => self
                .tcb_info
                .iter()
                .find(|(fmspc, _)| Some(*fmspc) == target.fmspc)
                .map(|(_, item)| item),
            CollateralKind::QeIdentity => self.qe_identity.as_ref(),
            CollateralKind::PckCrl => self
                .pck_crl
                .iter()
                .find(|(ca, _)| Some(*ca) == target.ca)
                .map(|(_, item)| item),
            CollateralKind::RootCaCrl => self.root_ca_crl.as_ref(),
            _ => None,
        };
        let Some(item) = item else {
            return Reply::json_error(404, "Not found");
        };
        let content_type = match target.kind {
            CollateralKind::TcbInfo | CollateralKind::QeIdentity => "application/json",
            _ if item.body.starts_with(b"-----BEGIN") => "application/x-pem-file",
            _ => "application/pkix-crl",
        };
        let mut reply = Reply::new(200, content_type, item.body.clone());
        // A distribution point is a plain file server: the root signs its own CRL.
        let cdp = target.kind == CollateralKind::RootCaCrl && target.shape == ServiceKind::Pcs;
        if let (Some(chain), false) = (&item.issuer_chain_pem, cdp) {
            reply = reply.with_header(chain_header(target), percent_encode(chain));
        }
        if let Some(cache) = &self.cache_control {
            reply = reply.with_header("Cache-Control", cache.clone());
        }
        reply
    }

    fn pck_cert(&self, request: &RecordedRequest) -> Reply {
        let target = match parse_pck_cert_target(&request.path, request.query.as_deref()) {
            Ok(t) => t,
            Err(e) => return Reply::json_error(400, &format!("Bad request. {e}")),
        };
        if target.param("api-version") != Some(THIM_PCKCERT_API_VERSION) {
            return Reply::json_error(400, BAD_API_VERSION_BODY);
        }
        match &self.pck_cert {
            Some(body) => Reply::new(200, "application/json; charset=utf-8", body.clone()),
            None => Reply::json_error(404, "Not found"),
        }
    }

    fn instance(&self, request: &RecordedRequest) -> Reply {
        let params = match parse_query(request.query.as_deref()) {
            Ok(p) => p,
            Err(e) => return Reply::json_error(400, &format!("Bad request. {e}")),
        };
        if !params
            .iter()
            .any(|(n, v)| n == "api-version" && !v.is_empty())
        {
            return Reply::json_error(400, BAD_API_VERSION_BODY);
        }
        match &self.imds_location {
            Some(location) => {
                let body = serde_json::json!({ "compute": { "location": location } });
                Reply::new(
                    200,
                    "application/json; charset=utf-8",
                    body.to_string().into_bytes(),
                )
            }
            None => Reply::json_error(404, "Not found"),
        }
    }
}

/// The issuer-chain header of `target`'s answer.
fn chain_header(target: &CollateralTarget) -> &'static str {
    let thim = target.shape == ServiceKind::Thim;
    match (target.kind, thim) {
        (CollateralKind::TcbInfo, false) => TCB_INFO_ISSUER_CHAIN,
        (CollateralKind::TcbInfo, true) => "tcb-info-issuer-chain",
        (CollateralKind::QeIdentity, false) => ENCLAVE_IDENTITY_ISSUER_CHAIN,
        (CollateralKind::QeIdentity, true) => "sgx-enclave-identity-issuer-chain",
        (_, false) => PCK_CRL_ISSUER_CHAIN,
        (_, true) => "sgx-pck-crl-issuer-chain",
    }
}

impl Routes for IntelEmulatorConfig {
    fn route(&self, request: &RecordedRequest) -> Reply {
        let known = match request.path.as_str() {
            THIM_PCKCERT_PATH | IMDS_INSTANCE_PATH => true,
            path => !matches!(
                parse_collateral_target(path, None),
                Err(TargetError::UnknownPath { .. })
            ),
        };
        if !known {
            return Reply::json_error(404, "Not found");
        }
        if request.method != "GET" {
            return Reply::json_error(405, "Method not allowed");
        }
        match request.path.as_str() {
            THIM_PCKCERT_PATH => self.pck_cert(request),
            IMDS_INSTANCE_PATH => self.instance(request),
            path => match parse_collateral_target(path, request.query.as_deref()) {
                Ok(target) => self.collateral(&target),
                Err(TargetError::UnknownPath { .. }) => Reply::json_error(404, "Not found"),
                Err(e) => Reply::json_error(400, &e.to_string()),
            },
        }
    }

    fn faults(&self) -> &[FaultRule] {
        &self.faults
    }
}

/// A THIM `pckcert` JSON body as docs/formats.md §4.2 reconstructs it \[U for the exact layout\]:
/// `pckCert` in PEM without its final newline (DC notes THIM leaves it out), the issuer chain
/// percent-encoded, `sgx-Tcbm`, and `cacheMaxAge` as a string.
pub fn thim_pck_cert_body(
    pck_cert_pem: &str,
    issuer_chain_pem: &str,
    tcbm: &str,
    cache_max_age_secs: u64,
) -> Vec<u8> {
    serde_json::json!({
        "pckCert": pck_cert_pem.trim_end_matches('\n'),
        "sgx-Pck-Certificate-Issuer-Chain": percent_encode(issuer_chain_pem),
        "sgx-Tcbm": tcbm,
        "cacheMaxAge": cache_max_age_secs.to_string(),
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::{MISSING_METADATA_BODY, serve_one_connection_with};

    const CHAIN: &str = "-----BEGIN CERTIFICATE-----\nMIIC+/=\n-----END CERTIFICATE-----\n";

    fn item(body: &[u8]) -> ServedItem {
        ServedItem {
            body: body.to_vec(),
            issuer_chain_pem: Some(CHAIN.to_owned()),
        }
    }

    fn config() -> IntelEmulatorConfig {
        IntelEmulatorConfig {
            tcb_info: vec![([0xb0, 0xc0, 0x6f, 0, 0, 0], item(b"{\"tcbInfo\":{}}"))],
            qe_identity: Some(item(b"{\"enclaveIdentity\":{}}")),
            pck_crl: vec![(PckCa::Platform, item(b"\x30\x82crl"))],
            root_ca_crl: Some(item(b"\x30\x82root")),
            pck_cert: Some(thim_pck_cert_body(CHAIN, CHAIN, "00", 86400)),
            imds_location: Some("EastUS2".to_owned()),
            cache_control: Some("public, max-age=86400".to_owned()),
            faults: Vec::new(),
        }
    }

    /// Sends `request` and returns the status, the head and the body.
    fn exchange(config: &IntelEmulatorConfig, request: &str) -> (u16, String, Vec<u8>) {
        let mut out = Vec::new();
        serve_one_connection_with(config, request.as_bytes(), &mut out).unwrap();
        let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(out[..end].to_vec()).unwrap();
        let status = head[9..12].parse().unwrap();
        (status, head, out[end + 4..].to_vec())
    }

    fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
    }

    #[test]
    fn pcs_shape_uses_pcs_header_names() {
        let c = config();
        let encoded = percent_encode(CHAIN);
        let (status, head, body) =
            exchange(&c, &get("/tdx/certification/v4/tcb?fmspc=B0C06F000000"));
        assert_eq!((status, body.as_slice()), (200, &b"{\"tcbInfo\":{}}"[..]));
        assert!(head.contains(&format!("TCB-Info-Issuer-Chain: {encoded}")));
        assert!(head.contains("Cache-Control: public, max-age=86400"));
        let (_, head, _) = exchange(&c, &get("/tdx/certification/v4/qe/identity"));
        assert!(head.contains("SGX-Enclave-Identity-Issuer-Chain: "));
        let (status, head, body) = exchange(
            &c,
            &get("/sgx/certification/v4/pckcrl?ca=platform&encoding=der"),
        );
        assert_eq!((status, body.as_slice()), (200, &b"\x30\x82crl"[..]));
        assert!(head.contains("SGX-PCK-CRL-Issuer-Chain: "));
        assert!(head.contains("Content-Type: application/pkix-crl"));
        // The distribution point sends the CRL alone.
        let (status, head, _) = exchange(&c, &get("/IntelSGXRootCA.der"));
        assert_eq!(status, 200);
        assert!(!head.to_ascii_lowercase().contains("issuer-chain"));
    }

    #[test]
    fn thim_shape_uses_lower_case_header_names() {
        let c = config();
        let (status, head, _) = exchange(
            &c,
            &get(
                "/tdx/certification/v4/tcb?fmspc=b0c06f000000&clientid=production_client&api-version=2018-10-01-preview",
            ),
        );
        assert_eq!(status, 200);
        assert!(head.contains("tcb-info-issuer-chain: "));
        let (status, head, _) = exchange(
            &c,
            &get("/sgx/certification/v4/rootcacrl?clientid=production_client"),
        );
        assert_eq!(status, 200);
        assert!(head.contains("sgx-pck-crl-issuer-chain: "));
    }

    #[test]
    fn unknown_items_and_bad_queries() {
        let c = config();
        let cases = [
            ("/tdx/certification/v4/tcb?fmspc=00806F050000", 404),
            ("/sgx/certification/v4/pckcrl?ca=processor", 404),
            ("/tdx/certification/v4/tcb", 400),
            ("/sgx/certification/v4/pckcrl?ca=nobody", 400),
            ("/sgx/certification/v4/pckcrl?ca=platform&ca=platform", 400),
            ("/tdx/certification/v4/nothing", 404),
        ];
        for (path, want) in cases {
            let (status, _, _) = exchange(&c, &get(path));
            assert_eq!(status, want, "{path}");
        }
        let (status, _, _) = exchange(
            &c,
            "POST /tdx/certification/v4/qe/identity HTTP/1.1\r\n\r\n",
        );
        assert_eq!(status, 405);
    }

    #[test]
    fn pck_cert_needs_metadata_and_api_version() {
        let c = config();
        let query = format!(
            "qeid={}&cpusvn={}&pcesvn=0D00&pceid=0000",
            "00".repeat(16),
            "00".repeat(16)
        );
        let (status, _, body) = exchange(
            &c,
            &get(&format!(
                "{THIM_PCKCERT_PATH}?{query}&api-version=2021-07-22-preview"
            )),
        );
        assert_eq!(
            (status, body.as_slice()),
            (400, MISSING_METADATA_BODY.as_bytes())
        );
        let with_metadata = |q: &str| {
            exchange(
                &c,
                &format!("GET {THIM_PCKCERT_PATH}?{q} HTTP/1.1\r\nMetadata: true\r\n\r\n"),
            )
        };
        let (status, _, body) = with_metadata(&query);
        assert_eq!(status, 400);
        assert!(String::from_utf8(body).unwrap().contains("api-version"));
        let (status, _, body) = with_metadata(&format!("{query}&api-version=2021-07-22-preview"));
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json["sgx-Pck-Certificate-Issuer-Chain"].as_str(),
            Some(percent_encode(CHAIN).as_str())
        );
        assert_eq!(json["cacheMaxAge"].as_str(), Some("86400"));
        assert!(!json["pckCert"].as_str().unwrap().ends_with('\n'));
        let (status, _, _) = with_metadata("qeid=00&api-version=2021-07-22-preview");
        assert_eq!(status, 400);
    }

    #[test]
    fn instance_location() {
        let c = config();
        let (status, _, body) = exchange(
            &c,
            "GET /metadata/instance?api-version=2021-02-01 HTTP/1.1\r\nMetadata: true\r\n\r\n",
        );
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["compute"]["location"], "EastUS2");
        let (status, _, _) = exchange(
            &c,
            "GET /metadata/instance HTTP/1.1\r\nMetadata: true\r\n\r\n",
        );
        assert_eq!(status, 400);
    }
}
