// SPDX-License-Identifier: Apache-2.0
//! `thimble show` on bundles that carry measured-boot event logs (issue 10): the events as a
//! table (register, type, digest, what the data says), the claims of each log, a log that does
//! not parse as one line without failing, output bounded, and nothing from the log reaching the
//! terminal as a control character. The logs are real ones from tests/vectors/eventlog.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{p, read_json, run, write_json};
use thimble_evidence::eventlog::EventLog;

const CCEL_SOURCE: &str = "/sys/firmware/acpi/tables/data/CCEL";
const TPM_SOURCE: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";

/// The GCE TDX log (COS 113), trimmed after its last event as collect stores a CCEL log area.
fn cos113_ccel() -> Vec<u8> {
    let area =
        std::fs::read(common::vectors().join("eventlog/tdx-gcp-cos113/ccel_data.bin")).unwrap();
    EventLog::parse(&area).unwrap().trimmed_bytes().to_vec()
}

/// The GCE vTPM log of a RHEL 8 guest (shim, GRUB, Secure Boot on).
fn rhel8_tcg2() -> Vec<u8> {
    std::fs::read(common::vectors().join("eventlog/tpm-gce-rhel8/event_log.bin")).unwrap()
}

/// `event_logs[]` member as a bundle writes it.
fn log_member(kind: &str, source: &str, data: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "kind": kind,
        "source": source,
        "size": data.len(),
        "data": STANDARD.encode(data),
    })
}

/// A simulated bundle of `tee` (`tdx`, `snp`) in `dir`, collected by the binary.
fn simulated(dir: &Path, tee: &str) -> PathBuf {
    let out = dir.join(format!("{tee}.json"));
    let r = run(&["collect", "--simulate", tee, "-o", p(&out)]);
    assert_eq!(r.code, 0, "collect --simulate {tee}: {}", r.stderr);
    out
}

/// `bundle` with its `event_logs` replaced by `logs` (and its collection notes by `notes`, when
/// given), written as `name`.
fn with_logs(
    bundle: &Path,
    name: &str,
    logs: Vec<serde_json::Value>,
    notes: Option<&[&str]>,
) -> PathBuf {
    let mut v = read_json(bundle);
    v["event_logs"] = serde_json::Value::Array(logs);
    if let Some(notes) = notes {
        v["collection"]["log"] = serde_json::json!(notes);
    }
    write_json(bundle.parent().unwrap(), name, &v)
}

/// `thimble show BUNDLE`, which must succeed: its standard output.
fn show(bundle: &Path) -> String {
    let r = run(&["show", p(bundle)]);
    assert_eq!(r.code, 0, "show {}: {}", bundle.display(), r.stderr);
    r.stdout
}

/// The table row of event `index` in the first log of `out` that has one.
fn row(out: &str, index: usize) -> &str {
    let want = index.to_string();
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(want.as_str()))
        .unwrap_or_else(|| panic!("no row for event {index} in:\n{out}"))
}

/// No control character (C0 but the newlines that end lines, DEL, C1) and no bidirectional
/// override in `out`.
fn assert_terminal_safe(out: &str) {
    for (n, line) in out.lines().enumerate() {
        assert!(
            !line
                .chars()
                .any(|c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
            "line {} carries a control character: {line:?}",
            n + 1
        );
    }
}

#[test]
fn a_td_log_and_a_tpm_log_print_as_tables_of_events_with_their_claims() {
    let tmp = tempfile::tempdir().unwrap();
    let base = simulated(tmp.path(), "tdx");
    let ccel = cos113_ccel();
    let tpm = rhel8_tcg2();
    let b = with_logs(
        &base,
        "logs.json",
        vec![
            log_member("ccel", CCEL_SOURCE, &ccel),
            log_member("tcg2", TPM_SOURCE, &tpm),
        ],
        Some(&["event log: no IMA log at /sys/kernel/security/ima (not asked for)"]),
    );
    let out = show(&b);
    assert_terminal_safe(&out);

    // The TD log: header, registers named as RTMRs, SHA-384 digests, decoded event data.
    assert!(
        out.contains(&format!(
            "event log:     ccel from {CCEL_SOURCE}, {} bytes, 43 events, banks sha384\n",
            ccel.len()
        )),
        "{out}"
    );
    assert!(
        out.contains("note:          event log: no IMA log at /sys/kernel/security/ima"),
        "{out}"
    );
    let (td, tpm_part) = out
        .split_once("event log:     tcg2")
        .unwrap_or_else(|| panic!("no tcg2 log in:\n{out}"));
    let td = td.split_once("event log:     ccel").unwrap().1;
    for rtmr in ["RTMR0", "RTMR1", "RTMR2"] {
        assert!(td.contains(&format!("  {rtmr}  ")), "{rtmr} in:\n{td}");
    }
    let sb = row(td, 3);
    assert!(sb.contains("RTMR0"), "{sb}");
    assert!(sb.contains("EV_EFI_VARIABLE_DRIVER_CONFIG"), "{sb}");
    assert!(sb.contains("SecureBoot = 0"), "{sb}");
    // The short SHA-384 digest of the event, as the log holds it.
    assert!(sb.contains("cfa4e2c606f57262…"), "{sb}");
    assert!(row(td, 6).contains("db (1085 bytes)"), "{}", row(td, 6));
    assert!(row(td, 8).contains("separator 00000000"), "{}", row(td, 8));
    assert!(
        row(td, 18).contains("\\EFI\\BOOT\\BOOTX64.EFI (image 924688 bytes)"),
        "{}",
        row(td, 18)
    );
    assert!(
        row(td, 15).contains("\"Calling EFI Application from Boot Option\""),
        "{}",
        row(td, 15)
    );
    let cmdline = row(td, 41);
    assert!(cmdline.contains("EV_IPL"), "{cmdline}");
    assert!(
        cmdline.contains("\"kernel_cmdline: /syslinux/vmlinuz.A init=/usr/lib/systemd/systemd"),
        "{cmdline}"
    );
    // A multi-line GRUB command stays on its row, its newline escaped.
    assert!(
        row(td, 33).contains("\"grub_cmd: menuentry local image A {\\n  linux /syslinux/"),
        "{}",
        row(td, 33)
    );
    // Rows are bounded: a long command line is cut in the table and given whole below.
    assert!(cmdline.ends_with("…\""), "{cmdline}");
    assert!(td.contains("  secure boot: off (measured: SecureBoot, PK, KEK, db, dbx)\n"));
    assert!(td.contains(
        "  cmdline:     \"/syslinux/vmlinuz.A init=/usr/lib/systemd/systemd rootwait ro noresume"
    ));
    assert!(td.contains("(grub, event 41, RTMR2)\n"), "{td}");
    assert!(
        td.contains(
            "  kernel:      /syslinux/vmlinuz.A (grub, event 40, RTMR2) sha384 b1012372f421ad28"
        ),
        "{td}"
    );
    assert!(
        td.contains(
            "  boot app:    \\EFI\\BOOT\\grub-lakitu.efi (event 24, RTMR1) sha384 b1fb7f4c"
        ),
        "{td}"
    );

    // The TPM log: PCRs, SHA-256 digests, Secure Boot on, GRUB's kernel and initrd.
    assert!(
        tpm_part.starts_with(&format!(
            " from {TPM_SOURCE}, {} bytes, 82 events, banks sha1, sha256, sha384\n",
            tpm.len()
        )),
        "{tpm_part}"
    );
    assert!(row(tpm_part, 3).contains("PCR 7"), "{}", row(tpm_part, 3));
    assert!(row(tpm_part, 3).contains("SecureBoot = 1"));
    assert!(row(tpm_part, 1).contains("\"GCE Virtual Firmware v1\""));
    assert!(row(tpm_part, 10).contains("Boot0002 \"Red Hat Enterprise Linux\""));
    assert!(tpm_part.contains("  secure boot: on "), "{tpm_part}");
    assert!(
        tpm_part.contains(
            "  boot app:    \\EFI\\redhat\\shimx64.efi (event 23, PCR 4) sha256 40d6cae0"
        )
    );
    assert!(tpm_part.contains(
        "  kernel:      (hd0,gpt2)/boot/vmlinuz-4.18.0-240.22.1.el8_3.x86_64 (grub, event 76, PCR 9)"
    ));
    assert!(tpm_part.contains(
        "  initrd:      (hd0,gpt2)/boot/initramfs-4.18.0-240.22.1.el8_3.x86_64.img (grub, event 80, PCR 9)"
    ));
}

#[test]
fn a_log_that_does_not_parse_is_one_line_and_show_still_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let base = simulated(tmp.path(), "tdx");
    let mut truncated = cos113_ccel();
    truncated.truncate(truncated.len() - 10);
    let b = with_logs(
        &base,
        "bad.json",
        vec![
            log_member("tcg2", TPM_SOURCE, b"not an event log at all"),
            log_member("ccel", CCEL_SOURCE, &truncated),
            log_member(
                "ima",
                "/sys/kernel/security/ima/binary_runtime_measurements",
                b"\x10\0\0\0\x1b[2J",
            ),
        ],
        None,
    );
    let out = show(&b);
    assert_terminal_safe(&out);
    let logs: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("event log:"))
        .collect();
    assert_eq!(logs.len(), 3, "{out}");
    assert!(
        logs[0].starts_with(&format!(
            "event log:     tcg2 from {TPM_SOURCE}, 23 bytes: unreadable: "
        )),
        "{}",
        logs[0]
    );
    assert!(
        logs[1].starts_with(&format!(
            "event log:     ccel from {CCEL_SOURCE}, {} bytes: unreadable: event 43 is truncated",
            truncated.len()
        )),
        "{}",
        logs[1]
    );
    // The IMA log is another format: its kind, source and size only.
    assert_eq!(
        logs[2],
        "event log:     ima from /sys/kernel/security/ima/binary_runtime_measurements, 8 bytes (not decoded)"
    );
    // Nothing else of those logs: no table.
    assert!(!out.contains("  type  "), "{out}");
}

#[test]
fn control_characters_from_the_log_are_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let base = simulated(tmp.path(), "tdx");
    // Overwrite the kernel command line's text in place (same length, so the log still
    // parses; its digest no longer covers it, which show reports and verify would refuse).
    let mut ccel = cos113_ccel();
    let at = memchr::memmem::find(&ccel, b"kernel_cmdline: ").unwrap() + 16;
    let hostile = b"\x1b]0;owned\x07\x1b[2J\r\x9b\xe2\x80\xae";
    ccel[at..at + hostile.len()].copy_from_slice(hostile);
    let b = with_logs(
        &base,
        "hostile.json",
        vec![log_member("ccel", "/dev/\x1b[31mred", &ccel)],
        Some(&["event log: \x1b[1mbold\x1b[0m note\r"]),
    );
    let out = show(&b);
    assert_terminal_safe(&out);
    assert!(!out.contains('\x1b') && !out.contains('\r') && !out.contains('\x07'));
    // Escaped where they were, so that a reader sees them.
    assert!(out.contains("ccel from /dev/\\u{1b}[31mred, "), "{out}");
    assert!(
        out.contains("note:          event log: \\u{1b}[1mbold\\u{1b}[0m note\\r\n"),
        "{out}"
    );
    let cmdline = row(&out, 41);
    assert!(
        cmdline.contains("\"kernel_cmdline: \\u{1b}]0;owned\\u{7}\\u{1b}[2J\\r"),
        "{cmdline}"
    );
    // The 0x9b byte is not UTF-8: the text is decoded lossily, never passed through raw.
    assert!(out.contains("  cmdline:     \"\\u{1b}]0;owned"), "{out}");
    assert!(out.contains("NOT the text its digest covers"), "{out}");
}

#[test]
fn the_table_is_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let base = simulated(tmp.path(), "tdx");
    // The TD log's Spec ID header and then 2100 copies of its last event.
    let ccel = cos113_ccel();
    let log = EventLog::parse(&ccel).unwrap();
    let mut many = ccel[..log.events[0].offset].to_vec();
    for _ in 0..2100 {
        many.extend_from_slice(log.events.last().unwrap().as_bytes());
    }
    let b = with_logs(
        &base,
        "many.json",
        vec![log_member("ccel", CCEL_SOURCE, &many)],
        None,
    );
    let out = show(&b);
    assert!(out.contains(", 2100 events, banks sha384\n"), "{out}");
    let rows = out
        .lines()
        .filter(|l| l.contains("Exit Boot Services Returned with Success"))
        .count();
    assert_eq!(rows, 2000);
    assert!(out.contains("\n  … 100 more events\n"), "{out}");
}

#[test]
fn a_bundle_without_event_logs_prints_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    // SEV-SNP: show decodes the report and verifies nothing, so the output of one bundle is
    // the output of the other up to the logs.
    let base = simulated(tmp.path(), "snp");
    let mut v = read_json(&base);
    v.as_object_mut().unwrap().remove("event_logs");
    v["collection"].as_object_mut().unwrap().remove("log");
    let plain = write_json(tmp.path(), "plain.json", &v);
    let before = show(&plain);
    for label in ["event log:", "note:", "  #  ", "secure boot:"] {
        assert!(
            !before.lines().any(|l| l.starts_with(label)),
            "{label} in:\n{before}"
        );
    }
    let logged = with_logs(
        &plain,
        "logged.json",
        vec![log_member("tcg2", TPM_SOURCE, &rhel8_tcg2())],
        None,
    );
    let after = show(&logged);
    let rest = after
        .strip_prefix(before.as_str())
        .unwrap_or_else(|| panic!("the output changed before the logs:\n{before}\n---\n{after}"));
    assert!(rest.starts_with("event log:     tcg2 from "), "{rest}");
}
