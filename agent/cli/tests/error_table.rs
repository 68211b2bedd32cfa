// SPDX-License-Identifier: Apache-2.0
//! The tables of verification error codes and of exit codes are the contract scripts rely on:
//! every code `verify` can emit (`thimble_verify::Code::ALL`) is in the README's summary under its
//! class and in docs/verify.md's tables with its meaning and class, neither names a code that does
//! not exist, and every exit code the binary uses is in the README's exit-code table.

#![expect(
    clippy::unwrap_used,
    reason = "a test reads the README and panics on failure"
)]

use std::collections::BTreeMap;
use std::path::Path;

use thimble_verify::{Code, ErrorClass};

fn read(relative: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(relative),
    )
    .unwrap()
}

fn readme() -> String {
    read("README.md")
}

/// The text of the README section that starts with `heading`, up to the next `## ` heading.
fn section(text: &str, heading: &str) -> String {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"));
    let rest = &text[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_string()
}

/// Table rows (`| a | b | c |`) of `text`, split into cells, without header and rule rows.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| Code"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// The `backticked` words of a cell.
fn ticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

fn class_name(c: ErrorClass) -> &'static str {
    match c {
        ErrorClass::Malformed => "malformed",
        ErrorClass::Authenticity => "authenticity",
        ErrorClass::Policy => "policy",
    }
}

/// Compares a code -> class map read from a document with `Code::ALL`.
fn check(documented: &BTreeMap<String, String>, what: &str) {
    for code in Code::ALL {
        match documented.get(code.as_str()) {
            Some(class) => assert_eq!(
                class,
                class_name(code.class()),
                "{what} gives {code} another class"
            ),
            None => panic!("{code} is not in {what}"),
        }
    }
    for code in documented.keys() {
        assert!(
            Code::ALL.iter().any(|c| c.as_str() == code),
            "{what} documents {code}, which verify never emits"
        );
    }
}

#[test]
fn every_verification_error_code_is_documented_with_its_class() {
    // docs/verify.md: one row per code (or group of codes) with its class and meaning.
    let text = section(&read("docs/verify.md"), "## Error codes");
    let mut detailed: BTreeMap<String, String> = BTreeMap::new();
    for row in rows(&text) {
        let class = row[1].split_whitespace().next().unwrap().to_string();
        for code in ticked(&row[0]) {
            detailed.insert(code, class.clone());
        }
    }
    check(&detailed, "docs/verify.md's error tables");
    // The README: one row per class with all its codes.
    let text = section(&readme(), "## Verification error codes");
    let mut summary: BTreeMap<String, String> = BTreeMap::new();
    for row in rows(&text).iter().filter(|r| r[0] != "Class (exit)") {
        let class = row[0].split_whitespace().next().unwrap().to_string();
        for code in ticked(&row[1]) {
            summary.insert(code, class.clone());
        }
    }
    check(&summary, "the README's summary of error codes");
}

#[test]
fn every_exit_code_is_documented() {
    let text = section(&readme(), "## Exit codes");
    let documented: Vec<u8> = rows(&text)
        .iter()
        .filter_map(|r| r[0].parse().ok())
        .collect();
    // The codes of src/exit.rs, every `pub const NAME: u8 = N;`.
    let source = read("agent/cli/src/exit.rs");
    let mut defined: Vec<u8> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter_map(|l| l.split_once(": u8 = "))
        .filter_map(|(_, v)| v.trim_end_matches(';').trim().parse().ok())
        .collect();
    defined.sort_unstable();
    assert_eq!(defined, (0..=10).collect::<Vec<u8>>());
    assert_eq!(documented, defined);
}
