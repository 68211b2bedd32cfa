// SPDX-License-Identifier: Apache-2.0
//! `thimble`: collects SEV-SNP attestation evidence and its endorsements into one bundle, and
//! verifies such bundles offline. This file only dispatches and turns errors into the documented
//! exit codes; the commands live in `cmd/`.

mod args;
mod cmd;
mod common;
mod error;
mod exit;
mod io;
mod output;
mod policy;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are not errors; everything else clap rejects is usage.
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Collect(a) => cmd::collect::run(a),
        Command::Detect(a) => cmd::detect::run(a),
        Command::Verify(a) => cmd::verify::run(*a),
        Command::Import(a) => cmd::import::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Show(a) => cmd::show::run(a),
        Command::VerifyChain(a) => cmd::verify_chain::run(a),
        Command::Exec(a) => cmd::exec::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
