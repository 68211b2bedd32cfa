// SPDX-License-Identifier: Apache-2.0
//! Intel TDX collateral fetching against the Intel emulator, with the real collateral of the
//! `v4-uptodate-dcapqvl` vector (read in place, never copied): bodies round-trip byte for byte,
//! issuer chains come back percent-decoded, the four items are fetched in parallel, faults fail
//! with errors naming the item, PCS and THIM shapes are chosen by configuration, QCNL files are
//! read and ranked below thimble's own settings, and the local THIM PCK certificate endpoint is
//! called with its IMDS contract. Everything runs on loopback.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on fixture and emulator setup failures"
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fast_config;
use thimble_collect::http::{Fetch, FetchError, HttpClient, HttpConfig};
use thimble_collect::intel::{
    self, BodyEncoding, CollateralKind, CollateralService, CustomRequestOptions, FetchedItem,
    IntelCollateralConfig, IntelFetchError, IntelSettings, PckCa, PckCertId, RequestOptions, Retry,
    ServiceKind, SettingSource, THIM_PCKCERT_PATH, fetch_imds_location, fetch_pck_cert,
    fetch_tdx_collateral, qcnl, regional_thim_base,
};
use thimble_sim::emulator::{Emulator, Fault, FaultRule, MISSING_METADATA_BODY};
use thimble_sim::intel_emulator::{IntelEmulatorConfig, ServedItem, thim_pck_cert_body};

const FMSPC: [u8; 6] = [0xb0, 0xc0, 0x6f, 0x00, 0x00, 0x00];
const CA: PckCa = PckCa::Platform;

/// QC's `sgx_default_qcnl_azure.conf` at a46ee8ab, comments included (docs/formats.md §4.1).
const AZURE_QCNL_CONF: &str = r#"{
  // *** ATTENTION : This file is in JSON format so the keys are case sensitive. Don't change them.

  // This is a typical config file when used in Microsoft Azure environment

  "pccs_url": "https://global.acccache.azure.net/sgx/certification/v4/",

  "use_secure_cert": true,

  "collateral_service": "https://api.trustedservices.intel.com/sgx/certification/v4/",

  "pccs_api_version": "3.1",

  "retry_times": 6,

  "retry_delay": 5,

  "local_pck_url": "http://169.254.169.254/metadata/THIM/sgx/certification/v4/",

  "pck_cache_expire_hours": 48,

  "verify_collateral_cache_expire_hours": 48,

  "custom_request_options" : {
       "get_cert" : {
          "headers": {
              "metadata": "true"
          },
          "params": {
             "api-version": "2021-07-22-preview"
         }
      }
   }
}
"#;

/// The collateral of the vector, as PCS serves it.
struct Vector {
    tcb_info: Vec<u8>,
    tcb_info_chain: String,
    qe_identity: Vec<u8>,
    qe_identity_chain: String,
    pck_crl: Vec<u8>,
    pck_crl_chain: String,
    root_ca_crl: Vec<u8>,
    quote: Vec<u8>,
}

fn vector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/tdx/v4-uptodate-dcapqvl")
}

fn vector() -> Vector {
    let dir = vector_dir();
    let bytes = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let text = |name: &str| String::from_utf8(bytes(name)).unwrap();
    Vector {
        tcb_info: bytes("tcb_info.json"),
        tcb_info_chain: text("tcb_info_issuer_chain.pem"),
        qe_identity: bytes("qe_identity.json"),
        qe_identity_chain: text("qe_identity_issuer_chain.pem"),
        pck_crl: bytes("pck_crl.der"),
        pck_crl_chain: text("pck_crl_issuer_chain.pem"),
        root_ca_crl: bytes("root_ca_crl.der"),
        quote: bytes("quote.bin"),
    }
}

/// The PEM blocks of `text`, each with its END line and a newline.
fn pem_blocks(text: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    text.split_inclusive(END)
        .filter(|b| b.contains("-----BEGIN CERTIFICATE-----"))
        .map(|b| format!("{}\n", b.trim_start()))
        .collect()
}

/// The PCK leaf and its issuer chain from the quote's certification data (type 5, PEM).
fn quote_pck_chain(quote: &[u8]) -> (String, String) {
    let start = quote
        .windows(27)
        .position(|w| w == b"-----BEGIN CERTIFICATE-----")
        .unwrap();
    let text = std::str::from_utf8(&quote[start..])
        .unwrap()
        .trim_end_matches('\0');
    let blocks = pem_blocks(text);
    assert_eq!(blocks.len(), 3);
    (blocks[0].clone(), blocks[1..].concat())
}

/// Root certificate of the TCB signing chain: the signer of the root CA CRL.
fn root_pem(v: &Vector) -> String {
    pem_blocks(&v.tcb_info_chain).pop().unwrap()
}

fn served(body: &[u8], chain: &str) -> ServedItem {
    ServedItem {
        body: body.to_vec(),
        issuer_chain_pem: Some(chain.to_owned()),
    }
}

fn emulator_config(v: &Vector, faults: Vec<FaultRule>) -> IntelEmulatorConfig {
    let (pck, chain) = quote_pck_chain(&v.quote);
    IntelEmulatorConfig {
        tcb_info: vec![(FMSPC, served(&v.tcb_info, &v.tcb_info_chain))],
        qe_identity: Some(served(&v.qe_identity, &v.qe_identity_chain)),
        pck_crl: vec![(CA, served(&v.pck_crl, &v.pck_crl_chain))],
        root_ca_crl: Some(served(&v.root_ca_crl, &root_pem(v))),
        pck_cert: Some(thim_pck_cert_body(
            &pck,
            &chain,
            "0b0b0303ffff000000000000000000000d00",
            86400,
        )),
        imds_location: Some("EastUS2".to_owned()),
        cache_control: Some("public, max-age=86400".to_owned()),
        faults,
    }
}

fn start(v: &Vector, faults: Vec<FaultRule>) -> Emulator {
    emulator_config(v, faults).start().unwrap()
}

fn pcs(emu: &Emulator) -> CollateralService {
    CollateralService::Pcs {
        base: emu.base_url(),
        root_ca_crl_url: format!("{}/IntelSGXRootCA.der", emu.base_url()),
    }
}

fn thim(emu: &Emulator) -> CollateralService {
    CollateralService::thim(emu.base_url())
}

/// A configuration with every endpoint on the emulator.
fn config(emu: &Emulator, service: CollateralService) -> IntelCollateralConfig {
    IntelCollateralConfig::resolve(
        &IntelSettings {
            service: Some(service),
            imds_base: Some(emu.base_url()),
            ..IntelSettings::default()
        },
        None,
    )
}

fn fetch_with(
    emu: &Emulator,
    service: CollateralService,
    http: HttpConfig,
) -> Result<intel::TdxCollateralItems, IntelFetchError> {
    let client = HttpClient::new(http);
    fetch_tdx_collateral(&config(emu, service), &client, &FMSPC, CA)
}

/// Standard base64 with padding, for serving a CRL as PEM.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn crl_pem(der: &[u8]) -> Vec<u8> {
    let b64 = base64(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN X509 CRL-----\n{}\n-----END X509 CRL-----\n",
        lines.join("\n")
    )
    .into_bytes()
}

fn assert_round_trip(v: &Vector, items: &intel::TdxCollateralItems, source: ServiceKind) {
    let check = |item: &FetchedItem, kind, body: &[u8]| {
        assert_eq!(item.kind, kind);
        assert_eq!(item.source, source);
        assert_eq!(item.body, body, "{kind} body changed");
        assert_eq!(item.attempts, 1);
        assert_eq!(item.cache_control.as_deref(), Some("public, max-age=86400"));
        assert!(
            thimble_evidence::time_fmt::parse_rfc3339(&item.retrieved_at).is_some(),
            "{}",
            item.retrieved_at
        );
    };
    check(&items.tcb_info, CollateralKind::TcbInfo, &v.tcb_info);
    check(
        &items.qe_identity,
        CollateralKind::QeIdentity,
        &v.qe_identity,
    );
    check(&items.pck_crl, CollateralKind::PckCrl, &v.pck_crl);
    check(
        &items.root_ca_crl,
        CollateralKind::RootCaCrl,
        &v.root_ca_crl,
    );

    assert_eq!(items.tcb_info.body_encoding, BodyEncoding::Json);
    assert_eq!(items.tcb_info.der, None);
    assert_eq!(
        items.tcb_info.issuer_chain_pem.as_deref(),
        Some(v.tcb_info_chain.as_str())
    );
    assert_eq!(
        items.tcb_info.issuer_chain_header.as_deref(),
        Some("TCB-Info-Issuer-Chain")
    );
    assert_eq!(
        items.qe_identity.issuer_chain_pem.as_deref(),
        Some(v.qe_identity_chain.as_str())
    );
    assert_eq!(
        items.pck_crl.issuer_chain_pem.as_deref(),
        Some(v.pck_crl_chain.as_str())
    );
    assert_eq!(items.pck_crl.der.as_deref(), Some(v.pck_crl.as_slice()));
    assert_eq!(items.pck_crl.body_encoding, BodyEncoding::Der);
    assert_eq!(
        items.root_ca_crl.der.as_deref(),
        Some(v.root_ca_crl.as_slice())
    );

    assert_eq!(
        items.tcb_info.next_update.as_deref(),
        Some("2025-07-19T10:16:03Z")
    );
    assert_eq!(
        items.qe_identity.next_update.as_deref(),
        Some("2025-07-19T10:32:27Z")
    );
    assert_eq!(
        items.pck_crl.next_update.as_deref(),
        Some("2025-07-19T10:00:35Z")
    );
    assert_eq!(
        items.root_ca_crl.next_update.as_deref(),
        Some("2026-04-03T11:21:57Z")
    );
    assert_eq!(items.log.len(), 5);
}

/// `(path, query)` of every request the emulator saw, sorted (they arrive in any order).
fn targets(emu: &Emulator) -> Vec<(String, Option<String>)> {
    let mut t: Vec<_> = emu
        .requests()
        .into_iter()
        .map(|r| (r.path, r.query))
        .collect();
    t.sort();
    t
}

fn pair(path: &str, query: &str) -> (String, Option<String>) {
    (
        path.to_owned(),
        (!query.is_empty()).then(|| query.to_owned()),
    )
}

#[test]
fn http_client_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<HttpClient>();
}

#[test]
fn pcs_items_round_trip_byte_for_byte() {
    let v = vector();
    let emu = start(&v, Vec::new());
    let items = fetch_with(&emu, pcs(&emu), fast_config()).unwrap();
    assert_round_trip(&v, &items, ServiceKind::Pcs);
    // A distribution point sends no issuer chain: the root signs its own CRL.
    assert_eq!(items.root_ca_crl.issuer_chain_pem, None);
    assert_eq!(
        targets(&emu),
        vec![
            pair("/IntelSGXRootCA.der", ""),
            pair("/sgx/certification/v4/pckcrl", "ca=platform&encoding=der"),
            pair("/tdx/certification/v4/qe/identity", ""),
            pair("/tdx/certification/v4/tcb", "fmspc=B0C06F000000"),
        ]
    );
    assert!(
        emu.requests()
            .iter()
            .all(|r| r.header("metadata").is_none())
    );
}

#[test]
fn thim_items_round_trip_byte_for_byte() {
    let v = vector();
    let emu = start(&v, Vec::new());
    let items = fetch_with(&emu, thim(&emu), fast_config()).unwrap();
    assert_round_trip(&v, &items, ServiceKind::Thim);
    assert_eq!(
        items.root_ca_crl.issuer_chain_pem.as_deref(),
        Some(root_pem(&v).as_str())
    );
    assert_eq!(
        targets(&emu),
        vec![
            pair(
                "/sgx/certification/v4/pckcrl",
                "ca=platform&clientid=production_client"
            ),
            pair(
                "/sgx/certification/v4/rootcacrl",
                "clientid=production_client"
            ),
            pair(
                "/tdx/certification/v4/qe/identity",
                "clientid=production_client&api-version=2018-10-01-preview"
            ),
            pair(
                "/tdx/certification/v4/tcb",
                "fmspc=b0c06f000000&clientid=production_client&api-version=2018-10-01-preview"
            ),
        ]
    );
}

#[test]
fn crl_bodies_in_pem_or_hex_are_normalised_to_der() {
    let v = vector();
    let pem = crl_pem(&v.pck_crl);
    let hex_text = hex::encode_upper(&v.root_ca_crl).into_bytes();
    let emu = start(
        &v,
        vec![
            FaultRule::always("/sgx/certification/v4/pckcrl", Fault::Body(pem.clone())),
            FaultRule::always(
                "/sgx/certification/v4/rootcacrl",
                Fault::Body(hex_text.clone()),
            ),
        ],
    );
    let items = fetch_with(&emu, thim(&emu), fast_config()).unwrap();
    assert_eq!(items.pck_crl.body, pem);
    assert_eq!(items.pck_crl.body_encoding, BodyEncoding::Pem);
    assert_eq!(items.pck_crl.der.as_deref(), Some(v.pck_crl.as_slice()));
    assert_eq!(items.root_ca_crl.body, hex_text);
    assert_eq!(items.root_ca_crl.body_encoding, BodyEncoding::Hex);
    assert_eq!(
        items.root_ca_crl.der.as_deref(),
        Some(v.root_ca_crl.as_slice())
    );
    assert_eq!(
        items.root_ca_crl.next_update.as_deref(),
        Some("2026-04-03T11:21:57Z")
    );
}

#[test]
fn the_four_items_are_fetched_concurrently() {
    let v = vector();
    let emu = start(
        &v,
        vec![FaultRule::always("/", Fault::Delay(Duration::from_secs(1)))],
    );
    let begin = Instant::now();
    let items = fetch_with(&emu, pcs(&emu), fast_config()).unwrap();
    let elapsed = begin.elapsed();
    assert_round_trip(&v, &items, ServiceKind::Pcs);
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    // Sequential fetching would take four seconds.
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    assert_eq!(emu.requests().len(), 4);
}

#[test]
fn server_error_then_success_is_retried() {
    let v = vector();
    let emu = start(
        &v,
        vec![FaultRule::times(
            "/tdx/certification/v4/tcb",
            Fault::Status(503),
            1,
        )],
    );
    let items = fetch_with(&emu, thim(&emu), fast_config()).unwrap();
    assert_eq!(items.tcb_info.attempts, 2);
    assert_eq!(items.tcb_info.body, v.tcb_info);
    assert_eq!(items.qe_identity.attempts, 1);
    assert!(items.log[1].contains("2 attempt(s)"), "{}", items.log[1]);
}

#[test]
fn rate_limit_honours_retry_after() {
    let v = vector();
    let emu = start(
        &v,
        vec![FaultRule::times(
            "/tdx/certification/v4/qe/identity",
            Fault::RateLimited {
                retry_after_secs: 1,
            },
            1,
        )],
    );
    let begin = Instant::now();
    let items = fetch_with(&emu, pcs(&emu), fast_config()).unwrap();
    assert!(begin.elapsed() >= Duration::from_secs(1));
    assert_eq!(items.qe_identity.attempts, 2);
    assert_eq!(items.qe_identity.body, v.qe_identity);
}

#[test]
fn hang_runs_into_the_deadline_and_names_the_item() {
    let v = vector();
    let emu = start(
        &v,
        vec![FaultRule::always(
            "/sgx/certification/v4/pckcrl",
            Fault::Hang,
        )],
    );
    let http = HttpConfig {
        per_request_timeout: Duration::from_millis(300),
        deadline: Duration::from_secs(1),
        max_attempts: 100,
        ..fast_config()
    };
    let begin = Instant::now();
    let err = fetch_with(&emu, pcs(&emu), http).unwrap_err();
    assert!(begin.elapsed() < Duration::from_secs(3));
    match &err {
        IntelFetchError::Fetch {
            item: CollateralKind::PckCrl,
            url,
            source: FetchError::Deadline { .. },
        } => assert!(url.ends_with("/sgx/certification/v4/pckcrl?ca=platform&encoding=der")),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("PCK CRL"), "{err}");
    assert_eq!(err.item(), Some(CollateralKind::PckCrl));
}

#[test]
fn malformed_json_names_the_item() {
    let v = vector();
    let emu = start(
        &v,
        vec![FaultRule::always(
            "/tdx/certification/v4/qe/identity",
            Fault::MalformedBody(b"{\"enclaveIdentity\": 42, \xff".to_vec()),
        )],
    );
    let err = fetch_with(&emu, thim(&emu), fast_config()).unwrap_err();
    assert!(
        matches!(
            &err,
            IntelFetchError::MalformedJson {
                item: CollateralKind::QeIdentity,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("TD QE identity"), "{message}");
    assert!(
        message.contains("/tdx/certification/v4/qe/identity?clientid="),
        "{message}"
    );
}

#[test]
fn oversize_body_names_the_item() {
    let v = vector();
    let emu = start(
        &v,
        vec![FaultRule::always(
            "/tdx/certification/v4/tcb",
            Fault::Oversize(1 << 20),
        )],
    );
    let err = fetch_with(&emu, pcs(&emu), fast_config()).unwrap_err();
    assert!(
        matches!(
            &err,
            IntelFetchError::Fetch {
                item: CollateralKind::TcbInfo,
                source: FetchError::TooLarge { limit: 65536, .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("TDX TCB info"), "{err}");
}

#[test]
fn garbage_crl_names_the_item() {
    let v = vector();
    let emu = start(
        &v,
        vec![FaultRule::always(
            "/IntelSGXRootCA.der",
            Fault::Body(b"<html>maintenance</html>".to_vec()),
        )],
    );
    let err = fetch_with(&emu, pcs(&emu), fast_config()).unwrap_err();
    assert!(
        matches!(
            &err,
            IntelFetchError::MalformedCrl {
                item: CollateralKind::RootCaCrl,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("Intel SGX Root CA CRL"), "{err}");
}

#[test]
fn several_failures_are_all_reported() {
    let v = vector();
    let emu = start(
        &v,
        vec![
            FaultRule::always("/tdx/certification/v4/tcb", Fault::Status(400)),
            FaultRule::always("/tdx/certification/v4/qe/identity", Fault::Status(401)),
        ],
    );
    let err = fetch_with(&emu, pcs(&emu), fast_config()).unwrap_err();
    let IntelFetchError::Several { errors } = &err else {
        panic!("unexpected {err:?}");
    };
    let items: Vec<_> = errors.iter().filter_map(IntelFetchError::item).collect();
    assert_eq!(
        items,
        vec![CollateralKind::TcbInfo, CollateralKind::QeIdentity]
    );
    let message = err.to_string();
    assert!(message.starts_with("2 of the TDX collateral items failed"));
    assert!(
        message.contains("http status 400") && message.contains("http status 401"),
        "{message}"
    );
}

#[test]
fn answers_for_another_fmspc_or_ca_are_refused() {
    let v = vector();
    let other_fmspc = [0x00, 0x80, 0x6f, 0x05, 0x00, 0x00];
    let mut config = emulator_config(&v, Vec::new());
    config
        .tcb_info
        .push((other_fmspc, served(&v.tcb_info, &v.tcb_info_chain)));
    config
        .pck_crl
        .push((PckCa::Processor, served(&v.pck_crl, &v.pck_crl_chain)));
    let emu = config.start().unwrap();
    let client = HttpClient::new(fast_config());
    let cfg = self::config(&emu, pcs(&emu));

    let err = fetch_tdx_collateral(&cfg, &client, &other_fmspc, CA).unwrap_err();
    assert!(
        matches!(
            &err,
            IntelFetchError::WrongItem {
                item: CollateralKind::TcbInfo,
                reason,
                ..
            } if reason.contains("B0C06F000000")
        ),
        "{err:?}"
    );
    let err = fetch_tdx_collateral(&cfg, &client, &FMSPC, PckCa::Processor).unwrap_err();
    assert!(
        matches!(
            &err,
            IntelFetchError::WrongItem {
                item: CollateralKind::PckCrl,
                reason,
                ..
            } if reason.contains("Intel SGX PCK Platform CA")
        ),
        "{err:?}"
    );
}

#[test]
fn missing_issuer_chain_is_an_error() {
    let v = vector();
    let mut config = emulator_config(&v, Vec::new());
    config.tcb_info[0].1.issuer_chain_pem = None;
    let emu = config.start().unwrap();
    let err = fetch_with(&emu, thim(&emu), fast_config()).unwrap_err();
    match &err {
        IntelFetchError::MissingIssuerChain {
            item: CollateralKind::TcbInfo,
            headers,
            ..
        } => assert_eq!(
            headers,
            &["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"]
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn service_selection_defaults_qcnl_and_flags() {
    let default = IntelCollateralConfig::default();
    assert_eq!(
        default.service,
        CollateralService::thim(intel::DEFAULT_THIM_BASE)
    );
    assert_eq!(
        default.source_of_each_setting.service,
        SettingSource::Default
    );
    assert_eq!(
        intel::tcb_info_url(&default.service, &FMSPC),
        "https://global.acccache.azure.net/tdx/certification/v4/tcb?fmspc=b0c06f000000&clientid=production_client&api-version=2018-10-01-preview"
    );

    // QC's Azure file sends collateral to Intel PCS and PCK requests to the local THIM.
    let azure = qcnl::parse(AZURE_QCNL_CONF).unwrap();
    let from_qcnl = IntelCollateralConfig::resolve(&IntelSettings::default(), Some(&azure));
    assert_eq!(
        from_qcnl.service,
        CollateralService::pcs(intel::DEFAULT_PCS_BASE)
    );
    assert_eq!(
        from_qcnl.source_of_each_setting.service,
        SettingSource::Qcnl
    );
    assert_eq!(
        intel::tcb_info_url(&from_qcnl.service, &FMSPC),
        "https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=B0C06F000000"
    );
    assert_eq!(
        intel::root_ca_crl_url(&from_qcnl.service),
        intel::DEFAULT_PCS_ROOT_CA_CRL_URL
    );
    assert!(
        from_qcnl.describe().iter().any(|l| l
            .contains("Intel PCS API at https://api.trustedservices.intel.com")
            && l.ends_with("(qcnl)")),
        "{:?}",
        from_qcnl.describe()
    );

    // A flag wins over the file.
    let flagged = IntelCollateralConfig::resolve(
        &IntelSettings {
            service: Some(CollateralService::thim("https://useast.thim.azure.net")),
            ..IntelSettings::default()
        },
        Some(&azure),
    );
    assert_eq!(
        flagged.service,
        CollateralService::thim("https://useast.thim.azure.net")
    );
    assert_eq!(flagged.source_of_each_setting.service, SettingSource::Flag);
}

#[test]
fn qcnl_sample_is_read_and_ranked_below_flags() {
    let azure = qcnl::parse(AZURE_QCNL_CONF).unwrap();
    assert_eq!(azure.format, qcnl::QcnlFormat::Json);
    assert_eq!(
        azure.pccs_url.as_deref(),
        Some("https://global.acccache.azure.net/sgx/certification/v4/")
    );
    assert_eq!(azure.pccs_api_version.as_deref(), Some("3.1"));
    assert_eq!(azure.use_secure_cert, Some(true));
    assert_eq!(
        (azure.retry_times, azure.retry_delay_secs),
        (Some(6), Some(5))
    );
    let options = azure.custom_request_options.clone().unwrap();
    assert_eq!(
        options.get_cert.headers,
        vec![("metadata".to_owned(), "true".to_owned())]
    );
    assert_eq!(
        options.get_cert.params,
        vec![("api-version".to_owned(), "2021-07-22-preview".to_owned())]
    );
    assert!(azure.ignored.is_empty(), "{:?}", azure.ignored);

    let from_file = IntelCollateralConfig::resolve(&IntelSettings::default(), Some(&azure));
    let s = from_file.source_of_each_setting;
    assert_eq!(
        from_file.local_pck_url,
        "http://169.254.169.254/metadata/THIM/sgx/certification/v4/"
    );
    assert_eq!(s.local_pck_url, SettingSource::Qcnl);
    assert_eq!(
        from_file.retry,
        Some(Retry {
            times: 6,
            delay: Duration::from_secs(5)
        })
    );
    assert_eq!(s.retry, SettingSource::Qcnl);
    assert_eq!(s.custom_request_options, SettingSource::Qcnl);
    assert_eq!(s.imds_base, SettingSource::Default);
    assert_eq!(from_file.http_config(&fast_config()).max_attempts, 7);

    // thimble's own settings win, one by one; an explicit IMDS also moves the PCK endpoint.
    let explicit = IntelSettings {
        imds_base: Some("http://127.0.0.1:9".to_owned()),
        retry: Some(Retry {
            times: 1,
            delay: Duration::ZERO,
        }),
        custom_request_options: Some(CustomRequestOptions::default()),
        ..IntelSettings::default()
    };
    let merged = IntelCollateralConfig::resolve(&explicit, Some(&azure));
    let s = merged.source_of_each_setting;
    assert_eq!(
        merged.local_pck_url,
        "http://127.0.0.1:9/metadata/THIM/sgx/certification/v4/"
    );
    assert_eq!(
        (
            s.imds_base,
            s.local_pck_url,
            s.retry,
            s.custom_request_options
        ),
        (
            SettingSource::Flag,
            SettingSource::Flag,
            SettingSource::Flag,
            SettingSource::Flag
        )
    );
    assert_eq!(s.service, SettingSource::Qcnl);
    assert_eq!(merged.http_config(&fast_config()).max_attempts, 2);
    let lines = merged.describe();
    assert!(
        lines.iter().any(|l| l == "imds: http://127.0.0.1:9 (flag)"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("intel collateral service: ") && l.ends_with("(qcnl)")),
        "{lines:?}"
    );
    assert_eq!(SettingSource::Default.to_string(), "default");
}

#[test]
fn qcnl_files_legacy_missing_and_broken() {
    let legacy = qcnl::parse(
        "# PCS server address\nPCCS_URL=https://localhost:8081/sgx/certification/v1/\nUSE_SECURE_CERT=FALSE\nRETRY_TIMES = 3\n",
    )
    .unwrap();
    assert_eq!(legacy.format, qcnl::QcnlFormat::Legacy);
    assert_eq!(
        legacy.pccs_url.as_deref(),
        Some("https://localhost:8081/sgx/certification/v1/")
    );
    assert_eq!(legacy.use_secure_cert, Some(false));
    assert_eq!(legacy.retry_times, Some(3));

    let wrong_types =
        qcnl::parse(r#"{"retry_times": -1, "pccs_url": 5, "retry_delay": "5"}"#).unwrap();
    assert_eq!(wrong_types.retry_times, None);
    assert_eq!(wrong_types.pccs_url, None);
    assert_eq!(wrong_types.ignored.len(), 3, "{:?}", wrong_types.ignored);
    let resolved = IntelCollateralConfig::resolve(&IntelSettings::default(), Some(&wrong_types));
    assert!(
        resolved
            .notes
            .iter()
            .any(|n| n == "qcnl: ignored retry_times: not a non-negative integer"),
        "{:?}",
        resolved.notes
    );

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("sgx_default_qcnl.conf");
    assert!(qcnl::load(&missing).unwrap().is_none());
    std::fs::write(&missing, "{ \"pccs_url\": \"x\" \"retry_times\": 6 }").unwrap();
    let err = qcnl::load(&missing).unwrap_err();
    assert!(
        matches!(&err, qcnl::QcnlError::InFile { path, .. } if *path == missing),
        "{err:?}"
    );
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("line 1"), "{cause}");
}

#[test]
fn qcnl_collateral_service_is_honoured_end_to_end() {
    let v = vector();
    let emu = start(&v, Vec::new());
    // A PCCS on the local network, as operators configure it; neither PCS nor THIM by host.
    let conf = format!(
        "{{\n  // local PCCS\n  \"pccs_url\": \"{}/sgx/certification/v4/\",\n  \"retry_times\": 1,\n}}\n",
        emu.base_url()
    );
    let parsed = qcnl::parse(&conf).unwrap();
    let cfg = IntelCollateralConfig::resolve(&IntelSettings::default(), Some(&parsed));
    assert_eq!(cfg.source_of_each_setting.service, SettingSource::Qcnl);
    assert!(
        cfg.notes.iter().any(|n| n.contains("treated as a PCCS")),
        "{:?}",
        cfg.notes
    );
    let client = HttpClient::new(cfg.http_config(&fast_config()));
    let items = fetch_tdx_collateral(&cfg, &client, &FMSPC, CA).unwrap();
    assert_eq!(items.tcb_info.body, v.tcb_info);
    assert!(
        items
            .root_ca_crl
            .url
            .ends_with("/sgx/certification/v4/rootcacrl")
    );
    assert_eq!(
        items.root_ca_crl.der.as_deref(),
        Some(v.root_ca_crl.as_slice())
    );
}

fn pck_id() -> PckCertId {
    PckCertId {
        qe_id: [0x11; 16],
        cpu_svn: [
            0x0b, 0x0b, 0x03, 0x03, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        pce_svn: 13,
        pce_id: 0,
        encrypted_ppid: None,
    }
}

#[test]
fn pck_cert_from_the_local_thim_agent() {
    let v = vector();
    let (pck, chain) = quote_pck_chain(&v.quote);
    let emu = start(&v, Vec::new());
    let mut cfg = config(&emu, thim(&emu));
    cfg.custom_request_options = CustomRequestOptions {
        get_cert: RequestOptions {
            headers: vec![
                ("metadata".to_owned(), "false".to_owned()),
                ("x-extra".to_owned(), "1".to_owned()),
            ],
            params: vec![
                ("api-version".to_owned(), "2021-07-22-preview".to_owned()),
                ("foo".to_owned(), "bar".to_owned()),
            ],
        },
    };
    let client = HttpClient::new(fast_config());
    let answer = fetch_pck_cert(&cfg, &client, &pck_id()).unwrap();
    assert_eq!(answer.pck_cert_pem, pck);
    assert_eq!(
        answer.item.issuer_chain_pem.as_deref(),
        Some(chain.as_str())
    );
    assert_eq!(answer.chain_der.len(), 2);
    assert_eq!(
        answer.item.der.as_deref(),
        Some(answer.pck_cert_der.as_slice())
    );
    assert_eq!(answer.item.source, ServiceKind::LocalThim);
    assert_eq!(answer.item.body_encoding, BodyEncoding::Json);
    assert_eq!(
        answer.tcbm.as_deref(),
        Some("0b0b0303ffff000000000000000000000d00")
    );
    assert_eq!(answer.cache_max_age_secs, Some(86400));
    assert_eq!(
        answer.item.issuer_chain_header.as_deref(),
        Some("sgx-Pck-Certificate-Issuer-Chain")
    );

    let requests = emu.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.path, THIM_PCKCERT_PATH);
    // The IMDS contract header cannot be configured away; other headers are added.
    assert_eq!(r.header("metadata"), Some("true"));
    assert_eq!(r.header("x-extra"), Some("1"));
    let query = r.query.as_deref().unwrap();
    assert_eq!(query.matches("api-version=").count(), 1, "{query}");
    assert!(
        query.starts_with(&format!(
            "qeid={}&cpusvn=0B0B0303FFFF00000000000000000000&pcesvn=0D00&pceid=0000&api-version=2021-07-22-preview",
            "11".repeat(16)
        )),
        "{query}"
    );
    assert!(query.ends_with("&foo=bar"), "{query}");
}

#[test]
fn pck_cert_request_without_metadata_is_rejected() {
    let v = vector();
    let emu = start(&v, Vec::new());
    let cfg = config(&emu, thim(&emu));
    let url = intel::pck_cert_url(&cfg.local_pck_url, &pck_id(), &[]);
    let client = HttpClient::new(fast_config());
    match client.get(&url, &[]).unwrap_err() {
        FetchError::Status {
            status: 400,
            attempts: 1,
            body_excerpt,
            ..
        } => assert!(body_excerpt.contains("Required metadata header not specified")),
        other => panic!("unexpected {other:?}"),
    }
    let response = client.get(&url, &[("Metadata", "true")]).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        emu.requests()[0].header("metadata"),
        None,
        "the first request went without the header"
    );
    assert!(MISSING_METADATA_BODY.contains("metadata"));
}

#[test]
fn malformed_pck_cert_answer_names_the_item() {
    let v = vector();
    let emu = start(
        &v,
        vec![FaultRule::always(
            THIM_PCKCERT_PATH,
            Fault::Body(br#"{"pckCert":"not pem","sgx-Pck-Certificate-Issuer-Chain":""}"#.to_vec()),
        )],
    );
    let client = HttpClient::new(fast_config());
    let err = fetch_pck_cert(&config(&emu, thim(&emu)), &client, &pck_id()).unwrap_err();
    assert!(
        matches!(
            &err,
            IntelFetchError::MalformedPckCert {
                item: CollateralKind::PckCert,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("PCK certificate"), "{err}");
}

#[test]
fn region_from_imds_gives_the_regional_thim_host() {
    let v = vector();
    let emu = start(&v, Vec::new());
    let client = HttpClient::new(fast_config());
    let location = fetch_imds_location(&client, &emu.base_url()).unwrap();
    assert_eq!(location, "EastUS2");
    assert_eq!(
        regional_thim_base(&location).unwrap(),
        "https://eastus2.thim.azure.net"
    );
    let r = &emu.requests()[0];
    assert_eq!(r.path, "/metadata/instance");
    assert_eq!(r.query.as_deref(), Some("api-version=2021-02-01"));
    assert_eq!(r.header("metadata"), Some("true"));
}
