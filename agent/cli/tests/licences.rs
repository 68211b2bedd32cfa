// SPDX-License-Identifier: Apache-2.0
//! Test data keeps its own licences: every file of every vector case names where it came from and
//! under which licence (`# FILE: owner/repo@commit path [LICENCE]` in its `case.toml`, or
//! "assembled from the other files of this case"), its SHA-256 is recorded and matches, and the
//! text of each licence named is in `tests/vectors/LICENSES/` (an MIT text per repository, since
//! each carries its own copyright line).

#![expect(
    clippy::unwrap_used,
    reason = "a test reads the vector files and panics on failure"
)]

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn cases() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![vectors()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() == "case.toml" {
                out.push(dir.clone());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_vector_file_names_its_source_and_licence() {
    let licences = vectors().join("LICENSES");
    let cases = cases();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for dir in cases {
        let text = std::fs::read_to_string(dir.join("case.toml")).unwrap();
        let table: toml::Value = toml::from_str(&text).unwrap();
        let hashes = table["sha256"].as_table().unwrap();
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "case.toml")
            .collect();
        files.sort();
        for name in files {
            let id = format!("{}/{name}", dir.display());
            let want = hashes
                .get(&name)
                .and_then(|v| v.as_str())
                .unwrap_or_else(|| panic!("{id}: no SHA-256 in case.toml"));
            let got = hex::encode(Sha256::digest(std::fs::read(dir.join(&name)).unwrap()));
            assert_eq!(got, want, "{id}: SHA-256");
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("# {name}: ")))
                .unwrap_or_else(|| panic!("{id}: no source line in case.toml"));
            if line.contains("assembled from the other files of this case") {
                continue;
            }
            let licence = line
                .rsplit_once('[')
                .and_then(|(_, l)| l.strip_suffix(']'))
                .unwrap_or_else(|| panic!("{id}: no [licence] on {line:?}"));
            let repo = line
                .split_whitespace()
                .nth(2)
                .and_then(|r| r.split('@').next())
                .unwrap_or_else(|| panic!("{id}: no repository on {line:?}"));
            let text_file = match licence {
                "Apache-2.0" => licences.join("Apache-2.0.txt"),
                "MIT" => licences.join(format!("MIT-{}.txt", repo.rsplit('/').next().unwrap())),
                other => panic!("{id}: licence {other} has no text in LICENSES/"),
            };
            assert!(
                text_file.exists(),
                "{id}: {} is missing",
                text_file.display()
            );
        }
    }
}
