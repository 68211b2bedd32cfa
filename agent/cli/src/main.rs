// SPDX-License-Identifier: Apache-2.0
//! `thimble`: collects SEV-SNP attestation evidence and its endorsements into one bundle, and
//! verifies such bundles offline. This file only dispatches and turns errors into the documented
//! exit codes; the commands live in `cmd/`.

mod args;
mod cmd;
mod common;
mod config;
mod error;
mod exit;
mod io;
mod output;
mod policy;

use std::process::ExitCode;

/// mimalloc in the static musl binary (agent/cli/Cargo.toml says why).
#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{CommandFactory, FromArgMatches};

use crate::args::{Cli, Command};
use crate::error::CliError;

fn main() -> ExitCode {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)));
    let (cli, matches) = match parsed {
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
    output::set_verbosity(match (cli.quiet, cli.verbose) {
        (true, _) => output::Verbosity::Quiet,
        (false, true) => output::Verbosity::Verbose,
        (false, false) => output::Verbosity::Normal,
    });
    let result = configured(cli.command, &matches).and_then(|command| match command {
        Command::Collect(a) => cmd::collect::run(a),
        Command::Detect(a) => cmd::detect::run(a),
        Command::Verify(a) => cmd::verify::run(*a),
        Command::Import(a) => cmd::import::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Show(a) => cmd::show::run(a),
        Command::VerifyChain(a) => cmd::verify_chain::run(a),
        Command::Exec(a) => cmd::exec::run(a),
        Command::Attest(a) => cmd::attest::run(*a),
        Command::Config(a) => config::run(a),
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// `command` with what its command line left unset filled in from the configuration file and
/// the environment (config.rs), for the commands that have such settings.
fn configured(mut command: Command, matches: &clap::ArgMatches) -> Result<Command, CliError> {
    let Some((_, sub)) = matches.subcommand() else {
        return Ok(command);
    };
    let load = || config::Config::load(&|name| std::env::var(name).ok());
    match &mut command {
        Command::Collect(a) => load()?.apply_collect(&mut a.collect, sub)?,
        Command::Exec(a) => load()?.apply_collect(&mut a.collect, sub)?,
        Command::Attest(a) => load()?.apply_attest(a, sub)?,
        Command::Verify(a) => load()?.apply_verify(&mut a.policy, sub),
        _ => {}
    }
    Ok(command)
}
