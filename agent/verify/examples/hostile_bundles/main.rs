// SPDX-License-Identifier: Apache-2.0
//! Writes the hostile bundles of `bundles.rs` into a directory, one `NAME.json` each, with a
//! `NAME.at` holding the RFC 3339 time to verify it at, for `bench/hostile.sh` to time
//! `thimble verify` on them.

#![expect(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    reason = "a benchmark driver reads vector files, writes its output and stops on failure"
)]

mod bundles;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "hostile".into());
    std::fs::create_dir_all(&dir).unwrap();
    for (name, json, at) in bundles::all() {
        std::fs::write(format!("{dir}/{name}.json"), &json).unwrap();
        std::fs::write(
            format!("{dir}/{name}.at"),
            thimble_evidence::time_fmt::format_unix(at),
        )
        .unwrap();
        println!("{name}: {} bytes", json.len());
    }
}
