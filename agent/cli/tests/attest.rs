// SPDX-License-Identifier: Apache-2.0
//! `thimble attest` as a user runs it: a simulated guest of each TEE attests to each verifier's
//! loopback emulator (`thimble_sim::verifiers`), which parses the requests as the service does,
//! checks the binding and verifies the evidence; the token, the bundle and a KBS resource land
//! where the flags say, the bundle verifies offline, and every failure has its documented exit
//! code: 9 when the verifier is unavailable, 10 when it refuses, 6 for a malformed answer, 2 for
//! a request that cannot be made. `--print-request` sends nothing. MAA's Azure guest protocol
//! (`--maa-flow azure-guest`) runs from both simulated Azure machines.

#![expect(clippy::unwrap_used, reason = "test assertions")]

mod common;

use common::{json, p, run};
use thimble_collect::{CollectRequest, Environment, collect};
use thimble_evidence::attest::Verifier;
use thimble_sim::emulator::{Emulator, Fault, FaultRule};
use thimble_sim::verifiers::{Verdicts, VerifierConfig, VerifierEmulator, token_signature_valid};
use thimble_sim::{SimEnvironment, SimMachine, insecure_trust_test_roots};

const ITA_KEY: &str = "ita-cli-test-key";

fn emulator(
    machine: SimMachine,
    verifier: Verifier,
    faults: Vec<FaultRule>,
) -> (Emulator, Verdicts) {
    let env = SimEnvironment::new(machine);
    let mut r = CollectRequest::default();
    insecure_trust_test_roots(&mut r);
    let collateral = collect(&env, &r, env.now()).unwrap().bundle.endorsements;
    let mut config = VerifierConfig::sim(verifier, collateral, env.now());
    config.api_key = Some(ITA_KEY.to_owned());
    config.resources = vec![("default/key/disk".to_owned(), b"disk key bytes".to_vec())];
    config.faults = faults;
    let (routes, verdicts) = VerifierEmulator::new(config);
    (Emulator::start_routes(routes).unwrap(), verdicts)
}

fn attest(verifier: &str, simulate: &str, url: &str, extra: &[&str]) -> common::Run {
    let mut args = vec![
        "attest",
        "--verifier",
        verifier,
        "--url",
        url,
        "--simulate",
        simulate,
        "--deadline",
        "4",
        "--timeout",
        "2",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn kbs_token_resource_and_a_bundle_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    for (simulate, machine) in [
        ("snp", SimMachine::SnpDevice),
        ("tdx", SimMachine::Tdx),
        ("azure-snp", SimMachine::AzureSnp),
        ("azure-tdx", SimMachine::AzureTdx),
    ] {
        let (em, verdicts) = emulator(machine, Verifier::Kbs, vec![]);
        let bundle = dir.path().join(format!("{simulate}.json"));
        let resource = dir.path().join(format!("{simulate}.key"));
        let r = attest(
            "kbs",
            simulate,
            &em.base_url(),
            &[
                "--resource",
                "default/key/disk",
                "--resource-out",
                p(&resource),
                "-o",
                p(&bundle),
            ],
        );
        assert_eq!(r.code, 0, "{simulate}: {}\n{:?}", r.stderr, verdicts.all());
        assert!(token_signature_valid(r.stdout.trim()), "{}", r.stdout);
        assert_eq!(std::fs::read(&resource).unwrap(), b"disk key bytes");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&resource).unwrap().permissions(),
        );
        assert_eq!(
            mode & 0o077,
            0,
            "{simulate}: the resource is readable by others"
        );
        assert!(
            r.stderr.contains("resource default/key/disk"),
            "{}",
            r.stderr
        );
        let v = run(&["verify", p(&bundle), "--insecure-allow-simulated"]);
        assert_eq!(v.code, 0, "{simulate}: {}{}", v.stdout, v.stderr);
    }
}

#[test]
fn maa_ita_and_veraison_from_their_tees() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = common::write(dir.path(), "ita.key", format!("{ITA_KEY}\n").as_bytes());
    for (verifier, name, simulate, machine, extra) in [
        (Verifier::Maa, "maa", "snp", SimMachine::SnpDevice, vec![]),
        (Verifier::Maa, "maa", "tdx", SimMachine::Tdx, vec![]),
        (
            Verifier::Maa,
            "maa",
            "azure-snp",
            SimMachine::AzureSnp,
            vec![],
        ),
        (
            Verifier::Maa,
            "maa",
            "azure-tdx",
            SimMachine::AzureTdx,
            vec![],
        ),
        (
            Verifier::Maa,
            "maa",
            "azure-snp",
            SimMachine::AzureSnp,
            vec!["--maa-flow", "azure-guest"],
        ),
        (
            Verifier::Maa,
            "maa",
            "azure-tdx",
            SimMachine::AzureTdx,
            vec!["--maa-flow", "azure-guest"],
        ),
        (
            Verifier::Ita,
            "ita",
            "tdx",
            SimMachine::Tdx,
            vec!["--api-key-file", p(&key_file)],
        ),
        (
            Verifier::Ita,
            "ita",
            "azure-tdx",
            SimMachine::AzureTdx,
            vec!["--api-key-file", p(&key_file), "--policy-id", "p1"],
        ),
        (
            Verifier::Veraison,
            "veraison",
            "snp",
            SimMachine::SnpDevice,
            vec![],
        ),
    ] {
        let (em, verdicts) = emulator(machine, verifier, vec![]);
        let token = dir.path().join(format!("{name}-{simulate}.jwt"));
        let mut args = vec!["--json", "--token-out", p(&token)];
        args.extend_from_slice(&extra);
        let r = attest(name, simulate, &em.base_url(), &args);
        assert_eq!(
            r.code,
            0,
            "{name} {simulate}: {}\n{:?}",
            r.stderr,
            verdicts.all()
        );
        let summary = json(&r.stdout);
        assert_eq!(summary["verifier"], name);
        assert!(summary["token_claims"].is_object(), "{summary}");
        // With --json the token is in the summary; --token-out is not written then.
        assert!(token_signature_valid(summary["token"].as_str().unwrap()));
    }
}

#[test]
fn the_azure_guest_flow_is_for_maa_on_azure_only() {
    // Another verifier: a usage error before anything is collected.
    let r = attest(
        "kbs",
        "azure-snp",
        "http://127.0.0.1:9",
        &["--maa-flow", "azure-guest", "--print-request"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--maa-flow"), "{}", r.stderr);
    // A guest without the paravisor's vTPM: the request cannot be made (exit 2).
    let r = attest(
        "maa",
        "snp",
        "http://127.0.0.1:9",
        &["--maa-flow", "azure-guest", "--print-request"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("AzureGuest"), "{}", r.stderr);
}

#[test]
fn the_ita_api_key_comes_from_a_file_or_the_environment_only() {
    let (em, _) = emulator(SimMachine::Tdx, Verifier::Ita, vec![]);
    let r = attest("ita", "tdx", &em.base_url(), &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("THIMBLE_ITA_API_KEY"), "{}", r.stderr);
    let r = attest("ita", "tdx", &em.base_url(), &["--api-key", "x"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let out = common::bin()
        .args([
            "attest",
            "--verifier",
            "ita",
            "--url",
            &em.base_url(),
            "--simulate",
            "tdx",
        ])
        .env("THIMBLE_ITA_API_KEY", ITA_KEY)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The key never appears in what thimble prints.
    assert!(!String::from_utf8_lossy(&out.stderr).contains(ITA_KEY));
}

#[test]
fn faults_have_their_exit_codes() {
    // Nothing listening: unavailable.
    let r = attest("kbs", "snp", &common::refused_url(), &[]);
    assert_eq!(r.code, 9, "{}", r.stderr);
    // 503 throughout: unavailable after the retries.
    let (em, _) = emulator(
        SimMachine::SnpDevice,
        Verifier::Maa,
        vec![FaultRule::always("/attest", Fault::Status(503))],
    );
    let r = attest("maa", "snp", &em.base_url(), &[]);
    assert_eq!(r.code, 9, "{}", r.stderr);
    // 429 throughout.
    let (em, _) = emulator(
        SimMachine::Tdx,
        Verifier::Ita,
        vec![FaultRule::always(
            "/appraisal/v2/nonce",
            Fault::RateLimited {
                retry_after_secs: 0,
            },
        )],
    );
    let out = common::bin()
        .args([
            "attest",
            "--verifier",
            "ita",
            "--url",
            &em.base_url(),
            "--simulate",
            "tdx",
        ])
        .args(["--deadline", "3", "--timeout", "1"])
        .env("THIMBLE_ITA_API_KEY", ITA_KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(9));
    // 401: refused.
    let (em, _) = emulator(
        SimMachine::SnpDevice,
        Verifier::Kbs,
        vec![FaultRule::always("/kbs/v0/attest", Fault::Status(401))],
    );
    let r = attest("kbs", "snp", &em.base_url(), &[]);
    assert_eq!(r.code, 10, "{}", r.stderr);
    assert!(r.stderr.contains("refused with status 401"), "{}", r.stderr);
    // A malformed token answer.
    let (em, _) = emulator(
        SimMachine::SnpDevice,
        Verifier::Maa,
        vec![FaultRule::always(
            "/attest",
            Fault::MalformedBody(br#"{"token":"not-a-jwt"}"#.to_vec()),
        )],
    );
    let r = attest("maa", "snp", &em.base_url(), &[]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    // A TEE the verifier has no scheme for.
    let (em, verdicts) = emulator(SimMachine::Tdx, Verifier::Veraison, vec![]);
    let r = attest("veraison", "tdx", &em.base_url(), &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(verdicts.all().is_empty());
    // A resource without a place to write it.
    let r = attest("kbs", "snp", &em.base_url(), &["--resource", "a/b/c"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn print_request_sends_nothing() {
    let (em, _) = emulator(SimMachine::SnpDevice, Verifier::Kbs, vec![]);
    let r = attest(
        "kbs",
        "snp",
        &em.base_url(),
        &["--print-request", "--verifier-nonce", "bm9uY2U="],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let body = json(&r.stdout);
    assert_eq!(body["runtime-data"]["nonce"], "bm9uY2U=");
    assert_eq!(body["runtime-data"]["tee-pubkey"]["kty"], "EC");
    assert!(em.requests().is_empty());
    // KBS needs the nonce to build the request without asking.
    let r = attest("kbs", "snp", &em.base_url(), &["--print-request"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // MAA has no verifier nonce; --json gives the method and URL too.
    let r = attest("maa", "tdx", &em.base_url(), &["--print-request", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r.stdout);
    assert_eq!(v["method"], "POST");
    assert!(
        v["url"]
            .as_str()
            .unwrap()
            .ends_with("/attest/TdxVm?api-version=2023-04-01-preview")
    );
    assert!(v["body"]["quote"].is_string());
    assert!(em.requests().is_empty());
}

/// A bundle `thimble import` makes of a recorded vector, parsed.
fn imported(dir: &std::path::Path, args: &[String]) -> thimble_evidence::bundle::Bundle {
    let out = dir.join("vector.json");
    let mut all: Vec<&str> = vec!["import", "-o", p(&out)];
    all.extend(args.iter().map(String::as_str));
    let r = run(&all);
    assert_eq!(r.code, 0, "{}", r.stderr);
    thimble_evidence::bundle::Bundle::parse(&std::fs::read(&out).unwrap()).unwrap()
}

/// Seconds since the epoch of a vector's `verify_at`.
fn vector_time(case: &std::path::Path) -> i64 {
    let text = std::fs::read_to_string(case.join("case.toml")).unwrap();
    let at = text
        .lines()
        .find_map(|l| l.strip_prefix("verify_at = \""))
        .unwrap()
        .trim_end_matches('"');
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

fn real_emulator(
    verifier: Verifier,
    bundle: &thimble_evidence::bundle::Bundle,
    at: i64,
    tune: impl FnOnce(&mut VerifierConfig),
) -> Emulator {
    let mut config = VerifierConfig::sim(verifier, bundle.endorsements.clone(), at);
    // The vendors' roots only: recorded evidence needs no test root.
    config.options = thimble_verify::bundle::VerifyOptions::strict(at);
    tune(&mut config);
    let (routes, _) = VerifierEmulator::new(config);
    Emulator::start_routes(routes).unwrap()
}

fn http() -> thimble_collect::http::HttpClient {
    thimble_collect::http::HttpClient::new(thimble_collect::http::HttpConfig {
        max_attempts: 1,
        ..Default::default()
    })
}

#[test]
fn recorded_azure_evidence_is_accepted_by_the_maa_emulator() {
    use thimble_collect::http::Fetch;
    let dir = tempfile::tempdir().unwrap();
    for case in ["snp-hcl-milan-v3-v1", "snp-hcl-milan-v3-v2"] {
        let c = common::vectors().join("azure").join(case);
        let adds: Vec<String> = std::fs::read_dir(&c)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|f| {
                let n = f.file_name().unwrap().to_string_lossy();
                n.starts_with("vcek") || n.starts_with("ask_ark")
            })
            .flat_map(|f| ["--add".to_owned(), f.display().to_string()])
            .collect();
        let mut args = vec![
            "--hcl-report".to_owned(),
            c.join("hcl_report.bin").display().to_string(),
            "--tpm-quote".to_owned(),
            c.join("tpm_quote.json").display().to_string(),
        ];
        args.extend(adds);
        let bundle = imported(dir.path(), &args);
        let body = match thimble_evidence::interop::maa::export(&bundle).unwrap() {
            thimble_evidence::interop::Exported::File(b) => b,
            other => panic!("{other:?}"),
        };
        let em = real_emulator(Verifier::Maa, &bundle, vector_time(&c), |_| {});
        let url = format!(
            "{}{}",
            em.base_url(),
            thimble_evidence::attest::maa::SEV_SNP_PATH
        );
        let answer = http()
            .post(&url, &[("Content-Type", "application/json")], &body)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let token =
            thimble_evidence::attest::token::parse_token_answer(Verifier::Maa, &answer.body)
                .unwrap();
        assert!(token_signature_valid(&token.jwt));
        assert!(token.claims["x-ms-runtime"]["keys"].is_array(), "{case}");
    }
}

#[test]
fn recorded_sev_snp_evidence_goes_through_a_veraison_session() {
    use thimble_collect::http::Fetch;
    let dir = tempfile::tempdir().unwrap();
    let c = common::vectors().join("snp/milan-v3-oak");
    let bundle = imported(
        dir.path(),
        &[
            "--snp-report".to_owned(),
            c.join("report.bin").display().to_string(),
            "--add".to_owned(),
            c.join("vcek.der").display().to_string(),
            "--add".to_owned(),
            c.join("ask_ark.pem").display().to_string(),
        ],
    );
    let report_data = thimble_evidence::snp::SnpReport::parse(match &bundle.evidence {
        thimble_evidence::bundle::Evidence::SevSnp(e) => &e.report,
        other => panic!("{other:?}"),
    })
    .unwrap()
    .report_data;
    let em = real_emulator(Verifier::Veraison, &bundle, vector_time(&c), |config| {
        config.veraison_nonce = Some(report_data.to_vec());
    });
    let session = http()
        .post(
            &format!(
                "{}/challenge-response/v1/newSession?nonceSize=64",
                em.base_url()
            ),
            &[],
            &[],
        )
        .unwrap();
    let location = session.header("location").unwrap().to_owned();
    let url = thimble_evidence::attest::veraison::session_url(&em.base_url(), &location).unwrap();
    let body = match thimble_evidence::interop::tsm_report::export(&bundle).unwrap() {
        thimble_evidence::interop::Exported::File(b) => b,
        other => panic!("{other:?}"),
    };
    let answer = http()
        .post(
            &url,
            &[(
                "Content-Type",
                thimble_evidence::interop::tsm_report::MEDIA_TYPE,
            )],
            &body,
        )
        .unwrap();
    let s = thimble_evidence::attest::veraison::parse_session(&answer.body).unwrap();
    assert_eq!(s.status, "complete");
    assert!(token_signature_valid(s.result.as_deref().unwrap()));
}

#[test]
fn no_tee_is_exit_3_before_the_verifier_hears_of_it() {
    let (em, verdicts) = emulator(SimMachine::SnpDevice, Verifier::Kbs, vec![]);
    let dir = tempfile::tempdir().unwrap();
    let r = run(&[
        "attest",
        "--verifier",
        "kbs",
        "--url",
        &em.base_url(),
        "--tsm-root",
        p(&dir.path().join("no-tsm")),
        "--device",
        p(&dir.path().join("no-sev-guest")),
        "--tdx-device",
        p(&dir.path().join("no-tdx-guest")),
        "--tpm-device",
        p(&dir.path().join("no-tpm")),
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(em.requests().is_empty());
    assert!(verdicts.all().is_empty());
}
