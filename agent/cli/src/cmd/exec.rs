// SPDX-License-Identifier: Apache-2.0
//! `thimble exec`: the container entrypoint. Collects (all `collect` options apply), writes the
//! bundle (default `/run/thimble/evidence.json`), puts its path and the nonce in the environment,
//! then `execve`s the command so that it becomes the process the runtime watches: its exit code
//! and signals are the container's, and thimble is gone. A failed collection is fatal only with
//! `--required`; otherwise the command runs without the evidence variables, after a warning.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use thimble_evidence::bundle::Bundle;

use crate::args::ExecArgs;
use crate::error::CliError;
use crate::exit;
use crate::output::{print_error, warn};

/// Where `exec` writes the bundle unless told otherwise; `/run` survives nothing but is what
/// every container and early-boot consumer can reach.
pub const DEFAULT_EVIDENCE_PATH: &str = "/run/thimble/evidence.json";

pub fn run(mut a: ExecArgs) -> Result<u8, CliError> {
    if a.collect.every.is_some() {
        return Err(CliError::Usage(
            "exec collects once and then becomes the command; --every is for collect".into(),
        ));
    }
    let output = a
        .collect
        .output
        .get_or_insert_with(|| PathBuf::from(DEFAULT_EVIDENCE_PATH))
        .clone();
    if output.as_os_str() == "-" {
        return Err(CliError::Usage(
            "exec writes the bundle to a file; -o - is not possible here".into(),
        ));
    }
    let Some((program, args)) = a.command.split_first() else {
        return Err(CliError::Usage("exec needs a command after --".into()));
    };
    let program = program.clone();
    let args = args.to_vec();
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        // /run/thimble does not exist on a fresh boot or in a fresh container.
        let _ = std::fs::create_dir_all(dir);
    }

    let collected = crate::cmd::collect::collect(a.collect, false);
    let mut cmd = std::process::Command::new(&program);
    cmd.args(&args);
    match collected {
        Ok(exit::OK) => {
            cmd.env("THIMBLE_EVIDENCE", &output);
            let nonce = std::fs::read(&output)
                .ok()
                .and_then(|b| Bundle::parse(&b).ok())
                .and_then(|b| b.nonce)
                .map(|n| n.value);
            if let Some(n) = nonce {
                cmd.env("THIMBLE_NONCE", n);
            }
        }
        Ok(code) if a.required => return Ok(code),
        Err(e) if a.required => return Err(e),
        Ok(code) => warn(&format!(
            "collection failed (exit {code}); running {program} without evidence"
        )),
        Err(e) => {
            print_error(&e);
            warn(&format!(
                "collection failed (exit {}); running {program} without evidence",
                e.exit_code()
            ));
        }
    }
    // `exec` only returns when the program could not be started.
    let err = cmd.exec();
    Err(CliError::Other(format!("cannot run {program}: {err}")))
}
