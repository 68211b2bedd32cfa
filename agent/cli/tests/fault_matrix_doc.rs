// SPDX-License-Identifier: Apache-2.0
//! The fault matrix (docs/faults.md) names only tests that exist: every row of its tables has a
//! Test column naming one or more `path::test_name`, each path is a file of the repository, and
//! that file has a `#[test]` function of that name. The tests written for the matrix
//! (`fault_matrix.rs` in `agent/collect/tests` and `agent/cli/tests`) are each named by a row, so
//! that neither side can drift from the other.

#![expect(clippy::unwrap_used, reason = "test assertions")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The cells of the table rows of `text` (outside code blocks), header and separator rows left
/// out, with their line numbers.
fn table_rows(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut rows = Vec::new();
    let mut in_code = false;
    let mut in_table = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with("```") {
            in_code = !in_code;
            in_table = false;
            continue;
        }
        if in_code || !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect();
        let separator = cells
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')));
        // The first line of a table is its header.
        let header = !in_table;
        in_table = true;
        if !header && !separator {
            rows.push((i + 1, cells));
        }
    }
    rows
}

/// The backticked spans of a cell.
fn code_spans(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// Whether `source` has a function `name` with `#[test]` among the attributes and comments
/// right above it.
fn has_test(source: &str, name: &str) -> bool {
    let lines: Vec<&str> = source.lines().collect();
    let signature = format!("fn {name}(");
    lines.iter().enumerate().any(|(i, line)| {
        if !line.trim_start().starts_with(&signature) {
            return false;
        }
        lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim())
            .take_while(|l| l.starts_with("#[") || l.starts_with("//"))
            .any(|l| l == "#[test]")
    })
}

/// The `#[test]` functions of a source file.
fn tests_in(source: &str) -> Vec<String> {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != "#[test]" {
            continue;
        }
        if let Some(f) = lines[i + 1..]
            .iter()
            .map(|l| l.trim())
            .find(|l| l.starts_with("fn "))
        {
            let name = f["fn ".len()..].split('(').next().unwrap();
            out.push(name.to_owned());
        }
    }
    out
}

#[test]
fn every_row_names_tests_that_exist() {
    let doc = repo().join("docs/faults.md");
    let text = std::fs::read_to_string(&doc).unwrap();
    let rows = table_rows(&text);
    assert!(
        rows.len() >= 40,
        "only {} rows in docs/faults.md",
        rows.len()
    );
    let mut failures = Vec::new();
    let mut named = BTreeSet::new();
    for (line, cells) in &rows {
        if cells.len() != 4 {
            failures.push(format!("line {line}: {} cells, want 4", cells.len()));
            continue;
        }
        let tests = code_spans(&cells[3]);
        if tests.is_empty() {
            failures.push(format!("line {line}: no test named"));
        }
        for t in tests {
            let Some((path, name)) = t.rsplit_once("::") else {
                failures.push(format!("line {line}: `{t}` is not path::test_name"));
                continue;
            };
            if !path.ends_with(".rs") || name.is_empty() {
                failures.push(format!("line {line}: `{t}` is not path::test_name"));
                continue;
            }
            match std::fs::read_to_string(repo().join(path)) {
                Err(e) => failures.push(format!("line {line}: {path}: {e}")),
                Ok(source) if !has_test(&source, name) => {
                    failures.push(format!("line {line}: no #[test] fn {name} in {path}"));
                }
                Ok(_) => {
                    named.insert(format!("{path}::{name}"));
                }
            }
        }
    }
    for path in [
        "agent/collect/tests/fault_matrix.rs",
        "agent/cli/tests/fault_matrix.rs",
    ] {
        let source = std::fs::read_to_string(repo().join(path)).unwrap();
        for name in tests_in(&source) {
            if !named.contains(&format!("{path}::{name}")) {
                failures.push(format!("{path}::{name} is in no row of docs/faults.md"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_checker_finds_tests_and_only_tests() {
    let source = "#[test]\n/// doc\nfn a() {}\n\nfn b() {}\n#[test]\n#[ignore]\nfn c() {}\n";
    assert!(has_test(source, "a"));
    assert!(!has_test(source, "b"));
    assert!(has_test(source, "c"));
    assert!(!has_test(source, "d"));
    assert_eq!(tests_in(source), ["a", "c"]);
    let table = "| A | B |\n|---|---|\n| x | `p.rs::a` |\n\n```\n| not | a row |\n```\n";
    let rows = table_rows(table);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, ["x", "`p.rs::a`"]);
    assert_eq!(code_spans(&rows[0].1[1]), ["p.rs::a"]);
}
