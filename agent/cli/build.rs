// SPDX-License-Identifier: Apache-2.0
//! Link settings of the static release binary. The musl release build (the binary that goes into
//! guest images and whose size bench/size.sh and bench/run measure) leaves out the unwind tables:
//! with `panic = "abort"` nothing unwinds, and a stable toolchain cannot stop the prebuilt standard
//! library from bringing them (the LTO module inherits its `uwtable` flag), so the linker drops
//! them (link/no-unwind-tables.ld) along with their search table (`--no-eh-frame-hdr`). Other
//! targets and debug builds keep them, so tests and development builds print full backtraces, and
//! `THIMBLE_KEEP_UNWIND_TABLES=1` keeps them in a release build too (for `perf --call-graph dwarf`,
//! docs/performance.md).
//!
//! Every musl build also packs its relative relocations (`-z pack-relative-relocs`, DT_RELR): the
//! static binary is position-independent, so that the kernel loads it at a random address, and
//! musl's start-up code applies its relocations itself; as RELA entries they were 24 bytes each
//! (126 KB, 3.5 % of the binary), as a RELR bitmap they are under 2 KB. musl reads DT_RELR since
//! 1.2.4, and the toolchain's own musl is newer; an older GNU ld ignores the option with a warning
//! and writes RELA as before.
//!
//! Every musl release build also places the code that `verify` and a warm `collect` never run in
//! a section of its own ahead of `.text` (link/cold-text.ld), so that those runs never map its
//! pages: peak RSS about 380 KiB lower for a warm `collect` and 630 KiB for a `verify`
//! (docs/performance.md).

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/no-unwind-tables.ld");
    println!("cargo:rerun-if-changed=link/cold-text.ld");
    println!("cargo:rerun-if-env-changed=THIMBLE_KEEP_UNWIND_TABLES");
    let keep = env::var_os("THIMBLE_KEEP_UNWIND_TABLES").is_some_and(|v| v == "1");
    let target = env::var("TARGET").unwrap_or_default();
    let profile = env::var("PROFILE").unwrap_or_default();
    let dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_string());
    if target.ends_with("-linux-musl") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    if target.ends_with("-linux-musl") && profile == "release" {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/link/cold-text.ld");
    }
    if target.ends_with("-linux-musl") && profile == "release" && !keep {
        println!("cargo:rustc-link-arg-bins=-Wl,--no-eh-frame-hdr");
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/link/no-unwind-tables.ld");
    }
}
