// SPDX-License-Identifier: Apache-2.0
//! Writes thimble's manual pages and shell completions (src/manuals.rs) into a directory:
//! `cargo run -p thimble --example generate_manuals -- OUT_DIR` writes `OUT_DIR/man/man1/*.1`
//! and `OUT_DIR/completions/{thimble.bash,_thimble,thimble.fish}`; `scripts/install` puts them
//! where the system looks.

#[path = "../src/manuals.rs"]
mod manuals;

fn main() -> std::io::Result<()> {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: generate_manuals OUT_DIR");
        std::process::exit(2);
    };
    manuals::write_all(std::path::Path::new(&out))
}
