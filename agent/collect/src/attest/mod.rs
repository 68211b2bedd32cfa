// SPDX-License-Identifier: Apache-2.0
//! `attest`: the whole exchange with a remote verifier, from the guest. For each verifier it
//! gets the verifier's nonce where the protocol has one, computes REPORT_DATA (on Azure the HCL
//! report's `user-data` and the TPM quote's qualifying data) by that verifier's rule, collects
//! with [`crate::collect`] under that binding, builds the request from the bundle, sends it, and
//! returns what came back: a token, Veraison's attestation result, and for Trustee optionally a
//! resource decrypted with the key made for the session ([`jwe`]). The messages themselves are
//! built and read by `thimble_evidence::attest`; the HTTP goes through the narrow
//! [`Fetch`] trait, so that tests drive it against the emulators of `thimble_sim::verifiers`.
//!
//! MAA on Azure has two protocols: the `SevSnpVm`/`TdxVm` bodies (the default), and the Azure
//! guest protocol (`AzureGuest`, [`azure_guest`]), where the vTPM also quotes PCRs 0-7 and
//! certifies an ephemeral key bound to them, and the token comes back encrypted to that key.
//!
//! Without `send`, nothing goes to the verifier: the evidence request is built against the
//! nonce the caller gives (`verifier_nonce`) and returned, for debugging and for checking
//! against the verifiers' own code.

pub mod azure_guest;
pub mod jwe;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use thimble_evidence::attest::kbs::{self, Challenge, HashAlgorithm};
use thimble_evidence::attest::token::{self, Token};
use thimble_evidence::attest::{MessageError, Verifier, ita, maa, veraison};
use thimble_evidence::bundle::{Bundle, EventLogKind, Evidence, Tee};
use thimble_evidence::interop::{self, ExportError, Exported};

use crate::env::Environment;
use crate::error::{CollectError, Warning};
use crate::http::{Fetch, FetchError, HttpResponse};
use crate::request::{Binding, CollectRequest};

pub use jwe::{JweError, SessionKey};

/// Most times a Veraison session that is `processing` is asked again.
const MAX_SESSION_POLLS: u32 = 20;
/// Wait between two of those.
const SESSION_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What a verifier is asked, beyond the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifierRequest {
    /// MAA: the runtime data to bind (JSON); default `{"nonce": "<hex>"}`. Behind Azure's
    /// paravisor the HCL report's runtime data is sent and this must be `None`.
    Maa {
        /// The runtime data.
        runtime_data: Option<Vec<u8>>,
        /// Use the Azure guest protocol (`AzureGuest`, Azure only) instead of `SevSnpVm` /
        /// `TdxVm`.
        azure_guest: bool,
    },
    /// Trustee's KBS, with the resource (`repository/type/tag`) to fetch after attesting.
    Kbs {
        /// The resource to fetch.
        resource: Option<String>,
    },
    /// Intel Trust Authority with its API key.
    Ita {
        /// The API key (sent as `x-api-key`, never logged).
        api_key: String,
        /// Runtime data to bind (Azure: the user data bound through `user-data`).
        runtime_data: Option<Vec<u8>>,
        /// Policies to appraise against.
        policy_ids: Vec<String>,
    },
    /// A Veraison verifier.
    Veraison,
}

impl VerifierRequest {
    /// The verifier asked.
    pub fn verifier(&self) -> Verifier {
        match self {
            VerifierRequest::Maa { .. } => Verifier::Maa,
            VerifierRequest::Kbs { .. } => Verifier::Kbs,
            VerifierRequest::Ita { .. } => Verifier::Ita,
            VerifierRequest::Veraison => Verifier::Veraison,
        }
    }
}

/// One `attest` run.
#[derive(Debug, Clone)]
pub struct AttestRequest {
    /// The verifier and what it is asked.
    pub verifier: VerifierRequest,
    /// The verifier's base URL, without a trailing slash (`https://host`, `http://127.0.0.1:PORT`).
    pub url: String,
    /// How to collect; its `binding` is replaced by the verifier's.
    pub collect: CollectRequest,
    /// The caller's own nonce, for the verifiers that take one from the guest (MAA's default
    /// runtime data, MAA behind the paravisor); random when absent.
    pub nonce: Option<Vec<u8>>,
    /// Send the request; without it, stop once the evidence request is built.
    pub send: bool,
    /// The verifier's nonce, as the verifier would give it, instead of asking for one: the KBS
    /// nonce string, ITA's nonce JSON, Veraison's session nonce in base64.
    pub verifier_nonce: Option<String>,
}

/// A request as sent (or, without `send`, as it would be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    /// `POST`.
    pub method: &'static str,
    /// The full URL.
    pub url: String,
    /// Its `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// What an `attest` run produced.
#[derive(Debug)]
pub struct Attested {
    /// The evidence, collected under the verifier's binding.
    pub bundle: Bundle,
    /// What the collection warned about.
    pub warnings: Vec<Warning>,
    /// The evidence request.
    pub request: SentRequest,
    /// The verifier's token (Veraison: its attestation result); `None` without `send`.
    pub token: Option<Token>,
    /// The KBS resource, decrypted.
    pub resource: Option<Vec<u8>>,
    /// What happened, step by step, for `-v` and logs (never a secret).
    pub log: Vec<String>,
}

/// Why an `attest` run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The collection failed.
    #[error(transparent)]
    Collect(#[from] CollectError),
    /// The verifier could not be reached, did not answer in time, or stayed unavailable
    /// (429 or 5xx after the retries).
    #[error("{verifier} {step}: verifier unavailable")]
    Unavailable {
        /// The verifier.
        verifier: Verifier,
        /// The step (`auth`, `attest`, `nonce`, `resource`).
        step: &'static str,
        /// The transport's error.
        #[source]
        source: FetchError,
    },
    /// The verifier refused: a 4xx answer (credentials, the request, the evidence or its
    /// binding), or a Veraison session that `failed`.
    #[error("{verifier} {step}: refused with status {status}: {detail}")]
    Refused {
        /// The verifier.
        verifier: Verifier,
        /// The step.
        step: &'static str,
        /// The HTTP status (0 for a failed Veraison session).
        status: u16,
        /// The start of the answer's body.
        detail: String,
    },
    /// An answer is not what the protocol says.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The resource could not be decrypted.
    #[error(transparent)]
    Jwe(#[from] JweError),
    /// The request cannot be made: a TEE the verifier does not take, an option that does not
    /// apply, a nonce given in the wrong form.
    #[error("{verifier}: {reason}")]
    Unsupported {
        /// The verifier.
        verifier: Verifier,
        /// Why.
        reason: String,
    },
    /// The bundle could not be put into the verifier's form.
    #[error(transparent)]
    Export(#[from] ExportError),
}

/// Runs the exchange `request` describes in `env`, talking to the verifier through `http`;
/// `now` dates the collection (seconds since the epoch).
pub fn attest<E: Environment>(
    env: &E,
    http: &dyn Fetch,
    request: &AttestRequest,
    now: i64,
) -> Result<Attested, AttestError> {
    let verifier = request.verifier.verifier();
    let Some(tee) = crate::tee_of(env, &request.collect) else {
        // Let the collection say what is missing, as `collect` would.
        crate::collect(env, &request.collect, now)?;
        return Err(AttestError::Unsupported {
            verifier,
            reason: "the TEE of this machine could not be told".to_owned(),
        });
    };
    let x = Exchange {
        env,
        http,
        request,
        verifier,
        tee,
        now,
        log: Vec::new(),
    };
    match &request.verifier {
        VerifierRequest::Maa {
            azure_guest: true, ..
        } => x.maa_azure_guest(),
        VerifierRequest::Maa { runtime_data, .. } => x.maa(runtime_data.as_deref()),
        VerifierRequest::Kbs { resource } => x.kbs(resource.as_deref()),
        VerifierRequest::Ita {
            api_key,
            runtime_data,
            policy_ids,
        } => x.ita(api_key, runtime_data.as_deref(), policy_ids),
        VerifierRequest::Veraison => x.veraison(),
    }
}

/// One exchange's state.
struct Exchange<'a, E: Environment> {
    env: &'a E,
    http: &'a dyn Fetch,
    request: &'a AttestRequest,
    verifier: Verifier,
    tee: Tee,
    now: i64,
    log: Vec<String>,
}

impl<E: Environment> Exchange<'_, E> {
    fn unsupported(&self, reason: impl Into<String>) -> AttestError {
        AttestError::Unsupported {
            verifier: self.verifier,
            reason: reason.into(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.request.url.trim_end_matches('/'))
    }

    /// Collects with `binding`.
    fn collect(&mut self, binding: Binding) -> Result<(Bundle, Vec<Warning>), AttestError> {
        let mut collect = self.request.collect.clone();
        collect.binding = binding;
        let collected = crate::collect(self.env, &collect, self.now)?;
        self.log.push(format!(
            "collected {} evidence bound to the {} binding",
            collected.bundle.tee(),
            self.verifier
        ));
        Ok((collected.bundle, collected.warnings))
    }

    /// The caller's nonce, or 32 random bytes.
    fn own_nonce(&self) -> Result<Vec<u8>, AttestError> {
        if let Some(n) = &self.request.nonce {
            return Ok(n.clone());
        }
        let mut n = vec![0u8; 32];
        self.env
            .fill_random(&mut n)
            .map_err(|e| AttestError::Collect(e.into()))?;
        Ok(n)
    }

    fn post(
        &mut self,
        step: &'static str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, AttestError> {
        self.request.collect.progress.report(&format!(
            "waiting for {} ({step}: POST {url})",
            self.verifier
        ));
        let r = self
            .http
            .post(url, headers, body)
            .map_err(|e| self.failed(step, e))?;
        self.log.push(format!("{step}: POST {url}: {}", r.status));
        Ok(r)
    }

    fn get(
        &mut self,
        step: &'static str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, AttestError> {
        self.request.collect.progress.report(&format!(
            "waiting for {} ({step}: GET {url})",
            self.verifier
        ));
        let r = self
            .http
            .get(url, headers)
            .map_err(|e| self.failed(step, e))?;
        self.log.push(format!("{step}: GET {url}: {}", r.status));
        Ok(r)
    }

    /// Classifies a failed request: a 4xx other than 408 and 429 is a refusal; everything
    /// else (no connection, time-outs, 408, 429 and 5xx after the retries) is unavailability.
    fn failed(&self, step: &'static str, e: FetchError) -> AttestError {
        match e {
            FetchError::Status {
                status,
                body_excerpt,
                ..
            } if (400..500).contains(&status) && status != 408 && status != 429 => {
                AttestError::Refused {
                    verifier: self.verifier,
                    step,
                    status,
                    detail: body_excerpt,
                }
            }
            FetchError::Redirect { status, .. } => AttestError::Refused {
                verifier: self.verifier,
                step,
                status,
                detail: "the verifier redirected; redirects are not followed".to_owned(),
            },
            FetchError::TooLarge { limit, .. } => AttestError::Message(MessageError {
                verifier: self.verifier,
                what: step_answer(step),
                reason: format!("larger than the {limit} bytes accepted"),
            }),
            FetchError::InvalidUrl { url } => self.unsupported(format!("invalid URL {url:?}")),
            source => AttestError::Unavailable {
                verifier: self.verifier,
                step,
                source,
            },
        }
    }

    fn finish(
        self,
        bundle: Bundle,
        warnings: Vec<Warning>,
        request: SentRequest,
        token: Option<Token>,
        resource: Option<Vec<u8>>,
    ) -> Result<Attested, AttestError> {
        Ok(Attested {
            bundle,
            warnings,
            request,
            token,
            resource,
            log: self.log,
        })
    }

    /// The evidence request as a JSON `POST` to `path` on the verifier.
    fn json_request(&self, path: &str, body: Vec<u8>) -> SentRequest {
        SentRequest {
            method: "POST",
            url: self.url(path),
            content_type: "application/json".to_owned(),
            body,
        }
    }

    /// Sends the evidence request (step `step`) with its `Content-Type` and `headers`.
    fn send(
        &mut self,
        step: &'static str,
        request: &SentRequest,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, AttestError> {
        let mut all = vec![("Content-Type", request.content_type.as_str())];
        all.extend_from_slice(headers);
        self.post(step, &request.url, &all, &request.body)
    }

    // -----------------------------------------------------------------------------------------

    fn maa(mut self, runtime_data: Option<&[u8]>) -> Result<Attested, AttestError> {
        let azure = matches!(self.tee, Tee::AzureSevSnp | Tee::AzureTdx);
        if self.request.verifier_nonce.is_some() {
            return Err(self.unsupported("MAA has no verifier nonce; leave --verifier-nonce out"));
        }
        let (bundle, warnings, body) = if azure {
            if runtime_data.is_some() {
                return Err(self.unsupported(
                    "behind Azure's paravisor the runtime data is the HCL report's own; give \
                     --nonce to bind a value through its user-data instead",
                ));
            }
            let (bundle, warnings) = self.collect(Binding::Nonce(self.own_nonce()?))?;
            let body = file(interop::maa::export(&bundle)?);
            (bundle, warnings, body)
        } else {
            let runtime = match runtime_data {
                Some(r) => r.to_vec(),
                None => maa::default_runtime_data(&self.own_nonce()?),
            };
            let (bundle, warnings) =
                self.collect(Binding::ReportData(maa::report_data(&runtime)))?;
            let body = file(interop::maa::export_with_runtime_data(&bundle, &runtime)?);
            (bundle, warnings, body)
        };
        let request = self.json_request(maa::path(self.tee), body);
        if !self.request.send {
            return self.finish(bundle, warnings, request, None, None);
        }
        let answer = self.send("attest", &request, &[("Accept", "application/json")])?;
        let token = token::parse_token_answer(Verifier::Maa, &answer.body)?;
        self.finish(bundle, warnings, request, Some(token), None)
    }

    /// MAA's Azure guest protocol: collect as for the VM protocol (the nonce bound through the
    /// HCL report's `user-data`), then ask the vTPM for the quote over PCRs 0-7 and the
    /// certified ephemeral key, send `AttestationInfo` with the nonce in `ClientPayload`, and
    /// decrypt the answer with the same ephemeral key.
    fn maa_azure_guest(mut self) -> Result<Attested, AttestError> {
        use thimble_evidence::attest::azure_guest as guest;

        if !matches!(self.tee, Tee::AzureSevSnp | Tee::AzureTdx) {
            return Err(self.unsupported(format!(
                "the AzureGuest protocol is for Azure confidential VMs (behind the paravisor, \
                 with a vTPM); this machine is {}",
                self.tee
            )));
        }
        if self.request.verifier_nonce.is_some() {
            return Err(self.unsupported("MAA has no verifier nonce; leave --verifier-nonce out"));
        }
        let nonce = self.own_nonce()?;
        let (bundle, warnings) = self.collect(Binding::Nonce(nonce.clone()))?;
        let isolation = guest::isolation_from_bundle(&bundle)?;
        let tpm_path = self.request.collect.devices.tpm.clone();
        let opened = self
            .env
            .open_tpm(tpm_path.as_deref())
            .map_err(vtpm_failed)?;
        let mut client = crate::vtpm::VtpmClient::new(opened.device);
        let tpm = azure_guest::tpm_info(&mut client).map_err(vtpm_failed)?;
        if tpm.aik_cert.is_empty() {
            self.log.push(
                "maa azure-guest: the vTPM holds no AK certificate (NV 0x01c101d0); AikCert is \
                 sent empty"
                    .to_owned(),
            );
        }
        self.log.push(format!(
            "maa azure-guest: quoted PCRs 0-7 and certified an ephemeral key ({} bytes of \
             TPM2B_PUBLIC) with the AK",
            tpm.enc_key_pub.len()
        ));
        let tcg_logs = bundle
            .event_logs
            .iter()
            .find(|l| l.kind == EventLogKind::Tcg2)
            .map(|l| l.data.clone())
            .unwrap_or_default();
        let info = guest::AttestationInfo {
            os: azure_guest::os_info(),
            tcg_logs,
            client_payload: vec![("nonce".to_owned(), hex::encode(&nonce))],
            tpm,
            isolation,
        };
        let request = self.json_request(guest::PATH, guest::request_body(&info));
        if !self.request.send {
            return self.finish(bundle, warnings, request, None, None);
        }
        let answer = self.send("attest", &request, &[("Accept", "application/json")])?;
        let encrypted = guest::parse_answer(&answer.body)?;
        let inner_key = client
            .decrypt_with_ephemeral_key(
                &crate::vtpm::GUEST_ATTESTATION_PCRS,
                &encrypted.encrypted_inner_key,
            )
            .map_err(vtpm_failed)?;
        let jwt = azure_guest::decrypt_token(&encrypted, &inner_key)?;
        self.log.push(
            "maa azure-guest: inner key recovered by the vTPM under the PCR policy; token \
             decrypted"
                .to_owned(),
        );
        let token = token::parse_jwt(Verifier::Maa, &jwt)?;
        self.finish(bundle, warnings, request, Some(token), None)
    }

    // -----------------------------------------------------------------------------------------

    fn kbs(mut self, resource: Option<&str>) -> Result<Attested, AttestError> {
        let resource_path = resource
            .map(kbs::resource_path)
            .transpose()
            .map_err(|e| self.unsupported(e))?;
        let tee_name = interop::trustee::tee_name(self.tee);
        if self.request.send && self.request.verifier_nonce.is_some() {
            return Err(self.unsupported(
                "a KBS nonce cannot be given for a real exchange: it belongs to the session \
                 `auth` opens",
            ));
        }
        let (challenge, cookie) = match &self.request.verifier_nonce {
            Some(nonce) => (
                Challenge {
                    nonce: nonce.clone(),
                    hash: HashAlgorithm::Sha384,
                },
                None,
            ),
            None if !self.request.send => {
                return Err(self.unsupported(
                    "without sending, the KBS nonce must be given with --verifier-nonce",
                ));
            }
            None => {
                let url = self.url(kbs::AUTH_PATH);
                let answer = self.post(
                    "auth",
                    &url,
                    &[("Content-Type", "application/json")],
                    &kbs::auth_request(tee_name),
                )?;
                let cookie = session_cookie(&answer);
                (kbs::parse_challenge(&answer.body)?, cookie)
            }
        };
        let key = SessionKey::generate()?;
        let jwk = key.public().to_jwk();
        let digest = kbs::binding_digest(challenge.hash, &challenge.nonce, &jwk, "");
        self.log.push(format!(
            "kbs: {} binding digest {} of the nonce and the session key",
            challenge.hash.as_str(),
            hex::encode(&digest)
        ));
        let (bundle, warnings) = self.collect(Binding::Padded(digest))?;
        let primary = file(interop::trustee::export(&bundle)?);
        let primary: serde_json::Value = serde_json::from_slice(&primary).map_err(|e| {
            self.unsupported(format!("Trustee evidence JSON could not be read back: {e}"))
        })?;
        let request = self.json_request(
            kbs::ATTEST_PATH,
            kbs::attest_request(&challenge.nonce, &key.public(), primary),
        );
        if !self.request.send {
            return self.finish(bundle, warnings, request, None, None);
        }
        let cookie_header = cookie.map(|c| format!("{}={c}", kbs::SESSION_COOKIE));
        let mut headers = Vec::new();
        if let Some(c) = &cookie_header {
            headers.push(("Cookie", c.as_str()));
        }
        let answer = self.send("attest", &request, &headers)?;
        let token = token::parse_token_answer(Verifier::Kbs, &answer.body)?;
        let resource = match resource_path {
            None => None,
            Some(path) => {
                let mut headers = Vec::new();
                if let Some(c) = &cookie_header {
                    headers.push(("Cookie", c.as_str()));
                }
                let answer = self.get("resource", &self.url(&path), &headers)?;
                let jwe = kbs::parse_jwe(&answer.body)?;
                let plain = key.decrypt(&jwe)?;
                self.log.push(format!(
                    "kbs: resource {} decrypted ({} bytes)",
                    resource.unwrap_or_default(),
                    plain.len()
                ));
                Some(plain)
            }
        };
        self.finish(bundle, warnings, request, Some(token), resource)
    }

    // -----------------------------------------------------------------------------------------

    fn ita(
        mut self,
        api_key: &str,
        runtime_data: Option<&[u8]>,
        policy_ids: &[String],
    ) -> Result<Attested, AttestError> {
        let azure = match self.tee {
            Tee::Tdx => false,
            Tee::AzureTdx => true,
            other => {
                return Err(self.unsupported(format!(
                    "Intel Trust Authority appraises TDX evidence; this machine is {other}"
                )));
            }
        };
        let headers = [
            (ita::API_KEY_HEADER, api_key),
            ("Accept", "application/json"),
        ];
        let nonce = match &self.request.verifier_nonce {
            Some(text) => ita::parse_nonce(text.as_bytes())?,
            None if !self.request.send => {
                return Err(self.unsupported(
                    "without sending, ITA's nonce must be given with --verifier-nonce (its JSON)",
                ));
            }
            None => {
                let url = self.url(ita::NONCE_PATH);
                let answer = self.get("nonce", &url, &headers)?;
                ita::parse_nonce(&answer.body)?
            }
        };
        let data = runtime_data.unwrap_or_default();
        let (bundle, warnings) =
            self.collect(Binding::Nonce(ita::binding_input(Some(&nonce), data)))?;
        let evidence = match &bundle.evidence {
            Evidence::Tdx(e) => ita::Evidence {
                quote: e.quote.clone(),
                runtime_data: data.to_vec(),
                user_data: None,
                event_log: bundle
                    .event_logs
                    .iter()
                    .find(|l| l.kind == EventLogKind::Ccel)
                    .map(|l| l.data.clone()),
                verifier_nonce: Some(nonce),
                policy_ids: policy_ids.to_vec(),
            },
            Evidence::AzureTdx(e) => {
                let hcl = thimble_evidence::azure::HclReport::parse(&e.hcl_report)
                    .map_err(|err| self.unsupported(format!("the HCL report: {err}")))?;
                ita::Evidence {
                    quote: e.tdx_quote.clone(),
                    runtime_data: hcl.runtime_data_bytes().to_vec(),
                    user_data: Some(data.to_vec()),
                    event_log: None,
                    verifier_nonce: Some(nonce),
                    policy_ids: policy_ids.to_vec(),
                }
            }
            _ => return Err(self.unsupported("the collection gave no TDX evidence")),
        };
        let path = if azure {
            ita::AZURE_ATTEST_PATH
        } else {
            ita::ATTEST_PATH
        };
        let request = self.json_request(path, ita::attest_request(&evidence));
        if !self.request.send {
            return self.finish(bundle, warnings, request, None, None);
        }
        let answer = self.send("attest", &request, &headers)?;
        let token = token::parse_token_answer(Verifier::Ita, &answer.body)?;
        self.finish(bundle, warnings, request, Some(token), None)
    }

    // -----------------------------------------------------------------------------------------

    fn veraison(mut self) -> Result<Attested, AttestError> {
        if self.tee != Tee::SevSnp {
            return Err(self.unsupported(format!(
                "Veraison's services have a scheme for SEV-SNP evidence only (the tsm-report); \
                 this machine is {}",
                self.tee
            )));
        }
        if self.request.send && self.request.verifier_nonce.is_some() {
            return Err(self.unsupported(
                "a Veraison nonce cannot be given for a real exchange: it belongs to the session \
                 newSession opens",
            ));
        }
        let (nonce, session) = match &self.request.verifier_nonce {
            Some(text) => {
                let nonce = STANDARD
                    .decode(text.trim())
                    .or_else(|_| URL_SAFE.decode(text.trim()))
                    .map_err(|e| {
                        self.unsupported(format!("--verifier-nonce is not base64: {e}"))
                    })?;
                (nonce, None)
            }
            None if !self.request.send => {
                return Err(self.unsupported(
                    "without sending, the session nonce must be given with --verifier-nonce \
                     (base64)",
                ));
            }
            None => {
                let url = self.url(&format!(
                    "{}?nonceSize={}",
                    veraison::NEW_SESSION_PATH,
                    veraison::NONCE_SIZE
                ));
                let answer = self.post(
                    "session",
                    &url,
                    &[(
                        "Accept",
                        "application/vnd.veraison.challenge-response-session+json",
                    )],
                    &[],
                )?;
                let session = veraison::parse_session(&answer.body)?;
                let location = answer.header("location").ok_or_else(|| MessageError {
                    verifier: Verifier::Veraison,
                    what: "newSession answer",
                    reason: "no `Location` header".to_owned(),
                })?;
                let session_url = veraison::session_url(&self.request.url, location)?;
                (session.nonce, Some(session_url))
            }
        };
        let report_data = veraison::report_data(&nonce)?;
        let (bundle, warnings) = self.collect(Binding::ReportData(report_data))?;
        let body = file(interop::tsm_report::export(&bundle)?);
        let url = session
            .clone()
            .unwrap_or_else(|| self.url("/challenge-response/v1/session/SESSION"));
        let request = SentRequest {
            method: "POST",
            url,
            content_type: interop::tsm_report::MEDIA_TYPE.to_owned(),
            body,
        };
        if !self.request.send {
            return self.finish(bundle, warnings, request, None, None);
        }
        let accept = "application/vnd.veraison.challenge-response-session+json";
        let answer = self.send("evidence", &request, &[("Accept", accept)])?;
        let mut session = veraison::parse_session(&answer.body)?;
        let mut polls = 0;
        while session.status == "processing" && polls < MAX_SESSION_POLLS {
            std::thread::sleep(SESSION_POLL_INTERVAL);
            polls += 1;
            let answer = self.get("session", &request.url, &[("Accept", accept)])?;
            session = veraison::parse_session(&answer.body)?;
        }
        match (session.status.as_str(), &session.result) {
            ("complete", Some(result)) => {
                let token = token::parse_jwt(Verifier::Veraison, result)?;
                self.finish(bundle, warnings, request, Some(token), None)
            }
            ("complete", None) => Err(MessageError {
                verifier: Verifier::Veraison,
                what: "session",
                reason: "complete without a result".to_owned(),
            }
            .into()),
            ("failed", _) => Err(AttestError::Refused {
                verifier: Verifier::Veraison,
                step: "evidence",
                status: 0,
                detail: "the session failed".to_owned(),
            }),
            (status, _) => Err(MessageError {
                verifier: Verifier::Veraison,
                what: "session",
                reason: format!("still {status:?} after {polls} polls"),
            }
            .into()),
        }
    }
}

/// A vTPM failure during the exchange, as the collection reports one.
fn vtpm_failed(e: crate::vtpm::VtpmError) -> AttestError {
    AttestError::Collect(CollectError::source_failed(
        crate::error::SourceName::Vtpm,
        e,
    ))
}

/// The one file an export to a request body writes.
fn file(exported: Exported) -> Vec<u8> {
    match exported {
        Exported::File(bytes) => bytes,
        // Request bodies are single files; a directory form is never asked for here.
        Exported::Directory(files) => files.into_iter().flat_map(|(_, b)| b).collect(),
    }
}

/// The answer a failing step would have given.
fn step_answer(step: &'static str) -> &'static str {
    match step {
        "auth" => "auth answer",
        "nonce" => "nonce answer",
        "resource" => "resource",
        "session" => "session",
        _ => "attestation answer",
    }
}

/// The KBS session cookie's value from `Set-Cookie`.
fn session_cookie(answer: &HttpResponse) -> Option<String> {
    answer
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| {
            let first = v.split(';').next()?.trim();
            let (name, value) = first.split_once('=')?;
            (name.trim() == kbs::SESSION_COOKIE).then(|| value.trim().to_owned())
        })
}
