// SPDX-License-Identifier: Apache-2.0
//! Manual pages and shell completions, generated from the command line's own definition (the
//! same `args.rs` the binary parses with), so that they never drift from `--help`: `thimble.1`
//! and one `thimble-COMMAND.1` per subcommand (clap_mangen), and the completion scripts for bash,
//! zsh and fish (clap_complete). Not a module of the binary, which carries neither library: the
//! generator (examples/generate_manuals.rs, run by `scripts/install`) and the test that checks
//! the output include this file.

use std::path::Path;

use clap::CommandFactory;

#[allow(
    dead_code,
    reason = "the binary's definition, included whole; not every item is read here"
)]
#[path = "args.rs"]
mod args;

/// Writes `out/man/man1/*.1` and `out/completions/{thimble.bash,_thimble,thimble.fish}`.
pub fn write_all(out: &Path) -> std::io::Result<()> {
    let mut cmd = args::Cli::command();
    cmd.build();
    write_manuals(&cmd, &out.join("man/man1"))?;
    write_completions(cmd, &out.join("completions"))
}

fn write_manuals(cmd: &clap::Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    std::fs::write(dir.join("thimble.1"), page)?;
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("thimble-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone().display_name(name.clone())).render(&mut page)?;
        std::fs::write(dir.join(format!("{name}.1")), page)?;
    }
    Ok(())
}

fn write_completions(mut cmd: clap::Command, dir: &Path) -> std::io::Result<()> {
    use clap_complete::{Shell, generate_to};
    std::fs::create_dir_all(dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        generate_to(shell, &mut cmd, "thimble", dir)?;
    }
    Ok(())
}
