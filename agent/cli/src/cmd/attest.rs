// SPDX-License-Identifier: Apache-2.0
//! `thimble attest`: the flags become a `thimble_collect::attest::AttestRequest` (the collection
//! part exactly as `collect` reads it), the library runs the exchange, and this module writes
//! what came back: the token to standard output or `--token-out`, the bundle to `-o`, a KBS
//! resource to `--resource-out` (never to the terminal by default: it is a secret). Each file
//! is written atomically. `--print-request` prints the evidence request instead of sending it.

use std::path::Path;
use std::time::Duration;

use thimble_collect::attest::{AttestError, AttestRequest, Attested, VerifierRequest, attest};
use thimble_collect::http::{HttpClient, HttpConfig};
use thimble_collect::{Environment, SystemEnvironment};
#[cfg(feature = "simulate")]
use thimble_sim::SimEnvironment;

use crate::args::{AttestArgs, MaaFlowArg, VerifierArg};
use crate::cmd::collect::{cli_error, request as collect_request};
use crate::error::CliError;
use crate::exit;
use crate::io::{parse_hex, read_input_at_most, write_output, write_secret};
use crate::output::{print_stdout, warn};

/// The environment variable holding the ITA API key when no file is named.
const ITA_API_KEY_ENV: &str = "THIMBLE_ITA_API_KEY";
/// Largest runtime data or API key file read.
const MAX_INPUT: u64 = 64 * 1024;

pub fn run(a: AttestArgs) -> Result<u8, CliError> {
    let c = &a.collect;
    if c.every.is_some() {
        return Err(CliError::Usage(
            "--every does not apply to attest: each exchange needs the verifier's fresh nonce"
                .into(),
        ));
    }
    if c.report_data.is_some() {
        return Err(CliError::Usage(
            "--report-data does not apply to attest: the verifier's rule sets REPORT_DATA".into(),
        ));
    }
    if a.resource.is_some() && a.resource_out.is_none() && !a.print_request {
        return Err(CliError::Usage(
            "--resource needs --resource-out FILE (`-` for standard output): a resource is a \
             secret and is not printed by default"
                .into(),
        ));
    }
    let verifier_arg = a.verifier.ok_or_else(|| {
        CliError::Usage(
            "attest needs --verifier (or attest.verifier in the configuration, or THIMBLE_VERIFIER)"
                .into(),
        )
    })?;
    let url = a.url.clone().ok_or_else(|| {
        CliError::Usage(
            "attest needs --url (or attest.url in the configuration, or THIMBLE_VERIFIER_URL)"
                .into(),
        )
    })?;
    if a.resource.is_some() && verifier_arg != VerifierArg::Kbs {
        return Err(CliError::Usage(
            "--resource applies to --verifier kbs".into(),
        ));
    }
    let runtime_data = a
        .runtime_data
        .as_deref()
        .map(|p| read_input_at_most(p, MAX_INPUT))
        .transpose()?;
    let verifier = match verifier_arg {
        VerifierArg::Maa => VerifierRequest::Maa {
            runtime_data,
            azure_guest: a.maa_flow == MaaFlowArg::AzureGuest,
        },
        VerifierArg::Kbs => VerifierRequest::Kbs {
            resource: a.resource.clone(),
        },
        VerifierArg::Ita => VerifierRequest::Ita {
            api_key: api_key(&a)?,
            runtime_data,
            policy_ids: a.policy_id.clone(),
        },
        VerifierArg::Veraison => VerifierRequest::Veraison,
    };
    if a.maa_flow != MaaFlowArg::Vm && verifier_arg != VerifierArg::Maa {
        return Err(CliError::Usage(
            "--maa-flow applies to --verifier maa".into(),
        ));
    }
    if runtime_data_unused(&verifier) && a.runtime_data.is_some() {
        return Err(CliError::Usage(
            "--runtime-data applies to --verifier maa and ita".into(),
        ));
    }
    let request = AttestRequest {
        verifier,
        url: url.trim_end_matches('/').to_owned(),
        collect: collect_request(c)?,
        nonce: c
            .nonce
            .as_deref()
            .map(|n| parse_hex("--nonce", n))
            .transpose()?,
        send: !a.print_request,
        verifier_nonce: a.verifier_nonce.clone(),
    };
    // Remote verifiers may sit behind the operator's proxy (IMDS never does; collection keeps
    // its own client).
    let http = HttpClient::new(HttpConfig {
        per_request_timeout: Duration::from_secs(c.timeout),
        deadline: Duration::from_secs(c.deadline),
        use_proxy_env: true,
        retry_not_found: false,
        ..HttpConfig::default()
    });
    if !a.print_request {
        crate::output::info(&format!(
            "attesting to {} at {}",
            request.verifier.verifier(),
            request.url
        ));
    }
    #[cfg(feature = "simulate")]
    if let Some(simulate) = c.simulate {
        let machine = crate::cmd::collect::sim_machine(simulate, c.source)?;
        return finish(&a, &SimEnvironment::new(machine), &http, &request);
    }
    finish(&a, &SystemEnvironment::new(), &http, &request)
}

fn runtime_data_unused(v: &VerifierRequest) -> bool {
    matches!(v, VerifierRequest::Kbs { .. } | VerifierRequest::Veraison)
}

/// The ITA API key: from `--api-key-file`, else the environment; required unless nothing is
/// sent.
fn api_key(a: &AttestArgs) -> Result<String, CliError> {
    let key = match &a.api_key_file {
        Some(path) => {
            let bytes = read_input_at_most(path, MAX_INPUT)?;
            String::from_utf8(bytes)
                .map_err(|_| CliError::MalformedFile {
                    path: path.clone(),
                    reason: "the API key is not UTF-8 text".into(),
                })?
                .trim()
                .to_owned()
        }
        None => std::env::var(ITA_API_KEY_ENV).unwrap_or_default(),
    };
    if key.is_empty() && !a.print_request {
        return Err(CliError::Usage(format!(
            "--verifier ita needs an API key: --api-key-file FILE or {ITA_API_KEY_ENV}"
        )));
    }
    if key.contains(|c: char| c.is_control()) {
        return Err(CliError::Usage(
            "the API key holds control characters".into(),
        ));
    }
    Ok(key)
}

fn finish<E: Environment>(
    a: &AttestArgs,
    env: &E,
    http: &HttpClient,
    request: &AttestRequest,
) -> Result<u8, CliError> {
    let attested = attest(env, http, request, env.now()).map_err(|e| match e {
        AttestError::Collect(e) => cli_error(e),
        e => CliError::Attest(e),
    })?;
    for w in &attested.warnings {
        warn(&w.to_string());
    }
    crate::output::bundle_details(&attested.bundle);
    for step in &attested.log {
        crate::output::detail(&format!("exchange: {step}"));
    }
    if a.print_request {
        return print_request(a, &attested);
    }
    if let Some(out) = &a.collect.output {
        write_output(out, &attested.bundle.to_json())?;
    }
    if let (Some(out), Some(resource)) = (&a.resource_out, &attested.resource) {
        write_secret(out, resource)?;
    }
    let token = attested
        .token
        .as_ref()
        .map(|t| t.jwt.clone())
        .unwrap_or_default();
    if a.json {
        let summary = serde_json::json!({
            "verifier": request.verifier.verifier().as_str(),
            "url": request.url,
            "tee": attested.bundle.tee().as_str(),
            "token": token,
            "token_header": attested.token.as_ref().map(|t| &t.header),
            "token_claims": attested.token.as_ref().map(|t| &t.claims),
            "bundle": a.collect.output.as_deref().map(Path::to_string_lossy),
            "resource": a.resource_out.as_deref().map(Path::to_string_lossy),
            "log": attested.log,
        });
        let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
        print_stdout(&format!("{text}\n"));
    } else {
        match &a.token_out {
            Some(path) => write_output(path, format!("{token}\n").as_bytes())?,
            None => print_stdout(&format!("{token}\n")),
        }
    }
    crate::output::info(&format!(
        "attested to {}: {} evidence accepted{}",
        request.verifier.verifier(),
        attested.bundle.tee(),
        match (&a.resource, &attested.resource) {
            (Some(name), Some(r)) => format!(", resource {name} ({} bytes) received", r.len()),
            _ => String::new(),
        }
    ));
    Ok(exit::OK)
}

/// `--print-request`: the evidence request, with its method, URL and media type in `--json`.
fn print_request(a: &AttestArgs, attested: &Attested) -> Result<u8, CliError> {
    let r = &attested.request;
    if a.json {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&r.body).into_owned())
        });
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "method": r.method,
            "url": r.url,
            "content_type": r.content_type,
            "body": body,
        }))
        .unwrap_or_default();
        print_stdout(&format!("{text}\n"));
    } else {
        let mut body = r.body.clone();
        body.push(b'\n');
        print_stdout(&String::from_utf8_lossy(&body));
    }
    if let Some(out) = &a.collect.output {
        write_output(out, &attested.bundle.to_json())?;
    }
    Ok(exit::OK)
}
