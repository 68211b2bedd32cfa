// SPDX-License-Identifier: Apache-2.0
//! The documentation's relative links resolve: every `[text](path)` and `[text](path#anchor)` in
//! the repository's Markdown files names a file that exists, and an anchor names a heading of the
//! target (GitHub's slugs). Documentation that moved, or a heading that was renamed, is caught
//! here instead of by a reader.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !name.starts_with('.') && name != "target" {
                markdown_files(&p, out);
            }
        } else if name.ends_with(".md") {
            out.push(p);
        }
    }
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces turned into hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks), with GitHub's `-1`, `-2`
/// suffixes for repeats.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base = slug(heading);
        let mut candidate = base.clone();
        let mut n = 0;
        while out.contains(&candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        out.insert(candidate);
    }
    out
}

/// The link targets of a Markdown text, outside code blocks and inline code.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        // Drop inline code spans, which may hold `](` as text.
        let mut visible = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                visible.push_str(part);
            }
        }
        let mut rest = visible.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else {
                break;
            };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn relative_links_resolve() {
    let root = repo();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    assert!(files.len() > 10, "{} Markdown files", files.len());
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match link.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (link.as_str(), None),
            };
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap_or(&root).join(path)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", file.display()));
                continue;
            }
            if let (Some(anchor), true) = (anchor, target.extension().is_some_and(|e| e == "md")) {
                let headings = anchors(&std::fs::read_to_string(&target).unwrap_or_default());
                if !headings.contains(anchor) {
                    broken.push(format!("{}: {link}: no such heading", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Repository paths named in text: tokens that start with one of the top-level directories,
/// without globs or placeholders, trailing punctuation dropped.
fn named_paths(text: &str) -> Vec<String> {
    const TOP: [&str; 9] = [
        "agent/",
        "docs/",
        "bench/",
        "initramfs/",
        "deploy/",
        "guest-tests/",
        "scripts/",
        "tests/vectors",
        ".ci/",
    ];
    let mut out = Vec::new();
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-');
    for (i, _) in text.char_indices() {
        let rest = &text[i..];
        let Some(top) = TOP.iter().find(|t| rest.starts_with(*t)) else {
            continue;
        };
        // Only at the start of a token: `agent/` inside `thimble-agent/x` is not a path.
        if text[..i].chars().next_back().is_some_and(is_path_char) {
            continue;
        }
        let token: String = rest.chars().take_while(|&c| is_path_char(c)).collect();
        let after = rest[token.len()..].chars().next();
        if matches!(after, Some('*' | '{' | '<' | '$' | '…')) || token.len() <= top.len() {
            continue;
        }
        out.push(token.trim_end_matches(['.', ',', ':']).to_string());
    }
    out
}

/// Whether a line names a repository other than this one in inline code: `owner/name`, two
/// segments, neither one of this repository's top-level directories.
fn names_other_repository(line: &str) -> bool {
    line.split('`').skip(1).step_by(2).any(|code| {
        let mut parts = code.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(owner), Some(name), None) => {
                !owner.is_empty()
                    && !name.is_empty()
                    && !name.contains('.')
                    && ![
                        "agent",
                        "docs",
                        "bench",
                        "initramfs",
                        "deploy",
                        "guest-tests",
                        "scripts",
                        "tests",
                    ]
                    .contains(&owner)
                    && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }
            _ => false,
        }
    })
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "vectors" {
                sources(&p, out);
            }
        } else if name.ends_with(".md") || name.ends_with(".rs") || name.ends_with(".sh") {
            out.push(p);
        }
    }
}

#[test]
fn named_paths_exist() {
    // Documentation and comments name files (`agent/evidence/src/snp/report.rs`,
    // `docs/formats.md`); a file that moved leaves a name that misleads. A path counts when it
    // exists from the repository root or from the naming file's directory (a README naming its
    // own subdirectory).
    let root = repo();
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(files.len() > 50, "{} files", files.len());
    let mut missing = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        // A line that names another repository (`owner/name`, as the source tables of
        // docs/formats.md do) cites that repository's files, not ours.
        let ours: String = text
            .lines()
            .filter(|line| !names_other_repository(line))
            .collect::<Vec<_>>()
            .join("\n");
        for path in named_paths(&ours) {
            checked += 1;
            let here = file.parent().unwrap_or(&root);
            if !root.join(&path).exists() && !here.join(&path).exists() {
                missing.push(format!("{}: {path}", file.display()));
            }
        }
    }
    assert!(checked > 100, "only {checked} named paths found");
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "named paths that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn named_paths_are_recognised() {
    let text = "see `agent/evidence/src/snp/report.rs`, docs/formats.md. and \
                `agent/*/src`, thimble-agent/x, `docs/<name>.md`";
    assert_eq!(
        named_paths(text),
        ["agent/evidence/src/snp/report.rs", "docs/formats.md"]
    );
    assert!(names_other_repository(
        "| CCF | `microsoft/CCF` | `scripts/x.py` |"
    ));
    assert!(!names_other_repository(
        "`agent/collect` and `docs/formats.md`"
    ));
}
