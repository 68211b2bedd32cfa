// SPDX-License-Identifier: Apache-2.0
//! The manual pages and shell completions (src/manuals.rs, as examples/generate_manuals.rs writes
//! them): a page for thimble and for every command, each naming the flags `--help` lists, and
//! completion scripts for bash, zsh and fish that know every command.

mod common;
#[path = "../src/manuals.rs"]
mod manuals;

const COMMANDS: &[&str] = &[
    "collect",
    "detect",
    "verify",
    "import",
    "export",
    "show",
    "verify-chain",
    "exec",
    "attest",
];

#[test]
fn pages_and_completions_cover_every_command() {
    let dir = tempfile::tempdir().unwrap();
    manuals::write_all(dir.path()).unwrap();
    let man = dir.path().join("man/man1");
    let top = std::fs::read_to_string(man.join("thimble.1")).unwrap();
    assert!(
        top.starts_with(".ie") || top.contains(".TH thimble"),
        "{top}"
    );
    for c in COMMANDS {
        let page = std::fs::read_to_string(man.join(format!("thimble-{c}.1")))
            .unwrap_or_else(|e| panic!("thimble-{c}.1: {e}"));
        assert!(page.contains(".SH NAME"), "{c}");
        // roff escapes the hyphen.
        assert!(
            top.contains(&c.replace('-', "\\-")),
            "thimble.1 does not list {c}"
        );
    }
    let attest = std::fs::read_to_string(man.join("thimble-attest.1")).unwrap();
    for flag in [
        "verifier",
        "resource\\-out",
        "print\\-request",
        "api\\-key\\-file",
    ] {
        assert!(attest.contains(flag), "thimble-attest.1 lacks {flag}");
    }
    let completions = dir.path().join("completions");
    for file in ["thimble.bash", "_thimble", "thimble.fish"] {
        let text = std::fs::read_to_string(completions.join(file)).unwrap();
        for c in COMMANDS {
            assert!(text.contains(c), "{file} does not complete {c}");
        }
    }
    // The help the binary prints names the same commands.
    let help = common::run(&["--help"]).stdout;
    for c in COMMANDS {
        assert!(help.contains(c), "--help does not list {c}");
    }
}
