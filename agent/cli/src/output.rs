// SPDX-License-Identifier: Apache-2.0
//! All printing of the CLI: errors with their causes, and human-readable renderings of outcomes
//! and bundles. Library crates never print.
//!
//! How much goes to standard error is set once, from `-q` and `-v`, by `main` ([`set_verbosity`]):
//! quiet keeps errors only; verbose adds the details ([`detail`]) and progress on a standard
//! error that is not a terminal ([`progress_hook`]). Standard output is never affected.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::CliError;

/// How much the CLI prints on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Verbosity {
    /// `-q`: errors only.
    Quiet = 0,
    /// Errors, warnings, notes, and progress on a terminal.
    Normal = 1,
    /// `-v`: also each log line of a collection or exchange, and progress wherever stderr goes.
    Verbose = 2,
}

/// The process's verbosity, set once by `main` before any command runs.
static VERBOSITY: AtomicU8 = AtomicU8::new(Verbosity::Normal as u8);

/// Sets the verbosity for the rest of the process.
pub fn set_verbosity(v: Verbosity) {
    VERBOSITY.store(v as u8, Ordering::Relaxed);
}

/// The verbosity `main` set.
pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    }
}

/// Whether `-v` was given.
pub fn verbose() -> bool {
    verbosity() == Verbosity::Verbose
}

fn quiet() -> bool {
    verbosity() == Verbosity::Quiet
}

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

/// Prints a warning to stderr (not with `-q`).
pub fn warn(msg: &str) {
    if quiet() {
        return;
    }
    let _ = writeln!(std::io::stderr().lock(), "warning: {msg}");
}

/// Prints `value` as pretty JSON, and a newline, to stdout.
pub fn print_json(value: &serde_json::Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    print_stdout(&format!("{text}\n"));
}

/// Prints a detail line to stderr, only with `-v`: `thimble: {msg}`.
pub fn detail(msg: &str) {
    if verbose() {
        let _ = writeln!(std::io::stderr().lock(), "thimble: {msg}");
    }
}

/// With `-v`, the log lines a bundle carries: where each endorsement came from or why a source
/// was passed over (`endorsement_log`), and the collection's notes (`collection.log`).
pub fn bundle_details(bundle: &thimble_evidence::bundle::Bundle) {
    if !verbose() {
        return;
    }
    for l in &bundle.endorsement_log {
        detail(&format!("log: {}", escape_controls(l)));
    }
    for l in &bundle.collection.log {
        detail(&format!("note: {}", escape_controls(l)));
    }
}

/// `text` with control characters escaped (`\n`, `\u{1b}`): log lines quote what services and
/// files said, which must not drive the terminal.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The progress hook of a collection: `thimble: {line}` on stderr while the collection waits on
/// a service, the host or the paravisor. Only where someone watches (stderr is a terminal) or
/// with `-v`, so that the logs of unattended runs keep their one summary line; never with `-q`.
pub fn progress_hook() -> thimble_collect::Progress {
    let shown = match verbosity() {
        Verbosity::Quiet => false,
        Verbosity::Normal => std::io::stderr().is_terminal(),
        Verbosity::Verbose => true,
    };
    if !shown {
        return thimble_collect::Progress::none();
    }
    thimble_collect::Progress::new(|line| {
        let _ = writeln!(std::io::stderr().lock(), "thimble: {line}");
    })
}

/// The one line `collect` prints on success (stderr, so that `-o -` keeps stdout for the bundle):
/// where the bundle went, its TEE, the evidence source and where the endorsements came from.
/// Not with `-q`.
pub fn collected(bundle: &thimble_evidence::bundle::Bundle, path: &std::path::Path) {
    if quiet() {
        return;
    }
    let origins = endorsement_origins(bundle);
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

/// Where a bundle's endorsements came from (`origin.kind`), each once, in the bundle's order.
pub fn endorsement_origins(bundle: &thimble_evidence::bundle::Bundle) -> Vec<&str> {
    let mut origins: Vec<&str> = Vec::new();
    for e in &bundle.endorsements {
        if !origins.contains(&e.origin.kind.as_str()) {
            origins.push(e.origin.kind.as_str());
        }
    }
    origins
}

/// Prints a progress line to stderr (for long-running modes whose stdout may be a pipe); not with
/// `-q`.
pub fn info(msg: &str) {
    if quiet() {
        return;
    }
    let _ = writeln!(std::io::stderr().lock(), "thimble: {msg}");
}
