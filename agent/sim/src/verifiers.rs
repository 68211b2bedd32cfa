// SPDX-License-Identifier: Apache-2.0
//! Loopback emulators of the remote verifiers `thimble attest` talks to: Microsoft Azure
//! Attestation, Trustee's KBS, Intel Trust Authority and Veraison. Each parses a request as its
//! service does (with the same `thimble_evidence::attest` readers, so a request built wrongly
//! fails here), keeps the service's session state (KBS cookies and nonces, ITA's issued nonces,
//! Veraison sessions), checks the binding by the service's rule, verifies the evidence with
//! thimble's own verifier against the collateral a real service fetches for itself (given to
//! the emulator, as KDS or PCS would give it), and answers with a token (an HS256 JWT under a
//! test key) and, for the KBS, a resource encrypted to the session key. Faults (refusals, 401,
//! 429, malformed answers) come from the shared [`crate::emulator`] machinery. MAA also answers
//! the Azure guest protocol (`AzureGuest`): it checks the TPM quote and the certification of
//! the ephemeral key with the AK the HCL runtime data names, the key's PCR policy against the
//! quoted PCRs, and the hardware evidence, and answers with the token encrypted to that key. Every verdict is
//! recorded, so that a test can tell a refusal for the right reason from one for another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::hmac;
use serde_json::{Value, json};
use thimble_collect::attest::jwe;
use thimble_evidence::attest::azure_guest::{self, AttestationInfo, EncryptedToken, Isolation};
use thimble_evidence::attest::kbs::{self, HashAlgorithm, TeePubKey};
use thimble_evidence::attest::{Verifier, ita, maa, veraison};
use thimble_evidence::bundle::{
    Bundle, Collection, CollectionSource, Endorsement, Evidence, SevSnpEvidence, TdxEvidence,
};
use thimble_evidence::digest::{Sha256, Sha512};
use thimble_evidence::interop;
use thimble_evidence::snp::SnpReport;
use thimble_evidence::tdx::TdxQuote;
use thimble_verify::bundle::{VerifyOptions, verify_bundle};

use crate::emulator::{FaultRule, RecordedRequest, Reply, Routes};

/// The key the emulators' tokens are signed with (HS256): a test key, never a real one.
pub const TOKEN_TEST_KEY: &[u8] = b"thimble-sim verifier emulator token key (test only)";

/// What an emulator serves and trusts.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The service played.
    pub verifier: Verifier,
    /// The collateral the service has (certificates, CRLs, Intel collateral): the real services
    /// fetch theirs from KDS or PCS.
    pub endorsements: Vec<Endorsement>,
    /// How evidence is verified: roots, policy, time. The binding is set per request.
    pub options: VerifyOptions,
    /// ITA: the API key required in `x-api-key`.
    pub api_key: Option<String>,
    /// KBS: resources by `repository/type/tag`.
    pub resources: Vec<(String, Vec<u8>)>,
    /// KBS: the hash named in `selected-hash-algorithm`; `None` selects nothing (SHA-384).
    pub kbs_hash: Option<HashAlgorithm>,
    /// Veraison: the nonce every new session gets instead of a fresh one, so that recorded
    /// evidence (whose REPORT_DATA is fixed) can be sent through a session.
    pub veraison_nonce: Option<Vec<u8>>,
    /// Faults injected before the normal answer.
    pub faults: Vec<FaultRule>,
}

impl VerifierConfig {
    /// A service trusting the simulator's test roots and paravisor, verifying at `at`.
    pub fn sim(verifier: Verifier, endorsements: Vec<Endorsement>, at: i64) -> VerifierConfig {
        VerifierConfig {
            verifier,
            endorsements,
            options: sim_verify_options(at),
            api_key: None,
            resources: Vec::new(),
            kbs_hash: None,
            veraison_nonce: None,
            faults: Vec::new(),
        }
    }
}

/// Verification options trusting the simulator's AMD and Intel test roots and its paravisor.
pub fn sim_verify_options(at: i64) -> VerifyOptions {
    use thimble_evidence::snp::Product;
    use thimble_verify::azure::TrustedParavisor;
    let mut o = VerifyOptions::strict(at);
    o.amd_roots = thimble_verify::TrustedRoots::amd()
        .insecure_add_simulated(Product::Milan, crate::signer::sim_chain().ark_der);
    o.intel_simulated_roots = Some(thimble_verify::IntelRoots::insecure_custom(
        crate::tdx_signer::sim_tdx_pki().root_ca_der,
    ));
    o.allow_simulated = true;
    let test = |v: [u8; 48]| TrustedParavisor {
        value: v,
        label: "thimble simulation (test identity)".into(),
    };
    o.paravisor
        .snp_keys
        .push(test(crate::azure_sim::SIM_PARAVISOR_ID_KEY_DIGEST));
    o.paravisor
        .tdx_mrtds
        .push(test(crate::azure_sim::SIM_PARAVISOR_MRTD));
    o
}

/// The verdicts an emulator reached, in order: `"<step>: ok"` or `"<step>: <reason>"`.
#[derive(Debug, Clone, Default)]
pub struct Verdicts(Arc<Mutex<Vec<String>>>);

impl Verdicts {
    /// Everything recorded so far.
    pub fn all(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, v: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(v);
    }
}

/// The emulator's routes; start it with [`crate::emulator::Emulator::start_routes`].
#[derive(Debug)]
pub struct VerifierEmulator {
    config: VerifierConfig,
    state: Mutex<State>,
    verdicts: Verdicts,
}

#[derive(Debug, Default)]
struct State {
    counter: u64,
    kbs: HashMap<String, KbsSession>,
    ita_nonces: Vec<ita::VerifierNonce>,
    veraison: HashMap<String, VeraisonSession>,
}

#[derive(Debug)]
struct KbsSession {
    tee: String,
    nonce: String,
    key: Option<TeePubKey>,
}

#[derive(Debug, Clone)]
struct VeraisonSession {
    nonce: Vec<u8>,
    status: String,
    result: Option<String>,
}

impl VerifierEmulator {
    /// An emulator of `config`, and the handle its verdicts are read from.
    pub fn new(config: VerifierConfig) -> (VerifierEmulator, Verdicts) {
        let verdicts = Verdicts::default();
        (
            VerifierEmulator {
                config,
                state: Mutex::new(State::default()),
                verdicts: verdicts.clone(),
            },
            verdicts,
        )
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// 32 fresh bytes; the emulators' nonces need only be unique within a run.
    fn fresh(&self) -> Vec<u8> {
        let mut st = self.state();
        st.counter += 1;
        let n = st.counter;
        drop(st);
        let mut seed = Vec::new();
        seed.extend_from_slice(&n.to_le_bytes());
        seed.extend_from_slice(
            &std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
                .to_le_bytes(),
        );
        Sha256::digest(&seed).to_vec()
    }

    fn refuse(&self, step: &str, status: u16, reason: String) -> Reply {
        self.verdicts.push(format!("{step}: {reason}"));
        Reply::json_error(status, &reason)
    }

    fn token(&self, claims: Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{body}");
        let key = hmac::Key::new(hmac::HMAC_SHA256, TOKEN_TEST_KEY);
        let tag = hmac::sign(&key, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    fn token_reply(&self, step: &str, claims: Value) -> Reply {
        self.verdicts.push(format!("{step}: ok"));
        let body = json!({ "token": self.token(claims) }).to_string();
        Reply::new(200, "application/json", body.into_bytes())
    }

    /// Verifies `evidence` with the service's collateral and `expect` applied to the options.
    fn verify(
        &self,
        evidence: Evidence,
        expect: impl FnOnce(&mut VerifyOptions),
    ) -> Result<(), String> {
        let bundle = Bundle {
            format: thimble_evidence::bundle::FORMAT.to_owned(),
            version: thimble_evidence::bundle::VERSION,
            simulated: true,
            agent: thimble_collect::bundle::agent(),
            created_at: String::new(),
            kernel_release: None,
            collection: Collection::new(CollectionSource::Import),
            nonce: None,
            evidence,
            endorsements: self.config.endorsements.clone(),
            endorsement_log: Vec::new(),
            event_logs: Vec::new(),
            claims: None,
        };
        let mut options = self.config.options.clone();
        expect(&mut options);
        let outcome = verify_bundle(&bundle, &options);
        match outcome.errors.first() {
            None => Ok(()),
            Some(e) => Err(format!("evidence refused: {}: {}", e.code, e.message)),
        }
    }
}

impl Routes for VerifierEmulator {
    fn route(&self, request: &RecordedRequest) -> Reply {
        match self.config.verifier {
            Verifier::Maa => self.maa(request),
            Verifier::Kbs => self.kbs(request),
            Verifier::Ita => self.ita(request),
            Verifier::Veraison => self.veraison(request),
        }
    }

    fn faults(&self) -> &[FaultRule] {
        &self.config.faults
    }
}

// ---------------------------------------------------------------------------------------------
// MAA
// ---------------------------------------------------------------------------------------------

impl VerifierEmulator {
    fn maa(&self, r: &RecordedRequest) -> Reply {
        let full = match &r.query {
            Some(q) => format!("{}?{q}", r.path),
            None => r.path.clone(),
        };
        if r.method == "POST" && full == azure_guest::PATH {
            return self.maa_azure_guest(&r.body);
        }
        if r.method != "POST" || (full != maa::SEV_SNP_PATH && full != maa::TDX_PATH) {
            return Reply::json_error(404, "Not found");
        }
        match self.maa_check(&full, &r.body) {
            Ok((kind, runtime)) => self.token_reply(
                "attest",
                json!({
                    "iss": "thimble-sim-maa",
                    "x-ms-attestation-type": kind,
                    "x-ms-runtime": runtime,
                    "x-ms-compliance-status": "azure-compliant-cvm",
                }),
            ),
            Err(reason) => self.refuse("attest", 400, reason),
        }
    }

    fn maa_check(&self, path: &str, body: &[u8]) -> Result<(&'static str, Value), String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
        let b64url = |v: &Value, name: &str| -> Result<Vec<u8>, String> {
            let s = v[name].as_str().ok_or(format!("no `{name}`"))?;
            URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .map_err(|e| format!("`{name}` is not base64url: {e}"))
        };
        if v["runtimeData"]["dataType"] != "JSON" {
            return Err("runtimeData.dataType must be \"JSON\"".to_owned());
        }
        let runtime = b64url(&v["runtimeData"], "data")?;
        let runtime_json: Value = serde_json::from_slice(&runtime)
            .map_err(|e| format!("runtimeData is not JSON: {e}"))?;
        let bound: [u8; 32] = Sha256::digest(&runtime);
        let (kind, evidence, report_data) = if path == maa::SEV_SNP_PATH {
            let inner: Value = serde_json::from_slice(&b64url(&v, "report")?)
                .map_err(|e| format!("report is not JSON: {e}"))?;
            let report = b64url(&inner, "SnpReport")?;
            if b64url(&inner, "VcekCertChain")?.is_empty() {
                return Err("VcekCertChain is empty".to_owned());
            }
            let parsed = SnpReport::parse(&report).map_err(|e| e.to_string())?;
            let rd = parsed.report_data;
            (
                "sevsnpvm",
                Evidence::SevSnp(SevSnpEvidence {
                    report,
                    auxblob: None,
                }),
                rd,
            )
        } else {
            let quote = b64url(&v, "quote")?;
            let parsed = TdxQuote::parse(&quote).map_err(|e| e.to_string())?;
            let rd = parsed.body.report_data;
            (
                "tdxvm",
                Evidence::Tdx(TdxEvidence {
                    quote,
                    td_report: None,
                }),
                rd,
            )
        };
        if report_data[..32] != bound {
            return Err(format!(
                "REPORT_DATA[0..32] {} is not SHA-256 of the runtime data {}",
                hex::encode(&report_data[..32]),
                hex::encode(bound)
            ));
        }
        self.verify(evidence, |_| {})?;
        Ok((kind, runtime_json))
    }
}

// ---------------------------------------------------------------------------------------------
// MAA: AzureGuest
// ---------------------------------------------------------------------------------------------

/// RSASSA-PKCS1-v1_5 SHA-256 with `key`, as the AK signs quotes and certifications.
fn ak_signed(key: &thimble_evidence::azure::RsaPublicKey, message: &[u8], sig: &[u8]) -> bool {
    ring::signature::RsaPublicKeyComponents {
        n: &key.n,
        e: &key.e,
    }
    .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
    .is_ok()
}

/// The `TPMT_PUBLIC` inside a marshalled `TPM2B_PUBLIC`, with its bytes.
fn tpm2b_public(
    what: &'static str,
    bytes: &[u8],
) -> Result<(Vec<u8>, thimble_evidence::tpm2::TpmtPublic), String> {
    use thimble_evidence::tpm2::{Marshal, TpmReader, TpmtPublic};
    let mut r = TpmReader::new(bytes);
    let area = r.tpm2b(what).map_err(|e| format!("{what}: {e}"))?;
    r.finish(what).map_err(|e| format!("{what}: {e}"))?;
    let public = TpmtPublic::parse(area).map_err(|e| format!("{what}: {e}"))?;
    Ok((area.to_vec(), public))
}

/// What an accepted `AzureGuest` request yields: the isolation kind, the runtime data's JSON,
/// and the ephemeral key's modulus and exponent.
type GuestChecked = (&'static str, Value, (Vec<u8>, Vec<u8>));

impl VerifierEmulator {
    fn maa_azure_guest(&self, body: &[u8]) -> Reply {
        let checked = azure_guest::parse_request(body)
            .map_err(|e| e.to_string())
            .and_then(|info| self.maa_azure_guest_check(&info).map(|c| (info, c)));
        let (info, (kind, runtime, enc_key)) = match checked {
            Ok(x) => x,
            Err(reason) => return self.refuse("attest", 400, reason),
        };
        let payload: serde_json::Map<String, Value> = info
            .client_payload
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let jwt = self.token(json!({
            "iss": "thimble-sim-maa",
            "x-ms-attestation-type": "azurevm",
            "x-ms-runtime": { "client-payload": payload },
            "x-ms-isolation-tee": {
                "x-ms-attestation-type": kind,
                "x-ms-runtime": runtime,
                "x-ms-compliance-status": "azure-compliant-cvm",
            },
        }));
        match self.encrypt_token(&jwt, &enc_key) {
            Ok(token) => {
                self.verdicts.push("attest: ok".to_owned());
                Reply::new(200, "application/json", azure_guest::answer_body(&token))
            }
            Err(reason) => self.refuse("attest", 500, reason),
        }
    }

    /// What MAA checks before it answers: the hardware evidence (binding the HCL runtime data),
    /// the AK as the runtime data names it, the quote over the PCRs listed, the certification
    /// of the ephemeral key, and that the key's policy is `PolicyPCR` over those PCR values.
    /// Returns the isolation kind, the runtime data's JSON and the key's `(n, e)`.
    fn maa_azure_guest_check(&self, info: &AttestationInfo) -> Result<GuestChecked, String> {
        use thimble_evidence::azure::{RuntimeData, TpmsAttest};
        use thimble_evidence::tpm2::{
            CertifyAttest, Marshal, PublicDetail, TpmlPcrSelection, policy_pcr_digest, sha256_name,
            tpma_object,
        };

        let runtime = info.isolation.runtime_data();
        let bound: [u8; 32] = Sha256::digest(runtime);
        let (kind, evidence, report_data) = match &info.isolation {
            Isolation::SevSnp {
                snp_report,
                vcek_cert_chain,
                ..
            } => {
                if vcek_cert_chain.is_empty() {
                    return Err("VcekCertChain is empty".to_owned());
                }
                let parsed = SnpReport::parse(snp_report).map_err(|e| e.to_string())?;
                (
                    "sevsnpvm",
                    Evidence::SevSnp(SevSnpEvidence {
                        report: snp_report.clone(),
                        auxblob: None,
                    }),
                    parsed.report_data,
                )
            }
            Isolation::Tdx { td_quote, .. } => {
                let parsed = TdxQuote::parse(td_quote).map_err(|e| e.to_string())?;
                (
                    "tdxvm",
                    Evidence::Tdx(TdxEvidence {
                        quote: td_quote.clone(),
                        td_report: None,
                    }),
                    parsed.body.report_data,
                )
            }
            _ => return Err("isolation type not emulated".to_owned()),
        };
        if report_data[..32] != bound {
            return Err("REPORT_DATA[0..32] is not SHA-256 of RunTimeData".to_owned());
        }
        let runtime_data = RuntimeData::parse(runtime).map_err(|e| format!("RunTimeData: {e}"))?;
        let ak = runtime_data
            .ak_pub()
            .map_err(|e| format!("RunTimeData: {e}"))?
            .clone();
        let runtime_json: Value =
            serde_json::from_slice(runtime).map_err(|e| format!("RunTimeData: {e}"))?;

        // The AK sent is the one the hardware evidence vouches for.
        let (_, ak_public) = tpm2b_public("AikPub", &info.tpm.aik_pub)?;
        match &ak_public.detail {
            PublicDetail::Rsa { unique, .. } if unique[..] == ak.n[..] => {}
            _ => return Err("AikPub is not the HCLAkPub of the runtime data".to_owned()),
        }

        // The quote: signed by the AK, over exactly the PCRs listed, with their values.
        let tpm = &info.tpm;
        if !ak_signed(&ak, &tpm.pcr_quote, &tpm.pcr_signature) {
            return Err("PcrSignature does not verify with the AK".to_owned());
        }
        let quote = TpmsAttest::parse(&tpm.pcr_quote).map_err(|e| format!("PcrQuote: {e}"))?;
        let indices: Vec<u32> = tpm.pcrs.iter().map(|p| p.index).collect();
        let selection = TpmlPcrSelection::sha256(&indices).map_err(|e| e.to_string())?;
        let quoted: Vec<u32> = quote.pcr_select.iter().flat_map(|s| s.indices()).collect();
        if quoted != indices {
            return Err(format!(
                "the quote selects PCRs {quoted:?}, PcrSet is {indices:?}"
            ));
        }
        let values: Vec<Vec<u8>> = tpm.pcrs.iter().map(|p| p.digest.clone()).collect();
        // compute_pcr_digest takes the values by PCR number; `selection` bounded them to 0-23.
        let mut by_index = vec![Vec::new(); 24];
        for p in &tpm.pcrs {
            if let Some(slot) = by_index.get_mut(p.index as usize) {
                slot.clone_from(&p.digest);
            }
        }
        let digest = quote
            .compute_pcr_digest(&by_index)
            .map_err(|e| format!("PCRs: {e}"))?;
        if digest[..] != quote.pcr_digest[..] {
            return Err("the PCR values are not the ones quoted".to_owned());
        }

        // The ephemeral key: certified by the AK, a decryption key only a policy session over
        // the quoted PCR values can use.
        if !ak_signed(
            &ak,
            &tpm.enc_key_certify_info,
            &tpm.enc_key_certify_info_signature,
        ) {
            return Err("EncKeyCertifyInfoSignature does not verify with the AK".to_owned());
        }
        let certify = CertifyAttest::parse(&tpm.enc_key_certify_info)
            .map_err(|e| format!("EncKeyCertifyInfo: {e}"))?;
        let (area, key) = tpm2b_public("EncKeyPub", &tpm.enc_key_pub)?;
        if certify.name != sha256_name(&area) {
            return Err("EncKeyCertifyInfo certifies another key than EncKeyPub".to_owned());
        }
        let a = key.object_attributes;
        if a & tpma_object::DECRYPT == 0
            || a & tpma_object::FIXED_TPM == 0
            || a & tpma_object::USER_WITH_AUTH != 0
        {
            return Err(format!(
                "EncKeyPub attributes {a:#010x} are not a TPM-bound decryption key usable by \
                 policy only"
            ));
        }
        let mut pcr_digest = Sha256::new();
        for v in &values {
            pcr_digest.update(v);
        }
        let policy =
            policy_pcr_digest(&selection, &pcr_digest.finalize()).map_err(|e| e.to_string())?;
        if key.auth_policy != policy {
            return Err("EncKeyPub's authPolicy is not PolicyPCR over the quoted PCRs".to_owned());
        }
        let PublicDetail::Rsa { parameters, unique } = &key.detail else {
            return Err("EncKeyPub is not an RSA key".to_owned());
        };
        self.verify(evidence, |_| {})?;
        Ok((
            kind,
            runtime_json,
            (unique.clone(), parameters.exponent_bytes()),
        ))
    }

    /// The token sealed as MAA seals it: AES-256-GCM under a fresh inner key with the
    /// additional data "Transport Key", the inner key RSAES-encrypted to `key`.
    fn encrypt_token(&self, jwt: &str, key: &(Vec<u8>, Vec<u8>)) -> Result<EncryptedToken, String> {
        use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

        let inner_key = self.fresh();
        let mut iv = [0u8; 12];
        iv.copy_from_slice(&self.fresh()[..12]);
        let sealing = UnboundKey::new(&AES_256_GCM, &inner_key)
            .map(LessSafeKey::new)
            .map_err(|_| "AES key".to_owned())?;
        let mut data = jwt.as_bytes().to_vec();
        let tag = sealing
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(azure_guest::TRANSPORT_KEY_AAD),
                &mut data,
            )
            .map_err(|_| "AES-GCM sealing failed".to_owned())?;
        let encrypted_inner_key =
            crate::rsa_sim::rsaes_encrypt(&key.0, &key.1, &inner_key).map_err(|e| e.to_string())?;
        Ok(EncryptedToken {
            encrypted_inner_key,
            key_size_bits: 256,
            iv: iv.to_vec(),
            authentication_data: tag.as_ref().to_vec(),
            jwt: data,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// KBS
// ---------------------------------------------------------------------------------------------

impl VerifierEmulator {
    fn kbs(&self, r: &RecordedRequest) -> Reply {
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", kbs::AUTH_PATH) => self.kbs_auth(r),
            ("POST", kbs::ATTEST_PATH) => self.kbs_attest(r),
            ("GET", p) if p.starts_with(kbs::RESOURCE_PREFIX) => self.kbs_resource(r),
            _ => Reply::json_error(404, "Not found"),
        }
    }

    fn kbs_auth(&self, r: &RecordedRequest) -> Reply {
        let auth = match kbs::parse_auth_request(&r.body) {
            Ok(a) => a,
            Err(e) => return self.refuse("auth", 400, e.to_string()),
        };
        if auth.version != kbs::PROTOCOL_VERSION {
            return self.refuse(
                "auth",
                400,
                format!("protocol version {} is not 0.4.0", auth.version),
            );
        }
        if !["snp", "tdx", "az-snp-vtpm", "az-tdx-vtpm"].contains(&auth.tee.as_str()) {
            return self.refuse("auth", 400, format!("unknown tee {:?}", auth.tee));
        }
        let id = hex::encode(&self.fresh()[..16]);
        let nonce = STANDARD.encode(self.fresh());
        self.state().kbs.insert(
            id.clone(),
            KbsSession {
                tee: auth.tee,
                nonce: nonce.clone(),
                key: None,
            },
        );
        self.verdicts.push("auth: ok".to_owned());
        Reply::new(
            200,
            "application/json",
            kbs::challenge_answer(&nonce, self.config.kbs_hash),
        )
        .with_header(
            "Set-Cookie",
            format!("{}={id}; Path=/kbs/v0; HttpOnly", kbs::SESSION_COOKIE),
        )
    }

    fn kbs_session_id(r: &RecordedRequest) -> Option<String> {
        r.header("cookie")?.split(';').find_map(|c| {
            let (n, v) = c.trim().split_once('=')?;
            (n == kbs::SESSION_COOKIE).then(|| v.to_owned())
        })
    }

    fn kbs_attest(&self, r: &RecordedRequest) -> Reply {
        let Some(id) = Self::kbs_session_id(r) else {
            return self.refuse("attest", 401, "missing session cookie".to_owned());
        };
        let (tee, nonce) = match self.state().kbs.get(&id) {
            Some(s) => (s.tee.clone(), s.nonce.clone()),
            None => return self.refuse("attest", 401, "invalid or expired session".to_owned()),
        };
        let request = match kbs::parse_attest_request(&r.body) {
            Ok(a) => a,
            Err(e) => return self.refuse("attest", 400, e.to_string()),
        };
        if request.nonce != nonce {
            return self.refuse(
                "attest",
                401,
                "runtime-data.nonce is not the session's".to_owned(),
            );
        }
        let hash = self.config.kbs_hash.unwrap_or(HashAlgorithm::Sha384);
        let digest = kbs::binding_digest(
            hash,
            &request.nonce,
            &request.key_jwk,
            &request.additional_evidence,
        );
        let primary = request.primary_evidence.to_string();
        let evidence = match interop::trustee::import(Some(&tee), primary.as_bytes()) {
            Ok(i) => i.evidence,
            Err(e) => return self.refuse("attest", 400, e.to_string()),
        };
        let padded = thimble_evidence::report_data::padded(&digest);
        let result = self.verify(evidence, |o| match tee.as_str() {
            "snp" | "tdx" => {
                o.snp.report_data = padded;
                o.tdx.report_data = padded;
            }
            // Trustee compares the TPM quote's extraData exactly and user-data by prefix.
            _ => o.nonce = Some(digest.clone()),
        });
        if let Err(reason) = result {
            return self.refuse("attest", 401, reason);
        }
        if let Some(s) = self.state().kbs.get_mut(&id) {
            s.key = Some(request.key);
        }
        self.token_reply(
            "attest",
            json!({
                "iss": "thimble-sim-kbs",
                "tee": tee,
                "tee-pubkey": request.key_jwk,
                "report_data": hex::encode(&digest),
            }),
        )
    }

    fn kbs_resource(&self, r: &RecordedRequest) -> Reply {
        let Some(id) = Self::kbs_session_id(r) else {
            return self.refuse("resource", 401, "missing session cookie".to_owned());
        };
        let key = match self.state().kbs.get(&id) {
            Some(KbsSession { key: Some(k), .. }) => *k,
            Some(_) => return self.refuse("resource", 401, "session not attested".to_owned()),
            None => return self.refuse("resource", 401, "invalid or expired session".to_owned()),
        };
        let name = &r.path[kbs::RESOURCE_PREFIX.len()..];
        let Some((_, plain)) = self.config.resources.iter().find(|(n, _)| n == name) else {
            return self.refuse("resource", 404, format!("no resource {name}"));
        };
        match jwe::encrypt_to(&key, plain) {
            Ok(body) => {
                self.verdicts.push("resource: ok".to_owned());
                Reply::new(200, "application/json", body)
            }
            Err(e) => self.refuse("resource", 500, e.to_string()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Intel Trust Authority
// ---------------------------------------------------------------------------------------------

impl VerifierEmulator {
    fn ita(&self, r: &RecordedRequest) -> Reply {
        if let Some(want) = &self.config.api_key {
            if r.header(ita::API_KEY_HEADER) != Some(want.as_str()) {
                return self.refuse("auth", 401, "missing or wrong x-api-key".to_owned());
            }
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", ita::NONCE_PATH) => {
                let val = self.fresh();
                let iat = b"2026-12-02T00:00:00Z".to_vec();
                let key = hmac::Key::new(hmac::HMAC_SHA256, TOKEN_TEST_KEY);
                let mut signed = val.clone();
                signed.extend_from_slice(&iat);
                let signature = hmac::sign(&key, &signed).as_ref().to_vec();
                let nonce = ita::VerifierNonce {
                    val,
                    iat,
                    signature,
                };
                let body = nonce.to_json().to_string();
                self.state().ita_nonces.push(nonce);
                self.verdicts.push("nonce: ok".to_owned());
                Reply::new(200, "application/json", body.into_bytes())
            }
            ("POST", ita::ATTEST_PATH) => self.ita_attest(r, false),
            ("POST", ita::AZURE_ATTEST_PATH) => self.ita_attest(r, true),
            _ => Reply::json_error(404, "Not found"),
        }
    }

    fn ita_attest(&self, r: &RecordedRequest, azure: bool) -> Reply {
        let e = match ita::parse_attest_request(&r.body) {
            Ok(e) => e,
            Err(err) => return self.refuse("attest", 400, err.to_string()),
        };
        let Some(nonce) = &e.verifier_nonce else {
            return self.refuse("attest", 400, "no verifier_nonce".to_owned());
        };
        if !self.state().ita_nonces.contains(nonce) {
            return self.refuse(
                "attest",
                400,
                "verifier_nonce was not issued here".to_owned(),
            );
        }
        let result = if azure {
            self.ita_azure(&e, nonce)
        } else {
            let expected: [u8; 64] =
                Sha512::digest(ita::binding_input(Some(nonce), &e.runtime_data));
            self.verify(
                Evidence::Tdx(TdxEvidence {
                    quote: e.quote.clone(),
                    td_report: None,
                }),
                |o| o.tdx.report_data = Some(expected),
            )
        };
        match result {
            Ok(()) => self.token_reply(
                "attest",
                json!({
                    "iss": "thimble-sim-ita",
                    "attester_type": if azure { "azure-tdx" } else { "tdx" },
                    "attester_runtime_data": STANDARD.encode(&e.runtime_data),
                    "policy_ids": e.policy_ids,
                }),
            ),
            Err(reason) => self.refuse("attest", 400, reason),
        }
    }

    /// An Azure TD: the quote binds the HCL runtime data (its SHA-256 in REPORT_DATA), whose
    /// `user-data` binds the nonce and the user data.
    fn ita_azure(&self, e: &ita::Evidence, nonce: &ita::VerifierNonce) -> Result<(), String> {
        let quote = TdxQuote::parse(&e.quote).map_err(|err| err.to_string())?;
        let bound: [u8; 32] = Sha256::digest(&e.runtime_data);
        if quote.body.report_data[..32] != bound {
            return Err("REPORT_DATA[0..32] is not SHA-256 of runtime_data".to_owned());
        }
        let runtime = thimble_evidence::azure::RuntimeData::parse(&e.runtime_data)
            .map_err(|err| format!("runtime_data: {err}"))?;
        let user = e.user_data.as_deref().unwrap_or_default();
        let expected = Sha512::digest(ita::binding_input(Some(nonce), user)).to_vec();
        if runtime.user_data.as_deref() != Some(expected.as_slice()) {
            return Err("the runtime data's user-data does not bind the nonce".to_owned());
        }
        self.verify(
            Evidence::Tdx(TdxEvidence {
                quote: e.quote.clone(),
                td_report: None,
            }),
            |_| {},
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Veraison
// ---------------------------------------------------------------------------------------------

const SESSION_MEDIA_TYPE: &str = "application/vnd.veraison.challenge-response-session+json";
const SESSION_PREFIX: &str = "/challenge-response/v1/session/";

impl VerifierEmulator {
    fn veraison(&self, r: &RecordedRequest) -> Reply {
        let accept = [interop::tsm_report::MEDIA_TYPE];
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", veraison::NEW_SESSION_PATH) => {
                let size = r
                    .query
                    .as_deref()
                    .and_then(|q| q.strip_prefix("nonceSize="))
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(32);
                if !(8..=64).contains(&size) {
                    return self.refuse("session", 400, format!("nonceSize {size}"));
                }
                let nonce = match &self.config.veraison_nonce {
                    Some(n) => n.clone(),
                    None => {
                        let mut n = self.fresh();
                        n.extend_from_slice(&self.fresh());
                        n.truncate(size);
                        n
                    }
                };
                let id = hex::encode(&self.fresh()[..8]);
                self.state().veraison.insert(
                    id.clone(),
                    VeraisonSession {
                        nonce: nonce.clone(),
                        status: "waiting".to_owned(),
                        result: None,
                    },
                );
                self.verdicts.push("session: ok".to_owned());
                let mut reply = Reply::new(
                    201,
                    SESSION_MEDIA_TYPE,
                    veraison::session_json(&nonce, "waiting", &accept, None),
                );
                reply = reply.with_header("Location", format!("session/{id}"));
                reply
            }
            (method, p) if p.starts_with(SESSION_PREFIX) => {
                let id = &p[SESSION_PREFIX.len()..];
                let Some(session) = self.state().veraison.get(id).cloned() else {
                    return self.refuse("evidence", 404, format!("no session {id}"));
                };
                match method {
                    "GET" => Reply::new(
                        200,
                        SESSION_MEDIA_TYPE,
                        veraison::session_json(
                            &session.nonce,
                            &session.status,
                            &accept,
                            session.result.as_deref(),
                        ),
                    ),
                    "POST" => self.veraison_evidence(r, id, session),
                    _ => Reply::json_error(405, "Method not allowed"),
                }
            }
            _ => Reply::json_error(404, "Not found"),
        }
    }

    fn veraison_evidence(&self, r: &RecordedRequest, id: &str, session: VeraisonSession) -> Reply {
        let accept = [interop::tsm_report::MEDIA_TYPE];
        if r.header("content-type") != Some(interop::tsm_report::MEDIA_TYPE) {
            return self.refuse(
                "evidence",
                415,
                format!("media type {:?} is not accepted", r.header("content-type")),
            );
        }
        let result = interop::tsm_report::import(&r.body)
            .map_err(|e| e.to_string())
            .and_then(|i| {
                let expected: [u8; 64] = session
                    .nonce
                    .as_slice()
                    .try_into()
                    .map_err(|_| "the session nonce is not 64 bytes".to_owned())?;
                self.verify(i.evidence, |o| o.snp.report_data = Some(expected))
            });
        let (status, ear) = match result {
            Ok(()) => {
                self.verdicts.push("evidence: ok".to_owned());
                let ear = self.token(json!({
                    "eat_profile": "tag:github.com,2023:veraison/ear",
                    "submods": { "SEVSNP": { "ear.status": "affirming" } },
                }));
                ("complete", Some(ear))
            }
            Err(reason) => {
                self.verdicts.push(format!("evidence: {reason}"));
                ("failed", None)
            }
        };
        if let Some(s) = self.state().veraison.get_mut(id) {
            s.status = status.to_owned();
            s.result = ear.clone();
        }
        Reply::new(
            200,
            SESSION_MEDIA_TYPE,
            veraison::session_json(&session.nonce, status, &accept, ear.as_deref()),
        )
    }
}

/// Verifies an emulator token's HS256 signature (for tests).
pub fn token_signature_valid(jwt: &str) -> bool {
    let Some((input, sig)) = jwt.rsplit_once('.') else {
        return false;
    };
    let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, TOKEN_TEST_KEY);
    hmac::verify(&key, input.as_bytes(), &sig).is_ok()
}
