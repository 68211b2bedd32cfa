// SPDX-License-Identifier: Apache-2.0
//! The early-boot path on a real kernel: QEMU boots Debian's 6.12 cloud kernel with the test
//! initramfs (`initramfs/build-test-initramfs.sh`), whose /init runs the same
//! `thimble-early.sh` as the initramfs-tools and dracut integrations, and these tests read the
//! serial console from the host: the `THIMBLE-RESULT` line, the `thimble:` messages and the
//! bundle, which the host then verifies.
//!
//! No guest here has a TEE, so the cases are the ones a plain guest can show: no evidence
//! source (exit 3) with the boot continuing, `thimble.required=1` stopping it, a simulated
//! SEV-SNP guest fetching THIM from the IMDS emulator through QEMU's `guestfwd`, the same guest
//! with IMDS unreachable, a simulated TDX guest offline, the Azure SEV-SNP path on a real
//! TPM (swtpm behind QEMU's `tpm-crb`, provisioned on the host like Azure's vTPM with a
//! simulated HCL report, collected in the guest through the kernel's `/dev/tpmrm0`), and the
//! attest step: a simulated SEV-SNP guest attesting to a KBS emulator that runs in the test
//! process, reached through `guestfwd` and `tcp-relay`, for a disk key, and the same KBS
//! refusing it.
//!
//! Each boot takes 4 to 11 s under TCG here, so they are `#[ignore]`d in `cargo test
//! --workspace`; run them with `cargo test -p guest-tests --test boot -- --include-ignored`
//! (`.ci/run` does). Selected, they fail, never skip, when QEMU, the kernel package or the
//! static binary is missing, with the command that provides it (see `guest_tests::qemu`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use guest_tests::qemu::{Boot, Booted, Net, QemuSwtpm, boot, cache_dir, tagged_line};
use serde_json::Value;
use thimble_collect::vtpm::{TpmPublic, TpmWriter, VtpmClient};
use thimble_collect::{CollectRequest, Environment as _, collect};
use thimble_evidence::attest::Verifier;
use thimble_evidence::attest::kbs::HashAlgorithm;
use thimble_evidence::report_data;
use thimble_sim::emulator::Emulator;
use thimble_sim::swtpm::{
    SWTPM_NV_INDEX_MAX, Swtpm, provision_ak, provision_hcl_report, snp_hcl_report_for,
};
use thimble_sim::verifiers::{Verdicts, VerifierConfig, VerifierEmulator, token_signature_valid};
use thimble_sim::{SimEnvironment, SimMachine, insecure_trust_test_roots};

/// The program QEMU's guestfwd runs for each connection to IMDS.
fn imds_once() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_imds-once"))
}

/// A fresh nonce per run (16 bytes in hex), so that a bundle left over from an earlier run
/// cannot pass for this one.
fn fresh_nonce(tag: u8) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:02x}{:022x}{:08x}",
        tag,
        nanos & ((1 << 88) - 1),
        std::process::id()
    )
}

/// The bundle on the console, saved next to the console log (so that `thimble verify` reads a
/// file, as a verifier would) and parsed.
fn saved_bundle(b: &Booted) -> (PathBuf, Value) {
    let bytes = b.bundle();
    let path = b.run_dir.join("evidence.json");
    std::fs::write(&path, &bytes).expect("write the bundle");
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("the bundle is not JSON ({e}): {}", b.describe()));
    (path, json)
}

/// `thimble verify --insecure-allow-simulated --json --nonce NONCE BUNDLE` with the static
/// binary the guest ran: (exit code, the JSON outcome).
fn verify(b: &Booted, bundle: &Path, nonce: &str) -> (i32, Value) {
    let out = Command::new(&b.image.thimble)
        .args([
            "verify",
            "--insecure-allow-simulated",
            "--json",
            "--nonce",
            nonce,
        ])
        .arg(bundle)
        .output()
        .expect("run thimble verify");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

/// The `thimble:` lines of the console that the guest's shell printed (the kernel-log copies
/// come with a timestamp), for exact comparisons.
/// The `thimble:` lines of the console, without thimble's progress lines: the console is a
/// terminal, so the binary announces each wait there ("fetching …", "asking …", "waiting for …";
/// docs/collect.md), and which waits a boot has depends on the machine, not on the outcome.
fn thimble_lines(console: &str) -> Vec<&str> {
    const PROGRESS: [&str; 3] = [
        "thimble: fetching ",
        "thimble: asking ",
        "thimble: waiting for ",
    ];
    console
        .lines()
        .filter(|l| l.starts_with("thimble: "))
        .filter(|l| !PROGRESS.iter().any(|p| l.starts_with(p)))
        .collect()
}

#[test]
fn imds_once_answers_one_request_on_stdin_and_keeps_stderr_clean() {
    // No QEMU needed: the guestfwd program on a pipe, as libslirp would run it. Its stderr
    // reaches the guest there, so it must stay empty.
    use std::io::Write as _;
    let dir = std::env::temp_dir().join(format!("thimble-imds-once-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let log = dir.join("imds.log");
    let mut child = Command::new(imds_once())
        .env("THIMBLE_IMDS_LOG", &log)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run imds-once");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            b"GET /metadata/THIM/amd/certification HTTP/1.1\r\nHost: 169.254.169.254\r\n\
              Metadata: true\r\nConnection: close\r\n\r\n",
        )
        .expect("write the request");
    let out = child.wait_with_output().expect("imds-once ends");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let response = String::from_utf8_lossy(&out.stdout);
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    let body = response.split("\r\n\r\n").nth(1).expect("a body");
    let thim: Value = serde_json::from_str(body).expect("THIM JSON");
    assert!(thim["vcekCert"].is_string(), "{thim}");
    assert_eq!(
        std::fs::read_to_string(&log).expect("the log"),
        "imds-once: served GET /metadata/THIM/amd/certification HTTP/1.1\n"
    );
    // IMDS's contract holds: without `Metadata: true` the answer is 400.
    let out = Command::new(imds_once())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .expect("stdin")
                .write_all(b"GET /metadata/THIM/amd/certification HTTP/1.1\r\n\r\n")?;
            c.wait_with_output()
        })
        .expect("run imds-once");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("HTTP/1.1 400 "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "boots QEMU: cargo test -p guest-tests --test boot -- --include-ignored"]
fn no_tee_exits_3_with_a_readable_message_and_the_boot_continues() {
    // No NIC: the network wait must run out on its own, bounded by thimble.deadline.
    let b = boot(&Boot::new("no-tee", "thimble.deadline=3", Net::None));
    let r = b.assert_finished();
    assert_eq!(
        (r.exit, r.boot.as_str(), r.required),
        (3, "continue", false),
        "{}",
        b.describe()
    );
    assert!(
        b.console.lines().any(|l| l.starts_with(
            "error: no usable evidence source: neither configfs-tsm (/sys/kernel/config/tsm/report) \
             with a provider, nor /dev/sev-guest, nor /dev/tdx_guest, nor a vTPM holding an Azure \
             HCL report is present"
        )),
        "thimble's own message: {}",
        b.describe()
    );
    assert_eq!(
        thimble_lines(&b.console),
        [
            "thimble: waiting up to 3 s for the network (for THIM/KDS)",
            "thimble: no default route after 3 s; trying anyway (certificates attached by the \
             host need no network)",
            "thimble: evidence collection failed (exit 3: no TEE evidence source); continuing \
             without /run/thimble/evidence.json (thimble.required=1 would stop the boot)",
        ],
        "{}",
        b.describe()
    );
    // The same lines reach the kernel log (and so the journal after boot), at the right level.
    let waited = b.seconds_after_init("thimble: no default route after 3 s")
        - b.seconds_after_init("thimble: waiting up to 3 s");
    assert!(
        (2.5..6.0).contains(&waited),
        "the network wait took {waited:.1} s: {}",
        b.describe()
    );
    assert!(b.seconds_after_init("thimble: evidence collection failed (exit 3") > 0.0);
    assert!(
        !b.console.contains("THIMBLE-BUNDLE-BEGIN"),
        "no bundle on failure"
    );
}

#[test]
#[ignore = "boots QEMU: cargo test -p guest-tests --test boot -- --include-ignored"]
fn required_without_a_tee_stops_the_boot() {
    let b = boot(&Boot::new(
        "required",
        "thimble.required=1 thimble.offline=1",
        Net::None,
    ));
    let r = b.assert_finished();
    assert_eq!(
        (r.exit, r.boot.as_str(), r.required),
        (3, "stop", true),
        "{}",
        b.describe()
    );
    assert_eq!(
        thimble_lines(&b.console),
        [
            "thimble: evidence collection failed (exit 3: no TEE evidence source); \
          thimble.required=1: stopping the boot"
        ],
        "{}",
        b.describe()
    );
    assert!(
        b.seconds_after_init("thimble: evidence collection failed (exit 3") > 0.0,
        "in the kernel log too"
    );
    // What the test /init does for a boot that goes on (print the bundle) does not happen, and
    // nothing runs after the result but the power-off.
    let after: Vec<&str> = b
        .console
        .lines()
        .skip_while(|l| !l.contains("THIMBLE-RESULT"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        after.iter().all(|l| l.starts_with('[')),
        "only kernel shutdown messages after the result: {after:?}"
    );
    assert!(!b.console.contains("THIMBLE-BUNDLE-BEGIN"));
    assert!(!b.console.contains("continuing without"));
}

#[test]
#[ignore = "boots QEMU: cargo test -p guest-tests --test boot -- --include-ignored"]
fn simulated_snp_fetches_thim_from_imds_and_verifies_on_the_host() {
    let nonce = fresh_nonce(0xc0);
    let b = boot(&Boot::new(
        "snp-imds",
        &format!("thimble.simulate=snp thimble.imds=http://169.254.169.254 thimble.nonce={nonce}"),
        Net::Imds(imds_once()),
    ));
    let r = b.assert_finished();
    assert_eq!(
        (r.exit, r.boot.as_str(), r.required),
        (0, "continue", false),
        "{}",
        b.describe()
    );
    assert!(
        b.console
            .lines()
            .any(|l| l == "thimble: evidence collected: /run/thimble/evidence.json"),
        "{}",
        b.describe()
    );
    // The guest reached the emulator, and only through guestfwd.
    assert!(
        b.imds_log
            .lines()
            .any(|l| l == "imds-once: served GET /metadata/THIM/amd/certification HTTP/1.1"),
        "{}",
        b.describe()
    );
    let (path, bundle) = saved_bundle(&b);
    assert_eq!(bundle["tee"], "sev-snp");
    assert_eq!(bundle["simulated"], true);
    assert_eq!(bundle["nonce"]["value"], nonce.as_str());
    assert_eq!(bundle["nonce"]["generated"], false);
    let endorsements = bundle["endorsements"].as_array().expect("endorsements");
    assert!(!endorsements.is_empty());
    for e in endorsements.iter().filter(|e| e["kind"] != "crl") {
        assert_eq!(
            e["origin"],
            serde_json::json!({"kind": "thim", "url": "http://169.254.169.254/metadata/THIM/amd/certification"}),
            "every certificate came from THIM"
        );
    }
    // The ARK's CRL came from KDS, which `--simulate snp` emulates inside the guest on loopback.
    let crls: Vec<&Value> = endorsements.iter().filter(|e| e["kind"] == "crl").collect();
    assert_eq!(crls.len(), 1, "{bundle}");
    assert_eq!(crls[0]["origin"]["kind"], "kds", "{bundle}");
    // The kernel the bundle names is the one booted.
    let kernel = bundle["kernel_release"].as_str().expect("kernel_release");
    assert!(
        kernel.starts_with("6.12.") && kernel.ends_with("-cloud-amd64"),
        "{kernel}"
    );

    let (code, outcome) = verify(&b, &path, &nonce);
    assert_eq!(
        (code, &outcome["verdict"]),
        (0, &Value::from("valid")),
        "{outcome}"
    );
    assert_eq!(outcome["simulated"], true);
    // The nonce binds: another one is a policy failure (exit 8).
    let (code, outcome) = verify(&b, &path, &fresh_nonce(0xc1));
    assert_eq!(code, 8, "{outcome}");
}

/// The limit of the guest's own time from /init to the collection's result when IMDS does not
/// answer, with thimble.deadline=5: the network wait (at most the deadline; here DHCP answers in
/// about 1 s) plus the endorsement fetch (THIM and the KDS fallback together, at most the
/// deadline) plus 8 s for loading modules, starting DHCP and making the report under TCG
/// (measured here: 6.4 s in all, 0.6 s of it outside the two bounded parts).
const UNREACHABLE_GUEST_LIMIT: f64 = 5.0 + 5.0 + 8.0;

/// The limit of the whole boot in wall-clock time: the two deadline-bounded parts at their
/// longest (10 s) plus four times the 10 s this boot takes here, for slower CI machines. It
/// stays below the 65 s after which the early logic's own `timeout` (deadline + 60 s) would
/// have killed thimble, so passing shows that thimble's deadline bounded the wait, not that
/// backstop.
const UNREACHABLE_WALL_LIMIT: Duration = Duration::from_secs(50);

#[test]
#[ignore = "boots QEMU: cargo test -p guest-tests --test boot -- --include-ignored"]
fn imds_unreachable_is_a_bounded_wait_then_the_kds_fallback() {
    // A NIC on restricted user networking with nothing forwarded: DHCP works and every packet
    // to 169.254.169.254 is dropped, so THIM hangs rather than being refused.
    let nonce = fresh_nonce(0xd0);
    let b = boot(&Boot::new(
        "imds-unreachable",
        &format!(
            "thimble.simulate=snp thimble.imds=http://169.254.169.254 thimble.deadline=5 \
             thimble.nonce={nonce}"
        ),
        Net::Restricted,
    ));
    let r = b.assert_finished();
    assert!(
        b.elapsed < UNREACHABLE_WALL_LIMIT,
        "the boot took {:.1?}: {}",
        b.elapsed,
        b.describe()
    );
    let in_guest = b.seconds_after_init("thimble: evidence collected");
    assert!(
        in_guest < UNREACHABLE_GUEST_LIMIT,
        "collection ended {in_guest:.1} s after /init: {}",
        b.describe()
    );
    // The documented outcome (docs/endorsements.md, "SEV-SNP certificates"): THIM failed and is
    // logged, KDS is the fallback, and in a simulated guest KDS is its loopback emulator, so
    // collection succeeds. (Exit 5 needs KDS to fail too, which no thimble.* option can arrange.)
    assert_eq!(
        (r.exit, r.boot.as_str(), r.required),
        (0, "continue", false),
        "{}",
        b.describe()
    );
    assert_eq!(
        thimble_lines(&b.console),
        [
            "thimble: waiting up to 5 s for the network (for THIM/KDS)",
            "thimble: evidence collected: /run/thimble/evidence.json",
        ],
        "{}",
        b.describe()
    );
    assert_eq!(b.imds_log, "", "nothing was forwarded");
    let (path, bundle) = saved_bundle(&b);
    let log: Vec<&str> = bundle["endorsement_log"]
        .as_array()
        .expect("endorsement_log")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // THIM gave up at its share of the deadline (half of it, KDS being the fallback): the wait
    // was bounded by thimble itself.
    assert!(
        log.first().is_some_and(|l| l
            .starts_with("thim http://169.254.169.254/metadata/THIM/amd/certification: ")
            && (l.contains("deadline") || l.contains("timed out"))),
        "THIM's failure is logged first: {log:?}"
    );
    assert!(
        log.iter().any(|l| l.starts_with("kds: ")),
        "then KDS: {log:?}"
    );
    for e in bundle["endorsements"].as_array().expect("endorsements") {
        assert_eq!(e["origin"]["kind"], "kds", "{e}");
        assert!(
            e["origin"]["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("http://127.0.0.1:")),
            "the simulation's loopback KDS: {e}"
        );
    }
    let (code, outcome) = verify(&b, &path, &nonce);
    assert_eq!(
        (code, &outcome["verdict"]),
        (0, &Value::from("valid")),
        "{outcome}"
    );
}

#[test]
#[ignore = "boots QEMU: cargo test -p guest-tests --test boot -- --include-ignored"]
fn simulated_tdx_offline_collects_a_quote() {
    let nonce = fresh_nonce(0xe0);
    let b = boot(&Boot::new(
        "tdx-offline",
        &format!("thimble.simulate=tdx thimble.offline=1 thimble.nonce={nonce}"),
        Net::None,
    ));
    let r = b.assert_finished();
    assert_eq!(
        (r.exit, r.boot.as_str(), r.required),
        (0, "continue", false),
        "{}",
        b.describe()
    );
    // Offline: no network wait at all.
    assert_eq!(
        thimble_lines(&b.console),
        ["thimble: evidence collected: /run/thimble/evidence.json"],
        "{}",
        b.describe()
    );
    let (path, bundle) = saved_bundle(&b);
    assert_eq!(bundle["tee"], "tdx");
    assert_eq!(bundle["simulated"], true);
    assert_eq!(bundle["nonce"]["value"], nonce.as_str());
    assert!(bundle["evidence"]["tdx_quote"].is_string(), "{bundle}");
    assert_eq!(bundle["endorsements"], serde_json::json!([]), "offline");
    // Without collateral the quote cannot be judged: verify says exactly that, and nothing else
    // is wrong with it (docs/collect.md: offline bundles report missing-endorsement).
    let (_, outcome) = verify(&b, &path, &nonce);
    let codes: Vec<&str> = outcome["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["code"].as_str())
        .collect();
    assert_eq!(codes, ["missing-endorsement"], "{outcome}");
}

/// `TPM2_Shutdown` (Part 3 §9.4), not in the client's table: the provisioning swtpm ends with
/// an orderly shutdown, so that the guest's `TPM2_Startup(CLEAR)` is an ordinary start-up
/// rather than the one after a power loss.
const CC_SHUTDOWN: u32 = 0x0000_0145;
/// `TPM_SU_CLEAR`.
const SU_CLEAR: u16 = 0x0000;

/// Makes `state_dir` hold a TPM provisioned as Azure's paravisor would leave it for a
/// collection with `nonce`: the AK persisted at 0x81000003, and NV 0x01400001 holding an HCL
/// report that names that AK, carries a simulated SEV-SNP report signed by the simulated VCEK
/// (the one imds-once's THIM body certifies), and whose runtime data's `user-data` is
/// SHA-512(nonce), the REPORT_DATA the guest will write to 0x01400002. On Azure the paravisor
/// regenerates the report when that index is written; swtpm has no paravisor, so the echo the
/// guest's freshness check waits for is provisioned in advance. The report is padded to
/// swtpm's largest NV index (2048 bytes on bookworm's libtpms). Returns the AK as the TPM
/// reports it.
fn provision_azure_vtpm(state_dir: &Path, nonce: &str) -> TpmPublic {
    // Through swtpm's TCP server on loopback, the way the vTPM tests provision it; the state
    // stays in the directory when this swtpm ends.
    let (swtpm, transport) = Swtpm::start_keeping_state(state_dir)
        .unwrap_or_else(|e| panic!("cannot start swtpm to provision it: {e}"));
    let mut client = VtpmClient::new(transport);
    let ak = provision_ak(&mut client).unwrap_or_else(|e| panic!("persist the AK: {e}"));
    let rsa = ak.rsa.as_ref().expect("the AK is an RSA key");
    let nonce_bytes = hex::decode(nonce).expect("the nonce is hex");
    let user_data = report_data::from_nonce(&nonce_bytes);
    let report = snp_hcl_report_for(rsa, &user_data, SWTPM_NV_INDEX_MAX);
    provision_hcl_report(&mut client, &report)
        .unwrap_or_else(|e| panic!("define and write the HCL report index: {e}"));
    let mut p = TpmWriter::new();
    p.u16(SU_CLEAR);
    client
        .execute(CC_SHUTDOWN, &[], &[], p.as_bytes(), 0)
        .unwrap_or_else(|e| panic!("TPM2_Shutdown: {e}"));
    // swtpm answered the Shutdown after saving its state, so ending it now loses nothing; once
    // it is gone (its handle kills and reaps it) the state directory's lock is free for the
    // swtpm QEMU talks to.
    drop(client);
    drop(swtpm);
    ak
}

/// A fresh, empty directory for the swtpm state of boot `name`, next to the boots' logs.
fn swtpm_state_dir(name: &str) -> PathBuf {
    let dir = cache_dir().join("swtpm").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// The warning the early logic prints first when thimble.insecure-allow-simulated is on.
const INSECURE_WARNING: &str = "thimble: thimble.insecure-allow-simulated: trusting the \
                                simulation's test roots (testing only)";

#[test]
#[ignore = "boots QEMU: cargo test -p guest-tests --test boot -- --include-ignored"]
fn azure_snp_vtpm_on_swtpm_collects_in_the_guest_and_verifies_on_the_host() {
    let name = "azure-snp-vtpm";
    let nonce = fresh_nonce(0xa0);
    let state = swtpm_state_dir(name);
    let ak = provision_azure_vtpm(&state, &nonce);
    let swtpm = QemuSwtpm::start(&state).unwrap_or_else(|e| panic!("{e}"));
    // No thimble.simulate: thimble finds no configfs provider and no /dev/sev-guest, detects
    // the vTPM by its HCL report, and fetches THIM from IMDS (imds-once through guestfwd). The
    // report and THIM's VCEK are the simulation's, so checking the fetched chain needs the
    // test roots: thimble.insecure-allow-simulated.
    let b = boot(
        &Boot::new(
            name,
            &format!(
                "thimble.imds=http://169.254.169.254 thimble.insecure-allow-simulated=1 \
                 thimble.nonce={nonce}"
            ),
            Net::Imds(imds_once()),
        )
        .with_tpm(&swtpm),
    );
    // swtpm's own errors (its log keeps nothing else), for the failure messages below.
    let swtpm_log = swtpm.log_text();
    drop(swtpm);
    let describe = || format!("{}\n--- swtpm log ---\n{}", b.describe(), swtpm_log.trim());
    let r = b.assert_finished();
    assert_eq!(
        (r.exit, r.boot.as_str(), r.required),
        (0, "continue", false),
        "{}",
        describe()
    );
    let lines = thimble_lines(&b.console);
    assert_eq!(lines.first(), Some(&INSECURE_WARNING), "{}", describe());
    assert_eq!(
        lines.last(),
        Some(&"thimble: evidence collected: /run/thimble/evidence.json"),
        "{}",
        describe()
    );
    assert!(
        b.seconds_after_init(&INSECURE_WARNING["thimble: ".len()..]) > 0.0,
        "the warning is in the kernel log too: {}",
        describe()
    );
    assert!(
        b.imds_log
            .lines()
            .any(|l| l == "imds-once: served GET /metadata/THIM/amd/certification HTTP/1.1"),
        "{}",
        describe()
    );

    let (path, bundle) = saved_bundle(&b);
    assert_eq!(bundle["tee"], "azure-sev-snp", "{bundle}");
    // Real collection code on a real (software) TPM: nothing in the guest was simulated.
    assert_eq!(bundle["simulated"], false);
    assert_eq!(bundle["collection"]["source"], "vtpm", "{bundle}");
    // The kernel's resource manager over tpm_crb: the guest reached swtpm through QEMU.
    assert_eq!(bundle["collection"]["path"], "/dev/tpmrm0", "{bundle}");
    assert_eq!(
        bundle["collection"]["hcl_user_data_echoed"], true,
        "{bundle}"
    );
    assert_eq!(bundle["nonce"]["value"], nonce.as_str());
    // The quote is signed by the AK provisioned on the host.
    assert_eq!(
        bundle["evidence"]["tpm_quote"]["ak_public"],
        hex::encode(&ak.public_area),
        "{bundle}"
    );
    let endorsements = bundle["endorsements"].as_array().expect("endorsements");
    assert!(!endorsements.is_empty(), "{bundle}");
    for e in endorsements {
        assert_eq!(
            e["origin"],
            serde_json::json!({"kind": "thim", "url": "http://169.254.169.254/metadata/THIM/amd/certification"}),
            "every certificate came from THIM"
        );
    }

    let (code, outcome) = verify(&b, &path, &nonce);
    assert_eq!(
        (code, &outcome["verdict"]),
        (0, &Value::from("valid")),
        "{outcome}"
    );
    // Valid only because the simulation's test root was trusted, and verify says so.
    assert_eq!(outcome["simulated"], true, "{outcome}");
    let (code, outcome) = verify(&b, &path, &fresh_nonce(0xa1));
    assert_eq!(code, 8, "{outcome}");
    // Without --insecure-allow-simulated the chain is not AMD's: an authenticity failure
    // (exit 7), so a bundle like this one never passes a production verifier.
    let out = Command::new(&b.image.thimble)
        .args(["verify", "--json", "--nonce", &nonce])
        .arg(&path)
        .output()
        .expect("run thimble verify");
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

// --- attestation to a KBS in the early boot ---------------------------------------------------

/// The program QEMU's guestfwd runs for each connection to the KBS: it joins the connection to
/// the emulator the test runs on the host's loopback.
fn tcp_relay() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tcp-relay"))
}

/// Where the guest finds the KBS: an address of its own network (guestfwd takes no other) that
/// nothing else uses, on the port Trustee's KBS listens on by default.
const KBS_GUEST_ADDR: &str = "169.254.169.200:8080";

/// The resource the boot test's KBS serves under `default/key/disk`.
fn kbs_resource(nonce: &str) -> Vec<u8> {
    format!("boot test disk key {nonce}").into_bytes()
}

/// The configuration of a KBS that verifies what `--simulate snp` makes in the guest: it holds
/// the simulated machine's collateral, as a real KBS fetches it from KDS, and serves `resource`
/// under `default/key/disk`.
fn kbs_config(resource: Vec<u8>) -> VerifierConfig {
    let env = SimEnvironment::new(SimMachine::SnpDevice);
    let mut request = CollectRequest::default();
    insecure_trust_test_roots(&mut request);
    let collateral = collect(&env, &request, env.now())
        .unwrap_or_else(|e| panic!("collect the simulated machine's collateral: {e}"))
        .bundle
        .endorsements;
    let mut config = VerifierConfig::sim(Verifier::Kbs, collateral, env.now());
    config.resources = vec![("default/key/disk".to_owned(), resource)];
    config
}

/// The KBS emulator of `config` on the host's loopback, with the handle of its verdicts.
fn kbs_emulator(config: VerifierConfig) -> (Emulator, Verdicts) {
    let (routes, verdicts) = VerifierEmulator::new(config);
    let emulator =
        Emulator::start_routes(routes).unwrap_or_else(|e| panic!("start the KBS emulator: {e}"));
    (emulator, verdicts)
}

/// The kernel command line of a simulated SEV-SNP guest attesting to the KBS and asking for
/// `resource`.
fn kbs_cmdline(nonce: &str, resource: &str) -> String {
    format!(
        "thimble.simulate=snp thimble.nonce={nonce} thimble.attest=kbs \
         thimble.attest.url=http://{KBS_GUEST_ADDR} thimble.attest.resource={resource}"
    )
}

/// The relay's log lines (one per connection the guest made to the KBS).
fn relay_lines(b: &Booted) -> Vec<&str> {
    b.imds_log
        .lines()
        .filter(|l| l.starts_with("tcp-relay: "))
        .collect()
}

#[test]
fn tcp_relay_joins_stdin_and_stdout_to_a_loopback_server() {
    // No QEMU needed: the relay on pipes, as libslirp would run it, in front of the KBS
    // emulator, whose auth step answers a fresh session. stderr reaches the guest there, so it
    // must stay empty.
    use std::io::Write as _;
    let (em, verdicts) = kbs_emulator(kbs_config(b"k".to_vec()));
    let dir = std::env::temp_dir().join(format!("thimble-tcp-relay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let log = dir.join("relay.log");
    let body = r#"{"version":"0.4.0","tee":"snp","extra-params":{}}"#;
    let request = format!(
        "POST /kbs/v0/auth HTTP/1.1\r\nHost: {KBS_GUEST_ADDR}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut child = Command::new(tcp_relay())
        .arg(em.addr().to_string())
        .env("THIMBLE_IMDS_LOG", &log)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tcp-relay");
    // The guest keeps its side open while it waits for the answer: the relay ends when the
    // server has answered, not when stdin closes.
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(request.as_bytes())
        .expect("write the request");
    let out = child.wait_with_output().expect("tcp-relay ends");
    drop(stdin);
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let response = String::from_utf8_lossy(&out.stdout);
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    assert!(response.contains("kbs-session-id="), "{response}");
    assert_eq!(verdicts.all(), ["auth: ok"]);
    assert_eq!(
        std::fs::read_to_string(&log).expect("the log"),
        format!(
            "tcp-relay: {}: {} bytes from the guest, {} bytes to the guest\n",
            em.addr(),
            request.len(),
            out.stdout.len()
        )
    );
    // Only loopback: anything else is refused before connecting, and said in the log only.
    let out = Command::new(tcp_relay())
        .arg("192.0.2.1:80")
        .env("THIMBLE_IMDS_LOG", &log)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run tcp-relay");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert!(
        std::fs::read_to_string(&log)
            .expect("the log")
            .ends_with("tcp-relay: 192.0.2.1:80 is not on loopback\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "boots QEMU: cargo test -p guest-tests --test boot -- --include-ignored"]
fn simulated_snp_attests_to_a_kbs_and_gets_the_disk_key() {
    let nonce = fresh_nonce(0xb0);
    let resource = kbs_resource(&nonce);
    let (em, verdicts) = kbs_emulator(kbs_config(resource.clone()));
    let b = boot(&Boot::new(
        "kbs-resource",
        &kbs_cmdline(&nonce, "default/key/disk"),
        Net::Relay {
            guest: KBS_GUEST_ADDR.to_owned(),
            relay: tcp_relay(),
            target: em.addr(),
        },
    ));
    let verdicts = verdicts.all();
    let describe = || format!("{}\n--- KBS verdicts ---\n{verdicts:?}", b.describe());
    let r = b.assert_finished();
    assert_eq!(
        (r.exit, r.boot.as_str(), r.required),
        (0, "continue", false),
        "{}",
        describe()
    );
    assert_eq!(
        (r.attest.as_deref(), r.attest_exit.as_deref()),
        (Some("kbs"), Some("0")),
        "{}",
        describe()
    );
    let lines = thimble_lines(&b.console);
    assert_eq!(
        lines.last().copied(),
        Some("thimble: attested to kbs; resource written to /run/thimble/resource"),
        "{}",
        describe()
    );
    assert!(
        lines.contains(&"thimble: evidence collected: /run/thimble/evidence.json"),
        "the plain collection ran first: {}",
        describe()
    );
    // The KBS verified the guest's evidence, bound to its nonce and the session key, and
    // released the resource to that session: three connections through the relay.
    assert_eq!(
        verdicts,
        ["auth: ok", "attest: ok", "resource: ok"],
        "{}",
        describe()
    );
    assert_eq!(relay_lines(&b).len(), 3, "{}", describe());
    // What the guest wrote is what the KBS holds (decrypted with the session key in the guest).
    let expected = format!(
        "sha256={} bytes={}",
        hex::encode(HashAlgorithm::Sha256.digest(&resource)),
        resource.len()
    );
    assert_eq!(
        tagged_line(&b.console, "THIMBLE-RESOURCE"),
        Some(expected.as_str()),
        "{}",
        describe()
    );
    let token = tagged_line(&b.console, "THIMBLE-TOKEN")
        .unwrap_or_else(|| panic!("no THIMBLE-TOKEN line: {}", describe()));
    assert!(token_signature_valid(token), "{token}: {}", describe());
    // The plain collection's bundle is there too, bound to thimble.nonce.
    let (path, bundle) = saved_bundle(&b);
    assert_eq!(bundle["nonce"]["value"], nonce.as_str());
    let (code, outcome) = verify(&b, &path, &nonce);
    assert_eq!(code, 0, "{outcome}");
}

#[test]
#[ignore = "boots QEMU: cargo test -p guest-tests --test boot -- --include-ignored"]
fn a_kbs_refusal_is_exit_10_and_the_boot_continues() {
    // The KBS's policy pins another launch measurement: it refuses the evidence (401), thimble
    // exits 10, and without thimble.required the boot goes on without the resource.
    let nonce = fresh_nonce(0xb1);
    let mut config = kbs_config(kbs_resource(&nonce));
    config.options.snp.measurement = Some(vec![0xee; 48]);
    let (em, verdicts) = kbs_emulator(config);
    let b = boot(&Boot::new(
        "kbs-refused",
        &kbs_cmdline(&nonce, "default/key/disk"),
        Net::Relay {
            guest: KBS_GUEST_ADDR.to_owned(),
            relay: tcp_relay(),
            target: em.addr(),
        },
    ));
    let verdicts = verdicts.all();
    let describe = || format!("{}\n--- KBS verdicts ---\n{verdicts:?}", b.describe());
    let r = b.assert_finished();
    assert_eq!(
        (r.exit, r.boot.as_str(), r.required),
        (0, "continue", false),
        "{}",
        describe()
    );
    assert_eq!(
        (r.attest.as_deref(), r.attest_exit.as_deref()),
        (Some("kbs"), Some("10")),
        "{}",
        describe()
    );
    assert_eq!(
        thimble_lines(&b.console).last().copied(),
        Some(
            "thimble: attestation to kbs failed (exit 10: verifier refused); continuing without \
             /run/thimble/resource (thimble.required=1 would stop the boot)"
        ),
        "{}",
        describe()
    );
    // Refused for the measurement, at the attest step: no resource was asked for.
    assert!(
        matches!(verdicts.as_slice(), [auth, attest] if auth == "auth: ok"
            && attest.starts_with("attest: ") && attest.contains("measurement")),
        "{}",
        describe()
    );
    assert_eq!(relay_lines(&b).len(), 2, "{}", describe());
    assert_eq!(tagged_line(&b.console, "THIMBLE-RESOURCE"), None);
    assert_eq!(tagged_line(&b.console, "THIMBLE-TOKEN"), None);
}
