// SPDX-License-Identifier: Apache-2.0
//! All printing of the CLI: errors with their causes, and human-readable renderings of outcomes
//! and bundles. Library crates never print.

use std::io::Write;

use crate::error::CliError;

/// `error: ...` then one `  caused by: ...` line per source.
pub fn print_error(e: &CliError) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let _ = writeln!(err, "  caused by: {s}");
        source = s.source();
    }
}

/// Prints to stdout, treating a closed pipe as success (`thimble show b.json | head`).
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints a warning to stderr.
pub fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "warning: {msg}");
}

/// The one line `collect` prints on success (stderr, so that `-o -` keeps stdout for the bundle):
/// where the bundle went, its TEE, the evidence source and where the endorsements came from.
pub fn collected(bundle: &thimble_evidence::bundle::Bundle, path: &std::path::Path) {
    let mut origins: Vec<&str> = Vec::new();
    for e in &bundle.endorsements {
        if !origins.contains(&e.origin.kind.as_str()) {
            origins.push(e.origin.kind.as_str());
        }
    }
    let endorsements = if origins.is_empty() {
        "no endorsements".to_string()
    } else {
        format!("endorsements from {}", origins.join(", "))
    };
    let _ = writeln!(
        std::io::stderr().lock(),
        "collected {}: {}{} evidence from {}, {endorsements}",
        if path.as_os_str() == "-" {
            "to standard output".to_string()
        } else {
            path.display().to_string()
        },
        bundle.tee(),
        if bundle.simulated { " (simulated)" } else { "" },
        bundle.collection.source,
    );
}

/// Prints a progress line to stderr (for long-running modes whose stdout may be a pipe).
pub fn info(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "thimble: {msg}");
}
